package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/client"
	"github.com/operate/realtime/gateway/events"
)

func TestSubscribeNarrowsAndUnsubscribeWidens(t *testing.T) {
	s := startServer(t, serverOptions{})
	c := newClient(t, client.Config{URL: s.url, Token: token(t, "org_1", "u1", time.Hour)})
	r := record(c, "invoice:paid", "expense:created", "bank:sync_error")
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	res, err := c.Subscribe(ctx, []string{"invoice:*", "bank:sync_error"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.SubscribedTo, []string{"invoice:*", "bank:sync_error"}) || !slices.Contains(res.Subscriptions, events.InvoicePaid) ||
		slices.Contains(res.Subscriptions, events.ExpenseCreated) {
		t.Fatalf("Subscribe = %+v", res)
	}
	emit := func(name events.Name, payload string) {
		t.Helper()
		if _, err := s.svc.Emit(ctx, name, json.RawMessage(payload), events.Target{}); err != nil {
			t.Fatal(err)
		}
	}
	emit(events.ExpenseCreated, `{"organizationId":"org_1","expenseId":"e1"}`)
	emit(events.InvoicePaid, `{"organizationId":"org_1","invoiceId":"i1"}`)
	r.waitFor(t, "invoice:paid", func(r *recorder) bool { return len(r.events["invoice:paid"]) == 1 })
	if n := r.count("expense:created"); n != 0 {
		t.Fatalf("%d expense:created received while subscribed to invoice:* only", n)
	}

	if res, err = c.Unsubscribe(ctx, []string{"invoice:paid"}); err != nil || slices.Contains(res.Subscriptions, events.InvoicePaid) {
		t.Fatalf("Unsubscribe = %+v, %v", res, err)
	}
	if _, err = c.Subscribe(ctx, []string{"expense:created"}); err != nil {
		t.Fatal(err)
	}
	emit(events.InvoicePaid, `{"organizationId":"org_1","invoiceId":"i2"}`)
	emit(events.ExpenseCreated, `{"organizationId":"org_1","expenseId":"e2"}`)
	r.waitFor(t, "expense:created", func(r *recorder) bool { return len(r.events["expense:created"]) == 1 })
	if n := r.count("invoice:paid"); n != 1 {
		t.Fatalf("%d invoice:paid received, want the one before unsubscribing", n)
	}
}

func TestSubscribeRefusals(t *testing.T) {
	s := startServer(t, serverOptions{})
	c := newClient(t, client.Config{URL: s.url, Token: token(t, "org_1", "u1", time.Hour)})
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := c.Subscribe(ctx, []string{"invoice:nope"})
	var re *client.RequestError
	if !errors.As(err, &re) || re.Code != "unknown_event" || re.Event != "subscribe" {
		t.Fatalf("Subscribe(unknown) = %v, want a RequestError unknown_event", err)
	}
	if _, err := c.Subscribe(ctx, nil); err == nil {
		t.Fatal("Subscribe(nil) succeeded")
	}
	// A filter on a server that does not know filters yet: refused, not
	// silently ignored, once the gateway refuses unknown fields; until
	// then accepted. Either way the client sends it and reports the answer.
	_, err = c.Subscribe(ctx, []string{"invoice:*"}, client.WithFilter("payload.amount > 1000.0"))
	if err != nil && !errors.As(err, &re) {
		t.Fatalf("Subscribe with a filter: %v", err)
	}
}

func TestRefusedConnections(t *testing.T) {
	s := startServer(t, serverOptions{})
	for _, tc := range []struct {
		name string
		cfg  client.Config
		code string
	}{
		{"invalid token", client.Config{Token: "not-a-jwt"}, client.CodeInvalidToken},
		{"another secret", client.Config{Token: mustMint(t, "another-secret-0123456789abcdef01")}, client.CodeInvalidToken},
		{"expired, no source", client.Config{Token: expired(t)}, client.CodeTokenExpired},
		{"unknown namespace", client.Config{Token: token(t, "o", "u", time.Hour), Namespace: "/nope"}, client.CodeInvalidNamespace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.URL = s.url
			c := newClient(t, tc.cfg)
			r := record(c)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			err := c.Connect(ctx)
			var ce *client.ConnectError
			if !errors.As(err, &ce) || ce.Code != tc.code {
				t.Fatalf("Connect = %v, want a ConnectError %s", err, tc.code)
			}
			select {
			case <-c.Done():
			case <-time.After(waitTimeout):
				t.Fatal("the client did not stop after a refusal a retry cannot fix")
			}
			if !errors.Is(c.Err(), err) && c.Err().Error() != err.Error() {
				t.Errorf("Err = %v, Connect returned %v", c.Err(), err)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if !slices.Equal(r.log, []string{"disconnect connect_error"}) {
				t.Errorf("handlers saw %q", r.log)
			}
		})
	}
}

func mustMint(t *testing.T, secret string) string {
	t.Helper()
	tok, err := mintWith(secret, "o", "u", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func expired(t *testing.T) string {
	t.Helper()
	tok, err := mintAt(testSecret, "o", "u", time.Minute, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTransports connects with each transport setting and checks where the
// connection ends up and that events flow both ways over it.
func TestTransports(t *testing.T) {
	s := startServer(t, serverOptions{})
	for _, tc := range []struct {
		transport client.Transport
		first     string // right after connecting
		final     string // once settled
	}{
		{client.TransportAuto, "websocket", "websocket"},
		{client.TransportWebSocket, "websocket", "websocket"},
		{client.TransportPolling, "polling", "polling"},
		{client.TransportUpgrade, "polling", "websocket"},
	} {
		t.Run(tc.transport.String(), func(t *testing.T) {
			c := newClient(t, client.Config{URL: s.url, Token: token(t, "org_tr", "u_"+tc.transport.String(), time.Hour), Transport: tc.transport})
			r := record(c, "invoice:paid")
			connect(t, c)
			r.waitFor(t, "OnConnect", func(r *recorder) bool { return len(r.connects) == 1 })
			if got := r.connects[0].Transport; got != tc.first {
				t.Errorf("connected over %s, want %s", got, tc.first)
			}
			deadline := time.Now().Add(waitTimeout)
			for c.Transport() != tc.final && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := c.Transport(); got != tc.final {
				t.Fatalf("transport %s, want %s", got, tc.final)
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if _, err := c.Subscribe(ctx, []string{"invoice:paid"}); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 20; i++ {
				emitSeq(t, s, "org_tr", i)
			}
			r.waitFor(t, "20 events", func(r *recorder) bool { return len(r.events["invoice:paid"]) == 20 })
			if seqs := r.seqs(t, "invoice:paid"); !consecutive(seqs, 1, 20) {
				t.Fatalf("received %v", seqs)
			}
		})
	}
}

// TestUpgradeUnderTraffic publishes while the client upgrades from
// polling: nothing may be lost or reordered at the switch.
func TestUpgradeUnderTraffic(t *testing.T) {
	s := startServer(t, serverOptions{})
	for round := range 3 {
		c := newClient(t, client.Config{URL: s.url, Token: token(t, "org_up", "u1", time.Hour), Transport: client.TransportUpgrade})
		r := record(c, "invoice:paid")
		connect(t, c)
		const n = 200
		for i := 1; i <= n; i++ {
			emitSeq(t, s, "org_up", i)
		}
		r.waitFor(t, "every event", func(r *recorder) bool { return len(r.events["invoice:paid"]) >= n })
		if seqs := r.seqs(t, "invoice:paid"); !consecutive(seqs, 1, n) {
			t.Fatalf("round %d: received %d events, not 1..%d in order: %v", round, len(seqs), n, seqs)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
}

// TestWebSocketRefusedFallsBackToPolling: behind a proxy that answers the
// WebSocket handshake with an error, TransportAuto connects over polling.
func TestWebSocketRefusedFallsBackToPolling(t *testing.T) {
	s := startServer(t, serverOptions{})
	front := noWebSocket(t, s.url)
	c := newClient(t, client.Config{URL: front, Token: token(t, "org_fb", "u1", time.Hour)})
	r := record(c, "invoice:paid")
	connect(t, c)
	if got := c.Transport(); got != "polling" {
		t.Fatalf("transport %s, want polling", got)
	}
	emitSeq(t, s, "org_fb", 1)
	r.waitFor(t, "the event", func(r *recorder) bool { return len(r.events["invoice:paid"]) == 1 })
	if !strings.HasPrefix(r.connects[0].Transport, "polling") {
		t.Fatalf("connect info %+v", r.connects[0])
	}
}
