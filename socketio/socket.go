package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/protocol/sio"
)

// Errors of acknowledgements.
var (
	ErrAckTimeout   = errors.New("socketio: operation has timed out")
	ErrDisconnected = errors.New("socketio: socket has been disconnected")
	ErrNotConnected = errors.New("socketio: socket is not connected")
)

// Handshake describes the connection of a socket, as Node's
// socket.handshake does.
type Handshake struct {
	Header  engineio.Header // compact: a socket keeps it as long as it lives
	Auth    json.RawMessage // the CONNECT payload, {} when absent
	Address string          // remote IP address
	Time    time.Time
	URL     string // the request URI, query included
	Secure  bool
	XDomain bool
}

// Query parses the handshake's query string (it is not kept parsed).
func (h *Handshake) Query() url.Values {
	_, raw, _ := strings.Cut(h.URL, "?")
	q, _ := url.ParseQuery(raw)
	return q
}

// AuthString returns a string field of the CONNECT payload.
func (h *Handshake) AuthString(key string) (string, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(h.Auth, &m) != nil {
		return "", false
	}
	raw, ok := m[key]
	if !ok {
		return "", false
	}
	return sio.UnquoteString(raw)
}

// Socket is one client's connection to a namespace.
type Socket struct {
	// Static after construction.
	id        string
	pid       string // private session id for recovery ("" when disabled)
	nsp       *Namespace
	client    *client
	handshake *Handshake
	recovered bool
	// notRecovered says why a client that asked to recover its session
	// (it sent a private id and an offset) got a new socket instead, and
	// the offset it gave; nil otherwise (behind a pointer: every idle
	// socket would carry the two strings for this rare case).
	notRecovered *recoveryMiss
	// replays is how many missed packets a recovery sent this socket.
	replays int32

	// buffering holds deliveries while a recovered socket is replayed.
	buffering atomic.Bool
	// replayedThrough is the log position up to which a recovery gave the
	// client everything (nil until a recovery). A broadcast logged before
	// the replay read the log can still be on its way to this socket after
	// the buffer was flushed (or come late from a server reading the log
	// behind another); its position says the client already has it.
	replayedThrough atomic.Pointer[LogPosition]

	// data is read on every delivery by namespace filters, so it is an
	// atomic rather than guarded by mu.
	data atomic.Pointer[any]

	mu     sync.Mutex
	state  socketState
	rooms  []string // joined rooms, not counting the id room
	acks   map[uint64]func(Args, error)
	buffer []buffered
	ctx    context.Context
	cancel context.CancelFunc
}

type socketState uint8

const (
	// connecting: middlewares run; joined rooms are only recorded and
	// enter the room index once connected.
	stateConnecting socketState = iota
	stateConnected
	// closing: disconnecting handlers run; the socket is still in its rooms.
	stateClosing
	stateClosed
)

type buffered struct {
	pkts []*engineio.Packet
	p    *Packet // nil for a broadcast with ack, which is never logged
}

func newSocket(n *Namespace, c *client, auth []byte, restored *SessionState) *Socket {
	req := c.conn.Request()
	if len(auth) == 0 {
		auth = []byte("{}")
	}
	s := &Socket{
		nsp:    n,
		client: c,
		handshake: &Handshake{
			Header: req.Header, Auth: auth, Address: req.RemoteAddr,
			Time: req.Time, URL: req.URL, Secure: req.Secure, XDomain: req.XDomain,
		},
	}
	switch {
	case restored != nil:
		s.id, s.pid, s.recovered = restored.SID, restored.PID, true
		// Restored before the middlewares run, so that they can read
		// and replace it, as in Node.
		s.SetData(restored.Data)
	default:
		s.id = n.server.engine.NewID()
		if n.server.opts.Recovery != nil {
			s.pid = n.server.engine.NewID()
		}
	}
	return s
}

// ID returns the socket id (20 characters, distinct from the Engine.IO id).
func (s *Socket) ID() string { return s.id }

// Namespace returns the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Handshake returns the connection details.
func (s *Socket) Handshake() *Handshake { return s.handshake }

// Recovered reports whether the socket was restored by connection state
// recovery (same id, rooms and data as before the disconnection).
func (s *Socket) Recovered() bool { return s.recovered }

