package gateway_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// recoveryBackends are the adapters that keep sessions: in memory (one
// node), and Redis streams, where the session leaves the process as JSON
// and comes back from Redis.
var recoveryBackends = []struct {
	name    string
	adapter func(t *testing.T) (socketio.AdapterFactory, *redistest.Server)
}{
	{"memory", func(*testing.T) (socketio.AdapterFactory, *redistest.Server) { return nil, nil }},
	{"redis-streams", func(t *testing.T) (socketio.AdapterFactory, *redistest.Server) {
		r := redistest.Start(t)
		return streamsCluster(t, redisadapter.Config{Addr: r.Addr}).Adapter, r
	}},
}

// streamsCluster starts a Redis streams cluster client from cfg (Mode and
// a silent Logger set), closed after the gateway's shutdown, and waits
// until it is subscribed.
func streamsCluster(t *testing.T, cfg redisadapter.Config) *redisadapter.Cluster {
	t.Helper()
	cfg.Mode = redisadapter.Streams
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := redisadapter.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() }) // after the gateway's shutdown
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.WaitSubscribed(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// forEachBackend runs a recovery test over each backend.
func forEachBackend(t *testing.T, test func(t *testing.T, e *env)) {
	for _, b := range recoveryBackends {
		t.Run(b.name, func(t *testing.T) {
			adapter, r := b.adapter(t)
			e := newEnv(t, envOptions{recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}, adapter: adapter})
			e.redis = r
			test(t, e)
		})
	}
}

// drop closes c's connection the way a network failure does (the server
// sees "transport close", a recoverable reason) and waits until the
// gateway's disconnect handler ran, which is after the session was kept
// for recovery; c does not reconnect by itself.
func drop(t *testing.T, e *env, c *sioclient.Client) {
	t.Helper()
	line := `msg="gateway: client disconnected" sid=` + c.State().SID
	c.CloseEngine()
	c.WaitDisconnect()
	wait.For(t, "the server to see the disconnection", func() bool { return strings.Contains(e.logs.String(), line) })
}

// TestRecoveryReplaysMissedEvents: with recovery on, a client that comes
// back gets the events of its organization and user that it missed, once
// each, in order, filtered by the subscriptions it had, and nothing of
// another organization.
func TestRecoveryReplaysMissedEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		a := e.join("org-1", "user-1", sioclient.Options{})
		other := e.join("org-2", "user-2", sioclient.Options{})
		var sub subscribeResult
		ack(t, a, gateway.EventSubscribe, map[string]any{"events": []string{"invoice:*", "notification:*"}}, &sub)
		if !sub.Success {
			t.Fatalf("subscribe: %+v", sub)
		}
		first := a.State().SID
		emitTo(t, e, events.InvoiceCreated, "org-1", "", 1)
		if got := seqOf(t, a.Next(string(events.InvoiceCreated))); got != 1 {
			t.Fatalf("live event seq %d", got)
		}

		drop(t, e, a)
		emitTo(t, e, events.InvoicePaid, "org-1", "", 2)
		emitTo(t, e, events.ExpenseCreated, "org-1", "", 3) // not subscribed
		emitTo(t, e, events.NotificationNew, "org-1", "user-1", 4)
		emitTo(t, e, events.NotificationNew, "org-1", "user-9", 5) // another user
		emitTo(t, e, events.InvoiceCreated, "org-2", "", 6)        // another organization
		emitTo(t, e, events.InvoiceSent, "org-1", "", 7)

		a.Connect()
		info := a.WaitConnect()
		if !info.Recovered || info.SID != first {
			t.Fatalf("reconnection %+v, want the recovered socket %s", info, first)
		}
		if got := connectedOf(t, a.Next(gateway.EventConnected)); got.UserID != "user-1" || got.OrganizationID != "org-1" {
			t.Errorf("connected %+v", got)
		}
		emitTo(t, e, events.InvoiceOverdue, "org-1", "", 8) // live again
		expectSeqs(t, a, []events.Name{events.InvoicePaid, events.NotificationNew, events.InvoiceSent, events.InvoiceOverdue}, []int{2, 4, 7, 8})
		expectSeqs(t, other, []events.Name{events.InvoiceCreated}, []int{6})
	})
}

// expectSeqs checks that the catalog events c received since the last
// check are exactly names, with the seq fields seqs, in order.
func expectSeqs(t *testing.T, c *sioclient.Client, names []events.Name, seqs []int) {
	t.Helper()
	settle(t, c)
	for i, w := range names {
		ev := c.NextAny()
		if ev.Name != string(w) || seqOf(t, ev) != seqs[i] {
			t.Fatalf("%s: event %d is %s, want %s with seq %d", c.Name(), i, ev, w, seqs[i])
		}
	}
	noMoreEvents(t, c)
}

