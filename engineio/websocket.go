package engineio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"

	"github.com/operate/realtime/protocol/eio"
)

// readBufSize is the pooled read buffer. An idle connection the poller
// watches holds none: it takes one from the pool only while bytes are being
// read and parsed.
const readBufSize = 4096

var readBufPool = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// WebSocket close codes used here (RFC 6455 section 7.4.1).
const (
	closeNormal        = 1000
	closeProtocolError = 1002
	closeInvalidData   = 1007
	closeTooBig        = 1009
)

// errPeerClosed ends the read loop when the client sent a close frame.
var errPeerClosed = errors.New("engineio: websocket closed by peer")

// wsError carries the close code to send for a protocol violation.
type wsError struct {
	code   int
	reason CloseReason
	msg    string
}

func (e *wsError) Error() string { return "engineio: websocket: " + e.msg }

// wsConn is one WebSocket connection: either a session's transport, or a
// probe that may become one (polling-to-WebSocket upgrade).
type wsConn struct {
	// Static after construction.
	conn    net.Conn
	raw     syscall.RawConn // nil when conn has no file descriptor (e.g. TLS)
	srv     *Server
	sess    *Session
	deflate bool

	// polled: readability comes from the server's poller (no reader
	// goroutine); fd is the descriptor it watches. Static after start.
	polled bool
	fd     int
	// Guarded by the poller's mutex.
	pollID        uint64
	pollForgotten bool

	// wmu serializes writes to conn (flushes, pongs, the close frame). A
	// flush that wrote part of a frame keeps it until the rest is written,
	// so nothing lands inside a frame. blockingWrite is set while its
	// holder may wait on the client (a blocking write, up to WriteTimeout)
	// rather than for one non-blocking writev.
	wmu           sync.Mutex
	blockingWrite atomic.Bool
	closeOnce     sync.Once
	// closedFor is why the reader closed conn, set before it does: a write
	// that fails on the closed conn may reach the session's close first
	// and must report the same reason.
	closedFor atomic.Pointer[CloseReason]

	// Owned by the reader goroutine.
	probing bool
	rbuf    []byte // nil when idle
	pooled  *[]byte
	r, w    int
	msg     []byte // fragments of a message in progress
	msgOp   byte
	msgDefl bool
	inMsg   bool
	readFn  func(fd uintptr) bool
	readDst []byte
	readN   int
	readErr error
}

func (s *Session) upgrader(r *http.Request) (ws.HTTPUpgrader, *wsflate.Extension) {
	u := ws.HTTPUpgrader{Timeout: s.srv.opts.WriteTimeout}
	if c := s.srv.opts.Cookie; c != nil && r.URL.Query().Get("sid") == "" {
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
	s.mu.Unlock()
	time.AfterFunc(s.srv.opts.UpgradeTimeout, func() {
		s.mu.Lock()
		timedOut := s.probe == c
		if timedOut {
			s.probe = nil
		}
		s.mu.Unlock()
		if timedOut {
			c.close(0)
		}
	})
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
	c := &wsConn{conn: conn, srv: s.srv, sess: s, deflate: deflateAccepted(ext)}
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	c.readFn = c.readNonBlocking
	// Decided before c is visible to other goroutines (close reads it).
	c.polled = s.srv.poller != nil && c.raw != nil && c.raw.Control(func(fd uintptr) { c.fd = int(fd) }) == nil
	return c, buffered(rw), nil
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

// close ends the connection; with a non-zero code a close frame is sent
// first if no write is in progress. The close frame must be the last frame
// on the wire, so the write lock is held from it until conn is closed: a
// flush waiting for the lock then finds the connection closed.
func (c *wsConn) close(code int) {
	c.closeOnce.Do(func() {
		if code != 0 && c.lockForCloseFrame() {
			defer c.wmu.Unlock()
			_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.conn.Write(ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusCode(code), ""))))
		}
		if c.polled {
			c.srv.poller.forget(c) // before the descriptor can be reused
		}
		_ = c.conn.Close()
	})
}

