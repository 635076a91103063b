package socketio

import (
	"encoding/json"
	"errors"
)

// This file holds what cluster adapters (package socketio/redisadapter)
// need beyond the Adapter interface.

// SocketObserver is implemented by adapters that track this server's
// sockets, for example to subscribe to each socket's private room channel
// (the Redis sharded adapter's "dynamic-private" mode). SocketAdded is
// called once the socket is registered (before its connection handlers
// run), SocketRemoved once it is unregistered. Like RoomObserver's, the
// calls are made outside any lock and may arrive out of order for a given
// id under concurrent connects and disconnects: an implementation should
// check the current state (Namespace.Socket) rather than trust the event.
type SocketObserver interface {
	SocketAdded(id string)
	SocketRemoved(id string)
}

// NewArgs builds the Args of an acknowledgement or server-side event that
// an adapter received from another server: array is a JSON array of the
// arguments, binary values as {"_placeholder":true,"num":N} placeholders
// indexing attachments.
func NewArgs(array json.RawMessage, attachments [][]byte) (Args, error) {
	if !json.Valid(array) {
		return Args{}, errInvalidArgs
	}
	return parseArgs(array, 0, attachments)
}

var errInvalidArgs = errors.New("socketio: arguments are not valid JSON")

func (n *Namespace) socketAdded(s *Socket) {
	if o, ok := n.adapter.(SocketObserver); ok {
		o.SocketAdded(s.id)
	}
}

func (n *Namespace) socketRemoved(s *Socket) {
	if o, ok := n.adapter.(SocketObserver); ok {
		o.SocketRemoved(s.id)
	}
}
