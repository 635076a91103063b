package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/faultproxy"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
)

// TestRecoveryDoesNotReplayTheOldConnectionsNotices: a notice about a
// connection's token (auth:expiring here; auth:expired and session:revoked
// go the same way) is sent to that connection only. A client whose
// connection went dead while it was warned comes back with a fresh token
// and recovers its session: it receives the business event published
// meanwhile, but not the warning meant for the token it no longer uses.
// A warning that does arrive carries no offset: it is not in the log.
func TestRecoveryDoesNotReplayTheOldConnectionsNotices(t *testing.T) {
	for _, b := range recoveryBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			adapter, r := b.adapter(t)
			e := newEnv(t, envOptions{authConfig: noLeeway, recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}, adapter: adapter})
			e.redis = r
			proxy, err := faultproxy.New(strings.TrimPrefix(e.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = proxy.Close() })

			// Tokens that expire in 9 to 10 s: warned halfway, which leaves
			// the test a few seconds between the warning and the expiry.
			const ttl = 10 * time.Second
			a := e.d.Connect("http://"+proxy.Addr()+gateway.DefaultNamespace, sioclient.Options{
				Name: "a", Transports: []string{"websocket"}, Reconnection: ptr(false),
				Auth: map[string]any{"token": e.token("org-1", "user-1", ttl)},
			})
			first := a.WaitConnect()
			offsetOf(t, a.Next(gateway.EventConnected)) // where a recovers from
			live := e.join("org-1", "user-2", sioclient.Options{Name: "live", Auth: map[string]any{"token": e.token("org-1", "user-2", ttl)}})

			// a's connection goes silent both ways: the server goes on
			// sending to it, and the client hears nothing.
			if n := proxy.Stall(1, time.Minute); n != 1 {
				t.Fatalf("%d connections stalled, want 1", n)
			}
			warned := `msg="gateway: token expiring, client warned" sid=` + first.SID
			wait.For(t, "a's warning to be sent", func() bool { return strings.Contains(e.logs.String(), warned) })
			emitTo(t, e, events.InvoicePaid, "org-1", "", 1)

			// The client notices the dead connection first and comes back
			// with a fresh token, over a new connection: it takes its live
			// socket over and recovers the session.
			a.CloseEngine()
			a.WaitDisconnect()
			a.SetAuth(map[string]any{"token": e.token("org-1", "user-1", time.Hour)})
			a.Connect()
			if info := a.WaitConnect(); !info.Recovered || info.SID != first.SID {
				t.Fatalf("reconnection %+v, want the recovered socket %s", info, first.SID)
			}
			a.Next(gateway.EventConnected)
			expectSeqs(t, a, []events.Name{events.InvoicePaid}, []int{1})
			a.NoEvent(gateway.EventAuthExpiring, 0)
			a.NoEvent(gateway.EventAuthExpired, 0)

			warning := live.Next(gateway.EventAuthExpiring)
			if len(warning.Args) != 1 {
				t.Errorf("auth:expiring %s: want its payload alone, no offset", warning)
			}
			expectSeqs(t, live, []events.Name{events.InvoicePaid}, []int{1})
		})
	}
}
