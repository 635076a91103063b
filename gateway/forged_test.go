package gateway_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// TestTenancyOfForgedDirectEmits: anyone who can write to Redis can add a
// broadcast to the stream with any flags, among them "direct", the mark of
// an emit to one socket (Socket.Emit), which subscriptions do not filter.
// The tenancy check does not care: an event of another organization,
// direct or not, aimed at the socket's own id or at its organization's
// room, is refused and counted; the socket gets only what is its own.
func TestTenancyOfForgedDirectEmits(t *testing.T) {
	r := redistest.Start(t)
	cluster, err := redisadapter.New(redisadapter.Config{Addr: r.Addr, Mode: redisadapter.Streams, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Close() }) // after the gateway's shutdown
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cluster.WaitSubscribed(ctx); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{adapter: cluster.Adapter, recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}})
	victim := e.join("org-b", "u1", sioclient.Options{Name: "u1@b"})
	sid := victim.State().SID

	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{r.Addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	forge := func(rooms []string, org string, seq int) {
		t.Helper()
		data, err := json.Marshal(map[string]any{
			"packet": map[string]any{"type": 2, "data": []any{string(events.InvoicePaid), json.RawMessage(payload(t, events.InvoicePaid, org, "u1", seq))}},
			"opts":   map[string]any{"rooms": rooms, "except": []string{}, "flags": map[string]any{"direct": true}},
		})
		if err != nil {
			t.Fatal(err)
		}
		cmd := rc.B().Xadd().Key("socket.io").Id("*").FieldValue().
			FieldValue("uid", "forger").FieldValue("nsp", gateway.DefaultNamespace).FieldValue("type", "3").
			FieldValue("data", string(data)).Build()
		if err := rc.Do(context.Background(), cmd).Error(); err != nil {
			t.Fatalf("XADD: %v", err)
		}
	}

	forge([]string{sid}, "org-a", 1)
	forge([]string{events.OrgRoom("org-b")}, "org-a", 2)
	wait.For(t, "both forged events refused by the tenancy check", func() bool { return e.gw.Stats().CrossTenantRefused == 2 })
	// The victim's own organization's events, forged or published, pass:
	// the first thing it receives is its own.
	forge([]string{sid}, "org-b", 3)
	emitTo(t, e, events.InvoicePaid, "org-b", "", 4)
	for _, want := range []int{3, 4} {
		ev := victim.Next(string(events.InvoicePaid))
		if got := seqOf(t, ev); got != want {
			t.Fatalf("the victim received %s (seq %d), want seq %d", ev, got, want)
		}
	}
	if n := e.gw.Stats().CrossTenantRefused; n != 2 {
		t.Errorf("%d deliveries refused, want 2", n)
	}
}
