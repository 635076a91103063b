package socketio

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Middleware runs when a client connects to a namespace, before the socket
// is connected; it sees the handshake (headers, query, auth, address). A
// non-nil error refuses the connection: the client gets a connect_error with
// the error's message, and with its data when the error is a *ConnectError.
type Middleware func(ctx context.Context, s *Socket) error

// EventHandler handles an event sent by a client.
type EventHandler func(s *Socket, ev *Event)

// ServerSideHandler handles an event sent by another server of the cluster
// (Namespace.ServerSideEmit). ack is nil unless the sender waits for an
// answer.
type ServerSideHandler func(args Args, ack func(args ...any))

// ConnectError refuses a connection with a message and data, both delivered
// to the client's connect_error handler (err.message, err.data).
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return e.Message }

// handlers is the set of handlers of a namespace. A child of a dynamic
// namespace shares its parent's set, so handlers registered on the parent
// at any time apply to every child. Reads are lock-free: registration
// replaces the whole table.
type handlers struct {
	mu  sync.Mutex
	tab atomic.Pointer[handlerTable]
}

type handlerTable struct {
	middlewares   []Middleware
	connection    []func(*Socket)
	events        map[string]EventHandler
	anyEvent      EventHandler
	disconnecting []func(*Socket, DisconnectReason)
	disconnect    []func(*Socket, DisconnectReason)
	serverSide    map[string]ServerSideHandler
}

func newHandlers() *handlers {
	h := &handlers{}
	h.tab.Store(&handlerTable{})
	return h
}

func (h *handlers) load() *handlerTable { return h.tab.Load() }

func (h *handlers) update(f func(t *handlerTable)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.tab.Load()
	t := *old
	t.middlewares = slices.Clone(old.middlewares)
	t.connection = slices.Clone(old.connection)
	t.disconnecting = slices.Clone(old.disconnecting)
	t.disconnect = slices.Clone(old.disconnect)
	t.events = maps.Clone(old.events)
	t.serverSide = maps.Clone(old.serverSide)
	f(&t)
	h.tab.Store(&t)
}

// Use adds a connect middleware. Middlewares run in the order added.
func (h *handlers) Use(m Middleware) {
	h.update(func(t *handlerTable) { t.middlewares = append(t.middlewares, m) })
}

// OnConnection registers a handler called when a socket has connected
// (after its CONNECT reply was queued). Over WebSocket, the reply is
// written together with what the handlers send, once they have all
// returned: a handler that blocks delays the client's connection.
func (h *handlers) OnConnection(f func(s *Socket)) {
	h.update(func(t *handlerTable) { t.connection = append(t.connection, f) })
}

// OnEvent sets the handler of an event, replacing any previous one.
func (h *handlers) OnEvent(event string, f EventHandler) {
	h.update(func(t *handlerTable) {
		if t.events == nil {
			t.events = make(map[string]EventHandler)
		}
		t.events[event] = f
	})
}

// OnAnyEvent sets the handler of events that have no handler of their own.
func (h *handlers) OnAnyEvent(f EventHandler) {
	h.update(func(t *handlerTable) { t.anyEvent = f })
}

// OnDisconnecting registers a handler called when a socket is about to
// disconnect, while it is still in its rooms.
func (h *handlers) OnDisconnecting(f func(s *Socket, reason DisconnectReason)) {
	h.update(func(t *handlerTable) { t.disconnecting = append(t.disconnecting, f) })
}

// OnDisconnect registers a handler called after a socket disconnected.
func (h *handlers) OnDisconnect(f func(s *Socket, reason DisconnectReason)) {
	h.update(func(t *handlerTable) { t.disconnect = append(t.disconnect, f) })
}

// OnServerSideEmit sets the handler of an event sent by another server.
func (h *handlers) OnServerSideEmit(event string, f ServerSideHandler) {
	h.update(func(t *handlerTable) {
		if t.serverSide == nil {
			t.serverSide = make(map[string]ServerSideHandler)
		}
		t.serverSide[event] = f
	})
}
