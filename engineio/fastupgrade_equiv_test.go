package engineio_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/internal/testutil/leakcheck"
)

// dumpServer serves a handler that hijacks every request, writes what it
// saw of it and then echoes whatever else the client sends: two of them,
// one through ServeFast and one through net/http alone, must write the
// same bytes for any input, whoever parsed it.
type dumpServer struct {
	addr string
	hs   *http.Server

	mu      sync.Mutex
	writers []string // the writer type of each request, in order
}

func newDumpServer(t *testing.T, fast bool, configure ...func(*http.Server)) *dumpServer {
	t.Helper()
	d := &dumpServer{}
	d.hs = &http.Server{
		ReadHeaderTimeout: 2 * time.Second,
		MaxHeaderBytes:    2048,
		Handler:           http.HandlerFunc(d.serve),
		ErrorLog:          quietHTTPLog(),
	}
	if !fast {
		viaNetHTTP(d.hs)
	}
	for _, f := range configure {
		f(d.hs)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- engineio.ServeFast(d.hs, ln, "/engine.io/") }()
	t.Cleanup(func() {
		_ = d.hs.Close()
		<-served
	})
	return d
}

func (d *dumpServer) serve(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.writers = append(d.writers, fmt.Sprintf("%T", w))
	d.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q %s host=%q url=%q path=%q raw=%q query=%q cl=%d te=%q\n",
		r.Method, r.RequestURI, r.Proto, r.Host, r.URL.String(), r.URL.Path, r.URL.RawPath, r.URL.RawQuery,
		r.ContentLength, r.TransferEncoding)
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "%q: %q\n", k, r.Header[k])
	}
	// What the handlers here read the client's identity from.
	fmt.Fprintf(&b, "token=%q auth=%q xff=%q origin=%q cookies=%d\n", r.URL.Query().Get("token"),
		r.Header.Get("Authorization"), r.Header.Values("X-Forwarded-For"), r.Header.Get("Origin"), len(r.Cookies()))
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(readTimeout))
	_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\n\r\n"+b.String()+"--\n")
	_, _ = io.Copy(conn, rw.Reader)
}

func (d *dumpServer) lastWriter() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.writers) == 0 {
		return ""
	}
	return d.writers[len(d.writers)-1]
}

// exchange sends in, half-closes and returns everything the server wrote
// until it closed.
func (d *dumpServer) exchange(t *testing.T, in string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", d.addr, readTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(readTimeout))
	if _, err := io.WriteString(conn, in); err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(conn)
	if err != nil && !isReset(err) {
		t.Fatalf("read: %v", err)
	}
	return string(out)
}

func quietHTTPLog() *log.Logger { return log.New(io.Discard, "", 0) }

