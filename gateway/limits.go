package gateway

import (
	"hash/maphash"
	"net/netip"
	"strings"
	"sync"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/socketio"
)

// CodeTooManyConnections is the connect_error code of a connection refused
// because its address, user or organization already has as many
// connections as Config allows. Clients retry later, with backoff.
const CodeTooManyConnections = auth.Code("TOO_MANY_CONNECTIONS")

// Defaults of Config.MaxConnectionsPer*: far above what real users need
// (an office behind one NAT address, a user with many tabs, a large
// organization), far below what lets one address, account or tenant hold
// the server's descriptors and memory.
const (
	DefaultMaxConnectionsPerAddress      = 1000
	DefaultMaxConnectionsPerUser         = 100
	DefaultMaxConnectionsPerOrganization = 20000
)

// connectionCaps counts the connected sockets of each client address (an
// IPv6 client's /64, see addressKey), user and organization, and refuses
// connections beyond the caps. Counts move
// when a socket connects and disconnects; the check happens before, at
// authentication, so concurrent connections may overshoot a cap by the
// number being authenticated at that moment (the caps protect the server,
// they are not quotas).
type connectionCaps struct {
	perAddress, perUser, perOrg int // 0: no cap

	mu      sync.Mutex
	address map[string]int
	// user is keyed by a 64-bit hash of the organization and user ids
	// (userKey), not the ids: with one entry per connected user it is the
	// largest of the maps, and an entry of two strings costs ~80 bytes
	// against ~16. Two users whose keys collide (a chance of 2^-64 per
	// pair) share one count: their cap gets stricter, never looser.
	user map[uint64]int
	org  map[string]int
	seed maphash.Seed
}

// userKey: a user id is only unique within its organization's tokens.
type userKey struct{ org, user string }

func (c *connectionCaps) userHash(org, user string) uint64 {
	return maphash.Comparable(c.seed, userKey{org, user})
}

func newConnectionCaps(perAddress, perUser, perOrg int) *connectionCaps {
	norm := func(n, def int) int {
		switch {
		case n < 0:
			return 0
		case n == 0:
			return def
		}
		return n
	}
	return &connectionCaps{
		perAddress: norm(perAddress, DefaultMaxConnectionsPerAddress),
		perUser:    norm(perUser, DefaultMaxConnectionsPerUser),
		perOrg:     norm(perOrg, DefaultMaxConnectionsPerOrganization),
		address:    make(map[string]int),
		user:       make(map[uint64]int),
		org:        make(map[string]int),
		seed:       maphash.MakeSeed(),
	}
}

// full names the cap a new connection of addr, org and user would exceed,
// "" when there is room.
func (c *connectionCaps) full(addr, org, user string) string {
	addr = addressKey(addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.perAddress > 0 && c.address[addr] >= c.perAddress:
		return "address"
	case c.perUser > 0 && c.user[c.userHash(org, user)] >= c.perUser:
		return "user"
	case c.perOrg > 0 && c.org[org] >= c.perOrg:
		return "organization"
	}
	return ""
}

// add counts a connected socket (delta 1) or a disconnected one (-1).
func (c *connectionCaps) add(addr, org, user string, delta int) {
	addr = addressKey(addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	bump(c.address, addr, delta)
	if c.perUser > 0 {
		bump(c.user, c.userHash(org, user), delta)
	}
	bump(c.org, org, delta)
}

// addressKey is what the address cap counts of a client address: an IPv4
// address however it is written (an IPv4-mapped IPv6 form is the same
// client), and an IPv6 address's /64, within which a host picks addresses
// at will (privacy addresses): counted one by one, they would cap nothing.
func addressKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

func bump[K comparable](m map[K]int, k K, delta int) {
	if n := m[k] + delta; n > 0 {
		m[k] = n
	} else {
		delete(m, k) // the maps hold only what is connected
	}
}

// clientAddress is the address a connection is counted and logged under:
// the TCP peer, or, when the peer is a trusted proxy, the last address in
// X-Forwarded-For that is not a trusted proxy itself. Several
// X-Forwarded-For lines are one list, in order: a proxy may add a line of
// its own after the one its client sent rather than append to it.
func clientAddress(h *socketio.Handshake, trusted []netip.Prefix) string {
	peer := h.Address
	if len(trusted) == 0 || !isTrusted(peer, trusted) {
		return peer
	}
	hops := strings.Split(strings.Join(h.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if hop == "" {
			continue
		}
		a, ok := parseHop(hop)
		if !ok {
			return peer // not an address: the header is not to be believed
		}
		if !isTrustedAddr(a, trusted) {
			return a.String()
		}
		peer = a.String()
	}
	return peer
}

// parseHop reads an X-Forwarded-For entry: an address, or an address and
// port as some proxies write them (Azure's, IIS's ARR): 1.2.3.4:5678,
// [2001:db8::1]:443, or [2001:db8::1]. The port is the client's, not part
// of its identity.
func parseHop(hop string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(hop); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(hop); err == nil {
		return ap.Addr(), true
	}
	if len(hop) > 2 && hop[0] == '[' && hop[len(hop)-1] == ']' {
		if a, err := netip.ParseAddr(hop[1 : len(hop)-1]); err == nil && a.Is6() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func isTrusted(addr string, trusted []netip.Prefix) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	return isTrustedAddr(a, trusted)
}

func isTrustedAddr(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
