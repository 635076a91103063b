package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/socketio"
)

// ErrNoRecipients is returned by Publish for an event whose target names
// nobody (the zero Target): EventsService always resolves one, so this is a
// publisher bug, not something to deliver to everyone.
var ErrNoRecipients = errors.New("gateway: event has no target")

// Publish implements events.Emitter: it broadcasts ev.Payload, byte for
// byte, as the single argument of the Socket.IO event ev.Name, to the rooms
// of ev.Target ("org:<id>", "user:<id>"; a socket in both gets it once), or
// to every socket of the namespace when Target.All is set. Through the
// namespace's adapter this reaches every node of a cluster; when the cluster
// cannot be reached, the event reaches this node's clients only and the error
// wraps events.ErrClusterUnavailable (and the adapter's own error).
//
// Publish does not validate the payload: use an events.EventsService built
// on the gateway, which does. It refuses names outside the catalog, so that
// nothing can pose as a control event (auth:expired, ...).
func (g *Gateway) Publish(ctx context.Context, ev events.Event) error {
	_, err := g.PublishOffset(ctx, ev)
	return err
}

// PublishOffset is Publish returning the event's offset in the history
// (events.OffsetEmitter): a position a backend can later read the history
// from (GET .../events?since=), or a client's history request. It is ""
// when no history is kept, or the event reached only this node's clients.
func (g *Gateway) PublishOffset(ctx context.Context, ev events.Event) (string, error) {
	return g.publish(ctx, ev, nil)
}

var _ events.OnceEmitter = (*Gateway)(nil)

// PublishOnce implements events.OnceEmitter: PublishOffset, at most once
// per key (socketio.Once). Clustered over Redis Streams, the namespace
// stream's append is skipped when one with the key landed, on any node,
// and the earlier event's id (stored with its append) and offset are
// answered; nothing is delivered again, since delivery is the reading of
// the stream. Other adapters ignore the key: their publishes never end
// with events.ErrOutcomeUnknown, the answer a caller retries for.
func (g *Gateway) PublishOnce(ctx context.Context, ev events.Event, key string, keep time.Duration) (id, offset string, err error) {
	once := &socketio.Once{Key: key, Keep: keep, Tag: ev.ID}
	offset, err = g.publish(ctx, ev, once)
	return once.Tag, offset, err
}

// publish is PublishOffset with an optional once.
func (g *Gateway) publish(ctx context.Context, ev events.Event, once *socketio.Once) (string, error) {
	bit, ok := g.catalog.bit[string(ev.Name)]
	if !ok {
		g.stats.publishFailed.Add(1)
		return "", fmt.Errorf("gateway: publish %q (id %s): not a catalog event", ev.Name, ev.ID)
	}
	var op socketio.BroadcastOperator
	switch rooms := ev.Target.Rooms(); {
	case ev.Target.All:
		op = g.nsp.Except() // every socket of the namespace
	case len(rooms) > 0:
		op = g.nsp.To(rooms...)
	default:
		g.stats.publishFailed.Add(1)
		return "", fmt.Errorf("publish %s (id %s): %w", ev.Name, ev.ID, ErrNoRecipients)
	}
	if once != nil {
		op = op.Once(once)
	}
	// NewPacket copies the payload into the encoded packet, so ev.Payload is
	// not kept (the events.Emitter contract).
	p, err := socketio.NewPacket(string(ev.Name), json.RawMessage(ev.Payload))
	var offset string
	if err == nil {
		offset, err = op.EmitPacketLogged(ctx, p)
	}
	if errors.Is(err, socketio.ErrOutcomeUnknown) {
		// Checked first: such an error also says the cluster is unavailable,
		// but nothing was delivered on the side.
		g.stats.publishFailed.Add(1)
		return "", fmt.Errorf("gateway: publish %s (id %s): %w: %w", ev.Name, ev.ID, events.ErrOutcomeUnknown, err)
	}
	if errors.Is(err, socketio.ErrClusterUnavailable) {
		// The adapter delivered to this node's clients and could not reach
		// the others: say so in the events' own terms, so that publishers
		// (the HTTP API) need not know the Socket.IO layer.
		g.stats.publishFailed.Add(1)
		return offset, fmt.Errorf("gateway: publish %s (id %s) reached this node's clients only: %w: %w", ev.Name, ev.ID, events.ErrClusterUnavailable, err)
	}
	if err != nil {
		g.stats.publishFailed.Add(1)
		return "", fmt.Errorf("gateway: publish %s (id %s): %w", ev.Name, ev.ID, err)
	}
	g.stats.published[bit].Add(1)
	if offset != "" {
		g.stats.historyAppended.Add(1)
	}
	return offset, nil
}
