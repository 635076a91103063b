package socketio

import (
	"context"
	"sync"
	"time"
)

// connectContext is the context of a CONNECT's middlewares: done at
// ConnectTimeout after the CONNECT, or once the middlewares have run. It
// is what context.WithTimeout would give, except that its timer is only
// set up when something waits on Done: most middlewares (a token checked
// against a secret) never do, and a timer per handshake is a visible part
// of a connection storm.
type connectContext struct {
	deadline time.Time

	mu    sync.Mutex
	done  chan struct{} // made by the first Done
	timer *time.Timer   // set with done while the deadline is ahead
	err   error
}

func (c *connectContext) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *connectContext) Value(any) any { return nil }

func (c *connectContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		c.expireLocked()
		switch {
		case c.err != nil:
			close(c.done)
		default:
			c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) })
		}
	}
	return c.done
}

func (c *connectContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && c.expireLocked() && c.done != nil {
		close(c.done)
		c.timer.Stop()
	}
	return c.err
}

// expireLocked sets err once the deadline has passed; it reports whether
// it did.
func (c *connectContext) expireLocked() bool {
	if c.err == nil && !time.Now().Before(c.deadline) {
		c.err = context.DeadlineExceeded
		return true
	}
	return false
}

// end makes the context done with err, unless it already is.
func (c *connectContext) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
		c.timer.Stop()
	}
}
