package socketio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file is the memory implementation of RecoveryLog: the log of one
// server, which the MemoryAdapter offers when recovery is on.

var (
	_ RecoveryLog    = (*memoryLog)(nil)
	_ sessionDropper = (*memoryLog)(nil)
)

// Append implements RecoveryLog: it gives p the next offset, keeps it,
// and delivers it to this server's sockets, in log order.
func (st *memoryLog) Append(_ context.Context, p *Packet, opts *BroadcastOptions) (string, error) {
	st.order.Lock()
	defer st.order.Unlock()
	p = st.record(p, opts)
	st.host.Broadcast(p, opts)
	return p.Offset, nil
}

// Head implements RecoveryLog: under the lock that makes logging and
// delivering one step, the last offset given out (the epoch's zero
// offset when nothing was logged yet, which Since accepts while nothing
// was trimmed).
func (st *memoryLog) Head(send func(string, LogPosition)) bool {
	st.order.Lock()
	defer st.order.Unlock()
	st.mu.Lock()
	seq := st.seq
	st.mu.Unlock()
	send(st.offset(seq), LogPosition{Minor: seq})
	return true
}

// Shared implements RecoveryLog: no other server reads this log.
func (st *memoryLog) Shared() bool { return false }

// Since implements RecoveryLog.
func (st *memoryLog) Since(offset string, rooms []string) ([]*Packet, LogPosition, bool) {
	return st.since(offset, rooms)
}

// History implements RecoveryLog.
func (st *memoryLog) History(_ context.Context, q HistoryQuery) (HistoryPage, error) {
	return st.history(q)
}

// PersistSession implements RecoveryLog.
func (st *memoryLog) PersistSession(s *SessionState) { st.persist(s) }

// RestoreSession implements RecoveryLog.
func (st *memoryLog) RestoreSession(pid, offset string) (*SessionState, bool) {
	return st.restore(pid, offset)
}

func (st *memoryLog) dropSession(pid string) { st.drop(pid) }

// memoryLog is the recovery log of one namespace on one server (the
// MemoryAdapter's), the equivalent of Node's SessionAwareAdapter: persisted
// sessions by private id,
// and the packets broadcast recently, in offset order: in the namespace's
// log, or, for packets to rooms selected by RecoveryOptions.HistoryRooms,
// in each room's own history.
type memoryLog struct {
	host AdapterHost // delivers what Append logs

	// order makes logging a packet and queueing it to its recipients one
	// step. A client reports the offset of the last packet it got, and
	// everything logged after that offset is replayed to it; if two
	// broadcasts were queued in another order than they were logged, the
	// client would hold a packet logged after the offset it reports and
	// get it twice.
	order sync.Mutex

	maxAge     time.Duration
	maxPackets int
	// historyRoom selects rooms with a history of their own (nil: none),
	// each bounded by roomSize packets and roomTTL.
	historyRoom func(string) bool
	roomSize    int
	roomTTL     time.Duration
	// epoch makes offsets of another process (or another namespace)
	// unrecognisable instead of pointing at unrelated packets.
	epoch string

	mu       sync.Mutex
	sessions map[string]persisted
	// log keeps every packet without room histories; with them, only the
	// direct emits (Socket.Emit), which matter to one socket's recovery,
	// for the recovery window.
	log ring
	// shared keeps, with room histories, the packets that are neither
	// direct nor kept by room histories (to every socket, to other rooms),
	// with the room histories' age bound: what a history request reads
	// beside the rooms'.
	shared ring
	rooms  map[string]*ring // the room histories
	// gcFloor is the highest seq dropped from a room history that was
	// then forgotten (empty): an offset below it cannot know what such a
	// room lost after it.
	gcFloor uint64
	seq     uint64
}

type persisted struct {
	state *SessionState
	at    time.Time
}

type storedPacket struct {
	seq    uint64
	at     time.Time
	rooms  []string
	except []string
	p      *Packet // data ends with the offset argument
}

// ring is a log of packets in seq order, trimmed from its start.
type ring struct {
	packets []storedPacket
	// dropped is the seq of the last packet trimmed: everything this ring
	// received after it is still there; droppedAt is when.
	dropped   uint64
	droppedAt time.Time
}

func (r *ring) trim(now time.Time, maxAge time.Duration, maxLen int) {
	cut := 0
	for cut < len(r.packets) && (now.Sub(r.packets[cut].at) > maxAge || len(r.packets)-cut > maxLen) {
		cut++
	}
	if cut > 0 {
		r.dropped, r.droppedAt = r.packets[cut-1].seq, now
		clear(r.packets[:cut])
		r.packets = r.packets[cut:]
	}
}

