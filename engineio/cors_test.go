package engineio_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/operate/realtime/engineio"
)

// §1.10 cors: an allow-list reflects a matching origin and sends nothing
// for another one.
func TestCORSAllowList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{CORS: &engineio.CORS{Origins: []string{"http://example.com", "https://app.example.org"}, Credentials: true}}, nil)
	tests := []struct {
		origin, allow string
	}{
		{"http://example.com", "http://example.com"},
		{"https://app.example.org", "https://app.example.org"},
		{"http://evil.com", ""},
		{"http://example.com.evil.com", ""},
		{"", ""},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.origin != "" {
			h.Set("Origin", tt.origin)
		}
		resp, _ := e.request(http.MethodGet, "EIO=4&transport=polling", nil, h)
		if resp.StatusCode != 200 {
			t.Errorf("origin %q: status %d", tt.origin, resp.StatusCode)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.allow {
			t.Errorf("origin %q: Access-Control-Allow-Origin %q, want %q", tt.origin, got, tt.allow)
		}
		if got := resp.Header.Values("Vary"); len(got) != 1 || got[0] != "Origin" {
			t.Errorf("origin %q: Vary %q", tt.origin, got)
		}
		if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
			t.Errorf("origin %q: Access-Control-Allow-Credentials %q", tt.origin, got)
		}
	}
	// Error responses carry the headers too (browsers must read them).
	resp, body := e.request(http.MethodGet, "EIO=4&transport=polling&sid=nope", nil, http.Header{"Origin": {"http://example.com"}})
	checkError(t, resp, body, 400, 1, "Session ID unknown")
	if resp.Header.Get("Access-Control-Allow-Origin") != "http://example.com" {
		t.Errorf("error response without CORS headers: %v", resp.Header)
	}
}

func TestCORSWildcard(t *testing.T) {
	t.Parallel()
	e := newEnv(t, corsOpts(engineio.CORS{Origins: []string{"*"}}), nil)
	resp, _ := e.request(http.MethodGet, "EIO=4&transport=polling", nil, http.Header{"Origin": {"http://anything.test"}})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin %q, want *", got)
	}
	if resp.Header.Get("Access-Control-Allow-Credentials") != "" || resp.Header.Get("Vary") != "" {
		t.Errorf("headers %v", resp.Header)
	}

	// With credentials, "*" is not allowed by browsers: the origin is
	// reflected instead.
	e2 := newEnv(t, corsOpts(engineio.CORS{Origins: []string{"*"}, Credentials: true}), nil)
	resp, _ = e2.request(http.MethodGet, "EIO=4&transport=polling", nil, http.Header{"Origin": {"http://anything.test"}})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://anything.test" {
		t.Errorf("Access-Control-Allow-Origin %q", got)
	}
	if resp.Header.Get("Access-Control-Allow-Credentials") != "true" || resp.Header.Get("Vary") != "Origin" {
		t.Errorf("headers %v", resp.Header)
	}
}

func TestCORSAllowOriginFunc(t *testing.T) {
	t.Parallel()
	e := newEnv(t, corsOpts(engineio.CORS{AllowOrigin: func(o string) bool { return strings.HasSuffix(o, ".example.com") }}), nil)
	for origin, want := range map[string]string{"https://a.example.com": "https://a.example.com", "https://example.net": ""} {
		resp, _ := e.request(http.MethodGet, "EIO=4&transport=polling", nil, http.Header{"Origin": {origin}})
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("origin %q: %q, want %q", origin, got, want)
		}
	}
}

// §1.10: a preflight is answered 204 with the methods and the requested
// headers reflected.
func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	e := newEnv(t, corsOpts(engineio.CORS{Origins: []string{"http://example.com"}, Credentials: true}), nil)
	resp, body := e.request(http.MethodOptions, "EIO=4&transport=polling", nil, http.Header{
		"Origin":                         {"http://example.com"},
		"Access-Control-Request-Method":  {"POST"},
		"Access-Control-Request-Headers": {"content-type,x-custom"},
	})
	if resp.StatusCode != http.StatusNoContent || body != "" {
		t.Fatalf("preflight: %d %q", resp.StatusCode, body)
	}
	h := resp.Header
	if h.Get("Access-Control-Allow-Methods") != "GET,HEAD,PUT,PATCH,POST,DELETE" ||
		h.Get("Access-Control-Allow-Headers") != "content-type,x-custom" ||
		h.Get("Access-Control-Allow-Origin") != "http://example.com" ||
		h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("preflight headers %v", h)
	}
	if vary := strings.Join(h.Values("Vary"), ","); !strings.Contains(vary, "Origin") || !strings.Contains(vary, "Access-Control-Request-Headers") {
		t.Errorf("Vary %q", vary)
	}
	if e.srv.SessionCount() != 0 {
		t.Error("a preflight opened a session")
	}

	// Configured methods, headers and max age.
	e2 := newEnv(t, corsOpts(engineio.CORS{Origins: []string{"*"}, Methods: []string{"GET", "POST"}, AllowedHeaders: []string{"X-A", "X-B"}, MaxAge: time.Hour}), nil)
	resp, _ = e2.request(http.MethodOptions, "EIO=4&transport=polling", nil, http.Header{
		"Origin": {"http://x.test"}, "Access-Control-Request-Headers": {"x-other"},
	})
	h = resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Methods") != "GET,POST" ||
		h.Get("Access-Control-Allow-Headers") != "X-A,X-B" || h.Get("Access-Control-Max-Age") != "3600" {
		t.Errorf("preflight: %d %v", resp.StatusCode, h)
	}
}

