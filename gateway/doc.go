// Package gateway is the Operate events gateway: the Socket.IO namespace
// ("/events" by default) that browsers connect to with a JWT, and the
// in-process [events.Emitter] that delivers catalog events to them.
//
// # Connection and tenancy
//
// Authentication runs in the namespace's CONNECT middleware, before the
// socket exists for anything else. The token is taken from the CONNECT
// auth.token, else an "Authorization: Bearer" handshake header, else the
// ?token= query parameter (see [auth.ExtractToken]) and verified by an
// [auth.Verifier]. A refused connection gets a connect_error whose message
// is the [auth.Code]'s message ("Unauthorized: Token expired", ...) and
// whose data is {"code": "<CODE>"}. An accepted socket joins the rooms
// "org:<organizationId>" and "user:<userId>" and receives [EventConnected].
// Every other namespace, "/" included, is refused with "Invalid namespace".
//
// Tenancy is enforced where events are delivered, not by room names: the
// delivery filter passes a catalog event only to sockets of the
// organization its payload names, whatever room it was sent to and
// whichever node or process sent it (see deliveryFilter).
//
// # Token expiry
//
// A connected socket stays authenticated only as long as its token would
// still pass verification ([auth.Verifier.ValidUntil]: exp plus the
// verifier's leeway). Shortly before that the socket receives
// [EventAuthExpiring]; at that instant it receives [EventAuthExpired] and is
// disconnected ("io server disconnect": socket.io-client does not reconnect
// by itself, so a client never loops on a stale token). A client that sends
// [EventAuthRefresh] with a fresh token of the same user and organization
// before then keeps its connection, for as long as it keeps refreshing.
//
// # Subscriptions
//
// A socket that never subscribed receives every event of its organization
// and of its user. [EventSubscribe] with {events: [...]} (event names,
// "<domain>:*" wildcards, or "*") narrows that to exactly the subscribed
// events, and further subscribes add to it; [EventUnsubscribe] removes
// events from whatever the socket receives (from everything, if it never
// subscribed). A subscribe may carry a filter, a CEL expression over the
// payload (gateway/filter), for the events of that request: they are then
// delivered only when it holds; a later subscribe to an event replaces its
// filter, unsubscribe removes it. The test runs on the server, on the
// node of each recipient, for live and replayed events alike
// (socketio.Namespace.SetDeliveryFilter), so unwanted events never use the
// client's bandwidth; each distinct filter is evaluated once per broadcast.
// Control events (connected, auth:*) are never filtered. A request with a
// field it does not take is refused (unknown_field), never half applied.
// Any other event a client sends is refused: with an acknowledgement
// {success: false, error, code} when it asked for one, and otherwise
// ignored.
//
// # History
//
// With a log (Config.Recovery, or Config.History for per-organization and
// per-user histories that a busy organization cannot trim), a client's
// [EventHistory] request {since, limit, events} is acknowledged with the
// events of its organization and user after since, as it would have
// received them (tenancy, its subscriptions and filters); [Gateway.History]
// serves the same to backends (events.HistoryReader, gateway/httpapi), and
// [Gateway.PublishOffset] tells a publisher where its event was kept.
//
// # Publishing
//
// [Gateway.Publish] implements [events.Emitter]: it broadcasts a validated
// event to the rooms of its target (or to every socket for Target.All).
// Business code publishes through an [events.EventsService] built on it
// (in process) or on the HTTP API of package gateway/httpapi (from another
// process). A multi-node deployment plugs a cluster adapter (Redis, issue 4)
// into Config.Adapter; nothing else changes.
//
// # Control
//
// [Gateway.Disconnect], [Gateway.Revoke] and [Gateway.SetOrganizationRoom]
// act on the sockets of every node: the node called does its part and
// tells the others with server-side events on [ControlNamespace] (which
// clients cannot join), through whatever adapter the namespaces use. A
// socket disconnected on purpose is sent [EventSessionRevoked] first and
// is not kept for connection state recovery. Revocations are checked at
// connect and at refresh against the node's own copy (no I/O); a
// [RevocationStore] (Redis, package gateway/control) makes them reach
// nodes that start later or missed the notification.
//
// # Observers and presence
//
// Config.Observers are told of every socket that connects and disconnects
// ([Observer], on the socket's goroutine: they only queue work), which is
// how gateway/presence counts who is online and gateway/webhook reports
// connections. With Config.Presence, a client may send [EventPresence] to
// read the presence of its own organization and, with {watch: true}, join
// the room [PresenceRoom] to receive [EventPresenceJoined] and
// [EventPresenceLeft], which the tracker delivers with
// [Gateway.PublishPresence]; like catalog events, they reach only sockets
// of the organization their payload names.
//
// # Concurrency
//
// Every exported method of Gateway is safe for concurrent use. Socket
// handlers run on the socket's reading goroutine (see package socketio);
// expiry timers run on their own goroutines and synchronize with refreshes
// through the socket's session lock. The package holds no mutable
// package-level state: several gateways can run in one process.
package gateway
