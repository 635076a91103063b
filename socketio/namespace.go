package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/protocol/sio"
)

// Namespace is a Socket.IO namespace ("/", "/events", ...): its sockets,
// rooms, handlers and adapter.
type Namespace struct {
	*handlers

	// Static after construction.
	name    string
	server  *Server
	adapter Adapter
	log     RecoveryLog // the adapter's, nil without recovery (or when it keeps none)
	rooms   *roomIndex
	sockets *socketRegistry
	parent  *ParentNamespace // nil unless a child of a dynamic namespace

	ackIDs atomic.Uint64 // server-to-client ack ids, like Node's nsp._ids

	// live holds the connected sockets by private id (pid → *Socket) when
	// connection state recovery is on, for takeOver.
	live sync.Map

	keeper *sessionKeeper // nil unless the recovery log is a SessionKeeper

	filter  atomic.Pointer[DeliveryFilter]
	monitor atomic.Pointer[Monitor] // nil unless observed (SetMonitor)
}

// DeliveryFilter selects the recipients of a broadcast. It is called once
// per broadcast with its packet (on the broadcasting goroutine, on every
// server of a cluster) and returns the test each recipient must pass, or
// nil when every recipient gets the packet. What depends on the packet
// alone (such as parsing its event name) is thus done once, not once per
// recipient; the returned test runs for each recipient, so it must be
// cheap. Neither may block or broadcast. The test of one broadcast is
// called on one goroutine, one recipient after another, so it may keep
// per-broadcast state (a memo) without locking.
type DeliveryFilter func(p *Packet) (keep func(s *Socket) bool)

// SetDeliveryFilter installs a filter applied to every packet the adapter
// delivers to the namespace's sockets: broadcasts, recovery replays and
// direct emits (Socket.Emit, which goes through the adapter with
// connection state recovery; without, it goes straight to its socket,
// unfiltered); nil removes it. A direct emit is marked (Packet.Direct): a
// filter that lets them through returns nil for it. But
// the mark travels through the adapter (Redis), where whoever can write
// can set it on any packet: a filter that enforces an invariant (tenancy)
// must not exempt marked packets from it.
func (n *Namespace) SetDeliveryFilter(f DeliveryFilter) {
	if f == nil {
		n.filter.Store(nil)
		return
	}
	n.filter.Store(&f)
}

// recipientTest returns the delivery filter's test for p, nil when every
// recipient gets it. A direct emit is shown to the filter marked as such.
func (n *Namespace) recipientTest(p *Packet, direct bool) func(*Socket) bool {
	f := n.filter.Load()
	if f == nil {
		return nil
	}
	if direct && !p.direct {
		q := *p
		q.direct = true
		p = &q
	}
	return (*f)(p)
}

func newNamespace(srv *Server, name string, h *handlers, parent *ParentNamespace) *Namespace {
	n := &Namespace{
		handlers: h,
		name:     name,
		server:   srv,
		rooms:    newRoomIndex(),
		sockets:  newSocketRegistry(),
		parent:   parent,
	}
	factory := srv.opts.Adapter
	if factory == nil {
		factory = NewMemoryAdapter
	}
	n.adapter = factory(nsHost{n})
	n.log = recoveryLogOf(n.adapter, srv.opts.Recovery != nil)
	if k, ok := n.log.(SessionKeeper); ok {
		n.keeper = newSessionKeeper(n, k, srv.opts.Recovery.MaxDisconnectionDuration)
	}
	return n
}

// Name returns the namespace name, starting with "/".
func (n *Namespace) Name() string { return n.name }

// Server returns the server the namespace belongs to.
func (n *Namespace) Server() *Server { return n.server }

// Adapter returns the namespace's adapter.
func (n *Namespace) Adapter() Adapter { return n.adapter }

// Socket returns the local socket with the given id.
func (n *Namespace) Socket(id string) (*Socket, bool) {
	s := n.sockets.get(id)
	return s, s != nil
}

// Sockets returns the local sockets.
func (n *Namespace) Sockets() []*Socket { return n.sockets.appendAll(nil) }

// SocketCount returns the number of local sockets.
func (n *Namespace) SocketCount() int { return n.sockets.count() }

// RoomSize returns the number of local sockets in a room.
func (n *Namespace) RoomSize(room string) int {
	if n.sockets.get(room) != nil {
		return 1 + n.rooms.size(room)
	}
	return n.rooms.size(room)
}

