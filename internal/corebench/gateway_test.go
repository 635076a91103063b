package corebench

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/presence"
)

// gatewaySecret signs the child's connection tokens (HS256).
const gatewaySecret = "corebench-gateway-secret-0123456789"

// gatewayOrgs is how many organizations the clients are spread over, as in
// realtime-bench's idle scenario.
const gatewayOrgs = 10

// startGateway serves the events gateway as `realtime serve` wires it by
// default: JWT verification, presence in memory, the expiry warning, the
// connection caps (per address off, as the clients share one address).
// Heartbeats are pushed out of the measurement window.
func startGateway(tb testing.TB) (*gateway.Gateway, string) {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	v, err := auth.New(context.Background(), auth.Config{Secret: gatewaySecret, Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)
	tracker, err := presence.New(presence.Config{Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tracker.Close)
	gw, err := gateway.New(gateway.Config{
		Verifier:                 v,
		Engine:                   &engineio.Options{PingInterval: time.Hour, PingTimeout: time.Hour},
		Observers:                []gateway.Observer{tracker},
		Presence:                 tracker.Presence,
		MaxConnectionsPerAddress: -1,
		Logger:                   log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hs := &http.Server{Handler: gw}
	go func() { _ = hs.Serve(ln) }()
	tb.Cleanup(func() { hs.Close() })
	return gw, ln.Addr().String()
}

// BenchmarkIdleGatewayConnection is BenchmarkIdleConnection through the
// events gateway: each client has its own user and a 24-hour token, in one
// of ten organizations, so the figure includes the gateway's session, its
// token expiry, the organization and user rooms and presence.
func BenchmarkIdleGatewayConnection(b *testing.B) {
	for range b.N {
		gw, addr := startGateway(b)
		before := snapshot()
		startChild(b, "gw", addr, conns)
		waitSockets(b, gw.Namespace(), conns)
		time.Sleep(200 * time.Millisecond) // let handshake goroutines exit
		after := snapshot()
		if path := os.Getenv("COREBENCH_HEAPPROFILE"); path != "" {
			writeHeapProfile(b, path)
		}
		b.ReportMetric(float64(after.heap+after.stack-before.heap-before.stack)/conns, "heap+stack-B/conn")
		b.ReportMetric(float64(after.heap-before.heap)/conns, "heap-B/conn")
		b.ReportMetric(float64(after.rss-before.rss)/conns, "rss-B/conn")
		b.ReportMetric(float64(after.goroutines-before.goroutines)/conns, "goroutines/conn")
	}
	b.ReportMetric(0, "ns/op")
}
