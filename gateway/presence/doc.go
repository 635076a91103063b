// Package presence keeps who is online in each organization of a gateway:
// its users, their connection counts and since when, across the nodes of a
// cluster, and reports the changes (a user came online, a user's last
// connection is gone) once for the whole cluster.
//
// A Tracker is a gateway.Observer: the gateway tells it of every socket
// that connects and disconnects, on the socket's goroutine, and the
// tracker only updates its own counts there (one map update under a
// mutex); everything else happens on the tracker's goroutine.
//
// # Grace
//
// A user whose last connection drops stays present for Config.Grace (5 s):
// a reload, a network switch or a move to another node within it is not a
// departure, so no presence:left/presence:joined pair flaps. Until then the
// user is listed with zero connections.
//
// # Across nodes (Redis)
//
// With Config.Redis, each organization is a Redis hash, <prefix>org:<org>,
// with a field per user holding, per node, that node's connection count
// and since when ({"<node>": [connections, sinceMs]}), and the nodes are a
// sorted set, <prefix>nodes, scored with the Redis time until which each
// node is alive. Every node renews its score every TTL/3 (a heartbeat); a
// node that stops renewing (killed, frozen, cut off from Redis) is dead
// TTL after its last heartbeat: from then its counts are left out of every
// answer, and within the next TTL/3 a surviving node removes them, and
// reports as left the users who were only there. Each change is a Lua
// script that also says whether the user was present on some node before
// and after it, so exactly one node reports each joined and each left,
// whichever nodes the user's connections come and go on. A node that
// shuts down cleanly keeps its counts for Grace only, so that its clients
// can reconnect elsewhere without flapping.
//
// Every time is Redis's (TIME, in the scripts), so the nodes' clocks do
// not matter. When Redis cannot be reached, changes wait on the node
// (coalesced per user: a node holds at most one pending change per
// user) and are written when it is back; a node cut off for longer than
// TTL finds itself dead and writes all of its counts again.
//
// Reads of an organization are batched per node: one at a time, shared
// by the requests that arrived before it started (see readBatcher).
//
// Without Redis, presence is this process's own.
package presence
