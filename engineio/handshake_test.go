package engineio_test

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/operate/realtime/engineio"
)

// §1.2: the polling handshake.
func TestHandshakePolling(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second}, nil)
	resp, body := e.get("EIO=4&transport=polling&t=N1x2y3")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
		t.Errorf("Content-Type %q", ct)
	}
	m := handshakeRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("handshake %q: not {sid,upgrades,pingInterval,pingTimeout,maxPayload} in this order", body)
	}
	if m[2] != `["websocket"]` || m[3] != "25000" || m[4] != "20000" || m[5] != "1000000" {
		t.Errorf("handshake %q", body)
	}
	if len(m[1]) != 20 {
		t.Errorf("sid %q is not 20 characters", m[1])
	}
	if resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("cookie sent without the Cookie option")
	}
	if s, ok := e.srv.Session(m[1]); !ok || s.Transport() != "polling" || s.ID() != m[1] {
		t.Errorf("Session(%q) = %v, %v", m[1], s, ok)
	}
	r := e.h.session(t, m[1])
	if r.sess.Request().Query().Get("t") != "N1x2y3" || r.sess.Request().RemoteAddr != "127.0.0.1" {
		t.Errorf("Request() = %+v", r.sess.Request())
	}
}

func TestHandshakeOptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond, MaxPayload: 1234, DisableUpgrades: true}, nil)
	_, body := e.get("EIO=4&transport=polling")
	m := handshakeRE.FindStringSubmatch(body)
	if m == nil || m[2] != "[]" || m[3] != "300" || m[4] != "200" || m[5] != "1234" {
		t.Fatalf("handshake %q", body)
	}
}

// The ids are distinct, 20 characters of the URL-safe base64 alphabet.
func TestHandshakeIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	seen := map[string]bool{}
	for range 50 {
		sid, _ := e.handshake()
		if seen[sid] {
			t.Fatalf("sid %q issued twice", sid)
		}
		seen[sid] = true
	}
	if e.srv.SessionCount() != 50 || e.srv.Stats().Sessions.Load() != 50 || e.srv.Stats().Opened.Load() != 50 {
		t.Errorf("SessionCount %d, Stats %d/%d", e.srv.SessionCount(), e.srv.Stats().Sessions.Load(), e.srv.Stats().Opened.Load())
	}
	if id := e.srv.NewID(); len(id) != 20 || strings.ContainsAny(id, "+/=") {
		t.Errorf("NewID() = %q", id)
	}
}

// §1.2: a session opened directly over WebSocket announces no upgrades.
func TestHandshakeWebSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c := e.dialWS("EIO=4&transport=websocket")
	open := c.expectPrefix("0")
	m := handshakeRE.FindStringSubmatch(open)
	if m == nil || m[2] != "[]" || m[3] != "10000" || m[5] != "1000000" {
		t.Fatalf("open packet %q", open)
	}
	s, ok := e.srv.Session(m[1])
	if !ok || s.Transport() != "websocket" {
		t.Fatalf("Session(%q) = %v, %v", m[1], s, ok)
	}
	if c.header.Get("Set-Cookie") != "" {
		t.Errorf("cookie sent without the Cookie option")
	}
	if c.hs.Extensions != nil {
		t.Errorf("extensions negotiated: %v", c.hs.Extensions)
	}
}

func TestNewServerErrors(t *testing.T) {
	t.Parallel()
	if _, err := engineio.NewServer(newRecorder(false), &engineio.Options{DisablePolling: true, DisableWebSocket: true}); err == nil {
		t.Error("both transports disabled: no error")
	}
	if _, err := engineio.NewServer(nil, nil); err == nil {
		t.Error("nil handler: no error")
	}
}

