package engineio

import (
	"errors"
	"io"
	"sync"
	"syscall"
)

// readBufSize is the pooled read buffer. An idle connection the poller
// watches holds none: it takes one from the pool only while bytes are being
// read and parsed.
const readBufSize = 4096

var readBufPool = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

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
		if len(pre) == 0 {
			// Nothing to handle yet, and most likely nothing to read: the
			// client sends its first frame once it has the 101, which
			// left a moment ago. Reading now would cost a system call that
			// says EAGAIN; the registration reports anything already there.
			c.arm()
			return
		}
		c.serveReadable()
		return
	}
	go c.readLoop()
}

// arm hands c to the poller, ending it if that fails.
func (c *wsConn) arm() {
	if err := c.srv.poller.arm(c); err != nil {
		c.releaseBuf()
		c.readerDone(err)
	}
}

// serveReadable reads and handles everything the socket has without
// blocking, then hands the connection back to the poller; on end of stream
// or error it ends the connection. At most one runs per connection: the
// poller's registration is one-shot and only re-armed here.
func (c *wsConn) serveReadable() {
	growStack()
	err := c.drain()
	if err == nil {
		if err = c.srv.poller.arm(c); err == nil {
			return
		}
	}
	c.releaseBuf()
	c.readerDone(err)
}

// drain parses what is buffered and reads until the socket would block,
// or until a read leaves room in the buffer: the socket then most likely
// holds nothing more, and the read that would say so (EAGAIN) is left to
// the poller, whose level-triggered registration reports anything that
// arrived since. That is one system call less per message a client sends.
// The read buffer is released when no partial frame remains.
func (c *wsConn) drain() error {
	for drained := false; ; {
		if err := c.parse(); err != nil {
			return err
		}
		if drained {
			if c.r == c.w {
				c.releaseBuf()
			}
			return nil
		}
		if c.rbuf == nil {
			c.takeBuf()
		}
		c.compact()
		if err := c.raw.Read(c.readFn); err != nil {
			return err
		}
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
		}
		drained = c.w < len(c.rbuf) // the read left room (readNonBlocking advanced w)
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
		s.dropProbeLocked()
	}
	s.mu.Unlock()
	// Close the connection (with the close frame the error calls for:
	// 1002, 1007, 1009...) before closing the session: the session's close
	// would close the connection without a frame, and closeOnce would then
	// drop this one.
	c.closedFor.Store(&reason)
	c.close(code)
	if code == 0 {
		// The client closed its side (or the connection broke): a
		// connection lingering after the server's close frame is done.
		c.shutdown()
	}
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

// readNonBlocking is readFn: it reads what is there into rbuf after w,
// leaving the outcome in readErr (io.EOF for the peer's end of stream).
// It works on the connection's own fields, so that reading allocates
// nothing and keeps no argument fields on the idle connection.
func (c *wsConn) readNonBlocking(fd uintptr) bool {
	n, err := syscall.Read(int(fd), c.rbuf[c.w:])
	switch {
	case n > 0:
		c.w += n
	case err == nil:
		err = io.EOF
	}
	c.readErr = err
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
