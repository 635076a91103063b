package redisadapter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
)

// shardedAdapter is the adapter of one namespace in sharded mode,
// wire-compatible with @socket.io/redis-adapter 8.3's createShardedAdapter
// (lib/sharded-adapter.ts on socket.io-adapter's ClusterAdapter): see the
// protocol notes §5.4.
type shardedAdapter struct {
	// Connection state recovery is not supported over Redis Pub/Sub
	// (Node's RedisAdapter has no-op persist/restore too).
	socketio.NoRecovery

	// Static after construction.
	c               *Cluster
	nsp             *socketio.Namespace
	uid             string // randomBytes(8) hex, like Node's ClusterAdapter
	channel         string // prefix#nsp#
	responseChannel string // prefix#nsp#uid#
	mode            SubscriptionMode

	reqs *requests

	roomsMu sync.Mutex
	rooms   map[string]struct{} // rooms with a channel subscription
	closed  bool
}

var (
	_ socketio.Adapter        = (*shardedAdapter)(nil)
	_ socketio.RoomObserver   = (*shardedAdapter)(nil)
	_ socketio.SocketObserver = (*shardedAdapter)(nil)
)

func newSharded(c *Cluster, nsp *socketio.Namespace) *shardedAdapter {
	a := &shardedAdapter{
		c: c, nsp: nsp, uid: rediswire.RandomHex(8), mode: c.cfg.SubscriptionMode,
		reqs: newRequests(), rooms: make(map[string]struct{}),
	}
	a.channel = c.cfg.KeyPrefix + "#" + nsp.Name() + "#"
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
	want := a.nsp.RoomSize(room) > 0
	if a.mode == Dynamic {
		if _, isSocket := a.nsp.Socket(room); isSocket {
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

// publishMessage publishes a ClusterMessage: JSON, or msgpack when it
// carries binary (as Node decides with hasBinary).
func (a *shardedAdapter) publishMessage(ctx context.Context, channel string, typ int, data []byte, atts [][]byte) error {
	js := rediswire.AppendClusterMessage(make([]byte, 0, len(data)+64), typ, data, a.uid, a.nsp.Name())
	msg, err := rediswire.EncodeMessage(js, atts, false)
	if err != nil {
		return fmt.Errorf("redisadapter: encoding message: %w", err)
	}
	return a.c.publish(ctx, channel, msg)
}

func (a *shardedAdapter) publishResponse(requester string, typ int, data []byte, atts [][]byte) {
	err := a.publishMessage(context.Background(), a.channel+requester+"#", typ, data, atts)
	if err != nil && !errors.Is(err, ErrClosed) {
		a.c.log.l.Debug("redisadapter: cannot publish a response", "err", err)
	}
}

// Broadcast delivers p locally, then publishes it once.
func (a *shardedAdapter) Broadcast(ctx context.Context, p *socketio.Packet, opts *socketio.BroadcastOptions) error {
	a.nsp.LocalBroadcast(p, opts)
	if opts.Flags.Local {
		return nil
	}
	rooms := uniq(opts.Rooms)
	data := rediswire.AppendBroadcastData(make([]byte, 0, len(p.Data)+96), p.Data, "", rooms, uniq(opts.Except), wireFlags(opts.Flags))
	return a.publishMessage(ctx, a.computeChannel(rooms, false), rediswire.MsgBroadcast, data, p.Attachments)
}

// BroadcastWithAck delivers p locally asking for acknowledgements and
// publishes it with a request id on the namespace channel.
func (a *shardedAdapter) BroadcastWithAck(ctx context.Context, p *socketio.Packet, opts *socketio.BroadcastOptions, clients func(int), ack func(socketio.Args)) error {
	clients(a.nsp.LocalBroadcastWithAck(p, opts, ack))
	if opts.Flags.Local {
		return nil
	}
	id := rediswire.RandomHex(8)
	timeout := opts.Flags.Timeout
	if timeout <= 0 {
		timeout = defaultAckTimeout
	}
	f := wireFlags(opts.Flags)
	f.Timeout = timeout
	data := rediswire.AppendBroadcastData(nil, p.Data, id, uniq(opts.Rooms), uniq(opts.Except), f)
	a.reqs.addAck(id, clients, ack, timeout)
	if err := a.publishMessage(ctx, a.channel, rediswire.MsgBroadcast, data, p.Attachments); err != nil {
		a.reqs.dropAck(id)
		return err
	}
	return nil
}

func (a *shardedAdapter) optsData(opts *socketio.BroadcastOptions, rest func([]byte) []byte) []byte {
	data := append([]byte(nil), `{"opts":`...)
	data = rediswire.AppendOptsJSON(data, uniq(opts.Rooms), uniq(opts.Except), &rediswire.Flags{})
	data = rest(data)
	return append(data, '}')
}

// AddSockets applies socketsJoin locally and publishes it.
func (a *shardedAdapter) AddSockets(ctx context.Context, opts *socketio.BroadcastOptions, rooms []string) error {
	a.nsp.LocalAddSockets(opts, rooms)
	if opts.Flags.Local {
		return nil
	}
	data := a.optsData(opts, func(b []byte) []byte { return rediswire.AppendStringsJSON(append(b, `,"rooms":`...), rooms) })
	return a.publishMessage(ctx, a.channel, rediswire.MsgSocketsJoin, data, nil)
}

// DelSockets applies socketsLeave locally and publishes it.
func (a *shardedAdapter) DelSockets(ctx context.Context, opts *socketio.BroadcastOptions, rooms []string) error {
	a.nsp.LocalDelSockets(opts, rooms)
	if opts.Flags.Local {
		return nil
	}
	data := a.optsData(opts, func(b []byte) []byte { return rediswire.AppendStringsJSON(append(b, `,"rooms":`...), rooms) })
	return a.publishMessage(ctx, a.channel, rediswire.MsgSocketsLeave, data, nil)
}

// DisconnectSockets applies disconnectSockets locally and publishes it.
func (a *shardedAdapter) DisconnectSockets(ctx context.Context, opts *socketio.BroadcastOptions, close bool) error {
	a.nsp.LocalDisconnectSockets(opts, close)
	if opts.Flags.Local {
		return nil
	}
	data := a.optsData(opts, func(b []byte) []byte { return strconv.AppendBool(append(b, `,"close":`...), close) })
	return a.publishMessage(ctx, a.channel, rediswire.MsgDisconnectSockets, data, nil)
}

// FetchSockets returns the local sockets and those of every other server,
// waiting for SHARDNUMSUB − 1 answers. On error it returns what it has.
func (a *shardedAdapter) FetchSockets(ctx context.Context, opts *socketio.BroadcastOptions) ([]*socketio.RemoteSocket, error) {
	local := a.nsp.LocalFetchSockets(opts)
	if opts.Flags.Local {
		return local, nil
	}
	n, err := a.ServerCount(ctx)
	if err != nil {
		return local, err
	}
	if n-1 <= 0 {
		return local, nil
	}
	id := rediswire.RandomHex(8)
	p := &pending{kind: rediswire.MsgFetchSockets, expected: n - 1, sockets: local}
	a.reqs.add(id, p)
	data := a.optsData(opts, func(b []byte) []byte {
		return rediswire.AppendJSONString(append(b, `,"requestId":`...), []byte(id))
	})
	if err := a.publishMessage(ctx, a.channel, rediswire.MsgFetchSockets, data, nil); err != nil {
		a.reqs.forget(id)
		return local, err
	}
	err = a.reqs.wait(ctx, id, p, a.c.cfg.RequestsTimeout, "fetchSockets")
	return p.sockets, err
}

// AllRooms: the sharded protocol has no request for the rooms of other
// servers (Node's ClusterAdapter does not implement allRooms), so only the
// local rooms are returned, with an error wrapping errors.ErrUnsupported.
func (a *shardedAdapter) AllRooms(context.Context) ([]string, error) {
	return a.nsp.LocalRooms(), fmt.Errorf("redisadapter: allRooms across servers in sharded mode: %w", errors.ErrUnsupported)
}

// ServerSideEmit sends an event to the other servers' namespace.
func (a *shardedAdapter) ServerSideEmit(ctx context.Context, p *socketio.Packet) error {
	data := append(append([]byte(`{"packet":`), p.Data...), '}')
	return a.publishMessage(ctx, a.channel, rediswire.MsgServerSideEmit, data, p.Attachments)
}

// ServerSideEmitWithAck sends an event to the other servers and waits for
// one answer from each.
func (a *shardedAdapter) ServerSideEmitWithAck(ctx context.Context, p *socketio.Packet) ([]socketio.Args, error) {
	n, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n-1 <= 0 {
		return nil, nil
	}
	id := rediswire.RandomHex(8)
	pr := &pending{kind: rediswire.MsgServerSideEmit, expected: n - 1}
	a.reqs.add(id, pr)
	data := []byte(`{"requestId":`)
	data = rediswire.AppendJSONString(data, []byte(id))
	data = append(append(append(data, `,"packet":`...), p.Data...), '}')
	if err := a.publishMessage(ctx, a.channel, rediswire.MsgServerSideEmit, data, p.Attachments); err != nil {
		a.reqs.forget(id)
		return nil, err
	}
	err = a.reqs.wait(ctx, id, pr, a.c.cfg.RequestsTimeout, "serverSideEmit")
	return pr.answers, err
}

// ServerCount is the number of subscribers of the namespace channel
// (PUBSUB SHARDNUMSUB), one per server.
func (a *shardedAdapter) ServerCount(ctx context.Context) (int, error) {
	return a.c.numSub(ctx, a.channel)
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

// ---------------------------------------------------------------------------
// Receiving

// onMessage handles a message of any of the namespace's channels.
func (a *shardedAdapter) onMessage(channel string, payload []byte) {
	js, atts, err := rediswire.DecodeMessage(payload)
	var (
		m rediswire.ClusterMessage
		d rediswire.ClusterData
	)
	if err == nil {
		m, d, err = rediswire.DecodeCluster(js)
	}
	if err != nil {
		a.c.stats.decodeErrors.Add(1)
		a.c.log.decodeError(channel, err)
		return
	}
	if m.UID == a.uid || m.Nsp != a.nsp.Name() {
		return
	}
	switch m.Type {
	case rediswire.MsgBroadcast:
		data, ok := rediswire.PacketData(d.Packet)
		if !ok {
			return
		}
		p := &socketio.Packet{Data: data, Attachments: atts}
		opts := localOpts(d.Opts)
		if d.RequestID == nil {
			opts.Flags.Timeout = 0
			a.nsp.LocalBroadcast(p, opts)
			return
		}
		id, requester := *d.RequestID, m.UID
		n := a.nsp.LocalBroadcastWithAck(p, opts, func(args socketio.Args) {
			v, vatts := ackArg(args)
			data := rediswire.AppendJSONString([]byte(`{"requestId":`), []byte(id))
			if v != nil {
				data = append(append(data, `,"packet":`...), v...)
			}
			a.publishResponse(requester, rediswire.MsgBroadcastAck, append(data, '}'), vatts)
		})
		resp := rediswire.AppendJSONString([]byte(`{"requestId":`), []byte(id))
		resp = strconv.AppendInt(append(resp, `,"clientCount":`...), int64(n), 10)
		a.publishResponse(requester, rediswire.MsgBroadcastClientCount, append(resp, '}'), nil)

	case rediswire.MsgSocketsJoin:
		a.nsp.LocalAddSockets(localOpts(d.Opts), d.Rooms)
	case rediswire.MsgSocketsLeave:
		a.nsp.LocalDelSockets(localOpts(d.Opts), d.Rooms)
	case rediswire.MsgDisconnectSockets:
		a.nsp.LocalDisconnectSockets(localOpts(d.Opts), d.Close)

	case rediswire.MsgFetchSockets:
		if d.RequestID == nil {
			return
		}
		data := rediswire.AppendJSONString([]byte(`{"requestId":`), []byte(*d.RequestID))
		data = append(append(data, `,"sockets":`...), socketsJSON(a.nsp.LocalFetchSockets(localOpts(d.Opts)))...)
		a.publishResponse(m.UID, rediswire.MsgFetchSocketsResponse, append(data, '}'), nil)

	case rediswire.MsgServerSideEmit:
		if len(d.Packet) == 0 || d.Packet[0] != '[' {
			return
		}
		p := &socketio.Packet{Data: d.Packet, Attachments: atts}
		if d.RequestID == nil {
			a.nsp.HandleServerSideEmit(p, nil)
			return
		}
		id, requester := *d.RequestID, m.UID
		var once sync.Once
		a.nsp.HandleServerSideEmit(p, func(args ...any) {
			once.Do(func() {
				v, vatts, err := firstArg(args)
				if err != nil {
					a.c.log.l.Warn("redisadapter: cannot encode a serverSideEmit answer", "err", err)
					return
				}
				data := rediswire.AppendJSONString([]byte(`{"requestId":`), []byte(id))
				if v != nil {
					data = append(append(data, `,"packet":`...), v...)
				}
				a.publishResponse(requester, rediswire.MsgServerSideEmitResponse, append(data, '}'), vatts)
			})
		})

	case rediswire.MsgBroadcastClientCount, rediswire.MsgBroadcastAck,
		rediswire.MsgFetchSocketsResponse, rediswire.MsgServerSideEmitResponse:
		a.onResponse(m.Type, &d, atts)
	}
}

func (a *shardedAdapter) onResponse(typ int, d *rediswire.ClusterData, atts [][]byte) {
	if d.RequestID == nil {
		return
	}
	id := *d.RequestID
	switch typ {
	case rediswire.MsgBroadcastClientCount:
		if ack := a.reqs.ack(id); ack != nil && d.ClientCount != nil {
			ack.clients(*d.ClientCount)
		}
	case rediswire.MsgBroadcastAck:
		if ack := a.reqs.ack(id); ack != nil {
			ack.ack(argsOf(d.Packet, atts))
		}
	case rediswire.MsgFetchSocketsResponse:
		a.reqs.answer(id, func(p *pending) {
			p.got++
			if list, ok := parseSockets(a.nsp, d.Sockets, atts); ok {
				p.sockets = append(p.sockets, list...)
			}
		})
	case rediswire.MsgServerSideEmitResponse:
		a.reqs.answer(id, func(p *pending) {
			p.got++
			p.answers = append(p.answers, argsOf(d.Packet, atts))
		})
	}
}
