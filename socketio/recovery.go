package socketio

import (
	"errors"
	"time"
)

// RecoveryOptions enable connection state recovery: a client that lost its
// connection and comes back within MaxDisconnectionDuration gets the same
// socket id, rooms and data, and the events it missed. A client that comes
// back while its old socket still looks connected (it noticed the dead
// connection first) takes that socket over: the old one is disconnected
// with ReasonClientReconnected, and its session recovered. With
// RunMiddlewares, that happens only once the middlewares accepted the
// client for the session: a private id alone ends no live socket.
type RecoveryOptions struct {
	// MaxDisconnectionDuration is how long a session and the packets it
	// may miss are kept. Zero means 2 minutes.
	MaxDisconnectionDuration time.Duration
	// RunMiddlewares runs the connect middlewares on a recovered
	// connection too; they see it as Recovered, with its restored Data,
	// which they may replace or decline (ErrDeclineRecovery). By default
	// (false) they are skipped, as in Node (skipMiddlewares: true).
	RunMiddlewares bool
	// MaxPackets bounds the number of packets kept for replay; older ones
	// are dropped (their sessions then fail to recover and start afresh).
	// Zero means 100,000.
	MaxPackets int

	// HistoryRooms, if set, selects rooms whose packets are kept in a
	// history of their own, bounded by HistorySize packets and HistoryTTL
	// per room instead of MaxPackets and MaxDisconnectionDuration for the
	// whole namespace (an extension of ours; Node has nothing like it): a
	// busy room cannot evict a quiet one's packets. A broadcast whose
	// target rooms are all selected is kept in each of their histories;
	// any other (to every socket, or to another room) in the namespace's
	// log. Recovery and History read both. With the Redis streams adapter
	// each selected room gets a stream of its own.
	HistoryRooms func(room string) bool
	// HistorySize bounds each room's history. Zero means
	// DefaultHistorySize (1,000).
	HistorySize int
	// HistoryTTL is how long a room's packets are kept. Zero means
	// DefaultHistoryTTL (7 days).
	HistoryTTL time.Duration
}

// historyBounds returns the per-room history bounds with defaults
// applied.
func (o *RecoveryOptions) historyBounds() (size int, ttl time.Duration) {
	size, ttl = o.HistorySize, o.HistoryTTL
	if size <= 0 {
		size = DefaultHistorySize
	}
	if ttl <= 0 {
		ttl = DefaultHistoryTTL
	}
	return size, ttl
}

// HistoryBounds returns the per-room history bounds (HistorySize,
// HistoryTTL) with their defaults applied.
func (o RecoveryOptions) HistoryBounds() (size int, ttl time.Duration) { return o.historyBounds() }

// ErrDeclineRecovery, returned by a connect middleware for a recovered
// socket (with RecoveryOptions.RunMiddlewares), connects the client as a
// new socket instead: the session is dropped, nothing is replayed, and the
// middlewares run again on the new socket. It is how a middleware refuses
// to hand a session to a different identity (the client kept its private
// session id across a change of user) without refusing the connection.
// For a socket that is not recovered it refuses the connection like any
// other error.
var ErrDeclineRecovery = errors.New("socketio: recovery declined")
