package engineio

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/operate/realtime/protocol/eio"
)

// servePollGet answers a long-polling GET: everything queued, joined into
// one payload, as soon as there is something; the request waits otherwise.
// Only one GET may be pending: a second one closes the session (Node does
// the same) and the pending one receives the close packet.
func (s *Session) servePollGet(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.getActive {
		s.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		s.closeWith(ReasonTransportError, false)
		return
	}
	s.getActive = true
	s.mu.Unlock()
	// The HTTP server's ReadTimeout would end the wait early: net/http
	// cancels the request's context when its background read times out. A
	// GET is answered within a ping interval (the ping, at the latest).
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.srv.opts.PingInterval + s.srv.opts.PingTimeout))
	s.mu.Lock()
	var (
		wake            chan struct{}
		noopTimer       *time.Timer
		noopC           <-chan time.Time
		woken, upgraded bool
	)
	for len(s.queue) == 0 && s.state == stateOpen {
		if s.ws != nil {
			upgraded = true
			break
		}
		if s.probe != nil {
			if woken {
				break // answered with a noop below
			}
			if noopTimer == nil {
				// A GET that arrives during an upgrade is released with a
				// noop after at most 100 ms (Node's check interval), unless
				// the upgrade completes first; it then fails like any
				// polling request after an upgrade.
				noopTimer = time.NewTimer(100 * time.Millisecond)
				defer noopTimer.Stop()
				noopC = noopTimer.C
			}
		}
		if wake == nil {
			wake = make(chan struct{}, 1)
			s.pollWake = wake
		}
		s.mu.Unlock()
		select {
		case <-wake:
			woken = true
		case <-noopC:
			woken = true
		case <-r.Context().Done():
			// The client went away while polling: Node reports this as a
			// transport error ("poll connection closed prematurely").
			s.mu.Lock()
			s.getActive = false
			s.pollWake = nil
			s.mu.Unlock()
			s.closeWith(ReasonTransportError, false)
			return
		}
		s.mu.Lock()
	}
	s.pollWake = nil
	s.getActive = false
	var (
		body         []byte
		compressible bool
		finish       *wsConn
	)
	switch {
	case upgraded:
		s.mu.Unlock()
		s.srv.abort(w, false, codeBadRequest, "")
		return
	case len(s.queue) > 0:
		// While closing, a close packet behind messages waits for the next
		// GET, as in Node: socket.io-client handles a close at once but
		// the messages before it a tick later, so in one payload the close
		// would win (a server DISCONNECT would reach the app as "transport
		// close", followed by a reconnection attempt's worth of confusion).
		deferClose := s.queueHasMessageLocked()
		body, compressible = s.pollPayloadLocked()
		if s.state == stateClosing && !deferClose {
			body = append(body, eio.Separator, '1')
			finish = s.finishCloseLocked()
		}
	case s.state == stateClosing:
		body = []byte{'1'}
		finish = s.finishCloseLocked()
	case s.state != stateOpen && !s.closedByClient:
		body = []byte{'1'}
	default:
		// An upgrade is in progress (or the client closed the session):
		// release the poll with a noop so the client can go on.
		body = []byte{'6'}
	}
	lingered := s.state == stateClosed && s.closedByClient
	s.mu.Unlock()
	if lingered {
		s.srv.remove(s) // the late GET is answered; nothing else is
	}
	if finish != nil {
		finish.close(closeNormal)
	}
	s.writePoll(w, r, body, compressible)
}

// queueHasMessageLocked reports whether a message packet is queued.
func (s *Session) queueHasMessageLocked() bool {
	for _, p := range s.queue {
		if p.binary || p.frame[p.off] == '0'+byte(eio.Message) {
			return true
		}
	}
	return false
}

// pollPayloadLocked drains the queue into one payload; compressible
// reports whether some packet of it allows HTTP compression (Node
// compresses a payload when any of its packets has the compress option).
func (s *Session) pollPayloadLocked() (body []byte, compressible bool) {
	n := 0
	for _, p := range s.queue {
		n += p.pollingLen() + 1
		compressible = compressible || !p.noCompress
	}
	body = make([]byte, 0, n)
	for i, p := range s.queue {
		if i > 0 {
			body = append(body, eio.Separator)
		}
		body = p.appendPolling(body)
	}
	clear(s.queue)
	s.queue = s.queue[:0]
	s.queueBytes = 0
	return body, compressible
}

// writePoll answers a GET with a payload, compressed when the client
// accepts it and the payload is worth it (see httpcompress.go).
func (s *Session) writePoll(w http.ResponseWriter, r *http.Request, body []byte, compressible bool) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	if compressible && !s.srv.opts.DisableHTTPCompression && len(body) >= s.srv.opts.HTTPCompressionThreshold {
		if coding := negotiateCoding(r.Header.Get("Accept-Encoding")); coding != "" {
			body = compressBody(body, coding)
			h.Set("Content-Encoding", coding)
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	// The HTTP server's WriteTimeout ran from the request's arrival, and a
	// long poll may have waited longer than that: the write gets its own.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.srv.opts.WriteTimeout))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	s.srv.stats.Writes.Add(1)
	s.srv.stats.BytesOut.Add(int64(len(body)))
}

// servePollPost receives a payload of packets from the client.
func (s *Session) servePollPost(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.postActive {
		s.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		s.closeWith(ReasonTransportError, false)
		return
	}
	s.postActive = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.postActive = false
		s.mu.Unlock()
	}()

	if r.Header.Get("Content-Type") == "application/octet-stream" {
		// v4 never sends raw binary over polling; Node closes the session.
		s.srv.abort(w, false, codeBadRequest, "")
		s.closeWith(ReasonTransportError, false)
		return
	}
	limit := s.srv.opts.MaxPayload
	if r.ContentLength > int64(limit) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		s.srv.abort(w, false, codeBadRequest, "")
		s.closeWith(ReasonTransportError, false)
		return
	}
	if len(body) > limit {
		// Node answers 413 and keeps the session.
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	if err := eio.DecodePayload(body, func(p eio.Packet) error {
		s.dispatch(p)
		return nil
	}); err != nil {
		s.srv.abort(w, false, codeBadRequest, "")
		s.closeWith(ReasonParseError, false)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok"))
}