// operator returns a broadcast operator over the whole namespace.
func (n *Namespace) operator() BroadcastOperator { return BroadcastOperator{nsp: n} }

// To selects the sockets in the given rooms for a broadcast.
func (n *Namespace) To(rooms ...string) BroadcastOperator { return n.operator().To(rooms...) }

// In is an alias of To.
func (n *Namespace) In(rooms ...string) BroadcastOperator { return n.operator().To(rooms...) }

// Except excludes the sockets in the given rooms from a broadcast.
func (n *Namespace) Except(rooms ...string) BroadcastOperator { return n.operator().Except(rooms...) }

// Local restricts a broadcast to this server.
func (n *Namespace) Local() BroadcastOperator { return n.operator().Local() }

// Volatile marks a broadcast as droppable for clients not ready to take it.
func (n *Namespace) Volatile() BroadcastOperator { return n.operator().Volatile() }

// Timeout sets the acknowledgement timeout of a broadcast with ack.
func (n *Namespace) Timeout(d time.Duration) BroadcastOperator { return n.operator().Timeout(d) }

// Emit broadcasts an event to every socket of the namespace.
func (n *Namespace) Emit(event string, args ...any) error { return n.operator().Emit(event, args...) }

// EmitWithAck broadcasts an event to every socket and collects their
// acknowledgements (see BroadcastOperator.EmitWithAck).
func (n *Namespace) EmitWithAck(ctx context.Context, event string, args ...any) ([]Args, error) {
	return n.operator().EmitWithAck(ctx, event, args...)
}

// FetchSockets describes every socket of the namespace, cluster-wide.
func (n *Namespace) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	return n.operator().FetchSockets(ctx)
}

// SocketsJoin makes every socket join rooms, cluster-wide.
func (n *Namespace) SocketsJoin(ctx context.Context, rooms ...string) error {
	return n.operator().SocketsJoin(ctx, rooms...)
}

// SocketsLeave makes every socket leave rooms, cluster-wide.
func (n *Namespace) SocketsLeave(ctx context.Context, rooms ...string) error {
	return n.operator().SocketsLeave(ctx, rooms...)
}

// DisconnectSockets disconnects every socket, cluster-wide.
func (n *Namespace) DisconnectSockets(ctx context.Context, close bool) error {
	return n.operator().DisconnectSockets(ctx, close)
}

// ServerSideEmit sends an event to the same namespace of the other servers
// of the cluster.
func (n *Namespace) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	p, err := NewPacket(event, args...)
	if err != nil {
		return err
	}
	return n.adapter.ServerSideEmit(ctx, p)
}

// ServerSideEmitWithAck sends an event to the other servers and waits for
// one answer from each.
func (n *Namespace) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([]Args, error) {
	p, err := NewPacket(event, args...)
	if err != nil {
		return nil, err
	}
	return n.adapter.ServerSideEmitWithAck(ctx, p)
}

// AllRooms lists the rooms of the namespace on every server.
func (n *Namespace) AllRooms(ctx context.Context) ([]string, error) { return n.adapter.AllRooms(ctx) }

// handleServerSideEmit runs the handler of an event received from another
// server (AdapterHost.ServerSideEmit); ack is nil when no answer is expected.
func (n *Namespace) handleServerSideEmit(p *Packet, ack func(args ...any)) {
	args, err := parseArgs(p.Data, 0, p.Attachments)
	if err != nil || args.Len() == 0 {
		return
	}
	event, ok := args.String(0)
	if !ok {
		return
	}
	if h := n.load().serverSide[event]; h != nil {
		h(Args{raw: args.raw[1:], bin: args.bin}, ack)
	}
}

// socketBufPool recycles recipient lists of broadcasts.
var socketBufPool = sync.Pool{New: func() any { s := make([]*Socket, 0, 256); return &s }}

// recipients appends the local sockets selected by opts to dst.
func (n *Namespace) recipients(dst []*Socket, opts *BroadcastOptions) []*Socket {
	switch len(opts.Rooms) {
	case 0:
		dst = n.sockets.appendAll(dst)
	case 1:
		dst = n.roomMembers(dst, opts.Rooms[0])
	default:
		start := len(dst)
		for _, r := range opts.Rooms {
			dst = n.roomMembers(dst, r)
		}
		dst = dedupe(dst, start)
	}
	if len(opts.Except) == 0 {
		return dst
	}
	excluded := make(map[*Socket]struct{})
	buf := socketBufPool.Get().(*[]*Socket)
	for _, r := range opts.Except {
		*buf = n.roomMembers((*buf)[:0], r)
		for _, s := range *buf {
			excluded[s] = struct{}{}
		}
	}
	clear(*buf)
	socketBufPool.Put(buf)
	return slices.DeleteFunc(dst, func(s *Socket) bool { _, ok := excluded[s]; return ok })
}

