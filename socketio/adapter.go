package socketio

import (
	"context"
	"errors"
	"sync"
	"time"
)

// BroadcastOptions select the recipients of a broadcast: the sockets in any
// of Rooms (every socket of the namespace when empty), minus those in any
// of Except. A socket's id is also the name of a room holding only it.
type BroadcastOptions struct {
	Rooms  []string
	Except []string
	Flags  BroadcastFlags

	// Direct marks Socket.Emit routed through the adapter for recovery
	// offsets: it is not a broadcast, and the delivery filter sees it
	// marked (Packet.Direct). Socket.Emit sets it; an adapter that carries
	// a packet to another server (or replays it) keeps it, so that the
	// delivery there sees the mark too.
	Direct bool
}

// LogPosition is a packet's place in an adapter's recovery log: the
// memory adapter's sequence number (Minor), or a Redis stream entry id
// (Major the milliseconds, Minor the sequence). Positions of one log only
// grow; the zero value means "not logged".
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

// BroadcastFlags modify a broadcast.
type BroadcastFlags struct {
	// Volatile packets are dropped for clients that cannot take them now
	// (a busy or polling-in-between connection) instead of being queued.
	Volatile bool
	// Local restricts the broadcast to this server.
	Local bool
	// NoCompress disables permessage-deflate for this packet.
	NoCompress bool
	// Timeout bounds a broadcast with acknowledgements.
	Timeout time.Duration
}

// ErrClusterUnavailable is wrapped by the errors of cluster adapters that
// could not reach the other servers. The local part of the operation was
// done: a broadcast reached this server's sockets, not the others'.
var ErrClusterUnavailable = errors.New("socketio: cluster unavailable")

// SessionState is what connection state recovery keeps of a disconnected
// socket.
type SessionState struct {
	SID   string
	PID   string
	Rooms []string
	Data  any
}

// Adapter spreads a namespace's operations over the servers of a cluster.
// Each method acts on the local sockets (through its AdapterHost) and, unless
// opts.Flags.Local is set, on those of every other server. Implementations
// must be safe for concurrent use.
type Adapter interface {
	// Broadcast delivers p to the sockets selected by opts.
	Broadcast(ctx context.Context, p *Packet, opts *BroadcastOptions) error
	// BroadcastWithAck delivers p asking each client for an
	// acknowledgement. clients is called once per server with the number of
	// clients it reached (this server included); ack once per response.
	BroadcastWithAck(ctx context.Context, p *Packet, opts *BroadcastOptions, clients func(n int), ack func(Args)) error
	// AddSockets makes the selected sockets join rooms (socketsJoin).
	AddSockets(ctx context.Context, opts *BroadcastOptions, rooms []string) error
	// DelSockets makes the selected sockets leave rooms (socketsLeave).
	DelSockets(ctx context.Context, opts *BroadcastOptions, rooms []string) error
	// DisconnectSockets disconnects the selected sockets; with close their
	// whole connection.
	DisconnectSockets(ctx context.Context, opts *BroadcastOptions, close bool) error
	// FetchSockets describes the selected sockets.
	FetchSockets(ctx context.Context, opts *BroadcastOptions) ([]*RemoteSocket, error)
	// AllRooms lists the rooms of every server.
	AllRooms(ctx context.Context) ([]string, error)
	// ServerSideEmit sends an event to the other servers' namespace.
	ServerSideEmit(ctx context.Context, p *Packet) error
	// ServerSideEmitWithAck does the same and collects one answer per
	// other server.
	ServerSideEmitWithAck(ctx context.Context, p *Packet) ([]Args, error)
	// ServerCount returns the number of servers in the cluster.
	ServerCount(ctx context.Context) (int, error)
	// PersistSession keeps a disconnected socket's state for recovery. It
	// must not wait on I/O: it is called where a socket closes, which may
	// be the engine's heartbeat goroutine (see SessionFlusher).
	PersistSession(s *SessionState)
	// RestoreSession returns a persisted session, if it can be recovered
	// from offset (it has not expired and offset is still known). The
	// session stays persisted until it expires: the restored socket may
	// drop unseen and the client come back again.
	RestoreSession(pid, offset string) (*SessionState, bool)
	// MissedPackets returns the packets broadcast after offset that a
	// socket in rooms would have received, each with its Offset set (see
	// Packet.Logged), and through: the log position up to which the client
	// has everything meant for it, at least offset's own position. A
	// logged packet at or before through that reaches the socket later (a
	// broadcast still on its way, or delivered late by a server that reads
	// the log behind another) is dropped as a duplicate. ok is false when
	// the packets after offset cannot all be read (the log no longer holds
	// offset): the socket is then not recovered, rather than given a
	// partial replay. The namespace calls it after re-registering the
	// socket, so that packets broadcast in between are not lost.
	MissedPackets(offset string, rooms []string) (missed []*Packet, through LogPosition, ok bool)
	// Close releases the adapter's resources.
	Close() error
}

// NoRecovery is embedded by adapters that cannot keep sessions for
// connection state recovery (over Redis Pub/Sub, as in Node): a client that
// reconnects gets a new socket.
type NoRecovery struct{}

