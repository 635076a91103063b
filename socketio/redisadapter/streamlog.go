package redisadapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
)

// This file is the streams implementation of socketio.RecoveryLog: the
// namespace's Redis stream (or, with room histories, the history streams
// of streamhistory.go) is the log every server of the cluster appends to
// and reads, and sessions are kept in Redis, so that a client recovers on
// any server and across restarts.

// streamLog is the recovery log of a streams adapter (which offers it
// when the server has recovery on).
type streamLog struct{ a *streamsAdapter }

var (
	_ socketio.RecoveryLog    = streamLog{}
	_ socketio.SessionKeeper  = streamLog{}
	_ socketio.SessionFlusher = streamLog{}
)

// RecoveryLog implements socketio.RecoveryLogProvider.
func (a *streamsAdapter) RecoveryLog() socketio.RecoveryLog {
	if !a.recovery {
		return nil
	}
	return streamLog{a}
}

// Append implements socketio.RecoveryLog: the broadcast is appended to the
// stream, and the stream's readers deliver it, this server's before Append
// returns (or after Config.PublishTimeout, the delivery still to come).
func (l streamLog) Append(ctx context.Context, p *socketio.Packet, opts *socketio.BroadcastOptions) (string, error) {
	return l.a.broadcast(ctx, p, opts)
}

// streamHead is the latest logged broadcast the reader delivered here:
// mu is held while one is delivered, so that an event queued under it
// (streamLog.Head) is ordered with them.
type streamHead struct {
	mu     sync.Mutex
	offset string // "" when none (since this server started, or a gap)
	pos    socketio.LogPosition
}

// forget drops the head: after a gap in the reader, this server no longer
// knows that it delivered everything after it.
func (h *streamHead) forget() {
	h.mu.Lock()
	h.offset, h.pos = "", socketio.LogPosition{}
	h.mu.Unlock()
}

// Head implements socketio.RecoveryLog: the latest logged broadcast the
// reader delivered here, an entry of the stream (kept in recentLog, so a
// replay from it is served from memory). Until there is one (this server
// has just started, or its reader lost entries), the last entry the
// reader handled: none of the namespace's broadcasts up to it is still to
// be delivered here (one being delivered waits for h.mu, and the reader
// counts an entry as handled only after delivering it), so it is a
// position every new socket has everything up to. Nothing yet (the
// reader has not started, or the stream is empty): the caller appends
// instead, once — a node that restarts into a reconnection storm must not
// append one entry per client.
func (l streamLog) Head(send func(string, socketio.LogPosition)) bool {
	h := &l.a.head
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.offset != "" {
		send(h.offset, h.pos)
		return true
	}
	id := l.a.reader.handled()
	if id == (rediswire.StreamID{}) {
		return false
	}
	send(id.String(), logPosition(id))
	return true
}

// Shared implements socketio.RecoveryLog: every server of the namespace
// appends to and reads the stream.
func (streamLog) Shared() bool { return true }

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
func (l streamLog) PersistSession(s *socketio.SessionState) {
	if l.a.recovery {
		l.a.persist.add(s)
	}
}

// FlushSessions waits until the sessions queued by PersistSession are
// stored, or ctx ends (those left are then dropped and counted).
func (l streamLog) FlushSessions(ctx context.Context) error {
	return l.a.persist.flush(ctx)
}

