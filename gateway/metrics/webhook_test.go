package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/metrics"
	"github.com/operate/realtime/gateway/webhook"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
)

// TestWebhookDropsCounted: with the webhook receiver hanging and the queue
// full, clients still connect at once, and the events that do not fit are
// counted in realtime_webhook_events_total{result="dropped"}.
func TestWebhookDropsCounted(t *testing.T) {
	hang := make(chan struct{})
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(receiver.Close)
	t.Cleanup(func() { close(hang) })
	hooks, err := webhook.New(webhook.Config{URL: receiver.URL, Secret: "whsec_0123456789abcdef", BatchSize: 1, QueueSize: 1,
		Timeout: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = hooks.Close(ctx) // the receiver hangs: gives up
	})

	v, err := auth.New(context.Background(), auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	gw, err := gateway.New(gateway.Config{Verifier: v, Observers: []gateway.Observer{hooks}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		srv.Close()
	})
	h := metrics.Handler(gw, metrics.Options{Webhooks: hooks.Stats})

	d := sioclient.Start(t)
	no := new(false)
	connect := func(user string) {
		tok, err := auth.Mint(secret, auth.MintClaims{OrganizationID: "org-1", UserID: user}, time.Hour, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		c := d.Connect(srv.URL+gateway.DefaultNamespace, sioclient.Options{Auth: map[string]any{"token": tok}, Reconnection: no})
		c.WaitConnect()
		c.Next(gateway.EventConnected)
	}
	connect("u1") // its socket.connected is in flight, the receiver hangs
	wait.For(t, "the first webhook request in flight", func() bool { st := hooks.Stats(); return st.Requests == 1 && st.Queued == 0 })
	connect("u2") // queued
	connect("u3") // dropped; the connection does not wait
	body := scrape(t, h)
	for _, want := range []string{
		`realtime_webhook_events_total{result="dropped"} 1` + "\n",
		`realtime_webhook_events_total{result="delivered"} 0` + "\n",
		"realtime_webhook_queue_length 1\n",
		"realtime_webhook_requests_total 1\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", strings.TrimSpace(want))
		}
	}
}
