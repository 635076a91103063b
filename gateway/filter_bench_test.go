package gateway

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/filter"
	"github.com/operate/realtime/socketio"
)

// fanout is the number of recipients of the benchmarked broadcast.
const fanout = 10_000

// BenchmarkDeliveryFilter measures the delivery filter's part of a
// fan-out: one invoice:created broadcast tested against 10,000 sockets of
// its organization, per recipient, as the adapter host's local broadcast runs it. The
// subbenchmarks differ only in the recipients' subscriptions:
//
//   - unsubscribed: never subscribed (one atomic load: the fast path);
//   - subscribed: subscribed to invoice:* without a filter;
//   - filter: subscribed to invoice:* through one simple filter, the same
//     for all (evaluated once per broadcast, then a pointer comparison);
//   - filter-10-distinct: ten different filters among the recipients;
//   - filter-1000-distinct: a thousand (past the memo's array, a map).
//
// The filter's share per recipient is filter's ns/recipient minus
// subscribed's. Run with
//
//	go test -run '^$' -bench DeliveryFilter -count 5 ./gateway
func BenchmarkDeliveryFilter(b *testing.B) {
	cases := []struct {
		name     string
		distinct int // distinct filters; 0: none
		subs     bool
	}{
		{"unsubscribed", 0, false},
		{"subscribed", 0, true},
		{"filter", 1, true},
		{"filter-10-distinct", 10, true},
		{"filter-1000-distinct", 1000, true},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			g := benchGateway(b)
			bits := invoiceBits(g)
			sockets := make([]*socketio.Socket, fanout)
			for i := range sockets {
				sess := &session{userID: fmt.Sprintf("user-%d", i), orgID: "org-1"}
				if bc.subs {
					subs := &subscriptions{events: g.catalog.emptySet()}
					for _, bit := range bits {
						subs.events.set(bit, true)
					}
					if bc.distinct > 0 {
						// Thresholds 0, 100, 200...: about half the recipients match.
						expr := fmt.Sprintf("payload.amount > %d.0 && payload.currency == 'EUR'", (i%bc.distinct)*1000/bc.distinct)
						p, err := g.filters.Compile(expr, events.InvoiceCreated)
						if err != nil {
							b.Fatal(err)
						}
						subs.filters = make([]*filter.Program, len(g.catalog.names))
						for _, bit := range bits {
							subs.filters[bit] = p
						}
					}
					sess.subs.Store(subs)
				}
				s := new(socketio.Socket)
				s.SetData(sess)
				sockets[i] = s
			}
			p, err := socketio.NewPacket(string(events.InvoiceCreated), map[string]any{
				"organizationId": "org-1", "invoiceId": "inv-1", "amount": 500.0, "currency": "EUR",
				"timestamp": "2025-01-31T09:30:00.000Z", "invoiceNumber": "INV-2025-0042", "status": "sent",
			})
			if err != nil {
				b.Fatal(err)
			}

			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			kept := 0
			for range b.N {
				keep := g.deliveryFilter(p)
				for _, s := range sockets {
					if keep(s) {
						kept++
					}
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			if kept == 0 || (bc.distinct == 0 && kept != b.N*fanout) {
				b.Fatalf("%d deliveries kept of %d", kept, b.N*fanout)
			}
			recipients := float64(b.N) * fanout
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/recipients, "ns/recipient")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/recipients, "allocs/recipient")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func benchGateway(b *testing.B) *Gateway {
	b.Helper()
	v, err := auth.New(context.Background(), auth.Config{Secret: "bench-secret-0123456789abcdef0123"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	g, err := New(Config{Verifier: v})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	return g
}

func invoiceBits(g *Gateway) []int {
	var bits []int
	for i, n := range g.catalog.names {
		if n.Domain() == "invoice" {
			bits = append(bits, i)
		}
	}
	return bits
}
