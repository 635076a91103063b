package redisadapter

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
)

// streamsAdapter is the adapter of one namespace in streams mode,
// wire-compatible with @socket.io/redis-streams-adapter 0.3.1 (protocol
// notes §5.5): broadcasts and room operations are entries of a Redis
// stream, requests and their answers travel over Pub/Sub as msgpack
// ClusterMessages (clusterProto), and sessions are kept in Redis, so that
// connection state recovery works across servers and restarts.
//
// A broadcast is appended to the stream (XADD MAXLEN ~) and delivered to
// this server's sockets by the stream's reader, like everyone else's, in
// stream order; Broadcast returns once that local delivery is done. Each
// delivered packet carries its entry id as its offset. Room operations
// (socketsJoin, socketsLeave, disconnectSockets) are applied here at once
// and appended for the other servers, as Node does.
//
// Sessions differ from Node's in one respect: a restored session is read
// (GET), not taken (GETDEL), and stays until it expires, so that a client
// whose recovered connection drops again, even unseen, recovers again.
// They are also kept while their socket is connected (socketio's
// SessionKeeper), so that the clients of a server that dies recover
// elsewhere.
type streamsAdapter struct {
	*clusterProto

	// Static after construction.
	channel         string // prefix#nsp#: requests and broadcasts with ack
	responseChannel string // prefix#nsp#uid#
	stream          string
	reader          *streamReader
	recovery        bool           // the server has recovery: offsets are appended
	window          time.Duration  // its MaxDisconnectionDuration: how long a session is kept
	history         *streamHistory // room histories; nil: the namespace stream is the log

	// fenced are the sockets excluded from deliveries while a stream gap
	// disconnects them (see streamReader.gap).
	fenced fence

	// persist stores the sessions of disconnected sockets (see persister).
	persist *persister

	// recent serves replays from memory (see recentLog); nil without
	// recovery, or with room histories (a.history), whose replays read
	// only the rooms' own streams.
	recent *recentLog

	closeOnce sync.Once
}

var (
	_ socketio.Adapter             = (*streamsAdapter)(nil)
	_ socketio.RecoveryLogProvider = (*streamsAdapter)(nil)
	_ socketio.LoggedBroadcaster   = (*streamsAdapter)(nil)
)

func newStreams(c *Cluster, host socketio.AdapterHost) *streamsAdapter {
	a := &streamsAdapter{}
	a.clusterProto = newClusterProto(c, host, a)
	a.channel = c.cfg.KeyPrefix + "#" + host.Name() + "#"
	a.responseChannel = a.channel + a.uid + "#"
	a.stream = rediswire.StreamName(c.cfg.StreamName, c.cfg.StreamCount, host.Name())
	if r, ok := host.Namespace().Server().Recovery(); ok {
		a.recovery, a.window = true, r.MaxDisconnectionDuration
		if r.HistoryRooms != nil {
			size, ttl := r.HistoryBounds()
			a.history = &streamHistory{room: r.HistoryRooms, size: int64(size), ttl: ttl, window: r.MaxDisconnectionDuration,
				base: c.cfg.StreamName + "#history#" + host.Name()}
			if a.history.window <= 0 {
				a.history.window = 2 * time.Minute
			}
		}
	}
	if a.recovery && a.history == nil {
		a.recent = newRecentLog(int(c.cfg.MaxLen), recentMaxBytes)
	}
	a.persist = newPersister(a, c.cfg.SessionQueueSize)
	a.reader = c.streamReader(a.stream)
	a.reader.register(a)
	c.subscribe(kindChannel, a.channel, a.onMessage)
	c.subscribe(kindChannel, a.responseChannel, a.onMessage)
	return a
}

// ---------------------------------------------------------------------------
// Pub/Sub: ephemeral messages, always msgpack (as Node encodes them)

func (a *streamsAdapter) publish(ctx context.Context, typ int, data []byte, atts [][]byte) error {
	msg, err := a.encodeMessage(typ, data, atts, true)
	if err != nil {
		return err
	}
	return a.c.publish(ctx, a.channel, msg)
}

func (a *streamsAdapter) respond(requester string, typ int, data []byte, atts [][]byte) {
	msg, err := a.encodeMessage(typ, data, atts, true)
	if err == nil {
		err = a.c.publish(context.Background(), a.channel+requester+"#", msg)
	}
	a.logPublishError(err)
}

// serverCount is the number of subscribers of the namespace channel
// (PUBSUB NUMSUB), one per server.
func (a *streamsAdapter) serverCount(ctx context.Context) (int, error) {
	return a.c.numSub(ctx, a.channel)
}

