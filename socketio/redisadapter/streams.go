package redisadapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
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

	// appends numbers this adapter's appends (see appendKey).
	appends atomic.Uint64

	closeOnce sync.Once
}

var (
	_ socketio.Adapter        = (*streamsAdapter)(nil)
	_ socketio.SessionKeeper  = (*streamsAdapter)(nil)
	_ socketio.SessionFlusher = (*streamsAdapter)(nil)
	_ socketio.HistoryLog     = (*streamsAdapter)(nil)
)

func newStreams(c *Cluster, nsp *socketio.Namespace) *streamsAdapter {
	a := &streamsAdapter{}
	a.clusterProto = newClusterProto(c, nsp, a)
	a.channel = c.cfg.KeyPrefix + "#" + nsp.Name() + "#"
	a.responseChannel = a.channel + a.uid + "#"
	a.stream = rediswire.StreamName(c.cfg.StreamName, c.cfg.StreamCount, nsp.Name())
	if r, ok := nsp.Server().Recovery(); ok {
		a.recovery, a.window = true, r.MaxDisconnectionDuration
		if r.HistoryRooms != nil {
			size, ttl := r.HistoryBounds()
			a.history = &streamHistory{room: r.HistoryRooms, size: int64(size), ttl: ttl, window: r.MaxDisconnectionDuration,
				base: c.cfg.StreamName + "#history#" + nsp.Name()}
			if a.history.window <= 0 {
				a.history.window = 2 * time.Minute
			}
		}
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
// KEYS[2] the append's key, holding the id it was given; ARGV[1..5] the
// MAXLEN, uid, nsp, type and data, ARGV[6] how long the key is kept (ms).
// An attempt whose answer was lost (a timeout: the command may have run,
// or have been dropped with its connection) is repeated with the same key
// and answers the first one's id instead of appending again.
var appendScript = rueidis.NewLuaScript(`
local id = redis.call('GET', KEYS[2])
if id then return id end
id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'uid', ARGV[2], 'nsp', ARGV[3], 'type', ARGV[4], 'data', ARGV[5])
redis.call('SET', KEYS[2], id, 'PX', ARGV[6])
return id
`)

// appendKey returns a key of its own for the next append of this adapter.
func (a *streamsAdapter) appendKey() string {
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
// the reader) or not.
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
	key := a.appendKey()
	keep := strconv.FormatInt((appendTries*a.c.cfg.PublishTimeout + time.Minute).Milliseconds(), 10)
	do := func() (string, error) {
		actx, cancel := context.WithTimeout(ctx, a.c.cfg.PublishTimeout)
		defer cancel()
		if len(sinks) > 0 {
			return a.addWithHistory(actx, cl, typ, data, key, keep, sinks)
		}
		return appendScript.Exec(actx, cl, []string{a.stream, key},
			[]string{a.c.maxLen, a.uid, a.nsp.Name(), typeString(typ), rueidis.BinaryString(data), keep}).ToString()
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

// broadcast is Broadcast, returning the entry id ("" when the packet was
// not appended).
func (a *streamsAdapter) broadcast(ctx context.Context, p *socketio.Packet, opts *socketio.BroadcastOptions) (string, error) {
	if opts.Flags.Local {
		a.nsp.LocalBroadcast(p, opts)
		return "", nil
	}
	// An entry added before the reader knows where the stream ends would
	// be taken for history and never delivered here.
	if !a.reader.isReady() {
		rctx, cancel := context.WithTimeout(ctx, a.c.cfg.PublishTimeout)
		err := a.reader.waitReady(rctx)
		cancel()
		if err != nil {
			a.nsp.LocalBroadcast(p, opts)
			return "", err
		}
	}
	f := wireFlags(opts.Flags)
	f.Direct = opts.Direct
	data := rediswire.AppendBroadcastData(make([]byte, 0, len(p.Data)+96), p.Data, "", uniq(opts.Rooms), uniq(opts.Except), f)
	id, err := a.add(ctx, rediswire.MsgBroadcast, data, p.Attachments, a.sinks(opts)...)
	if errors.Is(err, ErrOutcomeUnknown) {
		// It may yet land, and the reader deliver it here: delivered now as
		// well, the local sockets would get it twice.
		return "", err
	}
	if err != nil {
		a.nsp.LocalBroadcast(p, opts)
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
	a.nsp.LocalAddSockets(opts, rooms)
	if opts.Flags.Local {
		return nil
	}
	_, err := a.add(ctx, rediswire.MsgSocketsJoin, roomsData(opts, rooms), nil)
	return err
}

// DelSockets applies socketsLeave locally and appends it to the stream.
func (a *streamsAdapter) DelSockets(ctx context.Context, opts *socketio.BroadcastOptions, rooms []string) error {
	a.nsp.LocalDelSockets(opts, rooms)
	if opts.Flags.Local {
		return nil
	}
	_, err := a.add(ctx, rediswire.MsgSocketsLeave, roomsData(opts, rooms), nil)
	return err
}

// DisconnectSockets applies disconnectSockets locally and appends it to
// the stream.
func (a *streamsAdapter) DisconnectSockets(ctx context.Context, opts *socketio.BroadcastOptions, close bool) error {
	a.nsp.LocalDisconnectSockets(opts, close)
	if opts.Flags.Local {
		return nil
	}
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
	}
	if f := a.fenced.Load(); f != nil {
		opts.Except = append(slices.Clip(opts.Except), *f...)
	}
	a.nsp.LocalBroadcast(p, opts)
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

// ---------------------------------------------------------------------------
// Sessions and recovery

func (a *streamsAdapter) sessionKey(pid string) string { return a.c.cfg.SessionKeyPrefix + pid }

// encodeSession renders a session as Node stores it; its data as JSON (as
// fetchSockets renders it: nil is {}, Node's default).
func encodeSession(s *socketio.SessionState) (string, error) {
	return rediswire.EncodeSession(s.SID, s.PID, s.Rooms, socketData(s.Data))
}

// PersistSession stores the session of a socket that disconnected, for
// the recovery window (SET PX), as Node does. It only queues the session:
// it is called on the engine's heartbeat goroutine, which must not wait on
// Redis (see persister).
func (a *streamsAdapter) PersistSession(s *socketio.SessionState) {
	if a.recovery {
		a.persist.add(s)
	}
}

// FlushSessions waits until the sessions queued by PersistSession are
// stored, or ctx ends (those left are then dropped and counted).
func (a *streamsAdapter) FlushSessions(ctx context.Context) error {
	return a.persist.flush(ctx)
}

// KeepSessions stores sessions, each for ttl, in one round trip.
func (a *streamsAdapter) KeepSessions(sessions []*socketio.SessionState, ttl time.Duration) {
	a.keepSessions(context.Background(), sessions, ttl)
}

// keepSessions is KeepSessions, abandoned when ctx ends.
func (a *streamsAdapter) keepSessions(ctx context.Context, sessions []*socketio.SessionState, ttl time.Duration) {
	if !a.recovery || len(sessions) == 0 {
		return
	}
	cl, err := a.c.redis()
	if err != nil {
		a.sessionError("store", err)
		return
	}
	cmds := make(rueidis.Commands, 0, len(sessions))
	for _, s := range sessions {
		v, err := encodeSession(s)
		if err != nil {
			a.sessionError("encode", err)
			continue
		}
		cmds = append(cmds, cl.B().Set().Key(a.sessionKey(s.PID)).Value(v).PxMilliseconds(max(ttl.Milliseconds(), 1)).Build())
	}
	ctx, cancel := context.WithTimeout(ctx, a.c.cfg.PublishTimeout)
	defer cancel()
	for _, r := range cl.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			a.sessionError("store", err)
			return
		}
	}
}

// DropSessions deletes the sessions of sockets that ended for good.
func (a *streamsAdapter) DropSessions(pids []string) {
	cl, err := a.c.redis()
	if err != nil {
		a.sessionError("drop", err)
		return
	}
	keys := make([]string, len(pids))
	for i, pid := range pids {
		keys[i] = a.sessionKey(pid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.c.cfg.PublishTimeout)
	defer cancel()
	if err := cl.Do(ctx, cl.B().Del().Key(keys...).Build()).Error(); err != nil {
		a.sessionError("drop", err)
	}
}

func (a *streamsAdapter) sessionError(op string, err error) {
	a.c.stats.sessionErrors.Add(1)
	a.c.log.l.Warn("redisadapter: session "+op+" failed; the client may not recover", "namespace", a.nsp.Name(), "err", err)
}

// RestoreSession reads a session (GET, kept until it expires) and checks
// that offset is still in the stream (the replay must start right after
// it), in one round trip. A session that cannot be read is not restored:
// the client connects as a new socket.
func (a *streamsAdapter) RestoreSession(pid, offset string) (*socketio.SessionState, bool) {
	if !a.recovery {
		return nil, false
	}
	if _, ok := rediswire.ParseStreamID(offset); !ok {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.c.cfg.RequestsTimeout)
	defer cancel()
	// Until the reader knows where it starts, it may skip what the replay
	// does not read.
	if err := a.reader.waitReady(ctx); err != nil {
		a.recoveryFailed(err)
		return nil, false
	}
	cl, err := a.c.redis()
	if err != nil {
		a.recoveryFailed(err)
		return nil, false
	}
	if a.history != nil {
		return a.restoreWithHistory(ctx, cl, pid, offset)
	}
	res := cl.DoMulti(ctx,
		cl.B().Get().Key(a.sessionKey(pid)).Build(),
		cl.B().Xrange().Key(a.stream).Start(offset).End(offset).Build())
	raw, err := res[0].ToString()
	if rueidis.IsRedisNil(err) {
		return nil, false // expired, or never stored
	}
	if err != nil {
		a.recoveryFailed(err)
		return nil, false
	}
	at, err := res[1].ToArray()
	if err != nil {
		a.recoveryFailed(err)
		return nil, false
	}
	if len(at) == 0 {
		return nil, false // trimmed, or from another stream
	}
	return a.decodeSession(pid, raw)
}

// restoreWithHistory reads a session, then checks that the history
// streams of its rooms still hold everything after offset.
func (a *streamsAdapter) restoreWithHistory(ctx context.Context, cl rueidis.Client, pid, offset string) (*socketio.SessionState, bool) {
	raw, err := cl.Do(ctx, cl.B().Get().Key(a.sessionKey(pid)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return nil, false
	}
	if err != nil {
		a.recoveryFailed(err)
		return nil, false
	}
	st, ok := a.decodeSession(pid, raw)
	if !ok {
		return nil, false
	}
	from, _ := rediswire.ParseStreamID(offset)
	if _, _, _, err := a.readHistory(ctx, from, true, a.history.sources(st.Rooms, true), 1); err != nil {
		if !errors.Is(err, socketio.ErrHistoryGap) {
			a.recoveryFailed(err)
		}
		return nil, false
	}
	return st, true
}

// decodeSession decodes a stored session.
func (a *streamsAdapter) decodeSession(pid, raw string) (*socketio.SessionState, bool) {
	sess, err := rediswire.DecodeSession(raw)
	if err == nil && sess.PID != pid {
		err = fmt.Errorf("%w: the session under %s names pid %q", rediswire.ErrMalformed, a.sessionKey(pid), sess.PID)
	}
	if err != nil {
		a.c.stats.decodeErrors.Add(1)
		a.c.log.decodeError(a.sessionKey(pid), err)
		return nil, false
	}
	var data any
	if string(sess.Data) != "null" {
		data = json.RawMessage(sess.Data)
	}
	return &socketio.SessionState{SID: sess.SID, PID: sess.PID, Rooms: sess.Rooms, Data: data}, true
}

func (a *streamsAdapter) recoveryFailed(err error) {
	a.c.stats.sessionErrors.Add(1)
	a.c.log.l.Warn("redisadapter: cannot recover a session; the client connects afresh", "namespace", a.nsp.Name(), "err", err)
}

// replayBatch is the COUNT of each XRANGE of a replay; maxReplayCalls
// bounds them (Node stops after 100 calls, silently; here a replay that
// cannot reach the end of the stream fails instead).
const (
	replayBatch    = 1000
	maxReplayCalls = 1000
)

// MissedPackets reads the stream from offset to its end (XRANGE in
// batches): the broadcasts of this namespace that a socket in rooms would
// have received, not volatile, each with its entry id as offset. The first
// entry read must be offset itself: if it was trimmed since
// RestoreSession, what follows it is not all there, and the recovery
// fails rather than replay part of it.
func (a *streamsAdapter) MissedPackets(offset string, rooms []string) ([]*socketio.Packet, socketio.LogPosition, bool) {
	from, ok := rediswire.ParseStreamID(offset)
	if !ok || !a.recovery {
		return nil, socketio.LogPosition{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.c.cfg.RequestsTimeout)
	defer cancel()
	if a.history != nil {
		return a.missedWithHistory(ctx, from, rooms)
	}
	cl, err := a.c.redis()
	if err != nil {
		a.recoveryFailed(err)
		return nil, socketio.LogPosition{}, false
	}
	var missed []*socketio.Packet
	// What this server's reader handled after the offset is in memory;
	// only what it has not read yet comes from Redis.
	start, first := offset, true
	if recent, last, ok := a.reader.since(from); ok {
		for i := range recent {
			if p := a.replayed(recent[i].e, recent[i].id, rooms); p != nil {
				missed = append(missed, p)
			}
		}
		start, first = "("+last.String(), false
	}
	for range maxReplayCalls {
		list, err := cl.Do(ctx, cl.B().Xrange().Key(a.stream).Start(start).End("+").Count(replayBatch).Build()).ToArray()
		if err != nil {
			a.recoveryFailed(err)
			return nil, socketio.LogPosition{}, false
		}
		var last rediswire.StreamID
		for i := range list {
			h, ok := a.entry(&list[i])
			if !ok {
				continue
			}
			e, id := h.e, h.id
			last = id
			if first && i == 0 {
				if id != from {
					return nil, socketio.LogPosition{}, false // offset trimmed meanwhile
				}
				continue
			}
			if p := a.replayed(e, id, rooms); p != nil {
				missed = append(missed, p)
			}
		}
		if first && len(list) == 0 {
			return nil, socketio.LogPosition{}, false
		}
		first = false
		if len(list) < replayBatch {
			return missed, logPosition(from), true
		}
		start = last.Next().String()
	}
	a.recoveryFailed(fmt.Errorf("stream %s: more than %d entries after offset %s", a.stream, maxReplayCalls*replayBatch, offset))
	return nil, socketio.LogPosition{}, false
}

// replayed returns the packet of an entry to replay to a socket in rooms,
// or nil (Node's shouldIncludePacket, without volatile packets, which are
// never replayed).
func (a *streamsAdapter) replayed(e rediswire.StreamEntry, id rediswire.StreamID, rooms []string) *socketio.Packet {
	if !e.HasNsp || e.Nsp != a.nsp.Name() || e.Type != rediswire.MsgBroadcast {
		return nil
	}
	d, atts, err := decodeEntry(e)
	if err != nil || d.RequestID != nil {
		return nil
	}
	data, ok := rediswire.PacketData(d.Packet)
	if !ok {
		return nil
	}
	var direct bool
	if d.Opts != nil {
		if d.Opts.Flags != nil {
			if d.Opts.Flags.Volatile {
				return nil
			}
			direct = d.Opts.Flags.Direct
		}
		if !includes(rooms, d.Opts.Rooms, d.Opts.Except) {
			return nil
		}
	}
	return (&socketio.Packet{Data: data, Attachments: atts}).Logged(e.ID, logPosition(id), direct)
}

// includes is Node's shouldIncludePacket: the session was in one of the
// target rooms (or all were targeted) and in none of the excluded ones.
func includes(sessionRooms, rooms, except []string) bool {
	included := len(rooms) == 0
	for _, r := range sessionRooms {
		if slices.Contains(except, r) {
			return false
		}
		if !included && slices.Contains(rooms, r) {
			included = true
		}
	}
	return included
}

// historyReplayMax bounds the entries a recovery reads from each history
// stream; past it the recovery fails rather than replay part of them.
const historyReplayMax = 200_000

// missedWithHistory is MissedPackets over the history streams of rooms.
func (a *streamsAdapter) missedWithHistory(ctx context.Context, from rediswire.StreamID, rooms []string) ([]*socketio.Packet, socketio.LogPosition, bool) {
	entries, _, truncated, err := a.readHistory(ctx, from, true, a.history.sources(rooms, true), historyReplayMax)
	if err != nil || truncated {
		if err == nil {
			err = fmt.Errorf("more than %d entries after offset %s", historyReplayMax, from)
		}
		if !errors.Is(err, socketio.ErrHistoryGap) {
			a.recoveryFailed(err)
		}
		return nil, socketio.LogPosition{}, false
	}
	var missed []*socketio.Packet
	for _, he := range entries {
		if p := a.replayed(he.e, he.id, rooms); p != nil {
			missed = append(missed, p)
		}
	}
	return missed, logPosition(from), true
}
