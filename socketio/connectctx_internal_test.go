package socketio

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/wait"
)

// TestConnectContextLikeWithTimeout: the lazy context behaves as
// context.WithTimeout would: its deadline, done on the deadline whether or
// not Done was called first, done with Canceled when ended, and usable as
// the parent of a standard context.
func TestConnectContextLikeWithTimeout(t *testing.T) {
	d := time.Now().Add(50 * time.Millisecond)
	c := &connectContext{deadline: d}
	if got, ok := c.Deadline(); !ok || !got.Equal(d) {
		t.Fatalf("Deadline = %v, %v", got, ok)
	}
	if c.Err() != nil {
		t.Fatalf("Err before the deadline = %v", c.Err())
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not done after the deadline")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v, want DeadlineExceeded", c.Err())
	}

	// Past the deadline without anyone waiting on Done.
	c = &connectContext{deadline: time.Now().Add(10 * time.Millisecond)}
	wait.For(t, "the deadline passed", func() bool { return c.Err() != nil })
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v", c.Err())
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Err reported the deadline")
	}

	// Ended before the deadline, with and without a waiter.
	for _, waited := range []bool{false, true} {
		c = &connectContext{deadline: time.Now().Add(time.Hour)}
		var done <-chan struct{}
		if waited {
			done = c.Done()
		}
		child, cancel := context.WithTimeout(c, time.Minute)
		c.end(context.Canceled)
		c.end(context.DeadlineExceeded) // no effect once ended
		if !errors.Is(c.Err(), context.Canceled) {
			t.Fatalf("Err = %v, want Canceled", c.Err())
		}
		if waited {
			<-done
		}
		<-c.Done()
		select {
		case <-child.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a child context outlived its parent")
		}
		cancel()
	}
}