// KeepSessions stores sessions, each for ttl, in one round trip.
func (l streamLog) KeepSessions(sessions []*socketio.SessionState, ttl time.Duration) {
	a := l.a
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
func (l streamLog) DropSessions(pids []string) {
	a := l.a
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
	a.c.log.l.Warn("redisadapter: session "+op+" failed; the client may not recover", "namespace", a.host.Name(), "err", err)
}

// RestoreSession reads a session (GET, kept until it expires) and checks
// that offset is still in the stream (the replay must start right after
// it), in one round trip. A session that cannot be read is not restored:
// the client connects as a new socket.
func (l streamLog) RestoreSession(pid, offset string) (*socketio.SessionState, bool) {
	a := l.a
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
	a.c.log.l.Warn("redisadapter: cannot recover a session; the client connects afresh", "namespace", a.host.Name(), "err", err)
}

// replayBatch is the COUNT of each XRANGE of a replay; maxReplayCalls
// bounds them (Node stops after 100 calls, silently; here a replay that
// cannot reach the end of the stream fails instead).
const (
	replayBatch    = 1000
	maxReplayCalls = 1000
)

// Since implements socketio.RecoveryLog: from this server's memory of recent
// broadcasts when it holds offset, else it reads the stream from offset to its end (XRANGE in
// batches): the broadcasts of this namespace that a socket in rooms would
// have received, not volatile, each with its entry id as offset. The first
// entry read must be offset itself: if it was trimmed since
// RestoreSession, what follows it is not all there, and the recovery
// fails rather than replay part of it.
func (l streamLog) Since(offset string, rooms []string) ([]*socketio.Packet, socketio.LogPosition, bool) {
	a := l.a
	from, ok := rediswire.ParseStreamID(offset)
	if !ok || !a.recovery {
		return nil, socketio.LogPosition{}, false
	}
	// What this server's reader delivered recently, in order and without
	// a gap, answers a replay without reading the stream (see recentLog).
	if a.recent != nil {
		if missed, ok := a.recent.since(from, rooms); ok {
			a.c.stats.replaysFromMemory.Add(1)
			return missed, logPosition(from), true
		}
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
	start, first := offset, true
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
	p, d, ok := a.loggedBroadcast(e, id)
	if !ok || d.Opts != nil && !socketio.ReplayedTo(rooms, d.Opts.Rooms, d.Opts.Except) {
		return nil
	}
	return p
}

// loggedBroadcast decodes an entry that is a replayable broadcast of this
// namespace (not volatile, without an ack) into the packet the reader
// delivers, with its offset.
func (a *streamsAdapter) loggedBroadcast(e rediswire.StreamEntry, id rediswire.StreamID) (*socketio.Packet, *rediswire.ClusterData, bool) {
	if !e.HasNsp || e.Nsp != a.host.Name() || e.Type != rediswire.MsgBroadcast {
		return nil, nil, false
	}
	d, atts, err := decodeEntry(e)
	if err != nil || d.RequestID != nil {
		return nil, nil, false
	}
	data, ok := rediswire.PacketData(d.Packet)
	if !ok {
		return nil, nil, false
	}
	var direct bool
	if d.Opts != nil && d.Opts.Flags != nil {
		if d.Opts.Flags.Volatile {
			return nil, nil, false
		}
		direct = d.Opts.Flags.Direct
	}
	return (&socketio.Packet{Data: data, Attachments: atts}).Logged(e.ID, logPosition(id), direct), &d, true
}

// historyReplayMax bounds the entries a recovery reads from each history
// stream; past it the recovery fails rather than replay part of them.
const historyReplayMax = 200_000

// missedWithHistory is Since over the history streams of rooms.
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

// History implements socketio.RecoveryLog: from the history streams with
// room histories, else from the namespace stream (whose offset must still
// be in it, as for a recovery).
func (l streamLog) History(ctx context.Context, q socketio.HistoryQuery) (socketio.HistoryPage, error) {
	a := l.a
	if !a.recovery {
		return socketio.HistoryPage{}, socketio.ErrNoHistory
	}
	var since rediswire.StreamID
	hasSince := q.Since != ""
	if hasSince {
		var ok bool
		if since, ok = rediswire.ParseStreamID(q.Since); !ok {
			return socketio.HistoryPage{}, socketio.ErrHistoryGap
		}
	}
	ctx, cancel := context.WithTimeout(ctx, a.c.cfg.RequestsTimeout)
	defer cancel()
	var (
		entries   []histEntry
		scanned   rediswire.StreamID
		truncated bool
		err       error
	)
	if a.history != nil {
		entries, scanned, truncated, err = a.readHistory(ctx, since, hasSince, a.history.sources(q.Rooms, false), a.historyScan())
	} else {
		entries, scanned, truncated, err = a.readStream(ctx, since, hasSince, a.historyScan())
	}
	if errors.Is(err, socketio.ErrHistoryGap) {
		return socketio.HistoryPage{}, err
	}
	if err != nil {
		return socketio.HistoryPage{}, fmt.Errorf("%w: history: %v", ErrUnavailable, err)
	}
	candidates := make([]*socketio.Packet, 0, len(entries))
	tail := q.Since
	for _, he := range entries {
		tail = he.e.ID
		if p := a.replayed(he.e, he.id, q.Rooms); p != nil {
			candidates = append(candidates, p)
		}
	}
	return q.Page(candidates, truncated, scanned.String(), tail), nil
}
