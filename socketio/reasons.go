package socketio

import "github.com/operate/realtime/engineio"

// DisconnectReason says why a socket was disconnected, with Node's names.
type DisconnectReason string

// Disconnect reasons.
const (
	ReasonTransportClose         DisconnectReason = "transport close"
	ReasonTransportError         DisconnectReason = "transport error"
	ReasonPingTimeout            DisconnectReason = "ping timeout"
	ReasonParseError             DisconnectReason = "parse error"
	ReasonForcedClose            DisconnectReason = "forced close"
	ReasonServerShuttingDown     DisconnectReason = "server shutting down"
	ReasonForcedServerClose      DisconnectReason = "forced server close"
	ReasonClientNamespaceDisconn DisconnectReason = "client namespace disconnect"
	ReasonServerNamespaceDisconn DisconnectReason = "server namespace disconnect"
	// ReasonSlowConsumer: the client did not read its messages fast enough
	// (see engineio.Options.MaxQueueBytes).
	ReasonSlowConsumer DisconnectReason = "slow consumer"
	// ReasonClientReconnected: with connection state recovery, the client
	// reconnected on another connection, presenting this socket's private
	// id, while this one still looked alive; its session went with it.
	ReasonClientReconnected DisconnectReason = "client reconnected"
)

// recoverable reports whether a session disconnected for this reason may be
// restored by connection state recovery: the connection was lost, not ended
// on purpose by either side.
func (r DisconnectReason) recoverable() bool {
	switch r {
	case ReasonTransportError, ReasonTransportClose, ReasonForcedClose, ReasonPingTimeout,
		ReasonServerShuttingDown, ReasonForcedServerClose, ReasonSlowConsumer, ReasonClientReconnected:
		return true
	}
	return false
}

func reasonFromEngine(r engineio.CloseReason) DisconnectReason { return DisconnectReason(r) }
