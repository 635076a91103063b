// Package engineio is an Engine.IO v4 server: the handshake, the HTTP
// long-polling and WebSocket transports, the upgrade from one to the other,
// heartbeats, and a bounded outbound queue per session. It speaks the
// protocol of Node's engine.io 6 (https://socket.io/docs/v4/engine-io-protocol/),
// so that engine.io-client and socket.io-client 4.x connect unchanged, and it
// knows nothing of what the messages mean: the socketio package does.
//
// A Server is an http.Handler. It hands each new Session to a Handler, and
// the session's messages to the SessionHandler that Open returned. Packets
// are built once (NewPacket, BuildText, NewBinaryPacket) and shared by every
// session they are sent to.
//
// # Goroutines
//
// Which goroutines exist, and what each one does:
//
//   - HTTP handlers (net/http, one per request): the handshake; a polling
//     GET, which waits until something is queued (at most until the next
//     ping); a polling POST, which dispatches the packets it carries; a
//     WebSocket upgrade, which hijacks the connection and returns.
//   - The poller (poller_linux.go, one per server): waits in epoll for
//     WebSockets to become readable, and starts a short-lived reader for
//     each one that is: it reads the socket dry without blocking, dispatches,
//     and re-arms the one-shot registration. An idle WebSocket costs no
//     goroutine. Where epoll is unavailable, or a connection has no file
//     descriptor (TLS), a reader goroutine per connection blocks in Read
//     instead, and dispatches each message on a short-lived goroutine to
//     keep its own stack small.
//   - Flushers (websocket_write.go, one per CPU): write a session's queue
//     with one non-blocking writev.
//   - Blocking writers (one per session, only while its client reads
//     slowly): drain its queue with blocking writes, then hand the session
//     back to the flushers.
//   - The timing wheel (heartbeat.go, one per server): pings every session
//     and closes those whose pong is late.
//   - Short-lived helpers: a close that waits for the write token, or for
//     a client that stopped reading, to send its close frame
//     (websocket_close.go), the close of a slow consumer
//     (never inside the broadcast that found it), and timers (the upgrade
//     timeout, the removal of a session the client closed while a GET was
//     on its way, the fallback end of a polling session closed with packets
//     still queued).
//
// Handler.Open runs on the handshake's goroutine. SessionHandler.Message
// runs on the goroutine that read the message (a POST's handler or a
// WebSocket reader), serialized per session by Session.inMu; Closed runs
// exactly once, never during a Message call, on whichever goroutine closed
// the session or, if that one found a Message in progress, on the
// dispatching goroutine right after it. Neither may block for long: the
// session's reading waits for them. Every exported method is safe for
// concurrent use.
//
// # Locks and ownership
//
// The lock order is Session.inMu, then Session.mu, then Server.mu; the
// wheel's and the poller's mutexes are leaves, taken with nothing else
// held. No lock is held during a write that can wait on the network, and
// nobody waits for a write token while holding any of them. The one socket
// I/O that can happen under a lock is a non-blocking write, which returns
// at once whatever the client does: a Message handler that replies with
// SendNow flushes under its session's inMu (never under Session.mu or
// Server.mu), and anything it cannot write at once goes to a blocking
// writer of its own.
//
//   - Session.mu guards the session's state, its queue and queueBytes, the
//     transports (ws, probe, the pending GET) and the heartbeat deadlines.
//   - Session.flushing (under Session.mu) says a WebSocket flush is
//     scheduled or running, and is owned by whoever set it: the goroutine
//     that queued into an idle session owns it until it hands the session
//     to a flusher (or flushes itself, SendNow); the flusher owns it until
//     the queue is empty or it starts a blocking writer, which then owns it
//     until the queue is empty. Hold takes it with nothing to write yet, so
//     that what is queued until Release goes out in one write; a direct
//     WebSocket handshake takes it, with the write token, to write its 101
//     and the open packet together (websocket_open.go). Only the owner
//     takes from the queue for the WebSocket, so one session's frames are
//     written in order.
//   - The write token (wsConn.wtok, writetoken.go) is the right to write
//     bytes to a WebSocket. Its holder is a flusher for one writev, a
//     blocking writer for one batch, the reader for a pong or the probe
//     reply, or a close for the close frame, which retires it: nothing is
//     ever written after the close frame. A flusher that leaves part of a
//     frame unwritten passes the token to the blocking writer it starts, so
//     nothing lands inside a frame.
//   - Deadlines: only the write token's holder touches a WebSocket's write
//     deadline. Each blocking write sets one (WriteTimeout for each part the
//     client takes) and clears it before the token is given up, because the
//     flusher's non-blocking writev fails at once on a connection whose
//     deadline has passed. Reads have no deadline: the heartbeat ends dead
//     connections. A hijacked connection starts with none, whatever the
//     HTTP server had set (ReadTimeout, WriteTimeout). A polling GET sets
//     its own read deadline (so the HTTP server's ReadTimeout cannot end a
//     long poll) and its own write deadline when it answers.
//   - The reader owns its connection's read buffer and frame state; at most
//     one reads a connection at a time (the poller's one-shot registration,
//     or the reader goroutine).
//   - Session.notice says where telling the handler of the close stands
//     (none, pending, done); see notifyClosed.
package engineio