// ReplayedEvents returns how many missed events the recovery of this
// socket sent it before its CONNECT reply (zero unless Recovered). It is
// set before the connection handlers run, and does not change after.
func (s *Socket) ReplayedEvents() int { return int(s.replays) }

// RecoveryFailure says why a client that asked to recover its session (it
// sent its private id, and the offset of the last event it received if it
// received one) got a new socket instead: what it missed since that offset,
// or since it connected, cannot be replayed, and it should reload what it
// shows.
type RecoveryFailure string

const (
	// RecoveryUnavailable: the session expired or is unknown here (a
	// restart, another node without a shared log), or the events missed
	// since the offset are no longer kept, or the client gave no offset
	// (it was cut before its first event: what it missed cannot be told).
	RecoveryUnavailable RecoveryFailure = "unavailable"
	// RecoveryDeclined: a connect middleware declined the recovery
	// (ErrDeclineRecovery), e.g. because the client now authenticates as
	// someone else.
	RecoveryDeclined RecoveryFailure = "declined"
)

// NotRecovered reports, for a socket whose client asked to recover a
// session and could not, why and from which offset it asked (empty when
// it had none); failure is empty for a recovered socket and for a client
// that did not ask.
func (s *Socket) NotRecovered() (offset string, failure RecoveryFailure) {
	if m := s.notRecovered; m != nil {
		return m.offset, m.failure
	}
	return "", ""
}

// recoveryMiss is why a socket was not recovered, and the offset its client
// gave.
type recoveryMiss struct {
	failure RecoveryFailure
	offset  string
}

// Transport returns the current transport: "polling" or "websocket".
func (s *Socket) Transport() string { return s.client.conn.Transport() }

// Connected reports whether the socket is connected.
func (s *Socket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateConnected
}

// Data returns the application data attached to the socket.
func (s *Socket) Data() any {
	if p := s.data.Load(); p != nil {
		return *p
	}
	return nil
}

// SetData attaches application data to the socket. It is kept across a
// recovered reconnection and reported by FetchSockets.
func (s *Socket) SetData(v any) { s.data.Store(&v) }

// Context returns a context cancelled when the socket disconnects.
func (s *Socket) Context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		if s.state == stateClosed {
			s.cancel()
		}
	}
	return s.ctx
}

// Rooms returns the socket's rooms, its own id room first.
func (s *Socket) Rooms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{s.id}, s.rooms...)
}

// In reports whether the socket is in a room.
func (s *Socket) In(room string) bool {
	if room == s.id {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.rooms, room)
}

// Join adds the socket to rooms. Joining its own id room is a no-op. A
// middleware may join rooms: they take effect when the socket connects.
func (s *Socket) Join(rooms ...string) {
	for _, r := range rooms {
		if r == s.id {
			continue
		}
		s.mu.Lock()
		if s.state == stateClosed || slices.Contains(s.rooms, r) {
			s.mu.Unlock()
			continue
		}
		s.rooms = append(s.rooms, r)
		connected := s.state == stateConnected
		created := connected && s.nsp.rooms.add(r, s)
		s.mu.Unlock()
		if created {
			s.roomCreated(r)
		}
		if m := s.nsp.monitor.Load(); connected && m != nil && m.RoomJoined != nil {
			m.RoomJoined(s, r)
		}
	}
}

func (s *Socket) roomCreated(r string) {
	if o, ok := s.nsp.adapter.(RoomObserver); ok {
		o.RoomCreated(r)
	}
}

// Leave removes the socket from a room.
func (s *Socket) Leave(room string) {
	s.mu.Lock()
	i := slices.Index(s.rooms, room)
	if i < 0 {
		s.mu.Unlock()
		return
	}
	s.rooms = slices.Delete(s.rooms, i, i+1)
	deleted := s.nsp.rooms.remove(room, s)
	connected := s.state == stateConnected
	s.mu.Unlock()
	if deleted {
		if o, ok := s.nsp.adapter.(RoomObserver); ok {
			o.RoomDeleted(room)
		}
	}
	if m := s.nsp.monitor.Load(); connected && m != nil && m.RoomLeft != nil {
		m.RoomLeft(s, room)
	}
}