func TestDefaultOptions(t *testing.T) {
	t.Parallel()
	srv, err := engineio.NewServer(newRecorder(false), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(t.Context())
	o := srv.Options()
	if o.Path != "/socket.io/" || o.PingInterval != 25*time.Second || o.PingTimeout != 20*time.Second ||
		o.UpgradeTimeout != 10*time.Second || o.MaxPayload != 1_000_000 || o.MaxQueueBytes != 1<<20 ||
		o.WriteTimeout != 10*time.Second || o.DeflateThreshold != 1024 || o.PerMessageDeflate || o.Logger == nil {
		t.Errorf("defaults: %+v", o)
	}
}

// §1.9: every error with its HTTP status and JSON body.
func TestHandshakeErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{
		AllowRequest: func(r *http.Request) error {
			if r.Header.Get("X-Deny") != "" {
				return errors.New("denied by policy")
			}
			return nil
		},
	}, nil)
	tests := []struct {
		name    string
		method  string
		query   string
		header  http.Header
		status  int
		code    int
		message string
	}{
		{"no transport", "GET", "EIO=4", nil, 400, 0, "Transport unknown"},
		{"unknown transport", "GET", "EIO=4&transport=flash", nil, 400, 0, "Transport unknown"},
		{"webtransport not enabled", "GET", "EIO=4&transport=webtransport", nil, 400, 0, "Transport unknown"},
		{"unknown transport with sid", "GET", "EIO=4&transport=flash&sid=abc", nil, 400, 0, "Transport unknown"},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=abcdefghijklmnopqrst", nil, 400, 1, "Session ID unknown"},
		{"unknown sid post", "POST", "EIO=4&transport=polling&sid=nope", nil, 400, 1, "Session ID unknown"},
		{"handshake post", "POST", "EIO=4&transport=polling", nil, 400, 2, "Bad handshake method"},
		{"handshake put", "PUT", "EIO=4&transport=polling", nil, 400, 2, "Bad handshake method"},
		{"plain GET websocket", "GET", "EIO=4&transport=websocket", nil, 400, 3, "Bad request"},
		{"forbidden", "GET", "EIO=4&transport=polling", http.Header{"X-Deny": {"1"}}, 403, 4, "denied by policy"},
		{"eio 3", "GET", "EIO=3&transport=polling", nil, 400, 5, "Unsupported protocol version"},
		{"no eio", "GET", "transport=polling", nil, 400, 5, "Unsupported protocol version"},
		{"eio 5", "GET", "EIO=5&transport=polling", nil, 400, 5, "Unsupported protocol version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.request(tt.method, tt.query, nil, tt.header)
			checkError(t, resp, body, tt.status, tt.code, tt.message)
		})
	}
	if n := e.srv.SessionCount(); n != 0 {
		t.Errorf("%d sessions opened by refused requests", n)
	}
}

// A disabled transport is an unknown one.
func TestDisabledTransports(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{DisablePolling: true}, nil)
	resp, body := e.get("EIO=4&transport=polling")
	checkError(t, resp, body, 400, 0, "Transport unknown")
	c := e.dialWS("EIO=4&transport=websocket")
	c.expectPrefix(`0{"sid":`)

	e2 := newEnv(t, &engineio.Options{DisableWebSocket: true}, nil)
	_, body = e2.get("EIO=4&transport=polling")
	if m := handshakeRE.FindStringSubmatch(body); m == nil || m[2] != "[]" {
		t.Errorf("handshake without WebSocket: %q", body)
	}
	resp, body, _ = e2.rawHTTP(e2.upgradeRequest("EIO=4&transport=websocket"))
	if resp.StatusCode != 400 || body != "Transport unknown" {
		t.Errorf("WebSocket while disabled: %d %q", resp.StatusCode, body)
	}
}

// §1.7/§1.9: errors on WebSocket upgrade requests are a raw 400 with the
// message as text/html, and the connection is dropped.
func TestWebSocketHandshakeErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{
		AllowRequest: func(r *http.Request) error {
			if r.URL.Query().Get("deny") != "" {
				return errors.New("no entry")
			}
			return nil
		},
	}, nil)
	tests := []struct {
		name, query, body string
	}{
		{"unknown sid", "EIO=4&transport=websocket&sid=abcdefghijklmnopqrst", "Session ID unknown"},
		{"unknown transport", "EIO=4&transport=flash", "Transport unknown"},
		{"eio 3", "EIO=3&transport=websocket", "Unsupported protocol version"},
		{"refused", "EIO=4&transport=websocket&deny=1", "no entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body, closed := e.rawHTTP(e.upgradeRequest(tt.query))
			if resp.StatusCode != 400 || body != tt.body {
				t.Errorf("%d %q, want 400 %q", resp.StatusCode, body, tt.body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/html" {
				t.Errorf("Content-Type %q", ct)
			}
			if !closed {
				t.Errorf("connection kept open")
			}
		})
	}
	// The same through a WebSocket client: the dial fails with 400.
	_, err := e.tryDialWS("EIO=4&transport=websocket&sid=abcdefghijklmnopqrst")
	var se ws.StatusError
	if !errors.As(err, &se) || int(se) != 400 {
		t.Errorf("dial to an unknown sid: %v", err)
	}
}

