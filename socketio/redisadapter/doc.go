// Package redisadapter scales a socketio.Server horizontally over Redis,
// wire-compatible with Node's @socket.io/redis-adapter 8.3 (Pub/Sub) and
// @socket.io/redis-streams-adapter 0.3.1 (Redis streams), so that Go and
// Node servers can share one cluster and Node's @socket.io/redis-emitter can
// publish to both.
//
// Usage:
//
//	cfg := redisadapter.Config{Addr: "127.0.0.1:6379", Mode: redisadapter.Streams}
//	cluster, err := redisadapter.New(cfg) // never waits for Redis
//	srv, err := socketio.NewServer(&socketio.Options{Adapter: cluster.Adapter})
//	...
//	http.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
//		if err := cluster.Ready(); err != nil { http.Error(w, err.Error(), 503) }
//	})
//	...
//	srv.Shutdown(ctx)
//	cluster.Close()
//
// # Modes
//
// Classic (the default) is createAdapter: every server PSUBSCRIBEs
// "socket.io#<nsp>#*" and SUBSCRIBEs the request and response channels;
// broadcasts are the msgpack envelope [uid, packet, opts], published on the
// room's channel when exactly one room is targeted. Sharded is
// createShardedAdapter (Redis 7 SPUBLISH/SSUBSCRIBE, ClusterMessage
// {uid, nsp, type, data}); with the dynamic subscription modes a server
// subscribes to a room's channel while it has members in it (through
// socketio.RoomObserver and socketio.SocketObserver), so it only receives
// the broadcasts it needs. Streams is the streams adapter's createAdapter:
// see below. Every server of a cluster must use the same mode, key prefix
// and subscription mode. docs/redis.md has the details, the guarantees of
// each mode and the interoperability matrix.
//
// # Streams and connection state recovery
//
// In Streams mode broadcasts and room operations are entries of a Redis
// stream (XADD … MAXLEN ~, one stream per namespace group, see
// Config.StreamCount) that every server reads back (XREAD) on one
// goroutine per stream; requests (fetchSockets, serverSideEmit, broadcasts
// with ack) travel over Pub/Sub as msgpack ClusterMessages. Each server
// delivers the entries in stream order, its own broadcasts included (a
// Broadcast returns once this server delivered it), with the entry id as
// the recovery offset, so a client's last offset is the highest it got.
//
// With socketio.Options.Recovery, sessions are kept in Redis under
// Config.SessionKeyPrefix + pid (base64 msgpack {sid, pid, rooms, data}, as
// Node stores them) for the recovery window: at every recoverable
// disconnection, and — unlike Node — also while the socket is connected
// (stored when it connects and every third of the window, see
// socketio.SessionKeeper), so that the clients of a server killed without
// warning still recover on another one. A restored session is read with
// GET, not taken with GETDEL as Node does, and stays until it expires: a
// client whose recovered connection drops again, even unseen by the
// server, recovers again. A reconnecting client, on any server, gets what
// it missed read from the stream after its offset, before the CONNECT
// reply; what is broadcast meanwhile is buffered and de-duplicated by
// stream position (socketio's recovery). When the replay cannot be whole —
// the offset was trimmed (MaxLen), the session expired, Redis lost its
// data — the client connects as a new socket (recovered false), never with
// part of what it missed. A stream reader that finds, after a failure,
// that the last entry it read is gone from the stream drops the
// connections of its local sockets, so that their clients learn the same.
// Socket data leaves the process as JSON (json.Marshal; it comes back as
// json.RawMessage).
//
// # Delivery
//
// In the Pub/Sub modes broadcasts are delivered to the local sockets
// first, then published once; in Streams mode they are appended once and
// delivered here by the stream's reader (one encode per broadcast either
// way; the Redis client pipelines concurrent commands automatically).
// Event arguments stay raw JSON on our side; binary attachments travel as
// msgpack bin, so Node receives Buffers. A broadcast that cannot be
// published returns an error wrapping ErrUnavailable; its local delivery
// has happened (in Streams mode without an offset).
//
// # Concurrency
//
// Messages are read from one subscription connection whose read loop never
// blocks: each message is handed to one of Config.Workers workers with a
// bounded queue. The worker is chosen by the uid of the server that
// published the message (read without decoding it), or by channel when
// there is none, so the broadcasts and requests of one publisher are
// handled in the order it sent them, whatever their rooms, while the
// traffic of different publishers is handled in parallel. Server-side
// event handlers (Namespace.OnServerSideEmit) run on these workers and
// must not block. If a worker's queue is full the message is dropped and
// counted (Stats.Dropped): Pub/Sub is at-most-once anyway.
//
// # Failures
//
// See Cluster: the server starts and serves local clients while Redis is
// down, Ready reports the truth, reconnection resubscribes everything, and
// a periodic probe rebuilds a subscription that silently stopped
// delivering.
//
// Connection state recovery is not supported by the Pub/Sub modes (as in
// Node): their adapters do not persist sessions.
package redisadapter