// Emit sends an event to this client.
func (s *Socket) Emit(event string, args ...any) error {
	p, err := s.outgoing(event, args)
	if err != nil {
		return err
	}
	if s.pid != "" {
		// With recovery on, Node routes socket.emit through the adapter so
		// that the packet gets an offset and can be replayed.
		return s.nsp.adapter.Broadcast(context.Background(), p, &BroadcastOptions{Rooms: []string{s.id}, Direct: true})
	}
	return s.client.send(encode(sio.Event, s.nsp.name, false, 0, p.Data, p.Attachments))
}

// outgoing encodes an event for this client, which must be connected, and
// shows it to the monitor (the Admin UI).
func (s *Socket) outgoing(event string, args []any) (*Packet, error) {
	p, err := NewPacket(event, args...)
	if err != nil {
		return nil, err
	}
	if !s.Connected() {
		return nil, ErrNotConnected
	}
	if m := s.nsp.monitor.Load(); m != nil && m.EventSent != nil {
		m.EventSent(s, p)
	}
	return p, nil
}

// EmitUnlogged sends an event to this client like Emit, except that it
// never enters the recovery log: it carries no offset and is never
// replayed. It is for notices about this connection itself (its token
// about to expire, its session revoked): replayed to a later, recovered
// connection, which may hold another token, they would be false. With
// recovery on it still waits behind a replay under way, as broadcasts do.
func (s *Socket) EmitUnlogged(event string, args ...any) error {
	p, err := s.outgoing(event, args)
	if err != nil {
		return err
	}
	// A nil packet marks it as not logged: never taken for one the
	// replay already sent.
	if !s.deliver(encode(sio.Event, s.nsp.name, false, 0, p.Data, p.Attachments), nil, false) {
		return ErrNotConnected // the connection closed meanwhile
	}
	return nil
}

// EmitPositioned sends an event to this client that, like EmitUnlogged,
// never enters the recovery log, but that gives a new socket a position in
// it: the log's head, the offset of the latest packet it delivered here,
// appended as the event's last argument. It is for the first event of a
// connection (the gateway's "connected"): the client then holds an offset
// to recover from even if nothing else reaches it before it drops, without
// one log entry per connection — a reconnection storm of N clients would
// otherwise append N entries, trimming the events they are recovering out
// of a bounded log (a Redis stream's MAXLEN). The head is taken where no
// packet of the log is being delivered here, and the event queued there,
// so the client's offset never moves back behind a packet it has.
//
// A recovered socket, or one whose log has no position to give yet (an
// empty shared log), gets what Emit sends: the first keeps the offset it
// came back with (the head could be behind what its replay sent), the
// second is given the event's own log entry.
func (s *Socket) EmitPositioned(event string, args ...any) error {
	log := s.nsp.log
	if s.pid == "" {
		return s.Emit(event, args...) // recovery off: no offsets
	}
	if s.recovered || log == nil {
		// log nil: recovery without a log (the Redis Pub/Sub modes), no
		// offset to give, and nothing to gain from the adapter's round
		// trip.
		return s.EmitUnlogged(event, args...)
	}
	p, err := NewPacket(event, args...)
	if err != nil {
		return err
	}
	if !s.Connected() {
		return ErrNotConnected
	}
	delivered := true
	positioned := log.Head(func(offset string, pos LogPosition) {
		q := p.withOffset(offset, pos)
		// A nil packet: never taken for one a replay already sent.
		delivered = s.deliver(encode(sio.Event, s.nsp.name, false, 0, q.Data, q.Attachments), nil, false)
	})
	if !positioned {
		return s.Emit(event, args...)
	}
	if m := s.nsp.monitor.Load(); m != nil && m.EventSent != nil {
		m.EventSent(s, p)
	}
	if !delivered {
		return ErrNotConnected
	}
	return nil
}

// EmitWithAck sends an event and waits for the client's acknowledgement,
// until ctx ends. Do not call it from this client's own handlers (see the
// package documentation); use EmitWithAckFunc there.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	type result struct {
		args Args
		err  error
	}
	ch := make(chan result, 1)
	id, err := s.emitAck(event, args, func(a Args, err error) { ch <- result{a, err} })
	if err != nil {
		return Args{}, err
	}
	select {
	case r := <-ch:
		return r.args, r.err
	case <-ctx.Done():
		s.dropAck(id)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Args{}, ErrAckTimeout
		}
		return Args{}, ctx.Err()
	}
}