func (NoRecovery) PersistSession(*SessionState) {}

func (NoRecovery) RestoreSession(string, string) (*SessionState, bool) { return nil, false }

func (NoRecovery) MissedPackets(string, []string) ([]*Packet, LogPosition, bool) {
	return nil, LogPosition{}, false
}

// RoomObserver is implemented by adapters that track which rooms exist on
// this server (for example to subscribe to per-room channels).
type RoomObserver interface {
	RoomCreated(room string)
	RoomDeleted(room string)
}

// AdapterFactory creates the adapter of a namespace. It must not fail:
// an adapter whose backend is unavailable keeps serving local sockets and
// reports the problem through its own means (errors of cluster-wide calls,
// readiness).
type AdapterFactory func(host AdapterHost) Adapter

// MemoryAdapter is the single-server adapter, with connection state
// recovery when the server enables it.
type MemoryAdapter struct {
	host     AdapterHost
	sessions *sessionStore // nil without recovery

	// logOrder makes logging a packet and queueing it to its recipients
	// one step. A client reports the offset of the last packet it got, and
	// everything logged after that offset is replayed to it; if two
	// broadcasts were queued in another order than they were logged, the
	// client would hold a packet logged after the offset it reports and
	// get it twice.
	logOrder sync.Mutex
}

var (
	_ Adapter    = (*MemoryAdapter)(nil)
	_ HistoryLog = (*MemoryAdapter)(nil)
)

// NewMemoryAdapter is the default AdapterFactory.
func NewMemoryAdapter(host AdapterHost) Adapter {
	a := &MemoryAdapter{host: host}
	if r, ok := host.Namespace().Server().Recovery(); ok {
		a.sessions = newSessionStore(&r)
	}
	return a
}

func (a *MemoryAdapter) Broadcast(ctx context.Context, p *Packet, opts *BroadcastOptions) error {
	_, err := a.BroadcastLogged(ctx, p, opts)
	return err
}

// BroadcastLogged implements HistoryLog.
func (a *MemoryAdapter) BroadcastLogged(_ context.Context, p *Packet, opts *BroadcastOptions) (string, error) {
	if a.sessions != nil && !opts.Flags.Volatile {
		a.logOrder.Lock()
		defer a.logOrder.Unlock()
		p = a.sessions.record(p, opts)
	}
	a.host.Broadcast(p, opts)
	return p.Offset, nil
}

// History implements HistoryLog.
func (a *MemoryAdapter) History(_ context.Context, q HistoryQuery) (HistoryPage, error) {
	if a.sessions == nil {
		return HistoryPage{}, ErrNoHistory
	}
	return a.sessions.history(q)
}

func (a *MemoryAdapter) BroadcastWithAck(_ context.Context, p *Packet, opts *BroadcastOptions, clients func(int), ack func(Args)) error {
	clients(a.host.BroadcastWithAck(p, opts, ack))
	return nil
}

func (a *MemoryAdapter) AddSockets(_ context.Context, opts *BroadcastOptions, rooms []string) error {
	a.host.AddSockets(opts, rooms)
	return nil
}

func (a *MemoryAdapter) DelSockets(_ context.Context, opts *BroadcastOptions, rooms []string) error {
	a.host.DelSockets(opts, rooms)
	return nil
}

func (a *MemoryAdapter) DisconnectSockets(_ context.Context, opts *BroadcastOptions, close bool) error {
	a.host.DisconnectSockets(opts, close)
	return nil
}

func (a *MemoryAdapter) FetchSockets(_ context.Context, opts *BroadcastOptions) ([]*RemoteSocket, error) {
	return a.host.FetchSockets(opts), nil
}

func (a *MemoryAdapter) AllRooms(context.Context) ([]string, error) { return a.host.Rooms(), nil }

func (a *MemoryAdapter) ServerSideEmit(context.Context, *Packet) error { return nil }

func (a *MemoryAdapter) ServerSideEmitWithAck(context.Context, *Packet) ([]Args, error) {
	return nil, nil
}

func (a *MemoryAdapter) ServerCount(context.Context) (int, error) { return 1, nil }

func (a *MemoryAdapter) PersistSession(s *SessionState) {
	if a.sessions != nil {
		a.sessions.persist(s)
	}
}

// sessionDropper is implemented by the adapters of this package that keep
// restored sessions in memory.
type sessionDropper interface{ dropSession(pid string) }

func (a *MemoryAdapter) dropSession(pid string) {
	if a.sessions != nil {
		a.sessions.drop(pid)
	}
}

func (a *MemoryAdapter) RestoreSession(pid, offset string) (*SessionState, bool) {
	if a.sessions == nil {
		return nil, false
	}
	return a.sessions.restore(pid, offset)
}

func (a *MemoryAdapter) MissedPackets(offset string, rooms []string) ([]*Packet, LogPosition, bool) {
	if a.sessions == nil {
		return nil, LogPosition{}, false
	}
	return a.sessions.since(offset, rooms)
}

func (a *MemoryAdapter) Close() error { return nil }
