// Package sioclient lets Go tests drive the real npm socket.io-client (4.8) against a server.
//
// Start launches tests/node/driver.mjs, a long-lived Node.js process that manages any number of named
// socket.io-client sockets. The test sends it commands (connect, emit, ack, disconnect, ...) and reads
// what each client sees (connect, connect_error, disconnect, upgrade, reconnect attempts, events) from
// per-client queues:
//
//	d := sioclient.Start(t)
//	c := d.Connect(srvURL+"/chat", sioclient.Options{Transports: []string{"websocket"}})
//	info := c.WaitConnect()
//	c.Emit("join", "room1")
//	ev := c.Next("joined")
//
// Every wait is bounded by Driver.Timeout (DefaultTimeout unless changed) and fails the test with the
// client's name, what was awaited and what arrived meanwhile, so a broken server never hangs a test.
//
// Like testing.T's FailNow, the methods that wait or fail must be called from the goroutine running the
// test that started the Driver (start one Driver per test or subtest; it is cheap). The package is
// race-free: a reader goroutine dispatches the driver's output to the per-client queues.
//
// Binary arguments are written with Bin and read back with AsBin (see Binary). Node.js 20 and the npm
// packages in tests/node (`make deps`, or `npm ci --prefix tests/node`) are required.
package sioclient

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/nodeproc"
)

// DefaultTimeout is the default bound of every wait.
const DefaultTimeout = 5 * time.Second

// Driver is a running tests/node/driver.mjs process.
type Driver struct {
	// Timeout bounds every wait for a message or a command reply. Set it right after Start if
	// needed; it is read, not locked.
	Timeout time.Duration

	t    testing.TB
	proc *nodeproc.Proc

	mu         sync.Mutex
	nextID     int64
	pending    map[int64]chan *wireMsg
	clients    map[string]*Client
	nextClient int

	ready chan struct{} // closed when the driver announced itself
	dead  chan struct{} // closed when the driver's stdout ended: no more messages will arrive
}

// wireMsg is any message from the driver (a reply, a client lifecycle message or an event).
type wireMsg struct {
	Type        string            `json:"type"`
	ID          int64             `json:"id"`
	OK          bool              `json:"ok"`
	Result      json.RawMessage   `json:"result"`
	Error       string            `json:"error"`
	Client      string            `json:"client"`
	Event       string            `json:"event"`
	Args        []json.RawMessage `json:"args"`
	AckID       int64             `json:"ackId"`
	SID         string            `json:"sid"`
	Recovered   bool              `json:"recovered"`
	Transport   string            `json:"transport"`
	Message     string            `json:"message"`
	Data        json.RawMessage   `json:"data"`
	Reason      string            `json:"reason"`
	Description *string           `json:"description"`
	Attempt     int               `json:"attempt"`

	raw string    // the line as received, for failure messages
	at  time.Time // when it was received
}

// Start launches the driver for the duration of the test. It fails the test if Node.js or the npm
// packages in tests/node are missing, or if the driver does not start.
func Start(t testing.TB) *Driver {
	t.Helper()
	d := &Driver{
		Timeout: DefaultTimeout,
		t:       t,
		pending: make(map[int64]chan *wireMsg),
		clients: make(map[string]*Client),
		ready:   make(chan struct{}),
		dead:    make(chan struct{}),
	}
	d.proc = nodeproc.Start(t, "driver", "socket.io-client", "driver.mjs", nil, d.readStdout)
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-d.ready:
	case <-d.dead:
		t.Fatalf("sioclient: driver exited during startup: %s", d.proc.Diagnostics(time.Second))
	case <-timer.C:
		t.Fatalf("sioclient: driver not ready within %v: %s", startTimeout, d.proc.Diagnostics(0))
	}
	return d
}

// readStdout runs on its own goroutine: it decodes the driver's JSON lines and dispatches them.
func (d *Driver) readStdout(p *nodeproc.Proc, r io.Reader) {
	defer close(d.dead)
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if line = bytes.TrimSpace(line); len(line) > 0 {
			d.dispatch(p, line)
		}
		if err != nil {
			return
		}
	}
}

func (d *Driver) dispatch(p *nodeproc.Proc, line []byte) {
	m := new(wireMsg)
	if err := json.Unmarshal(line, m); err != nil {
		p.Note(fmt.Sprintf("non-JSON line on stdout: %s", truncate(string(line), 300)))
		return
	}
	m.raw = string(line)
	m.at = time.Now()
	switch m.Type {
	case "ready":
		select {
		case <-d.ready:
		default:
			close(d.ready)
		}
	case "reply":
		d.mu.Lock()
		ch := d.pending[m.ID]
		delete(d.pending, m.ID)
		d.mu.Unlock()
		if ch != nil {
			ch <- m // buffered
		}
	default:
		d.mu.Lock()
		c := d.clients[m.Client]
		d.mu.Unlock()
		if c != nil {
			c.push(m)
		} else if m.Client == "" {
			p.Note("driver: " + truncate(m.raw, 300))
		}
		// Messages for a client that was closed are dropped.
	}
}

