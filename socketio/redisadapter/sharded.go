package redisadapter

import (
	"context"
	"sync"

	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
)

// shardedAdapter is the adapter of one namespace in sharded mode,
// wire-compatible with @socket.io/redis-adapter 8.3's createShardedAdapter
// (lib/sharded-adapter.ts on socket.io-adapter's ClusterAdapter): see the
// protocol notes §5.4. The ClusterMessage protocol is clusterProto's; this
// type carries it over SPUBLISH/SSUBSCRIBE and manages the room channels.
type shardedAdapter struct {
	*clusterProto
	// Static after construction.
	channel         string // prefix#nsp#
	responseChannel string // prefix#nsp#uid#
	mode            SubscriptionMode

	roomsMu sync.Mutex
	rooms   map[string]struct{} // rooms with a channel subscription
	closed  bool
}

var (
	_ socketio.Adapter        = (*shardedAdapter)(nil)
	_ socketio.RoomObserver   = (*shardedAdapter)(nil)
	_ socketio.SocketObserver = (*shardedAdapter)(nil)
)

func newSharded(c *Cluster, host socketio.AdapterHost) *shardedAdapter {
	a := &shardedAdapter{mode: c.cfg.SubscriptionMode, rooms: make(map[string]struct{})}
	a.clusterProto = newClusterProto(c, host, a)
	a.channel = c.cfg.KeyPrefix + "#" + host.Name() + "#"
	a.responseChannel = a.channel + a.uid + "#"
	c.subscribe(kindShard, a.channel, a.onMessage)
	c.subscribe(kindShard, a.responseChannel, a.onMessage)
	return a
}

// ---------------------------------------------------------------------------
// Dynamic subscriptions

// RoomCreated and the other observer methods re-evaluate whether a room
// needs a channel subscription from the room's current state, under one
// lock, so that events arriving out of order settle on the right answer.
func (a *shardedAdapter) RoomCreated(room string)        { a.syncRoom(room) }
func (a *shardedAdapter) RoomDeleted(room string)        { a.syncRoom(room) }
func (a *shardedAdapter) SocketAdded(id string)          { a.syncRoom(id) }
func (a *shardedAdapter) SocketRemoved(id string)        { a.syncRoom(id) }
func (a *shardedAdapter) dynamicChannel(r string) string { return a.channel + r + "#" }

func (a *shardedAdapter) syncRoom(room string) {
	if a.mode == Static {
		return
	}
	a.roomsMu.Lock()
	defer a.roomsMu.Unlock()
	if a.closed {
		return
	}
	want := a.host.Namespace().RoomSize(room) > 0
	if a.mode == Dynamic {
		if _, isSocket := a.host.Namespace().Socket(room); isSocket {
			want = false // a private room (Node: this.sids.has(room))
		}
	}
	_, have := a.rooms[room]
	switch {
	case want && !have:
		a.rooms[room] = struct{}{}
		a.c.subscribe(kindShard, a.dynamicChannel(room), a.onMessage)
	case !want && have:
		delete(a.rooms, room)
		a.c.unsubscribe(kindShard, a.dynamicChannel(room))
	}
}

// computeChannel is Node's: a broadcast without ack to exactly one room
// uses the room's channel, unless the room looks like a socket id (20
// characters) in dynamic mode.
func (a *shardedAdapter) computeChannel(rooms []string, withAck bool) string {
	if withAck || len(rooms) != 1 {
		return a.channel
	}
	switch {
	case a.mode == Dynamic && !rediswire.LooksLikeSocketID(rooms[0]), a.mode == DynamicPrivate:
		return a.dynamicChannel(rooms[0])
	}
	return a.channel
}

// ---------------------------------------------------------------------------
// Publishing

// publish sends a message on the namespace channel: JSON, or msgpack when
// it carries binary (as Node decides with hasBinary).
func (a *shardedAdapter) publish(ctx context.Context, typ int, data []byte, atts [][]byte) error {
	return a.publishOn(ctx, a.channel, typ, data, atts)
}

func (a *shardedAdapter) publishOn(ctx context.Context, channel string, typ int, data []byte, atts [][]byte) error {
	msg, err := a.encodeMessage(typ, data, atts, false)
	if err != nil {
		return err
	}
	return a.c.publish(ctx, channel, msg)
}

func (a *shardedAdapter) respond(requester string, typ int, data []byte, atts [][]byte) {
	a.logPublishError(a.publishOn(context.Background(), a.channel+requester+"#", typ, data, atts))
}

// serverCount is the number of subscribers of the namespace channel
// (PUBSUB SHARDNUMSUB), one per server.
func (a *shardedAdapter) serverCount(ctx context.Context) (int, error) {
	return a.c.numSub(ctx, a.channel)
}

// Broadcast delivers p locally, then publishes it once.
func (a *shardedAdapter) Broadcast(ctx context.Context, p *socketio.Packet, opts *socketio.BroadcastOptions) error {
	a.host.Broadcast(p, opts)
	rooms := uniq(opts.Rooms)
	data := rediswire.AppendBroadcastData(make([]byte, 0, len(p.Data)+96), p.Data, "", rooms, uniq(opts.Except), wireFlags(opts.Flags))
	return a.publishOn(ctx, a.computeChannel(rooms, false), rediswire.MsgBroadcast, data, p.Attachments)
}

// AddSockets applies socketsJoin locally and publishes it.
func (a *shardedAdapter) AddSockets(ctx context.Context, opts *socketio.BroadcastOptions, rooms []string) error {
	a.host.AddSockets(opts, rooms)
	return a.publish(ctx, rediswire.MsgSocketsJoin, roomsData(opts, rooms), nil)
}

// DelSockets applies socketsLeave locally and publishes it.
func (a *shardedAdapter) DelSockets(ctx context.Context, opts *socketio.BroadcastOptions, rooms []string) error {
	a.host.DelSockets(opts, rooms)
	return a.publish(ctx, rediswire.MsgSocketsLeave, roomsData(opts, rooms), nil)
}

// DisconnectSockets applies disconnectSockets locally and publishes it.
func (a *shardedAdapter) DisconnectSockets(ctx context.Context, opts *socketio.BroadcastOptions, close bool) error {
	a.host.DisconnectSockets(opts, close)
	return a.publish(ctx, rediswire.MsgDisconnectSockets, closeData(opts, close), nil)
}

// Close unsubscribes every channel of the namespace.
func (a *shardedAdapter) Close() error {
	a.roomsMu.Lock()
	if a.closed {
		a.roomsMu.Unlock()
		return nil
	}
	a.closed = true
	for r := range a.rooms {
		a.c.unsubscribe(kindShard, a.dynamicChannel(r))
	}
	clear(a.rooms)
	a.roomsMu.Unlock()
	a.c.unsubscribe(kindShard, a.channel)
	a.c.unsubscribe(kindShard, a.responseChannel)
	a.reqs.close()
	return nil
}
