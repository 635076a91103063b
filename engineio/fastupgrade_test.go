package engineio_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/operate/realtime/engineio"
)

// viaNetHTTP makes newEnv serve everything through net/http: ServeFast
// leaves a server with a ConnContext to srv.Serve.
func viaNetHTTP(hs *http.Server) {
	hs.ConnContext = func(ctx context.Context, _ net.Conn) context.Context { return ctx }
}

// writerTypes wraps an env's handler to record the type of the writer each
// request got, by path and query.
type writerTypes struct {
	mu sync.Mutex
	m  map[string]string
}

func (wt *writerTypes) wrap(hs *http.Server) {
	next := hs.Handler
	hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wt.mu.Lock()
		wt.m[r.URL.Query().Get("transport")+","+fmt.Sprint(r.URL.Query().Has("sid"))] = fmt.Sprintf("%T", w)
		wt.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (wt *writerTypes) of(key string) string {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	return wt.m[key]
}

// TestServeFastPaths: a direct WebSocket handshake and the upgrade of a
// polling session take the fast path and work; the polling requests are
// net/http's.
func TestServeFastPaths(t *testing.T) {
	wt := &writerTypes{m: map[string]string{}}
	e := newEnv(t, nil, nil, wt.wrap)

	c, _, rec := e.openWS()
	c.sendText("4direct")
	c.expectText("4direct")
	if m := rec.waitMessages(t, 1); m[0].data != "direct" {
		t.Fatalf("messages %v", m)
	}

	sid, prec := e.handshake()
	u := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	u.sendText("2probe")
	u.expectText("3probe")
	u.sendText("5")
	u.sendText("4upgraded")
	if m := prec.waitMessages(t, 1); m[0].data != "upgraded" {
		t.Fatalf("messages %v", m)
	}
	u.expectText("4upgraded")

	const fast = "*engineio.fastWriter"
	for key, want := range map[string]string{"websocket,false": fast, "websocket,true": fast, "polling,false": "*http.response"} {
		if got := wt.of(key); got != want {
			t.Errorf("%s: writer %s, want %s", key, got, want)
		}
	}
}

// TestServeFastAnswersLikeNetHTTP: requests the fast path refuses or
// declines get the answer net/http gives them: the same status, body and
// connection close, whoever parsed them (a query net/url cannot decode is
// no reason to refuse a handshake: Engine.IO reads its keys in place).
func TestServeFastAnswersLikeNetHTTP(t *testing.T) {
	fast := newEnv(t, nil, nil, func(hs *http.Server) { hs.MaxHeaderBytes = 2048 })
	slow := newEnv(t, nil, nil, viaNetHTTP, func(hs *http.Server) { hs.MaxHeaderBytes = 2048 })
	up := func(e *env, query string) string { return e.upgradeRequest(query) }
	for name, req := range map[string]func(*env) string{
		"unsupported version": func(e *env) string { return up(e, "EIO=3&transport=websocket") },
		"unknown session":     func(e *env) string { return up(e, "EIO=4&transport=websocket&sid=nope") },
		"unknown transport":   func(e *env) string { return up(e, "EIO=4&transport=carrier-pigeon") },
		"no key": func(e *env) string {
			return strings.Replace(up(e, "EIO=4&transport=websocket"), "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 1)
		},
		"short key": func(e *env) string {
			return strings.Replace(up(e, "EIO=4&transport=websocket"), "dGhlIHNhbXBsZSBub25jZQ==", "abc", 1)
		},
		"version 8": func(e *env) string {
			return strings.Replace(up(e, "EIO=4&transport=websocket"), "Version: 13", "Version: 8", 1)
		},
		"two hosts": func(e *env) string {
			return strings.Replace(up(e, "EIO=4&transport=websocket"), "\r\n\r\n", "\r\nHost: other\r\n\r\n", 1)
		},
		"control byte": func(e *env) string {
			return strings.Replace(up(e, "EIO=4&transport=websocket"), "\r\n\r\n", "\r\nX-A: a\x01b\r\n\r\n", 1)
		},
		"huge head": func(e *env) string {
			return strings.Replace(up(e, "EIO=4&transport=websocket"), "\r\n\r\n", "\r\nX-A: "+strings.Repeat("a", 8000)+"\r\n\r\n", 1)
		},
		"bad escape": func(e *env) string { return up(e, "EIO=4&transport=websocket&x=%zz") },
		"POST":       func(e *env) string { return "POST" + strings.TrimPrefix(up(e, "EIO=4&transport=websocket"), "GET") },
	} {
		t.Run(name, func(t *testing.T) {
			fr, fb, fclosed := fast.rawHTTP(req(fast))
			sr, sb, sclosed := slow.rawHTTP(req(slow))
			if fr.StatusCode != sr.StatusCode || fb != sb || fclosed != sclosed {
				t.Fatalf("fast: %d %q closed %v; net/http: %d %q closed %v", fr.StatusCode, fb, fclosed, sr.StatusCode, sb, sclosed)
			}
			if accepted := name == "bad escape"; !accepted && (fr.StatusCode < 400 || fr.StatusCode > 499) {
				t.Fatalf("status %d", fr.StatusCode)
			}
			for _, h := range []string{"Content-Type", "Sec-Websocket-Version"} {
				if fr.Header.Get(h) != sr.Header.Get(h) {
					t.Errorf("%s: fast %q, net/http %q", h, fr.Header.Get(h), sr.Header.Get(h))
				}
			}
		})
	}
}

// TestServeFastSplitHead: a handshake whose head arrives in two segments
// is served by net/http, with the bytes already read, and works.
func TestServeFastSplitHead(t *testing.T) {
	e := newEnv(t, nil, nil)
	conn, err := net.DialTimeout("tcp", e.addr, readTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(readTimeout))
	req := e.upgradeRequest("EIO=4&transport=websocket")
	for _, part := range []string{req[:40], req[40:]} {
		if _, err := io.WriteString(conn, part); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // two reads on the server's side, most likely
	}
	br := bufio.NewReader(conn)
	read101(t, br)
	rec := e.h.next(t)
	if _, err := conn.Write(frameBytes(t, ws.MaskFrame(ws.NewTextFrame([]byte("4split"))))); err != nil {
		t.Fatal(err)
	}
	if m := rec.waitMessages(t, 1); m[0].data != "split" {
		t.Fatalf("messages %v", m)
	}
}

// TestServeFastSilentClient: a client that connects and sends nothing is
// dropped after ReadHeaderTimeout, without an answer, as net/http does.
func TestServeFastSilentClient(t *testing.T) {
	e := newEnv(t, nil, nil, func(hs *http.Server) { hs.ReadHeaderTimeout = 200 * time.Millisecond })
	conn, err := net.DialTimeout("tcp", e.addr, readTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(readTimeout))
	start := time.Now()
	n, err := conn.Read(make([]byte, 64))
	if n != 0 || err == nil || time.Since(start) > readTimeout/2 {
		t.Fatalf("read %d, %v after %v", n, err, time.Since(start))
	}
	c, _, _ := e.openWS() // the server still serves
	c.conn.Close()
}

// TestServeFastHandlerPanic: a handler that panics on a fast request loses
// its connection, is logged, and the server goes on.
func TestServeFastHandlerPanic(t *testing.T) {
	var logged strings.Builder
	var mu sync.Mutex
	e := newEnv(t, nil, nil, func(hs *http.Server) {
		next := hs.Handler
		hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("boom") != "" {
				panic("boom")
			}
			next.ServeHTTP(w, r)
		})
		hs.ErrorLog.SetOutput(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return logged.Write(p)
		}))
	})
	conn, err := net.DialTimeout("tcp", e.addr, readTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(readTimeout))
	if _, err := io.WriteString(conn, e.upgradeRequest("EIO=4&transport=websocket&boom=1")); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Read(make([]byte, 64)); n != 0 || err == nil {
		t.Fatalf("read %d, %v", n, err)
	}
	// The connection's close can reach the client before the server has
	// written its log line: wait for it.
	var got string
	for deadline := time.Now().Add(readTimeout); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		got = logged.String()
		mu.Unlock()
		if strings.Contains(got, "http: panic serving") && strings.Contains(got, "boom") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %q", got)
		}
	}
	c, _, _ := e.openWS()
	c.conn.Close()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestServeFastShutdown: Shutdown ends ServeFast with ErrServerClosed and
// refuses connections afterwards.
func TestServeFastShutdown(t *testing.T) {
	srv, err := engineio.NewServer(newRecorder(true), &engineio.Options{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	served := make(chan error, 1)
	go func() { served <- engineio.ServeFast(hs, ln, srv.Options().Path) }()
	// A request through each listener first: the fallback's Serve is up.
	resp, err := http.Get("http://" + ln.Addr().String() + srv.Options().Path + "?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err != http.ErrServerClosed {
			t.Fatalf("ServeFast: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("ServeFast did not return")
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("the listener still accepts")
	}
	_ = srv.Shutdown(ctx)
}
