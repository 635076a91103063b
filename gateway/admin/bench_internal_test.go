package admin

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/socketio"
)

// BenchmarkBroadcastHook is what a broadcast costs the node that delivers
// it while a UI with ADMIN_UI_EVENTS watches: the monitor's Broadcast hook,
// called once per broadcast (never per recipient). "budget-spent" is the
// steady state of a busy node (the event budget, 50/s, is spent: the hook
// only asks the limiter); "queued" is an event shown (queued for the run
// loop, which drains it). Without a watching UI there is no
// hook at all (internal/corebench measures that path).
func BenchmarkBroadcastHook(b *testing.B) {
	v, err := auth.New(context.Background(), auth.Config{Secret: "bench-secret-0123456789abcdef0123"})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	gw, err := gateway.New(gateway.Config{Verifier: v})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = gw.Shutdown(context.Background()) }()
	p, err := socketio.NewPacket("invoice:paid", json.RawMessage(`{"organizationId":"org_1","invoiceId":"inv_1","amount":1250.5}`))
	if err != nil {
		b.Fatal(err)
	}
	opts := &socketio.BroadcastOptions{Rooms: []string{"org:org_1"}}
	for _, c := range []struct {
		name string
		rate float64
	}{{"budget-spent", DefaultEventRate}, {"queued", 1e12}} {
		b.Run(c.name, func(b *testing.B) {
			a, err := newAdmin(gw, Config{UI: &UIConfig{Namespace: "/admin-" + c.name, Password: "bench-password-0123456789", Events: true, EventRate: c.rate}}, defaultTiming())
			if err != nil {
				b.Fatal(err)
			}
			// Not watching, the run loop drops what is queued: it drains.
			defer a.Close()
			hook := a.monitor().Broadcast
			for range 200 { // spend the burst
				hook(p, opts, 10_000)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				hook(p, opts, 10_000)
			}
		})
	}
}
