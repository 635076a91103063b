package redisadapter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

	// head is the latest logged broadcast delivered here (see
	// streamLog.Head).
	head streamHead

	// appends numbers this adapter's appends (see appendKey).
	appends atomic.Uint64

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

// appendTries is how many Config.PublishTimeout an append is tried for
// (each attempt bounded by one, all by the caller's context): a busy Redis
// (or a busy process) answers late, and the next attempt finds out whether
// the previous one landed.
const appendTries = 5

// appendScript appends an entry to the namespace stream as Node's adapter
// does (XADD … MAXLEN ~), at most once per key: KEYS[1] is the stream,
// KEYS[2] the append's key, holding the id it was given (then, after a
// space, ARGV[7], the append's tag, when not empty: see socketio.Once);
// ARGV[1..5] the MAXLEN, uid, nsp, type and data, ARGV[6] how long the key
// is kept (ms). An attempt whose answer was lost (a timeout: the command
// may have run, or have been dropped with its connection) is repeated with
// the same key and answers the first one's id (and tag) instead of
// appending again.
var appendScript = rueidis.NewLuaScript(`
local v = redis.call('GET', KEYS[2])
if v then return v end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'uid', ARGV[2], 'nsp', ARGV[3], 'type', ARGV[4], 'data', ARGV[5])
v = id
if ARGV[7] ~= '' then v = id .. ' ' .. ARGV[7] end
redis.call('SET', KEYS[2], v, 'PX', ARGV[6])
return v
`)

// appendKey returns the key of an append: by default one of its own for
// the next append of this adapter, so that only this call's attempts
// share it; with a socketio.Once, the caller's, so that its repetitions,
// on any server, share it too. Both are prefixed with the stream's name,
// so that the script's keys hash to the stream's slot in Redis Cluster
// as they do when the stream's name has a hash tag.
func (a *streamsAdapter) appendKey(once *socketio.Once) string {
	if once != nil {
		return a.stream + "#once#" + once.Key
	}
	return a.stream + "#append#" + a.uid + "#" + strconv.FormatUint(a.appends.Add(1), 36)
}

