package engineio_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/operate/realtime/engineio"
)

// forEachReader runs test once for each way a WebSocket is read: by the
// server's epoll poller (Linux) and by a goroutine per connection (other
// systems, TLS, or where epoll is unavailable). Tests that exercise the frame
// reader use it, each on fresh Options.
func forEachReader(t *testing.T, test func(t *testing.T, o *engineio.Options)) {
	t.Run("poller", func(t *testing.T) {
		t.Parallel()
		test(t, &engineio.Options{})
	})
	t.Run("goroutine", func(t *testing.T) {
		t.Parallel()
		o := &engineio.Options{}
		engineio.UseReaderGoroutines(o)
		test(t, o)
	})
}

// §1.6: one packet per frame; a binary frame is a message without type byte.
func TestWebSocketEcho(t *testing.T) {
	forEachReader(t, func(t *testing.T, o *engineio.Options) {
		e := newEnv(t, o, nil)
		c, _, r := e.openWS()
		c.sendText("4hello")
		c.expectText("4hello")
		c.send(ws.OpBinary, []byte{1, 2, 3})
		if op, data := c.read(); op != ws.OpBinary || !bytes.Equal(data, []byte{1, 2, 3}) {
			t.Fatalf("got %v %x", op, data)
		}
		c.sendText(`42["message",1,"2",{"3":[false]}]`)
		c.expectText(`42["message",1,"2",{"3":[false]}]`)
		c.send(ws.OpBinary, nil)
		if op, data := c.read(); op != ws.OpBinary || len(data) != 0 {
			t.Fatalf("got %v %x", op, data)
		}
		// Larger than the pooled read buffer and than a 16-bit length.
		big := "4" + strings.Repeat("é", 40000)
		c.sendText(big)
		c.expectText(big)
		got := r.messages()
		if len(got) != 5 || got[0] != (message{"hello", false}) || got[1] != (message{"\x01\x02\x03", true}) ||
			got[3] != (message{"", true}) || got[4].data != big[1:] {
			t.Fatalf("messages %v", got)
		}
	})
}

// Many small messages written in one burst arrive in order.
func TestWebSocketBurst(t *testing.T) {
	forEachReader(t, func(t *testing.T, o *engineio.Options) {
		e := newEnv(t, o, newRecorder(false))
		c, _, r := e.openWS()
		var buf bytes.Buffer
		const n = 500
		for i := range n {
			_ = ws.WriteFrame(&buf, maskedFrame(ws.OpText, true, []byte("4m"+strings.Repeat("x", i%50))))
		}
		_ = c.conn.SetWriteDeadline(time.Now().Add(readTimeout))
		if _, err := c.conn.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		got := r.waitMessages(t, n)
		for i, m := range got {
			if m.data != "m"+strings.Repeat("x", i%50) {
				t.Fatalf("message %d: %v", i, m)
			}
		}
	})
}

// §1.6: a message over MaxPayload closes the connection with 1009.
func TestWebSocketMaxPayload(t *testing.T) {
	forEachReader(t, func(t *testing.T, o *engineio.Options) {
		o.MaxPayload = 1000
		e := newEnv(t, o, nil)
		c, sid, r := e.openWS()
		c.sendText("4" + strings.Repeat("a", 999)) // exactly MaxPayload
		c.expectText("4" + strings.Repeat("a", 999))
		c.sendText("4" + strings.Repeat("a", 1000))
		c.expectClose(1009)
		if reason := r.waitClosed(t); reason != engineio.ReasonTransportError {
			t.Errorf("reason %q", reason)
		}
		if _, ok := e.srv.Session(sid); ok {
			t.Error("session still registered")
		}

		// The limit applies to the reassembled message too.
		c2, _, r2 := e.openWS()
		c2.writeFrame(maskedFrame(ws.OpText, false, []byte("4"+strings.Repeat("b", 600))))
		c2.writeFrame(maskedFrame(ws.OpContinuation, true, []byte(strings.Repeat("b", 600))))
		c2.expectClose(1009)
		r2.waitClosed(t)
		if len(r2.messages()) != 0 {
			t.Errorf("messages %v", r2.messages())
		}
	})
}

