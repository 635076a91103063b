package sioclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run the driver against tests/node/testserver.mjs, a real Node.js socket.io 4.8 server,
// to prove the driver and this package work before the Go server exists.

// startServer starts testserver.mjs; args may be "--recovery".
func startServer(t *testing.T, args ...string) string {
	t.Helper()
	return StartNodeServer(t, "testserver.mjs", args...)
}

// hello is the payload of the test server's "hello" event.
type hello struct {
	ID        string         `json:"id"`
	Nsp       string         `json:"nsp"`
	Recovered bool           `json:"recovered"`
	Transport string         `json:"transport"`
	Auth      map[string]any `json:"auth"`
	Query     map[string]any `json:"query"`
}

func decode(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
}

func nextHello(t *testing.T, c *Client) hello {
	t.Helper()
	ev := c.Next("hello")
	// With connection state recovery, socket.io appends the offset as an extra last argument.
	if len(ev.Args) != 1 && len(ev.Args) != 2 {
		t.Fatalf("hello: want 1 argument (+ offset), got %s", ev)
	}
	var h hello
	decode(t, ev.Args[0], &h)
	return h
}

func ptr[T any](v T) *T { return &v }

func TestTransports(t *testing.T) {
	srv := startServer(t)
	for _, tc := range []struct {
		name       string
		transports []string
		// the transport when connected (with the default transports the upgrade may finish before or
		// after the CONNECT, so it is not checked) and in the end
		atConnect, final string
	}{
		{name: "polling", transports: []string{"polling"}, atConnect: "polling", final: "polling"},
		{name: "websocket", transports: []string{"websocket"}, atConnect: "websocket", final: "websocket"},
		{name: "default", final: "websocket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Start(t)
			c := d.Connect(srv+"/", Options{
				Transports: tc.transports,
				Auth:       map[string]any{"token": "abc"},
				Query:      map[string]string{"room": "r1"},
			})
			info := c.WaitConnect()
			if tc.atConnect != "" && info.Transport != tc.atConnect {
				t.Errorf("transport at connect = %q, want %q", info.Transport, tc.atConnect)
			}
			if info.SID == "" || info.Recovered {
				t.Errorf("connect info = %+v, want a sid and recovered=false", info)
			}
			h := nextHello(t, c)
			if h.ID != info.SID || h.Nsp != "/" {
				t.Errorf("hello = %+v, want id %s on /", h, info.SID)
			}
			if h.Auth["token"] != "abc" || h.Query["room"] != "r1" {
				t.Errorf("server saw auth %v, query %v", h.Auth, h.Query)
			}
			if tc.transports == nil {
				if got := c.WaitUpgrade(); got != "websocket" {
					t.Errorf("upgraded to %q, want websocket", got)
				}
			}
			// A round trip, then the final state.
			c.Emit("echo", "ping")
			if ev := c.Next("echo"); string(ev.Args[0]) != `"ping"` {
				t.Errorf("echo = %s", ev)
			}
			st := c.State()
			if !st.Connected || !st.Active || st.SID != info.SID || st.Transport != tc.final {
				t.Errorf("state = %+v, want connected over %s with sid %s", st, tc.final, info.SID)
			}
			c.Disconnect()
			if reason := c.WaitDisconnect(); reason != "io client disconnect" {
				t.Errorf("disconnect reason = %q", reason)
			}
		})
	}
}