// Path: a prefix with its trailing slash added.
func TestCustomPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{Path: "/engine.io"}, nil)
	if p := e.srv.Options().Path; p != "/engine.io/" {
		t.Fatalf("Path %q", p)
	}
	if !strings.HasSuffix(e.base, "/engine.io/") {
		t.Fatalf("base %q", e.base)
	}
	e.handshake()
	c := e.dialWS("EIO=4&transport=websocket")
	c.expectPrefix(`0{"sid":`)
}

func TestPacketEncoding(t *testing.T) {
	t.Parallel()
	p := engineio.NewPacket(4, []byte("hello"))
	if string(p.Data()) != "4hello" || p.Binary() || p.Len() != 2+6 {
		t.Errorf("NewPacket: %q %v %d", p.Data(), p.Binary(), p.Len())
	}
	b := engineio.NewBinaryPacket([]byte{1, 2, 3})
	if string(b.Data()) != "\x01\x02\x03" || !b.Binary() || b.Len() != 2+3 {
		t.Errorf("NewBinaryPacket: %x %v %d", b.Data(), b.Binary(), b.Len())
	}
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		data := strings.Repeat("x", n)
		p := engineio.BuildText(4, 0, func(dst []byte) []byte { return append(dst, data...) })
		hdr := 2
		switch {
		case n+1 > 65535:
			hdr = 10
		case n+1 > 125:
			hdr = 4
		}
		if string(p.Data()) != "4"+data || p.Len() != hdr+n+1 {
			t.Errorf("BuildText of %d bytes: len %d, want %d", n, p.Len(), hdr+n+1)
		}
	}
}

// TestHandshakeRequestKept: a session keeps the handshake's headers, minus
// those that only served the handshake, and parses its query on demand.
func TestHandshakeRequestKept(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c := e.dialWS("EIO=4&transport=websocket&token=abc&room=r1", func(d *ws.Dialer) {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"User-Agent": {"bench/1"}, "Authorization": {"Bearer x"}})
	})
	_, data := c.read()
	p := string(data)
	m := handshakeRE.FindStringSubmatch(p)
	if m == nil {
		t.Fatalf("handshake %q", p)
	}
	req := e.h.session(t, m[1]).sess.Request()
	for _, dropped := range []string{"Sec-Websocket-Key", "Sec-Websocket-Version", "Connection", "Upgrade"} {
		if req.Header.Get(dropped) != "" {
			t.Errorf("header %s kept", dropped)
		}
	}
	if req.Header.Get("User-Agent") != "bench/1" || req.Header.Get("Authorization") != "Bearer x" || req.Header.Get("Host") == "" {
		t.Errorf("headers %v", req.Header)
	}
	if q := req.Query(); q.Get("token") != "abc" || q.Get("room") != "r1" || q.Get("EIO") != "4" {
		t.Errorf("query %v from %q", q, req.URL)
	}
}

// TestHeader: the compact header answers like http.Header.
func TestHeader(t *testing.T) {
	src := http.Header{"X-Multi": {"a", "b"}, "User-Agent": {"ua"}, "Authorization": {"Bearer t"}}
	h := engineio.NewHeader(src)
	if h.Get("user-agent") != "ua" || h.Get("AUTHORIZATION") != "Bearer t" || h.Get("Missing") != "" {
		t.Errorf("Get: %v", h)
	}
	if v := h.Values("x-multi"); len(v) != 2 || v[0] != "a" || v[1] != "b" {
		t.Errorf("Values = %v", v)
	}
	if !reflect.DeepEqual(h.HTTP(), src) {
		t.Errorf("HTTP() = %v, want %v", h.HTTP(), src)
	}
}

// With KeepHeaders, a session keeps only the named headers (and Host) of
// its handshake: a long-lived connection holds what its application reads.
func TestKeepHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{KeepHeaders: []string{"x-keep"}}, nil)
	resp, body := e.request(http.MethodGet, "EIO=4&transport=polling", nil, http.Header{
		"X-Keep": {"yes"}, "X-Drop": {strings.Repeat("d", 1000)}, "Authorization": {"Bearer t"},
	})
	if resp.StatusCode != 200 {
		t.Fatalf("handshake: %d %q", resp.StatusCode, body)
	}
	r := e.h.next(t)
	h := r.sess.Request().Header
	if h.Get("X-Keep") != "yes" || h.Get("Host") == "" || h.Get("X-Drop") != "" || h.Get("Authorization") != "" || len(h) != 4 {
		t.Errorf("kept headers %q, want Host and X-Keep", h)
	}
}
