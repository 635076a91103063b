package socketio_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/internal/faultproxy"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
)

// recoveryFixture is a server with connection state recovery, a counting
// middleware that sets the socket data, and a "join" handler.
type recoveryFixture struct {
	ts      *testServer
	nsp     *socketio.Namespace
	conns   <-chan *socketio.Socket
	discs   <-chan disconnection
	mwCalls chan bool // each middleware call, with s.Recovered()
}

func newRecoveryFixture(t *testing.T, ro socketio.RecoveryOptions) *recoveryFixture {
	return newRecoveryFixtureWith(t, &socketio.Options{Recovery: &ro})
}

func newRecoveryFixtureWith(t *testing.T, opts *socketio.Options) *recoveryFixture {
	ts := newTestServer(t, opts)
	nsp := ts.Of("/")
	f := &recoveryFixture{ts: ts, nsp: nsp, mwCalls: make(chan bool, 64)}
	nsp.Use(func(_ context.Context, s *socketio.Socket) error {
		f.mwCalls <- s.Recovered()
		user, _ := s.Handshake().AuthString("user")
		s.SetData(map[string]any{"user": user, "n": 1})
		return nil
	})
	nsp.OnEvent("join", func(s *socketio.Socket, e *socketio.Event) {
		r, _ := e.Args.String(0)
		s.Join(r)
		_ = e.Ack()
	})
	// Registered before connections(): the test learns of a connection
	// once its welcome is sent.
	nsp.OnConnection(func(s *socketio.Socket) { _ = s.Emit("welcome", s.Recovered()) })
	f.conns, f.discs = connections(nsp), disconnections(nsp)
	return f
}

// dropAndHold closes the client's Engine.IO connection and keeps it from
// reconnecting until the returned rule is released: the server has seen the
// disconnection and the test may broadcast while the client is away.
func (f *recoveryFixture) dropAndHold(t *testing.T, c *sioclient.Client, id string) *holdRule {
	t.Helper()
	hold := f.ts.holdRequests(isHandshake)
	c.CloseEngine()
	if r := c.WaitDisconnect(); r != "forced close" {
		t.Errorf("client reason %q", r)
	}
	dc := recv(t, f.discs, "server-side disconnect")
	if dc.id != id || dc.reason != socketio.ReasonTransportClose {
		t.Errorf("server-side disconnect %+v", dc)
	}
	return hold
}

// nextEvent returns the next event with its offset removed.
func nextEvent(t *testing.T, c *sioclient.Client) (name, args string) {
	t.Helper()
	ev := c.NextAny()
	a, _ := withoutOffset(t, ev)
	return ev.Name, joinRaw(a)
}

func TestRecovery(t *testing.T) {
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newRecoveryFixture(t, socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute})
			nsp := f.nsp
			d := startDriver(t)
			c := d.Connect(f.ts.URL+"/", fastReconnect(sioclient.Options{Transports: tc.transports, Auth: map[string]any{"user": "u1"}}))
			other := d.Connect(f.ts.URL+"/", sioclient.Options{Transports: wsOnly, Auth: map[string]any{"user": "u2"}})
			first := c.WaitConnect()
			if first.Recovered {
				t.Error("first connection recovered")
			}
			other.WaitConnect()
			s1 := recv(t, f.conns, "connection")
			if s2 := recv(t, f.conns, "connection"); s2.ID() == first.SID {
				s1 = s2
			}
			recv(t, f.mwCalls, "middleware")
			recv(t, f.mwCalls, "middleware")
			if name, args := nextEvent(t, c); name != "welcome" || args != "[false]" {
				t.Fatalf("first event %s%s", name, args)
			}
			if _, err := c.EmitWithAck(waitTimeout, "join", "room1"); err != nil {
				t.Fatal(err)
			}
			if err := nsp.Emit("b1", 1); err != nil {
				t.Fatal(err)
			}
			if name, args := nextEvent(t, c); name != "b1" || args != "[1]" {
				t.Fatalf("b1: %s%s", name, args)
			}
			if tc.transports == nil {
				c.WaitUpgrade()
			}

			hold := f.dropAndHold(t, c, first.SID)
			// While the client is away.
			mustEmit(t, nsp.To("room1").Emit("m1", "to-room"))
			mustEmit(t, nsp.Emit("m2", map[string]any{"x": 1}))
			mustEmit(t, nsp.To("room2").Emit("not-mine"))
			mustEmit(t, nsp.Except("room1").Emit("excluded"))
			mustEmit(t, nsp.Volatile().Emit("volatile")) // never replayed
			mustEmit(t, nsp.To("room1", first.SID).Emit("m3", []byte{1, 2}, "bin"))
			mustEmit(t, nsp.To(first.SID).Emit("m4"))

			recv(t, hold.held, "the reconnection attempt")
			f.ts.stopHolding(hold)
			again := c.WaitConnect()
			if !again.Recovered || again.SID != first.SID {
				t.Fatalf("reconnection %+v, want recovered with sid %s", again, first.SID)
			}
			s2 := recv(t, f.conns, "recovered connection")
			if !s2.Recovered() || s2.ID() != s1.ID() {
				t.Errorf("server socket: recovered %v, id %s (was %s)", s2.Recovered(), s2.ID(), s1.ID())
			}
			if !s2.In("room1") || !slices.Equal(s2.Rooms(), []string{s2.ID(), "room1"}) {
				t.Errorf("rooms after recovery: %v", s2.Rooms())
			}
			if want := map[string]any{"user": "u1", "n": 1}; !reflect.DeepEqual(s2.Data(), want) {
				t.Errorf("data after recovery: %#v", s2.Data())
			}
			noValue(t, f.mwCalls, "middleware call on a recovered connection")

			// The missed events, in order, before anything newer.
			mustEmit(t, nsp.To("room1").Emit("after", "new"))
			for _, want := range []struct{ name, args string }{
				{"m1", `["to-room"]`},
				{"m2", `[{"x":1}]`},
				{"m3", `[{"$bin":"AQI="},"bin"]`},
				{"m4", `[]`},
				{"welcome", `[true]`},
				{"after", `["new"]`},
			} {
				if name, args := nextEvent(t, c); name != want.name || args != want.args {
					t.Errorf("got %s%s, want %s%s", name, args, want.name, want.args)
				}
			}
			for _, ev := range []string{"b1", "not-mine", "excluded", "volatile", "m1", "m2", "m3", "m4"} {
				c.NoEvent(ev, 0)
			}
			// The other client was not disturbed. (The volatile event may
			// have been dropped for it: it follows others closely.)
			for _, want := range []string{"welcome", "b1", "m2", "excluded"} {
				if ev := other.NextAny(); ev.Name != want {
					t.Errorf("other client got %s, want %s", ev, want)
				}
			}
			// The recovered socket works as usual.
			if _, err := c.EmitWithAck(waitTimeout, "join", "room3"); err != nil {
				t.Fatal(err)
			}
			if !s2.In("room3") || nsp.RoomSize("room1") != 1 {
				t.Errorf("rooms %v, room1 size %d", s2.Rooms(), nsp.RoomSize("room1"))
			}
		})
	}
}