func TestEventsInOrder(t *testing.T) {
	srv := startServer(t)
	d := Start(t)
	c := d.Connect(srv+"/", Options{Transports: []string{"websocket"}})
	c.WaitConnect()
	const n = 100
	for i := range n {
		c.Emit("echo", i)
	}
	for i := range n {
		ev := c.Next("echo")
		var got int
		decode(t, ev.Args[0], &got)
		if got != i {
			t.Fatalf("echo #%d carries %d", i, got)
		}
	}
	// "hello" arrived before all the echoes and stayed queued while Next("echo") skipped it.
	if h := nextHello(t, c); h.Nsp != "/" {
		t.Errorf("hello = %+v", h)
	}
	c.NoEvent("echo", 100*time.Millisecond)

	// NextAny takes events whatever their name, in order.
	c.Emit("echo", "a")
	c.Emit("ack-me", "no ack asked, no answer")
	c.Emit("request-ack", "b")
	if ev := c.NextAny(); ev.Name != "echo" {
		t.Errorf("first event = %s, want echo", ev)
	}
	if ev := c.NextAny(); ev.Name != "need-ack" || ev.AckID == 0 {
		t.Errorf("second event = %s, want need-ack with an ack id", ev)
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	srv := startServer(t)
	for _, transports := range [][]string{{"polling"}, {"websocket"}} {
		t.Run(transports[0], func(t *testing.T) {
			d := Start(t)
			c := d.Connect(srv+"/", Options{Transports: transports})
			c.WaitConnect()

			top := []byte{0, 1, 2, 0xfe, 0xff}
			nested := bytes.Repeat([]byte("binary\x00"), 1000)
			type payload struct {
				Name string   `json:"name"`
				Blob Binary   `json:"blob"`
				List []Binary `json:"list"`
			}
			c.Emit("echo", top, payload{Name: "p", Blob: nested, List: []Binary{{1}, {}}}, "text")
			ev := c.Next("echo")
			if len(ev.Args) != 3 {
				t.Fatalf("echo = %s, want 3 args", ev)
			}
			got, err := AsBin(ev.Args[0])
			if err != nil || !bytes.Equal(got, top) {
				t.Errorf("arg 0 = %s (%v), want %x", ev.Args[0], err, top)
			}
			var p payload
			decode(t, ev.Args[1], &p)
			if p.Name != "p" || !bytes.Equal(p.Blob, nested) || len(p.List) != 2 ||
				!bytes.Equal(p.List[0], []byte{1}) || len(p.List[1]) != 0 {
				t.Errorf("arg 1 = %+v", p)
			}
			if string(ev.Args[2]) != `"text"` {
				t.Errorf("arg 2 = %s", ev.Args[2])
			}
			if _, err := AsBin(ev.Args[2]); err == nil {
				t.Error("AsBin accepted a string")
			}

			// Binary in acks, both ways.
			res, err := c.EmitWithAck(2*time.Second, "ack-me", Bin([]byte{7, 8}))
			if err != nil {
				t.Fatal(err)
			}
			if b, err := AsBin(res[0]); err != nil || !bytes.Equal(b, []byte{7, 8}) {
				t.Errorf("ack = %s (%v)", res[0], err)
			}
			c.Emit("request-ack")
			need := c.Next("need-ack")
			c.Ack(need, map[string]any{"b": Bin([]byte{9})})
			var gotAck struct {
				B Binary `json:"b"`
			}
			decode(t, c.Next("got-ack").Args[0], &gotAck)
			if !bytes.Equal(gotAck.B, []byte{9}) {
				t.Errorf("got-ack = %x", gotAck.B)
			}
		})
	}
}

func TestAcks(t *testing.T) {
	srv := startServer(t)
	d := Start(t)
	c := d.Connect(srv+"/", Options{})
	c.WaitConnect()

	// Client → server: every ack argument comes back.
	res, err := c.EmitWithAck(2*time.Second, "ack-me", "a", 1, map[string]any{"k": true})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rawStrings(res)); got != `["a" 1 {"k":true}]` {
		t.Errorf("ack args = %s", got)
	}
	// An ack without arguments.
	if res, err := c.EmitWithAck(2*time.Second, "ack-me"); err != nil || len(res) != 0 {
		t.Errorf("empty ack = %s, %v", rawStrings(res), err)
	}
	// No handler on the server: the client times out.
	if _, err := c.EmitWithAck(200*time.Millisecond, "nobody-listens"); err == nil || err.Error() != "operation has timed out" {
		t.Errorf("ack timeout error = %v", err)
	}

	// Server → client.
	c.Emit("request-ack", "question", 42)
	ev := c.Next("need-ack")
	if ev.AckID == 0 || fmt.Sprint(rawStrings(ev.Args)) != `["question" 42]` {
		t.Fatalf("need-ack = %s", ev)
	}
	c.Ack(ev, "answer", []any{1, 2})
	if got := c.Next("got-ack"); fmt.Sprint(rawStrings(got.Args)) != `["answer" [1,2]]` {
		t.Errorf("got-ack = %s", got)
	}
	// Answering twice is refused by the driver (socket.io-client would ignore it anyway).
	if _, err := d.call(d.Timeout, map[string]any{"cmd": "ack", "ackId": ev.AckID, "args": []any{}}); err == nil {
		t.Error("second ack accepted")
	}

	// AutoAck answers at once and still reports the event.
	auto := d.Connect(srv+"/", Options{AutoAck: []any{"auto", Bin([]byte{1})}})
	auto.WaitConnect()
	auto.Emit("request-ack", "q")
	if ev := auto.Next("need-ack"); ev.AckID != 0 {
		t.Errorf("auto-acked event has ack id %d", ev.AckID)
	}
	got := auto.Next("got-ack")
	if len(got.Args) != 2 || string(got.Args[0]) != `"auto"` {
		t.Errorf("got-ack = %s", got)
	}
}

