package socketio_test

import (
	"context"
	"slices"
	"testing"

	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
)

// TestFetchSockets: FetchSockets describes the selected sockets, and the
// RemoteSocket methods act on them.
func TestFetchSockets(t *testing.T) {
	f := newRoomFixture(t, sioclient.Options{Transports: wsOnly})
	ctx := context.Background()
	nsp, s := f.nsp, f.sockets
	s["a"].Join("r1")
	s["b"].Join("r1", "r2")
	s["c"].Join("r2")
	s["a"].SetData(map[string]any{"name": "a"})

	ids := func(list []*socketio.RemoteSocket) []string {
		var out []string
		for _, r := range list {
			out = append(out, r.ID)
		}
		slices.Sort(out)
		return out
	}
	idsOf := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, s[n].ID())
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		what string
		op   socketio.BroadcastOperator
		want []string
	}{
		{"all", nsp.To(), []string{"a", "b", "c", "d"}},
		{"r1", nsp.In("r1"), []string{"a", "b"}},
		{"r1+r2", nsp.In("r1", "r2"), []string{"a", "b", "c"}},
		{"except r2", nsp.Except("r2"), []string{"a", "d"}},
		{"id room", nsp.In(s["d"].ID()), []string{"d"}},
		{"local r2", nsp.Local().In("r2"), []string{"b", "c"}},
		{"nobody", nsp.In("nobody"), nil},
	} {
		got, err := tc.op.FetchSockets(ctx)
		if err != nil || !slices.Equal(ids(got), idsOf(tc.want...)) {
			t.Errorf("%s: FetchSockets = %v, %v; want %v", tc.what, ids(got), err, tc.want)
		}
	}
	all, err := nsp.FetchSockets(ctx)
	if err != nil || len(all) != 4 {
		t.Fatalf("FetchSockets = %d, %v", len(all), err)
	}
	var ra *socketio.RemoteSocket
	for _, r := range all {
		if r.ID == s["a"].ID() {
			ra = r
		}
	}
	if ra == nil {
		t.Fatal("a is not listed")
	}
	if !slices.Equal(ra.Rooms, []string{s["a"].ID(), "r1"}) || ra.Data.(map[string]any)["name"] != "a" ||
		ra.Handshake == nil || ra.Handshake.Address != "127.0.0.1" {
		t.Errorf("a described as %+v", ra)
	}
	if local, ok := ra.Local(); !ok || local != s["a"] {
		t.Error("Local() does not return the local socket")
	}

	// RemoteSocket methods.
	if err := ra.Emit("remote-emit", 1); err != nil {
		t.Fatal(err)
	}
	if ev := f.clients["a"].Next("remote-emit"); argsOf(ev) != "[1]" {
		t.Errorf("remote emit: %s", ev)
	}
	if err := ra.Join(ctx, "joined-remotely", "r3"); err != nil {
		t.Fatal(err)
	}
	if !s["a"].In("joined-remotely") || !s["a"].In("r3") {
		t.Errorf("after RemoteSocket.Join: %v", s["a"].Rooms())
	}
	f.expect("to-remote-room", func() error { return nsp.To("joined-remotely").Emit("to-remote-room", "to-remote-room") }, "a")
	if err := ra.Leave(ctx, "r1", "r3"); err != nil {
		t.Fatal(err)
	}
	if s["a"].In("r1") || s["a"].In("r3") || !s["a"].In("joined-remotely") {
		t.Errorf("after RemoteSocket.Leave: %v", s["a"].Rooms())
	}
	if err := ra.Disconnect(ctx, false); err != nil {
		t.Fatal(err)
	}
	if r := f.clients["a"].WaitDisconnect(); r != "io server disconnect" {
		t.Errorf("remote disconnect: client reason %q", r)
	}
	if dc := recv(t, f.discs, "disconnect"); dc.id != s["a"].ID() || dc.reason != socketio.ReasonServerNamespaceDisconn {
		t.Errorf("remote disconnect: %+v", dc)
	}
	if got, _ := nsp.FetchSockets(ctx); len(got) != 3 {
		t.Errorf("%d sockets after the disconnect", len(got))
	}
}

// TestSocketsJoinLeaveDisconnect: the namespace-wide room and disconnect
// operations apply to the selection only.
func TestSocketsJoinLeaveDisconnect(t *testing.T) {
	f := newRoomFixture(t, sioclient.Options{Transports: pollingOnly})
	ctx := context.Background()
	nsp, s := f.nsp, f.sockets
	s["a"].Join("r1")
	s["b"].Join("r1", "r2")
	s["c"].Join("r2")

	if err := nsp.In("r1").SocketsJoin(ctx, "x", "y"); err != nil {
		t.Fatal(err)
	}
	if nsp.RoomSize("x") != 2 || !s["a"].In("y") || !s["b"].In("y") || s["c"].In("x") {
		t.Errorf("after SocketsJoin: x %d, rooms a %v c %v", nsp.RoomSize("x"), s["a"].Rooms(), s["c"].Rooms())
	}
	f.expect("to-x", func() error { return nsp.To("x").Emit("to-x", "to-x") }, "a", "b")
	if err := nsp.Except("r2").SocketsJoin(ctx, "z"); err != nil {
		t.Fatal(err)
	}
	f.expect("to-z", func() error { return nsp.To("z").Emit("to-z", "to-z") }, "a", "d")

	if err := nsp.In("r2").SocketsLeave(ctx, "x", "r1"); err != nil {
		t.Fatal(err)
	}
	if s["b"].In("x") || s["b"].In("r1") || !s["a"].In("x") || !s["b"].In("r2") {
		t.Errorf("after SocketsLeave: a %v b %v", s["a"].Rooms(), s["b"].Rooms())
	}
	f.expect("to-x-again", func() error { return nsp.To("x").Emit("to-x-again", "to-x-again") }, "a")
	if err := nsp.SocketsJoin(ctx, "everyone"); err != nil {
		t.Fatal(err)
	}
	if nsp.RoomSize("everyone") != 4 {
		t.Errorf("everyone: %d", nsp.RoomSize("everyone"))
	}

	// DisconnectSockets(false): the selected sockets leave the namespace.
	if err := nsp.In("r2").DisconnectSockets(ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"b", "c"} {
		if r := f.clients[n].WaitDisconnect(); r != "io server disconnect" {
			t.Errorf("%s: reason %q", n, r)
		}
	}
	got := map[string]bool{}
	for range 2 {
		dc := recv(t, f.discs, "disconnect")
		got[dc.id] = true
		if dc.reason != socketio.ReasonServerNamespaceDisconn {
			t.Errorf("reason %q", dc.reason)
		}
	}
	if !got[s["b"].ID()] || !got[s["c"].ID()] {
		t.Errorf("disconnected %v", got)
	}
	f.names = []string{"a", "d"}
	f.expect("still-here", func() error { return nsp.Emit("still-here", "still-here") }, "a", "d")

	// DisconnectSockets(true) closes the whole connections.
	if err := nsp.DisconnectSockets(ctx, true); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "d"} {
		if r := f.clients[n].WaitDisconnect(); r != "io server disconnect" {
			t.Errorf("%s: reason %q", n, r)
		}
	}
	wait.For(t, "every connection to close", func() bool { return f.ts.Engine().SessionCount() == 0 })
	if nsp.SocketCount() != 0 {
		t.Errorf("%d sockets left", nsp.SocketCount())
	}
}
