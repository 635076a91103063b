package engineio_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/operate/realtime/engineio"
)

// Every write path sets its own deadline and leaves none behind: after each
// kind of write, the connection stays idle for longer than WriteTimeout and
// then a packet must still arrive. A deadline left on the connection makes
// the next non-blocking writev fail at once, which cut every upgraded
// browser connection at its first write 10 s after the upgrade.

// deadlineWriteTimeout is short so that idling past it takes little time.
const deadlineWriteTimeout = 100 * time.Millisecond

// idlePastWriteTimeout waits long enough for any deadline a write set to
// have passed.
func idlePastWriteTimeout() { time.Sleep(3 * deadlineWriteTimeout) }

func deadlineOptions(o *engineio.Options) *engineio.Options {
	o.WriteTimeout = deadlineWriteTimeout
	return o
}

// sendAfterIdle idles past WriteTimeout, sends one message and expects it,
// twice (a failed write may only show on the second), and checks that the
// session is still open.
func sendAfterIdle(t *testing.T, c *wsClient, r *sessionRec, what string) {
	t.Helper()
	for i := range 2 {
		idlePastWriteTimeout()
		msg := what + " " + strconv.Itoa(i)
		if err := r.sess.Send(engineio.NewPacket(4, []byte(msg))); err != nil {
			t.Fatalf("send after %s: %v", what, err)
		}
		c.expectText("4" + msg)
	}
	if r.isClosed() {
		t.Fatalf("session closed after %s: %v", what, r.waitClosed(t))
	}
}

// The reply to the upgrade's probe, written outside the session queue.
func TestIdleAfterProbeReply(t *testing.T) {
	t.Parallel()
	forEachReader(t, func(t *testing.T, o *engineio.Options) {
		e := newEnv(t, deadlineOptions(o), newRecorder(false))
		sid, r := e.handshake()
		c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
		c.sendText("2probe")
		c.expectText("3probe")
		c.sendText("5")
		waitFor(t, "the switch to WebSocket", func() bool { return r.sess.Transport() == "websocket" })
		sendAfterIdle(t, c, r, "the probe reply")
	})
}

// The pong to a WebSocket ping control frame.
func TestIdleAfterPong(t *testing.T) {
	t.Parallel()
	forEachReader(t, func(t *testing.T, o *engineio.Options) {
		e := newEnv(t, deadlineOptions(o), newRecorder(false))
		c, _, r := e.openWS()
		c.writeFrame(maskedFrame(ws.OpPing, true, []byte("p")))
		if op, data := c.read(); op != ws.OpPong || string(data) != "p" {
			t.Fatalf("got %v %q, want the pong", op, data)
		}
		sendAfterIdle(t, c, r, "a pong")
	})
}

// The flusher's non-blocking writev, on its own.
func TestIdleAfterWritev(t *testing.T) {
	t.Parallel()
	e := newEnv(t, deadlineOptions(&engineio.Options{}), newRecorder(false))
	c, _, r := e.openWS()
	_ = r.sess.Send(engineio.NewPacket(4, []byte("first")))
	c.expectText("4first")
	sendAfterIdle(t, c, r, "a writev")
}

