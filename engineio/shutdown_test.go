package engineio_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/operate/realtime/engineio"
)

// Shutdown closes every session with ReasonServerShutdown, refuses new
// handshakes from the start, and returns once the sessions are gone.
func TestShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c, _, rws := e.openWS()
	sid, rp := e.handshake()
	pending := e.pollAsync(sid)
	waitPending(t, rp)
	_, ridle := e.handshake() // a polling session with no GET and nothing queued

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, r := range []*sessionRec{rws, rp, ridle} {
		if reason := r.waitClosed(t); reason != engineio.ReasonServerShutdown {
			t.Errorf("session %s: reason %q", r.sess.ID(), reason)
		}
	}
	if n := e.srv.SessionCount(); n != 0 {
		t.Errorf("%d sessions after Shutdown", n)
	}
	c.expectClose(1000)
	if res := wait(t, pending); res.status != 200 || res.body != "1" {
		t.Errorf("pending GET: %d %q", res.status, res.body)
	}

	// New sessions are refused.
	resp, body := e.get("EIO=4&transport=polling")
	if resp.StatusCode != http.StatusServiceUnavailable || body != `{"code":3,"message":"Server shutting down"}` {
		t.Errorf("handshake after Shutdown: %d %q", resp.StatusCode, body)
	}
	_, err := e.tryDialWS("EIO=4&transport=websocket")
	var se ws.StatusError
	if !errors.As(err, &se) {
		t.Errorf("WebSocket handshake after Shutdown: %v", err)
	}
	// Idempotent.
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// Queued packets are delivered before the WebSocket closes.
func TestShutdownFlushes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c, _, r := e.openWS()
	_ = r.sess.Send(engineio.NewPacket(4, []byte("last words")))
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(context.Background()) }()
	c.expectText("4last words")
	c.expectClose(1000)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Shutdown did not return")
	}
}

// A polling session whose queue waits for a GET that never comes keeps
// Shutdown until its deadline; the session is then cut.
func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	_ = r.sess.Send(engineio.NewPacket(4, []byte("never fetched")))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the deadline", err)
	}
	if reason := r.waitClosed(t); reason != engineio.ReasonServerShutdown {
		t.Errorf("reason %q", reason)
	}
	if n := e.srv.SessionCount(); n != 0 {
		t.Errorf("%d sessions after the forced close", n)
	}
	resp, body := e.get("EIO=4&transport=polling&sid=" + sid)
	checkError(t, resp, body, 400, 1, "Session ID unknown")
}

// A polling client that vanished does not hold Shutdown until its deadline:
// once it has not come back for its next GET within a short grace, its
// session is cut and Shutdown returns.
func TestShutdownGivesUpOnVanishedPollingClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	_, gone := e.handshake()
	_ = gone.sess.Send(engineio.NewPacket(4, []byte("never fetched")))
	sid, back := e.handshake()
	_ = back.sess.Send(engineio.NewPacket(4, []byte("fetched")))

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(ctx) }()
	// The client that is still there polls during the grace and gets its
	// message, then the close packet.
	waitFor(t, "the shutdown to start", func() bool { return !back.sess.Writable() && back.isClosed() })
	if _, body := e.poll(sid); body != "4fetched" {
		t.Errorf("GET during the shutdown: %q", body)
	}
	if _, body := e.poll(sid); body != "1" {
		t.Errorf("next GET: %q, want the close packet", body)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > waitTimeout/2 {
		t.Errorf("Shutdown took %v with a vanished polling client", d)
	}
	if reason := gone.waitClosed(t); reason != engineio.ReasonServerShutdown {
		t.Errorf("reason %q", reason)
	}
}