// TestRecoveryTakesOverLiveSocket: a client that finds its connection dead
// before the server does (a laptop waking up, a network switch: here its
// connection goes silent, and the client closes its engine) comes back
// while the server still holds its socket. Presenting the socket's private
// id, it takes the session over: the old socket is closed as "client
// reconnected", and the client is recovered with what was sent meanwhile
// to the dead connection.
func TestRecoveryTakesOverLiveSocket(t *testing.T) {
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newRecoveryFixture(t, socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute})
			proxy, err := faultproxy.New(f.ts.Addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = proxy.Close() })
			d := startDriver(t)
			c := d.Connect("http://"+proxy.Addr()+"/", fastReconnect(sioclient.Options{Transports: tc.transports, Auth: map[string]any{"user": "u1"}}))
			first := c.WaitConnect()
			recv(t, f.conns, "connection")
			recv(t, f.mwCalls, "middleware")
			if name, _ := nextEvent(t, c); name != "welcome" {
				t.Fatalf("first event %s", name)
			}
			if tc.transports == nil {
				c.WaitUpgrade()
			}
			// A polling client has no request open between two polls.
			wait.For(t, "an open connection", func() bool { return proxy.Conns() > 0 })

			// The network goes silent (the server hears nothing more of
			// this connection) and stays unreachable a moment, so that the
			// client's own close (a POST, for polling) is lost too.
			proxy.Stall(100, time.Minute)
			proxy.Refuse(300 * time.Millisecond)
			mustEmit(t, f.nsp.Emit("m1", 1)) // to the dead connection
			c.CloseEngine()
			if r := c.WaitDisconnect(); r != "forced close" {
				t.Errorf("client reason %q", r)
			}
			mustEmit(t, f.nsp.Emit("m2", 2)) // while the client is away

			// Reconnection attempts fail until the network is back.
			var (
				again  *sioclient.ConnectInfo
				events []string
			)
			deadline := time.Now().Add(waitTimeout)
			for again == nil || (again.Recovered && len(events) < 3) {
				if time.Now().After(deadline) {
					t.Fatalf("not reconnected with 3 events after %v: %v, events %v", waitTimeout, again, events)
				}
				time.Sleep(5 * time.Millisecond)
				for _, m := range c.Drain() {
					switch m.Type {
					case "connect":
						again = &m.Connect
					case "connect_error":
						if m.ConnectError.Message != "xhr poll error" && m.ConnectError.Message != "websocket error" {
							t.Fatalf("connect_error %+v", m.ConnectError)
						}
					case "event":
						args, _ := withoutOffset(t, m.Event)
						events = append(events, m.Event.Name+joinRaw(args))
					}
				}
			}
			if !again.Recovered || again.SID != first.SID {
				t.Fatalf("reconnection %+v, want recovered with sid %s", again, first.SID)
			}
			if dc := recv(t, f.discs, "the old socket's disconnection"); dc.id != first.SID || dc.reason != socketio.ReasonClientReconnected {
				t.Errorf("server-side disconnect %+v, want %s with %q", dc, first.SID, socketio.ReasonClientReconnected)
			}
			if s := recv(t, f.conns, "recovered connection"); !s.Recovered() || s.ID() != first.SID {
				t.Errorf("server socket: recovered %v, id %s", s.Recovered(), s.ID())
			}
			if want := []string{"m1[1]", "m2[2]", "welcome[true]"}; !slices.Equal(events, want) {
				t.Errorf("events %v, want %v", events, want)
			}
			if n := f.nsp.SocketCount(); n != 1 {
				t.Errorf("%d sockets, want the recovered one", n)
			}
			// The dead connection is closed, not left to its heartbeat.
			wait.For(t, "one Engine.IO session", func() bool { return f.ts.Engine().SessionCount() == 1 })
			noValue(t, f.discs, "another disconnection")
		})
	}
}

