package engineio

import (
	"sync"
	"time"
)

// wheel drives every session's heartbeat from one goroutine: a hashed timing
// wheel whose slots hold the sessions due in that tick. A session is in the
// wheel at most once; when its entry fires it decides (Session.heartbeat)
// whether to ping, to time out, or to be re-inserted later. This costs one
// slice slot per session instead of a runtime timer and a goroutine per fire.
type wheel struct {
	tick  time.Duration
	start time.Time

	mu    sync.Mutex
	slots [][]wheelEntry
	cur   int64 // the tick being (or last) processed

	stop chan struct{}
	done chan struct{}
}

type wheelEntry struct {
	s   *Session
	due int64 // absolute tick
}

func newWheel(tick, horizon time.Duration) *wheel {
	n := int(horizon/tick) + 2
	w := &wheel{
		tick:  tick,
		start: time.Now(),
		slots: make([][]wheelEntry, n),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go w.run()
	return w
}

// now returns the time since the wheel started, from the monotonic clock.
func (w *wheel) now() time.Duration { return time.Since(w.start) }

// schedule makes s's heartbeat run at (or within one tick after) at.
func (w *wheel) schedule(s *Session, at time.Duration) {
	due := int64((at + w.tick - 1) / w.tick)
	w.mu.Lock()
	if due <= w.cur {
		due = w.cur + 1
	}
	i := due % int64(len(w.slots))
	w.slots[i] = append(w.slots[i], wheelEntry{s, due})
	w.mu.Unlock()
}

func (w *wheel) run() {
	defer close(w.done)
	t := time.NewTicker(w.tick)
	defer t.Stop()
	var batch []wheelEntry
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		target := int64(w.now() / w.tick)
		for {
			w.mu.Lock()
			if w.cur >= target {
				w.mu.Unlock()
				break
			}
			w.cur++
			cur := w.cur
			i := cur % int64(len(w.slots))
			batch, w.slots[i] = w.slots[i], batch[:0]
			// Entries of a later round stay in the slot.
			keep := w.slots[i]
			for _, e := range batch {
				if e.due > cur {
					keep = append(keep, e)
				}
			}
			w.slots[i] = keep
			w.mu.Unlock()

			now := w.now()
			for j, e := range batch {
				if e.due <= cur {
					if next, ok := e.s.heartbeat(now); ok {
						w.schedule(e.s, next)
					}
				}
				batch[j] = wheelEntry{}
			}
		}
	}
}

func (w *wheel) close() {
	close(w.stop)
	<-w.done
}
