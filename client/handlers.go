package client

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/operate/realtime/gateway/events"
)

// ConnectInfo describes a new connection (OnConnect).
type ConnectInfo struct {
	SocketID string
	// Recovered is true when the server restored the previous connection's
	// session: same socket, same subscriptions, and the events missed
	// meanwhile delivered right after OnConnect.
	Recovered bool
	Transport string // "websocket" or "polling" (an upgrade may follow)
}

// DisconnectInfo describes a lost connection (OnDisconnect).
type DisconnectInfo struct {
	// Reason as socket.io-client names it: "transport close", "transport
	// error", "ping timeout", "io server disconnect", "io client disconnect",
	// "parse error".
	Reason string
	Err    error // what failed, when something did
	// Reconnecting is false when the client stops (Close, or a disconnection
	// after which it does not reconnect).
	Reconnecting bool
}

// HistoryGap is the gateway's history:gap: the connection asked to recover
// its session and could not, so events since From may have been missed.
// Reload what was derived from them.
type HistoryGap struct {
	Message string `json:"message"`
	Reason  string `json:"reason"` // "unavailable" or "declined"
	From    string `json:"from"`   // the offset the client gave
}

// Control events the gateway sends beside the catalog's.
const (
	eventAuthExpiring = "auth:expiring"
	eventAuthExpired  = "auth:expired"
	eventAuthRefresh  = "auth:refresh"
	eventHistoryGap   = "history:gap"
	eventSubscribe    = "subscribe"
	eventUnsubscribe  = "unsubscribe"
)

// Registry keys of the client's own callbacks; event names never start
// with a NUL.
const (
	keyConnect    = "\x00connect"
	keyDisconnect = "\x00disconnect"
	keyError      = "\x00error"
)

type handler struct {
	fn func(any)
}

// registry holds the handlers by event name.
type registry struct {
	mu sync.Mutex
	m  map[string][]*handler
}

func (r *registry) add(key string, fn func(any)) (off func()) {
	h := &handler{fn: fn}
	r.mu.Lock()
	if r.m == nil {
		r.m = make(map[string][]*handler)
	}
	r.m[key] = append(r.m[key], h)
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		list := r.m[key]
		for i, x := range list {
			if x == h {
				// A new slice: a dispatch in progress keeps iterating the old one.
				r.m[key] = append(list[:i:i], list[i+1:]...)
				return
			}
		}
	}
}

func (r *registry) get(key string) []*handler {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[key]
}

// item is one dispatch: the handlers of key, called with value.
type item struct {
	key   string
	value any
}

// dispatcher runs the handlers on one goroutine, in queue order.
type dispatcher struct {
	reg *registry

	mu       sync.Mutex
	items    []item
	wake     chan struct{} // capacity 1
	stopped  bool          // Close: nothing more runs
	finished bool          // no more items will come: exit once drained
	exited   chan struct{}
}

func newDispatcher(reg *registry) *dispatcher {
	d := &dispatcher{reg: reg, wake: make(chan struct{}, 1), exited: make(chan struct{})}
	go d.run()
	return d
}

func (d *dispatcher) push(key string, value any) {
	d.mu.Lock()
	if d.stopped || d.finished {
		d.mu.Unlock()
		return
	}
	d.items = append(d.items, item{key, value})
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// stop discards what is queued; no handler starts after it returns.
func (d *dispatcher) stop() {
	d.mu.Lock()
	d.stopped = true
	d.items = nil
	d.mu.Unlock()
	d.finish()
}

// finish lets the dispatcher exit once the queue is drained.
func (d *dispatcher) finish() {
	d.mu.Lock()
	d.finished = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) run() {
	defer close(d.exited)
	for {
		d.mu.Lock()
		if len(d.items) == 0 {
			finished := d.finished
			d.mu.Unlock()
			if finished {
				return
			}
			<-d.wake
			continue
		}
		it := d.items[0]
		d.items[0] = item{}
		d.items = d.items[1:]
		if len(d.items) == 0 {
			d.items = nil // let a burst's backing array go
		}
		d.mu.Unlock()
		for _, h := range d.reg.get(it.key) {
			d.mu.Lock()
			stopped := d.stopped
			d.mu.Unlock()
			if stopped {
				return
			}
			h.fn(it.value)
		}
	}
}

// OnEvent registers fn for the event name (a catalog event, or a control
// event such as "connected" or "auth:expiring"), with its first argument
// as raw JSON (the client's copy, which fn may keep). The returned function
// removes the registration.
func (c *Client) OnEvent(name string, fn func(json.RawMessage)) (off func()) {
	return c.reg.add(name, func(v any) { fn(v.(json.RawMessage)) })
}

// on registers a typed handler: the payload is decoded into P before fn
// runs; a payload that does not decode is reported to OnError instead.
func on[P any](c *Client, name events.Name, fn func(P)) (off func()) {
	return c.reg.add(string(name), func(v any) {
		var p P
		if err := json.Unmarshal(v.(json.RawMessage), &p); err != nil {
			c.reportError(fmt.Errorf("client: %s payload: %w", name, err))
			return
		}
		fn(p)
	})
}

// OnConnect registers fn for every connection established, before the
// events it brings.
func (c *Client) OnConnect(fn func(ConnectInfo)) (off func()) {
	return c.reg.add(keyConnect, func(v any) { fn(v.(ConnectInfo)) })
}

// OnDisconnect registers fn for every connection lost, after its last
// event.
func (c *Client) OnDisconnect(fn func(DisconnectInfo)) (off func()) {
	return c.reg.add(keyDisconnect, func(v any) { fn(v.(DisconnectInfo)) })
}

// OnHistoryGap registers fn for the gateway's history:gap.
func (c *Client) OnHistoryGap(fn func(HistoryGap)) (off func()) {
	return c.reg.add(eventHistoryGap, func(v any) {
		var g HistoryGap
		if err := json.Unmarshal(v.(json.RawMessage), &g); err != nil {
			c.reportError(fmt.Errorf("client: %s payload: %w", eventHistoryGap, err))
			return
		}
		fn(g)
	})
}

// OnError registers fn for the errors no caller receives: failed connection
// attempts (the client retries), refused token refreshes, subscriptions that
// could not be restored, payloads that do not decode into their type.
func (c *Client) OnError(fn func(error)) (off func()) {
	return c.reg.add(keyError, func(v any) { fn(v.(error)) })
}

// reportError logs err and hands it to the OnError handlers. On the
// dispatch goroutine it calls them at once, so that they run in order with
// the handler that failed.
func (c *Client) reportError(err error) {
	c.s.Logger.Warn("client: error", "error", err)
	for _, h := range c.reg.get(keyError) {
		h.fn(err)
	}
}

// queueError is reportError from any goroutine.
func (c *Client) queueError(err error) {
	c.s.Logger.Warn("client: error", "error", err)
	c.disp.push(keyError, err)
}

// jsTime reads a Date.toISOString() time; zero when absent or malformed.
func jsTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