func mustEmit(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRecoveryRunMiddlewares: with RunMiddlewares, middlewares run on a
// recovered connection too, and see it as recovered.
func TestRecoveryRunMiddlewares(t *testing.T) {
	f := newRecoveryFixture(t, socketio.RecoveryOptions{RunMiddlewares: true})
	d := startDriver(t)
	c := d.Connect(f.ts.URL+"/", fastReconnect(sioclient.Options{Transports: wsOnly, Auth: map[string]any{"user": "u1"}}))
	first := c.WaitConnect()
	recv(t, f.conns, "connection")
	if recv(t, f.mwCalls, "middleware") {
		t.Error("first middleware call sees a recovered socket")
	}
	nextEvent(t, c) // welcome, which gives the client an offset
	hold := f.dropAndHold(t, c, first.SID)
	mustEmit(t, f.nsp.Emit("missed"))
	f.ts.stopHolding(hold)
	again := c.WaitConnect()
	if !again.Recovered || again.SID != first.SID {
		t.Fatalf("reconnection %+v", again)
	}
	if !recv(t, f.mwCalls, "middleware on the recovered connection") {
		t.Error("middleware does not see the socket as recovered")
	}
	s := recv(t, f.conns, "recovered connection")
	if user, _ := s.Handshake().AuthString("user"); user != "u1" {
		t.Errorf("auth on recovery: %s", s.Handshake().Auth)
	}
	if name, _ := nextEvent(t, c); name != "missed" {
		t.Errorf("first event after recovery: %s", name)
	}
}

// TestRecoveryDeclinedByMiddleware: with RunMiddlewares, a middleware sees
// the restored data and may decline the recovery (here: the client now
// authenticates as someone else); the client is then connected as a new
// socket and gets nothing of the old session.
func TestRecoveryDeclinedByMiddleware(t *testing.T) {
	ro := socketio.RecoveryOptions{RunMiddlewares: true}
	ts := newTestServer(t, &socketio.Options{Recovery: &ro})
	nsp := ts.Of("/")
	type call struct {
		recovered bool
		restored  any
	}
	calls := make(chan call, 8)
	nsp.Use(func(_ context.Context, s *socketio.Socket) error {
		user, _ := s.Handshake().AuthString("user")
		calls <- call{s.Recovered(), s.Data()}
		if s.Recovered() && s.Data() != user {
			return socketio.ErrDeclineRecovery
		}
		s.SetData(user)
		return nil
	})
	conns, discs := connections(nsp), disconnections(nsp)
	nsp.OnConnection(func(s *socketio.Socket) { _ = s.Emit("welcome", s.Data()) })
	d := startDriver(t)
	c := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly, Auth: map[string]any{"user": "u1"}, ReconnectionDelay: 50, ReconnectionDelayMax: 100})
	first := c.WaitConnect()
	recv(t, conns, "connection").Join("room")
	recv(t, calls, "middleware")
	c.Next("welcome") // gives the client an offset

	// Same identity: recovered, and the middleware saw the restored data.
	hold := ts.holdRequests(isHandshake)
	c.CloseEngine()
	c.WaitDisconnect()
	recv(t, discs, "disconnect")
	mustEmit(t, nsp.To("room").Emit("missed", 1))
	ts.stopHolding(hold)
	if info := c.WaitConnect(); !info.Recovered || info.SID != first.SID {
		t.Fatalf("reconnection as u1: %+v", info)
	}
	if got := recv(t, calls, "middleware on recovery"); !got.recovered || got.restored != "u1" {
		t.Errorf("middleware saw %+v, want the recovered socket with data u1", got)
	}
	recv(t, conns, "recovered connection")
	if n, args := nextEvent(t, c); n != "missed" || args != "[1]" {
		t.Errorf("after recovery: %s%s", n, args)
	}
	c.Next("welcome")

	// Another identity: declined, connected afresh, nothing replayed.
	hold = ts.holdRequests(isHandshake)
	c.CloseEngine()
	c.WaitDisconnect()
	recv(t, discs, "disconnect")
	mustEmit(t, nsp.To("room").Emit("missed", 2))
	c.SetAuth(map[string]any{"user": "u2"})
	ts.stopHolding(hold)
	info := c.WaitConnect()
	if info.Recovered || info.SID == first.SID {
		t.Fatalf("reconnection as u2: %+v", info)
	}
	if got := recv(t, calls, "middleware on the declined recovery"); !got.recovered || got.restored != "u1" {
		t.Errorf("first middleware call %+v, want the recovered socket with data u1", got)
	}
	if got := recv(t, calls, "middleware on the new socket"); got.recovered || got.restored != nil {
		t.Errorf("second middleware call %+v, want a new socket without data", got)
	}
	s := recv(t, conns, "new connection")
	if s.Rooms()[0] != s.ID() || len(s.Rooms()) != 1 {
		t.Errorf("new socket rooms %v", s.Rooms())
	}
	if n, args := nextEvent(t, c); n != "welcome" || args != `["u2"]` {
		t.Errorf("first event of the new socket: %s%s", n, args)
	}
	c.NoEvent("missed", 100*time.Millisecond)
	if nsp.SocketCount() != 1 {
		t.Errorf("%d sockets, want 1", nsp.SocketCount())
	}
}

