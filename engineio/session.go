package engineio

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/operate/realtime/protocol/eio"
)

type sessionState uint8

const (
	stateOpen sessionState = iota
	// stateClosing: no new packets are accepted; what is queued is still
	// delivered, then the transport closes.
	stateClosing
	stateClosed
)

// Session is one Engine.IO connection, whichever transport carries it.
// All methods are safe for concurrent use.
type Session struct {
	// Static after construction (handler: set before the first message).
	id      string
	srv     *Server
	req     *Request
	handler SessionHandler

	// inMu serializes inbound dispatch (a polling POST, the WebSocket
	// reader, an upgrading probe) so the handler sees messages in order.
	inMu sync.Mutex
	// notice is where telling the handler that the session closed stands:
	// noticeNone, then noticePending once the session stops accepting
	// packets, then noticeDone once handler.Closed was called. See
	// notifyClosed.
	notice atomic.Uint32

	mu sync.Mutex // guards everything below
	// The small fields first, packed together: every idle connection
	// holds a Session.
	state sessionState
	// cutOff: the queue overflowed and the session is being closed as a
	// slow consumer; Send refuses everything meanwhile.
	cutOff   bool
	flushing bool // WebSocket: a flush is scheduled or running
	// Long-polling: a GET or a POST is being served.
	getActive  bool
	postActive bool
	// closedByClient: the client sent a close packet; a pending GET is
	// then answered with a noop rather than a close (as Node does).
	closedByClient bool

	reason CloseReason

	// Outbound queue, shared by both transports. queueBytes counts queued
	// and in-flight bytes, so the MaxQueueBytes bound holds while a slow
	// write is in progress.
	queue      []*Packet
	queueBytes int

	// WebSocket transport (nil while polling).
	ws *wsConn

	// Long-polling transport.
	pollWake chan struct{} // non-nil while a GET waits for packets

	// Upgrade in progress, and the timer that ends it after UpgradeTimeout
	// (stopped as soon as the probe is settled: it holds the session).
	probe      *wsConn
	probeTimer *time.Timer
	// closeTimer ends a polling session closing with packets queued whose
	// client does not come back for them; stopped once it is closed.
	closeTimer *time.Timer

	// Heartbeat, in wheel time. pingDeadline is non-zero while a ping
	// awaits its pong.
	pingDeadline time.Duration
	nextPing     time.Duration
}

func newSession(srv *Server, id string, req *Request) *Session {
	return &Session{id: id, srv: srv, req: req, nextPing: srv.wheel.now() + srv.opts.PingInterval}
}

// ID returns the session id (the Engine.IO "sid").
func (s *Session) ID() string { return s.id }

// Request returns the handshake request's details.
func (s *Session) Request() *Request { return s.req }

// Transport returns "polling" or "websocket".
func (s *Session) Transport() string {
	if s.isWebSocket() {
		return "websocket"
	}
	return "polling"
}

func (s *Session) isWebSocket() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ws != nil
}

// Send queues packets for the client, in order and contiguously (a
// Socket.IO packet and its binary attachments must not be interleaved with
// another sender's). The packets are shared, never copied. Send never blocks
// on the network: it fails with ErrSlowConsumer, closing the session, when
// the queue would exceed Options.MaxQueueBytes.
func (s *Session) Send(ps ...*Packet) error {
	_, err := s.enqueue(ps, false)
	return err
}

// SendNow is Send, except that when nothing is being written the queue is
// written at once by the calling goroutine instead of by the flusher. It
// is for replies whose latency matters more than merging them with what
// follows (a CONNECT reply), not for broadcasts.
func (s *Session) SendNow(ps ...*Packet) error {
	schedule, err := s.enqueue(ps, true)
	if schedule {
		w := flushWorkers.Get().(*flushWorker)
		s.flushWS(w)
		flushWorkers.Put(w)
	}
	return err
}

