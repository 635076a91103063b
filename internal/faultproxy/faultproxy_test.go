package faultproxy_test

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/operate/realtime/internal/faultproxy"
	"github.com/operate/realtime/internal/testutil/wait"
)

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func newProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *faultproxy.Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads it back within wait; it returns what came.
func roundTrip(c net.Conn, msg string, wait time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	n, err := io.ReadFull(c, buf)
	return string(buf[:n]), err
}

// dialRoundTrip is roundTrip on a new connection, where the connection
// itself may be refused.
func dialRoundTrip(p *faultproxy.Proxy, msg string) (string, error) {
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		return "", err
	}
	defer c.Close()
	return roundTrip(c, msg, 5*time.Second)
}

func TestForwardAndCut(t *testing.T) {
	p := newProxy(t, echoServer(t))
	a, b := dial(t, p), dial(t, p)
	for _, c := range []net.Conn{a, b} {
		if got, err := roundTrip(c, "hello", 5*time.Second); err != nil || got != "hello" {
			t.Fatalf("echo: %q, %v", got, err)
		}
	}
	if n := p.Cut(); n != 2 {
		t.Fatalf("Cut() = %d, want 2", n)
	}
	for _, c := range []net.Conn{a, b} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read after Cut: %v, want a connection reset", err)
		}
	}
	wait.For(t, "no connection left", func() bool { return p.Conns() == 0 })
	// New connections work again.
	if got, err := roundTrip(dial(t, p), "again", 5*time.Second); err != nil || got != "again" {
		t.Fatalf("echo after Cut: %q, %v", got, err)
	}
}

func TestStallHoldsBytesThenDelivers(t *testing.T) {
	p := newProxy(t, echoServer(t))
	c := dial(t, p)
	if _, err := roundTrip(c, "x", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	const stall = 300 * time.Millisecond
	start := time.Now()
	if n := p.Stall(1, stall); n != 1 {
		t.Fatalf("Stall() = %d", n)
	}
	got, err := roundTrip(c, "late", 5*time.Second)
	if err != nil || got != "late" {
		t.Fatalf("after the stall: %q, %v", got, err)
	}
	if d := time.Since(start); d < stall {
		t.Fatalf("bytes came back after %v, during a %v stall", d, stall)
	}
}

func TestStallHidesCloseUntilResumed(t *testing.T) {
	p := newProxy(t, echoServer(t))
	c := dial(t, p)
	if _, err := roundTrip(c, "x", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Stall(1, time.Hour)
	// The client gives up, as socket.io-client does at its ping timeout:
	// the server end is not told while the network is dead, but when both
	// ends are gone the proxy lets go.
	c.Close()
	time.Sleep(50 * time.Millisecond)
	if p.Conns() != 1 {
		t.Fatalf("%d connections: the client's close went through a stall", p.Conns())
	}
	p.Cut() // the other end closing stands in for the server's ping timeout
	wait.For(t, "the stalled connection to go", func() bool { return p.Conns() == 0 })
}

func TestRefuse(t *testing.T) {
	p := newProxy(t, echoServer(t))
	open := dial(t, p)
	if _, err := roundTrip(open, "x", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Refuse(300 * time.Millisecond)
	if _, err := dialRoundTrip(p, "no"); err == nil {
		t.Fatal("a connection went through during Refuse")
	}
	if got, err := roundTrip(open, "kept", 5*time.Second); err != nil || got != "kept" {
		t.Fatalf("an open connection during Refuse: %q, %v", got, err)
	}
	time.Sleep(350 * time.Millisecond)
	if got, err := dialRoundTrip(p, "back"); err != nil || got != "back" {
		t.Fatalf("after Refuse: %q, %v", got, err)
	}
	if p.Stats().Refused.Load() != 1 {
		t.Fatalf("Refused = %d", p.Stats().Refused.Load())
	}
}

func TestTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	p := newProxy(t, down)
	if _, err := dialRoundTrip(p, "x"); err == nil {
		t.Fatal("a connection to a stopped server went through")
	}
	p.SetTarget(echoServer(t))
	if got, err := dialRoundTrip(p, "up"); err != nil || got != "up" {
		t.Fatalf("after SetTarget: %q, %v", got, err)
	}
}
