package sioclient

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
)

// historySize is how many recent messages a client remembers for failure messages.
const historySize = 100

// Client is one socket.io-client socket in the driver.
type Client struct {
	d    *Driver
	name string

	mu      sync.Mutex
	queue   []*wireMsg    // received and not yet consumed by a wait, in arrival order
	changed chan struct{} // closed (and replaced) whenever a message is queued
	seq     int           // number of messages received so far
	history []histEntry   // the last historySize messages received
}

type histEntry struct {
	seq int
	at  time.Time
	raw string
}

// Event is an event the server sent to a client.
type Event struct {
	Client string
	Name   string
	Args   []json.RawMessage
	// AckID identifies the server's ack request (answer it with Client.Ack); 0 when the server did
	// not ask for an acknowledgement or the client answers automatically (Options.AutoAck).
	AckID int64
}

// String renders the event for messages.
func (e Event) String() string {
	args := make([]string, len(e.Args))
	for i, a := range e.Args {
		args[i] = string(a)
	}
	s := fmt.Sprintf("%s: %s(%s)", e.Client, e.Name, strings.Join(args, ", "))
	if e.AckID != 0 {
		s += fmt.Sprintf(" (ack %d)", e.AckID)
	}
	return s
}

// ConnectInfo describes a successful connection.
type ConnectInfo struct {
	SID       string // socket.id
	Recovered bool   // socket.recovered: the server restored the session (connection state recovery)
	Transport string // the Engine.IO transport at that moment: "polling" or "websocket"
}

// ConnectError is a connect_error: refused by the server (Message and Data from the middleware's
// error) or a transport failure (e.g. Message "xhr poll error" or "websocket error", with Description).
type ConnectError struct {
	Message     string
	Data        json.RawMessage // err.data, "null" when absent
	Description string
}

// DisconnectInfo is a disconnect: Reason is socket.io-client's reason ("io server disconnect",
// "io client disconnect", "transport close", "transport error", "ping timeout", "forced close",
// "parse error"); Description details it when socket.io-client gives details.
type DisconnectInfo struct {
	Reason      string
	Description string
}

// State is the client socket's state as socket.io-client reports it.
type State struct {
	Connected bool   `json:"connected"`
	SID       string `json:"sid"`
	Recovered bool   `json:"recovered"`
	Transport string `json:"transport"`
	Active    bool   `json:"active"`
}

// Message is anything the driver reported about a client, as Drain returns it. Type says which field
// is set: "event" (Event), "connect" (Connect), "connect_error" (ConnectError), "disconnect"
// (Disconnect), "upgrade" (Transport: the new transport), "reconnect_attempt" and "reconnect"
// (Attempt), "reconnect_error" (ConnectError.Message), "reconnect_failed" (none).
type Message struct {
	Type string
	At   time.Time // when the message reached the Go side

	Event        Event
	Connect      ConnectInfo
	ConnectError ConnectError
	Disconnect   DisconnectInfo
	Transport    string
	Attempt      int
}

// String renders the message for failure messages.
func (m Message) String() string {
	at := m.At.Format("15:04:05.000")
	switch m.Type {
	case "event":
		return at + " " + truncate(m.Event.String(), 300)
	case "connect":
		return fmt.Sprintf("%s connect sid=%s recovered=%t transport=%s", at, m.Connect.SID, m.Connect.Recovered, m.Connect.Transport)
	case "connect_error", "reconnect_error":
		return fmt.Sprintf("%s %s %q data=%s description=%q", at, m.Type, m.ConnectError.Message, m.ConnectError.Data, m.ConnectError.Description)
	case "disconnect":
		return fmt.Sprintf("%s disconnect %q description=%q", at, m.Disconnect.Reason, m.Disconnect.Description)
	case "upgrade":
		return fmt.Sprintf("%s upgrade to %s", at, m.Transport)
	case "reconnect_attempt", "reconnect":
		return fmt.Sprintf("%s %s %d", at, m.Type, m.Attempt)
	default:
		return at + " " + m.Type
	}
}