// roomMembers appends the members of a room, the socket whose id it is
// included.
func (n *Namespace) roomMembers(dst []*Socket, room string) []*Socket {
	if s := n.sockets.get(room); s != nil {
		dst = append(dst, s)
	}
	return n.rooms.appendMembers(dst, room)
}

func dedupe(s []*Socket, start int) []*Socket {
	seen := make(map[*Socket]struct{}, len(s)-start)
	out := s[:start]
	for _, x := range s[start:] {
		if _, ok := seen[x]; !ok {
			seen[x] = struct{}{}
			out = append(out, x)
		}
	}
	return out
}

// localBroadcast delivers p to the local sockets selected by opts and
// returns how many it reached (AdapterHost.Broadcast).
func (n *Namespace) localBroadcast(p *Packet, opts *BroadcastOptions) int {
	pkts := encode(sio.Event, n.name, false, 0, p.Data, p.Attachments)
	noCompress(pkts, opts.Flags.NoCompress)
	buf := socketBufPool.Get().(*[]*Socket)
	recipients := n.recipients((*buf)[:0], opts)
	keep := n.recipientTest(p, opts.Direct)
	count := 0
	for _, s := range recipients {
		if keep != nil && !keep(s) {
			continue
		}
		if s.deliver(pkts, p, opts.Flags.Volatile) {
			count++
		}
	}
	clear(recipients)
	*buf = recipients[:0]
	socketBufPool.Put(buf)
	if m := n.monitor.Load(); m != nil && m.Broadcast != nil && !opts.Direct {
		m.Broadcast(p, opts, count)
	}
	return count
}

func noCompress(pkts []*engineio.Packet, no bool) {
	if no {
		for _, p := range pkts {
			p.SetNoCompress()
		}
	}
}

// localBroadcastWithAck delivers p to the local sockets selected by opts,
// each asked for an acknowledgement passed to ack, and returns how many
// sockets it reached. Acknowledgements not received within
// opts.Flags.Timeout are forgotten.
func (n *Namespace) localBroadcastWithAck(p *Packet, opts *BroadcastOptions, ack func(Args)) int {
	id := n.ackIDs.Add(1) - 1
	pkts := encode(sio.Event, n.name, true, id, p.Data, p.Attachments)
	noCompress(pkts, opts.Flags.NoCompress)
	recipients := n.recipients(nil, opts)
	keep := n.recipientTest(p, opts.Direct)
	reached := recipients[:0]
	for _, s := range recipients {
		// The delivery filter applies to broadcasts with ack as to any
		// broadcast; a socket filtered out is not waited for.
		if keep != nil && !keep(s) {
			continue
		}
		if s.registerAck(id, func(a Args, err error) {
			if err == nil {
				ack(a)
			}
		}) && s.deliver(pkts, nil, opts.Flags.Volatile) {
			reached = append(reached, s)
		} else {
			s.dropAck(id)
		}
	}
	if len(reached) > 0 {
		timeout := opts.Flags.Timeout
		if timeout <= 0 {
			timeout = defaultAckTimeout
		}
		time.AfterFunc(timeout, func() {
			for _, s := range reached {
				s.dropAck(id)
			}
		})
	}
	if m := n.monitor.Load(); m != nil && m.Broadcast != nil && !opts.Direct {
		m.Broadcast(p, opts, len(reached))
	}
	return len(reached)
}

// defaultAckTimeout bounds acknowledgements requested without a timeout,
// so that a client that never answers cannot hold memory forever.
const defaultAckTimeout = 2 * time.Minute

// localAddSockets makes the local sockets selected by opts join rooms.
func (n *Namespace) localAddSockets(opts *BroadcastOptions, rooms []string) {
	for _, s := range n.recipients(nil, opts) {
		s.Join(rooms...)
	}
}

// localDelSockets makes the local sockets selected by opts leave rooms.
func (n *Namespace) localDelSockets(opts *BroadcastOptions, rooms []string) {
	for _, s := range n.recipients(nil, opts) {
		for _, r := range rooms {
			s.Leave(r)
		}
	}
}