// TestRecoveryRefusedByMiddleware: with RunMiddlewares, a middleware may
// refuse the recovered connection.
func TestRecoveryRefusedByMiddleware(t *testing.T) {
	ro := socketio.RecoveryOptions{RunMiddlewares: true}
	ts := newTestServer(t, &socketio.Options{Recovery: &ro})
	nsp := ts.Of("/")
	nsp.Use(func(_ context.Context, s *socketio.Socket) error {
		if s.Recovered() {
			return &socketio.ConnectError{Message: "no recovery for you", Data: "sorry"}
		}
		return nil
	})
	conns, discs := connections(nsp), disconnections(nsp)
	nsp.OnConnection(func(s *socketio.Socket) { _ = s.Emit("welcome") })
	d := startDriver(t)
	c := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly, ReconnectionDelay: 50, ReconnectionDelayMax: 100})
	c.WaitConnect()
	recv(t, conns, "connection")
	c.Next("welcome")
	hold := ts.holdRequests(isHandshake)
	c.CloseEngine()
	c.WaitDisconnect()
	recv(t, discs, "disconnect")
	ts.stopHolding(hold)
	if ce := c.WaitConnectError(); ce.Message != "no recovery for you" || string(ce.Data) != `"sorry"` {
		t.Errorf("connect_error %+v", ce)
	}
	if nsp.SocketCount() != 0 {
		t.Errorf("%d sockets after the refusal", nsp.SocketCount())
	}
}

// TestRecoveryExpired: after MaxDisconnectionDuration the session is gone:
// a new socket, the middlewares run, no rooms, no data.
func TestRecoveryExpired(t *testing.T) {
	const maxAge = 100 * time.Millisecond
	f := newRecoveryFixture(t, socketio.RecoveryOptions{MaxDisconnectionDuration: maxAge})
	d := startDriver(t)
	c := d.Connect(f.ts.URL+"/", fastReconnect(sioclient.Options{Transports: wsOnly, Auth: map[string]any{"user": "u1"}}))
	first := c.WaitConnect()
	s1 := recv(t, f.conns, "connection")
	recv(t, f.mwCalls, "middleware")
	nextEvent(t, c)
	if _, err := c.EmitWithAck(waitTimeout, "join", "room1"); err != nil {
		t.Fatal(err)
	}
	s1.SetData("changed")
	hold := f.dropAndHold(t, c, first.SID)
	mustEmit(t, f.nsp.Emit("missed"))
	// The expiry is a matter of time: let it pass.
	time.Sleep(3 * maxAge)
	f.ts.stopHolding(hold)
	again := c.WaitConnect()
	if again.Recovered || again.SID == first.SID {
		t.Errorf("reconnection %+v after expiry, want a new session (first sid %s)", again, first.SID)
	}
	s2 := recv(t, f.conns, "connection")
	if s2.Recovered() || s2.In("room1") || s2.ID() == s1.ID() {
		t.Errorf("new socket: recovered %v, rooms %v", s2.Recovered(), s2.Rooms())
	}
	if want := map[string]any{"user": "u1", "n": 1}; !reflect.DeepEqual(s2.Data(), want) {
		t.Errorf("data of the new socket: %#v (the middleware sets it)", s2.Data())
	}
	if recv(t, f.mwCalls, "middleware on the new connection") {
		t.Error("middleware sees a recovered socket")
	}
	if name, args := nextEvent(t, c); name != "welcome" || args != "[false]" {
		t.Errorf("first event %s%s, want welcome(false) and no replay", name, args)
	}
	c.NoEvent("missed", 0)
}

// TestRecoveryWithoutOption: without Recovery the CONNECT reply has no pid,
// events carry no offset, and a reconnection is a new session.
func TestRecoveryWithoutOption(t *testing.T) {
	ts := newTestServer(t, nil)
	conns := connections(ts.Of("/"))
	d := startDriver(t)
	c := d.Connect(ts.URL+"/", fastReconnect(sioclient.Options{Transports: wsOnly}))
	first := c.WaitConnect()
	s := recv(t, conns, "connection")
	mustEmit(t, ts.Of("/").Emit("b", 1))
	if ev := c.Next("b"); argsOf(ev) != "[1]" {
		t.Errorf("broadcast without recovery carries %s", ev)
	}
	mustEmit(t, s.Emit("d", 2))
	if ev := c.Next("d"); argsOf(ev) != "[2]" {
		t.Errorf("emit without recovery carries %s", ev)
	}
	c.CloseEngine()
	c.WaitDisconnect()
	if again := c.WaitConnect(); again.Recovered || again.SID == first.SID {
		t.Errorf("reconnection %+v", again)
	}
	// The raw CONNECT reply holds the sid only.
	raw := dialWS(t, ts.Addr)
	raw.send("40")
	reply := raw.read()
	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(reply[2:]), &keys); err != nil || len(keys) != 1 || keys["sid"] == nil {
		t.Errorf("CONNECT reply %q, want only a sid", reply)
	}
}

