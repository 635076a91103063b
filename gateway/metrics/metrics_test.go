package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/metrics"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
)

const secret = "metrics-test-secret-0123456789abcdef"

// TestMetrics drives a real gateway with socket.io-client and checks that
// the scrape reports what happened.
func TestMetrics(t *testing.T) {
	v, err := auth.New(context.Background(), auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	gw, err := gateway.New(gateway.Config{Verifier: v})
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
	clusterDown := errors.New("redis: connection refused")
	h := metrics.Handler(gw, metrics.Options{ClusterReady: func() error { return clusterDown }, SessionsDropped: func() int64 { return 3 }})

	tok, err := auth.Mint(secret, auth.MintClaims{OrganizationID: "org-1", UserID: "user-1"}, time.Hour, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	d := sioclient.Start(t)
	no := new(false)
	c := d.Connect(srv.URL+gateway.DefaultNamespace, sioclient.Options{Auth: map[string]any{"token": tok}, Reconnection: no})
	c.WaitConnect()
	c.Next(gateway.EventConnected)
	bad := d.Connect(srv.URL+gateway.DefaultNamespace, sioclient.Options{Auth: map[string]any{"token": tok + "x"}, Reconnection: no})
	bad.WaitConnectError()
	anon := d.Connect(srv.URL+gateway.DefaultNamespace, sioclient.Options{Reconnection: no})
	anon.WaitConnectError()

	svc := events.NewEventsService(gw)
	for range 2 {
		if _, err := svc.EmitInvoicePaid(context.Background(), events.InvoicePayload{OrganizationID: "org-1", InvoiceID: "inv-1"}); err != nil {
			t.Fatal(err)
		}
		c.Next(string(events.InvoicePaid))
	}

	body := scrape(t, h)
	for _, want := range []string{
		"realtime_connections 1\n",
		"realtime_connections_accepted_total 1\n",
		"realtime_connections_recovered_total 0\n",
		`realtime_connections_refused_total{code="INVALID_TOKEN"} 1` + "\n",
		`realtime_connections_refused_total{code="NO_TOKEN"} 1` + "\n",
		`realtime_events_published_total{event="invoice:paid"} 2` + "\n",
		`realtime_events_published_total{event="invoice:created"} 0` + "\n",
		"realtime_publish_failures_total 0\n",
		`realtime_token_refreshes_total{result="ok"} 0` + "\n",
		"realtime_cluster_ready 0\n",
		"realtime_cluster_sessions_dropped_total 3\n",
		"# TYPE realtime_engine_packets_out_total counter\n",
		"# TYPE realtime_engine_sessions gauge\n",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", strings.TrimSpace(want))
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}

	// Counters move: the connection goes away, the cluster comes back.
	c.Close()
	wait.For(t, "no connection left", func() bool { return gw.ConnectionCount() == 0 })
	clusterDown = nil
	body = scrape(t, h)
	for _, want := range []string{"realtime_connections 0\n", "realtime_cluster_ready 1\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("second scrape lacks %q", strings.TrimSpace(want))
		}
	}
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	b, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