func toMessage(m *wireMsg) Message {
	out := Message{Type: m.Type, At: m.at, Transport: m.Transport, Attempt: m.Attempt}
	switch m.Type {
	case "event":
		out.Event = toEvent(m)
	case "connect":
		out.Connect = ConnectInfo{SID: m.SID, Recovered: m.Recovered, Transport: m.Transport}
	case "connect_error", "reconnect_error":
		data := m.Data
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		out.ConnectError = ConnectError{Message: m.Message, Data: data, Description: deref(m.Description)}
	case "disconnect":
		out.Disconnect = DisconnectInfo{Reason: m.Reason, Description: deref(m.Description)}
	}
	return out
}

// Drain removes and returns every message queued for the client, events and lifecycle messages
// alike, in arrival order, without waiting. It lets one test goroutine follow many clients at once
// (polling each in turn) where the waits, which block on one client, would leave the others
// unanswered. Once the driver has died and nothing is left queued, Drain fails the test.
func (c *Client) Drain() []Message {
	c.d.t.Helper()
	// Looked at before taking the queue: once dead is closed, everything the driver said is queued.
	dead := false
	select {
	case <-c.d.dead:
		dead = true
	default:
	}
	c.mu.Lock()
	queue := c.queue
	c.queue = nil
	c.mu.Unlock()
	if len(queue) == 0 && dead {
		c.d.t.Fatalf("sioclient: client %s: driver died: %s", c.name, c.d.proc.Diagnostics(time.Second))
	}
	out := make([]Message, len(queue))
	for i, m := range queue {
		out[i] = toMessage(m)
	}
	return out
}

// Name returns the client's name in the driver.
func (c *Client) Name() string { return c.name }