// TestRecoveryMultiplexed: each namespace of a Manager recovers its own
// socket.
func TestRecoveryMultiplexed(t *testing.T) {
	ro := socketio.RecoveryOptions{}
	ts := newTestServer(t, &socketio.Options{Recovery: &ro})
	var conns []<-chan *socketio.Socket
	discs := make(chan disconnection, 4)
	for _, n := range []string{"/", "/chat"} {
		nsp := ts.Of(n)
		conns = append(conns, connections(nsp))
		nsp.OnConnection(func(s *socketio.Socket) { _ = s.Emit("welcome", s.Namespace().Name()) })
		nsp.OnDisconnect(func(s *socketio.Socket, r socketio.DisconnectReason) { discs <- disconnection{s.ID(), r} })
	}
	d := startDriver(t)
	opts := sioclient.Options{Manager: "m", Transports: wsOnly, ReconnectionDelay: 50, ReconnectionDelayMax: 100}
	root, chat := d.Connect(ts.URL+"/", opts), d.Connect(ts.URL+"/chat", opts)
	ir, ic := root.WaitConnect(), chat.WaitConnect()
	recv(t, conns[0], "connection")
	recv(t, conns[1], "connection")
	nextEvent(t, root)
	nextEvent(t, chat)

	hold := ts.holdRequests(isHandshake)
	root.CloseEngine()
	root.WaitDisconnect()
	chat.WaitDisconnect()
	recv(t, discs, "disconnect")
	recv(t, discs, "disconnect")
	mustEmit(t, ts.Of("/").Emit("missed-root"))
	mustEmit(t, ts.Of("/chat").Emit("missed-chat"))
	ts.stopHolding(hold)
	if a := root.WaitConnect(); !a.Recovered || a.SID != ir.SID {
		t.Errorf("root: %+v", a)
	}
	if a := chat.WaitConnect(); !a.Recovered || a.SID != ic.SID {
		t.Errorf("chat: %+v", a)
	}
	if n, _ := nextEvent(t, root); n != "missed-root" {
		t.Errorf("root got %s", n)
	}
	if n, _ := nextEvent(t, chat); n != "missed-chat" {
		t.Errorf("chat got %s", n)
	}
}

// TestRecoveryRace: broadcasts racing with the reconnection are delivered
// exactly once and in order, whether they fall before the session is taken,
// during the replay or after it.
func TestRecoveryRace(t *testing.T) {
	for _, tc := range []struct {
		name       string
		transports []string
	}{{"websocket", wsOnly}, {"polling", pollingOnly}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRecoveryFixture(t, socketio.RecoveryOptions{})
			nsp := f.nsp
			d := startDriver(t)
			c := d.Connect(f.ts.URL+"/", sioclient.Options{Transports: tc.transports, ReconnectionDelay: 20, ReconnectionDelayMax: 50})
			first := c.WaitConnect()
			s := recv(t, f.conns, "connection")
			nextEvent(t, c) // welcome
			s.Join("room")

			// The broadcaster alternates room and namespace broadcasts.
			stop := make(chan struct{})
			sent := make(chan int, 1)
			go func() {
				i := 0
				defer func() { sent <- i }()
				for {
					select {
					case <-stop:
						return
					default:
					}
					var err error
					if i%2 == 0 {
						err = nsp.To("room").Emit("seq", i)
					} else {
						err = nsp.Emit("seq", i)
					}
					if err != nil {
						t.Errorf("emit %d: %v", i, err)
						return
					}
					i++
					if i%2 == 0 {
						time.Sleep(time.Millisecond) // pacing, so that the client keeps up
					}
				}
			}()

			const rounds = 8
			next := 0 // the next sequence number expected
			expectSeq := func(upTo int) {
				for next < upTo {
					ev := c.Next("seq")
					args, _ := withoutOffset(t, ev)
					if got := joinRaw(args); got != "["+itoa(next)+"]" {
						t.Fatalf("event %s, want seq %d", ev, next)
					}
					next++
				}
			}
			for round := range rounds {
				hold := f.dropAndHold(t, c, first.SID)
				f.ts.stopHolding(hold)
				info := c.WaitConnect()
				if !info.Recovered || info.SID != first.SID {
					t.Fatalf("round %d: reconnection %+v", round, info)
				}
				recv(t, f.conns, "recovered connection")
				// Take what arrived so far, so that the next round starts
				// with a recent offset.
				expectSeq(next + 1)
				c.Next("welcome")
			}
			close(stop)
			total := recv(t, sent, "the broadcaster")
			mustEmit(t, nsp.Emit("end"))
			expectSeq(total)
			ev := c.NextAny()
			if ev.Name != "end" {
				t.Errorf("after the last seq: %s", ev)
			}
			c.NoEvent("seq", 0)
			t.Logf("%d events over %d reconnections", total, rounds)
		})
	}
}

// TestRecoveryOffsetsArriveInLogOrder: concurrent broadcasts reach a
// client in the order their offsets were given out. The client reports the
// last offset it received and is replayed everything logged after it, so an
// offset arriving before a smaller one would be delivered twice.
func TestRecoveryOffsetsArriveInLogOrder(t *testing.T) {
	f := newRecoveryFixture(t, socketio.RecoveryOptions{})
	d := startDriver(t)
	c := d.Connect(f.ts.URL+"/", sioclient.Options{Transports: wsOnly})
	c.WaitConnect()
	recv(t, f.conns, "connection")
	c.Next("welcome")

	const broadcasters, each = 4, 250
	errs := make(chan error, broadcasters)
	for g := range broadcasters {
		go func() {
			var err error
			for i := 0; i < each && err == nil; i++ {
				err = f.nsp.Emit("burst", g, i)
			}
			errs <- err
		}()
	}
	for range broadcasters {
		if err := recv(t, errs, "a broadcaster"); err != nil {
			t.Fatal(err)
		}
	}
	var last uint64
	for i := range broadcasters * each {
		_, offset := withoutOffset(t, c.Next("burst"))
		_, pos, _ := strings.Cut(offset, ".")
		seq, err := strconv.ParseUint(pos, 36, 64)
		if err != nil {
			t.Fatalf("offset %q: %v", offset, err)
		}
		if seq <= last {
			t.Fatalf("event %d: offset %q (position %d) arrived after position %d", i, offset, seq, last)
		}
		last = seq
	}
}