// EmitWithAckFunc sends an event and calls cb with the acknowledgement, or
// with ErrAckTimeout after timeout, or ErrDisconnected. cb runs on the
// goroutine that received the answer (or a timer's).
func (s *Socket) EmitWithAckFunc(timeout time.Duration, cb func(Args, error), event string, args ...any) error {
	var once sync.Once
	call := func(a Args, err error) { once.Do(func() { cb(a, err) }) }
	id, err := s.emitAck(event, args, call)
	if err != nil {
		return err
	}
	if timeout > 0 {
		time.AfterFunc(timeout, func() {
			if s.dropAck(id) {
				call(Args{}, ErrAckTimeout)
			}
		})
	}
	return nil
}

func (s *Socket) emitAck(event string, args []any, cb func(Args, error)) (uint64, error) {
	p, err := NewPacket(event, args...)
	if err != nil {
		return 0, err
	}
	id := s.nsp.ackIDs.Add(1) - 1
	if !s.registerAck(id, cb) {
		return 0, ErrNotConnected
	}
	if err := s.client.send(encode(sio.Event, s.nsp.name, true, id, p.Data, p.Attachments)); err != nil {
		s.dropAck(id)
		return 0, err
	}
	if m := s.nsp.monitor.Load(); m != nil && m.EventSent != nil {
		m.EventSent(s, p)
	}
	return id, nil
}

// registerAck records the callback of an acknowledgement id.
func (s *Socket) registerAck(id uint64, cb func(Args, error)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateConnected {
		return false
	}
	if s.acks == nil {
		s.acks = make(map[uint64]func(Args, error))
	}
	s.acks[id] = cb
	return true
}

// dropAck forgets an acknowledgement id and reports whether it was pending.
func (s *Socket) dropAck(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.acks[id]; !ok {
		return false
	}
	delete(s.acks, id)
	if len(s.acks) == 0 {
		s.acks = nil
	}
	return true
}

// operator returns a broadcast operator that excludes this socket, like
// Node's socket.broadcast.
func (s *Socket) operator() BroadcastOperator {
	return BroadcastOperator{nsp: s.nsp, opts: BroadcastOptions{Except: []string{s.id}}}
}

// Broadcast selects every socket of the namespace but this one.
func (s *Socket) Broadcast() BroadcastOperator { return s.operator() }

// To selects the sockets in rooms, except this one.
func (s *Socket) To(rooms ...string) BroadcastOperator { return s.operator().To(rooms...) }

// Except selects every socket but this one and those in rooms.
func (s *Socket) Except(rooms ...string) BroadcastOperator { return s.operator().Except(rooms...) }

// Disconnect disconnects the socket from its namespace (the client gets
// "io server disconnect" and does not reconnect). With close, the whole
// connection is closed, disconnecting the client's other namespaces too.
func (s *Socket) Disconnect(close bool) {
	if !s.Connected() {
		return
	}
	if close {
		s.client.disconnectAll()
		return
	}
	_ = s.client.send(encodeDisconnect(s.nsp.name))
	s.onClose(ReasonServerNamespaceDisconn)
}

// DropConnection closes the client's connection at once, as a network
// failure would, without telling the client anything: socket.io-client
// reconnects by itself and, with connection state recovery, tries to
// recover. The sockets of every namespace of that connection disconnect
// with "forced close" (a recoverable reason). Adapters use it when they
// can no longer vouch for what a client received (the Redis streams
// adapter after entries were lost), so that the client resynchronises.
func (s *Socket) DropConnection() {
	s.client.conn.CloseWith(engineio.ReasonForcedClose, false)
}

func encodeDisconnect(nsp string) []*engineio.Packet {
	return []*engineio.Packet{engineio.BuildText(4, len(nsp)+2, func(dst []byte) []byte {
		return sio.AppendHeader(dst, sio.Disconnect, 0, nsp, false, 0)
	})}
}

// setConnected moves the socket to connected and puts the rooms joined so
// far into the room index.
func (s *Socket) setConnected() {
	s.mu.Lock()
	s.state = stateConnected
	var created []string
	for _, r := range s.rooms {
		if s.nsp.rooms.add(r, s) {
			created = append(created, r)
		}
	}
	s.mu.Unlock()
	for _, r := range created {
		s.roomCreated(r)
	}
}

