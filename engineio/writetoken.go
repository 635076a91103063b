package engineio

import (
	"context"
	"fmt"
	"net"
	"sync"
)

// writeToken is the right to write to one WebSocket connection. Exactly one
// goroutine holds it at a time, and only the holder writes to the socket or
// touches its write deadline, so that frames never interleave and no write
// inherits another's deadline.
//
// Unlike a mutex, a holder may hand it to another goroutine simply by not
// giving it up (the flusher passes it to a blocking writer along with a
// partly written frame), waiting for it can give up when a context ends, and
// the last holder can retire it: every waiter then learns at once that the
// connection takes no more writes.
//
// It behaves as a channel holding one value would, but costs 24 bytes in the
// connection instead of a 96-byte channel per connection: the channel that
// waiters sleep on is made only when someone has to wait, which is rare (a
// pong or a close frame arriving during a flush).
type writeToken struct {
	mu      sync.Mutex
	held    bool
	retired bool
	// waiters, when not nil, is closed (and cleared) the next time the
	// token is given up or retired, to wake whoever waits for it.
	waiters chan struct{}
}

// tryLock takes the token if it is free now. It fails with net.ErrClosed
// once the token was retired.
func (t *writeToken) tryLock() (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.retired:
		return false, net.ErrClosed
	case t.held:
		return false, nil
	}
	t.held = true
	return true, nil
}

// lock waits for the token until ctx ends. It fails with net.ErrClosed once
// the token was retired.
func (t *writeToken) lock(ctx context.Context) error {
	for {
		t.mu.Lock()
		switch {
		case t.retired:
			t.mu.Unlock()
			return net.ErrClosed
		case !t.held:
			t.held = true
			t.mu.Unlock()
			return nil
		}
		if t.waiters == nil {
			t.waiters = make(chan struct{})
		}
		wake := t.waiters
		t.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("engineio: waiting to write: %w", ctx.Err())
		}
	}
}

// unlock gives the token up. Only its holder may call it (whichever
// goroutine it was handed to).
func (t *writeToken) unlock() { t.release(false) }

// retire gives the token up for good: nothing may be written any more.
// Only its holder may call it.
func (t *writeToken) retire() { t.release(true) }

func (t *writeToken) release(retire bool) {
	t.mu.Lock()
	t.held = false
	t.retired = t.retired || retire
	if t.waiters != nil {
		close(t.waiters)
		t.waiters = nil
	}
	t.mu.Unlock()
}