// TestRecoveryBroadcastFromDisconnectHandler: a broadcast that cuts off a
// slow consumer runs that socket's disconnect handlers, and a handler that
// broadcasts in turn (presence: "user left") must not wait for the first
// broadcast to finish: with recovery on, broadcasts of a namespace are
// ordered by a lock.
func TestRecoveryBroadcastFromDisconnectHandler(t *testing.T) {
	ts := newTestServer(t, &socketio.Options{
		Recovery: &socketio.RecoveryOptions{},
		Engine:   &engineio.Options{MaxQueueBytes: 4096},
	})
	nsp := ts.Of("/")
	conns := connections(nsp)
	left := make(chan string, 4)
	nsp.OnDisconnect(func(s *socketio.Socket, reason socketio.DisconnectReason) {
		left <- string(reason)
		if err := nsp.Emit("left", s.ID()); err != nil {
			t.Errorf("broadcast from the disconnect handler: %v", err)
		}
	})
	d := startDriver(t)
	stays := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly})
	stays.WaitConnect()
	recv(t, conns, "connection")
	goes := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly, Reconnection: new(false)})
	goes.WaitConnect()
	s := recv(t, conns, "connection")
	s.Join("big")

	done := make(chan error, 1)
	go func() { done <- nsp.To("big").Emit("big", strings.Repeat("x", 8192)) }()
	if err := recv(t, done, "the broadcast that overflows a queue"); err != nil {
		t.Fatal(err)
	}
	if reason := recv(t, left, "the disconnect handler"); reason != "slow consumer" {
		t.Errorf("disconnect reason %q, want slow consumer", reason)
	}
	if ev := stays.Next("left"); !strings.Contains(ev.String(), s.ID()) {
		t.Errorf("left event %s", ev)
	}
}

// lostLogAdapter keeps sessions but loses its packet log between
// RestoreSession and Since, as a log trimmed at that moment would. It
// wraps the memory adapter and forwards its recovery log, as a wrapping
// adapter must.
type lostLogAdapter struct{ socketio.Adapter }

func (a lostLogAdapter) RecoveryLog() socketio.RecoveryLog {
	return lostLog{a.Adapter.(socketio.RecoveryLogProvider).RecoveryLog()}
}

type lostLog struct{ socketio.RecoveryLog }

func (lostLog) Since(string, []string) ([]*socketio.Packet, socketio.LogPosition, bool) {
	return nil, socketio.LogPosition{}, false
}

// TestRecoveryLogLost: when the missed packets cannot be read after the
// session was taken, the client is not told it recovered (that would hide a
// gap): it gets a new socket, authenticated by the middlewares.
func TestRecoveryLogLost(t *testing.T) {
	f := newRecoveryFixtureWith(t, &socketio.Options{
		Recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute},
		Adapter:  func(h socketio.AdapterHost) socketio.Adapter { return lostLogAdapter{socketio.NewMemoryAdapter(h)} },
	})
	d := startDriver(t)
	c := d.Connect(f.ts.URL+"/", fastReconnect(sioclient.Options{Transports: wsOnly, Auth: map[string]any{"user": "u1"}}))
	first := c.WaitConnect()
	s1 := recv(t, f.conns, "connection")
	recv(t, f.mwCalls, "middleware")
	nextEvent(t, c)
	if _, err := c.EmitWithAck(waitTimeout, "join", "room1"); err != nil {
		t.Fatal(err)
	}
	hold := f.dropAndHold(t, c, first.SID)
	mustEmit(t, f.nsp.Emit("missed"))
	f.ts.stopHolding(hold)
	again := c.WaitConnect()
	if again.Recovered || again.SID == first.SID {
		t.Errorf("reconnection %+v, want a new session (first sid %s)", again, first.SID)
	}
	s2 := recv(t, f.conns, "connection")
	if s2.Recovered() || s2.In("room1") || s2.ID() == s1.ID() {
		t.Errorf("new socket: recovered %v, id %s, rooms %v", s2.Recovered(), s2.ID(), s2.Rooms())
	}
	if recv(t, f.mwCalls, "middleware on the new connection") {
		t.Error("middleware sees a recovered socket")
	}
	if _, ok := f.nsp.Socket(s1.ID()); ok {
		t.Errorf("the abandoned socket %s is still registered", s1.ID())
	}
	if n := f.nsp.RoomSize("room1"); n != 0 {
		t.Errorf("room1 has %d members after the abandoned recovery", n)
	}
	if name, args := nextEvent(t, c); name != "welcome" || args != "[false]" {
		t.Errorf("first event %s%s, want welcome(false)", name, args)
	}
	c.NoEvent("missed", 0)
}

