// Package redisadapter scales a socketio.Server horizontally over Redis
// Pub/Sub, wire-compatible with Node's @socket.io/redis-adapter 8.3, so
// that Go and Node servers can share one cluster and Node's
// @socket.io/redis-emitter can publish to both.
//
// Usage:
//
//	cfg, ok, err := redisadapter.ConfigFromEnv(os.Getenv)
//	...
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
// the broadcasts it needs. Every server of a cluster must use the same mode,
// key prefix and subscription mode. docs/redis.md has the details and the
// interoperability matrix.
//
// # Delivery
//
// Broadcasts are delivered to the local sockets first, then published once
// (one encode per broadcast; the Redis client pipelines concurrent
// publishes automatically). Event arguments stay raw JSON on our side;
// binary attachments travel as msgpack bin, so Node receives Buffers. A
// broadcast that cannot be published returns an error wrapping
// ErrUnavailable; its local delivery has happened.
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
// Connection state recovery is not supported over Redis Pub/Sub (as in
// Node): the adapters do not persist sessions.
package redisadapter
