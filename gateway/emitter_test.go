package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
)

// partitioned is a cluster adapter cut off from its cluster: broadcasts
// reach this node's sockets (through the memory adapter) and fail as the
// Redis adapter's do when Redis is unreachable.
type partitioned struct{ socketio.Adapter }

// RecoveryLog forwards the wrapped adapter's log, as a wrapping adapter
// must for recovery to work through it.
func (p partitioned) RecoveryLog() socketio.RecoveryLog {
	if rp, ok := p.Adapter.(socketio.RecoveryLogProvider); ok {
		return rp.RecoveryLog()
	}
	return nil
}

func (p partitioned) Broadcast(ctx context.Context, pkt *socketio.Packet, opts *socketio.BroadcastOptions) error {
	if err := p.Adapter.Broadcast(ctx, pkt, opts); err != nil {
		return err
	}
	return fmt.Errorf("test adapter: redis unreachable: %w", socketio.ErrClusterUnavailable)
}

// TestPublishClusterUnavailable: when the cluster cannot be reached, Publish
// still delivers to this node's clients and says so with an error that
// wraps events.ErrClusterUnavailable, which publishers (the HTTP API) test
// without knowing the Socket.IO layer, and still wraps the adapter's error.
func TestPublishClusterUnavailable(t *testing.T) {
	e := newEnv(t, envOptions{adapter: func(h socketio.AdapterHost) socketio.Adapter {
		return partitioned{socketio.NewMemoryAdapter(h)}
	}})
	c := e.join("org-1", "user-1", sioclient.Options{})
	_, err := e.svc.EmitInvoicePaid(context.Background(), events.InvoicePayload{OrganizationID: "org-1", InvoiceID: "inv-1"})
	if !errors.Is(err, events.ErrClusterUnavailable) || !errors.Is(err, socketio.ErrClusterUnavailable) {
		t.Fatalf("err = %v, want it to wrap events.ErrClusterUnavailable and socketio.ErrClusterUnavailable", err)
	}
	if ev := c.Next(string(events.InvoicePaid)); len(ev.Args) != 1 {
		t.Fatalf("this node's client got %+v", ev)
	}
}

// unanswered is a cluster adapter whose appends get no answer: it delivers
// nothing itself and fails as the streams adapter does then.
type unanswered struct{ socketio.Adapter }

func (u unanswered) Broadcast(context.Context, *socketio.Packet, *socketio.BroadcastOptions) error {
	return fmt.Errorf("test adapter: no answer: %w: %w", socketio.ErrClusterUnavailable, socketio.ErrOutcomeUnknown)
}

// TestPublishOutcomeUnknown: a broadcast whose fate the cluster did not tell
// is reported as events.ErrOutcomeUnknown, not as delivered to this node's
// clients only (it was not: the adapter would repeat it if it landed).
func TestPublishOutcomeUnknown(t *testing.T) {
	e := newEnv(t, envOptions{adapter: func(h socketio.AdapterHost) socketio.Adapter {
		return unanswered{socketio.NewMemoryAdapter(h)}
	}})
	e.join("org-1", "user-1", sioclient.Options{})
	_, err := e.svc.EmitInvoicePaid(context.Background(), events.InvoicePayload{OrganizationID: "org-1", InvoiceID: "inv-1"})
	if !errors.Is(err, events.ErrOutcomeUnknown) || errors.Is(err, events.ErrClusterUnavailable) {
		t.Fatalf("err = %v, want events.ErrOutcomeUnknown and not events.ErrClusterUnavailable", err)
	}
}
