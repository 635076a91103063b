package socketio_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/wsframe"
	"github.com/operate/realtime/socketio"
)

// waitTimeout bounds every wait of these tests. It is generous: the tests
// must pass with -race -count=3 on a loaded 2-core machine, and a wait only
// lasts this long when something is broken.
const waitTimeout = 20 * time.Second

// ---------------------------------------------------------------------------
// Server under test

// testServer is a socketio.Server served on 127.0.0.1:<random port>.
type testServer struct {
	*socketio.Server
	URL  string // http://127.0.0.1:PORT
	Addr string // 127.0.0.1:PORT

	hold atomic.Pointer[holdRule]
}

// holdRule makes matching requests wait until released (see holdRequests).
type holdRule struct {
	match    func(*http.Request) bool
	released chan struct{}
	held     chan struct{} // receives once per held request (buffered)
	once     sync.Once
}

func (h *holdRule) release() { h.once.Do(func() { close(h.released) }) }

// newTestServer starts a server. It is shut down (and the HTTP server
// closed) when the test ends, after the clients of any driver started later
// are gone (cleanups run last-in first-out).
func newTestServer(t *testing.T, opts *socketio.Options) *testServer {
	t.Helper()
	srv := newSIOServer(t, opts)
	ts := &testServer{Server: srv}
	hs := httptest.NewServer(ts)
	ts.URL = hs.URL
	ts.Addr = strings.TrimPrefix(hs.URL, "http://")
	t.Cleanup(func() {
		if h := ts.hold.Load(); h != nil {
			h.release()
		}
		shutdown(t, srv)
		hs.Close()
	})
	return ts
}

// newSIOServer builds a server whose logs go to the test log.
func newSIOServer(t *testing.T, opts *socketio.Options) *socketio.Server {
	t.Helper()
	o := socketio.Options{}
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	srv, err := socketio.NewServer(&o)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	return srv
}

func shutdown(t *testing.T, srv *socketio.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func (ts *testServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := ts.hold.Load(); h != nil && h.match(r) {
		select {
		case h.held <- struct{}{}:
		default:
		}
		select {
		case <-h.released:
		case <-r.Context().Done():
			return
		}
	}
	ts.Server.ServeHTTP(w, r)
}

// holdRequests makes the requests that match wait (before the server sees
// them) until the returned rule is released. Only one rule at a time.
func (ts *testServer) holdRequests(match func(*http.Request) bool) *holdRule {
	h := &holdRule{match: match, released: make(chan struct{}), held: make(chan struct{}, 16)}
	if !ts.hold.CompareAndSwap(nil, h) {
		panic("holdRequests: a rule is already active")
	}
	return h
}

// stopHolding releases the held requests and removes the rule.
func (ts *testServer) stopHolding(h *holdRule) {
	ts.hold.CompareAndSwap(h, nil)
	h.release()
}

// isHandshake matches Engine.IO handshakes (a new session, either transport).
func isHandshake(r *http.Request) bool {
	q := r.URL.Query()
	return q.Get("EIO") != "" && q.Get("sid") == ""
}

// isUpgrade matches the WebSocket request that upgrades a polling session.
func isUpgrade(r *http.Request) bool {
	q := r.URL.Query()
	return q.Get("transport") == "websocket" && q.Get("sid") != ""
}

// testLogger sends the server's logs to the test log until the test ends.
func testLogger(t *testing.T) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(w.close) // registered first among the server's cleanups: runs after them
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testLogWriter struct {
	t      *testing.T
	mu     sync.Mutex
	closed bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Logf("server: %s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// ---------------------------------------------------------------------------
// Server-side observation

// recv waits for a value on ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
	}
	panic("unreachable")
}

// noValue checks that nothing is queued on ch right now.
func noValue[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	default:
	}
}

// connections returns a channel receiving every socket that connects to n.
func connections(n interface {
	OnConnection(func(*socketio.Socket))
}) <-chan *socketio.Socket {
	ch := make(chan *socketio.Socket, 256)
	n.OnConnection(func(s *socketio.Socket) { ch <- s })
	return ch
}

