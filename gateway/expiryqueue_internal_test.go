package gateway

import (
	"testing"
	"time"
)

// The queue fires sessions in due order, never one that was removed, and a
// rescheduled session at its new time only.
func TestExpiryQueueOrderRemoveReschedule(t *testing.T) {
	fired := make(chan string, 10)
	q := &expiryQueue{fire: func(s *session) { fired <- s.userID }}
	mk := func(name string) *session { return &session{userID: name} }
	a, b, c, d, e := mk("a"), mk("b"), mk("c"), mk("d"), mk("e")
	now := time.Now()
	q.schedule(a, now.Add(120*time.Millisecond))
	q.schedule(b, now.Add(40*time.Millisecond))
	q.schedule(c, now.Add(80*time.Millisecond))
	q.schedule(d, now.Add(60*time.Millisecond))
	q.schedule(e, now.Add(time.Hour))
	q.remove(d)
	q.schedule(e, now.Add(20*time.Millisecond))  // moved earlier: the timer follows
	q.schedule(b, now.Add(100*time.Millisecond)) // moved later
	if q.len() != 4 {
		t.Fatalf("%d sessions queued, want 4", q.len())
	}
	var order []string
	for range 4 {
		select {
		case name := <-fired:
			order = append(order, name)
		case <-time.After(5 * time.Second):
			t.Fatalf("fired %v, then nothing", order)
		}
	}
	if got := order[0] + order[1] + order[2] + order[3]; got != "ecba" {
		t.Errorf("fired in the order %q, want ecba", got)
	}
	select {
	case name := <-fired:
		t.Errorf("%s fired too (removed or already fired)", name)
	case <-time.After(100 * time.Millisecond):
	}
	for _, s := range []*session{a, b, c, d, e} {
		if s.dueIdx != 0 || q.queued(s) {
			t.Errorf("%s still queued at %d", s.userID, s.dueIdx)
		}
	}
}

// Thousands of sessions keep the heap consistent through removals.
func TestExpiryQueueHeapInvariant(t *testing.T) {
	q := &expiryQueue{fire: func(*session) {}}
	base := time.Now().Add(time.Hour)
	var ss []*session
	for i := range 2000 {
		s := &session{}
		ss = append(ss, s)
		q.schedule(s, base.Add(time.Duration((i*7919)%2000)*time.Millisecond))
	}
	queued := len(ss)
	for i := 0; i < len(ss); i += 3 {
		q.remove(ss[i])
		queued--
	}
	for i := 1; i < len(ss); i += 5 { // some removed above: queued again
		if i%3 == 0 {
			queued++
		}
		q.schedule(ss[i], base.Add(-time.Duration(i)*time.Microsecond))
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, s := range q.heap {
		if int(s.dueIdx) != i+1 {
			t.Fatalf("heap[%d] thinks it is at %d", i, s.dueIdx-1)
		}
		if p := (i - 1) / 2; i > 0 && q.heap[p].dueAt > s.dueAt {
			t.Fatalf("heap[%d] due before its parent", i)
		}
	}
	if len(q.heap) != queued {
		t.Fatalf("%d queued, want %d", len(q.heap), queued)
	}
	q.timer.Stop()
}