// after returns the index of the first packet after seq.
func (r *ring) after(seq uint64) int {
	i, found := slices.BinarySearchFunc(r.packets, seq, func(p storedPacket, s uint64) int {
		switch {
		case p.seq < s:
			return -1
		case p.seq > s:
			return 1
		}
		return 0
	})
	if found {
		i++
	}
	return i
}

func newMemoryLog(o *RecoveryOptions, host AdapterHost) *memoryLog {
	maxAge, maxPackets := o.MaxDisconnectionDuration, o.MaxPackets
	if maxAge <= 0 {
		maxAge = 2 * time.Minute
	}
	if maxPackets <= 0 {
		maxPackets = 100_000
	}
	var e [6]byte
	_, _ = rand.Read(e[:])
	st := &memoryLog{
		host:       host,
		maxAge:     maxAge,
		maxPackets: maxPackets,
		epoch:      base64.RawURLEncoding.EncodeToString(e[:]),
		sessions:   make(map[string]persisted),
	}
	if o.HistoryRooms != nil {
		st.historyRoom = o.HistoryRooms
		st.roomSize, st.roomTTL = o.historyBounds()
		st.rooms = make(map[string]*ring)
	}
	return st
}

func (st *memoryLog) offset(seq uint64) string {
	return st.epoch + "." + strconv.FormatUint(seq, 36)
}

// roomsKept reports whether a broadcast to rooms goes to room histories:
// it targets rooms, each with a history.
func (st *memoryLog) roomsKept(rooms []string) bool {
	if st.historyRoom == nil || len(rooms) == 0 {
		return false
	}
	for _, r := range rooms {
		if !st.historyRoom(r) {
			return false
		}
	}
	return true
}

// record assigns the next offset to p and keeps it for replay. Packets with
// an ack id or the volatile flag are not recorded (the caller checks).
func (st *memoryLog) record(p *Packet, opts *BroadcastOptions) *Packet {
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.seq++
	withOffset := p.withOffset(st.offset(st.seq), LogPosition{Minor: st.seq})
	withOffset.direct = opts.Direct
	sp := storedPacket{
		seq: st.seq, at: now,
		rooms: slices.Clone(opts.Rooms), except: slices.Clone(opts.Except),
		p: withOffset,
	}
	if st.roomsKept(opts.Rooms) {
		for i, name := range opts.Rooms {
			if slices.Contains(opts.Rooms[:i], name) {
				continue
			}
			r := st.rooms[name]
			if r == nil {
				r = &ring{dropped: st.gcFloor} // what a forgotten history of this room may have lost
				st.rooms[name] = r
			}
			r.packets = append(r.packets, sp)
			r.trim(now, st.roomTTL, st.roomSize)
		}
	} else if st.historyRoom != nil && !opts.Direct {
		st.shared.packets = append(st.shared.packets, sp)
		st.shared.trim(now, st.roomTTL, st.maxPackets)
	} else {
		st.log.packets = append(st.log.packets, sp)
		st.log.trim(now, st.maxAge, st.maxPackets)
	}
	if st.seq%1024 == 0 {
		st.sweepLocked(now)
	}
	return withOffset
}

// sweepLocked forgets expired sessions and room packets, and empty room
// histories.
func (st *memoryLog) sweepLocked(now time.Time) {
	for pid, s := range st.sessions {
		if now.Sub(s.at) > st.maxAge {
			delete(st.sessions, pid)
		}
	}
	// An empty history is kept a while for its dropped mark, then
	// forgotten: its mark goes to gcFloor, which only offsets older than
	// its packets' whole retention are below.
	for name, r := range st.rooms {
		r.trim(now, st.roomTTL, st.roomSize)
		if len(r.packets) == 0 && now.Sub(r.droppedAt) > st.roomTTL {
			st.gcFloor = max(st.gcFloor, r.dropped)
			delete(st.rooms, name)
		}
	}
}

func (st *memoryLog) persist(s *SessionState) {
	now := time.Now()
	st.mu.Lock()
	st.sessions[s.PID] = persisted{state: s, at: now}
	if len(st.sessions)%1024 == 0 {
		st.sweepLocked(now)
	}
	st.mu.Unlock()
}

// drop forgets a session.
func (st *memoryLog) drop(pid string) {
	st.mu.Lock()
	delete(st.sessions, pid)
	st.mu.Unlock()
}

