package socketio

// This file is the namespace's side of the adapter seam: what an adapter
// may do to this server's sockets. An adapter is built by its
// AdapterFactory from an AdapterHost and never needs anything else of the
// namespace's internals; the namespace's public API (To, Emit, ...) is the
// application's, and goes through the adapter.

// AdapterHost is what a namespace gives its adapter: the namespace's
// identity and the operations on this server's own sockets. Every method
// acts on the local sockets only; an adapter calls them for the local part
// of an operation and for operations received from other servers. They
// are safe for concurrent use and do not block on I/O.
type AdapterHost interface {
	// Name returns the namespace's name ("/", "/events", ...).
	Name() string
	// Namespace returns the namespace, for what an adapter reads through
	// its public API (RoomSize, Socket, Sockets, Server().Recovery()) and
	// for NewRemoteSocket.
	Namespace() *Namespace

	// Broadcast delivers p to the local sockets selected by opts (its
	// Flags.Local is ignored: everything here is local) and returns how
	// many it reached. A packet with an offset (Packet.Logged) is
	// delivered with it.
	Broadcast(p *Packet, opts *BroadcastOptions) int
	// BroadcastWithAck delivers p to the local sockets selected by opts,
	// each asked for an acknowledgement passed to ack, and returns how
	// many it reached. Acknowledgements not received within
	// opts.Flags.Timeout are forgotten.
	BroadcastWithAck(p *Packet, opts *BroadcastOptions, ack func(Args)) int
	// AddSockets makes the local sockets selected by opts join rooms.
	AddSockets(opts *BroadcastOptions, rooms []string)
	// DelSockets makes the local sockets selected by opts leave rooms.
	DelSockets(opts *BroadcastOptions, rooms []string)
	// DisconnectSockets disconnects the local sockets selected by opts;
	// with close their whole connection.
	DisconnectSockets(opts *BroadcastOptions, close bool)
	// FetchSockets describes the local sockets selected by opts.
	FetchSockets(opts *BroadcastOptions) []*RemoteSocket
	// Rooms lists the rooms that have local members, socket id rooms
	// included (as Node's adapter does).
	Rooms() []string
	// ServerSideEmit runs the namespace's handler of an event another
	// server sent (Namespace.OnServerSideEmit); ack is nil when that
	// server expects no answer.
	ServerSideEmit(p *Packet, ack func(args ...any))
}

// nsHost is the AdapterHost of a namespace. It is a distinct type so that
// the host's methods stay out of Namespace's public API.
type nsHost struct{ n *Namespace }

var _ AdapterHost = nsHost{}

func (h nsHost) Name() string          { return h.n.name }
func (h nsHost) Namespace() *Namespace { return h.n }

func (h nsHost) Broadcast(p *Packet, opts *BroadcastOptions) int { return h.n.localBroadcast(p, opts) }

func (h nsHost) BroadcastWithAck(p *Packet, opts *BroadcastOptions, ack func(Args)) int {
	return h.n.localBroadcastWithAck(p, opts, ack)
}

func (h nsHost) AddSockets(opts *BroadcastOptions, rooms []string) { h.n.localAddSockets(opts, rooms) }
func (h nsHost) DelSockets(opts *BroadcastOptions, rooms []string) { h.n.localDelSockets(opts, rooms) }

func (h nsHost) DisconnectSockets(opts *BroadcastOptions, close bool) {
	h.n.localDisconnectSockets(opts, close)
}

func (h nsHost) FetchSockets(opts *BroadcastOptions) []*RemoteSocket {
	return h.n.localFetchSockets(opts)
}

func (h nsHost) Rooms() []string { return h.n.localRooms() }

func (h nsHost) ServerSideEmit(p *Packet, ack func(args ...any)) { h.n.handleServerSideEmit(p, ack) }