// localDisconnectSockets disconnects the local sockets selected by opts.
func (n *Namespace) localDisconnectSockets(opts *BroadcastOptions, close bool) {
	for _, s := range n.recipients(nil, opts) {
		s.Disconnect(close)
	}
}

// localFetchSockets describes the local sockets selected by opts.
func (n *Namespace) localFetchSockets(opts *BroadcastOptions) []*RemoteSocket {
	list := n.recipients(nil, opts)
	out := make([]*RemoteSocket, 0, len(list))
	for _, s := range list {
		out = append(out, s.describe())
	}
	return out
}

// localRooms lists the rooms that have local members, socket id rooms
// included (as Node's adapter does).
func (n *Namespace) localRooms() []string {
	rooms := n.rooms.names()
	for _, s := range n.sockets.appendAll(nil) {
		rooms = append(rooms, s.id)
	}
	return rooms
}

// connect runs the CONNECT of a client to this namespace (protocol §2.5).
func (n *Namespace) connect(c *client, auth []byte) {
	var (
		failure RecoveryFailure
		offset  string
	)
	if opts := n.server.opts.Recovery; opts != nil {
		var pid string
		if pid, offset = recoveryFields(auth); pid != "" && offset != "" {
			failure = RecoveryUnavailable
			s, st, err := n.restore(c, auth, pid, offset, opts.RunMiddlewares)
			switch {
			case errors.Is(err, ErrDeclineRecovery):
				// Connect as a new socket, authenticated afresh.
				failure = RecoveryDeclined
			case err != nil:
				c.sendConnectError(n.name, err)
				return
			case s != nil && n.connectRecovered(s, st, offset):
				return
			}
			// Otherwise there is no session to recover, or the missed
			// packets are gone after all: connect as a new socket,
			// authenticated like any other.
		} else if pid != "" {
			// A client cut before its first event has a private id and no
			// offset: nothing says what it missed since it connected, so
			// the session cannot be restored, and it is told so.
			failure = RecoveryUnavailable
		}
	}
	s := newSocket(n, c, auth, nil)
	if failure != "" {
		s.notRecovered = &recoveryMiss{failure: failure, offset: offset}
	}
	if err := n.runMiddlewares(s); err != nil {
		c.sendConnectError(n.name, err)
		return
	}
	s.setConnected()
	n.sockets.add(s)
	n.socketAdded(s)
	n.addLive(s)
	c.addSocket(s)
	held := c.conn.Hold()
	s.sendConnect()
	c.connected()
	n.kept(s)
	n.runConnection(s, held)
}

// runConnection runs the connection handlers. With held (the session's
// writes held since before the CONNECT reply), what they send goes out
// with the reply in one write, once they return: a handshake costs one
// system call less.
func (n *Namespace) runConnection(s *Socket, held bool) {
	if held {
		defer s.client.conn.Release()
	}
	for _, f := range n.load().connection {
		f(s)
	}
}

// kept hands a connected socket's session to the session keeper, if any.
func (n *Namespace) kept(s *Socket) {
	if n.keeper != nil && s.pid != "" {
		n.keeper.connected(s)
	}
}

// connectRecovered restores a socket: it is registered (in its rooms, its
// deliveries buffered) before the missed packets are read, so nothing
// broadcast meanwhile is lost; then the missed packets go out before the
// CONNECT reply, as Node sends them, and the buffer is flushed without
// duplicates. It returns false, with the socket unregistered again, when
// the missed packets can no longer be read (the log moved past the
// offset in between): claiming a recovery then would hide a gap.
func (n *Namespace) connectRecovered(s *Socket, st *SessionState, offset string) bool {
	s.buffering.Store(true)
	s.setConnected()
	n.sockets.add(s)
	n.socketAdded(s)
	n.addLive(s)
	for _, r := range st.Rooms {
		if r != s.id {
			s.Join(r)
		}
	}
	s.client.addSocket(s)
	missed, through, ok := n.log.Since(offset, st.Rooms)
	if !ok {
		s.abandon()
		return false
	}
	sent := make(map[string]struct{}, len(missed))
	for _, p := range missed {
		sent[p.Offset] = struct{}{}
		if through.Compare(p.pos) < 0 {
			through = p.pos
		}
		// Replays pass the delivery filter as live broadcasts do.
		if keep := n.recipientTest(p, p.direct); keep == nil || keep(s) {
			_ = s.client.send(encode(sio.Event, n.name, false, 0, p.Data, p.Attachments))
			s.replays++
		}
	}
	// Set before the buffer is flushed, so that a replayed broadcast still
	// on its way here is dropped whether it arrives before or after.
	s.replayedThrough.Store(&through)
	s.sendConnect()
	s.flushBuffer(sent)
	s.client.connected()
	n.kept(s)
	for _, f := range n.load().connection {
		f(s)
	}
	return true
}

