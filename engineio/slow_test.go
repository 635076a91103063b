package engineio_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

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
