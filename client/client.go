package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/operate/realtime/internal/wsframe"
)

// Client is a subscriber connection to the gateway. See the package
// documentation for its life and its concurrency contract.
type Client struct {
	s       *settings
	httpc   *http.Client
	ownHTTP *http.Transport // closed with the client when the client made it
	reg     registry
	disp    *dispatcher

	ctx    context.Context // the client's life: Close and fatal errors cancel it
	cancel context.CancelFunc

	mu            sync.Mutex
	started       bool
	closing       bool          // Close was called
	err           error         // why the client stopped
	conn          *conn         // the current connection, nil while disconnected
	connChanged   chan struct{} // closed (and replaced) when conn changes
	pid, offset   string        // the session to recover, and the last event's offset
	recovered     bool          // the current (or last) connection recovered
	wsRefused     bool          // a WebSocket handshake was refused: TransportAuto polls first
	subs          subscriptionLog
	firstConnect  chan struct{} // closed at the first connection
	warnedRefresh bool

	subSem chan struct{}  // one subscription exchange at a time (requests and restoring)
	wg     sync.WaitGroup // refreshes in flight
	ran    chan struct{}  // closed when the connection loop returned
	done   chan struct{}  // closed when the client stopped and its last handler returned
}

// New checks cfg and returns a client, not connected yet: register the
// handlers, then call Connect.
func New(cfg Config) (*Client, error) {
	s, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{
		s:            s,
		httpc:        s.HTTPClient,
		connChanged:  make(chan struct{}),
		firstConnect: make(chan struct{}),
		subSem:       make(chan struct{}, 1),
		ran:          make(chan struct{}),
		done:         make(chan struct{}),
	}
	if c.httpc == nil {
		c.ownHTTP = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         s.NetDial,
			TLSClientConfig:     s.TLSConfig,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		}
		if c.ownHTTP.DialContext == nil {
			c.ownHTTP.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		}
		c.httpc = &http.Client{Transport: c.ownHTTP}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.disp = newDispatcher(&c.reg)
	return c, nil
}

// Connect connects and returns once the first connection is established
// (its OnConnect queued); from then on the client keeps a connection open
// by itself. Failed attempts are retried with backoff until ctx ends, or
// until a refusal that a retry cannot fix (a *ConnectError); the client
// then stops and Connect returns why. Connect may be called once.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.started:
		c.mu.Unlock()
		return errors.New("client: Connect called twice")
	case c.closing:
		c.mu.Unlock()
		return ErrClosed
	}
	c.started = true
	c.mu.Unlock()
	go c.lifecycle()
	select {
	case <-c.firstConnect:
		return nil
	case <-c.ran:
		return c.Err()
	case <-ctx.Done():
		err := fmt.Errorf("client: connecting to %s: %w", c.s.base.Host, context.Cause(ctx))
		c.stop(err)
		return err
	}
}

// Close disconnects (telling the server, within ctx) and stops the client:
// no handler starts after Close returns, though one running may still be
// (Done is closed once it returned). Close waits for the client's
// goroutines until ctx ends; it may be called from a handler, and more than
// once.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	started := c.started
	cur := c.conn
	c.mu.Unlock()
	c.disp.stop()
	if cur != nil {
		cur.close(ctx)
	}
	c.stop(nil)
	if !started {
		c.finish()
		return nil
	}
	select {
	case <-c.ran:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("client: closing: %w", context.Cause(ctx))
	}
}

// stop ends the client's life, recording why (nil for Close); the first
// reason stays.
func (c *Client) stop(err error) {
	c.mu.Lock()
	if c.err == nil && !c.closing {
		c.err = err
	}
	c.mu.Unlock()
	c.cancel()
}

// Done is closed when the client has stopped (Close, or it gave up) and its
// last handler returned.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client stopped by itself (a *ConnectError, a context
// error from Connect, ErrServerDisconnect, the last attempt's error after
// MaxAttempts), or nil while it runs and after Close.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Connected reports whether a connection is established now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

// Recovered reports whether the current (or, while disconnected, the last)
// connection recovered the session of the one before.
func (c *Client) Recovered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recovered
}

// SocketID returns the current connection's socket id, "" while
// disconnected.
func (c *Client) SocketID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return ""
	}
	return c.conn.sid
}

// Transport returns the current connection's transport ("websocket" or
// "polling"), "" while disconnected.
func (c *Client) Transport() string {
	c.mu.Lock()
	cur := c.conn
	c.mu.Unlock()
	if cur == nil {
		return ""
	}
	return cur.e.transport()
}

// lifecycle runs the connection loop, then lets the dispatcher finish and
// closes done.
func (c *Client) lifecycle() {
	c.run()
	c.wg.Wait()
	close(c.ran)
	c.finish()
}

func (c *Client) finish() {
	c.disp.finish()
	<-c.disp.exited
	if c.ownHTTP != nil {
		c.ownHTTP.CloseIdleConnections()
	}
	close(c.done)
}