// enqueue appends ps to the queue; it reports whether the caller must see
// to a WebSocket flush (it then owns the flushing flag).
func (s *Session) enqueue(ps []*Packet, inline bool) (bool, error) {
	n := 0
	for _, p := range ps {
		n += len(p.frame)
	}
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return false, ErrSessionClosed
	}
	if s.cutOff {
		s.mu.Unlock()
		return false, ErrSlowConsumer
	}
	if s.queueBytes+n > s.srv.opts.MaxQueueBytes {
		s.cutOff = true
		s.mu.Unlock()
		s.srv.stats.SlowConsumers.Add(1)
		// Closed on its own goroutine: Send runs inside broadcasts, which
		// must neither wait for a close (socket I/O) nor run the handler's
		// Closed (disconnect handlers, which may broadcast themselves) in
		// their midst.
		go s.closeWith(ReasonSlowConsumer, false)
		return false, ErrSlowConsumer
	}
	s.queue = append(s.queue, ps...)
	s.queueBytes += n
	schedule := s.wakeLocked()
	if schedule && inline && s.ws.raw == nil {
		inline = false
	}
	s.mu.Unlock()
	s.srv.stats.PacketsOut.Add(int64(len(ps)))
	if schedule && !inline {
		s.srv.flush.schedule(s)
		return false, nil
	}
	return schedule, nil
}

// wakeLocked tells the active transport that packets are queued. It reports
// whether a WebSocket flush must be scheduled (outside the lock).
func (s *Session) wakeLocked() bool {
	if s.ws != nil {
		if !s.flushing {
			s.flushing = true
			return true
		}
		return false
	}
	s.releasePollLocked()
	return false
}

// releasePollLocked wakes the pending GET, if any.
func (s *Session) releasePollLocked() {
	if s.pollWake != nil {
		select {
		case s.pollWake <- struct{}{}:
		default:
		}
	}
}

// Close closes the session with ReasonForcedClose after delivering what is
// already queued.
func (s *Session) Close() { s.closeWith(ReasonForcedClose, true) }

// CloseReason closes the session with the given reason. With flush, queued
// packets are delivered first.
func (s *Session) CloseWith(reason CloseReason, flush bool) { s.closeWith(reason, flush) }

func (s *Session) closeWith(reason CloseReason, flush bool) {
	s.mu.Lock()
	if s.state == stateClosed || (s.state == stateClosing && flush) {
		s.mu.Unlock()
		return
	}
	wasOpen := s.state == stateOpen
	if wasOpen {
		s.reason = reason
		// Set under mu, with the state: a Message dispatched once Send
		// fails must find the session closed (onPacketLocked).
		s.notice.Store(noticePending)
	}
	if flush && len(s.queue) > 0 {
		// Deliver what is queued first; the WebSocket writer or the GET
		// that drains the queue completes the close (finishCloseLocked).
		// An upgrade in progress may complete and deliver it instead: the
		// client paused polling for it, and engine.io-client does not resume
		// polling when its probe fails, so closing the probe here would
		// leave the queue undelivered (and a graceful shutdown waiting).
		s.state = stateClosing
		schedule := s.wakeLocked()
		if s.ws == nil {
			// A polling client that never comes back must not keep the
			// session forever.
			s.closeTimer = time.AfterFunc(s.srv.opts.PingInterval+s.srv.opts.PingTimeout, func() { s.closeWith(reason, false) })
		}
		s.mu.Unlock()
		if schedule {
			s.srv.flush.schedule(s)
		}
		if wasOpen {
			s.closed()
		}
		return
	}
	ws := s.finishCloseLocked()
	s.releasePollLocked()
	s.mu.Unlock()
	if ws != nil {
		if flush {
			ws.close(1000)
		} else {
			ws.close(0)
		}
	}
	if wasOpen {
		s.closed()
	}
}

// The states of Session.notice.
const (
	noticeNone    uint32 = iota // open
	noticePending               // closed; the handler is not told yet
	noticeDone                  // the handler was told
)