// The blocking writer, which takes over when the socket is full. The
// client has more than the usual short WriteTimeout to read 8 MiB through a
// small window on a loaded machine, and idles past it afterwards.
func TestIdleAfterBlockingWrite(t *testing.T) {
	t.Parallel()
	// The writer blocks from the first stall until the client reads, and
	// with each write it waits for; on a loaded machine (-race, parallel
	// runs) a few seconds of neither are common.
	const writeTimeout = 5 * time.Second
	// No ping may come between the frames the test expects: on a loaded
	// machine the test outlasts newEnv's 10 s ping interval.
	e := newEnv(t, &engineio.Options{MaxQueueBytes: 16 << 20, WriteTimeout: writeTimeout,
		PingInterval: time.Minute, PingTimeout: time.Minute}, newRecorder(false))
	c, r := openSlowReader(e)
	payload := bytes.Repeat([]byte("z"), 64<<10)
	const n = 128 // 8 MiB: more than the small window and the socket buffer take at once
	// Built first: from the first stall on, the writer waits for a client
	// that reads only once they are all sent.
	pkts := make([]*engineio.Packet, n)
	for i := range pkts {
		pkts[i] = engineio.NewPacket(4, append([]byte(strconv.Itoa(i)+":"), payload...))
	}
	stalls := e.srv.Stats().WriteStalls.Load()
	for _, p := range pkts {
		if err := r.sess.Send(p); err != nil {
			t.Fatal(err)
		}
	}
	// The client has not read yet: 8 MiB cannot all go out at once.
	waitFor(t, "a write stall", func() bool { return e.srv.Stats().WriteStalls.Load() > stalls })
	for i := range n {
		f, err := c.readFrame()
		if err == nil && !bytes.HasPrefix(f.Payload, []byte("4"+strconv.Itoa(i)+":")) {
			err = fmt.Errorf("message %d: %.10q", i, f.Payload)
		}
		if err != nil {
			reason := engineio.CloseReason("none")
			if r.isClosed() {
				reason = r.waitClosed(t)
			}
			t.Fatalf("%v (session closed: %s)", err, reason)
		}
	}
	time.Sleep(writeTimeout)
	sendAfterIdle(t, c, r, "a blocking write")
}

// The close frame after a pong (which once left its deadline behind): the
// queued message and the close frame still go out.
func TestIdleThenCloseFrame(t *testing.T) {
	t.Parallel()
	e := newEnv(t, deadlineOptions(&engineio.Options{}), newRecorder(false))
	c, _, r := e.openWS()
	c.writeFrame(maskedFrame(ws.OpPing, true, nil))
	if op, _ := c.read(); op != ws.OpPong {
		t.Fatalf("got %v, want the pong", op)
	}
	idlePastWriteTimeout()
	_ = r.sess.Send(engineio.NewPacket(4, []byte("last")))
	r.sess.Close()
	c.expectText("4last")
	c.expectClose(1000)
}

// The HTTP server's own deadlines (ReadTimeout, WriteTimeout, IdleTimeout)
// end neither a hijacked WebSocket nor a long poll that waits longer than
// them.
func TestHTTPServerTimeoutsSpareSessions(t *testing.T) {
	t.Parallel()
	const httpTimeout = 150 * time.Millisecond
	short := func(hs *http.Server) {
		hs.ReadTimeout, hs.WriteTimeout, hs.IdleTimeout = httpTimeout, httpTimeout, httpTimeout
	}
	t.Run("websocket", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil, newRecorder(true), short)
		c, _, r := e.openWS()
		time.Sleep(3 * httpTimeout)
		c.sendText("4ping")
		c.expectText("4ping")
		sendAfterIdle(t, c, r, "the HTTP server's timeouts")
	})
	t.Run("upgrade", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil, newRecorder(true), short)
		sid, r := e.handshake()
		c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
		c.sendText("2probe")
		c.expectText("3probe")
		c.sendText("5")
		waitFor(t, "the switch to WebSocket", func() bool { return r.sess.Transport() == "websocket" })
		time.Sleep(3 * httpTimeout)
		c.sendText("4ping")
		c.expectText("4ping")
		sendAfterIdle(t, c, r, "the HTTP server's timeouts")
	})
	t.Run("polling", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil, newRecorder(false), short)
		sid, r := e.handshake()
		pending := e.pollAsync(sid)
		waitPending(t, r)
		time.Sleep(3 * httpTimeout)
		_ = r.sess.Send(engineio.NewPacket(4, []byte("late")))
		if res := wait(t, pending); res.status != http.StatusOK || res.body != "4late" {
			t.Fatalf("long poll answered after the HTTP timeouts: %d %q (%v)", res.status, res.body, res.err)
		}
		if r.isClosed() {
			t.Fatal("session closed")
		}
	})
}