// lockForCloseFrame takes the write lock unless its holder is waiting on
// the client: a flush holds it for one non-blocking writev, worth waiting
// for so that the close frame is sent; a blocked write may hold it until
// WriteTimeout, and then the connection closes without a close frame.
func (c *wsConn) lockForCloseFrame() bool {
	for {
		if c.wmu.TryLock() {
			return true
		}
		if c.blockingWrite.Load() {
			return false
		}
		runtime.Gosched()
	}
}

// writeDirect writes one frame outside the session queue (probe replies,
// pongs to WebSocket pings).
func (c *wsConn) writeDirect(frame []byte) error {
	c.wmu.Lock()
	c.blockingWrite.Store(true)
	defer func() {
		c.blockingWrite.Store(false)
		c.wmu.Unlock()
	}()
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
	_, err := c.conn.Write(frame)
	// A deadline left behind would fail the next non-blocking writev.
	_ = c.conn.SetWriteDeadline(time.Time{})
	return err
}

// start begins reading: bytes the HTTP server had already buffered are
// handled first. On Linux the connection then waits in the server's poller
// and costs no goroutine while idle; otherwise (or without a descriptor,
// as with TLS) a reader goroutine waits for it.
func (c *wsConn) start(pre []byte) {
	if len(pre) > 0 {
		c.rbuf = append(make([]byte, 0, max(len(pre), readBufSize)), pre...)
		c.rbuf = c.rbuf[:cap(c.rbuf)]
		c.w = len(pre)
	}
	if c.polled {
		c.serveReadable()
		return
	}
	go c.readLoop()
}

// serveReadable reads and handles everything the socket has without
// blocking, then hands the connection back to the poller; on end of stream
// or error it ends the connection. At most one runs per connection: the
// poller's registration is one-shot and only re-armed here.
func (c *wsConn) serveReadable() {
	err := c.drain()
	if err == nil {
		if err = c.srv.poller.arm(c); err == nil {
			return
		}
	}
	c.releaseBuf()
	c.readerDone(err)
}

// drain parses what is buffered and reads until the socket would block.
// The read buffer is released when no partial frame remains.
func (c *wsConn) drain() error {
	for {
		if err := c.parse(); err != nil {
			return err
		}
		if c.rbuf == nil {
			c.takeBuf()
		}
		c.compact()
		c.readDst = c.rbuf[c.w:]
		if err := c.raw.Read(c.readFn); err != nil {
			return err
		}
		c.readDst = nil
		switch {
		case c.readErr == syscall.EAGAIN:
			if c.r == c.w {
				c.releaseBuf()
			}
			return nil
		case c.readErr == syscall.EINTR:
			continue
		case c.readErr != nil:
			return c.readErr
		case c.readN == 0:
			return io.EOF
		}
		c.w += c.readN
	}
}

// readLoop reads and dispatches frames until the connection ends, for
// connections the poller does not watch.
func (c *wsConn) readLoop() {
	var err error
	for err == nil {
		if err = c.parse(); err == nil {
			err = c.fill()
		}
	}
	c.releaseBuf()
	c.readerDone(err)
}

// readerDone closes what the read error ended.
func (c *wsConn) readerDone(err error) {
	var we *wsError
	reason := ReasonTransportClose
	code := 0
	switch {
	case errors.As(err, &we):
		reason, code = we.reason, we.code
	case errors.Is(err, errPeerClosed):
		code = closeNormal
	}
	s := c.sess
	s.mu.Lock()
	active := s.ws == c
	if s.probe == c {
		s.probe = nil
	}
	s.mu.Unlock()
	// Close the connection (with the close frame the error calls for:
	// 1002, 1007, 1009...) before closing the session: the session's close
	// would close the connection without a frame, and closeOnce would then
	// drop this one.
	c.closedFor.Store(&reason)
	c.close(code)
	if active {
		s.closeWith(reason, false)
	}
}