// Without the CORS option no CORS header is sent, and OPTIONS is not a
// preflight.
func TestCORSOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	resp, _ := e.request(http.MethodGet, "EIO=4&transport=polling", nil, http.Header{"Origin": {"http://example.com"}})
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("header %s sent", k)
		}
	}
	resp, body := e.request(http.MethodOptions, "EIO=4&transport=polling", nil, http.Header{"Origin": {"http://example.com"}})
	checkError(t, resp, body, 400, 2, "Bad handshake method")
}

// corsOpts wraps a CORS configuration in Options.
func corsOpts(c engineio.CORS) *engineio.Options { return &engineio.Options{CORS: &c} }

// §1.10 cookie: Set-Cookie io=<sid>; Path=/; HttpOnly; SameSite=Lax on the
// handshake response only, polling or WebSocket.
func TestCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{Cookie: &engineio.Cookie{}}, nil)
	resp, body := e.get("EIO=4&transport=polling")
	m := handshakeRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("handshake %q", body)
	}
	sid := m[1]
	if got := resp.Header.Values("Set-Cookie"); len(got) != 1 || got[0] != "io="+sid+"; Path=/; HttpOnly; SameSite=Lax" {
		t.Errorf("Set-Cookie %q", got)
	}
	// Not on later polling requests.
	r := e.h.session(t, sid)
	_ = r.sess.Send(engineio.NewPacket(4, []byte("x")))
	resp, _ = e.get("EIO=4&transport=polling&sid=" + sid)
	if resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("Set-Cookie on a GET: %q", resp.Header.Get("Set-Cookie"))
	}
	resp, _ = e.request(http.MethodPost, "EIO=4&transport=polling&sid="+sid, strings.NewReader("6"), nil)
	if resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("Set-Cookie on a POST")
	}
	// Not on the upgrade.
	c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	if c.header.Get("Set-Cookie") != "" {
		t.Errorf("Set-Cookie on the upgrade: %q", c.header.Get("Set-Cookie"))
	}
	// On a WebSocket handshake: in the 101 response.
	c2 := e.dialWS("EIO=4&transport=websocket")
	m = handshakeRE.FindStringSubmatch(c2.expectPrefix("0"))
	if m == nil {
		t.Fatal("no open packet")
	}
	if got := c2.header.Values("Set-Cookie"); len(got) != 1 || got[0] != "io="+m[1]+"; Path=/; HttpOnly; SameSite=Lax" {
		t.Errorf("Set-Cookie on the WebSocket handshake %q", got)
	}
}

func TestCookieCustom(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{Cookie: &engineio.Cookie{
		Name: "sticky", Path: "/rt", NotHTTPOnly: true, SameSite: http.SameSiteStrictMode, Secure: true, MaxAge: time.Hour,
	}}, nil)
	resp, body := e.get("EIO=4&transport=polling")
	m := handshakeRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("handshake %q", body)
	}
	want := "sticky=" + m[1] + "; Path=/rt; Max-Age=3600; Secure; SameSite=Strict"
	if got := resp.Header.Get("Set-Cookie"); got != want {
		t.Errorf("Set-Cookie %q, want %q", got, want)
	}
}

// CORS headers are not needed on a WebSocket handshake (browsers do not
// apply CORS to it), but they must not break it.
func TestCORSWebSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, corsOpts(engineio.CORS{Origins: []string{"http://example.com"}}), nil)
	c := e.dialWS("EIO=4&transport=websocket", func(d *ws.Dialer) {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Origin": {"http://example.com"}})
	})
	c.expectPrefix(`0{"sid":`)
}