// sendConnect queues the CONNECT reply: {"sid"} and, with recovery,
// {"sid","pid"}; without recovery the reply must not carry a pid.
func (s *Socket) sendConnect() {
	_ = s.client.conn.SendNow([]*engineio.Packet{engineio.BuildText(4, 64, func(dst []byte) []byte {
		dst = sio.AppendHeader(dst, sio.Connect, 0, s.nsp.name, false, 0)
		dst = append(dst, `{"sid":`...)
		dst = sio.AppendString(dst, s.id)
		if s.pid != "" {
			dst = append(dst, `,"pid":`...)
			dst = sio.AppendString(dst, s.pid)
		}
		return append(dst, '}')
	})}...)
}

// deliver queues a broadcast packet p, encoded as pkts (p is nil for a
// broadcast with ack). Volatile packets are dropped when the connection is
// not ready for them. It reports whether the packet was queued, or had
// already reached the client by a recovery's replay.
func (s *Socket) deliver(pkts []*engineio.Packet, p *Packet, volatile bool) bool {
	if s.buffering.Load() {
		s.mu.Lock()
		if s.buffering.Load() {
			s.buffer = append(s.buffer, buffered{pkts, p})
			s.mu.Unlock()
			return true
		}
		s.mu.Unlock()
	}
	if p != nil && s.replayed(p) {
		return true
	}
	if volatile && !s.client.conn.Writable() {
		return false
	}
	return s.client.send(pkts) == nil
}

// replayed reports whether a logged packet is at or before the position a
// recovery gave the client everything up to.
func (s *Socket) replayed(p *Packet) bool {
	if p.pos.IsZero() {
		return false
	}
	through := s.replayedThrough.Load()
	return through != nil && p.pos.Compare(*through) <= 0
}

// flushBuffer sends what was delivered while the socket was being
// recovered, skipping what the client already has: logged packets up to
// replayedThrough, and any other packet the replay sent, by its offset.
func (s *Socket) flushBuffer(sent map[string]struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.buffer {
		if b.p != nil {
			if s.replayed(b.p) {
				continue
			}
			if _, dup := sent[b.p.Offset]; dup && b.p.Offset != "" {
				continue
			}
		}
		_ = s.client.send(b.pkts)
	}
	s.buffer = nil
	s.buffering.Store(false)
}

// onEvent dispatches an EVENT from the client. data is the packet's JSON
// (owned by the caller).
func (s *Socket) onEvent(p *sio.Packet, data []byte, bin [][]byte) {
	args, err := parseArgs(data, 0, bin)
	if err != nil || args.Len() == 0 {
		return
	}
	name, ok := args.String(0)
	if !ok {
		name = string(args.raw[0]) // a numeric event name, as Node accepts
	}
	ev := &Event{Name: name, Args: Args{raw: args.raw[1:], bin: bin}, socket: s, hasID: p.HasID, id: p.ID}
	if m := s.nsp.monitor.Load(); m != nil && m.EventReceived != nil {
		m.EventReceived(s, ev)
	}
	tab := s.nsp.load()
	h := tab.events[name]
	if h == nil {
		h = tab.anyEvent
	}
	if h != nil {
		h(s, ev)
	}
}

// onAck handles an ACK from the client.
func (s *Socket) onAck(p *sio.Packet, data []byte, bin [][]byte) {
	if !p.HasID {
		return
	}
	s.mu.Lock()
	cb := s.acks[p.ID]
	delete(s.acks, p.ID)
	s.mu.Unlock()
	if cb == nil {
		return // unknown or expired: ignored, as in Node
	}
	args, err := parseArgs(data, 0, bin)
	if err != nil {
		return
	}
	cb(args, nil)
}

