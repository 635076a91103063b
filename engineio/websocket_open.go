package engineio

import (
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// A WebSocket handshake made directly (not an upgrade) answers with the
// 101 response and then the open packet. Through gobwas/ws's upgrader they
// take two writes, the second on a flusher goroutine; for the plain
// requests that every client sends (no extension to negotiate, no cookie
// to set) the response is written here instead, with the open packet, in
// one writev on the handshake's goroutine. Anything else, including every
// request the upgrader would refuse, still goes through the upgrader, which
// then answers it as before.

// webSocketGUID is RFC 6455's key suffix for Sec-WebSocket-Accept.
const webSocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// plainUpgradeHead returns the 101 response to r when r is a WebSocket
// handshake the upgrader would accept with nothing to negotiate and the
// server has no header to add; ok is false otherwise.
func (s *Server) plainUpgradeHead(r *http.Request) (head []byte, ok bool) {
	if s.opts.Cookie != nil || r.Method != http.MethodGet || !r.ProtoAtLeast(1, 1) || r.Host == "" {
		return nil, false
	}
	h := r.Header
	if s.opts.PerMessageDeflate && len(h["Sec-Websocket-Extensions"]) > 0 {
		return nil, false
	}
	if !strings.EqualFold(first(h["Upgrade"]), "websocket") || !strings.EqualFold(first(h["Connection"]), "upgrade") ||
		first(h["Sec-Websocket-Version"]) != "13" {
		return nil, false
	}
	key := first(h["Sec-Websocket-Key"])
	if len(key) != 24 {
		return nil, false
	}
	const prefix = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
	head = make([]byte, 0, len(prefix)+28+4)
	head = append(head, prefix...)
	var in [24 + len(webSocketGUID)]byte
	copy(in[copy(in[:], key):], webSocketGUID)
	digest := sha1.Sum(in[:])
	head = base64.StdEncoding.AppendEncode(head, digest[:])
	return append(head, "\r\n\r\n"...), true
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// servePlainWebSocketHandshake is serveWebSocketHandshake for a request
// plainUpgradeHead answered: head and the queued open packet go out in
// one write. It reports false, having done nothing, when the connection
// cannot be hijacked (the upgrader then answers).
func (s *Session) servePlainWebSocketHandshake(w http.ResponseWriter, head []byte) bool {
	conn, pre, err := hijack(w)
	if err != nil {
		return false
	}
	c := s.newWSConn(conn, nil)
	// The token first: once c is the session's transport, a close may
	// want to write its close frame, which must follow the 101.
	_, _ = c.wtok.tryLock() // c is new: nobody else has it
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		_, _ = writeWithProgress(conn, net.Buffers{head}, s.srv.opts.WriteTimeout)
		c.wtok.unlock()
		c.close(0)
		return true
	}
	// Closing (closed with flush during Handler.Open or by Shutdown): the
	// queue still goes out, and the flush below completes the close, as
	// in serveWebSocketHandshake.
	s.ws = c
	if s.flushing || c.raw == nil {
		// Someone else flushes (never seen: nothing flushes a session
		// without a transport), or no descriptor for non-blocking writes
		// (TLS): the 101 alone, the queue the usual way.
		schedule := s.wakeLocked()
		s.mu.Unlock()
		_, err := writeWithProgress(conn, net.Buffers{head}, s.srv.opts.WriteTimeout)
		c.wtok.unlock()
		if err != nil {
			c.close(0)
		}
		if schedule {
			s.srv.flush.schedule(s)
		}
		c.start(pre)
		return true
	}
	// As a flush (flushWS), with the 101 before the frames and the write
	// token already held.
	s.flushing = true
	fw := flushWorkers.Get().(*flushWorker)
	defer flushWorkers.Put(fw)
	fw.batch = s.takeQueueLocked(fw.batch[:0])
	s.mu.Unlock()
	queued := s.framesOf(c, fw.batch, &fw.frames)
	clear(fw.batch)
	fw.frames = slices.Insert(fw.frames, 0, head)
	written, total, err := fw.vec.write(c, fw.frames)
	s.srv.stats.Writes.Add(1)
	s.srv.stats.BytesOut.Add(int64(max(0, written-len(head)))) // the 101 is not Engine.IO's
	switch {
	case err != nil:
		c.wtok.unlock()
		s.writeFailed(c, err)
		return true
	case written < total:
		s.srv.stats.WriteStalls.Add(1)
		go s.writeBlocking(c, remaining(fw.frames, written), queued, true)
	default:
		c.wtok.unlock()
		s.mu.Lock()
		s.queueBytes -= queued
		s.mu.Unlock()
		s.flushWS(fw) // whatever was queued meanwhile; it gives the flag up
	}
	c.start(pre)
	return true
}

// hijack takes the connection from w, its deadlines cleared (whatever the
// HTTP server set is not ours, see acceptWebSocket), with what the client
// sent after the request. ServeFast's writer gives it without buffers.
func hijack(w http.ResponseWriter) (net.Conn, []byte, error) {
	if fw, ok := w.(*fastWriter); ok {
		return fw.take()
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, buffered(rw), nil
}