// ---------------------------------------------------------------------------
// The stream: persistent messages

// add appends a message to the namespace's stream (and to the history
// streams sinks) and returns its id.
func (a *streamsAdapter) add(ctx context.Context, typ int, js []byte, atts [][]byte, sinks ...historySink) (rediswire.StreamID, error) {
	data, err := rediswire.EncodeStreamData(js, atts)
	if err != nil {
		return rediswire.StreamID{}, fmt.Errorf("redisadapter: encoding a stream entry: %w", err)
	}
	cl, err := a.c.redis()
	if err != nil {
		a.c.stats.publishErrors.Add(1)
		return rediswire.StreamID{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.c.cfg.PublishTimeout)
	defer cancel()
	build := func() rueidis.Completed {
		return cl.B().Xadd().Key(a.stream).Maxlen().Almost().Threshold(a.c.maxLen).Id("*").FieldValue().
			FieldValue("uid", a.uid).FieldValue("nsp", a.host.Name()).FieldValue("type", typeString(typ)).
			FieldValue("data", rueidis.BinaryString(data)).Build()
	}
	do := func() (string, error) {
		if len(sinks) > 0 {
			return a.addWithHistory(ctx, cl, typ, data, sinks)
		}
		return cl.Do(ctx, build()).ToString()
	}
	s, err := do()
	for i := 0; i < maxConnRetries && err != nil && retryable(ctx, err); i++ {
		// See publishCount: a dead pipelined connection is found on use,
		// before Redis saw the command.
		s, err = do()
	}
	if err != nil {
		a.c.stats.publishErrors.Add(1)
		a.c.pubErr.Store(&errBox{err})
		return rediswire.StreamID{}, fmt.Errorf("%w: xadd: %v", ErrUnavailable, err)
	}
	id, ok := rediswire.ParseStreamID(s)
	if !ok {
		return rediswire.StreamID{}, fmt.Errorf("%w: xadd answered id %q", ErrUnavailable, s)
	}
	a.c.stats.published.Add(1)
	if a.c.pubErr.Load() != nil {
		a.c.pubErr.Store(nil)
	}
	return id, nil
}

func typeString(t int) string {
	switch t {
	case rediswire.MsgBroadcast:
		return "3"
	case rediswire.MsgSocketsJoin:
		return "4"
	case rediswire.MsgSocketsLeave:
		return "5"
	case rediswire.MsgDisconnectSockets:
		return "6"
	}
	return fmt.Sprint(t)
}

// Broadcast appends the packet to the stream; the reader delivers it to the
// local sockets, in stream order, with its entry id as offset, and
// Broadcast returns once it has (or after Config.PublishTimeout, the
// delivery still to come). When the stream cannot be written, the local
// sockets get the packet at once, without an offset, and the error wraps
// ErrUnavailable.
func (a *streamsAdapter) Broadcast(ctx context.Context, p *socketio.Packet, opts *socketio.BroadcastOptions) error {
	_, err := a.broadcast(ctx, p, opts)
	return err
}

// BroadcastLogged implements socketio.LoggedBroadcaster: Broadcast,
// returning the entry id.
func (a *streamsAdapter) BroadcastLogged(ctx context.Context, p *socketio.Packet, opts *socketio.BroadcastOptions) (string, error) {
	return a.broadcast(ctx, p, opts)
}

// broadcast is Broadcast, returning the entry id ("" when the packet was
// not appended).
func (a *streamsAdapter) broadcast(ctx context.Context, p *socketio.Packet, opts *socketio.BroadcastOptions) (string, error) {
	// An entry added before the reader knows where the stream ends would
	// be taken for history and never delivered here.
	if !a.reader.isReady() {
		rctx, cancel := context.WithTimeout(ctx, a.c.cfg.PublishTimeout)
		err := a.reader.waitReady(rctx)
		cancel()
		if err != nil {
			a.host.Broadcast(p, opts)
			return "", err
		}
	}
	f := wireFlags(opts.Flags)
	f.Direct = opts.Direct
	data := rediswire.AppendBroadcastData(make([]byte, 0, len(p.Data)+96), p.Data, "", uniq(opts.Rooms), uniq(opts.Except), f)
	id, err := a.add(ctx, rediswire.MsgBroadcast, data, p.Attachments, a.sinks(opts)...)
	if err != nil {
		a.host.Broadcast(p, opts)
		return "", err
	}
	a.reader.waitFor(ctx, id, a.c.cfg.PublishTimeout)
	if !a.recovery || opts.Flags.Volatile {
		return "", nil
	}
	return id.String(), nil
}

// AddSockets applies socketsJoin locally and appends it to the stream.
func (a *streamsAdapter) AddSockets(ctx context.Context, opts *socketio.BroadcastOptions, rooms []string) error {
	a.host.AddSockets(opts, rooms)
	_, err := a.add(ctx, rediswire.MsgSocketsJoin, roomsData(opts, rooms), nil)
	return err
}

// DelSockets applies socketsLeave locally and appends it to the stream.
func (a *streamsAdapter) DelSockets(ctx context.Context, opts *socketio.BroadcastOptions, rooms []string) error {
	a.host.DelSockets(opts, rooms)
	_, err := a.add(ctx, rediswire.MsgSocketsLeave, roomsData(opts, rooms), nil)
	return err
}

// DisconnectSockets applies disconnectSockets locally and appends it to
// the stream.
func (a *streamsAdapter) DisconnectSockets(ctx context.Context, opts *socketio.BroadcastOptions, close bool) error {
	a.host.DisconnectSockets(opts, close)
	_, err := a.add(ctx, rediswire.MsgDisconnectSockets, closeData(opts, close), nil)
	return err
}

// onEntry handles an entry of the namespace, on the reader's goroutine.
func (a *streamsAdapter) onEntry(e rediswire.StreamEntry, id rediswire.StreamID) {
	switch e.Type {
	case rediswire.MsgSocketsJoin, rediswire.MsgSocketsLeave, rediswire.MsgDisconnectSockets:
		if e.UID == a.uid {
			return // applied when it was sent
		}
	case rediswire.MsgBroadcast:
	default:
		if e.UID == a.uid {
			return
		}
	}
	d, atts, err := decodeEntry(e)
	if err != nil {
		a.c.stats.decodeErrors.Add(1)
		a.c.log.decodeError(a.stream, err)
		return
	}
	switch {
	case e.Type == rediswire.MsgBroadcast && d.RequestID == nil:
		a.deliver(e.ID, id, &d, atts)
	case e.Type == rediswire.MsgBroadcast && e.UID == a.uid:
		// A broadcast with ack is not written to a stream; ours would have
		// been delivered when sent.
	case e.Type == rediswire.MsgDisconnectSockets:
		// Disconnect handlers may broadcast, which waits for this reader:
		// they run off its goroutine. What the stream delivered before is
		// already queued to the sockets.
		go a.handle(e.UID, e.Type, &d, atts)
	default:
		a.handle(e.UID, e.Type, &d, atts)
	}
}

// deliver delivers a broadcast entry to the local sockets, with its offset
// when the server has recovery and the packet is not volatile (as Node's
// addOffsetIfNecessary).
func (a *streamsAdapter) deliver(offset string, id rediswire.StreamID, d *rediswire.ClusterData, atts [][]byte) {
	data, ok := rediswire.PacketData(d.Packet)
	if !ok {
		a.c.stats.decodeErrors.Add(1)
		return
	}
	p := &socketio.Packet{Data: data, Attachments: atts}
	opts := localOpts(d.Opts)
	opts.Flags.Timeout = 0
	if d.Opts != nil && d.Opts.Flags != nil {
		opts.Direct = d.Opts.Flags.Direct
	}
	if a.recovery && !opts.Flags.Volatile {
		p = p.Logged(offset, logPosition(id), opts.Direct)
		// Before the live delivery: a recovery that does not find it in
		// the log is registered already and gets it live.
		if a.recent != nil {
			a.recent.add(id, p, d)
		}
	}
	if f := a.fenced.Load(); f != nil {
		opts.Except = append(slices.Clip(opts.Except), *f...)
	}
	a.host.Broadcast(p, opts)
}

// decodeEntry decodes the data of an entry.
func decodeEntry(e rediswire.StreamEntry) (rediswire.ClusterData, [][]byte, error) {
	if e.Data == nil {
		return rediswire.ClusterData{}, nil, nil
	}
	return rediswire.DecodeStreamMessage(e.Data)
}

// Close stops receiving for the namespace. The sessions still queued are
// stored all the same (see persister).
func (a *streamsAdapter) Close() error {
	a.closeOnce.Do(func() {
		a.reader.unregister(a)
		a.c.unsubscribe(kindChannel, a.channel)
		a.c.unsubscribe(kindChannel, a.responseChannel)
		a.reqs.close()
	})
	return nil
}
