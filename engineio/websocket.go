package engineio

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// The WebSocket transport, by concern:
//
//	websocket.go         the connection type and who owns each field
//	websocket_accept.go  the HTTP upgrade, and the polling-to-WebSocket upgrade (probe)
//	websocket_read.go    reading: the poller's short-lived readers, or a reader goroutine
//	websocket_frame.go   parsing client frames into Engine.IO packets
//	websocket_write.go   writing: the flusher pool, the blocking writer, direct writes
//	websocket_close.go   closing, with the close frame last on the wire
//	writetoken.go        the write token that serializes every write
//
// doc.go describes the goroutines and the lock order.

// WebSocket close codes used here (RFC 6455 section 7.4.1).
const (
	closeNormal        = 1000
	closeProtocolError = 1002
	closeInvalidData   = 1007
	closeTooBig        = 1009
)

// errPeerClosed ends the read loop when the client sent a close frame.
var errPeerClosed = errors.New("engineio: websocket closed by peer")

// wsError carries the close code to send for a protocol violation.
type wsError struct {
	code   int
	reason CloseReason
	msg    string
}

func (e *wsError) Error() string { return "engineio: websocket: " + e.msg }

// wsConn is one WebSocket connection: either a session's transport, or a
// probe that may become one (polling-to-WebSocket upgrade).
type wsConn struct {
	// Static after construction.
	conn    net.Conn
	raw     syscall.RawConn // nil when conn has no file descriptor (e.g. TLS)
	srv     *Server
	sess    *Session
	fd      int  // the descriptor the poller watches, when polled
	deflate bool // permessage-deflate was negotiated
	// polled: readability comes from the server's poller (no reader
	// goroutine).
	polled bool

	// Guarded by the poller's mutex.
	pollForgotten bool
	pollID        uint64

	// Owned by the reader (one at a time: the poller's one-shot
	// registration, or the reader goroutine). The small fields sit
	// together: this struct is kept per connection.
	probing bool
	inMsg   bool // a fragmented message is in progress, in msg
	msgDefl bool
	msgOp   byte
	// shut is set once the socket is closed (shutdown); any goroutine.
	shut    atomic.Bool
	rbuf    []byte // nil when idle
	pooled  *[]byte
	r, w    int
	msg     []byte
	readFn  func(fd uintptr) bool
	readErr error

	// wtok is the right to write to conn, and with it to set conn's write
	// deadline (writetoken.go). Whoever holds it writes; nobody else does.
	wtok writeToken

	// closeOnce runs close; closedFor is why the reader closed conn, set
	// before it does: a write that fails on the closed conn may reach the
	// session's close first and must report the same reason.
	closeOnce sync.Once
	closedFor atomic.Pointer[CloseReason]
}
