package gateway

// CapCounts returns the connections the caps count, summed over addresses,
// users and organizations: all three are 0 once every socket is gone.
func CapCounts(g *Gateway) (addresses, users, orgs int) {
	c := g.caps
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.address {
		addresses += n
	}
	for _, n := range c.user {
		users += n
	}
	for _, n := range c.org {
		orgs += n
	}
	return addresses, users, orgs
}
