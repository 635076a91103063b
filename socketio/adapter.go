package socketio

import (
	"context"
	"errors"
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

	// Once, when not nil, makes the broadcast idempotent across attempts
	// and servers (see Once). Only the caller's adapter reads it; it is
	// not carried to other servers.
	Once *Once
}

// Once asks the adapter to publish a broadcast at most once per Key, for a
// caller that retries a broadcast whose outcome it could not learn
// (ErrOutcomeUnknown), possibly on another server. The Redis streams
// adapter, the one whose broadcasts can end that way, appends the packet
// at most once per Key while the key is kept (Keep): a repeat delivers
// nothing, answers the first append's offset, and sets Tag to the tag
// stored with it. Other adapters ignore Once: their broadcasts never end
// with ErrOutcomeUnknown, so their callers have no reason to repeat one.
//
// A Once is used by one broadcast at a time: the adapter writes Tag.
type Once struct {
	// Key names the broadcast within its namespace: an opaque string
	// (a digest, say) that two different broadcasts never share.
	Key string
	// Keep is how long the key is remembered; the adapter keeps it at
	// least as long as its own attempts may still land.
	Keep time.Duration
	// Tag is stored with the first append (the caller's id for the
	// broadcast). After the broadcast it is the tag of the append that
	// landed: the caller's own, or that of an earlier attempt.
	Tag string
}

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

// ErrOutcomeUnknown is wrapped by the error of a broadcast whose fate the
// cluster did not tell in time (a Redis stream append with no answer,
// retries included): it may still reach every server's sockets, this one's
// included, or none. Unlike ErrClusterUnavailable, this server's sockets
// were not served on the side: that would repeat the broadcast if it lands.
var ErrOutcomeUnknown = errors.New("socketio: broadcast outcome unknown")

// Adapter spreads a namespace's operations over the servers of a cluster.
// Each method acts on the local sockets (through its AdapterHost) and on
// those of every other server. The namespace handles the Local flag itself
// (BroadcastOperator.Local goes straight to the host): an adapter is never
// handed an operation with opts.Flags.Local set. What an adapter receives
// from another server it applies through its host only, never through its
// own methods, so that nothing is broadcast twice. Implementations must be
// safe for concurrent use.
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
	// Close releases the adapter's resources.
	Close() error
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
// recovery (a memory recovery log) when the server enables it.
type MemoryAdapter struct {
	host AdapterHost
	log  *memoryLog // nil without recovery
}

var (
	_ Adapter             = (*MemoryAdapter)(nil)
	_ RecoveryLogProvider = (*MemoryAdapter)(nil)
	_ LoggedBroadcaster   = (*MemoryAdapter)(nil)
)

// NewMemoryAdapter is the default AdapterFactory.
func NewMemoryAdapter(host AdapterHost) Adapter {
	a := &MemoryAdapter{host: host}
	if r, ok := host.Namespace().Server().Recovery(); ok {
		a.log = newMemoryLog(&r, host)
	}
	return a
}

func (a *MemoryAdapter) Broadcast(ctx context.Context, p *Packet, opts *BroadcastOptions) error {
	_, err := a.BroadcastLogged(ctx, p, opts)
	return err
}

// BroadcastLogged implements LoggedBroadcaster: the log delivers what it
// logs (see memoryLog.Append).
func (a *MemoryAdapter) BroadcastLogged(ctx context.Context, p *Packet, opts *BroadcastOptions) (string, error) {
	if a.log != nil && !opts.Flags.Volatile {
		return a.log.Append(ctx, p, opts)
	}
	a.host.Broadcast(p, opts)
	return "", nil
}

// RecoveryLog implements RecoveryLogProvider.
func (a *MemoryAdapter) RecoveryLog() RecoveryLog {
	if a.log == nil {
		return nil
	}
	return a.log
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

func (a *MemoryAdapter) Close() error { return nil }