// openSlowReader opens a WebSocket session whose client advertises a small
// window (see smallReceiveBuffer).
func openSlowReader(e *env) (*wsClient, *sessionRec) {
	e.t.Helper()
	c := e.dialWS("EIO=4&transport=websocket", smallReceiveBuffer)
	m := handshakeRE.FindStringSubmatch(c.expectPrefix("0"))
	if m == nil {
		e.t.Fatal("bad open packet")
	}
	return c, e.h.session(e.t, m[1])
}

// smallReceiveBuffer makes the client's socket advertise a small window, so
// that the server's socket fills up soon when the client does not read.
func smallReceiveBuffer(d *ws.Dialer) {
	d.NetDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var err error
			if cerr := rc.Control(func(fd uintptr) {
				err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			}); cerr != nil {
				return cerr
			}
			return err
		}}
		return nd.DialContext(ctx, network, addr)
	}
}

// A client that sends its close frame while the server's writer is blocked
// on it (it stopped reading) ends its session at once, and its connection
// without the rest of the queue: the blocked writer stops after its batch.
func TestCloseDoesNotWaitForStalledWriter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{MaxQueueBytes: 64 << 20, WriteTimeout: time.Minute}, newRecorder(false))
	c, r := openSlowReader(e)
	stalls := e.srv.Stats().WriteStalls.Load()
	payload := bytes.Repeat([]byte("s"), 64<<10)
	const sent = 512 * (64<<10 + 1)
	for range 512 { // 32 MiB: more than any socket buffer holds
		if err := r.sess.Send(engineio.NewPacket(4, payload)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the writer to block", func() bool { return e.srv.Stats().WriteStalls.Load() > stalls })

	c.writeFrame(maskedFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusNormalClosure, "")))
	if reason := r.waitClosed(t); reason != engineio.ReasonTransportClose {
		t.Errorf("reason %q, want %q", reason, engineio.ReasonTransportClose)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(waitTimeout))
	n, err := io.Copy(io.Discard, c.conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after the client's close frame (%d bytes read)", n)
	}
	if n >= sent {
		t.Fatalf("received all %d bytes: the closed session's queue was still written", n)
	}
}

// A client that is still sending when the server closes gets everything the
// server wrote before its close frame, and the close frame, even when that
// is still in the server's socket buffer (the client reads slowly): closing
// the socket with the client's bytes unread makes the kernel send a reset
// and drop what it had not transmitted yet (as a DISCONNECT was lost, and
// its client reconnected when told not to).
func TestCloseWhileTheClientSends(t *testing.T) {
	t.Parallel()
	h := newRecorder(false)
	inHandler := make(chan struct{}, 1)
	release := make(chan struct{})
	h.onMessage = func(*sessionRec, []byte, bool) {
		select {
		case inHandler <- struct{}{}:
		default:
		}
		<-release // the reader stays busy: what the client sends piles up unread
	}
	e := newEnv(t, &engineio.Options{MaxQueueBytes: 8 << 20}, h)
	defer close(release)
	c, r := openSlowReader(e)
	go func() {
		for range 50 {
			f := maskedFrame(ws.OpText, true, append([]byte("4"), bytes.Repeat([]byte("c"), 1024)...))
			_ = c.conn.SetWriteDeadline(time.Now().Add(waitTimeout))
			if ws.WriteFrame(c.conn, f) != nil {
				return
			}
		}
	}()
	<-inHandler
	// More than the client's small window and the server's socket buffer
	// take before the client reads: the tail waits in the server's kernel.
	const n = 64
	payload := bytes.Repeat([]byte("s"), 32<<10)
	for i := range n {
		_ = r.sess.Send(engineio.NewPacket(4, append([]byte(strconv.Itoa(i)+":"), payload...)))
	}
	_ = r.sess.Send(engineio.NewPacket(4, []byte("last words")))
	r.sess.Close()
	time.Sleep(300 * time.Millisecond) // the server has closed; the client reads only now
	for i := range n {
		if _, data := c.read(); !bytes.HasPrefix(data, []byte("4"+strconv.Itoa(i)+":")) {
			t.Fatalf("message %d: %.12q", i, data)
		}
	}
	c.expectText("4last words")
	c.expectClose(1000)
}
