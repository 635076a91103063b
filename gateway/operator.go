package gateway

import "github.com/operate/realtime/socketio"

// OrganizationConnections returns how many sockets each organization has
// connected to this node (organizations without any are absent): the
// counts the connection caps keep, copied.
func (g *Gateway) OrganizationConnections() map[string]int {
	c := g.caps
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.org))
	for org, n := range c.org {
		out[org] = n
	}
	return out
}

// ClientAddressOf returns the address a socket of the gateway's namespace
// is counted and logged under: its TCP peer, or the client's address from
// X-Forwarded-For when the peer is a trusted proxy (Config.TrustedProxies).
// ok is false for any other socket.
func ClientAddressOf(s *socketio.Socket) (address string, ok bool) {
	sess := sessionOf(s)
	if sess == nil {
		return "", false
	}
	return sess.address, true
}
