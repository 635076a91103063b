package engineio_test

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/operate/realtime/engineio"
)

// A WebSocket client that stops reading: once the kernel buffers are full,
// the session's queue grows to MaxQueueBytes and the next Send fails with
// ErrSlowConsumer, closing the session. The server never holds more than
// MaxQueueBytes of unwritten data for it.
func TestSlowConsumerWebSocket(t *testing.T) {
	t.Parallel()
	const maxQueue = 256 << 10
	e := newEnv(t, &engineio.Options{MaxQueueBytes: maxQueue}, nil)
	_, _, r := e.openWS() // reads the open packet, then never again
	payload := bytes.Repeat([]byte("x"), 32<<10)
	var accepted int64
	var err error
	deadline := time.Now().Add(waitTimeout)
	for {
		p := engineio.NewPacket(4, payload) // a distinct buffer each time
		if err = r.sess.Send(p); err != nil {
			break
		}
		accepted += int64(p.Len())
		if accepted > 1<<30 || time.Now().After(deadline) {
			t.Fatalf("%d bytes accepted for a client that does not read", accepted)
		}
		// Pace the producer to the writer while the socket takes data, so
		// that the kernel buffers fill up before the queue does: wait a
		// little for the queue to drain; once the socket is full it never
		// does and the queue grows.
		for until := time.Now().Add(50 * time.Millisecond); !r.sess.Writable() && time.Now().Before(until); {
			time.Sleep(time.Millisecond)
		}
	}
	t.Logf("accepted %d bytes before ErrSlowConsumer, %d written", accepted, e.srv.Stats().BytesOut.Load())
	if accepted <= maxQueue {
		t.Errorf("only %d bytes accepted: the socket took nothing", accepted)
	}
	if !errors.Is(err, engineio.ErrSlowConsumer) {
		t.Fatalf("Send: %v, want ErrSlowConsumer", err)
	}
	if reason := r.waitClosed(t); reason != engineio.ReasonSlowConsumer {
		t.Errorf("reason %q", reason)
	}
	st := e.srv.Stats()
	if n := st.SlowConsumers.Load(); n != 1 {
		t.Errorf("SlowConsumers = %d", n)
	}
	// What was accepted but not written to the socket stayed within the
	// queue bound.
	if held := accepted - st.BytesOut.Load(); held > maxQueue {
		t.Errorf("accepted %d bytes, wrote %d: %d held, over MaxQueueBytes %d", accepted, st.BytesOut.Load(), held, maxQueue)
	}
	if err := r.sess.Send(engineio.NewPacket(4, nil)); !errors.Is(err, engineio.ErrSessionClosed) {
		t.Errorf("Send after close: %v", err)
	}
	if _, ok := e.srv.Session(r.sess.ID()); ok {
		t.Error("session still registered")
	}
}

// The queue bound applies to polling sessions between GETs, exactly.
func TestMaxQueueBytesPolling(t *testing.T) {
	t.Parallel()
	const maxQueue = 10000
	e := newEnv(t, &engineio.Options{MaxQueueBytes: maxQueue}, nil)
	sid, r := e.handshake()
	p := engineio.NewPacket(4, bytes.Repeat([]byte("y"), 1000))
	fit := maxQueue / p.Len()
	for i := range fit {
		if err := r.sess.Send(p); err != nil {
			t.Fatalf("Send %d (%d bytes queued): %v", i, i*p.Len(), err)
		}
	}
	// A GET drains the queue, and with it the count.
	status, body := e.poll(sid)
	if status != 200 || len(body) != fit*1001+fit-1 {
		t.Fatalf("GET: %d, %d bytes", status, len(body))
	}
	for i := range fit {
		if err := r.sess.Send(p); err != nil {
			t.Fatalf("Send %d after the GET: %v", i, err)
		}
	}
	if r.sess.Writable() {
		t.Error("Writable with a full queue and no GET")
	}
	if err := r.sess.Send(p); !errors.Is(err, engineio.ErrSlowConsumer) {
		t.Fatalf("Send over MaxQueueBytes: %v", err)
	}
	if reason := r.waitClosed(t); reason != engineio.ReasonSlowConsumer {
		t.Errorf("reason %q", reason)
	}
	// The queue is dropped with the session.
	resp, body := e.get("EIO=4&transport=polling&sid=" + sid)
	checkError(t, resp, body, 400, 1, "Session ID unknown")
}

// Several packets sent together are accepted or refused together.
func TestMaxQueueBytesAtomicSend(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{MaxQueueBytes: 1000}, nil)
	_, r := e.handshake()
	a := engineio.NewPacket(4, bytes.Repeat([]byte("a"), 400))
	if err := r.sess.Send(a); err != nil {
		t.Fatal(err)
	}
	if err := r.sess.Send(a, a); !errors.Is(err, engineio.ErrSlowConsumer) {
		t.Fatalf("Send of two packets over the bound: %v", err)
	}
}

// Pongs and data frames never interleave: while a client reads slowly (so
// flushes keep ending mid-frame and going on as blocking writes) and sends
// ping control frames, every byte it receives still parses as whole frames:
// all the messages, in order, with a pong for each ping between them.
func TestWebSocketFramesStayWholeUnderPings(t *testing.T) {
	t.Parallel()
	forEachReader(t, func(t *testing.T, o *engineio.Options) {
		e := newEnv(t, o, newRecorder(false))
		c, _, r := e.openWS()
		const messages, pings = 400, 200
		payload := bytes.Repeat([]byte("y"), 20<<10) // several socket buffers' worth in all
		go func() {
			for i := range messages {
				_ = r.sess.Send(engineio.NewPacket(4, append([]byte(strconv.Itoa(i)+":"), payload...)))
				time.Sleep(100 * time.Microsecond)
			}
		}()
		// Ping in small steps, reading a little after each ping, so the
		// socket stays nearly full and the writer keeps blocking.
		var got, pongs int
		for got < messages {
			if pongs < pings && got%2 == 0 {
				c.writeFrame(maskedFrame(ws.OpPing, true, []byte("p")))
			}
			f, err := c.readFrame()
			if err != nil {
				t.Fatalf("after %d messages and %d pongs: %v", got, pongs, err)
			}
			switch f.Header.OpCode {
			case ws.OpPong:
				if string(f.Payload) != "p" {
					t.Fatalf("pong payload %q", f.Payload)
				}
				pongs++
			case ws.OpText:
				want := "4" + strconv.Itoa(got) + ":"
				if !bytes.HasPrefix(f.Payload, []byte(want)) || len(f.Payload) != len(want)+len(payload) {
					t.Fatalf("message %d: %d bytes starting %q: a frame was cut", got, len(f.Payload), f.Payload[:min(len(f.Payload), 16)])
				}
				got++
			default:
				t.Fatalf("frame %v after %d messages", f.Header.OpCode, got)
			}
		}
		if pongs == 0 {
			t.Error("no pong came back")
		}
	})
}
