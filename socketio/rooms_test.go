package socketio_test

import (
	"context"
	"slices"
	"testing"

	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
)

// roomFixture is a server with four clients a, b, c, d on "/", and room
// handlers: "join" and "leave" (args: room names, acked when done).
type roomFixture struct {
	t       *testing.T
	ts      *testServer
	nsp     *socketio.Namespace
	names   []string
	clients map[string]*sioclient.Client
	sockets map[string]*socketio.Socket
	discs   <-chan disconnection
}

func newRoomFixture(t *testing.T, opts sioclient.Options) *roomFixture {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	nsp.OnEvent("join", func(s *socketio.Socket, e *socketio.Event) {
		for i := range e.Args.Len() {
			r, _ := e.Args.String(i)
			s.Join(r)
		}
		_ = e.Ack(s.Rooms())
	})
	nsp.OnEvent("leave", func(s *socketio.Socket, e *socketio.Event) {
		for i := range e.Args.Len() {
			r, _ := e.Args.String(i)
			s.Leave(r)
		}
		_ = e.Ack(s.Rooms())
	})
	conns := connections(nsp)
	f := &roomFixture{t: t, ts: ts, nsp: nsp, names: []string{"a", "b", "c", "d"},
		clients: map[string]*sioclient.Client{}, sockets: map[string]*socketio.Socket{}, discs: disconnections(nsp)}
	d := startDriver(t)
	for _, n := range f.names {
		o := opts
		o.Name = n
		f.clients[n] = d.Connect(ts.URL+"/", o)
		info := f.clients[n].WaitConnect()
		s := recv(t, conns, "connection of "+n)
		if s.ID() != info.SID {
			t.Fatalf("%s: server socket %s, client %s", n, s.ID(), info.SID)
		}
		f.sockets[n] = s
	}
	return f
}

func (f *roomFixture) join(name string, rooms ...any) {
	f.t.Helper()
	if _, err := f.clients[name].EmitWithAck(waitTimeout, "join", rooms...); err != nil {
		f.t.Fatalf("%s join %v: %v", name, rooms, err)
	}
}

func (f *roomFixture) leave(name string, rooms ...any) {
	f.t.Helper()
	if _, err := f.clients[name].EmitWithAck(waitTimeout, "leave", rooms...); err != nil {
		f.t.Fatalf("%s leave %v: %v", name, rooms, err)
	}
}

// expect checks who received event ev exactly once: a marker broadcast to
// everyone follows it, and events from one server to one client arrive in
// order, so once the marker is in, ev will never come.
func (f *roomFixture) expect(ev string, emit func() error, want ...string) {
	f.t.Helper()
	if err := emit(); err != nil {
		f.t.Fatalf("emit %s: %v", ev, err)
	}
	if err := f.nsp.Emit("marker", ev); err != nil {
		f.t.Fatalf("marker: %v", err)
	}
	for _, n := range f.names {
		c := f.clients[n]
		if slices.Contains(want, n) {
			if got := c.Next(ev); len(got.Args) != 1 || string(got.Args[0]) != `"`+ev+`"` {
				f.t.Errorf("%s: %s", n, got)
			}
		}
		if m := c.Next("marker"); string(m.Args[0]) != `"`+ev+`"` {
			f.t.Fatalf("%s: marker %s out of order", n, m)
		}
		c.NoEvent(ev, 0) // not received, or not twice
	}
}

