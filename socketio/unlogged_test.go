package socketio_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/operate/realtime/internal/faultproxy"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
)

// TestEmitUnloggedIsNeverReplayed: an unlogged emit reaches its connection
// without an offset, and one sent to a connection that went dead is not
// replayed when the client recovers its session on a new connection, while
// a logged emit sent meanwhile is.
func TestEmitUnloggedIsNeverReplayed(t *testing.T) {
	f := newRecoveryFixture(t, socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute})
	proxy, err := faultproxy.New(f.ts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	d := startDriver(t)
	c := d.Connect("http://"+proxy.Addr()+"/", fastReconnect(sioclient.Options{Transports: wsOnly, Auth: map[string]any{"user": "u1"}}))
	first := c.WaitConnect()
	s := recv(t, f.conns, "connection")
	recv(t, f.mwCalls, "middleware")
	nextEvent(t, c) // welcome, which gives the client an offset

	// Numbers, not strings: socket.io-client takes a last string argument
	// for an offset.
	mustEmit(t, s.EmitUnlogged("notice", 1))
	if ev := c.Next("notice"); argsOf(ev) != "[1]" {
		t.Errorf("unlogged emit arrived as %s, want [1] without an offset", ev)
	}

	// The connection goes silent: what follows reaches the dead one.
	wait.For(t, "an open connection", func() bool { return proxy.Conns() > 0 })
	proxy.Stall(100, time.Minute)
	mustEmit(t, s.EmitUnlogged("notice", 2))
	mustEmit(t, s.Emit("direct", 3))
	c.CloseEngine()
	c.WaitDisconnect()
	again := c.WaitConnect()
	if !again.Recovered || again.SID != first.SID {
		t.Fatalf("reconnection %+v, want recovered with sid %s", again, first.SID)
	}
	var got []string
	for len(got) < 2 {
		name, args := nextEvent(t, c)
		got = append(got, name+args)
	}
	if want := []string{"direct[3]", "welcome[true]"}; !slices.Equal(got, want) {
		t.Errorf("events after the recovery %v, want %v", got, want)
	}
	c.NoEvent("notice", 0)

	if err := s.EmitUnlogged("notice", 4); !errors.Is(err, socketio.ErrNotConnected) {
		t.Errorf("unlogged emit to the taken-over socket: %v, want ErrNotConnected", err)
	}
}