func rawStrings(raw []json.RawMessage) []string {
	out := make([]string, len(raw))
	for i, r := range raw {
		out[i] = string(r)
	}
	return out
}

func TestConnectError(t *testing.T) {
	srv := startServer(t)
	d := Start(t)
	c := d.Connect(srv+"/private", Options{Auth: map[string]any{"token": "wrong"}, Reconnection: ptr(false)})
	ce := c.WaitConnectError()
	if ce.Message != "not authorized" {
		t.Errorf("message = %q", ce.Message)
	}
	var data struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	}
	decode(t, ce.Data, &data)
	if data.Code != 4001 || data.Reason != "token missing" {
		t.Errorf("data = %s", ce.Data)
	}
	if st := c.State(); st.Connected || st.Active {
		t.Errorf("state after refusal = %+v, want inactive", st)
	}

	// socket.io-client does not retry a refused namespace by itself; with the right auth it connects.
	c.SetAuth(map[string]any{"token": "secret"})
	c.Connect()
	c.WaitConnect()
	if h := nextHello(t, c); h.Nsp != "/private" || h.Auth["token"] != "secret" {
		t.Errorf("hello = %+v", h)
	}

	// An unreachable server is a transport-level connect_error.
	dead := d.Connect("http://127.0.0.1:1/", Options{Reconnection: ptr(false), Transports: []string{"websocket"}})
	if ce := dead.WaitConnectError(); ce.Message != "websocket error" {
		t.Errorf("connect_error for a closed port = %+v", ce)
	}
}

func TestCloseEngineReconnects(t *testing.T) {
	t.Run("recovery", func(t *testing.T) {
		srv := startServer(t, "--recovery")
		d := Start(t)
		c := d.Connect(srv+"/", Options{ReconnectionDelay: 50, ReconnectionDelayMax: 100})
		first := c.WaitConnect()
		if h := nextHello(t, c); h.Recovered {
			t.Errorf("first hello = %+v", h)
		}
		// socket.io-client hands the recovery offset to listeners as an extra last argument.
		c.Emit("echo", "x")
		if ev := c.Next("echo"); len(ev.Args) != 2 || string(ev.Args[0]) != `"x"` {
			t.Errorf("echo with recovery = %s, want the arg and the offset", ev)
		}
		c.CloseEngine()
		if reason := c.WaitDisconnect(); reason != "forced close" {
			t.Errorf("disconnect reason = %q, want forced close", reason)
		}
		if n := c.WaitReconnectAttempt(); n != 1 {
			t.Errorf("reconnect attempt = %d", n)
		}
		again := c.WaitConnect()
		if !again.Recovered || again.SID != first.SID {
			t.Errorf("after reconnect: %+v, want recovered with sid %s", again, first.SID)
		}
		if h := nextHello(t, c); !h.Recovered {
			t.Errorf("second hello = %+v", h)
		}
	})
	t.Run("no recovery", func(t *testing.T) {
		srv := startServer(t)
		d := Start(t)
		c := d.Connect(srv+"/", Options{Transports: []string{"websocket"}, ReconnectionDelay: 50, ReconnectionDelayMax: 100})
		first := c.WaitConnect()
		c.CloseEngine()
		c.WaitDisconnect()
		again := c.WaitConnect()
		if again.Recovered || again.SID == first.SID {
			t.Errorf("after reconnect: %+v, want a new session (first sid %s)", again, first.SID)
		}
		// Events emitted while disconnected are buffered by socket.io-client and sent on reconnect;
		// this one goes out on the new connection.
		c.Emit("echo", "after")
		if ev := c.Next("echo"); string(ev.Args[0]) != `"after"` {
			t.Errorf("echo = %s", ev)
		}
	})
}