type disconnection struct {
	id     string
	reason socketio.DisconnectReason
}

// disconnections returns a channel receiving every disconnect of n.
func disconnections(n interface {
	OnDisconnect(func(*socketio.Socket, socketio.DisconnectReason))
}) <-chan disconnection {
	ch := make(chan disconnection, 256)
	n.OnDisconnect(func(s *socketio.Socket, r socketio.DisconnectReason) { ch <- disconnection{s.ID(), r} })
	return ch
}

// echoArgs makes event ev emit "<ev>" back with the same arguments, and
// answer the ack (if asked) with them too.
func echoArgs(n interface {
	OnEvent(string, socketio.EventHandler)
}, ev string) {
	n.OnEvent(ev, func(s *socketio.Socket, e *socketio.Event) {
		_ = s.Emit(ev, e.Args)
		_ = e.Ack(e.Args)
	})
}

// ---------------------------------------------------------------------------
// Clients

// startDriver starts a socket.io-client driver with generous waits.
func startDriver(t *testing.T) *sioclient.Driver {
	t.Helper()
	d := sioclient.Start(t)
	d.Timeout = waitTimeout
	return d
}

func ptr[T any](v T) *T { return &v }

func itoa(i int) string { return strconv.Itoa(i) }

// fastReconnect makes socket.io-client reconnect quickly.
func fastReconnect(o sioclient.Options) sioclient.Options {
	o.ReconnectionDelay = 50
	o.ReconnectionDelayMax = 200
	return o
}

var (
	wsOnly      = []string{"websocket"}
	pollingOnly = []string{"polling"}
)

// transportCases are the three ways socket.io-client connects.
var transportCases = []struct {
	name       string
	transports []string
}{
	{"polling", pollingOnly},
	{"websocket", wsOnly},
	{"default", nil},
}

// joinRaw renders event arguments as a JSON array.
func joinRaw(args []json.RawMessage) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = string(a)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// argsOf renders a client event's arguments as a JSON array.
func argsOf(ev sioclient.Event) string { return joinRaw(ev.Args) }