// TestRecoveryTwiceInARow: a recovered socket that drops in a way the
// server does not see (a polling client that stops polling: noticed only at
// the ping timeout) can still be recovered by the client's next
// reconnection, with the same private id and a later offset, and the event
// that went to the stale socket is replayed. The session used to be removed
// by the first recovery, and that event was lost. (The stale socket is
// taken over by the reconnection: see TestRecoveryTakesOverLiveSocket.)
func TestRecoveryTwiceInARow(t *testing.T) {
	ts := newTestServer(t, &socketio.Options{Recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}})
	nsp := ts.Of("/")
	conns := connections(nsp)
	emit := func(name string) { mustEmit(t, nsp.Emit(name)) }

	connect := func(c *rawPolling, auth string) []string { return pollConnect(t, c, auth) }
	offsetOf := func(pkt, name string) string { return eventOffset(t, pkt, name) }
	var reply struct{ SID, PID string }

	c1 := dialPolling(t, ts.URL)
	pkts := connect(c1, "")
	if err := json.Unmarshal([]byte(strings.TrimPrefix(pkts[0], "40")), &reply); err != nil || reply.PID == "" {
		t.Fatalf("CONNECT reply %q: %v", pkts[0], err)
	}
	recv(t, conns, "first connection")
	emit("e0")
	offset := offsetOf(c1.poll(), "e0")
	// The client closes its transport: the server sees it, keeps the session.
	c1.post("1")
	wait.For(t, "the disconnection", func() bool { return nsp.SocketCount() == 0 })
	emit("e1")

	auth := func(offset string) string {
		b, _ := json.Marshal(map[string]string{"pid": reply.PID, "offset": offset})
		return string(b)
	}
	c2 := dialPolling(t, ts.URL)
	pkts = connect(c2, auth(offset))
	if len(pkts) != 2 || connectSID(t, pkts[1], "40") != reply.SID {
		t.Fatalf("first recovery: %q, want e1 then the CONNECT reply with sid %s", pkts, reply.SID)
	}
	offset = offsetOf(pkts[0], "e1")
	if s := recv(t, conns, "first recovery"); !s.Recovered() {
		t.Fatal("first reconnection not recovered")
	}

	// c2 stops polling without a word: the server still has its socket.
	emit("e2")
	if nsp.SocketCount() != 1 {
		t.Fatalf("%d sockets: the server noticed the silent drop", nsp.SocketCount())
	}
	c3 := dialPolling(t, ts.URL)
	pkts = connect(c3, auth(offset))
	if len(pkts) != 2 || connectSID(t, pkts[1], "40") != reply.SID {
		t.Fatalf("second recovery: %q, want e2 then the CONNECT reply with sid %s", pkts, reply.SID)
	}
	offsetOf(pkts[0], "e2")
	if s := recv(t, conns, "second recovery"); !s.Recovered() {
		t.Fatal("second reconnection not recovered")
	}
	// The stale socket was taken over, its dead connection closed, and only
	// the new one receives.
	if nsp.SocketCount() != 1 {
		t.Fatalf("%d sockets after the takeover", nsp.SocketCount())
	}
	if body, err := c2.tryGet(c2.base); err == nil && body != "1" {
		t.Fatalf("stale session still serves: %q", body)
	}
	emit("e3")
	offsetOf(c3.poll(), "e3")
}

// pollConnect sends CONNECT to the main namespace with auth over a raw
// polling session and returns the packets polled until the CONNECT reply
// (or error) included.
func pollConnect(t *testing.T, c *rawPolling, auth string) []string {
	t.Helper()
	c.post("40" + auth)
	var pkts []string
	for !slices.ContainsFunc(pkts, func(p string) bool { return strings.HasPrefix(p, "40") || strings.HasPrefix(p, "44") }) {
		pkts = append(pkts, strings.Split(c.poll(), "\x1e")...)
	}
	return pkts
}

// eventOffset returns the offset (the last argument) of an event packet.
func eventOffset(t *testing.T, pkt, name string) string {
	t.Helper()
	var args []any
	if !strings.HasPrefix(pkt, "42") || json.Unmarshal([]byte(pkt[2:]), &args) != nil || len(args) < 2 || args[0] != name {
		t.Fatalf("packet %q, want the event %s with an offset", pkt, name)
	}
	off, _ := args[len(args)-1].(string)
	return off
}

// TestRecoveryDeclinedLeavesSession: a stranger presenting someone's
// private id and offset is declined by the middleware and connected as a
// new socket; the session stays for its owner, who still recovers it.
func TestRecoveryDeclinedLeavesSession(t *testing.T) {
	ro := socketio.RecoveryOptions{RunMiddlewares: true}
	ts := newTestServer(t, &socketio.Options{Recovery: &ro})
	nsp := ts.Of("/")
	nsp.Use(func(_ context.Context, s *socketio.Socket) error {
		user, _ := s.Handshake().AuthString("user")
		if s.Recovered() && s.Data() != user {
			return socketio.ErrDeclineRecovery
		}
		s.SetData(user)
		return nil
	})
	owner := dialPolling(t, ts.URL)
	pkts := pollConnect(t, owner, `{"user":"owner"}`)
	var reply struct{ SID, PID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(pkts[len(pkts)-1], "40")), &reply); err != nil || reply.PID == "" {
		t.Fatalf("CONNECT reply %q: %v", pkts, err)
	}
	mustEmit(t, nsp.Emit("e0"))
	offset := eventOffset(t, owner.poll(), "e0")
	owner.post("1")
	wait.For(t, "the disconnection", func() bool { return nsp.SocketCount() == 0 })
	mustEmit(t, nsp.Emit("e1"))

	auth := func(user string) string {
		b, _ := json.Marshal(map[string]string{"user": user, "pid": reply.PID, "offset": offset})
		return string(b)
	}
	stranger := dialPolling(t, ts.URL)
	pkts = pollConnect(t, stranger, auth("stranger"))
	if len(pkts) != 1 || connectSID(t, pkts[0], "40") == reply.SID {
		t.Fatalf("stranger: %q, want a new socket and nothing replayed", pkts)
	}
	back := dialPolling(t, ts.URL)
	pkts = pollConnect(t, back, auth("owner"))
	if len(pkts) != 2 || connectSID(t, pkts[1], "40") != reply.SID {
		t.Fatalf("owner after the stranger: %q, want e1 then the CONNECT reply with sid %s", pkts, reply.SID)
	}
	eventOffset(t, pkts[0], "e1")
}

