package engineio

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func TestWriteToken(t *testing.T) {
	var tok writeToken
	if ok, err := tok.tryLock(); !ok || err != nil {
		t.Fatalf("tryLock on a free token: %t, %v", ok, err)
	}
	if ok, err := tok.tryLock(); ok || err != nil {
		t.Fatalf("tryLock on a held token: %t, %v", ok, err)
	}

	// lock gives up when its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err := tok.lock(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock on a held token: %v, want the context's error", err)
	}

	// Handed to another goroutine, which gives it up: a waiter gets it.
	got := make(chan error, 1)
	go func() { got <- tok.lock(context.Background()) }()
	handed := make(chan struct{})
	go func() { tok.unlock(); close(handed) }()
	<-handed
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}

	// Retiring wakes every waiter with net.ErrClosed, and later callers too.
	waiters := make(chan error, 3)
	for range 3 {
		go func() { waiters <- tok.lock(context.Background()) }()
	}
	time.Sleep(20 * time.Millisecond) // let them wait (they would also fail if they came after)
	tok.retire()
	for range 3 {
		if err := <-waiters; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("waiter after retire: %v", err)
		}
	}
	if ok, err := tok.tryLock(); ok || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("tryLock after retire: %t, %v", ok, err)
	}
}

// close never waits for the write token on its caller's goroutine: with
// the token held by a writer that does not give it up, the connection ends
// about closeFrameWait later, without a close frame.
func TestCloseWithTokenHeld(t *testing.T) {
	t.Parallel()
	server, client := net.Pipe()
	defer client.Close()
	c := &wsConn{conn: server, srv: &Server{}}
	if ok, _ := c.wtok.tryLock(); !ok {
		t.Fatal("fresh token not free")
	}
	start := time.Now()
	c.close(closeNormal)
	if d := time.Since(start); d > closeFrameWait/2 {
		t.Fatalf("close blocked its caller for %v", d)
	}
	_ = client.SetReadDeadline(time.Now().Add(10 * closeFrameWait))
	n, err := client.Read(make([]byte, 16))
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read %d bytes, %v: want the end of the connection and no close frame", n, err)
	}
	if d := time.Since(start); d < closeFrameWait {
		t.Fatalf("connection ended after %v, before the writer's %v", d, closeFrameWait)
	}
}

// When the holder gives the token up within closeFrameWait, the close frame
// goes out after its write, and is the last thing on the wire.
func TestCloseFrameAfterWriteInProgress(t *testing.T) {
	t.Parallel()
	server, client := net.Pipe()
	defer client.Close()
	c := &wsConn{conn: server, srv: &Server{}}
	c.wtok.tryLock()
	c.close(closeNormal)
	go func() {
		_, _ = server.Write([]byte("data")) // the holder's write
		c.wtok.unlock()
	}()
	_ = client.SetReadDeadline(time.Now().Add(10 * closeFrameWait))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	want := "data\\x88\\x02\\x03\\xe8" // then a close frame with code 1000
	if string(got) != "data\x88\x02\x03\xe8" {
		t.Fatalf("wire: %q, want %s", got, want)
	}
	if ok, err := c.wtok.tryLock(); ok || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("token after the close frame: %t, %v, want retired", ok, err)
	}
}
