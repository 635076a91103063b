package socketio

import (
	"context"
	"sync"
	"time"
)

// SessionKeeper is implemented by recovery logs whose sessions outlive this
// server (the Redis streams log keeps them in Redis). PersistSession
// alone stores a session when its socket disconnects, which a server that
// dies without a word (kill -9, a crash, a lost machine) never does. For a
// SessionKeeper the namespace also stores the session of every connected
// socket as soon as it connects, and again every third of
// RecoveryOptions.MaxDisconnectionDuration while it stays, each for the
// window plus that interval: a client whose server vanished recovers on
// another server with the state it had at most one interval earlier.
//
// A socket disconnected for a reason that is not recoverable (the client or
// the application ended it) has its session dropped, as a disconnection
// without persistence leaves none with the memory log.
//
// Both methods are called from one goroutine per namespace, never from a
// connection's goroutine; they may block on I/O.
type SessionKeeper interface {
	// KeepSessions stores the sessions of connected sockets, each for ttl.
	KeepSessions(sessions []*SessionState, ttl time.Duration)
	// DropSessions forgets the sessions with these private ids.
	DropSessions(pids []string)
}

// SessionFlusher is implemented by recovery logs whose PersistSession only
// queues the session, to be written elsewhere (PersistSession is called
// where a socket closes, on the engine's heartbeat goroutine among others,
// which must not wait on I/O). Server.Shutdown calls FlushSessions after
// the disconnections and before Close: it returns once what is queued is
// stored, or when ctx ends, with an error saying what was not.
type SessionFlusher interface {
	FlushSessions(ctx context.Context) error
}

// keepBatch bounds the sessions handed to KeepSessions at once.
const keepBatch = 512

// sessionKeeper runs a namespace's SessionKeeper: it stores the session of
// each socket that connects, of every connected socket each interval, and
// drops those that ended.
type sessionKeeper struct {
	// Static after construction.
	nsp      *Namespace
	to       SessionKeeper
	interval time.Duration
	ttl      time.Duration

	mu      sync.Mutex
	started bool
	stopped bool
	fresh   []*Socket // connected since the last round
	drops   []*Socket // ended: their sessions are dropped
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newSessionKeeper(n *Namespace, to SessionKeeper, window time.Duration) *sessionKeeper {
	interval := max(window/3, time.Second)
	return &sessionKeeper{
		nsp: n, to: to, interval: interval, ttl: window + interval,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// connected queues a socket that just connected; the goroutine starts with
// the namespace's first socket.
func (k *sessionKeeper) connected(s *Socket) {
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return
	}
	k.fresh = append(k.fresh, s)
	if !k.started {
		k.started = true
		go k.run()
	}
	k.mu.Unlock()
	k.poke()
}

// ended queues the session of a socket whose disconnection is not
// recoverable, unless a socket with the same id is connected here again (a
// recovered socket replacing a stale one owns the session now).
func (k *sessionKeeper) ended(s *Socket) {
	k.mu.Lock()
	if k.stopped || !k.started {
		k.mu.Unlock()
		return
	}
	k.drops = append(k.drops, s)
	k.mu.Unlock()
	k.poke()
}

func (k *sessionKeeper) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// close stops the goroutine and waits for its current write, at most until
// ctx ends (a write to a stalled store takes as long as the adapter's
// timeout; it is the last one: the goroutine stops between writes).
func (k *sessionKeeper) close(ctx context.Context) {
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return
	}
	k.stopped = true
	started := k.started
	k.mu.Unlock()
	close(k.stop)
	if started {
		select {
		case <-k.done:
		case <-ctx.Done():
		}
	}
}

// stopping reports whether close was called.
func (k *sessionKeeper) stopping() bool {
	select {
	case <-k.stop:
		return true
	default:
		return false
	}
}

func (k *sessionKeeper) run() {
	defer close(k.done)
	tick := time.NewTicker(k.interval)
	defer tick.Stop()
	var states []*SessionState
	for {
		var all bool
		select {
		case <-k.stop:
			return
		case <-k.wake:
		case <-tick.C:
			all = true
		}
		k.mu.Lock()
		fresh, drops := k.fresh, k.drops
		k.fresh, k.drops = nil, nil
		k.mu.Unlock()

		states = states[:0]
		if all {
			for _, s := range k.nsp.sockets.appendAll(nil) {
				states = appendState(states, s)
			}
		} else {
			for _, s := range fresh {
				states = appendState(states, s)
			}
		}
		for len(states) > 0 {
			if k.stopping() {
				clear(states)
				return
			}
			n := min(len(states), keepBatch)
			k.to.KeepSessions(states[:n], k.ttl)
			clear(states[:n])
			states = states[n:]
		}
		// Dropped after the sessions above were written, so that a session
		// read while its socket was still connected is not written back.
		var pids []string
		for _, s := range drops {
			if cur := k.nsp.sockets.get(s.id); cur == nil || cur.pid != s.pid || !cur.Connected() {
				pids = append(pids, s.pid)
			}
		}
		if len(pids) > 0 && !k.stopping() {
			k.to.DropSessions(pids)
		}
	}
}

// appendState appends the session of a connected socket with recovery.
func appendState(dst []*SessionState, s *Socket) []*SessionState {
	if s.pid == "" {
		return dst
	}
	s.mu.Lock()
	if s.state != stateConnected {
		s.mu.Unlock()
		return dst
	}
	rooms := make([]string, 0, len(s.rooms)+1)
	rooms = append(append(rooms, s.id), s.rooms...)
	s.mu.Unlock()
	return append(dst, &SessionState{SID: s.id, PID: s.pid, Rooms: rooms, Data: s.Data()})
}