// add appends a message to the namespace's stream (and to the history
// streams sinks) and returns its id. Every attempt runs a script that
// appends at most once per key (appendScript, addScript), so that an
// attempt whose answer did not come in time (Redis executes a command it
// got late, or drops it with a connection closed on the timeout) is
// repeated safely: the repetition answers the id of the entry if the first
// landed. When the last attempt got no answer, the error wraps
// ErrOutcomeUnknown: the entry may still land (and be delivered here by
// the reader) or not. With once, the attempts of earlier calls with the
// same key count as this call's (see socketio.Once), and once.Tag is set
// to the tag of the append that landed.
func (a *streamsAdapter) add(ctx context.Context, typ int, js []byte, atts [][]byte, once *socketio.Once, sinks ...historySink) (rediswire.StreamID, error) {
	data, err := rediswire.EncodeStreamData(js, atts)
	if err != nil {
		return rediswire.StreamID{}, fmt.Errorf("redisadapter: encoding a stream entry: %w", err)
	}
	cl, err := a.c.redis()
	if err != nil {
		a.c.stats.publishErrors.Add(1)
		return rediswire.StreamID{}, err
	}
	key := a.appendKey(once)
	// The key outlives this call's attempts, whose last may land late.
	keep, tag := appendTries*a.c.cfg.PublishTimeout+time.Minute, ""
	if once != nil {
		keep, tag = max(keep, once.Keep), once.Tag
	}
	keepMS := strconv.FormatInt(keep.Milliseconds(), 10)
	do := func() (string, error) {
		actx, cancel := context.WithTimeout(ctx, a.c.cfg.PublishTimeout)
		defer cancel()
		if len(sinks) > 0 {
			return a.addWithHistory(actx, cl, typ, data, key, keepMS, tag, sinks)
		}
		return appendScript.Exec(actx, cl, []string{a.stream, key},
			[]string{a.c.maxLen, a.uid, a.host.Name(), typeString(typ), rueidis.BinaryString(data), keepMS, tag}).ToString()
	}
	// Tried until answered, for appendTries timeouts' worth of time; a
	// failure faster than that (a dead connection found on use) at most
	// maxConnRetries times more; never after a connection refused: Redis
	// is down, and an entry appended before is in a Redis no reader can
	// read either.
	var s string
	budget := time.Now().Add(appendTries * a.c.cfg.PublishTimeout)
	for fast := 0; ; {
		began := time.Now()
		if s, err = do(); err == nil || !again(ctx, err) || neverSent(err) {
			break
		}
		if time.Since(began) < a.c.cfg.PublishTimeout/2 && !errors.Is(err, context.DeadlineExceeded) {
			fast++
		}
		if fast > maxConnRetries || time.Now().After(budget) {
			break
		}
		if time.Since(began) < a.c.cfg.PublishTimeout/2 {
			time.Sleep(a.c.cfg.PublishTimeout / 20) // not in a tight loop
		}
	}
	if err != nil {
		a.c.stats.publishErrors.Add(1)
		a.c.pubErr.Store(&errBox{err})
		if !neverSent(err) && !isRedisReply(err) {
			// No answer: it may have been appended.
			return rediswire.StreamID{}, fmt.Errorf("%w: xadd: %v", ErrOutcomeUnknown, err)
		}
		return rediswire.StreamID{}, fmt.Errorf("%w: xadd: %v", ErrUnavailable, err)
	}
	s, first, _ := strings.Cut(s, " ")
	if once != nil && first != "" {
		once.Tag = first
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

// again says whether an append that failed with err is tried again: not
// after an answer from Redis (an error reply: nothing was appended), nor
// once the caller gave up or the client closed.
func again(ctx context.Context, err error) bool {
	return !isRedisReply(err) && ctx.Err() == nil && !errors.Is(err, rueidis.ErrClosing)
}

func isRedisReply(err error) bool {
	_, ok := rueidis.IsRedisErr(err)
	return ok
}

// neverSent says whether a failed command cannot have reached Redis: the
// connection could not be made.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
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
// ErrUnavailable; except when Redis may have appended it without its
// answer reaching us (ErrOutcomeUnknown): the reader then delivers it here
// as everywhere if it landed.
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
	id, err := a.add(ctx, rediswire.MsgBroadcast, data, p.Attachments, opts.Once, a.sinks(opts)...)
	if errors.Is(err, ErrOutcomeUnknown) {
		// It may yet land, and the reader deliver it here: delivered now as
		// well, the local sockets would get it twice.
		return "", err
	}
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
	_, err := a.add(ctx, rediswire.MsgSocketsJoin, roomsData(opts, rooms), nil, nil)
	return err
}

// DelSockets applies socketsLeave locally and appends it to the stream.
func (a *streamsAdapter) DelSockets(ctx context.Context, opts *socketio.BroadcastOptions, rooms []string) error {
	a.host.DelSockets(opts, rooms)
	_, err := a.add(ctx, rediswire.MsgSocketsLeave, roomsData(opts, rooms), nil, nil)
	return err
}

// DisconnectSockets applies disconnectSockets locally and appends it to
// the stream.
func (a *streamsAdapter) DisconnectSockets(ctx context.Context, opts *socketio.BroadcastOptions, close bool) error {
	a.host.DisconnectSockets(opts, close)
	_, err := a.add(ctx, rediswire.MsgDisconnectSockets, closeData(opts, close), nil, nil)
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
	if p.Offset == "" {
		a.host.Broadcast(p, opts)
		return
	}
	a.head.mu.Lock()
	defer a.head.mu.Unlock()
	a.host.Broadcast(p, opts)
	a.head.offset, a.head.pos = p.Offset, logPosition(id)
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