// TestRecoveryTakeOverAuthenticatedFirst: with RunMiddlewares, a live
// socket is taken over only by a client the middlewares accept for its
// session. Someone who learned its private id but cannot authenticate is
// refused, and the socket, its connection and its rooms stay as they were;
// the client that owns the session still takes it over.
func TestRecoveryTakeOverAuthenticatedFirst(t *testing.T) {
	ro := socketio.RecoveryOptions{RunMiddlewares: true}
	ts := newTestServer(t, &socketio.Options{Recovery: &ro})
	nsp := ts.Of("/")
	nsp.Use(func(_ context.Context, s *socketio.Socket) error {
		if token, _ := s.Handshake().AuthString("token"); token != "secret" {
			return &socketio.ConnectError{Message: "unauthorized"}
		}
		return nil
	})
	conns, discs := connections(nsp), disconnections(nsp)

	victim := dialWS(t, ts.Addr)
	victim.send(`40{"token":"secret"}`)
	reply := victim.read()
	var ids struct{ SID, PID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(reply, "40")), &ids); err != nil || ids.PID == "" {
		t.Fatalf("CONNECT reply %q (%v), want a sid and a pid", reply, err)
	}
	recv(t, conns, "the victim's connection").Join("private")
	mustEmit(t, nsp.To("private").Emit("first"))
	offset := eventOffset(t, victim.read(), "first")

	// The private id and an offset, without credentials.
	attacker := dialWS(t, ts.Addr)
	attacker.send(`40{"pid":"` + ids.PID + `","offset":"` + offset + `"}`)
	if got := attacker.read(); !strings.HasPrefix(got, `44{"message":"unauthorized"`) {
		t.Fatalf("attacker's CONNECT: %q, want the middleware's refusal", got)
	}
	noValue(t, discs, "a disconnection after the refused takeover")
	mustEmit(t, nsp.To("private").Emit("still", "here"))
	if got := victim.read(); !strings.HasPrefix(got, `42["still","here"`) {
		t.Fatalf("victim after the refused takeover: %q", got)
	}

	// The owner, authenticated, takes its session over.
	owner := dialWS(t, ts.Addr)
	owner.send(`40{"token":"secret","pid":"` + ids.PID + `","offset":"` + offset + `"}`)
	if dc := recv(t, discs, "the taken-over socket's disconnection"); dc.id != ids.SID || dc.reason != socketio.ReasonClientReconnected {
		t.Fatalf("disconnection %+v, want %s with %q", dc, ids.SID, socketio.ReasonClientReconnected)
	}
	reply = owner.read()
	for strings.HasPrefix(reply, "42") { // what the session missed comes first
		reply = owner.read()
	}
	if sid := connectSID(t, reply, "40"); sid != ids.SID {
		t.Fatalf("owner got sid %s, want the taken-over %s", sid, ids.SID)
	}
	if s := recv(t, conns, "the owner's connection"); !s.Recovered() || !slices.Contains(s.Rooms(), "private") {
		t.Errorf("owner's socket: recovered %v, rooms %v", s.Recovered(), s.Rooms())
	}
}

// TestLocalBroadcastLogged: over the memory log (this server's own), a
// broadcast with the Local flag is logged like any other, as Node's
// in-memory adapter gives it an offset, though it never reaches the
// adapter; a volatile one is not.
func TestLocalBroadcastLogged(t *testing.T) {
	srv := newSIOServer(t, &socketio.Options{Recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}})
	defer shutdown(t, srv)
	nsp := srv.Of("/")
	ctx := context.Background()
	emit := func(op socketio.BroadcastOperator, arg string) string {
		t.Helper()
		p, err := socketio.NewPacket("ev", arg)
		if err != nil {
			t.Fatal(err)
		}
		off, err := op.EmitPacketLogged(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return off
	}
	first := emit(nsp.To("r"), "all")
	local := emit(nsp.Local().To("r"), "local")
	if local == "" || local == first {
		t.Fatalf("local broadcast logged at %q (the one before at %q)", local, first)
	}
	if off := emit(nsp.Local().Volatile(), "volatile"); off != "" {
		t.Errorf("volatile local broadcast logged at %q", off)
	}
	page, err := nsp.History(ctx, socketio.HistoryQuery{Since: first, Rooms: []string{"r"}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Packets) != 1 || page.Packets[0].Offset != local {
		t.Fatalf("history after %s: %d packets, want the local one at %s", first, len(page.Packets), local)
	}
}