// TestRecoveryAnotherIdentityStartsAfresh: a client that kept its session
// id but now presents another user's token (a logout and login in the same
// tab) is connected as a new socket, and gets nothing the previous user
// missed.
func TestRecoveryAnotherIdentityStartsAfresh(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		a := e.join("org-1", "user-1", sioclient.Options{})
		first := a.State().SID
		emitTo(t, e, events.InvoiceCreated, "org-1", "", 1)
		offset := offsetOf(t, a.Next(string(events.InvoiceCreated))) // the client now holds an offset

		drop(t, e, a)
		emitTo(t, e, events.InvoicePaid, "org-1", "", 2)
		emitTo(t, e, events.NotificationNew, "org-1", "user-1", 3)
		a.SetAuth(map[string]any{"token": e.token("org-2", "user-2", time.Hour)})
		a.Connect()
		info := a.WaitConnect()
		if info.Recovered || info.SID == first {
			t.Fatalf("reconnection %+v, want a new socket", info)
		}
		if got := connectedOf(t, a.Next(gateway.EventConnected)); got.UserID != "user-2" || got.OrganizationID != "org-2" {
			t.Errorf("connected %+v", got)
		}
		// Told that what it missed is not coming: it reloads.
		if gap := historyGapOf(t, a.Next(gateway.EventHistoryGap)); gap.Reason != "declined" || gap.From != offset {
			t.Errorf("history:gap %+v, want reason declined from %s", gap, offset)
		}
		emitTo(t, e, events.InvoiceSent, "org-2", "", 4)
		expectSeqs(t, a, []events.Name{events.InvoiceSent}, []int{4})
		if !strings.Contains(e.logs.String(), "recovery declined") {
			t.Error("the declined recovery is not logged")
		}
		if n := e.gw.Stats().HistoryGaps[socketio.RecoveryDeclined]; n != 1 {
			t.Errorf("%d declined gaps counted, want 1", n)
		}
	})
}

type historyGap struct {
	Message, Reason, From string
}

func historyGapOf(t *testing.T, ev sioclient.Event) historyGap {
	t.Helper()
	var g historyGap
	decodeArg(t, ev, 0, &g)
	if g.Message == "" {
		t.Errorf("history:gap without a message: %s", ev)
	}
	if len(ev.Args) != 1 {
		t.Errorf("history:gap %s: want its payload alone, no offset (a notice about this connection is not logged for replay)", ev)
	}
	return g
}

// offsetOf returns the recovery offset a received event carries (its last
// argument), which the client sends back when it reconnects.
func offsetOf(t *testing.T, ev sioclient.Event) string {
	t.Helper()
	var off string
	decodeArg(t, ev, len(ev.Args)-1, &off)
	if off == "" {
		t.Fatalf("event %s carries no offset", ev)
	}
	return off
}

// TestHistoryGapWhenTheSessionIsGone: a client that comes back after the
// recovery window (or after a restart: the server does not know its
// session) connects afresh and is told, never silently, from which offset
// events may be missing. A first connection is told nothing.
func TestHistoryGapWhenTheSessionIsGone(t *testing.T) {
	const window = 300 * time.Millisecond
	e := newEnv(t, envOptions{recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: window}})
	a := e.join("org-1", "user-1", sioclient.Options{})
	a.NoEvent(gateway.EventHistoryGap, 0)
	emitTo(t, e, events.InvoiceCreated, "org-1", "", 1)
	offset := offsetOf(t, a.Next(string(events.InvoiceCreated)))

	drop(t, e, a)
	emitTo(t, e, events.InvoicePaid, "org-1", "", 2)
	time.Sleep(2 * window)
	emitTo(t, e, events.InvoiceSent, "org-1", "", 3) // expires the old log entries
	a.Connect()
	if info := a.WaitConnect(); info.Recovered {
		t.Fatalf("recovered after the window: %+v", info)
	}
	a.Next(gateway.EventConnected)
	if gap := historyGapOf(t, a.Next(gateway.EventHistoryGap)); gap.Reason != "unavailable" || gap.From != offset {
		t.Errorf("history:gap %+v, want reason unavailable from %s", gap, offset)
	}
	expectSeqs(t, a, nil, nil) // nothing replayed
	if n := e.gw.Stats().HistoryGaps[socketio.RecoveryUnavailable]; n != 1 {
		t.Errorf("%d gaps counted, want 1", n)
	}
}

// TestRecoveryVerifiesTheTokenAgain: a recovered session is only as good as
// the token presented now: an expired one is refused, with its code; the
// session waits (within the window) for the client to come back with a
// fresh one, and then recovers.
func TestRecoveryVerifiesTheTokenAgain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		a := e.join("org-1", "user-1", sioclient.Options{})
		emitTo(t, e, events.InvoiceCreated, "org-1", "", 1)
		a.Next(string(events.InvoiceCreated))

		drop(t, e, a)
		emitTo(t, e, events.InvoicePaid, "org-1", "", 2)
		expired, err := auth.Mint(testSecret, auth.MintClaims{OrganizationID: "org-1", UserID: "user-1"}, time.Hour, time.Now().Add(-2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		a.SetAuth(map[string]any{"token": expired})
		a.Connect()
		ce := a.WaitConnectError()
		if ce.Message != "Unauthorized: Token expired" || string(ce.Data) != `{"code":"TOKEN_EXPIRED"}` {
			t.Errorf("connect_error %+v", ce)
		}
		a.NoEvent(string(events.InvoicePaid), 100*time.Millisecond)
		if n := e.gw.ConnectionCount(); n != 0 {
			t.Errorf("%d connections after the refusal", n)
		}

		a.SetAuth(map[string]any{"token": e.token("org-1", "user-1", time.Hour)})
		a.Connect()
		if info := a.WaitConnect(); !info.Recovered {
			t.Fatalf("reconnection with a fresh token: %+v, want recovered", info)
		}
		expectSeqs(t, a, []events.Name{events.InvoicePaid}, []int{2})
		a.NoEvent(gateway.EventHistoryGap, 0)
	})
}
