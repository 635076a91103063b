package engineio_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/operate/realtime/engineio"
)

// §1.4: the server batches everything queued into one GET response.
func TestPollingBatching(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	for _, s := range []string{"test1", "test2", "test3"} {
		if err := r.sess.Send(engineio.NewPacket(4, []byte(s))); err != nil {
			t.Fatal(err)
		}
	}
	status, body := e.poll(sid)
	if status != 200 || body != "4test1\x1e4test2\x1e4test3" {
		t.Fatalf("GET: %d %q", status, body)
	}

	// The test-suite's echo: a POST of three packets comes back in one GET.
	status, body = e.post(sid, "4test1\x1e4test2\x1e4test3")
	if status != 200 || body != "ok" {
		t.Fatalf("POST: %d %q", status, body)
	}
	status, body = e.poll(sid)
	if status != 200 || body != "4test1\x1e4test2\x1e4test3" {
		t.Fatalf("GET after echo: %d %q", status, body)
	}
	if got := r.messages(); len(got) != 3 || got[0].data != "test1" || got[2].data != "test3" || got[1].binary {
		t.Fatalf("messages %v", got)
	}
}

func TestPollingResponseHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	_ = r.sess.Send(engineio.NewPacket(4, []byte("x")))
	resp, body := e.get("EIO=4&transport=polling&sid=" + sid)
	if body != "4x" || resp.Header.Get("Content-Type") != "text/plain; charset=UTF-8" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET: %q %v", body, resp.Header)
	}
	resp, body = e.request(http.MethodPost, "EIO=4&transport=polling&sid="+sid, strings.NewReader("4y"), nil)
	if resp.StatusCode != 200 || body != "ok" || resp.Header.Get("Content-Type") != "text/html" {
		t.Errorf("POST: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if _, body := e.poll(sid); body != "4y" {
		t.Errorf("GET: %q", body)
	}
}

// A GET waits for packets and is answered as soon as one is sent.
func TestPollingLongPoll(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	ch := e.pollAsync(sid)
	waitPending(t, r)
	if err := r.sess.Send(engineio.NewPacket(4, []byte("late"))); err != nil {
		t.Fatal(err)
	}
	if res := wait(t, ch); res.status != 200 || res.body != "4late" {
		t.Fatalf("GET: %d %q", res.status, res.body)
	}
}

// §1.4: binary messages travel as "b"+base64 in both directions.
func TestPollingBinary(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	status, _ := e.post(sid, "bAQIDBA==\x1e4text\x1eb")
	if status != 200 {
		t.Fatalf("POST: %d", status)
	}
	got := r.waitMessages(t, 3)
	if got[0] != (message{"\x01\x02\x03\x04", true}) || got[1] != (message{"text", false}) || got[2] != (message{"", true}) {
		t.Fatalf("messages %v", got)
	}
	// The echo: binary packets are encoded back as base64.
	status, body := e.poll(sid)
	if status != 200 || body != "bAQIDBA==\x1e4text\x1eb" {
		t.Fatalf("GET: %d %q", status, body)
	}
	// A Socket.IO binary event and its attachment in one payload.
	_ = r.sess.Send(engineio.NewPacket(4, []byte(`51-["bin-back",{"_placeholder":true,"num":0},"x"]`)), engineio.NewBinaryPacket([]byte{1, 2, 3}))
	if _, body := e.poll(sid); body != "451-[\"bin-back\",{\"_placeholder\":true,\"num\":0},\"x\"]\x1ebAQID" {
		t.Fatalf("GET: %q", body)
	}
}

// §1.5: a POST over MaxPayload gets 413 and the session stays.
func TestPollingPayloadTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{MaxPayload: 100}, nil)
	sid, r := e.handshake()
	big := "4" + strings.Repeat("x", 100)
	if status, _ := e.post(sid, big); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("POST of 101 bytes: %d", status)
	}
	// Without a Content-Length (chunked), the limit holds all the same.
	resp, _ := e.request(http.MethodPost, "EIO=4&transport=polling&sid="+sid, io.MultiReader(strings.NewReader(big)), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked POST of 101 bytes: %d", resp.StatusCode)
	}
	// Exactly MaxPayload is fine, and the session is intact.
	if status, body := e.post(sid, big[:100]); status != 200 || body != "ok" {
		t.Fatalf("POST of 100 bytes: %d %q", status, body)
	}
	if _, body := e.poll(sid); body != big[:100] {
		t.Fatalf("GET: %q", body)
	}
	if r.isClosed() {
		t.Fatal("session closed")
	}
	if got := r.messages(); len(got) != 1 {
		t.Fatalf("messages %v", got)
	}
}