// onClose disconnects the socket: it leaves its rooms and namespace,
// pending acknowledgements fail, and with a recoverable reason its state is
// kept for connection state recovery.
func (s *Socket) onClose(reason DisconnectReason) {
	s.mu.Lock()
	if s.state != stateConnected {
		s.mu.Unlock()
		return
	}
	s.state = stateClosing
	s.mu.Unlock()
	tab := s.nsp.load()
	for _, f := range tab.disconnecting {
		f(s, reason)
	}
	s.mu.Lock()
	s.state = stateClosed
	rooms := s.rooms
	s.rooms = nil
	acks := s.acks
	s.acks = nil
	s.buffer = nil
	data := s.Data()
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	s.buffering.Store(false)

	var deleted []string
	for _, r := range rooms {
		if s.nsp.rooms.remove(r, s) {
			deleted = append(deleted, r)
		}
	}
	if o, ok := s.nsp.adapter.(RoomObserver); ok {
		for _, r := range deleted {
			o.RoomDeleted(r)
		}
	}
	s.nsp.remove(s)
	s.client.removeSocket(s)
	switch {
	case s.pid == "":
	case s.nsp.log == nil:
	case reason.recoverable():
		s.nsp.log.PersistSession(&SessionState{SID: s.id, PID: s.pid, Rooms: append([]string{s.id}, rooms...), Data: data})
	case s.nsp.keeper != nil:
		s.nsp.keeper.ended(s)
	default:
		// A session restored earlier stays persisted (see
		// memoryLog.restore); a disconnection that is not recoverable
		// ends it, as it ends a kept session.
		if d, ok := s.nsp.log.(sessionDropper); ok {
			d.dropSession(s.pid)
		}
	}
	for _, cb := range acks {
		cb(Args{}, ErrDisconnected)
	}
	for _, f := range tab.disconnect {
		f(s, reason)
	}
}

// abandon undoes the registration of a socket whose recovery failed before
// it was announced: no handler ran and the client was told nothing, so
// neither disconnect handlers nor session persistence apply.
func (s *Socket) abandon() {
	s.mu.Lock()
	s.state = stateClosed
	rooms := s.rooms
	s.rooms = nil
	s.buffer = nil
	s.mu.Unlock()
	s.buffering.Store(false)
	o, observe := s.nsp.adapter.(RoomObserver)
	for _, r := range rooms {
		if s.nsp.rooms.remove(r, s) && observe {
			o.RoomDeleted(r)
		}
	}
	s.nsp.remove(s)
	s.client.removeSocket(s)
}

// describe returns the socket as FetchSockets reports it.
func (s *Socket) describe() *RemoteSocket {
	return &RemoteSocket{ID: s.id, Handshake: s.handshake, Rooms: s.Rooms(), Data: s.Data(), nsp: s.nsp, local: s}
}

// Event is an event received from a client.
type Event struct {
	Name string
	Args Args

	socket *Socket
	hasID  bool
	id     uint64
	acked  atomic.Bool
}

// WantsAck reports whether the client waits for an acknowledgement.
func (e *Event) WantsAck() bool { return e.hasID }

// Ack answers the client's acknowledgement callback with args (encoded as
// by Emit). It does nothing when no ack was requested or it was already
// answered.
func (e *Event) Ack(args ...any) error {
	if !e.hasID || !e.acked.CompareAndSwap(false, true) {
		return nil
	}
	data, bin, err := encodeArray(args)
	if err != nil {
		return err
	}
	return e.socket.client.send(encode(sio.Ack, e.socket.nsp.name, true, e.id, data, bin))
}

// RemoteSocket describes a socket of any server of the cluster, as
// FetchSockets returns it. Its methods act through the adapter, so they work
// wherever the socket is.
type RemoteSocket struct {
	ID        string
	Handshake *Handshake
	Rooms     []string
	Data      any

	nsp   *Namespace
	local *Socket
}

// NewRemoteSocket builds a RemoteSocket for an adapter.
func NewRemoteSocket(nsp *Namespace, id string, h *Handshake, rooms []string, data any) *RemoteSocket {
	return &RemoteSocket{ID: id, Handshake: h, Rooms: rooms, Data: data, nsp: nsp}
}

// Local returns the socket when it is on this server.
func (r *RemoteSocket) Local() (*Socket, bool) { return r.local, r.local != nil }

// Emit sends an event to the socket.
func (r *RemoteSocket) Emit(event string, args ...any) error {
	return r.nsp.To(r.ID).Emit(event, args...)
}

// Join makes the socket join rooms.
func (r *RemoteSocket) Join(ctx context.Context, rooms ...string) error {
	return r.nsp.In(r.ID).SocketsJoin(ctx, rooms...)
}

// Leave makes the socket leave rooms.
func (r *RemoteSocket) Leave(ctx context.Context, rooms ...string) error {
	return r.nsp.In(r.ID).SocketsLeave(ctx, rooms...)
}

// Disconnect disconnects the socket.
func (r *RemoteSocket) Disconnect(ctx context.Context, close bool) error {
	return r.nsp.In(r.ID).DisconnectSockets(ctx, close)
}
