package socketio

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// White-box: the recovery log with room histories. A room's history is
// bounded by its own size, so a busy room cannot trim a quiet one's; a
// position is covered only while no source the reader reads dropped a
// packet after it; a forgotten (empty, expired) room history leaves a floor
// below which positions are gaps; pages stop at the scan bound.
func TestSessionStoreRoomHistories(t *testing.T) {
	st := newMemoryLog(&RecoveryOptions{
		MaxDisconnectionDuration: time.Minute, MaxPackets: 3,
		HistoryRooms: func(r string) bool { return strings.HasPrefix(r, "org:") },
		HistorySize:  2, HistoryTTL: time.Hour,
	}, nil)
	rec := func(rooms ...string) string {
		p, err := NewPacket("e", rooms)
		if err != nil {
			t.Fatal(err)
		}
		return st.record(p, &BroadcastOptions{Rooms: rooms}).Offset
	}
	quiet := rec("org:q")
	for range 10 {
		rec("org:busy")
	}
	quietReader := []string{"org:q", "sid"}
	if missed, _, ok := st.since(quiet, quietReader); !ok || len(missed) != 0 {
		t.Fatalf("the quiet room's reader after a busy room's 10 packets: %d missed, ok %v", len(missed), ok)
	}
	if _, _, ok := st.since(quiet, []string{"org:busy"}); ok {
		t.Fatal("the busy room's history was trimmed past the offset, and it was covered")
	}
	q2 := rec("org:q")
	q3 := rec("org:q", "org:busy") // kept in both, read once
	if missed, _, ok := st.since(quiet, quietReader); !ok || len(missed) != 2 || missed[0].Offset != q2 || missed[1].Offset != q3 {
		t.Fatalf("missed %v, ok %v", missed, ok)
	}
	rec("org:q") // the quiet history keeps 2: q3 and this one; q2 is dropped
	if _, _, ok := st.since(quiet, quietReader); ok {
		t.Fatal("covered past a dropped packet")
	}
	if _, err := st.history(HistoryQuery{Since: quiet, Rooms: quietReader, Limit: 10}); !errors.Is(err, ErrHistoryGap) {
		t.Fatalf("history past a dropped packet: %v", err)
	}
	page, err := st.history(HistoryQuery{Since: q2, Rooms: quietReader, Limit: 1})
	if err != nil || len(page.Packets) != 1 || page.Packets[0].Offset != q3 || !page.More || page.Through != q3 {
		t.Fatalf("page from q2, limit 1: %+v, %v", page, err)
	}
	// Broadcasts to every socket go to the shared log, read by everyone.
	all := rec()
	if page, err := st.history(HistoryQuery{Since: page.Through, Rooms: quietReader, Limit: 10}); err != nil || len(page.Packets) != 2 || page.Packets[1].Offset != all || page.More {
		t.Fatalf("page after q3: %+v, %v", page, err)
	}

	// A room history forgotten after its TTL leaves a floor: an older
	// position of a reader in that room is a gap, a newer one is not.
	st.mu.Lock()
	later := time.Now().Add(2 * time.Hour)
	st.sweepLocked(later)                    // their packets expire: the histories are empty...
	st.sweepLocked(later.Add(2 * time.Hour)) // ...and forgotten a TTL later
	forgotten := len(st.rooms) == 0 && st.gcFloor > 0
	st.mu.Unlock()
	if !forgotten {
		t.Fatal("the expired room histories were not forgotten")
	}
	if _, _, ok := st.since(q2, []string{"org:q"}); ok {
		t.Fatal("a position below the floor of a forgotten history was covered")
	}
	fresh := rec("org:other")
	if _, _, ok := st.since(fresh, []string{"org:q"}); !ok {
		t.Fatal("a position above the floor was not covered")
	}

	// The scan bound: a page stops after MaxHistoryScan packets, More set,
	// Through the last one examined.
	many := newMemoryLog(&RecoveryOptions{MaxPackets: 2 * MaxHistoryScan}, nil)
	for range MaxHistoryScan + 5 {
		p, _ := NewPacket("e")
		many.record(p, &BroadcastOptions{Rooms: []string{"org:x"}})
	}
	page, err = many.history(HistoryQuery{Rooms: []string{"org:y"}, Limit: 10})
	if err != nil || len(page.Packets) != 0 || !page.More || page.Through != many.offset(MaxHistoryScan) {
		t.Fatalf("a page over the scan bound: %d packets, more %v, through %s, %v", len(page.Packets), page.More, page.Through, err)
	}
}
