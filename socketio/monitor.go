package socketio

// Monitor observes a namespace's traffic, for instrumentation such as an
// admin UI. Every field is optional. The calls are made synchronously, on
// the goroutine of what they observe (a client's reading goroutine, a
// broadcaster's), outside the namespace's and the socket's locks: a
// function must be quick, must not block, and must not broadcast on the
// observed namespace. Whatever it keeps of a Packet or an Event's Args
// must not be modified (both are shared).
//
// A namespace without a monitor pays one atomic load per broadcast, per
// event received and per room change; nothing per recipient.
type Monitor struct {
	// EventReceived is called for each event a client sends, before its
	// handler runs.
	EventReceived func(s *Socket, ev *Event)
	// EventSent is called for each event emitted to one socket
	// (Socket.Emit, EmitWithAck, EmitWithAckFunc), on the server that holds
	// the socket.
	EventSent func(s *Socket, p *Packet)
	// Broadcast is called once per broadcast delivered on this server (on
	// every server of a cluster, each for its own sockets), after its local
	// delivery: opts selected the recipients and reached of them were given
	// the packet. Socket.Emit's own route through the adapter (with
	// connection state recovery) is reported by EventSent instead.
	Broadcast func(p *Packet, opts *BroadcastOptions, reached int)
	// RoomJoined and RoomLeft are called when a connected socket joins or
	// leaves a room. The rooms joined by connect middlewares and restored
	// by a recovery come with the socket's connection, and the rooms a
	// socket is in when it disconnects are left with its disconnection
	// (OnDisconnecting sees them): neither is reported here.
	RoomJoined func(s *Socket, room string)
	RoomLeft   func(s *Socket, room string)
}

// SetMonitor installs m on the namespace, replacing any previous monitor;
// nil removes it. Calls already under way may still reach the previous
// one.
func (n *Namespace) SetMonitor(m *Monitor) { n.monitor.Store(m) }

// ConnectionID returns the id of the Engine.IO connection the socket uses,
// shared by that client's sockets in other namespaces (Node's
// socket.client.id). It authenticates the client's long-polling requests:
// never show it, show a digest of it.
func (s *Socket) ConnectionID() string { return s.client.conn.ID() }