// run connects, waits for the connection to end and reconnects, until the
// client stops.
func (c *Client) run() {
	failures := 0
	for {
		if c.ctx.Err() != nil {
			return
		}
		cur, err := c.connect()
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			var ce *ConnectError
			if errors.As(err, &ce) && !ce.retryable(c.s.TokenSource != nil) {
				c.s.Logger.Warn("client: connection refused", "code", ce.Code, "message", ce.Message)
				c.stop(err)
				c.disp.push(keyDisconnect, DisconnectInfo{Reason: "connect_error", Err: err})
				return
			}
			failures++
			c.httpc.CloseIdleConnections()
			if c.s.MaxAttempts > 0 && failures >= c.s.MaxAttempts {
				err = fmt.Errorf("client: giving up after %d attempts: %w", failures, err)
				c.stop(err)
				c.disp.push(keyDisconnect, DisconnectInfo{Reason: "connect_error", Err: err})
				return
			}
			c.queueError(fmt.Errorf("client: connection attempt %d failed (retrying): %w", failures, err))
			if !c.sleep(c.s.Backoff.delay(failures-1, c.s.random())) {
				return
			}
			continue
		}
		failures = 0
		info := cur.wait(c.ctx)
		c.setConn(nil)
		// The idle keep-alive connections went through the same network
		// as the session that just failed: a request on one of them could
		// hang as long as the fault lasts.
		c.httpc.CloseIdleConnections()
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		switch {
		case closing || c.ctx.Err() != nil:
			info.Reason, info.Err = reasonClientClose, nil
		case info.Reason == reasonServerNamespace && cur.tokenExpired() && c.s.TokenSource == nil:
			err := &ConnectError{Message: "Unauthorized: Token expired", Code: CodeTokenExpired}
			info.Err = fmt.Errorf("%w: and Config.TokenSource is not set to get a new one", err)
			c.stop(info.Err)
		case info.Reason == reasonServerNamespace && !cur.tokenExpired():
			info.Err = ErrServerDisconnect
			c.stop(ErrServerDisconnect)
		default:
			info.Reconnecting = true
		}
		c.s.Logger.Info("client: disconnected", "reason", info.Reason, "error", info.Err, "reconnecting", info.Reconnecting)
		c.disp.push(keyDisconnect, info)
		if !info.Reconnecting {
			return
		}
		if !cur.tokenExpired() {
			// A lost connection waits like a failed attempt, so that every
			// client of a restarted server does not come back at once.
			if !c.sleep(c.s.Backoff.delay(0, c.s.random())) {
				return
			}
		}
	}
}

// sleep waits d, or until the client stops (false).
func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// connect makes one connection attempt, up to the namespace's CONNECT
// reply, and restores the subscriptions of a connection that did not
// recover.
func (c *Client) connect() (*conn, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.s.AckTimeout)
	defer cancel()
	token, err := c.token(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	pid, offset := c.pid, c.offset
	websocket := c.s.Transport == TransportWebSocket || (c.s.Transport == TransportAuto && !c.wsRefused)
	c.mu.Unlock()

	e, err := dialEngine(ctx, c.s, c.httpc, websocket)
	var he *wsframe.HandshakeError
	if err != nil && c.s.Transport == TransportAuto && websocket && errors.As(err, &he) {
		c.s.Logger.Info("client: websocket refused, falling back to long-polling", "status", he.StatusCode)
		c.mu.Lock()
		c.wsRefused = true
		c.mu.Unlock()
		e, err = dialEngine(ctx, c.s, c.httpc, false)
	}
	if err != nil {
		return nil, err
	}
	cur := newConn(c, e, pid)
	e.start(cur.onPacket)
	if err := cur.handshake(ctx, token, pid, offset); err != nil {
		e.end(reasonClientClose, nil)
		e.wg.Wait()
		c.mu.Lock()
		current := c.conn == cur // the reply came as the attempt gave up
		c.mu.Unlock()
		if current {
			c.setConn(nil)
		}
		return nil, err
	}
	select {
	case <-c.firstConnect:
	default:
		close(c.firstConnect)
	}
	c.s.Logger.Info("client: connected", "sid", cur.sid, "recovered", cur.recovered, "transport", e.transport())
	if !websocket && (c.s.Transport == TransportUpgrade || c.s.Transport == TransportAuto) {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if e.upgrade() {
				c.s.Logger.Debug("client: upgraded to websocket", "sid", cur.sid)
			}
		}()
	}
	if !cur.isReady() {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.restore(cur)
		}()
	}
	return cur, nil
}

// token returns the token for a connection.
func (c *Client) token(ctx context.Context) (string, error) {
	if c.s.TokenSource == nil {
		return c.s.Token, nil
	}
	t, err := c.s.TokenSource(ctx)
	if err != nil {
		return "", fmt.Errorf("client: token source: %w", err)
	}
	if t == "" {
		return "", errors.New("client: token source returned an empty token")
	}
	return t, nil
}

// setConn makes cur the current connection (nil: disconnected) and wakes
// the requests waiting for one.
func (c *Client) setConn(cur *conn) {
	c.mu.Lock()
	c.conn = cur
	close(c.connChanged)
	c.connChanged = make(chan struct{})
	c.mu.Unlock()
}

// readyConn waits for a connection whose subscriptions are restored.
func (c *Client) readyConn(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		cur, changed, closing := c.conn, c.connChanged, c.closing
		c.mu.Unlock()
		if closing || c.ctx.Err() != nil {
			return nil, ErrClosed
		}
		if cur != nil {
			select {
			case <-cur.ready:
				return cur, nil
			case <-cur.e.done:
				// Lost: the next connection replaces it (changed).
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			case <-c.ctx.Done():
				return nil, ErrClosed
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
}
