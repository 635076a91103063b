package metrics_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/metrics"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// TestHistoryMetrics: a recovery, a failed one, history requests from a
// client and from a backend, and the scrape reports each: the events the
// history kept, the recovery attempts by result, the events replayed, the
// history requests by source and result.
func TestHistoryMetrics(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testHistoryMetrics(t, nil, "memory") })
	t.Run("streams", func(t *testing.T) {
		r := redistest.Start(t)
		c, err := redisadapter.New(redisadapter.Config{Addr: r.Addr, Mode: redisadapter.Streams, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() }) // after the gateway's shutdown
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := c.WaitSubscribed(ctx); err != nil {
			t.Fatal(err)
		}
		testHistoryMetrics(t, c.Adapter, "streams")
	})
}

func testHistoryMetrics(t *testing.T, adapter socketio.AdapterFactory, mode string) {
	v, err := auth.New(context.Background(), auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	gw, err := gateway.New(gateway.Config{Verifier: v, Adapter: adapter, Recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}})
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
	h := metrics.Handler(gw, metrics.Options{})
	tok, err := auth.Mint(secret, auth.MintClaims{OrganizationID: "org-1", UserID: "user-1"}, time.Hour, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	d := sioclient.Start(t)
	url := srv.URL + gateway.DefaultNamespace
	c := d.Connect(url, sioclient.Options{Auth: map[string]any{"token": tok}, Reconnection: new(false)})
	c.WaitConnect()
	c.Next(gateway.EventConnected)

	svc := events.NewEventsService(gw)
	publish := func() {
		t.Helper()
		if _, err := svc.EmitInvoicePaid(context.Background(), events.InvoicePayload{OrganizationID: "org-1", InvoiceID: "inv-1"}); err != nil {
			t.Fatal(err)
		}
	}
	publish()
	c.Next(string(events.InvoicePaid))

	// Away while two events are published; back, recovered, with both.
	c.CloseEngine()
	c.WaitDisconnect()
	wait.For(t, "the server to see the disconnection", func() bool { return gw.ConnectionCount() == 0 })
	publish()
	publish()
	c.Connect()
	if info := c.WaitConnect(); !info.Recovered {
		t.Fatalf("reconnection %+v, want recovered", info)
	}
	c.Next(string(events.InvoicePaid))
	c.Next(string(events.InvoicePaid))

	// A session this server does not know: not recovered, told so.
	stranger := d.Connect(url, sioclient.Options{Auth: map[string]any{"token": tok, "pid": "unknown-session", "offset": "unknown-offset"}, Reconnection: new(false)})
	if info := stranger.WaitConnect(); info.Recovered {
		t.Fatalf("unknown session recovered: %+v", info)
	}
	stranger.Next(gateway.EventHistoryGap)

	// History: from the client, one answered and one malformed; from a
	// backend, one answered and one from a position not kept.
	history := func(arg any) string {
		t.Helper()
		res, err := c.EmitWithAck(3*time.Second, gateway.EventHistory, arg)
		if err != nil || len(res) != 1 {
			t.Fatalf("history %v: %v %s", arg, err, res)
		}
		var ack struct {
			Success bool   `json:"success"`
			Code    string `json:"code"`
		}
		if err := json.Unmarshal(res[0], &ack); err != nil {
			t.Fatal(err)
		}
		return ack.Code
	}
	if code := history(map[string]any{"limit": 10}); code != "" {
		t.Fatalf("history refused: %s", code)
	}
	if code := history(map[string]any{"limit": 0}); code != gateway.CodeInvalidRequest {
		t.Fatalf("history with limit 0: code %q, want %s", code, gateway.CodeInvalidRequest)
	}
	if _, err := gw.History(context.Background(), events.HistoryQuery{OrganizationID: "org-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.History(context.Background(), events.HistoryQuery{OrganizationID: "org-1", Since: "not-an-offset"}); err == nil {
		t.Fatal("history from a position never given out: no error")
	}

	body := scrape(t, h)
	for _, want := range []string{
		`realtime_history_appended_total{mode="` + mode + `"} 3`,
		`realtime_recovery_attempts_total{result="recovered"} 1`,
		`realtime_recovery_attempts_total{result="unavailable"} 1`,
		`realtime_recovery_attempts_total{result="declined"} 0`,
		`realtime_events_replayed_total 2`,
		`realtime_history_requests_total{result="ok",source="client"} 1`,
		`realtime_history_requests_total{result="invalid",source="client"} 1`,
		`realtime_history_requests_total{result="ok",source="api"} 1`,
		`realtime_history_requests_total{result="gap",source="api"} 1`,
		`realtime_history_requests_total{result="unavailable",source="api"} 0`,
		"# TYPE realtime_events_replayed_total counter",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", grepLines(body, "realtime_history_", "realtime_recovery_", "realtime_events_replayed"))
	}
}

// grepLines returns the lines of s that start with one of prefixes.
func grepLines(s string, prefixes ...string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				b.WriteString(line + "\n")
				break
			}
		}
	}
	return b.String()
}
