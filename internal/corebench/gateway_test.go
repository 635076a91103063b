package corebench

import (
	"os"
	"testing"
	"time"
)

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
