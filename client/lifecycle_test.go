package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/operate/realtime/client"
	"github.com/operate/realtime/internal/testutil/wait"
)

// TestNoHandlerAfterClose floods a client with events and closes it from
// another goroutine: no handler may start once Close has returned, and Done
// follows.
func TestNoHandlerAfterClose(t *testing.T) {
	s := startServer(t, serverOptions{})
	c := newClient(t, client.Config{URL: s.url, Token: token(t, "org_close", "u1", time.Hour)})
	var closed, late, seen atomic.Int64
	c.OnEvent("invoice:paid", func(json.RawMessage) {
		if closed.Load() != 0 {
			late.Add(1)
		}
		seen.Add(1)
		time.Sleep(time.Millisecond) // a slow handler, so that events queue
	})
	connect(t, c)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				emitSeq(t, s, "org_close", i)
			}
		}
	}()
	wait.For(t, "events to flow", func() bool { return seen.Load() > 50 })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	closed.Store(1)
	close(stop)
	<-done
	select {
	case <-c.Done():
	case <-time.After(waitTimeout):
		t.Fatal("Done not closed after Close")
	}
	if n := late.Load(); n != 0 {
		t.Fatalf("%d handlers started after Close returned", n)
	}
	if c.Err() != nil || c.Connected() {
		t.Fatalf("after Close: Err %v, Connected %v", c.Err(), c.Connected())
	}
	if _, err := c.Subscribe(ctx, []string{"*"}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

// TestCloseFromAHandler: a handler may close its own client.
func TestCloseFromAHandler(t *testing.T) {
	s := startServer(t, serverOptions{})
	c := newClient(t, client.Config{URL: s.url, Token: token(t, "org_ch", "u1", time.Hour)})
	closed := make(chan error, 1)
	c.OnEvent("invoice:paid", func(json.RawMessage) { closed <- c.Close(context.Background()) })
	connect(t, c)
	emitSeq(t, s, "org_ch", 1)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close from a handler did not return")
	}
	select {
	case <-c.Done():
	case <-time.After(waitTimeout):
		t.Fatal("Done not closed")
	}
	wait.For(t, "the server to see the client go", func() bool { return s.gw.ConnectionCount() == 0 })
}

func TestConnectRules(t *testing.T) {
	s := startServer(t, serverOptions{})
	c := newClient(t, client.Config{URL: s.url, Token: token(t, "o", "u", time.Hour)})
	connect(t, c)
	if err := c.Connect(context.Background()); err == nil {
		t.Fatal("a second Connect succeeded")
	}

	closedFirst := newClient(t, client.Config{URL: s.url, Token: token(t, "o", "u", time.Hour)})
	if err := closedFirst.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := closedFirst.Connect(context.Background()); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Connect after Close = %v", err)
	}
	<-closedFirst.Done()

	for _, cfg := range []client.Config{
		{Token: "t"},
		{URL: s.url},
		{URL: "ftp://x", Token: "t"},
		{URL: "http://", Token: "t"},
		{URL: s.url, Token: "t", Transport: 42},
	} {
		if _, err := client.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// TestConnectGivesUpWithItsContext: against a server that never answers,
// Connect returns when its context ends, and the client stops.
func TestConnectGivesUpWithItsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // accept, never answer
		}
	}()
	c := newClient(t, client.Config{URL: "http://" + ln.Addr().String(), Token: "t", AckTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = c.Connect(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect = %v, want the context's deadline", err)
	}
	select {
	case <-c.Done():
	case <-time.After(waitTimeout):
		t.Fatal("the client did not stop")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v", c.Err())
	}
}