// restore returns the socket that recovers the session pid from offset,
// and the session's state, once the middlewares accepted it when
// authenticate (RecoveryOptions.RunMiddlewares) is set; a nil socket when
// there is no such session. A socket that holds pid live on another
// connection is taken over (takeOver); when authenticate is set, only once
// the middlewares accepted the client for that socket's session: the
// private id alone, which anyone who learned it can present, must not end
// someone's live socket.
func (n *Namespace) restore(c *client, auth []byte, pid, offset string, authenticate bool) (*Socket, *SessionState, error) {
	var s *Socket
	if old := n.liveElsewhere(c, pid); old != nil && authenticate {
		if live := appendState(nil, old); len(live) == 1 {
			s = newSocket(n, c, auth, live[0])
			if err := n.runMiddlewares(s); err != nil {
				return nil, nil, err
			}
		}
	}
	n.takeOver(c, pid)
	if n.log == nil {
		return nil, nil, nil
	}
	st, ok := n.log.RestoreSession(pid, offset)
	if !ok {
		return nil, nil, nil
	}
	if s == nil {
		s = newSocket(n, c, auth, st)
		if authenticate {
			if err := n.runMiddlewares(s); err != nil {
				return nil, nil, err
			}
		}
	}
	return s, st, nil
}

// liveElsewhere returns the connected socket that holds pid on another
// connection than c, if any.
func (n *Namespace) liveElsewhere(c *client, pid string) *Socket {
	if v, ok := n.live.Load(pid); ok {
		if s := v.(*Socket); s.client != c {
			return s
		}
	}
	return nil
}

// takeOver closes the socket that holds pid on another connection, if
// there is one, as a lost connection (ReasonClientReconnected): its session
// is persisted, and the connect that called takeOver recovers it. The
// client, which alone knows the private id, is back while the server still
// thinks its old connection alive: it noticed first that the connection
// was dead, as after a laptop sleep or a network switch, where the server
// would learn of it only at its ping timeout (45 s by default). Without
// this, it would connect as a new socket and miss everything sent to the
// dead connection meanwhile. The old Engine.IO connection is closed too
// unless another namespace's socket still uses it (that socket's own
// reconnection will take it over): it is dead, and would otherwise hold
// its resources, and hold up a graceful shutdown, until its heartbeat ends
// it.
func (n *Namespace) takeOver(c *client, pid string) {
	if old := n.liveElsewhere(c, pid); old != nil {
		old.onClose(ReasonClientReconnected)
		old.client.closeIfEmpty(engineio.ReasonForcedClose)
	}
}

func (n *Namespace) addLive(s *Socket) {
	if s.pid != "" {
		n.live.Store(s.pid, s)
	}
}

func recoveryFields(auth []byte) (pid, offset string) {
	var v struct {
		PID    any `json:"pid"`
		Offset any `json:"offset"`
	}
	if json.Unmarshal(auth, &v) != nil {
		return "", ""
	}
	pid, _ = v.PID.(string)
	offset, _ = v.Offset.(string)
	return pid, offset
}

func (n *Namespace) runMiddlewares(s *Socket) error {
	mws := n.load().middlewares
	if len(mws) == 0 {
		return nil
	}
	ctx := &connectContext{deadline: time.Now().Add(n.server.opts.ConnectTimeout)}
	defer ctx.end(context.Canceled)
	for _, m := range mws {
		if err := safeMiddleware(ctx, m, s); err != nil {
			return err
		}
	}
	return nil
}

var errMiddlewarePanic = errors.New("internal server error")

func safeMiddleware(ctx context.Context, m Middleware, s *Socket) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.nsp.server.log.Error("socketio: middleware panic", "namespace", s.nsp.name, "panic", r)
			err = errMiddlewarePanic
		}
	}()
	return m(ctx, s)
}

// remove forgets a disconnected socket.
func (n *Namespace) remove(s *Socket) {
	if s.pid != "" {
		n.live.CompareAndDelete(s.pid, s)
	}
	if n.sockets.remove(s) {
		n.socketRemoved(s)
	}
	if n.parent != nil && n.server.opts.CleanupEmptyChildNamespaces && n.sockets.count() == 0 {
		n.server.removeChild(n)
	}
}
