package admin

import (
	"time"

	"github.com/operate/realtime/gateway"
)

// NewWithTiming is New with the stats interval, lease and renewal
// intervals given, so that tests see leases expire in seconds.
func NewWithTiming(gw *gateway.Gateway, cfg Config, stats, lease, renew time.Duration) (*Admin, error) {
	return newAdmin(gw, cfg, timing{stats: stats, leaseTTL: lease, leaseRenew: renew, sample: sampleEvery})
}

// Watching reports whether this node holds a lease (and so observes its
// sockets for the UI).
func (a *Admin) Watching() bool { return a.watching.Load() }
