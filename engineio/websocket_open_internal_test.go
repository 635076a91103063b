package engineio

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestPlainUpgradeHead: the 101 written with the open packet is the one
// the upgrader writes (RFC 6455's example key), and every request with
// something to negotiate or refuse is left to the upgrader.
func TestPlainUpgradeHead(t *testing.T) {
	req := func(edit func(r *http.Request)) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/engine.io/?EIO=4&transport=websocket", nil)
		r.Header.Set("Upgrade", "websocket")
		r.Header.Set("Connection", "Upgrade")
		r.Header.Set("Sec-WebSocket-Version", "13")
		r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if edit != nil {
			edit(r)
		}
		return r
	}
	plain := &Server{opts: Options{}}
	head, ok := plain.plainUpgradeHead(req(nil))
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	if !ok || string(head) != want {
		t.Fatalf("head = %q, %v; want %q", head, ok, want)
	}
	if _, ok := plain.plainUpgradeHead(req(func(r *http.Request) { r.Header.Set("Upgrade", "WebSocket") })); !ok {
		t.Error("Upgrade is case-insensitive")
	}
	if _, ok := plain.plainUpgradeHead(req(func(r *http.Request) { r.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate") })); !ok {
		t.Error("an extension offered to a server without deflate has nothing to negotiate")
	}
	for name, edit := range map[string]func(r *http.Request){
		"POST":               func(r *http.Request) { r.Method = http.MethodPost },
		"HTTP/1.0":           func(r *http.Request) { r.ProtoMajor, r.ProtoMinor = 1, 0 },
		"no host":            func(r *http.Request) { r.Host = "" },
		"no upgrade":         func(r *http.Request) { r.Header.Del("Upgrade") },
		"connection list":    func(r *http.Request) { r.Header.Set("Connection", "keep-alive, Upgrade") },
		"version 8":          func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") },
		"no version":         func(r *http.Request) { r.Header.Del("Sec-WebSocket-Version") },
		"short key":          func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "abc") },
		"no key":             func(r *http.Request) { r.Header.Del("Sec-WebSocket-Key") },
		"upgrade to h2c":     func(r *http.Request) { r.Header.Set("Upgrade", "h2c") },
		"connection missing": func(r *http.Request) { r.Header.Del("Connection") },
	} {
		if _, ok := plain.plainUpgradeHead(req(edit)); ok {
			t.Errorf("%s: taken by the plain path", name)
		}
	}
	deflate := &Server{opts: Options{PerMessageDeflate: true}}
	if _, ok := deflate.plainUpgradeHead(req(func(r *http.Request) { r.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate") })); ok {
		t.Error("a deflate offer to a deflate server taken by the plain path")
	}
	if _, ok := deflate.plainUpgradeHead(req(nil)); !ok {
		t.Error("a deflate server refused the plain path to a client offering no extension")
	}
	cookie := &Server{opts: Options{Cookie: &Cookie{}}}
	if _, ok := cookie.plainUpgradeHead(req(nil)); ok {
		t.Error("a server with a cookie to set taken by the plain path")
	}
}
