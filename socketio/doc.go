// Package socketio implements a Socket.IO v5 server (the protocol of
// socket.io 4.x) on top of package engineio: namespaces, sockets, rooms,
// broadcasts, acknowledgements, binary attachments and connection state
// recovery, so that the official socket.io-client 4.x connects unchanged.
//
// # Concurrency
//
// Handlers registered on a Namespace (middleware, connection, events,
// disconnect) are called on the goroutine that reads the client's
// connection, one at a time per client and in the order the client sent
// its packets. They must not block for long: a blocked handler stops that
// client's reading. In particular, do not call Socket.EmitWithAck for the
// same client from its own event handler and wait for the answer there;
// start a goroutine, or use EmitWithAckFunc.
//
// Every exported method of Server, Namespace, Socket and BroadcastOperator is
// safe for concurrent use.
//
// # Broadcasting
//
// A broadcast is encoded once: the Socket.IO packet, the Engine.IO packet and
// the WebSocket frame are built a single time and every recipient's queue
// receives a pointer to the same bytes (see engineio.Packet). Rooms live in
// a sharded index so that joins and broadcasts in different rooms do not
// contend.
//
// # Adapters
//
// An Adapter spreads namespace operations across a cluster of servers; it
// reaches this server's sockets through the AdapterHost its AdapterFactory
// is given, and may offer a RecoveryLog for connection state recovery. The
// default, MemoryAdapter, serves one process. Package socketio/redisadapter
// provides a Redis implementation compatible with Node's
// @socket.io/redis-adapter and @socket.io/redis-streams-adapter.
// docs/architecture.md ("The adapter seam", "Writing an adapter") describes
// both sides.
package socketio
