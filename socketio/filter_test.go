package socketio_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
)

// secretFilter delivers "secret*" events to admins only, except when
// emitted directly to a socket.
func secretFilter(p *socketio.Packet) func(*socketio.Socket) bool {
	if p.Direct() || !strings.HasPrefix(p.Event(), "secret") {
		return nil
	}
	return func(s *socketio.Socket) bool { return s.Data() == "admin" }
}

// TestDeliveryFilter: the filter applies to broadcasts (with or without
// ack) and to recovery replays, and sees direct emits marked (this one lets
// them through); with or without connection state recovery, which routes
// direct emits through the adapter.
func TestDeliveryFilter(t *testing.T) {
	for _, tc := range []struct {
		name     string
		recovery bool
	}{{"without recovery", false}, {"with recovery", true}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := &socketio.Options{}
			if tc.recovery {
				opts.Recovery = &socketio.RecoveryOptions{}
			}
			ts := newTestServer(t, opts)
			nsp := ts.Of("/")
			nsp.Use(func(_ context.Context, s *socketio.Socket) error {
				role, _ := s.Handshake().AuthString("role")
				s.SetData(role)
				return nil
			})
			conns, discs := connections(nsp), disconnections(nsp)
			nsp.SetDeliveryFilter(secretFilter)

			d := startDriver(t)
			admin := d.Connect(ts.URL+"/", sioclient.Options{Name: "admin", Transports: wsOnly, Auth: map[string]any{"role": "admin"}, AutoAck: []any{"admin"}})
			admin.WaitConnect()
			as := recv(t, conns, "admin connection")
			user := d.Connect(ts.URL+"/", sioclient.Options{Name: "user", Transports: wsOnly, Auth: map[string]any{"role": "user"},
				AutoAck: []any{"user"}, ReconnectionDelay: 50, ReconnectionDelayMax: 100})
			userInfo := user.WaitConnect()
			us := recv(t, conns, "user connection")

			ids := map[*sioclient.Client]string{admin: as.ID(), user: us.ID()}
			// names returns the events a client got, up to a marker sent
			// to it alone.
			names := func(c *sioclient.Client) []string {
				t.Helper()
				mustEmit(t, nsp.To(ids[c]).Emit("marker"))
				var out []string
				for {
					ev := c.NextAny()
					if ev.Name == "marker" {
						return out
					}
					out = append(out, ev.Name)
				}
			}
			check := func(c *sioclient.Client, want ...string) {
				t.Helper()
				if got := names(c); !slices.Equal(got, want) {
					t.Errorf("%s got %v, want %v", c.Name(), got, want)
				}
			}

			mustEmit(t, nsp.Emit("secret-1"))
			mustEmit(t, nsp.Emit("public-1"))
			mustEmit(t, nsp.To(us.ID()).Emit("secret-to-id")) // a broadcast, even to one socket
			check(admin, "secret-1", "public-1")
			check(user, "public-1")

			// Direct emits: the filter sees them marked, and lets them through.
			mustEmit(t, us.Emit("secret-direct"))
			check(user, "secret-direct")
			done := make(chan ackResult, 1)
			go func() {
				a, err := us.EmitWithAck(context.Background(), "secret-ask")
				done <- ackResult{a, err}
			}()
			if r := recv(t, done, "direct ack"); r.err != nil || rawArgs(r.args) != `["user"]` {
				t.Errorf("direct EmitWithAck: %s, %v", rawArgs(r.args), r.err)
			}
			check(user, "secret-ask")

			// Broadcasts with ack: filtered, and filtered-out sockets are
			// not waited for.
			got, err := nsp.Timeout(waitTimeout).EmitWithAck(context.Background(), "secret-poll")
			if err != nil || len(got) != 1 || rawArgs(got[0]) != `["admin"]` {
				t.Errorf("filtered broadcast with ack: %d answers, %v", len(got), err)
			}
			check(admin, "secret-poll")
			check(user)

			if tc.recovery {
				// Replays are filtered too.
				hold := ts.holdRequests(isHandshake)
				user.CloseEngine()
				user.WaitDisconnect()
				recv(t, discs, "user disconnect")
				mustEmit(t, nsp.Emit("secret-2"))
				mustEmit(t, nsp.Emit("public-2"))
				ts.stopHolding(hold)
				if info := user.WaitConnect(); !info.Recovered || info.SID != userInfo.SID {
					t.Fatalf("user reconnection %+v", info)
				}
				recv(t, conns, "user recovered")
				check(user, "public-2")
				check(admin, "secret-2", "public-2")
			}

			// Without the filter everything goes through.
			nsp.SetDeliveryFilter(nil)
			mustEmit(t, nsp.Emit("secret-3"))
			check(user, "secret-3")
			check(admin, "secret-3")
		})
	}
}

// TestDeliveryFilterSeesPacket: the filter gets the packet, event name and
// data included, once per broadcast, and its test each recipient.
func TestDeliveryFilterSeesPacket(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	conns := connections(nsp)
	type call struct{ id, event, data string }
	packets := make(chan call, 16)
	tests := make(chan string, 16)
	nsp.SetDeliveryFilter(func(p *socketio.Packet) func(*socketio.Socket) bool {
		packets <- call{"", p.Event(), string(p.Data)}
		return func(s *socketio.Socket) bool {
			tests <- s.ID()
			return true
		}
	})
	d := startDriver(t)
	c1 := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly})
	c1.WaitConnect()
	s1 := recv(t, conns, "connection")
	c2 := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly})
	c2.WaitConnect()
	s2 := recv(t, conns, "connection")
	mustEmit(t, nsp.Emit("ev", 1, "x"))
	if got := recv(t, packets, "filter call"); got != (call{"", "ev", `["ev",1,"x"]`}) {
		t.Errorf("filter saw %+v", got)
	}
	noValue(t, packets, "a second filter call for one broadcast")
	tested := []string{recv(t, tests, "recipient test"), recv(t, tests, "recipient test")}
	slices.Sort(tested)
	if want := []string{s1.ID(), s2.ID()}; !slices.Equal(tested, slices.Sorted(slices.Values(want))) {
		t.Errorf("recipients tested %v, want %v", tested, want)
	}
	c1.Next("ev")
	c2.Next("ev")
	mustEmit(t, s1.Emit("direct"))
	c1.Next("direct")
	noValue(t, packets, "filter call for a direct emit")
}
