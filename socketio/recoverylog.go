package socketio

import (
	"context"
	"slices"
)

// This file is the recovery log: the one component that connection state
// recovery, the history API and offsets rest on. An adapter that keeps one
// offers it (RecoveryLogProvider); the namespace reads it when a client
// recovers or asks for history, and stores sessions in it. There are two
// implementations: the memory log of this server (recoverylog_memory.go,
// the MemoryAdapter's) and the Redis streams log shared by a cluster
// (package socketio/redisadapter, streams mode).

// LogPosition is a packet's place in a recovery log: the memory log's
// sequence number (Minor), or a Redis stream entry id (Major the
// milliseconds, Minor the sequence). Positions of one log only grow; the
// zero value means "not logged".
type LogPosition struct {
	Major, Minor uint64
}

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p LogPosition) Compare(q LogPosition) int {
	switch {
	case p.Major < q.Major:
		return -1
	case p.Major > q.Major:
		return 1
	case p.Minor < q.Minor:
		return -1
	case p.Minor > q.Minor:
		return 1
	}
	return 0
}

// IsZero reports whether p is the zero position (not logged).
func (p LogPosition) IsZero() bool { return p == LogPosition{} }

// SessionState is what connection state recovery keeps of a disconnected
// socket.
type SessionState struct {
	SID   string
	PID   string
	Rooms []string
	Data  any
}

// RecoveryLog is a namespace's log of broadcasts and its sessions, for
// connection state recovery and the history API. Implementations must be
// safe for concurrent use.
type RecoveryLog interface {
	// Append logs p, broadcast to the sockets selected by opts (not
	// volatile), and delivers it to the sockets of every server that
	// reads the log, this one's included, before it returns (a shared
	// log may give up waiting for its own delivery after a timeout). It
	// returns the offset p was logged at. Logging and delivering are one
	// step: a client reports the offset of the last packet it got and is
	// replayed everything logged after it, so its packets must reach it
	// in log order.
	Append(ctx context.Context, p *Packet, opts *BroadcastOptions) (offset string, err error)
	// Shared reports whether other servers append to and read this log
	// (Redis). Appending to a shared log publishes to the cluster, so a
	// broadcast restricted to this server (BroadcastFlags.Local) is not
	// appended; a log of this server's own logs it like any other.
	Shared() bool
	// Since returns the packets logged after offset that a socket in rooms
	// would have received, each with its Offset set (see Packet.Logged),
	// and through: the log position up to which the client has everything
	// meant for it, at least offset's own position. A logged packet at or
	// before through that reaches the socket later (a broadcast still on
	// its way, or delivered late by a server that reads the log behind
	// another) is dropped as a duplicate. ok is false when the packets
	// after offset cannot all be read (the log no longer holds offset):
	// the socket is then not recovered, rather than given a partial
	// replay. The namespace calls it after re-registering the socket, so
	// that packets broadcast in between are not lost.
	Since(offset string, rooms []string) (missed []*Packet, through LogPosition, ok bool)
	// History reads the log on request (see HistoryQuery). It fails with
	// ErrHistoryGap when q.Since is no longer covered.
	History(ctx context.Context, q HistoryQuery) (HistoryPage, error)
	// Head calls send with the log's head: the offset and position of the
	// latest packet of the log delivered to this server's sockets, at a
	// point where none is being delivered here. What send queues to a
	// socket is then ordered with the log's deliveries: after every packet
	// at or before the head, before every later one. Since(head) must
	// replay what a socket missed after it, as for any packet's offset.
	// It returns false, without calling send, when the log has no head to
	// give (a shared log that this server has delivered nothing of yet).
	// Socket.EmitPositioned uses it to give a new socket a position
	// without appending to the log.
	Head(send func(offset string, pos LogPosition)) bool
	// PersistSession keeps a disconnected socket's state for recovery. It
	// must not wait on I/O: it is called where a socket closes, which may
	// be the engine's heartbeat goroutine (see SessionFlusher).
	PersistSession(s *SessionState)
	// RestoreSession returns a persisted session, if it can be recovered
	// from offset (it has not expired and offset is still known). The
	// session stays persisted until it expires: the restored socket may
	// drop unseen and the client come back again.
	RestoreSession(pid, offset string) (*SessionState, bool)
}

// RecoveryLogProvider is implemented by adapters that keep a recovery log:
// RecoveryLog returns it, or nil when the server has recovery off. Without
// one (the Redis Pub/Sub modes, as in Node), a client that reconnects gets
// a new socket. An adapter that wraps another must forward it, or recovery
// stops working through the wrapper.
type RecoveryLogProvider interface {
	RecoveryLog() RecoveryLog
}

// LoggedBroadcaster is implemented by adapters whose broadcasts can report
// the offset they were logged at (Node's adapters cannot):
// BroadcastOperator.EmitPacketLogged uses it.
type LoggedBroadcaster interface {
	// BroadcastLogged is Broadcast returning the offset the packet was
	// logged at ("" when it was not: volatile, or the log unreachable,
	// with the error saying so).
	BroadcastLogged(ctx context.Context, p *Packet, opts *BroadcastOptions) (offset string, err error)
}

// recoveryLogOf returns the adapter's recovery log when the server has
// recovery on, else nil.
func recoveryLogOf(a Adapter, recovery bool) RecoveryLog {
	if !recovery {
		return nil
	}
	if p, ok := a.(RecoveryLogProvider); ok {
		return p.RecoveryLog()
	}
	return nil
}

// sessionDropper is implemented by the logs of this package that keep
// restored sessions in memory: a disconnection that is not recoverable
// drops the session.
type sessionDropper interface{ dropSession(pid string) }

// ReplayedTo reports whether a broadcast to rooms, except those in except,
// is replayed to a recovering session that was in sessionRooms: the session
// was in one of the target rooms (or all were targeted) and in none of the
// excluded ones (Node's shouldIncludePacket). Every RecoveryLog applies it.
func ReplayedTo(sessionRooms, rooms, except []string) bool {
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