// closed runs once, after the session stopped accepting packets (the
// notice is pending): it tells the handler.
func (s *Session) closed() {
	if s.reason == ReasonPingTimeout {
		s.srv.stats.HeartbeatsLost.Add(1)
	}
	s.notifyClosed()
}

// notifyClosed calls handler.Closed exactly once, and never during a
// Message call. Whoever holds inMu may be inside Message (which may itself
// close the session), so notifyClosed only tries inMu: if it is held, its
// holder calls notifyClosed again right after letting it go (dispatch,
// setHandler), and finds the notice pending, since it was set before the
// attempt.
func (s *Session) notifyClosed() {
	if s.notice.Load() != noticePending {
		return
	}
	if !s.inMu.TryLock() {
		return
	}
	// Without a handler the session was closed during Handler.Open: the
	// notice stays pending and setHandler delivers Closed afterwards.
	if s.handler != nil && s.notice.CompareAndSwap(noticePending, noticeDone) {
		s.mu.Lock()
		reason := s.reason
		s.mu.Unlock()
		s.handler.Closed(reason)
	}
	s.inMu.Unlock()
}

// setHandler installs the handler Open returned. The session may already
// be closed (the handler closed it, or Shutdown ran during Open): Closed is
// then delivered now. The handler is written under inMu, under which
// notifyClosed and dispatch read it.
func (s *Session) setHandler(h SessionHandler) {
	s.inMu.Lock()
	s.handler = h
	s.inMu.Unlock()
	s.notifyClosed()
}

// finishCloseLocked moves the session to its final state: the queue is
// dropped and the session leaves the server's registry. It returns the
// WebSocket to close, if any; the caller closes it after unlocking.
func (s *Session) finishCloseLocked() *wsConn {
	s.state = stateClosed
	clear(s.queue)
	s.queue = nil
	if s.closeTimer != nil {
		s.closeTimer.Stop()
		s.closeTimer = nil
	}
	if probe := s.probe; probe != nil {
		s.dropProbeLocked()
		go probe.close(0) // not under s.mu; it never waits on the client
	}
	ws := s.ws
	if s.closedByClient && ws == nil && !s.getActive {
		// The client closed its polling session, maybe while its last GET
		// was still on the way: keep answering that GET with a noop for a
		// moment, as a server handling requests in arrival order would.
		time.AfterFunc(time.Second, func() { s.srv.remove(s) })
		return nil
	}
	// Lock order: Session.mu before Server.mu; the server never takes a
	// session lock while holding its own.
	s.srv.remove(s)
	return ws
}

// dropProbeLocked forgets the upgrade probe and stops its timer.
func (s *Session) dropProbeLocked() {
	s.probe = nil
	if s.probeTimer != nil {
		s.probeTimer.Stop()
		s.probeTimer = nil
	}
}

// dispatch hands decoded inbound packets to the session, serialized.
func (s *Session) dispatch(p eio.Packet) {
	s.inMu.Lock()
	s.onPacketLocked(p)
	s.inMu.Unlock()
	s.notifyClosed()
}

// onPacketLocked handles one inbound packet; inMu is held.
func (s *Session) onPacketLocked(p eio.Packet) {
	if p.Type == eio.Close {
		// The client is leaving, also from a session that is closing and
		// waits to deliver what it queued: nobody will read it, and a
		// polling session would otherwise wait for a GET that never comes
		// (holding up a graceful shutdown until its deadline).
		s.mu.Lock()
		s.closedByClient = true
		s.mu.Unlock()
		s.closeWith(ReasonTransportClose, false)
		return
	}
	if s.notice.Load() != noticeNone {
		return
	}
	switch p.Type {
	case eio.Message:
		s.handler.Message(p.Data, p.Binary)
	case eio.Pong:
		s.onPong()
	case eio.Ping:
		// v4 clients never ping; Node closes on "invalid heartbeat direction".
		s.closeWith(ReasonTransportError, false)
	default:
		// open, upgrade and noop outside an upgrade are ignored, as in Node.
	}
}