func (c *Client) push(m *wireMsg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.queue = append(c.queue, m)
	c.history = append(c.history, histEntry{seq: c.seq, at: m.at, raw: m.raw})
	if len(c.history) > historySize {
		c.history = c.history[len(c.history)-historySize:]
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// take removes and returns the first queued message that matches, waiting up to timeout for one to
// arrive. ok is false on timeout; dead tells whether the driver died meanwhile. start is the
// message count when the wait began (for failure messages).
func (c *Client) take(timeout time.Duration, match func(*wireMsg) bool) (m *wireMsg, start int, dead bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	c.mu.Lock()
	start = c.seq
	c.mu.Unlock()
	for {
		c.mu.Lock()
		for i, q := range c.queue {
			if match(q) {
				c.queue = append(c.queue[:i:i], c.queue[i+1:]...)
				c.mu.Unlock()
				return q, start, false
			}
		}
		changed := c.changed
		c.mu.Unlock()
		if dead {
			return nil, start, true // nothing more will come
		}
		select {
		case <-changed:
		case <-c.d.dead:
			dead = true // look at the queue once more: the driver's last words are queued
		case <-timer.C:
			return nil, start, false
		}
	}
}

// fail fails the test after a wait that did not get what it wanted.
func (c *Client) fail(what string, timeout time.Duration, start int, dead bool) {
	c.d.t.Helper()
	var b strings.Builder
	if dead {
		fmt.Fprintf(&b, "sioclient: client %s: driver died while waiting for %s", c.name, what)
	} else {
		fmt.Fprintf(&b, "sioclient: client %s: timed out after %v waiting for %s", c.name, timeout, what)
	}
	c.mu.Lock()
	var meanwhile []string
	for _, h := range c.history {
		if h.seq > start {
			meanwhile = append(meanwhile, h.at.Format("15:04:05.000")+" "+truncate(h.raw, 300))
		}
	}
	queued := make([]string, 0, len(c.queue))
	for _, q := range c.queue {
		queued = append(queued, truncate(q.raw, 300))
	}
	c.mu.Unlock()
	writeList(&b, "arrived during the wait", meanwhile)
	writeList(&b, "still queued (not consumed by earlier waits)", queued)
	if dead {
		b.WriteString("\n\t" + c.d.proc.Diagnostics(time.Second))
	}
	c.d.t.Fatal(b.String())
}

// writeList appends a titled list, showing at most its last 20 entries.
func writeList(b *strings.Builder, title string, list []string) {
	const maxShown = 20
	if len(list) == 0 {
		fmt.Fprintf(b, "\n\t%s: nothing", title)
		return
	}
	shown := list[max(0, len(list)-maxShown):]
	fmt.Fprintf(b, "\n\t%s (%d, last %d shown):\n\t\t%s", title, len(list), len(shown), strings.Join(shown, "\n\t\t"))
}

// wait takes the next message matching, or fails the test.
func (c *Client) wait(what string, timeout time.Duration, match func(*wireMsg) bool) *wireMsg {
	c.d.t.Helper()
	m, start, dead := c.take(timeout, match)
	if m == nil {
		c.fail(what, timeout, start, dead)
	}
	return m
}

func isType(types ...string) func(*wireMsg) bool {
	return func(m *wireMsg) bool {
		for _, t := range types {
			if m.Type == t {
				return true
			}
		}
		return false
	}
}

// WaitConnect waits for the next connect (or connect_error, which fails the test).
func (c *Client) WaitConnect() ConnectInfo {
	c.d.t.Helper()
	m := c.wait("connect", c.d.Timeout, isType("connect", "connect_error"))
	if m.Type == "connect_error" {
		c.d.t.Fatalf("sioclient: client %s: connect_error while waiting for connect: %q, data %s, description %q",
			c.name, m.Message, m.Data, deref(m.Description))
	}
	return ConnectInfo{SID: m.SID, Recovered: m.Recovered, Transport: m.Transport}
}

// WaitReconnect waits for the next connect, skipping the connect_errors of
// the reconnection attempts that fail before it (a server that refuses
// connections for a while, as during a restart).
func (c *Client) WaitReconnect() ConnectInfo {
	c.d.t.Helper()
	deadline := time.Now().Add(c.d.Timeout)
	for {
		m := c.wait("connect", time.Until(deadline), isType("connect", "connect_error"))
		if m.Type == "connect" {
			return ConnectInfo{SID: m.SID, Recovered: m.Recovered, Transport: m.Transport}
		}
	}
}

// WaitConnectError waits for the next connect_error (or connect, which fails the test).
func (c *Client) WaitConnectError() ConnectError {
	c.d.t.Helper()
	m := c.wait("connect_error", c.d.Timeout, isType("connect", "connect_error"))
	if m.Type == "connect" {
		c.d.t.Fatalf("sioclient: client %s: connected (sid %s) while waiting for connect_error", c.name, m.SID)
	}
	data := m.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return ConnectError{Message: m.Message, Data: data, Description: deref(m.Description)}
}

// WaitDisconnect waits for the next disconnect and returns its reason.
func (c *Client) WaitDisconnect() string {
	c.d.t.Helper()
	return c.WaitDisconnectInfo().Reason
}

// WaitDisconnectInfo waits for the next disconnect.
func (c *Client) WaitDisconnectInfo() DisconnectInfo {
	c.d.t.Helper()
	m := c.wait("disconnect", c.d.Timeout, isType("disconnect"))
	return DisconnectInfo{Reason: m.Reason, Description: deref(m.Description)}
}

// WaitUpgrade waits for the next Engine.IO transport upgrade and returns the new transport's name.
func (c *Client) WaitUpgrade() string {
	c.d.t.Helper()
	return c.wait("upgrade", c.d.Timeout, isType("upgrade")).Transport
}

// WaitReconnectAttempt waits for the Manager's next reconnect_attempt and returns the attempt number.
func (c *Client) WaitReconnectAttempt() int {
	c.d.t.Helper()
	return c.wait("reconnect_attempt", c.d.Timeout, isType("reconnect_attempt")).Attempt
}

func toEvent(m *wireMsg) Event {
	return Event{Client: m.Client, Name: m.Event, Args: m.Args, AckID: m.AckID}
}

// Next waits for the next event with this name. Events with other names stay queued.
func (c *Client) Next(event string) Event {
	c.d.t.Helper()
	m := c.wait(fmt.Sprintf("event %q", event), c.d.Timeout, func(m *wireMsg) bool {
		return m.Type == "event" && m.Event == event
	})
	return toEvent(m)
}

// NextAny waits for the next event, whatever its name.
func (c *Client) NextAny() Event {
	c.d.t.Helper()
	return toEvent(c.wait("any event", c.d.Timeout, isType("event")))
}

// NoEvent asserts that no event with this name is queued or arrives within the given time.
func (c *Client) NoEvent(event string, within time.Duration) {
	c.d.t.Helper()
	m, _, dead := c.take(within, func(m *wireMsg) bool { return m.Type == "event" && m.Event == event })
	switch {
	case m != nil:
		c.d.t.Fatalf("sioclient: client %s: unexpected event %s", c.name, toEvent(m))
	case dead:
		c.d.t.Fatalf("sioclient: client %s: driver died while checking that no %q event arrives: %s",
			c.name, event, c.d.proc.Diagnostics(time.Second))
	}
}

// Emit sends an event without asking for an acknowledgement. socket.io-client buffers it while the
// socket is not connected.
func (c *Client) Emit(event string, args ...any) {
	c.d.t.Helper()
	c.d.mustCall(map[string]any{"cmd": "emit", "client": c.name, "event": event, "args": wireArgs(args)})
}

// EmitWithAck sends an event with an ack callback (socket.timeout(timeout)) and waits for the server's
// acknowledgement. It returns all the ack's arguments, or an error such as "operation has timed out"
// or "socket has been disconnected".
func (c *Client) EmitWithAck(timeout time.Duration, event string, args ...any) ([]json.RawMessage, error) {
	c.d.t.Helper()
	res, err := c.d.call(timeout+c.d.Timeout, map[string]any{
		"cmd": "emit", "client": c.name, "event": event, "args": wireArgs(args),
		"ack": true, "timeout": timeout.Milliseconds(),
	})
	if err != nil {
		return nil, err
	}
	var out []json.RawMessage
	if err := json.Unmarshal(res, &out); err != nil {
		c.d.t.Fatalf("sioclient: client %s: ack result %s is not a list: %v", c.name, truncate(string(res), 200), err)
	}
	return out, nil
}

// Ack answers the server's ack request carried by ev.
func (c *Client) Ack(ev Event, args ...any) {
	c.d.t.Helper()
	if ev.AckID == 0 {
		c.d.t.Fatalf("sioclient: client %s: event %s did not ask for an ack", c.name, ev)
	}
	c.d.mustCall(map[string]any{"cmd": "ack", "ackId": ev.AckID, "args": wireArgs(args)})
}

// Disconnect calls socket.disconnect(): a client-side disconnect, without reconnection.
func (c *Client) Disconnect() {
	c.d.t.Helper()
	c.d.mustCall(map[string]any{"cmd": "disconnect", "client": c.name})
}

// Connect calls socket.connect() again, e.g. after Disconnect, a refused connection or SetAuth.
func (c *Client) Connect() {
	c.d.t.Helper()
	c.d.mustCall(map[string]any{"cmd": "connectAgain", "client": c.name})
}

// CloseEngine closes the underlying Engine.IO connection (socket.io.engine.close()) as if it had
// dropped: the socket sees a "forced close" disconnect and the Manager reconnects (if reconnection
// is on), with connection state recovery if the server has it.
func (c *Client) CloseEngine() {
	c.d.t.Helper()
	c.d.mustCall(map[string]any{"cmd": "closeEngine", "client": c.name})
}

// SetAuth replaces socket.auth, sent with the next CONNECT (reconnection or Connect).
func (c *Client) SetAuth(auth map[string]any) {
	c.d.t.Helper()
	c.d.mustCall(map[string]any{"cmd": "setAuth", "client": c.name, "auth": auth})
}

// State returns the socket's current state.
func (c *Client) State() State {
	c.d.t.Helper()
	res := c.d.mustCall(map[string]any{"cmd": "state", "client": c.name})
	var s State
	if err := json.Unmarshal(res, &s); err != nil {
		c.d.t.Fatalf("sioclient: client %s: bad state %s: %v", c.name, truncate(string(res), 200), err)
	}
	return s
}

// Close disconnects the client and removes it from the driver; later messages for it are dropped.
func (c *Client) Close() {
	c.d.t.Helper()
	c.d.mustCall(map[string]any{"cmd": "close", "client": c.name})
	c.d.forgetClient(c.name)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