// rawArgs renders server-side Args as a JSON array of their raw JSON.
func rawArgs(a socketio.Args) string {
	parts := make([]string, a.Len())
	for i := range parts {
		parts[i] = string(a.Raw(i))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// withoutOffset drops the last argument: the recovery offset socket.io
// appends to broadcast events when connection state recovery is on.
func withoutOffset(t *testing.T, ev sioclient.Event) (args []json.RawMessage, offset string) {
	t.Helper()
	if len(ev.Args) == 0 {
		t.Fatalf("event %s has no offset argument", ev)
	}
	last := ev.Args[len(ev.Args)-1]
	if err := json.Unmarshal(last, &offset); err != nil || offset == "" {
		t.Fatalf("event %s: last argument %s is not an offset", ev, last)
	}
	return ev.Args[:len(ev.Args)-1], offset
}

// ---------------------------------------------------------------------------
// Raw Engine.IO clients, for what socket.io-client never sends

// rawWS is a bare WebSocket Engine.IO client.
type rawWS struct {
	t    *testing.T
	conn *wsframe.Conn
	Open string // the open packet's JSON
}

// dialWS opens a WebSocket Engine.IO session and reads the open packet.
func dialWS(t *testing.T, addr string) *rawWS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	conn, err := (&wsframe.Dialer{}).Dial(ctx, "ws://"+addr+"/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		t.Fatalf("dial websocket: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawWS{t: t, conn: conn}
	open := c.read()
	if !strings.HasPrefix(open, "0{") {
		t.Fatalf("first packet = %q, want the open packet", open)
	}
	c.Open = open[1:]
	return c
}

// next reads the next data frame, answering the server's Engine.IO pings,
// and returns its payload and opcode.
func (c *rawWS) next() (string, wsframe.Opcode, error) {
	for {
		_ = c.conn.NetConn().SetReadDeadline(time.Now().Add(waitTimeout))
		data, op, err := c.conn.ReadMessage(nil)
		if err != nil {
			return "", 0, err
		}
		if op == wsframe.OpText && string(data) == "2" {
			c.send("3")
			continue
		}
		return string(data), op, nil
	}
}

// read returns the next text packet.
func (c *rawWS) read() string {
	c.t.Helper()
	s, op, err := c.next()
	if err != nil {
		c.t.Fatalf("raw websocket: reading: %v", err)
	}
	if op != wsframe.OpText {
		c.t.Fatalf("raw websocket: got a %v frame %q, want text", op, s)
	}
	return s
}

func (c *rawWS) readBinary() []byte {
	c.t.Helper()
	s, op, err := c.next()
	if err != nil {
		c.t.Fatalf("raw websocket: reading: %v", err)
	}
	if op != wsframe.OpBinary {
		c.t.Fatalf("raw websocket: got a %v frame %q, want binary", op, s)
	}
	return []byte(s)
}

func (c *rawWS) send(s string) {
	if err := c.conn.WriteText([]byte(s)); err != nil {
		c.t.Errorf("raw websocket: writing %q: %v", s, err)
	}
}

func (c *rawWS) sendBinary(b []byte) {
	if err := c.conn.WriteBinary(b); err != nil {
		c.t.Errorf("raw websocket: writing binary: %v", err)
	}
}

// expectClosed reads until the server closes the connection (EOF, close
// frame or reset), and fails the test if it stays open.
func (c *rawWS) expectClosed(what string) {
	c.t.Helper()
	var got []string
	for {
		s, _, err := c.next()
		if err == nil {
			got = append(got, s)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("%s: connection still open after %v (received %q)", what, waitTimeout, got)
		}
		return // EOF, close frame, reset: closed
	}
}

// connectSID decodes the sid of a CONNECT reply like 40{"sid":"..."}.
func connectSID(t *testing.T, pkt, prefix string) string {
	t.Helper()
	if !strings.HasPrefix(pkt, prefix+"{") {
		t.Fatalf("packet %q, want a CONNECT reply %s{...}", pkt, prefix)
	}
	var v struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(pkt[len(prefix):]), &v); err != nil || len(v.SID) != 20 {
		t.Fatalf("CONNECT reply %q: bad sid (%v)", pkt, err)
	}
	return v.SID
}

// rawPolling is a bare long-polling Engine.IO client.
type rawPolling struct {
	t      *testing.T
	base   string
	client *http.Client
	SID    string
}

// dialPolling performs a polling handshake.
func dialPolling(t *testing.T, baseURL string) *rawPolling {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &rawPolling{t: t, base: baseURL + "/socket.io/?EIO=4&transport=polling", client: &http.Client{Transport: tr, Timeout: waitTimeout}}
	body := c.get(c.base)
	if !strings.HasPrefix(body, "0{") {
		t.Fatalf("handshake body %q", body)
	}
	var open struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
		t.Fatalf("handshake %q: %v", body, err)
	}
	c.SID = open.SID
	c.base += "&sid=" + url.QueryEscape(c.SID)
	return c
}

func (c *rawPolling) get(u string) string {
	c.t.Helper()
	s, err := c.tryGet(u)
	if err != nil {
		c.t.Fatalf("polling GET: %v", err)
	}
	return s
}

func (c *rawPolling) tryGet(u string) (string, error) {
	resp, err := c.client.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status + ": " + string(b))
	}
	return string(b), nil
}

// poll performs one GET on the session and returns its payload.
func (c *rawPolling) poll() string {
	c.t.Helper()
	return c.get(c.base)
}

// post sends a payload.
func (c *rawPolling) post(payload string) {
	c.t.Helper()
	resp, err := c.client.Post(c.base, "text/plain;charset=UTF-8", strings.NewReader(payload))
	if err != nil {
		c.t.Fatalf("polling POST: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(b) != "ok" {
		c.t.Fatalf("polling POST %q: %s %q", payload, resp.Status, b)
	}
}
