package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/operate/realtime/gateway/events"
)

// maxPatterns is the most entries the gateway takes in one subscribe.
const maxPatterns = 100

// maxLog is how long the log of subscription requests may grow before it
// is compacted into the set the server acknowledged (when no request of it
// carries a filter, whose meaning only the server knows).
const maxLog = 16

// SubscribeOption modifies a subscribe request.
type SubscribeOption func(*subscribeRequest)

// WithFilter sends a filter expression with the subscription (the
// gateway's payload filters, e.g. "payload.amount > 1000.0"). A server that
// does not support filters refuses the request.
func WithFilter(expr string) SubscribeOption {
	return func(r *subscribeRequest) { r.Filter = expr }
}

type subscribeRequest struct {
	Events []string `json:"events"`
	Filter string   `json:"filter,omitempty"`
}

// Subscriptions is the gateway's acknowledgement of a subscribe or an
// unsubscribe.
type Subscriptions struct {
	SubscribedTo     []string      `json:"subscribedTo,omitempty"`     // the request's entries (subscribe)
	UnsubscribedFrom []string      `json:"unsubscribedFrom,omitempty"` // the request's entries (unsubscribe)
	Subscriptions    []events.Name `json:"subscriptions"`              // every event the connection now receives
}

type subscribeAck struct {
	Subscriptions
	Success bool   `json:"success"`
	Error   string `json:"error"`
	Code    string `json:"code"`
}

// Subscribe narrows the events the server sends to this client to those
// given (event names, "<domain>:*" or "*"), adding to earlier
// subscriptions; a client that never subscribed receives every event of
// its organization and user. It waits for a connection if there is none,
// and for the server's acknowledgement; a request cut by a disconnection is
// sent again on the next connection. A refusal is a *RequestError. The
// subscriptions are restored on every new connection that does not recover
// its session.
func (c *Client) Subscribe(ctx context.Context, patterns []string, opts ...SubscribeOption) (Subscriptions, error) {
	req := subscribeRequest{Events: patterns}
	for _, o := range opts {
		o(&req)
	}
	return c.changeSubscriptions(ctx, eventSubscribe, req)
}

// Unsubscribe stops the events given (names, "<domain>:*" or "*") from
// being sent, as Subscribe does the reverse.
func (c *Client) Unsubscribe(ctx context.Context, patterns []string) (Subscriptions, error) {
	return c.changeSubscriptions(ctx, eventUnsubscribe, subscribeRequest{Events: patterns})
}

func (c *Client) changeSubscriptions(ctx context.Context, event string, req subscribeRequest) (Subscriptions, error) {
	if n := len(req.Events); n == 0 || n > maxPatterns {
		return Subscriptions{}, fmt.Errorf("client: %s needs 1 to %d events, got %d", event, maxPatterns, n)
	}
	req.Events = slices.Clone(req.Events)
	for {
		cur, err := c.readyConn(ctx)
		if err != nil {
			return Subscriptions{}, fmt.Errorf("client: %s: %w", event, err)
		}
		select {
		case c.subSem <- struct{}{}:
		case <-ctx.Done():
			return Subscriptions{}, fmt.Errorf("client: %s: %w", event, context.Cause(ctx))
		}
		res, err := c.exchange(ctx, cur, event, req)
		if err == nil {
			c.subs.record(subOp{event: event, req: req}, res.Subscriptions)
		}
		<-c.subSem
		if errors.Is(err, errConnLost) {
			continue // on the next connection
		}
		return res, err
	}
}

// exchange sends one subscribe or unsubscribe and reads its answer.
func (c *Client) exchange(ctx context.Context, cur *conn, event string, req subscribeRequest) (Subscriptions, error) {
	raw, err := cur.request(ctx, event, req)
	if err != nil {
		if errors.Is(err, errConnLost) {
			return Subscriptions{}, err
		}
		return Subscriptions{}, fmt.Errorf("client: %s: %w", event, err)
	}
	var ack subscribeAck
	if err := json.Unmarshal(raw, &ack); err != nil {
		return Subscriptions{}, fmt.Errorf("client: %s: acknowledgement %s: %w", event, clip(raw), err)
	}
	if !ack.Success {
		return Subscriptions{}, &RequestError{Event: event, Code: ack.Code, Message: ack.Error}
	}
	return ack.Subscriptions, nil
}

// restore replays the subscription requests on a connection that did not
// recover its session (a new socket receives every event), then lets the
// waiting requests through.
func (c *Client) restore(cur *conn) {
	select {
	case c.subSem <- struct{}{}:
	case <-cur.e.done:
		return
	case <-c.ctx.Done():
		return
	}
	defer func() { <-c.subSem }()
	for _, op := range c.subs.ops() {
		ctx, cancel := context.WithTimeout(c.ctx, c.s.AckTimeout)
		res, err := c.exchange(ctx, cur, op.event, op.req)
		cancel()
		switch {
		case errors.Is(err, errConnLost) || c.ctx.Err() != nil:
			return // the next connection restores them
		case err != nil:
			c.queueError(fmt.Errorf("client: restoring subscriptions: %w", err))
		default:
			c.subs.commit(res.Subscriptions)
		}
	}
	close(cur.ready)
}

// subOp is one acknowledged subscribe or unsubscribe.
type subOp struct {
	event string
	req   subscribeRequest
}