// call sends a command and waits up to wait for its reply. A reply with ok:false is returned as an
// error; a dead driver or a missing reply fails the test.
func (d *Driver) call(wait time.Duration, cmd map[string]any) (json.RawMessage, error) {
	d.t.Helper()
	d.mu.Lock()
	d.nextID++
	id := d.nextID
	ch := make(chan *wireMsg, 1)
	d.pending[id] = ch
	d.mu.Unlock()
	forget := func() {
		d.mu.Lock()
		delete(d.pending, id)
		d.mu.Unlock()
	}

	cmd["id"] = id
	line, err := json.Marshal(cmd)
	if err != nil {
		forget()
		d.t.Fatalf("sioclient: encoding command %s for client %v: %v", cmd["cmd"], cmd["client"], err)
	}
	if err := d.proc.Write(append(line, '\n')); err != nil {
		forget()
		d.t.Fatalf("sioclient: sending command %s: %v; %s", cmd["cmd"], err, d.proc.Diagnostics(time.Second))
	}

	timer := time.NewTimer(wait)
	defer timer.Stop()
	var m *wireMsg
	select {
	case m = <-ch:
	case <-d.dead:
		// The reply may have been dispatched just before the driver's output ended.
		select {
		case m = <-ch:
		default:
			forget()
			d.t.Fatalf("sioclient: driver died before answering %s: %s", truncate(string(line), 200), d.proc.Diagnostics(time.Second))
		}
	case <-timer.C:
		forget()
		d.t.Fatalf("sioclient: no reply within %v to %s", wait, truncate(string(line), 200))
	}
	if !m.OK {
		return nil, errors.New(m.Error)
	}
	return m.Result, nil
}

// mustCall is call for commands that are expected to succeed.
func (d *Driver) mustCall(cmd map[string]any) json.RawMessage {
	d.t.Helper()
	res, err := d.call(d.Timeout, cmd)
	if err != nil {
		d.t.Fatalf("sioclient: %s on client %v failed: %v", cmd["cmd"], cmd["client"], err)
	}
	return res
}

// Options are socket.io-client options. Zero values leave socket.io-client's defaults (notably
// reconnection on, reconnectionDelay 1000 ms, reconnectionDelayMax 5000 ms, timeout 20000 ms).
type Options struct {
	// Name names the client in messages and failures; by default "c1", "c2", ...
	Name string

	Transports           []string          // e.g. {"websocket"}; default polling then upgrade
	Auth                 map[string]any    // sent in the CONNECT packet
	Query                map[string]string // added to the Engine.IO URL
	ExtraHeaders         map[string]string // sent with every HTTP request (Node only)
	Reconnection         *bool
	ReconnectionAttempts int
	ReconnectionDelay    int // ms
	ReconnectionDelayMax int // ms
	Timeout              int // ms, connection timeout
	Upgrade              *bool
	AckTimeout           int // ms, socket-wide ack timeout
	Retries              int // socket.io-client's at-least-once delivery for emits

	// Manager shares one Manager (one Engine.IO connection) between all clients connected with the
	// same Manager name, one socket per namespace. The first client's options configure the Manager.
	Manager string
	// AutoAck, when non-nil, makes the driver answer every ack request from the server at once with
	// these arguments (an empty non-nil slice: an ack without arguments). The events are still
	// reported, without an AckID.
	AutoAck []any

	// Raw is merged last into the options given to io(url, opts), e.g. {"forceNew": false}.
	Raw map[string]any
}

func (o Options) wire() map[string]any {
	m := map[string]any{}
	set := func(k string, v any, ok bool) {
		if ok {
			m[k] = v
		}
	}
	set("transports", o.Transports, o.Transports != nil)
	set("auth", o.Auth, o.Auth != nil)
	set("query", o.Query, o.Query != nil)
	set("extraHeaders", o.ExtraHeaders, o.ExtraHeaders != nil)
	set("reconnection", o.Reconnection, o.Reconnection != nil)
	set("reconnectionAttempts", o.ReconnectionAttempts, o.ReconnectionAttempts != 0)
	set("reconnectionDelay", o.ReconnectionDelay, o.ReconnectionDelay != 0)
	set("reconnectionDelayMax", o.ReconnectionDelayMax, o.ReconnectionDelayMax != 0)
	set("timeout", o.Timeout, o.Timeout != 0)
	set("upgrade", o.Upgrade, o.Upgrade != nil)
	set("ackTimeout", o.AckTimeout, o.AckTimeout != 0)
	set("retries", o.Retries, o.Retries != 0)
	for k, v := range o.Raw {
		m[k] = v
	}
	return m
}

// Connect creates a socket.io-client socket for url (http://host:port/namespace) and returns at once;
// use WaitConnect or WaitConnectError to see how the connection went. Unless Raw says otherwise,
// each client gets its own Manager (forceNew), i.e. its own Engine.IO connection.
func (d *Driver) Connect(url string, opts Options) *Client {
	d.t.Helper()
	d.mu.Lock()
	name := opts.Name
	if name == "" {
		for {
			d.nextClient++
			name = fmt.Sprintf("c%d", d.nextClient)
			if d.clients[name] == nil {
				break
			}
		}
	}
	if d.clients[name] != nil {
		d.mu.Unlock()
		d.t.Fatalf("sioclient: a client named %q already exists", name)
	}
	// Registered before the command is sent: its first messages may follow the reply closely.
	c := &Client{d: d, name: name, changed: make(chan struct{})}
	d.clients[name] = c
	d.mu.Unlock()

	cmd := map[string]any{"cmd": "connect", "client": name, "url": url, "opts": opts.wire()}
	if opts.Manager != "" {
		cmd["manager"] = opts.Manager
	}
	if opts.AutoAck != nil {
		cmd["autoAck"] = wireArgs(opts.AutoAck)
	}
	if _, err := d.call(d.Timeout, cmd); err != nil {
		d.forgetClient(name)
		d.t.Fatalf("sioclient: connect %s to %s: %v", name, url, err)
	}
	return c
}

func (d *Driver) forgetClient(name string) {
	d.mu.Lock()
	delete(d.clients, name)
	d.mu.Unlock()
}
