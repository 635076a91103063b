package redisadapter

import (
	"fmt"
	"testing"

	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
)

func recentPacket(i int) *socketio.Packet {
	return &socketio.Packet{Data: []byte(fmt.Sprintf(`["e",%d]`, i))}
}

func id(ms uint64) rediswire.StreamID { return rediswire.StreamID{Ms: ms} }

// names lists the payloads of packets, for comparison.
func names(ps []*socketio.Packet) string {
	s := ""
	for _, p := range ps {
		s += string(p.Data) + " "
	}
	return s
}

func TestRecentLogSince(t *testing.T) {
	l := newRecentLog(100, 1<<20)
	to := func(rooms ...string) *rediswire.ClusterData {
		return &rediswire.ClusterData{Opts: &rediswire.Opts{Rooms: rooms}}
	}
	l.add(id(1), recentPacket(1), to("org:1"))
	l.add(id(2), recentPacket(2), to("org:2"))
	l.add(id(3), recentPacket(3), &rediswire.ClusterData{}) // no options: everyone
	l.add(id(4), recentPacket(4), &rediswire.ClusterData{Opts: &rediswire.Opts{Except: []string{"org:1"}}})
	l.add(id(5), recentPacket(5), to("org:1", "org:3"))

	got, ok := l.since(id(1), []string{"org:1"})
	if !ok || names(got) != `["e",3] ["e",5] ` {
		t.Errorf("org:1 since 1: %q, %v", names(got), ok)
	}
	got, ok = l.since(id(2), []string{"org:2"})
	if !ok || names(got) != `["e",3] ["e",4] ` {
		t.Errorf("org:2 since 2: %q, %v", names(got), ok)
	}
	if got, ok := l.since(id(5), []string{"org:1"}); !ok || len(got) != 0 {
		t.Errorf("since the last entry: %q, %v; want nothing, found", names(got), ok)
	}
	// An offset the log does not hold cannot be replayed from it: what
	// came between may be missing.
	for _, from := range []rediswire.StreamID{id(0), {Ms: 2, Seq: 1}, id(6)} {
		if _, ok := l.since(from, []string{"org:1"}); ok {
			t.Errorf("since %s (not in the log): found", from)
		}
	}
	l.reset()
	if _, ok := l.since(id(3), nil); ok {
		t.Error("found after reset")
	}
}

func TestRecentLogBounds(t *testing.T) {
	l := newRecentLog(10, 1<<20)
	for i := 1; i <= 1000; i++ {
		l.add(id(uint64(i)), recentPacket(i), &rediswire.ClusterData{})
	}
	if _, ok := l.since(id(990), nil); ok {
		t.Error("entry 990 kept beyond 10 entries")
	}
	got, ok := l.since(id(991), nil)
	if !ok || len(got) != 9 || string(got[8].Data) != `["e",1000]` {
		t.Errorf("since 991: %q, %v", names(got), ok)
	}
	if len(l.entries) != 10 || cap(l.entries) > 64 {
		t.Errorf("%d entries in an array of %d: the dropped ones are not released", len(l.entries), cap(l.entries))
	}

	// Bytes: each entry is its payload plus 64.
	b := newRecentLog(1000, 3*(64+100))
	big := &socketio.Packet{Data: make([]byte, 100)}
	for i := 1; i <= 5; i++ {
		b.add(id(uint64(i)), big, &rediswire.ClusterData{})
	}
	if _, ok := b.since(id(2), nil); ok {
		t.Error("entry 2 kept beyond the byte bound")
	}
	if got, ok := b.since(id(3), nil); !ok || len(got) != 2 {
		t.Errorf("since 3: %d packets, %v; want 2, found", len(got), ok)
	}

	// An entry out of order (not from one reader) empties the log rather
	// than leave it non-contiguous.
	b.add(id(4), recentPacket(4), &rediswire.ClusterData{})
	if _, ok := b.since(id(3), nil); ok {
		t.Error("an out-of-order entry left older ones")
	}
}

// A snapshot taken by since stays valid while the log goes on: entries
// are never modified in place.
func TestRecentLogSnapshotStable(t *testing.T) {
	l := newRecentLog(4, 1<<20)
	for i := 1; i <= 4; i++ {
		l.add(id(uint64(i)), recentPacket(i), &rediswire.ClusterData{})
	}
	got, _ := l.since(id(1), nil)
	for i := 5; i <= 50; i++ {
		l.add(id(uint64(i)), recentPacket(i), &rediswire.ClusterData{})
	}
	if names(got) != `["e",2] ["e",3] ["e",4] ` {
		t.Errorf("snapshot changed: %q", names(got))
	}
}