// RFC 6455 §5.4: fragments are reassembled, with control frames between
// them answered.
func TestWebSocketFragmented(t *testing.T) {
	forEachReader(t, func(t *testing.T, o *engineio.Options) {
		e := newEnv(t, o, nil)
		c, _, r := e.openWS()
		c.writeFrame(maskedFrame(ws.OpText, false, []byte("4hel")))
		c.writeFrame(maskedFrame(ws.OpPing, true, []byte("mid")))
		c.writeFrame(maskedFrame(ws.OpContinuation, false, []byte("lo ")))
		c.writeFrame(maskedFrame(ws.OpContinuation, true, []byte("world")))
		if op, data := c.read(); op != ws.OpPong || string(data) != "mid" {
			t.Fatalf("got %v %q, want the pong", op, data)
		}
		c.expectText("4hello world")

		c.writeFrame(maskedFrame(ws.OpBinary, false, []byte{1}))
		c.writeFrame(maskedFrame(ws.OpContinuation, false, nil))
		c.writeFrame(maskedFrame(ws.OpContinuation, true, []byte{2, 3}))
		if op, data := c.read(); op != ws.OpBinary || !bytes.Equal(data, []byte{1, 2, 3}) {
			t.Fatalf("got %v %x", op, data)
		}
		// A multi-byte character split across fragments is valid UTF-8 once
		// reassembled.
		c.writeFrame(maskedFrame(ws.OpText, false, []byte("4\xc3")))
		c.writeFrame(maskedFrame(ws.OpContinuation, true, []byte("\xa9")))
		c.expectText("4é")
		if got := r.messages(); len(got) != 3 || got[0].data != "hello world" || got[2].data != "é" {
			t.Fatalf("messages %v", got)
		}
	})
}

func TestWebSocketFragmentErrors(t *testing.T) {
	forEachReader(t, func(t *testing.T, o *engineio.Options) {
		tests := []struct {
			name   string
			frames []ws.Frame
		}{
			{"continuation without start", []ws.Frame{maskedFrame(ws.OpContinuation, true, []byte("x"))}},
			{"new message inside fragmented one", []ws.Frame{maskedFrame(ws.OpText, false, []byte("4a")), maskedFrame(ws.OpText, true, []byte("4b"))}},
			{"fragmented ping", []ws.Frame{maskedFrame(ws.OpPing, false, []byte("x"))}},
			{"long ping", []ws.Frame{maskedFrame(ws.OpPing, true, bytes.Repeat([]byte("x"), 126))}},
			{"reserved opcode", []ws.Frame{maskedFrame(ws.OpCode(0x3), true, []byte("x"))}},
			{"rsv1 without deflate", []ws.Frame{func() ws.Frame {
				f := maskedFrame(ws.OpText, true, []byte("4x"))
				f.Header.Rsv = ws.Rsv(true, false, false)
				return f
			}()}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				// A server per case: a failure is reported on this case's t.
				c, _, r := newEnv(t, o, nil).openWS()
				for _, f := range tt.frames {
					c.writeFrame(f)
				}
				c.expectClose(1002)
				if reason := r.waitClosed(t); reason != engineio.ReasonTransportError {
					t.Errorf("reason %q", reason)
				}
			})
		}
	})
}

// A ping control frame is answered with a pong carrying its payload.
func TestWebSocketControlPing(t *testing.T) {
	forEachReader(t, func(t *testing.T, o *engineio.Options) {
		e := newEnv(t, o, nil)
		c, _, r := e.openWS()
		c.writeFrame(maskedFrame(ws.OpPing, true, []byte("are you there")))
		if op, data := c.read(); op != ws.OpPong || string(data) != "are you there" {
			t.Fatalf("got %v %q", op, data)
		}
		c.writeFrame(maskedFrame(ws.OpPing, true, nil))
		if op, data := c.read(); op != ws.OpPong || len(data) != 0 {
			t.Fatalf("got %v %q", op, data)
		}
		// An unsolicited pong is ignored.
		c.writeFrame(maskedFrame(ws.OpPong, true, []byte("x")))
		c.sendText("4after")
		c.expectText("4after")
		if r.isClosed() {
			t.Fatal("closed")
		}
	})
}

// RFC 6455 §5.1: a server must close on an unmasked client frame (1002).
func TestWebSocketUnmasked(t *testing.T) {
	forEachReader(t, func(t *testing.T, o *engineio.Options) {
		e := newEnv(t, o, nil)
		c, _, r := e.openWS()
		c.writeFrame(ws.NewTextFrame([]byte("4unmasked")))
		c.expectClose(1002)
		if reason := r.waitClosed(t); reason != engineio.ReasonTransportError {
			t.Errorf("reason %q", reason)
		}
		if len(r.messages()) != 0 {
			t.Errorf("messages %v", r.messages())
		}
	})
}