// subscriptionLog is what the client asked for, to ask again on a new
// socket, and the set the server last acknowledged.
type subscriptionLog struct {
	mu        sync.Mutex
	log       []subOp
	committed map[string]bool // acknowledged names or patterns; nil: every event
}

func (l *subscriptionLog) empty() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.log) == 0
}

func (l *subscriptionLog) ops() []subOp {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.log)
}

// record appends an acknowledged request. A log without filters that grew
// long is replaced by the acknowledged set.
func (l *subscriptionLog) record(op subOp, acked []events.Name) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = append(l.log, op)
	l.commitLocked(acked)
	if len(l.log) <= maxLog || slices.ContainsFunc(l.log, func(o subOp) bool { return o.req.Filter != "" }) {
		return
	}
	l.log = nil
	if l.committed == nil {
		return // every event: what a new socket receives anyway
	}
	names := make([]string, 0, len(acked))
	for _, n := range acked {
		names = append(names, string(n))
	}
	if len(names) == 0 {
		l.log = []subOp{{event: eventUnsubscribe, req: subscribeRequest{Events: []string{"*"}}}}
		return
	}
	for chunk := range slices.Chunk(names, maxPatterns) {
		l.log = append(l.log, subOp{event: eventSubscribe, req: subscribeRequest{Events: chunk}})
	}
}

func (l *subscriptionLog) commit(acked []events.Name) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.commitLocked(acked)
}

// commitLocked keeps the acknowledged set: the gateway lists event names
// (all of the catalog's meaning every event), other servers may list the
// patterns ("*", "<domain>:*").
func (l *subscriptionLog) commitLocked(acked []events.Name) {
	if len(acked) == len(events.Events()) || slices.Contains(acked, "*") {
		l.committed = nil
		return
	}
	l.committed = make(map[string]bool, len(acked))
	for _, n := range acked {
		l.committed[string(n)] = true
	}
}

// admits reports whether an event may be delivered while a new socket's
// subscriptions are being restored: control events and events the client
// subscribed to pass; others were sent only because the new socket does not
// have its subscriptions yet.
func (l *subscriptionLog) admits(name events.Name) bool {
	if _, catalog := events.Lookup(name); !catalog {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.committed == nil || l.committed[string(name)] || l.committed[name.Domain()+":*"]
}

// RefreshResult is the gateway's acknowledgement of auth:refresh.
type RefreshResult struct {
	ExpiresAt time.Time // the new token's expiry; zero when it has none
}

// RefreshToken asks the TokenSource for a token and sends it with
// auth:refresh, so that the connection lives on past the current token's
// expiry. The client does it by itself on auth:expiring unless
// Config.DisableRefresh is set. A refusal is a *RequestError (e.g. code
// IDENTITY_MISMATCH); the connection then keeps its current token.
func (c *Client) RefreshToken(ctx context.Context) (RefreshResult, error) {
	if c.s.TokenSource == nil {
		return RefreshResult{}, errors.New("client: RefreshToken needs Config.TokenSource")
	}
	c.mu.Lock()
	cur := c.conn
	c.mu.Unlock()
	if cur == nil {
		return RefreshResult{}, fmt.Errorf("client: %s: %w", eventAuthRefresh, ErrNotConnected)
	}
	return c.refresh(ctx, cur)
}

func (c *Client) refresh(ctx context.Context, cur *conn) (RefreshResult, error) {
	token, err := c.token(ctx)
	if err != nil {
		return RefreshResult{}, fmt.Errorf("client: %s: %w", eventAuthRefresh, err)
	}
	raw, err := cur.request(ctx, eventAuthRefresh, map[string]string{"token": token})
	if err != nil {
		if errors.Is(err, errConnLost) {
			err = ErrNotConnected
		}
		return RefreshResult{}, fmt.Errorf("client: %s: %w", eventAuthRefresh, err)
	}
	var ack struct {
		OK        bool   `json:"ok"`
		ExpiresAt string `json:"expiresAt"`
		Error     string `json:"error"`
		Code      string `json:"code"`
	}
	if err := json.Unmarshal(raw, &ack); err != nil {
		return RefreshResult{}, fmt.Errorf("client: %s: acknowledgement %s: %w", eventAuthRefresh, clip(raw), err)
	}
	if !ack.OK {
		return RefreshResult{}, &RequestError{Event: eventAuthRefresh, Code: ack.Code, Message: ack.Error}
	}
	return RefreshResult{ExpiresAt: jsTime(ack.ExpiresAt)}, nil
}

// onExpiring answers auth:expiring (on the reader: the refresh runs on a
// goroutine of its own).
func (c *Client) onExpiring(cur *conn) {
	if c.s.DisableRefresh {
		return
	}
	if c.s.TokenSource == nil {
		c.mu.Lock()
		warned := c.warnedRefresh
		c.warnedRefresh = true
		c.mu.Unlock()
		if !warned {
			c.s.Logger.Warn("client: the token expires soon and cannot be refreshed without Config.TokenSource")
		}
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, c.s.AckTimeout)
		defer cancel()
		res, err := c.refresh(ctx, cur)
		switch {
		case errors.Is(err, ErrNotConnected) || c.ctx.Err() != nil:
			// The connection went away first: the next one presents a
			// token from the source anyway.
			c.s.Logger.Debug("client: token refresh cut by the disconnection", "error", err)
			return
		case err != nil:
			c.queueError(fmt.Errorf("client: refreshing the token: %w", err))
			return
		}
		c.s.Logger.Debug("client: token refreshed", "expiresAt", res.ExpiresAt)
	}()
}
