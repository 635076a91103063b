// Package admin is an operator's view of a running gateway: the server side
// of the Socket.IO Admin UI (@socket.io/admin-ui 0.5.1, the UI hosted at
// https://admin.socket.io or served from its npm package), and a status
// endpoint for scripts and dashboards.
//
// # The Admin UI
//
// New creates the UI's namespace ("/admin") on the gateway's server and
// speaks the protocol of the package's instrument(): a UI that logs in gets
// its session id ("session"), the features offered ("config"), the sockets
// of the gateway's namespace on every node ("all_sockets": id, client,
// transport, rooms, data, handshake), then live changes (socket_connected,
// socket_disconnected, socket_updated on an upgrade, room_joined,
// room_left) and each node's server_stats every two seconds (engine
// connections, polling clients, namespaces, and per-interval counts of
// connections, disconnections, packets and bytes out).
//
// Logging in takes UIConfig's username and password (plain, or a bcrypt
// hash as Node's instrument() takes); a node checks at most two logins a
// second. The UI keeps the session id it is given and presents it on a
// reload: it is signed with a key derived from the login, so it is valid
// on every node with the same configuration, until it expires or the
// password changes.
//
// The UI is read-only unless UIConfig.Operations is set; then it may
// disconnect sockets (by id or room, never a whole namespace) and make
// them leave rooms, on every node, each operation logged. It is never
// offered to emit events or to join rooms: that would let it send any
// event to any socket, or put a socket in another organization's room,
// around the publish API's validation and the tenancy rooms. Only the
// gateway's namespace is shown and operated on; never a token: the
// gateway removes the token from a connected socket's handshake, and
// credential headers (Authorization, Cookie, ...) and query parameters are
// hidden or redacted here as well.
//
// With UIConfig.Events the UI's Events page also shows the events clients
// send (credential keys such as "token" redacted) and those sent to them:
// an emit to one socket under that socket's id, a broadcast once per node
// that delivered it, under its rooms ("org:…"), at most EventRate a second
// per node, each cut to 8 KiB.
//
// # Cost, and the cluster
//
// A node does nothing for the UI unless it holds a lease: a node with a UI
// connected holds one and renews every node's, over the admin namespace's
// server-side events, every five seconds; a lease lasts fifteen. Without
// one, the gateway's namespace has no monitor (socketio.Monitor): a
// broadcast costs one atomic load more, nothing per recipient, and a
// connection or disconnection one more. With one, each node sends what
// happens to its own sockets through the adapter to the UIs wherever they
// are connected, as instrument() does with a cluster adapter, from one
// goroutine fed by a bounded queue: the observed goroutines never wait
// for Redis or for a UI (what does not fit in the queue is dropped).
//
// # Status
//
// StatusHandler serves the cluster's state as JSON (see Status) to a
// request carrying the admin key: per node its connections by transport,
// its rates over the last minute and five (connections, events published
// by event, packets and bytes out: from counters the gateway and engine
// keep, sampled every ten seconds) and its view of Redis; the sums; and
// the busiest organizations. The nodes answer over the admin namespace's
// server-side events within Config.RequestTimeout; Status.Cluster.Complete
// says whether they all did.
package admin