// fill reads at least one more byte into rbuf, blocking in the runtime's
// netpoller. Only connections the poller does not watch read this way, and
// they hold their read buffer while idle.
func (c *wsConn) fill() error {
	if c.rbuf == nil {
		c.takeBuf()
	}
	c.compact()
	n, err := c.conn.Read(c.rbuf[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func (c *wsConn) readNonBlocking(fd uintptr) bool {
	n, err := syscall.Read(int(fd), c.readDst)
	if n < 0 {
		n = 0
	}
	c.readN, c.readErr = n, err
	return true
}

func (c *wsConn) takeBuf() {
	c.pooled = readBufPool.Get().(*[]byte)
	c.rbuf = *c.pooled
	c.r, c.w = 0, 0
}

func (c *wsConn) releaseBuf() {
	if c.pooled != nil {
		readBufPool.Put(c.pooled)
	}
	c.pooled, c.rbuf = nil, nil
	c.r, c.w = 0, 0
}

// compact moves unparsed bytes to the front so there is room to read.
func (c *wsConn) compact() {
	if c.r > 0 {
		n := copy(c.rbuf, c.rbuf[c.r:c.w])
		c.r, c.w = 0, n
	}
	if c.w == len(c.rbuf) {
		c.grow(2 * len(c.rbuf))
	}
}

// grow replaces rbuf by a buffer of at least n bytes (a frame larger than
// the pooled buffer; bounded by MaxPayload in parse).
func (c *wsConn) grow(n int) {
	nb := make([]byte, n)
	copy(nb, c.rbuf[c.r:c.w])
	c.w -= c.r
	c.r = 0
	if c.pooled != nil {
		readBufPool.Put(c.pooled)
		c.pooled = nil
	}
	c.rbuf = nb
}

// parse handles every complete frame in rbuf.
func (c *wsConn) parse() error {
	maxPayload := int64(c.srv.opts.MaxPayload)
	for {
		b := c.rbuf[c.r:c.w]
		if len(b) < 2 {
			break
		}
		fin := b[0]&0x80 != 0
		rsv := b[0] & 0x70
		op := b[0] & 0x0f
		masked := b[1]&0x80 != 0
		n := int64(b[1] & 0x7f)
		hl := 2
		switch n {
		case 126:
			hl += 2
		case 127:
			hl += 8
		}
		if masked {
			hl += 4
		}
		if len(b) < hl {
			break
		}
		switch n {
		case 126:
			n = int64(binary.BigEndian.Uint16(b[2:4]))
		case 127:
			n = int64(binary.BigEndian.Uint64(b[2:10]))
		}
		if !masked {
			return &wsError{closeProtocolError, ReasonTransportError, "unmasked client frame"}
		}
		isControl := op&0x8 != 0
		if isControl && (!fin || n > 125) {
			return &wsError{closeProtocolError, ReasonTransportError, "invalid control frame"}
		}
		compressed := rsv == 0x40 && c.deflate && (op == opText || op == opBinary)
		if rsv != 0 && !compressed {
			return &wsError{closeProtocolError, ReasonTransportError, "reserved bits set"}
		}
		if n < 0 || n+int64(len(c.msg)) > maxPayload {
			return &wsError{closeTooBig, ReasonTransportError, "message too big"}
		}
		total := hl + int(n)
		if len(b) < total {
			if total > len(c.rbuf)-c.r {
				c.grow(total)
			}
			break
		}
		var mask [4]byte
		copy(mask[:], b[hl-4:hl])
		payload := b[hl:total]
		ws.Cipher(payload, mask, 0)
		c.r += total
		if err := c.frame(op, fin, compressed, payload); err != nil {
			return err
		}
	}
	if c.r == c.w && c.rbuf != nil {
		c.releaseBuf()
	}
	return nil
}

// frame handles one unmasked frame.
func (c *wsConn) frame(op byte, fin, compressed bool, payload []byte) error {
	switch op {
	case 0x0: // continuation
		if !c.inMsg {
			return &wsError{closeProtocolError, ReasonTransportError, "unexpected continuation frame"}
		}
		c.msg = append(c.msg, payload...)
		if !fin {
			return nil
		}
		c.inMsg = false
		err := c.message(c.msgOp, c.msgDefl, c.msg)
		c.msg = nil
		return err
	case opText, opBinary:
		if c.inMsg {
			return &wsError{closeProtocolError, ReasonTransportError, "expected continuation frame"}
		}
		if fin {
			return c.message(op, compressed, payload)
		}
		c.inMsg, c.msgOp, c.msgDefl = true, op, compressed
		c.msg = append([]byte(nil), payload...)
		return nil
	case opClose:
		return errPeerClosed
	case opPing:
		return c.writeDirect(controlFrame(opPong, payload).frame)
	case opPong:
		return nil
	}
	return &wsError{closeProtocolError, ReasonTransportError, "unknown opcode"}
}

// message handles one complete WebSocket message: one Engine.IO packet.
func (c *wsConn) message(op byte, compressed bool, data []byte) error {
	if compressed {
		var err error
		if data, err = inflate(data, c.srv.opts.MaxPayload); err != nil {
			return &wsError{closeTooBig, ReasonTransportError, err.Error()}
		}
	}
	var p eio.Packet
	if op == opBinary {
		p = eio.Packet{Type: eio.Message, Data: data, Binary: true}
	} else {
		if !utf8.Valid(data) {
			return &wsError{closeInvalidData, ReasonTransportError, "invalid UTF-8 in text frame"}
		}
		var err error
		if p, err = eio.DecodeText(data); err != nil {
			return &wsError{closeNormal, ReasonParseError, "invalid packet"}
		}
	}
	if c.probing {
		return c.probePacket(p)
	}
	if p.Type != eio.Message || c.polled {
		// A polled connection is read by a short-lived goroutine already.
		c.sess.dispatch(p)
		return nil
	}
	// Handlers may run deep (decoding, application code). Running them on a
	// short-lived goroutine keeps a long-lived reader's stack at its
	// minimum (2 KiB instead of 4 KiB or more). Inbound messages are rare
	// next to deliveries, so the goroutine start is cheap where it matters.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.sess.dispatch(p)
	}()
	wg.Wait()
	return nil
}

var errProbeFailed = &wsError{closeNormal, ReasonTransportError, "invalid packet during upgrade"}

// probePacket runs the upgrade handshake of protocol §1.7.
func (c *wsConn) probePacket(p eio.Packet) error {
	s := c.sess
	switch {
	case p.Type == eio.Ping && string(p.Data) == "probe":
		if err := c.writeDirect(NewPacket(eio.Pong, []byte("probe")).frame); err != nil {
			return err
		}
		// Release a pending GET so the client can pause polling.
		s.mu.Lock()
		if s.pollWake != nil {
			select {
			case s.pollWake <- struct{}{}:
			default:
			}
		}
		s.mu.Unlock()
		return nil
	case p.Type == eio.Upgrade:
		s.mu.Lock()
		if s.state != stateOpen || s.probe != c {
			s.mu.Unlock()
			return errProbeFailed
		}
		s.probe = nil
		s.ws = c
		c.probing = false
		if s.pollWake != nil {
			select {
			case s.pollWake <- struct{}{}:
			default:
			}
		}
		schedule := s.wakeLocked()
		if len(s.queue) == 0 {
			s.flushing = false
			schedule = false
		}
		s.mu.Unlock()
		s.srv.stats.Upgrades.Add(1)
		if schedule {
			s.srv.flush.schedule(s)
		}
		return nil
	case p.Type == eio.Noop:
		return nil
	}
	return errProbeFailed
}