// TestDrain: Drain hands over everything queued, lifecycle messages and events alike, in arrival
// order, without waiting; the waits then find nothing of it.
func TestDrain(t *testing.T) {
	srv := startServer(t, "--recovery")
	d := Start(t)
	c := d.Connect(srv+"/", Options{ReconnectionDelay: 50, ReconnectionDelayMax: 100})
	if got := c.Drain(); len(got) != 0 {
		t.Fatalf("Drain before anything happened = %v", got)
	}
	var seen []Message
	drainUntil := func(what string, done func() bool) {
		t.Helper()
		deadline := time.Now().Add(DefaultTimeout)
		for !done() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s after %v; drained %v", what, DefaultTimeout, seen)
			}
			time.Sleep(5 * time.Millisecond)
			seen = append(seen, c.Drain()...)
		}
	}
	index := func(typ, event string) int {
		for i, m := range seen {
			if m.Type == typ && (event == "" || m.Event.Name == event) {
				return i
			}
		}
		return -1
	}
	drainUntil("connect, hello and upgrade", func() bool {
		return index("connect", "") >= 0 && index("event", "hello") >= 0 && index("upgrade", "") >= 0
	})
	connect, hello := seen[index("connect", "")], seen[index("event", "hello")]
	if connect.Connect.SID == "" || connect.Connect.Recovered || index("connect", "") > index("event", "hello") {
		t.Errorf("connect = %v, want a new session before the hello event, in %v", connect, seen)
	}
	if hello.Event.Client != c.Name() || len(hello.Event.Args) != 2 { // the payload and the recovery offset
		t.Errorf("hello = %v", hello)
	}
	if up := seen[index("upgrade", "")]; up.Transport != "websocket" || up.At.IsZero() {
		t.Errorf("upgrade = %+v", up)
	}
	c.NoEvent("hello", 50*time.Millisecond) // drained: not there for the waits

	seen = nil
	c.CloseEngine()
	drainUntil("the reconnection", func() bool { return index("connect", "") >= 0 })
	var types []string
	for _, m := range seen {
		types = append(types, m.Type)
	}
	if i := index("disconnect", ""); i < 0 || seen[i].Disconnect.Reason != "forced close" || i > index("connect", "") {
		t.Errorf("drained %v, want a forced close disconnect before the connect", seen)
	}
	if again := seen[index("connect", "")].Connect; !again.Recovered || again.SID != connect.Connect.SID {
		t.Errorf("reconnected %+v, want recovered with sid %s; drained %v", again, connect.Connect.SID, types)
	}
}

func TestServerDisconnect(t *testing.T) {
	srv := startServer(t)
	d := Start(t)
	c := d.Connect(srv+"/", Options{ReconnectionDelay: 50})
	c.WaitConnect()
	c.Emit("server-disconnect")
	if reason := c.WaitDisconnect(); reason != "io server disconnect" {
		t.Errorf("reason = %q", reason)
	}
	// A server-side disconnect is final: socket.io-client does not reconnect.
	if st := c.State(); st.Connected || st.Active {
		t.Errorf("state = %+v", st)
	}
}