// heartbeat runs from the wheel. It returns when to run next, or false when
// the session is gone.
func (s *Session) heartbeat(now time.Duration) (time.Duration, bool) {
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return 0, false
	}
	if s.pingDeadline != 0 {
		if now >= s.pingDeadline {
			s.mu.Unlock()
			s.closeWith(ReasonPingTimeout, false)
			return 0, false
		}
		// Look again within PingInterval, not only at the deadline: see
		// below.
		d := min(s.pingDeadline, now+s.srv.opts.PingInterval)
		s.mu.Unlock()
		return d, true
	}
	if now < s.nextPing {
		d := s.nextPing
		s.mu.Unlock()
		return d, true
	}
	if len(s.queue) == 0 && cap(s.queue) > 8 {
		s.queue = nil // idle for a ping interval: give back a burst's queue
	}
	// The deadline runs from when the ping was due, not from when the wheel
	// got to it, so a session is dead exactly PingInterval+PingTimeout after
	// its last pong, as with Node's timers.
	s.pingDeadline = s.nextPing + s.srv.opts.PingTimeout
	// The next look is PingInterval after this ping if that comes before
	// the deadline. onPong cannot move the session's wheel entry, and the
	// next ping is due PingInterval after the pong: with PingInterval <
	// PingTimeout, waking only at the deadline would send it late, and
	// with a deadline computed from when it was due, leave the client
	// less than PingTimeout to answer it.
	d := min(s.pingDeadline, s.nextPing+s.srv.opts.PingInterval)
	s.mu.Unlock()
	if s.Send(s.srv.pingPkt) != nil {
		return 0, false
	}
	return d, true
}

func (s *Session) onPong() {
	now := s.srv.wheel.now()
	s.mu.Lock()
	if s.pingDeadline != 0 {
		s.pingDeadline = 0
		s.nextPing = now + s.srv.opts.PingInterval
	}
	s.mu.Unlock()
}

// abandonIdlePoll ends a polling session that is closing and has no GET
// waiting: its client did not come back for the rest (see Server.Shutdown).
func (s *Session) abandonIdlePoll() {
	s.mu.Lock()
	idle := s.state == stateClosing && s.ws == nil && !s.getActive
	reason := s.reason
	s.mu.Unlock()
	if idle {
		s.closeWith(reason, false)
	}
}

// lingering reports whether the session only remains to answer a late GET
// after the client closed it.
func (s *Session) lingering() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateClosed
}

// expired reports whether the session is past its pong deadline.
func (s *Session) expired() bool {
	now := s.srv.wheel.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pingDeadline != 0 {
		return now >= s.pingDeadline
	}
	// The wheel may not have sent the due ping yet; the deadline that ping
	// would have is already known.
	return now >= s.nextPing+s.srv.opts.PingTimeout
}

// maxKeptQueueCap is the queue capacity a session keeps between flushes, so
// that bursts do not reallocate it every time; the heartbeat releases it
// once the session is idle (see heartbeat).
const maxKeptQueueCap = 1024

// takeQueueLocked removes and returns everything queued, into dst.
func (s *Session) takeQueueLocked(dst []*Packet) []*Packet {
	dst = append(dst, s.queue...)
	clear(s.queue)
	if cap(s.queue) > maxKeptQueueCap {
		s.queue = nil
	} else {
		s.queue = s.queue[:0]
	}
	return dst
}

// Writable reports whether a packet sent now would go out without waiting:
// a WebSocket with nothing queued, or a polling session with a GET waiting.
// Volatile broadcasts skip sessions that are not writable.
func (s *Session) Writable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateOpen {
		return false
	}
	if s.ws != nil {
		return len(s.queue) == 0 && !s.flushing
	}
	return s.pollWake != nil && len(s.queue) == 0
}