// §1.5: an application/octet-stream POST is refused and closes the session.
func TestPollingOctetStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	resp, body := e.request(http.MethodPost, "EIO=4&transport=polling&sid="+sid, strings.NewReader("\x04\x01\x02"),
		http.Header{"Content-Type": {"application/octet-stream"}})
	checkError(t, resp, body, 400, 3, "Bad request")
	if reason := r.waitClosed(t); reason != engineio.ReasonTransportError {
		t.Errorf("reason %q", reason)
	}
	resp, body = e.get("EIO=4&transport=polling&sid=" + sid)
	checkError(t, resp, body, 400, 1, "Session ID unknown")
	if len(r.messages()) != 0 {
		t.Errorf("messages delivered: %v", r.messages())
	}
}

// §1.5: other methods with a sid get 500 and the session stays.
func TestPollingOtherMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		resp, _ := e.request(m, "EIO=4&transport=polling&sid="+sid, strings.NewReader("4x"), nil)
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("%s: %d", m, resp.StatusCode)
		}
	}
	if status, body := e.post(sid, "4still"); status != 200 || body != "ok" {
		t.Fatalf("POST after PUT: %d %q", status, body)
	}
	if _, body := e.poll(sid); body != "4still" {
		t.Fatalf("GET: %q", body)
	}
	if r.isClosed() {
		t.Fatal("session closed")
	}
}

// §1.5: a second GET while one is pending: the new one gets 400, the
// pending one the close packet, and the session is gone.
func TestPollingDuplicateGet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	first := e.pollAsync(sid)
	waitPending(t, r)
	status, _ := e.poll(sid)
	if status != 400 {
		t.Errorf("second GET: %d, want 400", status)
	}
	if res := wait(t, first); res.status != 200 || res.body != "1" {
		t.Errorf("first GET: %d %q, want the close packet", res.status, res.body)
	}
	if reason := r.waitClosed(t); reason != engineio.ReasonTransportError {
		t.Errorf("reason %q", reason)
	}
	resp, body := e.get("EIO=4&transport=polling&sid=" + sid)
	checkError(t, resp, body, 400, 1, "Session ID unknown")
}

// A second POST while one is being read is refused and closes the session.
func TestPollingDuplicatePost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	pr, pw := io.Pipe()
	firstDone := make(chan int, 1)
	go func() {
		resp, _, err := e.tryRequest(http.MethodPost, "EIO=4&transport=polling&sid="+sid, pr, nil)
		if err != nil {
			firstDone <- -1
			return
		}
		firstDone <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte("4par")); err != nil { // the first POST is now being read
		t.Fatal(err)
	}
	// The server reads the body only once the POST is active; wait until
	// the second POST is refused.
	var status int
	waitFor(t, "the second POST refused", func() bool {
		status, _ = e.post(sid, "4second")
		return status != 200
	})
	if status != 400 {
		t.Errorf("second POST: %d", status)
	}
	pw.Close()
	<-firstDone
	if reason := r.waitClosed(t); reason != engineio.ReasonTransportError {
		t.Errorf("reason %q", reason)
	}
}

// §1.5: the client's close packet ends the session; a pending GET is
// answered with a noop, later requests with 400 code 1.
func TestPollingClientClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	pending := e.pollAsync(sid)
	waitPending(t, r)
	if status, body := e.post(sid, "1"); status != 200 || body != "ok" {
		t.Fatalf("POST close: %d %q", status, body)
	}
	if res := wait(t, pending); res.status != 200 || res.body != "6" {
		t.Errorf("pending GET: %d %q, want the noop", res.status, res.body)
	}
	if reason := r.waitClosed(t); reason != engineio.ReasonTransportClose {
		t.Errorf("reason %q", reason)
	}
	resp, body := e.get("EIO=4&transport=polling&sid=" + sid)
	checkError(t, resp, body, 400, 1, "Session ID unknown")
	resp, body = e.request(http.MethodPost, "EIO=4&transport=polling&sid="+sid, strings.NewReader("4x"), nil)
	checkError(t, resp, body, 400, 1, "Session ID unknown")
}

