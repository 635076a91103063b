package engineio

import (
	"bufio"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"

	"github.com/operate/realtime/protocol/eio"
)

func (s *Session) upgrader(r *http.Request) (ws.HTTPUpgrader, *wsflate.Extension) {
	u := ws.HTTPUpgrader{Timeout: s.srv.opts.WriteTimeout}
	if c := s.srv.opts.Cookie; c != nil && queryGet(r.URL.RawQuery, "sid") == "" {
		// Node sets the sticky-session cookie on the handshake response
		// only, and for a WebSocket handshake that is the 101.
		u.Header = http.Header{"Set-Cookie": {c.cookie(s.id).String()}}
	}
	var ext *wsflate.Extension
	if s.srv.opts.PerMessageDeflate {
		ext = deflateExtension()
		u.Negotiate = ext.Negotiate
	}
	return u, ext
}

// serveWebSocketHandshake completes a handshake made directly over
// WebSocket: the open packet is the first frame.
func (s *Session) serveWebSocketHandshake(w http.ResponseWriter, r *http.Request) {
	if head, ok := s.srv.plainUpgradeHead(r); ok && s.servePlainWebSocketHandshake(w, head) {
		return
	}
	c, pre, err := s.acceptWebSocket(w, r)
	if err != nil {
		s.closeWith(ReasonTransportError, false)
		return
	}
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		c.close(0)
		return
	}
	// A session closed with flush during Handler.Open or by Shutdown
	// (stateClosing) still gets its queue, the open packet at least, and
	// a close frame: the flush completes the close. Dropping the
	// connection here would leave the session registered in stateClosing
	// until the polling fallback timer (PingInterval+PingTimeout).
	s.ws = c
	schedule := s.wakeLocked()
	s.mu.Unlock()
	if schedule {
		s.srv.flush.schedule(s)
	}
	c.start(pre)
}

// serveUpgrade starts the upgrade of a polling session: the new WebSocket
// is a probe until the client sends "5" over it.
func (s *Session) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	if s.srv.opts.DisableUpgrades || s.srv.opts.DisableWebSocket {
		s.srv.abort(w, true, codeBadRequest, "")
		return
	}
	c, pre, err := s.acceptWebSocket(w, r)
	if err != nil {
		return
	}
	c.probing = true
	s.mu.Lock()
	if s.state != stateOpen || s.probe != nil || s.ws != nil {
		// Already upgrading or upgraded: like Node, accept the WebSocket
		// and close it at once.
		s.mu.Unlock()
		c.close(closeNormal)
		return
	}
	s.probe = c
	s.probeTimer = time.AfterFunc(s.srv.opts.UpgradeTimeout, func() {
		s.mu.Lock()
		timedOut := s.probe == c
		if timedOut {
			s.dropProbeLocked()
		}
		s.mu.Unlock()
		if timedOut {
			c.close(0)
		}
	})
	s.mu.Unlock()
	c.start(pre)
}

// acceptWebSocket performs the HTTP upgrade. pre holds bytes the client
// sent after its handshake that the HTTP server had already buffered.
func (s *Session) acceptWebSocket(w http.ResponseWriter, r *http.Request) (*wsConn, []byte, error) {
	u, ext := s.upgrader(r)
	conn, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, nil, err
	}
	// The connection is ours now, with whatever deadlines the HTTP server
	// (ReadTimeout, WriteTimeout) or the upgrader left on it: from here on
	// each write sets and clears its own, and reads have none.
	_ = conn.SetDeadline(time.Time{})
	return s.newWSConn(conn, ext), buffered(rw), nil
}

// newWSConn wraps a hijacked connection.
func (s *Session) newWSConn(conn net.Conn, ext *wsflate.Extension) *wsConn {
	c := &wsConn{conn: conn, srv: s.srv, sess: s, deflate: deflateAccepted(ext)}
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	c.readFn = c.readNonBlocking
	// Decided before c is visible to other goroutines (close reads it).
	c.polled = s.srv.poller != nil && c.raw != nil && c.raw.Control(func(fd uintptr) { c.fd = int(fd) }) == nil
	return c
}

// buffered returns (a copy of) what the HTTP server's reader holds beyond
// the request, so the hijacked bufio buffers can be dropped.
func buffered(rw *bufio.ReadWriter) []byte {
	if rw == nil || rw.Reader.Buffered() == 0 {
		return nil
	}
	b, _ := rw.Reader.Peek(rw.Reader.Buffered())
	return append([]byte(nil), b...)
}

var errProbeFailed = &wsError{closeNormal, ReasonTransportError, "invalid packet during upgrade"}

// probePacket runs the upgrade handshake of protocol §1.7.
func (c *wsConn) probePacket(p eio.Packet) error {
	s := c.sess
	switch {
	case p.Type == eio.Ping && string(p.Data) == "probe":
		if err := c.writeDirect(s.srv.probeReply.frame); err != nil {
			return err
		}
		// Release a pending GET so the client can pause polling.
		s.mu.Lock()
		s.releasePollLocked()
		s.mu.Unlock()
		return nil
	case p.Type == eio.Upgrade:
		s.mu.Lock()
		// A session closing with packets queued (stateClosing) still
		// upgrades: the WebSocket delivers the queue, then the close frame.
		if s.state == stateClosed || s.probe != c {
			s.mu.Unlock()
			return errProbeFailed
		}
		s.dropProbeLocked()
		s.ws = c
		c.probing = false
		s.releasePollLocked()
		schedule := s.wakeLocked()
		var fin *wsConn
		if len(s.queue) == 0 {
			s.flushing = false
			schedule = false
			if s.state == stateClosing {
				fin = s.finishCloseLocked()
			}
		}
		s.mu.Unlock()
		s.srv.stats.Upgrades.Add(1)
		if schedule {
			s.srv.flush.schedule(s)
		}
		if fin != nil {
			fin.close(closeNormal)
		}
		return nil
	case p.Type == eio.Noop:
		return nil
	}
	return errProbeFailed
}
