package engineio

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// The WebSocket write path.
//
// Send only appends a pointer to the session queue and, if no flush is
// pending for that session, hands the session to the flusher: a fixed pool
// of goroutines (one per CPU) that take everything queued for a session and
// write it with one writev system call, without blocking. Producers never
// touch the socket, so a broadcast costs one enqueue per recipient, and
// frames that pile up while a flush waits are merged into the next write.
//
// If the socket cannot take everything (the client reads slowly), the rest
// goes to a goroutine of that session's own that writes with blocking calls
// and a deadline until the queue is empty, then hands the session back to
// the pool. Connections without a file descriptor (TLS) always take that
// path. Either way the queue stays bounded by MaxQueueBytes.

type flusher struct {
	srv  *Server
	ch   chan *Session
	stop chan struct{}
	wg   sync.WaitGroup
}

func newFlusher(srv *Server) *flusher {
	f := &flusher{srv: srv, ch: make(chan *Session, 16384), stop: make(chan struct{})}
	n := runtime.GOMAXPROCS(0)
	f.wg.Add(n)
	for range n {
		go f.work()
	}
	return f
}

// schedule queues a session for flushing. It blocks while the flusher is
// saturated, which slows producers to the speed of the network.
func (f *flusher) schedule(s *Session) {
	select {
	case f.ch <- s:
	case <-f.stop:
	}
}

func (f *flusher) close() {
	close(f.stop)
	f.wg.Wait()
}

// flushWorker holds a flusher goroutine's reusable buffers.
type flushWorker struct {
	batch  []*Packet
	frames [][]byte
	vec    writevState
}

// flushWorkers serve SendNow, which flushes on the caller's goroutine.
var flushWorkers = sync.Pool{New: func() any { return newFlushWorker() }}

func newFlushWorker() *flushWorker {
	w := &flushWorker{}
	w.vec.init()
	return w
}

func (f *flusher) work() {
	defer f.wg.Done()
	w := newFlushWorker()
	for {
		select {
		case s := <-f.ch:
			s.flushWS(w)
		case <-f.stop:
			return
		}
	}
}

// flushWS writes what the session has queued. Called by a flush worker for
// a session whose flushing flag it owns.
func (s *Session) flushWS(w *flushWorker) {
	for {
		s.mu.Lock()
		c := s.ws
		if c == nil || len(s.queue) == 0 {
			s.stopFlushing()
			return
		}
		w.batch = s.takeQueueLocked(w.batch[:0])
		s.mu.Unlock()

		queued := 0
		w.frames = w.frames[:0]
		for _, p := range w.batch {
			queued += len(p.frame)
			w.frames = append(w.frames, p.frameFor(c.deflate, s.srv.opts.DeflateThreshold))
		}
		clear(w.batch)
		if c.raw == nil {
			go s.writeBlocking(c, append([][]byte(nil), w.frames...), queued, false)
			return
		}
		c.wmu.Lock()
		written, total, err := w.vec.write(c, w.frames)
		s.srv.stats.Writes.Add(1)
		s.srv.stats.BytesOut.Add(int64(written))
		if err != nil {
			c.wmu.Unlock()
			s.writeFailed(c, err)
			return
		}
		if written < total {
			// The socket may have taken part of a frame: the write lock
			// goes to the blocking writer with the rest, so that no pong
			// or close frame can be written inside it.
			c.blockingWrite.Store(true)
			s.srv.stats.WriteStalls.Add(1)
			go s.writeBlocking(c, remaining(w.frames, written), queued, true)
			return
		}
		c.wmu.Unlock()
		s.mu.Lock()
		s.queueBytes -= queued
		s.mu.Unlock()
	}
}

// remaining returns copies of the frames not yet (fully) written.
func remaining(frames [][]byte, written int) [][]byte {
	var rest [][]byte
	for _, f := range frames {
		if written >= len(f) {
			written -= len(f)
			continue
		}
		rest = append(rest, f[written:])
		written = 0
	}
	return rest
}

// writeBlocking writes pending (whose queue accounting is queued bytes),
// then keeps draining the session queue with blocking writes until it is
// empty. It owns the session's flushing flag, and c's write lock from the
// start when locked is set.
func (s *Session) writeBlocking(c *wsConn, pending [][]byte, queued int, locked bool) {
	for {
		if !locked {
			c.wmu.Lock()
			c.blockingWrite.Store(true)
		}
		locked = false
		n, err := writeWithProgress(c.conn, pending, s.srv.opts.WriteTimeout)
		c.blockingWrite.Store(false)
		c.wmu.Unlock()
		s.srv.stats.Writes.Add(1)
		s.srv.stats.BytesOut.Add(n)
		if err != nil {
			s.mu.Lock()
			s.flushing = false
			s.mu.Unlock()
			s.writeFailed(c, err)
			return
		}
		s.mu.Lock()
		s.queueBytes -= queued
		if len(s.queue) == 0 || s.ws != c {
			s.stopFlushing()
			return
		}
		batch := s.takeQueueLocked(nil)
		s.mu.Unlock()
		pending, queued = pending[:0], 0
		for _, p := range batch {
			queued += len(p.frame)
			pending = append(pending, p.frameFor(c.deflate, s.srv.opts.DeflateThreshold))
		}
	}
}

// writeWithProgress writes bufs with blocking calls. The client is given
// timeout to take each part, not the whole: a client that reads slowly but
// steadily is not cut off, one that stops reading is, after timeout. The
// deadline is cleared before returning: one left behind would fail the next
// non-blocking writev on the connection.
func writeWithProgress(conn net.Conn, bufs net.Buffers, timeout time.Duration) (int64, error) {
	defer func() { _ = conn.SetWriteDeadline(time.Time{}) }()
	var total int64
	for {
		_ = conn.SetWriteDeadline(time.Now().Add(timeout))
		n, err := bufs.WriteTo(conn) // consumes what it wrote from bufs
		total += n
		if err == nil || n == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return total, err
		}
	}
}

// stopFlushing gives up the flushing flag and unlocks s.mu, which the
// caller holds. A closing session whose queue is drained is finished here.
func (s *Session) stopFlushing() {
	s.flushing = false
	var fin *wsConn
	if s.state == stateClosing {
		fin = s.finishCloseLocked()
	}
	s.mu.Unlock()
	if fin != nil {
		fin.close(closeNormal)
	}
}

// writeFailed closes the session after a failed write on c. A client that
// closed or reset its connection is a "transport close", as Node reports
// it (its reader usually notices first); a connection the reader closed
// under the write keeps the reader's reason (the client's close frame, or
// the protocol error it found); anything else, such as the write deadline
// of a client that stopped reading, is a "transport error".
func (s *Session) writeFailed(c *wsConn, err error) {
	reason := ReasonTransportError
	switch {
	case errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET):
		reason = ReasonTransportClose
	case errors.Is(err, net.ErrClosed):
		if r := c.closedFor.Load(); r != nil {
			reason = *r
		}
	}
	s.closeWith(reason, false)
}