func TestSharedManager(t *testing.T) {
	srv := startServer(t)
	d := Start(t)
	opts := Options{Manager: "m1", Transports: []string{"websocket"}, ReconnectionDelay: 50, ReconnectionDelayMax: 100}
	root := d.Connect(srv+"/", opts)
	chat := d.Connect(srv+"/chat", opts)
	r, c := root.WaitConnect(), chat.WaitConnect()
	if r.SID == c.SID {
		t.Errorf("both namespaces have sid %s", r.SID)
	}
	if h := nextHello(t, chat); h.Nsp != "/chat" {
		t.Errorf("chat hello = %+v", h)
	}
	// One engine: closing it drops both sockets, and both come back.
	chat.CloseEngine()
	root.WaitDisconnect()
	chat.WaitDisconnect()
	root.WaitConnect()
	chat.WaitConnect()

	// Closing one socket keeps the other's connection.
	chat.Close()
	root.Emit("echo", 1)
	root.Next("echo")

	// A second socket for the same namespace on the same manager is refused.
	if _, err := d.call(d.Timeout, map[string]any{"cmd": "connect", "client": "dup", "url": srv + "/", "manager": "m1"}); err == nil {
		t.Error("duplicate namespace on a shared manager accepted")
	}
}

func TestDriverErrors(t *testing.T) {
	d := Start(t)
	if _, err := d.call(d.Timeout, map[string]any{"cmd": "bogus"}); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown command: %v", err)
	}
	if _, err := d.call(d.Timeout, map[string]any{"cmd": "emit", "client": "nobody", "event": "x"}); err == nil {
		t.Error("emit on an unknown client accepted")
	}
	// socket.io-client throws for reserved event names; the driver survives and says so.
	srvless := d.Connect("http://127.0.0.1:1/", Options{Reconnection: ptr(false), Transports: []string{"websocket"}})
	if _, err := srvless.EmitWithAck(time.Second, "connect"); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("reserved event: %v", err)
	}
	srvless.State() // still alive
}

// fatalRecorder is a testing.TB whose Fatal/Fatalf record the message and end the goroutine, so that
// the failure messages of this package can be tested.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *fatalRecorder) Fatal(args ...any) { r.record(fmt.Sprint(args...)) }
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.record(fmt.Sprintf(format, args...))
}

func (r *fatalRecorder) record(msg string) {
	r.mu.Lock()
	r.msg = msg
	r.mu.Unlock()
	runtime.Goexit()
}

// failure runs f on its own goroutine and returns the message it failed with ("" if it did not).
func (r *fatalRecorder) failure(f func()) string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := r.msg
	r.msg = ""
	return msg
}

func TestFailureMessages(t *testing.T) {
	srv := startServer(t)
	rec := &fatalRecorder{TB: t}
	d := Start(rec)
	d.Timeout = 300 * time.Millisecond
	c := d.Connect(srv+"/", Options{Name: "alice", Transports: []string{"websocket"}})
	c.WaitConnect()
	c.Next("hello")

	c.Emit("echo", "queued-one")
	msg := rec.failure(func() { c.Next("never") })
	t.Logf("example failure message:\n%s", msg)
	for _, want := range []string{"client alice", `event "never"`, "timed out after 300ms", "queued-one"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, msg)
		}
	}
	if msg := rec.failure(func() { c.NoEvent("echo", time.Second) }); !strings.Contains(msg, "unexpected event alice: echo") {
		t.Errorf("NoEvent failure = %q", msg)
	}
	if msg := rec.failure(func() { c.WaitConnectError() }); msg == "" {
		t.Error("WaitConnectError did not fail with nothing to wait for")
	}

	refused := d.Connect(srv+"/private", Options{Name: "bob", Reconnection: ptr(false)})
	if msg := rec.failure(func() { refused.WaitConnect() }); !strings.Contains(msg, "not authorized") {
		t.Errorf("WaitConnect on a refused namespace: %q", msg)
	}
	if msg := rec.failure(func() { d.Connect(srv+"/", Options{Name: "alice"}) }); !strings.Contains(msg, "already exists") {
		t.Errorf("duplicate name: %q", msg)
	}
}
