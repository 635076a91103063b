package engineio

import (
	"context"
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
// goes to a goroutine of that session's own, the blocking writer, which
// writes with blocking calls until the queue is empty, then hands the
// session back to the pool. A flush that finds the write token held (a
// pong or the probe reply being written) hands its batch to a blocking
// writer too, rather than make a pool goroutine wait. Connections without
// a file descriptor (TLS) always take that path. Either way the queue stays
// bounded by MaxQueueBytes.
//
// Every write happens under the connection's write token (writetoken.go),
// and every blocking write sets its own deadline and clears it before the
// token is given up: the non-blocking writev fails outright on a connection
// whose write deadline has passed, so a deadline left behind would cut the
// connection at its next flush.

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

// flushWS writes what the session has queued. Called by a flush worker (or
// SendNow's caller) that owns the session's flushing flag; it gives the flag
// up when the queue is empty, or hands it to a blocking writer.
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
		queued := s.framesOf(c, w.batch, &w.frames)
		clear(w.batch)

		locked := false
		if c.raw != nil {
			var err error
			if locked, err = c.wtok.tryLock(); err != nil {
				s.writeFailed(c, err)
				return
			}
		}
		if !locked {
			// No descriptor for non-blocking writes, or another write in
			// progress: wait for it elsewhere.
			go s.writeBlocking(c, append([][]byte(nil), w.frames...), queued, false)
			return
		}
		written, total, err := w.vec.write(c, w.frames)
		s.srv.stats.Writes.Add(1)
		s.srv.stats.BytesOut.Add(int64(written))
		if err != nil {
			c.wtok.unlock()
			s.writeFailed(c, err)
			return
		}
		if written < total {
			// The socket may have taken part of a frame: the token goes to
			// the blocking writer with the rest, so that no pong or close
			// frame can be written inside it.
			s.srv.stats.WriteStalls.Add(1)
			go s.writeBlocking(c, remaining(w.frames, written), queued, true)
			return
		}
		c.wtok.unlock()
		s.mu.Lock()
		s.queueBytes -= queued
		s.mu.Unlock()
	}
}

// Hold keeps what is queued for the client from now on from being written
// until Release: a reply and what its handler sends right after it (a
// Socket.IO CONNECT reply and the first event of the connection handler)
// then go out in one write instead of one each. It reports false, and
// nothing is held, unless the session is open on a WebSocket with nothing
// being written; only after true must the caller call Release, soon: the
// client receives nothing meanwhile.
func (s *Session) Hold() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateOpen || s.ws == nil || s.ws.raw == nil || s.flushing {
		return false
	}
	// The caller owns the flushing flag: Send and SendNow only queue.
	s.flushing = true
	return true
}

// Release writes what was queued since Hold, on the caller's goroutine
// like SendNow, and ends the hold.
func (s *Session) Release() {
	w := flushWorkers.Get().(*flushWorker)
	s.flushWS(w)
	flushWorkers.Put(w)
}

// framesOf sets *frames to the bytes to write for batch on c and returns
// the queue accounting of the batch.
func (s *Session) framesOf(c *wsConn, batch []*Packet, frames *[][]byte) (queued int) {
	*frames = (*frames)[:0]
	for _, p := range batch {
		queued += len(p.frame)
		*frames = append(*frames, p.frameFor(c.deflate, s.srv.opts.DeflateThreshold))
	}
	return queued
}

// remaining returns the frames not yet (fully) written.
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
// empty. It owns the session's flushing flag, and c's write token from the
// start when holding is set. It gives the token up between batches, so
// that pongs are not held back behind a slow client's whole queue.
func (s *Session) writeBlocking(c *wsConn, pending [][]byte, queued int, holding bool) {
	for {
		if !holding {
			if err := c.lockWithin(s.srv.opts.WriteTimeout); err != nil {
				s.writeFailed(c, err)
				return
			}
		}
		holding = false
		n, err := writeWithProgress(c.conn, pending, s.srv.opts.WriteTimeout)
		c.wtok.unlock()
		s.srv.stats.Writes.Add(1)
		s.srv.stats.BytesOut.Add(n)
		if err != nil {
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
		queued = s.framesOf(c, batch, &pending)
	}
}

// writeWithProgress writes bufs with blocking calls. The client is given
// timeout to take each part, not the whole: a client that reads slowly but
// steadily is not cut off, one that stops reading is, after timeout. The
// deadline is cleared before returning. The caller holds the write token.
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

// writeDirect writes one frame outside the session queue (the probe reply,
// pongs to WebSocket pings), on the reader's goroutine. A client that does
// not let it through within WriteTimeout is not reading.
func (c *wsConn) writeDirect(frame []byte) error {
	if err := c.lockWithin(c.srv.opts.WriteTimeout); err != nil {
		return err
	}
	defer c.wtok.unlock()
	_, err := writeWithProgress(c.conn, net.Buffers{frame}, c.srv.opts.WriteTimeout)
	return err
}

// lockWithin takes c's write token, waiting at most d for its holder.
func (c *wsConn) lockWithin(d time.Duration) error {
	if ok, err := c.wtok.tryLock(); ok || err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.wtok.lock(ctx)
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

// writeFailed gives up the flushing flag, which the caller owns, and
// closes the session after a failed write on c. A client that closed or
// reset its connection is a "transport close", as Node reports it (its
// reader usually notices first); a connection the reader closed under the
// write keeps the reader's reason (the client's close frame, or the
// protocol error it found); anything else, such as the write deadline of a
// client that stopped reading, is a "transport error".
func (s *Session) writeFailed(c *wsConn, err error) {
	s.mu.Lock()
	s.flushing = false
	s.mu.Unlock()
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
