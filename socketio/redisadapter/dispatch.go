package redisadapter

import (
	"hash/maphash"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/operate/realtime/socketio/internal/rediswire"
)

// job is a received message waiting for its worker.
type job struct {
	h       handler
	channel string
	payload []byte
}

// dispatcher hands received messages to a fixed set of workers, each with
// a bounded queue. The worker is chosen by the uid of the server that
// published the message (found without decoding it; see
// rediswire.PublisherUID), or by channel when the message has none: the
// messages of one publisher (its broadcasts to any room and its requests)
// and of one channel are handled in the order Redis delivered them, as on
// a Node server, while different publishers are handled in parallel.
type dispatcher struct {
	// Static after construction.
	seed   maphash.Seed
	queues []chan job
	log    logger

	mu     sync.RWMutex // guards closed against enqueue
	closed bool
	wg     sync.WaitGroup
}

func newDispatcher(workers, queueSize int, log logger) *dispatcher {
	d := &dispatcher{seed: maphash.MakeSeed(), queues: make([]chan job, workers), log: log}
	for i := range d.queues {
		q := make(chan job, queueSize)
		d.queues[i] = q
		d.wg.Add(1)
		go d.work(q)
	}
	return d
}

// enqueue queues j without blocking; false means the queue was full (or
// the dispatcher closed) and j was dropped.
func (d *dispatcher) enqueue(j job) bool {
	q := d.queues[0]
	if len(d.queues) > 1 {
		var h uint64
		if uid := rediswire.PublisherUID(j.payload); uid != nil {
			h = maphash.Bytes(d.seed, uid)
		} else {
			h = maphash.String(d.seed, j.channel)
		}
		q = d.queues[h%uint64(len(d.queues))]
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return false
	}
	select {
	case q <- j:
		return true
	default:
		return false
	}
}

func (d *dispatcher) work(q chan job) {
	defer d.wg.Done()
	for j := range q {
		d.run(j)
	}
}

// run calls a handler; a panic (in an application's server-side event
// handler, say) is logged instead of taking the process down.
func (d *dispatcher) run(j job) {
	defer func() {
		if r := recover(); r != nil {
			d.log.l.Error("redisadapter: panic handling a message", "channel", j.channel, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	j.h(j.channel, j.payload)
}

// close stops accepting messages, lets the workers finish what is queued
// and waits for them.
func (d *dispatcher) close() {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		for _, q := range d.queues {
			close(q)
		}
	}
	d.mu.Unlock()
	d.wg.Wait()
}

// logger wraps the configured logger with rate-limited reports of events
// that may repeat at message rate.
type logger struct {
	l *slog.Logger
}

func (l logger) info(msg string, args ...any) { l.l.Info(msg, args...) }
func (l logger) warn(msg string, args ...any) { l.l.Warn(msg, args...) }

// lastDropLog rate-limits the "dropped" warning to one per 10 s per process.
var lastDropLog atomic.Int64

func (l logger) dropped() {
	now := time.Now().UnixNano()
	last := lastDropLog.Load()
	if now-last < int64(10*time.Second) || !lastDropLog.CompareAndSwap(last, now) {
		return
	}
	l.l.Warn("redisadapter: a worker queue is full; dropping received messages (see Stats.Dropped)")
}

func (l logger) decodeError(channel string, err error) {
	l.l.Debug("redisadapter: ignoring a malformed message", "channel", channel, "err", err)
}