// Close packet with no GET pending: the GET that follows is still answered
// with a noop, then the session is gone.
func TestPollingClientCloseThenGet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	if status, _ := e.post(sid, "4last\x1e1\x1e4ignored"); status != 200 {
		t.Fatalf("POST: %d", status)
	}
	if reason := r.waitClosed(t); reason != engineio.ReasonTransportClose {
		t.Errorf("reason %q", reason)
	}
	if got := r.messages(); len(got) != 1 || got[0].data != "last" {
		t.Errorf("messages %v", got)
	}
	if status, body := e.poll(sid); status != 200 || body != "6" {
		t.Errorf("GET after close: %d %q", status, body)
	}
	resp, body := e.get("EIO=4&transport=polling&sid=" + sid)
	checkError(t, resp, body, 400, 1, "Session ID unknown")
}

// A server-side close answers the pending GET with the close packet, after
// what is queued.
func TestPollingServerClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	pending := e.pollAsync(sid)
	waitPending(t, r)
	r.sess.Close()
	if res := wait(t, pending); res.status != 200 || res.body != "1" {
		t.Errorf("pending GET: %d %q", res.status, res.body)
	}
	if reason := r.waitClosed(t); reason != engineio.ReasonForcedClose {
		t.Errorf("reason %q", reason)
	}
	if err := r.sess.Send(engineio.NewPacket(4, nil)); !errors.Is(err, engineio.ErrSessionClosed) {
		t.Errorf("Send after close: %v", err)
	}

	// With messages queued and no GET: the next GET gets them and the one
	// after it the close, as with Node (socket.io-client would handle a
	// close in the same payload before the messages).
	sid2, r2 := e.handshake()
	_ = r2.sess.Send(engineio.NewPacket(4, []byte("bye")))
	r2.sess.Close()
	if status, body := e.poll(sid2); status != 200 || body != "4bye" {
		t.Errorf("GET: %d %q", status, body)
	}
	if status, body := e.poll(sid2); status != 200 || body != "1" {
		t.Errorf("second GET: %d %q", status, body)
	}
	r2.waitClosed(t)
	resp, body := e.get("EIO=4&transport=polling&sid=" + sid2)
	checkError(t, resp, body, 400, 1, "Session ID unknown")
	if e.srv.SessionCount() != 0 {
		t.Errorf("%d sessions left", e.srv.SessionCount())
	}
}

// §1.3: an invalid packet in a POST is a parse error that closes the
// session after the valid packets before it.
func TestPollingParseError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	resp, body := e.request(http.MethodPost, "EIO=4&transport=polling&sid="+sid, strings.NewReader("4ok\x1e9bad\x1e4never"), nil)
	checkError(t, resp, body, 400, 3, "Bad request")
	if reason := r.waitClosed(t); reason != engineio.ReasonParseError {
		t.Errorf("reason %q", reason)
	}
	if got := r.messages(); len(got) != 1 || got[0].data != "ok" {
		t.Errorf("messages %v", got)
	}
}

// §2.4: a ping from a v4 client closes the session; noop and upgrade
// packets outside an upgrade are ignored.
func TestPollingClientPingAndIgnoredPackets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	if status, _ := e.post(sid, "6\x1e5\x1e4x"); status != 200 {
		t.Fatalf("POST: %d", status)
	}
	if r.isClosed() {
		t.Fatal("closed by noop/upgrade")
	}
	r.waitMessages(t, 1)
	e.post(sid, "2")
	if reason := r.waitClosed(t); reason != engineio.ReasonTransportError {
		t.Errorf("reason %q", reason)
	}
}

// A client that drops its pending GET closes the session (Node: "poll
// connection closed prematurely").
func TestPollingGetAborted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	req, _ := http.NewRequest(http.MethodGet, e.base+"?EIO=4&transport=polling&sid="+sid, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req = req.WithContext(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := e.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	waitPending(t, r)
	cancel()
	<-done
	if reason := r.waitClosed(t); reason != engineio.ReasonTransportError {
		t.Errorf("reason %q", reason)
	}
}