// TestServeFastSameAsNetHTTP: crafted heads, each sent in one write to a
// server behind ServeFast and to one behind net/http alone: the handler
// sees the same request (method, target, URL, Host, every header with its
// duplicates, the credentials the gateway reads) and the same bytes after
// the head, or both answer the same refusal. Those marked fast must take
// the fast path, so that the comparison is not one of net/http with
// itself.
func TestServeFastSameAsNetHTTP(t *testing.T) {
	fast, slow := newDumpServer(t, true), newDumpServer(t, false)
	const (
		line = "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
		up   = "Host: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	)
	frame := "\x81\x85\x01\x02\x03\x04" + "5kjho" // a masked text frame
	cases := []struct {
		name, in string
		fast     bool
	}{
		{"plain", line + up + "\r\n", true},
		{"frame after head", line + up + "\r\n" + frame, true},
		{"request after head", line + up + "\r\nGET /api HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"credentials", "GET /engine.io/?EIO=4&transport=websocket&token=a%2Bb+c&token=2 HTTP/1.1\r\n" + up +
			"Authorization: Bearer one\r\nauthorization: Bearer two\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n" +
			"x-forwarded-for: 3.3.3.3\r\nOrigin: http://a.example\r\nCookie: a=b; c=d\r\nCOOKIE: e=f\r\n\r\n", true},
		{"token lists", line + "Host: example.com\r\nUpgrade: foo, WebSocket\r\nConnection: keep-alive,  upgrade \r\n\r\n", true},
		{"odd names", line + up + "x_a: 1\r\nX-A-: 2\r\n-x: 3\r\nSEC-WEBSOCKET-PROTOCOL: a, b\r\nsec-websocket-protocol: c\r\n\r\n", true},
		{"empty and spaced values", line + up + "X-A:\r\nX-B: \t \r\nX-C:\tv\t\r\nX-D:v  w\r\n\r\n", true},
		{"pragma", line + up + "Pragma: no-cache\r\n\r\n", true},
		{"pragma and cache-control", line + up + "Pragma: no-cache\r\nCache-Control: max-age=0\r\n\r\n", true},
		{"escaped path", "GET /engine.io/%2e%2e/api/v1/x%2Fy?a=%zz&b;c HTTP/1.1\r\n" + up + "\r\n", true},
		{"dot segments", "GET /engine.io/../api/v1/publish?EIO=4 HTTP/1.1\r\n" + up + "\r\n", true},
		{"host with port", line + strings.Replace(up, "example.com", "[::1]:8080", 1) + "\r\n", true},
		{"upper-case host", line + "HOST: Example.COM\r\n" + up[len("Host: example.com\r\n"):] + "\r\n", true},
		{"two hosts", line + up + "Host: other\r\n\r\n", false},
		{"host in absolute form", "GET http://evil/engine.io/?EIO=4 HTTP/1.1\r\n" + up + "\r\n", false},
		{"obs-fold", line + up + "X-A: a\r\n b\r\n\r\n", false},
		{"folded Host", line + "Host: example.com\r\n evil.com\r\n" + up[len("Host: example.com\r\n"):] + "\r\n", false},
		{"bare LF", strings.ReplaceAll(line+up+"\r\n", "\r\n", "\n"), false},
		{"bare LF ends the head early", line + up + "\nX-Smuggled: 1\r\n\r\n", false},
		{"bare LF inside a line", line + up + "X-A: a\nHost: evil\r\n\r\n", false},
		{"bare CR inside a line", line + up + "X-A: a\rHost: evil\r\n\r\n", false},
		{"NUL", line + up + "X-A: a\x00b\r\n\r\n", false},
		{"DEL", line + up + "X-A: a\x7fb\r\n\r\n", false},
		{"space before colon", line + up + "Host : evil\r\n\r\n", false},
		{"space in name", line + up + "X A: b\r\n\r\n", false},
		{"leading space on first header", line + " " + up + "\r\n", false},
		{"content-length", line + up + "Content-Length: 5\r\n\r\n" + "GET /x HTTP/1.1\r\nHost: y\r\n\r\n", false},
		{"content-length zero", line + up + "content-length: 0\r\n\r\n" + frame, false},
		{"chunked", line + up + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false},
		{"chunked and length", line + up + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", false},
		{"HTTP/1.0", strings.Replace(line, "HTTP/1.1", "HTTP/1.0", 1) + up + "\r\n", false},
		{"HTTP/1.1 lower", strings.Replace(line, "HTTP/1.1", "http/1.1", 1) + up + "\r\n", false},
		{"lower-case method", "get" + line[3:] + up + "\r\n", false},
		{"two spaces", strings.Replace(line, "GET ", "GET  ", 1) + up + "\r\n", false},
		{"trailing space", strings.Replace(line, "HTTP/1.1\r\n", "HTTP/1.1 \r\n", 1) + up + "\r\n", false},
		{"tab in target", strings.Replace(line, "EIO=4", "EIO=\t4", 1) + up + "\r\n", false},
		{"fragment", strings.Replace(line, "websocket ", "websocket#f ", 1) + up + "\r\n", false},
		{"no host", line + up[len("Host: example.com\r\n"):] + "\r\n", false},
		{"empty host", line + "Host:\r\n" + up[len("Host: example.com\r\n"):] + "\r\n", false},
		{"host with path", line + "Host: a/b\r\n" + up[len("Host: example.com\r\n"):] + "\r\n", false},
		{"long name", line + up + strings.Repeat("x", 65) + ": 1\r\n\r\n", false},
		{"64-byte name", line + up + strings.Repeat("x", 64) + ": 1\r\n\r\n", true},
		{"many headers", line + up + strings.Repeat("X-A: 1\r\n", 64) + "\r\n", false},
		{"over MaxHeaderBytes", line + up + "X-A: " + strings.Repeat("a", 2100) + "\r\n\r\n", false},
		{"over the read buffer", line + up + "X-A: " + strings.Repeat("a", 4100) + "\r\n\r\n", false},
		{"outside the path", "GET /engine.iox/ HTTP/1.1\r\n" + up + "\r\n", false},
		{"utf-8 value", line + up + "X-A: caf\xc3\xa9\r\n\r\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, want := fast.exchange(t, c.in), slow.exchange(t, c.in)
			if got != want {
				t.Fatalf("input %q\nServeFast:\n%s\nnet/http:\n%s", c.in, got, want)
			}
			took := strings.HasPrefix(got, "HTTP/1.1 200") && fast.lastWriter() == "*engineio.fastWriter"
			if took != c.fast {
				t.Fatalf("fast path %v, want %v; answer %q", took, c.fast, got)
			}
		})
	}
}

// TestServeFastCloseMidHead: Close and Shutdown end the connections still
// sending their first request, as net/http ends its new ones, and a
// handshake completed after Shutdown returned reaches no handler.
func TestServeFastCloseMidHead(t *testing.T) {
	for _, stop := range []string{"Close", "Shutdown"} {
		t.Run(stop, func(t *testing.T) {
			var mu sync.Mutex
			called := 0
			hs := &http.Server{
				ReadHeaderTimeout: 10 * time.Second,
				ErrorLog:          quietHTTPLog(),
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					called++
					mu.Unlock()
					w.WriteHeader(http.StatusTeapot)
				}),
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- engineio.ServeFast(hs, ln, "/engine.io/") }()
			var conns []net.Conn
			firsts := []string{""}
			if stop == "Close" {
				// A head that came in part is net/http's, which waits for
				// it on Shutdown (up to 5 s) as for any new connection.
				firsts = append(firsts, "GET /engine.io/?EIO=4 HTTP/1.1\r\nHost: a\r\n")
			}
			for _, first := range firsts {
				c, err := net.DialTimeout("tcp", ln.Addr().String(), readTimeout)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := io.WriteString(c, first); err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
			}
			time.Sleep(100 * time.Millisecond) // accepted and waiting
			start := time.Now()
			if stop == "Close" {
				_ = hs.Close()
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				if err := hs.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := <-served; err != http.ErrServerClosed {
				t.Fatalf("ServeFast: %v", err)
			}
			// The client finishing its handshake now must find the
			// connection closed.
			_, _ = io.WriteString(conns[0], "GET /engine.io/?EIO=4 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
			for i, c := range conns {
				_ = c.SetReadDeadline(time.Now().Add(readTimeout))
				n, err := c.Read(make([]byte, 64))
				if n != 0 || err == nil || time.Since(start) > 2*time.Second {
					t.Fatalf("conn %d: read %d, %v after %v", i, n, err, time.Since(start))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if called != 0 {
				t.Fatalf("the handler ran %d times after %s", called, stop)
			}
		})
	}
}

// TestServeFastSlowHead: a head trickled in byte by byte is dropped
// ReadHeaderTimeout after the connection was accepted, as net/http drops
// it, not twice that (the sniff's wait and then net/http's own).
func TestServeFastSlowHead(t *testing.T) {
	const timeout = time.Second
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprint("fast=", fast), func(t *testing.T) {
			d := newDumpServer(t, fast, func(hs *http.Server) { hs.ReadHeaderTimeout = timeout })
			conn, err := net.DialTimeout("tcp", d.addr, readTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			closed := make(chan time.Duration, 1)
			go func() {
				_ = conn.SetReadDeadline(time.Now().Add(readTimeout))
				_, _ = io.Copy(io.Discard, conn)
				closed <- time.Since(start)
			}()
			time.Sleep(timeout * 7 / 10) // the first byte just before the sniff gives up
			head := "GET /engine.io/?EIO=4 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n" +
				strings.Repeat("X-A: b\r\n", 20) + "\r\n"
			go func() {
				for i := 0; i < len(head); i++ {
					if _, err := io.WriteString(conn, head[i:i+1]); err != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			if took := <-closed; took < timeout*9/10 || took > timeout*14/10 {
				t.Fatalf("closed after %v, want about %v", took, timeout)
			}
		})
	}
}

// TestServeFastIdleConnections: connections that send nothing, or part of
// a head, each cost a goroutine until ReadHeaderTimeout, then are closed
// without an answer and their goroutines end.
func TestServeFastIdleConnections(t *testing.T) {
	const timeout = 500 * time.Millisecond
	d := newDumpServer(t, true, func(hs *http.Server) { hs.ReadHeaderTimeout = timeout })
	const n = 100
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", d.addr, readTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i%2 == 1 {
			_, _ = io.WriteString(c, "GET /engine.io/?EIO=4 HTTP/1.1\r\n")
		}
		conns[i] = c
	}
	deadline := time.Now().Add(timeout / 2)
	for connGoroutines() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := connGoroutines(); g < n {
		t.Fatalf("%d goroutines for %d connections", g, n)
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(readTimeout))
		if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
			t.Fatalf("conn %d: read %q, %v", i, b, err)
		}
	}
	deadline = time.Now().Add(waitTimeout)
	for connGoroutines() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g := connGoroutines(); g > 0 {
		t.Fatalf("%d goroutines left", g)
	}
}