// RFC 6455 §8.1: invalid UTF-8 in a text message closes with 1007.
func TestWebSocketInvalidUTF8(t *testing.T) {
	forEachReader(t, func(t *testing.T, o *engineio.Options) {
		e := newEnv(t, o, nil)
		c, _, r := e.openWS()
		c.send(ws.OpText, []byte("4\xff\xfe"))
		c.expectClose(1007)
		if reason := r.waitClosed(t); reason != engineio.ReasonTransportError {
			t.Errorf("reason %q", reason)
		}
		// Binary frames carry any bytes.
		c2, _, _ := e.openWS()
		c2.send(ws.OpBinary, []byte{0xff, 0xfe})
		if op, data := c2.read(); op != ws.OpBinary || !bytes.Equal(data, []byte{0xff, 0xfe}) {
			t.Fatalf("got %v %x", op, data)
		}
	})
}

// An invalid Engine.IO packet is a parse error.
func TestWebSocketParseError(t *testing.T) {
	forEachReader(t, func(t *testing.T, o *engineio.Options) {
		e := newEnv(t, o, nil)
		c, _, r := e.openWS()
		c.sendText("9nope")
		c.expectClose(1000)
		if reason := r.waitClosed(t); reason != engineio.ReasonParseError {
			t.Errorf("reason %q", reason)
		}
	})
}

// The client's close frame ends the session.
func TestWebSocketClientCloseFrame(t *testing.T) {
	forEachReader(t, func(t *testing.T, o *engineio.Options) {
		e := newEnv(t, o, nil)
		c, sid, r := e.openWS()
		c.writeFrame(maskedFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")))
		c.expectClose(1000)
		if reason := r.waitClosed(t); reason != engineio.ReasonTransportClose {
			t.Errorf("reason %q", reason)
		}
		resp, body := e.get("EIO=4&transport=polling&sid=" + sid)
		checkError(t, resp, body, 400, 1, "Session ID unknown")
	})
}

// A dropped TCP connection ends the session.
func TestWebSocketConnectionDropped(t *testing.T) {
	forEachReader(t, func(t *testing.T, o *engineio.Options) {
		e := newEnv(t, o, nil)
		c, _, r := e.openWS()
		c.conn.Close()
		if reason := r.waitClosed(t); reason != engineio.ReasonTransportClose {
			t.Errorf("reason %q", reason)
		}
	})
}

// Server-side Close flushes what is queued, then closes with 1000.
func TestWebSocketServerClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c, _, r := e.openWS()
	_ = r.sess.Send(engineio.NewPacket(4, []byte("one")), engineio.NewPacket(4, []byte("two")))
	r.sess.Close()
	c.expectText("4one")
	c.expectText("4two")
	c.expectClose(1000)
	if reason := r.waitClosed(t); reason != engineio.ReasonForcedClose {
		t.Errorf("reason %q", reason)
	}
	// CloseWith without flush drops the queue.
	c2, _, r2 := e.openWS()
	r2.sess.CloseWith("custom", false)
	c2.expectEOF()
	if reason := r2.waitClosed(t); reason != "custom" {
		t.Errorf("reason %q", reason)
	}
}

// §2.4 (engine level): a client ping closes; noop and upgrade are ignored;
// a polling request for a WebSocket session is a transport mismatch.
func TestWebSocketClientPackets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c, sid, r := e.openWS()
	c.sendText("6")
	c.sendText("5")
	c.sendText("4still")
	c.expectText("4still")
	resp, body := e.get("EIO=4&transport=polling&sid=" + sid)
	checkError(t, resp, body, 400, 3, "Bad request")
	resp, body = e.request(http.MethodPost, "EIO=4&transport=polling&sid="+sid, strings.NewReader("4x"), nil)
	checkError(t, resp, body, 400, 3, "Bad request")
	// A second WebSocket for the session is closed at once.
	c2 := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c2.expectClose(1000)
	c.sendText("2")
	c.expectEOF()
	if reason := r.waitClosed(t); reason != engineio.ReasonTransportError {
		t.Errorf("reason %q", reason)
	}
}

// §1.8: pongs keep a session alive over many ping intervals, and each ping
// comes PingInterval after the last pong, also when PingInterval is
// shorter than PingTimeout.
func TestWebSocketHeartbeat(t *testing.T) {
	t.Parallel()
	interval, timeout := 50*time.Millisecond, 3*time.Second
	e := newEnv(t, &engineio.Options{PingInterval: interval, PingTimeout: timeout}, nil)
	c, sid, r := e.openWS()
	start := time.Now()
	const pings = 8
	for range pings {
		c.expectText("2")
		c.sendText("3")
	}
	elapsed := time.Since(start)
	if elapsed < pings*interval {
		t.Errorf("%d pings in %v: interval not respected", pings, elapsed)
	}
	// Far below one PingTimeout per ping: pings follow pongs after
	// PingInterval, not at the previous ping's deadline.
	if elapsed > timeout {
		t.Errorf("%d pings took %v with a %v interval", pings, elapsed, interval)
	}
	if r.isClosed() {
		t.Fatal("session closed while answering pings")
	}
	if _, ok := e.srv.Session(sid); !ok {
		t.Fatal("session gone")
	}
	// Messages flow between heartbeats.
	c.sendText("4alive")
	for {
		op, data := c.read()
		if op == ws.OpText && string(data) == "2" {
			c.sendText("3")
			continue
		}
		if string(data) != "4alive" {
			t.Fatalf("got %q", data)
		}
		break
	}
	if n := e.srv.Stats().HeartbeatsLost.Load(); n != 0 {
		t.Errorf("HeartbeatsLost = %d", n)
	}
}

