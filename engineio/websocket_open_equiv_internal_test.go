package engineio

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// bufConn is a hijacked connection that records what is written to it.
type bufConn struct {
	net.Conn
	out bytes.Buffer
}

func (c *bufConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *bufConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (c *bufConn) Close() error                     { return nil }
func (c *bufConn) SetDeadline(time.Time) error      { return nil }
func (c *bufConn) SetWriteDeadline(time.Time) error { return nil }

type hijackRecorder struct {
	*httptest.ResponseRecorder
	conn *bufConn
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriter(h.conn)), nil
}

// TestPlainUpgradeHeadLikeUpgrader: for every handshake request the plain
// path takes, gobwas/ws's upgrader (as upgrader configures it) accepts it
// too and writes the very same 101. Requests are built from header
// variations an attacker or an odd client could send.
func TestPlainUpgradeHeadLikeUpgrader(t *testing.T) {
	type edit func(h http.Header)
	set := func(k string, vs ...string) edit { return func(h http.Header) { h[k] = vs } }
	del := func(k string) edit { return func(h http.Header) { delete(h, k) } }
	variants := map[string][]edit{
		"Upgrade": {nil, set("Upgrade", "WEBSOCKET"), set("Upgrade", "websocket", "h2c"), set("Upgrade", "h2c", "websocket"),
			set("Upgrade", "websocket, h2c"), set("Upgrade", "websocket/13"), set("Upgrade", ""), del("Upgrade"), set("Upgrade", "websocket\x00")},
		"Connection": {nil, set("Connection", "upgrade"), set("Connection", "UPGRADE"), set("Connection", "keep-alive, Upgrade"),
			set("Connection", "keep-alive", "Upgrade"), set("Connection", "Upgrade", "close"), set("Connection", "Upgradex"), del("Connection")},
		"Sec-Websocket-Version": {nil, set("Sec-Websocket-Version", "13", "8"), set("Sec-Websocket-Version", "8", "13"),
			set("Sec-Websocket-Version", "13, 8"), set("Sec-Websocket-Version", "013"), set("Sec-Websocket-Version", ""), del("Sec-Websocket-Version")},
		"Sec-Websocket-Key": {nil, set("Sec-Websocket-Key", "AAAAAAAAAAAAAAAAAAAAAA=="), set("Sec-Websocket-Key", "!!!!!!!!!!!!!!!!!!!!!!!!"),
			set("Sec-Websocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="+"A"), set("Sec-Websocket-Key", "dGhlIHNhbXBsZSBub25jZQ="),
			set("Sec-Websocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "AAAAAAAAAAAAAAAAAAAAAA=="), set("Sec-Websocket-Key", "", "dGhlIHNhbXBsZSBub25jZQ=="),
			set("Sec-Websocket-Key", "ünïcödé-kéy-ẍẍ"), del("Sec-Websocket-Key")},
		"Sec-Websocket-Extensions": {nil, set("Sec-Websocket-Extensions", "permessage-deflate"), set("Sec-Websocket-Extensions", ""),
			set("Sec-Websocket-Extensions", "x-unknown; a=1"), set("Sec-Websocket-Extensions", "permessage-deflate; client_max_window_bits, x")},
		"Sec-Websocket-Protocol": {nil, set("Sec-Websocket-Protocol", "chat, superchat")},
	}
	order := []string{"Upgrade", "Connection", "Sec-Websocket-Version", "Sec-Websocket-Key", "Sec-Websocket-Extensions", "Sec-Websocket-Protocol"}
	servers := map[string]*Server{
		"plain":   {opts: Options{}},
		"deflate": {opts: Options{PerMessageDeflate: true}},
	}
	for name, srv := range servers {
		taken := 0
		for _, field := range order {
			for vi, ed := range variants[field] {
				for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
					for _, proto := range [][2]int{{1, 1}, {1, 0}, {2, 0}} {
						r := httptest.NewRequest(method, "/engine.io/?EIO=4&transport=websocket", nil)
						r.ProtoMajor, r.ProtoMinor = proto[0], proto[1]
						r.Header.Set("Upgrade", "websocket")
						r.Header.Set("Connection", "Upgrade")
						r.Header.Set("Sec-WebSocket-Version", "13")
						r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
						if ed != nil {
							ed(r.Header)
						}
						head, ok := srv.plainUpgradeHead(r)
						if !ok {
							continue
						}
						taken++
						u, _ := (&Session{srv: srv, id: "sid"}).upgrader(r)
						w := &hijackRecorder{httptest.NewRecorder(), &bufConn{}}
						if _, _, _, err := u.Upgrade(r, w); err != nil {
							t.Errorf("%s: %s variant %d, %s HTTP/%d.%d: taken by the plain path, refused by the upgrader: %v",
								name, field, vi, method, proto[0], proto[1], err)
							continue
						}
						if got := w.conn.out.String(); got != string(head) {
							t.Errorf("%s: %s variant %d: plain path writes %q, the upgrader %q", name, field, vi, head, got)
						}
					}
				}
			}
		}
		if taken == 0 {
			t.Errorf("%s: the plain path took no request: the test checks nothing", name)
		}
	}
}
