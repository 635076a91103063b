package redisadapter

import (
	"testing"
	"time"

	"github.com/operate/realtime/socketio/internal/rediswire"
)

// TestReaderRemembersForReplays checks what a reader keeps of the entries
// it handled for recoveries to read from memory: everything after an
// offset it holds, nothing for an offset it does not (older, or never
// seen), for the recovery window and at most recentMax, and a slice once
// handed out is not changed by what comes after.
func TestReaderRemembersForReplays(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	id := func(n uint64) rediswire.StreamID { return rediswire.StreamID{Ms: 1000 + n, Seq: 0} }
	r := &streamReader{keep: time.Minute}
	add := func(n uint64, at time.Time) {
		r.last = id(n)
		r.remember(rediswire.StreamEntry{ID: id(n).String(), Nsp: "/"}, id(n), at)
	}
	for n := uint64(1); n <= 5; n++ {
		add(n, t0.Add(time.Duration(n)*time.Second))
	}
	after, last, ok := r.since(id(3))
	if !ok || len(after) != 2 || after[0].id != id(4) || after[1].id != id(5) || last != id(5) {
		t.Fatalf("since #3: %v %v %t", after, last, ok)
	}
	if _, _, ok := r.since(rediswire.StreamID{Ms: 1003, Seq: 1}); ok {
		t.Error("an offset the reader never handled is covered")
	}
	if _, _, ok := r.since(id(0)); ok {
		t.Error("an offset older than what the reader keeps is covered")
	}
	if after, _, ok := r.since(id(5)); !ok || len(after) != 0 {
		t.Errorf("since the last entry: %v %t, want nothing missed", after, ok)
	}

	held, _, _ := r.since(id(1))
	add(6, t0.Add(6*time.Second))
	if len(held) != 4 || held[3].id != id(5) {
		t.Errorf("a slice handed out changed: %v", held)
	}

	// Past the window, the oldest are forgotten: an offset among them is
	// read from Redis.
	add(7, t0.Add(62*time.Second))
	if _, _, ok := r.since(id(1)); ok {
		t.Error("an entry older than the window is still kept")
	}
	if after, _, ok := r.since(id(2)); !ok || len(after) != 5 {
		t.Errorf("since #2, within the window: %d entries, %t", len(after), ok)
	}

	// At most recentMax.
	for n := uint64(8); n < 8+recentMax; n++ {
		add(n, t0.Add(63*time.Second))
	}
	if len(r.recent) != recentMax || r.recent[0].id != id(8) {
		t.Errorf("%d entries kept from %v, want %d from %v", len(r.recent), r.recent[0].id, recentMax, id(8))
	}

	// A reader no recovering adapter reads keeps nothing.
	none := &streamReader{}
	none.remember(rediswire.StreamEntry{}, id(1), t0)
	if len(none.recent) != 0 {
		t.Error("kept without a recovery window")
	}
}