// Pongs at the test-suite's timing (interval > timeout) keep the session.
func TestWebSocketHeartbeatSuiteTiming(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond}, nil)
	c, _, r := e.openWS()
	for range 3 {
		c.expectText("2")
		c.sendText("3")
	}
	if r.isClosed() {
		t.Fatal("session closed while answering pings")
	}
}

// §1.8: without a pong, the session is closed at ping timeout, and later
// requests get 400 code 1.
func TestWebSocketPingTimeout(t *testing.T) {
	t.Parallel()
	interval, timeout := 100*time.Millisecond, 200*time.Millisecond
	e := newEnv(t, &engineio.Options{PingInterval: interval, PingTimeout: timeout}, nil)
	start := time.Now()
	c, sid, r := e.openWS()
	c.expectText("2")
	c.expectEOF()
	if elapsed := time.Since(start); elapsed < interval+timeout-20*time.Millisecond {
		t.Errorf("closed after %v, before interval+timeout", elapsed)
	}
	if reason := r.waitClosed(t); reason != engineio.ReasonPingTimeout {
		t.Errorf("reason %q", reason)
	}
	resp, body := e.get("EIO=4&transport=polling&sid=" + sid)
	checkError(t, resp, body, 400, 1, "Session ID unknown")
	if n := e.srv.Stats().HeartbeatsLost.Load(); n != 1 {
		t.Errorf("HeartbeatsLost = %d", n)
	}
}

// §1.8, polling: the test-suite sleeps pingInterval+pingTimeout after the
// handshake and expects the session to be gone.
func TestPollingPingTimeout(t *testing.T) {
	t.Parallel()
	interval, timeout := 300*time.Millisecond, 200*time.Millisecond
	e := newEnv(t, &engineio.Options{PingInterval: interval, PingTimeout: timeout}, nil)
	sid, r := e.handshake()
	// This test is about elapsed time: sleeping is the point. The margin
	// covers a late heartbeat wheel on a loaded machine.
	time.Sleep(interval + timeout + 100*time.Millisecond)
	resp, body := e.get("EIO=4&transport=polling&sid=" + sid)
	checkError(t, resp, body, 400, 1, "Session ID unknown")
	if reason := r.waitClosed(t); reason != engineio.ReasonPingTimeout {
		t.Errorf("reason %q", reason)
	}
}

// §1.8, polling: the ping arrives on a GET; the pong in a POST re-arms it.
func TestPollingHeartbeat(t *testing.T) {
	t.Parallel()
	interval, timeout := 50*time.Millisecond, 3*time.Second
	e := newEnv(t, &engineio.Options{PingInterval: interval, PingTimeout: timeout}, nil)
	sid, r := e.handshake()
	start := time.Now()
	const pings = 5
	for range pings {
		status, body := e.poll(sid)
		if status != 200 || body != "2" {
			t.Fatalf("GET: %d %q, want a ping", status, body)
		}
		if status, _ := e.post(sid, "3"); status != 200 {
			t.Fatalf("POST pong: %d", status)
		}
	}
	if elapsed := time.Since(start); elapsed > timeout {
		t.Errorf("%d pings took %v with a %v interval", pings, elapsed, interval)
	}
	if r.isClosed() {
		t.Fatal("closed")
	}
}

// SendNow writes on the caller's goroutine, after what is queued.
func TestWebSocketSendNow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c, _, r := e.openWS()
	_ = r.sess.Send(engineio.NewPacket(4, []byte("queued")))
	if err := r.sess.SendNow(engineio.NewPacket(4, []byte("now"))); err != nil {
		t.Fatal(err)
	}
	c.expectText("4queued")
	c.expectText("4now")
	// Over polling it is Send.
	sid, rp := e.handshake()
	if err := rp.sess.SendNow(engineio.NewPacket(4, []byte("now"))); err != nil {
		t.Fatal(err)
	}
	if _, body := e.poll(sid); body != "4now" {
		t.Fatalf("GET %q", body)
	}
	r.sess.Close()
	if err := r.sess.SendNow(engineio.NewPacket(4, nil)); err == nil {
		t.Error("SendNow on a closed session")
	}
}
