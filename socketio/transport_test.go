package socketio_test

import (
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
)

// roundTrip checks both directions on a connected client: a client event
// with an ack, then a server push.
func roundTrip(t *testing.T, c *sioclient.Client, server *socketio.Socket, tag string) {
	t.Helper()
	res, err := c.EmitWithAck(waitTimeout, "echo", tag)
	if err != nil {
		t.Fatalf("%s: echo ack: %v", tag, err)
	}
	if got := joinRaw(res); got != `["`+tag+`"]` {
		t.Fatalf("%s: echo ack = %s", tag, got)
	}
	if ev := c.Next("echo"); argsOf(ev) != `["`+tag+`"]` {
		t.Fatalf("%s: echo event = %s", tag, ev)
	}
	if err := server.Emit("push", tag); err != nil {
		t.Fatalf("%s: server Emit: %v", tag, err)
	}
	if ev := c.Next("push"); argsOf(ev) != `["`+tag+`"]` {
		t.Fatalf("%s: push = %s", tag, ev)
	}
}

func TestSingleTransport(t *testing.T) {
	for _, tc := range []struct {
		name       string
		transports []string
	}{
		{"polling", pollingOnly},
		{"websocket", wsOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			nsp := ts.Of("/")
			conns := connections(nsp)
			seen := make(chan string, 16) // transport of each echo, server side
			nsp.OnEvent("echo", func(s *socketio.Socket, e *socketio.Event) {
				seen <- s.Transport()
				_ = s.Emit("echo", e.Args)
				_ = e.Ack(e.Args)
			})
			d := startDriver(t)
			c := d.Connect(ts.URL+"/", sioclient.Options{Transports: tc.transports})
			info := c.WaitConnect()
			if info.Transport != tc.name {
				t.Errorf("client transport at connect = %q, want %q", info.Transport, tc.name)
			}
			s := recv(t, conns, "connection")
			if s.ID() != info.SID {
				t.Errorf("server socket id %q, client sid %q", s.ID(), info.SID)
			}
			if s.Handshake().Query().Get("transport") != tc.name {
				t.Errorf("handshake query %v", s.Handshake().Query())
			}
			for i, tag := range []string{"one", "two", "three"} {
				roundTrip(t, c, s, tag)
				if got := recv(t, seen, "echo"); got != tc.name {
					t.Errorf("round %d: server-side transport %q, want %q", i, got, tc.name)
				}
			}
			if st := c.State(); !st.Connected || st.Transport != tc.name {
				t.Errorf("client state = %+v, want connected over %s", st, tc.name)
			}
			if ts.Engine().Stats().Upgrades.Load() != 0 {
				t.Error("a session was upgraded")
			}
		})
	}
}

// TestUpgrade: the default client starts with polling and upgrades to
// WebSocket. The upgrade request is held until events have flowed both ways
// over polling, so "before the upgrade" is certain.
func TestUpgrade(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	conns := connections(nsp)
	seen := make(chan string, 16)
	nsp.OnEvent("echo", func(s *socketio.Socket, e *socketio.Event) {
		seen <- s.Transport()
		_ = s.Emit("echo", e.Args)
		_ = e.Ack(e.Args)
	})
	upgrades := ts.holdRequests(isUpgrade)

	d := startDriver(t)
	c := d.Connect(ts.URL+"/", sioclient.Options{})
	info := c.WaitConnect()
	if info.Transport != "polling" {
		t.Errorf("transport at connect = %q, want polling", info.Transport)
	}
	s := recv(t, conns, "connection")
	recv(t, upgrades.held, "the client's upgrade request")

	for _, tag := range []string{"before-1", "before-2"} {
		roundTrip(t, c, s, tag)
		if got := recv(t, seen, "echo"); got != "polling" {
			t.Errorf("%s: server-side transport %q, want polling", tag, got)
		}
	}
	if s.Transport() != "polling" {
		t.Errorf("transport before the upgrade = %q", s.Transport())
	}

	ts.stopHolding(upgrades)
	if got := c.WaitUpgrade(); got != "websocket" {
		t.Fatalf("upgraded to %q", got)
	}
	for _, tag := range []string{"after-1", "after-2"} {
		roundTrip(t, c, s, tag)
		if got := recv(t, seen, "echo"); got != "websocket" {
			t.Errorf("%s: server-side transport %q, want websocket", tag, got)
		}
	}
	if st := c.State(); !st.Connected || st.Transport != "websocket" || st.SID != info.SID {
		t.Errorf("client state after upgrade = %+v", st)
	}
	if n := ts.Engine().Stats().Upgrades.Load(); n != 1 {
		t.Errorf("engine counted %d upgrades", n)
	}
	c.NoEvent("echo", 0)
	c.NoEvent("push", 0)
}

// TestUpgradeUnderTraffic: server pushes during the upgrade are neither lost
// nor reordered when the transport switches.
func TestUpgradeUnderTraffic(t *testing.T) {
	ts := newTestServer(t, nil)
	conns := connections(ts.Of("/"))
	d := startDriver(t)
	c := d.Connect(ts.URL+"/", sioclient.Options{})
	c.WaitConnect()
	s := recv(t, conns, "connection")

	const n = 300
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := s.Emit("seq", i); err != nil {
				done <- err
				return
			}
			if i%20 == 0 {
				time.Sleep(time.Millisecond) // spread the pushes over the upgrade
			}
		}
		done <- nil
	}()
	if got := c.WaitUpgrade(); got != "websocket" {
		t.Fatalf("upgraded to %q", got)
	}
	for i := range n {
		ev := c.Next("seq")
		if want := itoa(i); argsOf(ev) != "["+want+"]" {
			t.Fatalf("event %d = %s", i, ev)
		}
	}
	if err := recv(t, done, "the pushes"); err != nil {
		t.Fatal(err)
	}
}
