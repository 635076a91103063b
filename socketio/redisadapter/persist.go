package redisadapter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/operate/realtime/internal/logbudget"
	"github.com/operate/realtime/socketio"
)

// persister stores the sessions of disconnected sockets off the caller's
// goroutine. PersistSession is called where a socket closes: on the
// engine's heartbeat goroutine (a ping timeout), which drives every
// session of the server, and during Shutdown. A Redis round trip there
// would stall every heartbeat of the node, and Shutdown, for as long as
// Redis is slow or down. So sessions go into a bounded queue, written by
// one goroutine per adapter, each write bounded by Config.PublishTimeout;
// a session that finds the queue full is dropped and counted
// (Stats.SessionsDropped): its client reconnects as a new socket.
//
// The goroutine runs only while there is something to write. It is not
// stopped by the adapter's Close: a namespace removed when its last socket
// leaves (socketio's CleanupEmptyChildNamespaces) is closed before that
// socket's session is persisted, which must still be stored.
type persister struct {
	// Static after construction.
	a   *streamsAdapter
	max int
	log *logbudget.Budget

	mu      sync.Mutex
	queue   []*socketio.SessionState
	running bool          // the goroutine writes (the queue, or a batch taken from it)
	idle    chan struct{} // closed when the goroutine ends, for flush
}

func newPersister(a *streamsAdapter, max int) *persister {
	return &persister{a: a, max: max, log: logbudget.New(0.1, 1)}
}

// add queues a session; it never waits.
func (p *persister) add(s *socketio.SessionState) {
	p.mu.Lock()
	if len(p.queue) >= p.max {
		p.mu.Unlock()
		p.dropped(1, "the queue is full (Redis slow or down)")
		return
	}
	p.queue = append(p.queue, s)
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		go p.run()
	}
}

func (p *persister) dropped(n int, why string) {
	p.a.c.stats.sessionsDropped.Add(uint64(n))
	p.log.Log(p.a.c.log.l, slog.LevelWarn, "redisadapter: disconnected sockets' sessions not stored: "+why+"; their clients will not recover (see Stats.SessionsDropped)",
		"namespace", p.a.host.Name(), "sessions", n)
}

// run writes the queue in batches until it is empty.
func (p *persister) run() {
	for {
		p.mu.Lock()
		n := min(len(p.queue), keepBatch)
		if n == 0 {
			p.running = false
			if p.idle != nil {
				close(p.idle)
				p.idle = nil
			}
			p.mu.Unlock()
			return
		}
		batch := p.queue[:n:n]
		p.queue = p.queue[n:]
		if len(p.queue) == 0 {
			p.queue = nil // do not keep a burst's array
		}
		p.mu.Unlock()
		p.a.keepSessions(context.Background(), batch, p.a.window)
	}
}

// keepBatch bounds the sessions written in one round trip.
const keepBatch = 512

// flush waits until every queued session is written, or ctx ends: what is
// still queued then is dropped and counted (the write in flight ends by
// itself, within Config.PublishTimeout).
func (p *persister) flush(ctx context.Context) error {
	p.mu.Lock()
	if !p.running {
		p.mu.Unlock()
		return nil
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	idle := p.idle
	p.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	left := len(p.queue)
	p.queue = nil
	p.mu.Unlock()
	if left > 0 {
		p.dropped(left, "the shutdown's deadline passed")
	}
	return fmt.Errorf("redisadapter: namespace %s: sessions of disconnected sockets not stored before the deadline (%d dropped): %w", p.a.host.Name(), left, ctx.Err())
}
