package socketio

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RecoveryOptions enable connection state recovery: a client that lost its
// connection and comes back within MaxDisconnectionDuration gets the same
// socket id, rooms and data, and the events it missed. A client that comes
// back while its old socket still looks connected (it noticed the dead
// connection first) takes that socket over: the old one is disconnected
// with ReasonClientReconnected, and its session recovered. With
// RunMiddlewares, that happens only once the middlewares accepted the
// client for the session: a private id alone ends no live socket.
type RecoveryOptions struct {
	// MaxDisconnectionDuration is how long a session and the packets it
	// may miss are kept. Zero means 2 minutes.
	MaxDisconnectionDuration time.Duration
	// RunMiddlewares runs the connect middlewares on a recovered
	// connection too; they see it as Recovered, with its restored Data,
	// which they may replace or decline (ErrDeclineRecovery). By default
	// (false) they are skipped, as in Node (skipMiddlewares: true).
	RunMiddlewares bool
	// MaxPackets bounds the number of packets kept for replay; older ones
	// are dropped (their sessions then fail to recover and start afresh).
	// Zero means 100,000.
	MaxPackets int
}

// ErrDeclineRecovery, returned by a connect middleware for a recovered
// socket (with RecoveryOptions.RunMiddlewares), connects the client as a
// new socket instead: the session is dropped, nothing is replayed, and the
// middlewares run again on the new socket. It is how a middleware refuses
// to hand a session to a different identity (the client kept its private
// session id across a change of user) without refusing the connection.
// For a socket that is not recovered it refuses the connection like any
// other error.
var ErrDeclineRecovery = errors.New("socketio: recovery declined")

// sessionStore is the in-memory recovery store of one namespace, the
// equivalent of Node's SessionAwareAdapter: persisted sessions by private id,
// and the packets broadcast recently, in offset order.
type sessionStore struct {
	maxAge     time.Duration
	maxPackets int
	// epoch makes offsets of another process (or another namespace)
	// unrecognisable instead of pointing at unrelated packets.
	epoch string

	mu       sync.Mutex
	sessions map[string]persisted
	packets  []storedPacket // ascending seq
	seq      uint64
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

func newSessionStore(maxAge time.Duration, maxPackets int) *sessionStore {
	if maxAge <= 0 {
		maxAge = 2 * time.Minute
	}
	if maxPackets <= 0 {
		maxPackets = 100_000
	}
	var e [6]byte
	_, _ = rand.Read(e[:])
	return &sessionStore{
		maxAge:     maxAge,
		maxPackets: maxPackets,
		epoch:      base64.RawURLEncoding.EncodeToString(e[:]),
		sessions:   make(map[string]persisted),
	}
}

func (st *sessionStore) offset(seq uint64) string {
	return st.epoch + "." + strconv.FormatUint(seq, 36)
}

// record assigns the next offset to p and keeps it for replay. Packets with
// an ack id or the volatile flag are not recorded (the caller checks).
func (st *sessionStore) record(p *Packet, opts *BroadcastOptions) *Packet {
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.seq++
	withOffset := p.withOffset(st.offset(st.seq), LogPosition{Minor: st.seq})
	withOffset.direct = opts.Direct
	st.packets = append(st.packets, storedPacket{
		seq: st.seq, at: now,
		rooms: slices.Clone(opts.Rooms), except: slices.Clone(opts.Except),
		p: withOffset,
	})
	st.expireLocked(now)
	return withOffset
}

func (st *sessionStore) expireLocked(now time.Time) {
	cut := 0
	for cut < len(st.packets) && (now.Sub(st.packets[cut].at) > st.maxAge || len(st.packets)-cut > st.maxPackets) {
		cut++
	}
	if cut > 0 {
		clear(st.packets[:cut])
		st.packets = st.packets[cut:]
	}
	if len(st.sessions) > 0 && st.seq%1024 == 0 {
		for pid, s := range st.sessions {
			if now.Sub(s.at) > st.maxAge {
				delete(st.sessions, pid)
			}
		}
	}
}

func (st *sessionStore) persist(s *SessionState) {
	now := time.Now()
	st.mu.Lock()
	st.sessions[s.PID] = persisted{state: s, at: now}
	st.expireLocked(now)
	st.mu.Unlock()
}

// drop forgets a session.
func (st *sessionStore) drop(pid string) {
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
func (st *sessionStore) restore(pid, offset string) (*SessionState, bool) {
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
	if _, _, ok := st.indexAfterLocked(offset); !ok {
		return nil, false
	}
	restored := *ps.state
	restored.Rooms = slices.Clone(restored.Rooms)
	return &restored, true
}

// since returns the recorded packets after offset that a socket in rooms
// would have received, and the position the client has everything up to.
func (st *sessionStore) since(offset string, rooms []string) ([]*Packet, LogPosition, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	i, seq, ok := st.indexAfterLocked(offset)
	if !ok {
		return nil, LogPosition{}, false
	}
	through := LogPosition{Minor: seq}
	var missed []*Packet
	for _, p := range st.packets[i:] {
		if shouldReplay(rooms, p.rooms, p.except) {
			missed = append(missed, p.p)
			through = p.p.pos
		}
	}
	return missed, through, true
}

// indexAfterLocked returns the index of the first packet after offset,
// and offset's sequence number. The offset must still be in the log, or be
// the latest offset given out (nothing was missed even if the log was
// trimmed since).
func (st *sessionStore) indexAfterLocked(offset string) (int, uint64, bool) {
	epoch, num, ok := strings.Cut(offset, ".")
	if !ok || epoch != st.epoch {
		return 0, 0, false
	}
	seq, err := strconv.ParseUint(num, 36, 64)
	if err != nil || seq > st.seq {
		return 0, 0, false
	}
	i, found := slices.BinarySearchFunc(st.packets, seq, func(p storedPacket, s uint64) int {
		switch {
		case p.seq < s:
			return -1
		case p.seq > s:
			return 1
		}
		return 0
	})
	switch {
	case found:
		return i + 1, seq, true
	case seq == st.seq:
		return len(st.packets), seq, true
	}
	return 0, 0, false
}

// shouldReplay mirrors Node's shouldIncludePacket: the session was in one of
// the target rooms (or all were targeted) and in none of the excluded ones.
func shouldReplay(sessionRooms, rooms, except []string) bool {
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