// connGoroutines counts the goroutines serving a connection, ServeFast's
// sniffing ones and net/http's (other tests' come and go meanwhile).
func connGoroutines() int {
	n := 0
	for _, g := range leakcheck.Goroutines() {
		if strings.Contains(g, "engineio.(*fastFront).serveConn") || strings.Contains(g, "net/http.(*conn).serve") {
			n++
		}
	}
	return n
}

type baseKey struct{}

// TestServeFastBaseContext: a server with a BaseContext gets its context
// in every request's, the WebSocket handshakes' included (ServeFast, whose
// requests carry context.Background(), leaves such a server to net/http).
func TestServeFastBaseContext(t *testing.T) {
	got := make(chan any, 1)
	d := newDumpServer(t, true, func(hs *http.Server) {
		hs.BaseContext = func(net.Listener) context.Context { return context.WithValue(context.Background(), baseKey{}, "base") }
		next := hs.Handler
		hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- r.Context().Value(baseKey{})
			next.ServeHTTP(w, r)
		})
	})
	out := d.exchange(t, "GET /engine.io/?EIO=4 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200") {
		t.Fatalf("answer %q", out)
	}
	if v := <-got; v != "base" {
		t.Fatalf("context value %v", v)
	}
}

// TestServeFastNoHTTP1: a server whose Protocols leave HTTP/1 out serves
// no HTTP/1.1 handshake, the fast path's included.
func TestServeFastNoHTTP1(t *testing.T) {
	d := newDumpServer(t, true, func(hs *http.Server) {
		hs.Protocols = new(http.Protocols)
		hs.Protocols.SetUnencryptedHTTP2(true)
	})
	out := d.exchange(t, "GET /engine.io/?EIO=4 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
	if strings.HasPrefix(out, "HTTP/1.1 200") || d.lastWriter() != "" {
		t.Fatalf("served over HTTP/1.1 (writer %q): %q", d.lastWriter(), out)
	}
}