func TestRoomsBroadcast(t *testing.T) {
	f := newRoomFixture(t, sioclient.Options{Transports: wsOnly})
	nsp, s := f.nsp, f.sockets
	f.join("a", "r1")
	f.join("b", "r1", "r2")
	f.join("c", "r2")

	if nsp.RoomSize("r1") != 2 || nsp.RoomSize("r2") != 2 || nsp.RoomSize("nobody") != 0 {
		t.Errorf("room sizes r1 %d r2 %d", nsp.RoomSize("r1"), nsp.RoomSize("r2"))
	}
	if got := s["b"].Rooms(); !slices.Equal(got, []string{s["b"].ID(), "r1", "r2"}) {
		t.Errorf("b rooms = %v", got)
	}

	emit := func(op socketio.BroadcastOperator, ev string) func() error {
		return func() error { return op.Emit(ev, ev) }
	}
	f.expect("to-r1", emit(nsp.To("r1"), "to-r1"), "a", "b")
	f.expect("to-r1-r2", emit(nsp.To("r1", "r2"), "to-r1-r2"), "a", "b", "c") // b once
	f.expect("to-r1-in-r2", emit(nsp.In("r1").To("r2"), "to-r1-in-r2"), "a", "b", "c")
	f.expect("except-r2", emit(nsp.Except("r2"), "except-r2"), "a", "d")
	f.expect("r1-except-r2", emit(nsp.To("r1").Except("r2"), "r1-except-r2"), "a")
	f.expect("to-nobody", emit(nsp.To("nobody"), "to-nobody"))
	f.expect("all", emit(nsp.To(), "all"), "a", "b", "c", "d")

	// The socket id is a room holding only that socket.
	f.expect("to-id", emit(nsp.To(s["c"].ID()), "to-id"), "c")
	f.expect("to-id-and-r1", emit(nsp.To(s["c"].ID(), "r1"), "to-id-and-r1"), "a", "b", "c")
	f.expect("except-id", emit(nsp.Except(s["a"].ID()), "except-id"), "b", "c", "d")
	if !s["c"].In(s["c"].ID()) || nsp.RoomSize(s["c"].ID()) != 1 {
		t.Errorf("id room: In %v, size %d", s["c"].In(s["c"].ID()), nsp.RoomSize(s["c"].ID()))
	}

	// Socket-level operators exclude the sender.
	f.expect("b-broadcast", emit(s["b"].Broadcast(), "b-broadcast"), "a", "c", "d")
	f.expect("b-to-r2", emit(s["b"].To("r2"), "b-to-r2"), "c")
	f.expect("b-to-r1-r2", emit(s["b"].To("r1", "r2"), "b-to-r1-r2"), "a", "c")
	f.expect("a-except-r2", emit(s["a"].Except("r2"), "a-except-r2"), "d")

	// Local: the memory adapter is local anyway; the selection still applies.
	f.expect("local-r1", emit(nsp.Local().To("r1"), "local-r1"), "a", "b")
	f.expect("local-all", emit(nsp.Local(), "local-all"), "a", "b", "c", "d")
	local, err := nsp.Local().In("r2").FetchSockets(context.Background())
	if err != nil || len(local) != 2 {
		t.Errorf("Local().In(r2).FetchSockets = %d sockets, %v", len(local), err)
	}

	// Operators are immutable values.
	base := nsp.To("r1")
	_ = base.To("r2")
	f.expect("base-unchanged", emit(base, "base-unchanged"), "a", "b")

	rooms, err := nsp.AllRooms(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"r1", "r2", s["a"].ID(), s["d"].ID()} {
		if !slices.Contains(rooms, want) {
			t.Errorf("AllRooms() = %v, lacks %s", rooms, want)
		}
	}
}

func TestRoomsJoinLeave(t *testing.T) {
	f := newRoomFixture(t, sioclient.Options{Transports: pollingOnly})
	nsp, s := f.nsp, f.sockets
	f.join("a", "r1", "r1") // twice: once in the room
	f.join("b", "r1")
	if n := nsp.RoomSize("r1"); n != 2 {
		t.Fatalf("r1 size %d", n)
	}
	if got := s["a"].Rooms(); !slices.Equal(got, []string{s["a"].ID(), "r1"}) {
		t.Errorf("a rooms = %v", got)
	}
	emit := func(ev string) func() error { return func() error { return nsp.To("r1").Emit(ev, ev) } }
	f.expect("r1-before", emit("r1-before"), "a", "b")

	f.leave("a", "r1")
	f.leave("a", "r1", "never-joined") // leaving again is harmless
	if s["a"].In("r1") || nsp.RoomSize("r1") != 1 {
		t.Errorf("after leave: a in r1 %v, size %d", s["a"].In("r1"), nsp.RoomSize("r1"))
	}
	f.expect("r1-after-leave", emit("r1-after-leave"), "b")

	// Leaving the own id room is not possible; joining it is a no-op.
	s["a"].Join(s["a"].ID())
	s["a"].Leave(s["a"].ID())
	f.expect("to-a", func() error { return nsp.To(s["a"].ID()).Emit("to-a", "to-a") }, "a")
	if got := s["a"].Rooms(); !slices.Equal(got, []string{s["a"].ID()}) {
		t.Errorf("a rooms = %v", got)
	}

	// The last member leaving deletes the room; a disconnect leaves every room.
	f.leave("b", "r1")
	rooms, _ := nsp.AllRooms(context.Background())
	if slices.Contains(rooms, "r1") {
		t.Errorf("empty room r1 still listed: %v", rooms)
	}
	f.join("c", "r3")
	f.join("d", "r3")
	f.clients["c"].Disconnect()
	recv(t, f.discs, "disconnect of c")
	if n := nsp.RoomSize("r3"); n != 1 {
		t.Errorf("r3 size after c disconnected = %d", n)
	}
	if s["c"].In("r3") || len(s["c"].Rooms()) != 1 {
		t.Errorf("disconnected socket rooms %v", s["c"].Rooms())
	}
	// Joining after the disconnect has no effect.
	s["c"].Join("r3")
	if n := nsp.RoomSize("r3"); n != 1 {
		t.Errorf("r3 size after a disconnected socket joined = %d", n)
	}
	f.names = []string{"a", "b", "d"}
	f.expect("r3", func() error { return nsp.To("r3").Emit("r3", "r3") }, "d")
}
