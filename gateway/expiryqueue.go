package gateway

import (
	"sync"
	"time"
)

// expiryQueue schedules the token expiry of every session on one timer: a
// binary heap of sessions by due time, and a single time.AfterFunc set to
// the earliest. A timer per connection cost ~180 bytes (the runtime timer
// and the callback's closure) on every idle connection; here a session
// holds its due time and heap index, and the heap 8 bytes of pointer.
//
// Its lock is taken under a session's mu, never the reverse: the timer's
// callback collects the due sessions, releases the lock, then fires them.
type expiryQueue struct {
	fire func(*session) // runs on the timer's goroutine, without q.mu

	mu    sync.Mutex
	start time.Time // the heap's clock: monotonic time since start
	heap  []*session
	timer *time.Timer // set to the earliest due time; nil until the first schedule
	at    int64       // what timer is set to (0: not set)
}

// now returns the queue's clock, monotonic nanoseconds since its start.
func (q *expiryQueue) now() int64 { return int64(time.Since(q.start)) }

// schedule sets sess to fire at t (moving it if it is queued already).
func (q *expiryQueue) schedule(sess *session, t time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.start.IsZero() {
		q.start = time.Now()
	}
	at := int64(t.Sub(q.start))
	sess.dueAt = at
	if sess.dueIdx > 0 {
		q.fix(int(sess.dueIdx) - 1)
	} else {
		q.heap = append(q.heap, sess)
		sess.dueIdx = int32(len(q.heap))
		q.up(len(q.heap) - 1)
	}
	q.resetLocked()
}

// remove takes sess out of the queue, if it is in.
func (q *expiryQueue) remove(sess *session) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := int(sess.dueIdx) - 1
	if i < 0 {
		return
	}
	q.removeAt(i)
	if len(q.heap) == 0 {
		// Give back what a storm of connections grew the heap to.
		q.heap = nil
	}
	// The timer is left as it is: firing early finds nothing due and
	// sets it again.
}

// queued reports whether sess waits in the queue.
func (q *expiryQueue) queued(sess *session) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return sess.dueIdx > 0
}

// len returns how many sessions wait.
func (q *expiryQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.heap)
}

// resetLocked sets the timer to the earliest due time, if it changed.
func (q *expiryQueue) resetLocked() {
	if len(q.heap) == 0 {
		return
	}
	at := q.heap[0].dueAt
	if q.at != 0 && q.at <= at {
		return // already set early enough; it re-arms when it fires
	}
	q.at = max(at, 1)
	d := time.Duration(at - q.now())
	if q.timer == nil {
		q.timer = time.AfterFunc(d, q.run)
	} else {
		q.timer.Reset(d)
	}
}

// run is the timer's callback: it fires every session that is due.
func (q *expiryQueue) run() {
	var due []*session
	q.mu.Lock()
	q.at = 0
	now := q.now()
	for len(q.heap) > 0 && q.heap[0].dueAt <= now {
		due = append(due, q.removeAt(0))
	}
	q.resetLocked()
	q.mu.Unlock()
	for _, sess := range due {
		q.fire(sess)
	}
}

// stop stops the timer (the gateway is shutting down).
func (q *expiryQueue) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.timer != nil {
		q.timer.Stop()
		q.at = 0
	}
}

// The heap, ordered by dueAt; each session knows its index (plus one, so
// that a zero session is not queued).

func (q *expiryQueue) less(i, j int) bool { return q.heap[i].dueAt < q.heap[j].dueAt }

func (q *expiryQueue) swap(i, j int) {
	q.heap[i], q.heap[j] = q.heap[j], q.heap[i]
	q.heap[i].dueIdx, q.heap[j].dueIdx = int32(i+1), int32(j+1)
}

func (q *expiryQueue) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			return
		}
		q.swap(i, p)
		i = p
	}
}

func (q *expiryQueue) down(i int) bool {
	start, n := i, len(q.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && q.less(r, l) {
			c = r
		}
		if !q.less(c, i) {
			break
		}
		q.swap(i, c)
		i = c
	}
	return i > start
}

func (q *expiryQueue) fix(i int) {
	if !q.down(i) {
		q.up(i)
	}
}

func (q *expiryQueue) removeAt(i int) *session {
	last := len(q.heap) - 1
	if i != last {
		q.swap(i, last)
	}
	sess := q.heap[last]
	q.heap[last] = nil
	q.heap = q.heap[:last]
	if i != last {
		q.fix(i)
	}
	sess.dueIdx = 0
	return sess
}
