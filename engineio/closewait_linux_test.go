//go:build linux

package engineio_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/operate/realtime/engineio"
)

// A client that stopped reading (a laptop gone to sleep, a frozen tab)
// while the server was writing to it leaves the server's socket buffer
// full. Closing its session must not wait for that client: Shutdown closes
// every session in turn, and a close frame written on Shutdown's goroutine
// would cost it a second per such client, whatever its context says.
func TestShutdownDoesNotWaitForClientsThatStoppedReading(t *testing.T) {
	t.Parallel()
	var conns serverConns
	e := newEnv(t, &engineio.Options{PingInterval: time.Minute, PingTimeout: time.Minute}, newRecorder(false), conns.capture)
	const stuck = 12
	for range stuck {
		c, r := openSlowReader(e)
		fillSendBuffer(t, e, r, conns.of(t, c.conn))
	}

	const grace = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	start := time.Now()
	_ = e.srv.Shutdown(ctx)
	// Without a client to wait for, Shutdown returns at once; waiting for
	// each of them takes stuck seconds.
	if d := time.Since(start); d > stuck*time.Second/2 {
		t.Fatalf("Shutdown with a %v deadline took %v: it waited for %d clients that do not read", grace, d, stuck)
	}
}

// serverConns records the server's side of each accepted connection, by
// the client's address.
type serverConns struct{ m sync.Map }

// capture configures the HTTP server to record its connections, and gives
// each a small send buffer, which a client that does not read fills soon.
func (sc *serverConns) capture(hs *http.Server) {
	hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(64 << 10)
		}
		sc.m.Store(c.RemoteAddr().String(), c)
		return ctx
	}
}

// of returns the server's side of the client connection c.
func (sc *serverConns) of(t *testing.T, c net.Conn) net.Conn {
	t.Helper()
	v, ok := sc.m.Load(c.LocalAddr().String())
	if !ok {
		t.Fatalf("no server connection for %s", c.LocalAddr())
	}
	return v.(net.Conn)
}

// fillSendBuffer sends frames to a client that does not read, each written
// whole by the flusher, until the server's socket can take no more: the
// next write, even of a few bytes, would block. The frames are 2048 bytes,
// a size the kernel queues in whole buffers, so that the socket is full
// right after one of them is written, with nothing left in the session's
// queue and no write in progress.
func fillSendBuffer(t *testing.T, e *env, r *sessionRec, server net.Conn) {
	t.Helper()
	// 4-byte frame header, the packet type, the data.
	p := engineio.NewPacket(4, bytes.Repeat([]byte("f"), 2048-4-1))
	stalls := e.srv.Stats().WriteStalls.Load()
	for i := 0; !sendBufferFull(t, server); i++ {
		if i > 10000 {
			t.Fatal("the socket buffer never filled up")
		}
		if err := r.sess.Send(p); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the frame to be written", func() bool {
			return r.sess.Writable() || e.srv.Stats().WriteStalls.Load() != stalls
		})
		if e.srv.Stats().WriteStalls.Load() != stalls {
			t.Fatal("a frame did not fit in the socket before it was full: the test's assumption about the kernel's buffers does not hold")
		}
	}
}

// soMeminfo is SO_MEMINFO (include/uapi/asm-generic/socket.h), missing from
// package syscall; it reads struct sock's memory counters.
const soMeminfo = 55

// sendBufferFull reports whether the kernel queues no more bytes on c
// (sk_wmem_queued >= sk_sndbuf): a write would block.
func sendBufferFull(t *testing.T, c net.Conn) bool {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var (
		info [9]uint32 // SK_MEMINFO_VARS
		serr syscall.Errno
	)
	if err := rc.Control(func(fd uintptr) {
		n := uint32(unsafe.Sizeof(info))
		_, _, serr = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.SOL_SOCKET, soMeminfo,
			uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&n)), 0)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != 0 {
		t.Fatalf("getsockopt SO_MEMINFO: %v", serr)
	}
	const sndbuf, wmemQueued = 3, 5 // SK_MEMINFO_SNDBUF, SK_MEMINFO_WMEM_QUEUED
	return info[wmemQueued] >= info[sndbuf]
}
