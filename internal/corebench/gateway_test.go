package corebench

import (
	"testing"
)

// BenchmarkIdleGatewayConnection is BenchmarkIdleConnection through the
// events gateway: each client has its own user and a 24-hour token, in one
// of ten organizations, so the figure includes the gateway's session, its
// token expiry, the organization and user rooms and presence.
func BenchmarkIdleGatewayConnection(b *testing.B) {
	for range b.N {
		gw, addr := startGateway(b)
		measureIdle(b, func() {
			startChild(b, "gw", addr, conns)
			waitSockets(b, gw.Namespace(), conns)
		})
	}
	b.ReportMetric(0, "ns/op")
}