// restore returns a copy of a persisted session that can be recovered from
// offset. It fails, as Node's adapter does, when the session expired or
// the offset is no longer known. The session stays until it expires, as in
// Node: the restored socket may drop again in a way the server notices only
// at its ping timeout, and the client's next reconnection, with the same
// private id and a later offset, must recover too. (A disconnection stores
// the session afresh, and a declined recovery leaves it to its owner.)
func (st *memoryLog) restore(pid, offset string) (*SessionState, bool) {
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	ps, ok := st.sessions[pid]
	if !ok {
		return nil, false
	}
	if now.Sub(ps.at) > st.maxAge {
		delete(st.sessions, pid)
		return nil, false
	}
	seq, ok := st.parseLocked(offset)
	if !ok || !st.coversLocked(seq, ps.state.Rooms, now, true) {
		return nil, false
	}
	restored := *ps.state
	restored.Rooms = slices.Clone(restored.Rooms)
	return &restored, true
}

// since returns the recorded packets after offset that a socket in rooms
// would have received, and the position the client has everything up to.
func (st *memoryLog) since(offset string, rooms []string) ([]*Packet, LogPosition, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	seq, ok := st.parseLocked(offset)
	if !ok || !st.coversLocked(seq, rooms, time.Now(), true) {
		return nil, LogPosition{}, false
	}
	through := LogPosition{Minor: seq}
	missed, _ := st.collectLocked(seq, rooms, -1, true)
	if len(missed) > 0 {
		through = missed[len(missed)-1].pos
	}
	return missed, through, true
}

// history answers a HistoryQuery.
func (st *memoryLog) history(q HistoryQuery) (HistoryPage, error) {
	st.mu.Lock()
	var seq uint64
	if q.Since != "" {
		var ok bool
		seq, ok = st.parseLocked(q.Since)
		if !ok || !st.coversLocked(seq, q.Rooms, time.Now(), false) {
			st.mu.Unlock()
			return HistoryPage{}, ErrHistoryGap
		}
	}
	candidates, scanned := st.collectLocked(seq, q.Rooms, MaxHistoryScan, false)
	tail := st.offset(st.seq)
	st.mu.Unlock()
	truncated := scanned != 0
	return q.Page(candidates, truncated, st.offset(scanned), tail), nil
}

// parseLocked reads an offset of this store: its epoch, and a seq not
// beyond the last given out.
func (st *memoryLog) parseLocked(offset string) (uint64, bool) {
	epoch, num, ok := strings.Cut(offset, ".")
	if !ok || epoch != st.epoch {
		return 0, false
	}
	seq, err := strconv.ParseUint(num, 36, 64)
	if err != nil || seq > st.seq {
		return 0, false
	}
	return seq, true
}

// coversLocked reports whether every packet after seq that a socket in
// rooms would have received is still kept: the logs and the histories of
// its rooms dropped nothing after seq. With room histories, direct emits
// count only for a recovery (a history request never returns them).
func (st *memoryLog) coversLocked(seq uint64, rooms []string, now time.Time, recovery bool) bool {
	if (recovery || st.historyRoom == nil) && st.log.dropped > seq {
		return false
	}
	if st.historyRoom != nil {
		st.shared.trim(now, st.roomTTL, st.maxPackets)
		if st.shared.dropped > seq {
			return false
		}
	}
	for _, name := range rooms {
		if st.historyRoom == nil || !st.historyRoom(name) {
			continue
		}
		r := st.rooms[name]
		if r == nil {
			if st.gcFloor > seq {
				return false
			}
			continue
		}
		r.trim(now, st.roomTTL, st.roomSize)
		if r.dropped > seq {
			return false
		}
	}
	return true
}

// collectLocked returns, in seq order and once each, the packets after
// seq that a socket in rooms would have received, from the log and the
// histories of its rooms. With scan >= 0 it examines at most scan
// packets; scanned is then the seq of the last one examined when it
// stopped early, zero when it reached the end.
func (st *memoryLog) collectLocked(seq uint64, rooms []string, scan int, recovery bool) (out []*Packet, scanned uint64) {
	sources := make([][]storedPacket, 0, 2+len(rooms))
	if recovery || st.historyRoom == nil {
		sources = append(sources, st.log.packets[st.log.after(seq):])
	}
	if st.historyRoom != nil {
		sources = append(sources, st.shared.packets[st.shared.after(seq):])
	}
	for i, name := range rooms {
		if r := st.rooms[name]; r != nil && !slices.Contains(rooms[:i], name) {
			sources = append(sources, r.packets[r.after(seq):])
		}
	}
	var last uint64
	for n := 0; ; n++ {
		best := -1
		for i, src := range sources {
			if len(src) > 0 && (best < 0 || src[0].seq < sources[best][0].seq) {
				best = i
			}
		}
		if best < 0 {
			return out, 0
		}
		if scan >= 0 && n == scan {
			return out, last
		}
		p := sources[best][0]
		sources[best] = sources[best][1:]
		if p.seq == last {
			continue // in several of the reader's rooms' histories
		}
		last = p.seq
		if ReplayedTo(rooms, p.rooms, p.except) {
			out = append(out, p.p)
		}
	}
}
