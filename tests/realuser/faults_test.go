package realuser

import (
	"slices"
	"testing"
	"time"
)

// The fault tests put a fault proxy (internal/faultproxy) between each
// client and the server, with connection state recovery on: whatever the
// network does, a client that comes back within RECOVERY_WINDOW must be
// recovered, missing nothing and receiving nothing twice.

// faultEnv is the server's environment in the fault tests: short timers,
// so that a dead connection is noticed in 3 s, and a recovery window far
// longer than any fault.
func faultEnv() map[string]string {
	return shortTimers(map[string]string{"RECOVERY_WINDOW": "30s"})
}

// networkReasons are socket.io-client's reasons for a connection the
// network ended: a WebSocket closed under it, a poll request that failed.
func networkReasons() []string { return []string{"transport close", "transport error"} }

// serverNetworkReasons are the server's reasons for a connection the
// network ended: those two; and for a polling client whose next request
// never came (between two requests, it had no connection to see reset),
// a ping timeout, or "client reconnected" if the client came back first.
func serverNetworkReasons() []string {
	return append(networkReasons(), "ping timeout", "client reconnected")
}

// TestCutEveryConnection: every connection is reset at once (a network
// switch, a NAT restart). Every client reconnects by itself, recovered,
// and receives what was published while it was away.
func TestCutEveryConnection(t *testing.T) {
	t.Parallel()
	srv := startServer(t, faultEnv())
	base := srv.resources()
	p := newPopulation(t, srv, populationConfig{orgs: 2, proxied: true})
	p.connectAll()
	p.publish(3)
	p.waitEvents(15 * time.Second)

	m := p.mark()
	p.waitConnections(p.users)
	for _, u := range p.users {
		if u.proxy.Cut() == 0 {
			t.Fatalf("%s: nothing to cut", u.name)
		}
	}
	p.publish(3) // while the clients are away
	p.waitBack(m, p.users, 30*time.Second)
	p.publish(3)
	p.waitEvents(15 * time.Second)
	p.expectFault(m, fault{hit: p.users, reasons: networkReasons()})
	p.checkStates()
	p.expectServerAgrees(serverNetworkReasons())
	p.closeAll(base)
}

// TestStalledConnection: the connections of three clients (one per
// transport mode) go silent without closing, past the ping timeout (a
// laptop lid, a Wi-Fi dead zone). Each of them notices by the missing
// heartbeat, reconnects and is recovered with nothing missing; the other
// clients see nothing.
func TestStalledConnection(t *testing.T) {
	t.Parallel()
	srv := startServer(t, faultEnv())
	base := srv.resources()
	p := newPopulation(t, srv, populationConfig{orgs: 2, proxied: true})
	p.connectAll()
	p.publish(3)
	p.waitEvents(15 * time.Second)

	stalled := p.onePerMode()
	m := p.mark()
	p.waitConnections(stalled)
	for _, u := range stalled {
		// Longer than PING_INTERVAL + PING_TIMEOUT (3 s), after which both
		// ends give up on the connection.
		if u.proxy.Stall(100, 6*time.Second) == 0 {
			t.Fatalf("%s: nothing to stall", u.name)
		}
	}
	p.publish(3) // the stalled clients cannot receive these for now
	p.waitBack(m, stalled, 30*time.Second)
	p.publish(3)
	p.waitEvents(15 * time.Second)
	p.expectFault(m, fault{hit: stalled, reasons: []string{"ping timeout"}})
	p.checkStates()
	// Both ends notice at the same time, by the heartbeat; should the
	// client be back before the server did, it takes its socket over.
	p.expectServerAgrees([]string{"ping timeout", "client reconnected"})
	p.closeAll(base)
}

// TestRefusedReconnections: right after every connection is cut, the
// server cannot be reached for 3 s (new connections are reset). Clients
// keep retrying with their back-off, and once the outage ends they come
// back recovered with nothing missing.
func TestRefusedReconnections(t *testing.T) {
	t.Parallel()
	srv := startServer(t, faultEnv())
	base := srv.resources()
	p := newPopulation(t, srv, populationConfig{orgs: 2, proxied: true})
	p.connectAll()
	p.publish(3)
	p.waitEvents(15 * time.Second)

	m := p.mark()
	p.waitConnections(p.users)
	for _, u := range p.users {
		u.proxy.Refuse(3 * time.Second)
		if u.proxy.Cut() == 0 {
			t.Fatalf("%s: nothing to cut", u.name)
		}
	}
	p.publish(3) // during the outage
	p.waitBack(m, p.users, 40*time.Second)
	for _, u := range p.users {
		if u.proxy.Stats().Refused.Load() == 0 {
			t.Errorf("%s: the proxy refused no connection", u.name)
		}
	}
	p.publish(3)
	p.waitEvents(15 * time.Second)
	p.expectFault(m, fault{hit: p.users, reasons: networkReasons(), retries: true, mustRetry: true})
	p.checkStates()
	p.expectServerAgrees(serverNetworkReasons())
	p.closeAll(base)
}

// waitBack waits until each of users has connected again since m, and
// every client is connected on its final transport.
func (p *population) waitBack(m marks, users []*user, within time.Duration) {
	p.t.Helper()
	p.waitUntil("every client back", within, func() bool {
		for _, u := range users {
			if len(u.connects) == m[u][1] {
				return false
			}
		}
		return p.settled()
	})
}

// waitConnections waits until each user's proxy holds a connection. A
// polling client has none open between two requests: a fault then would
// miss it (its next request gets through) and make the test a matter of
// luck. The wait is short, a poll being answered within a ping interval.
func (p *population) waitConnections(users []*user) {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		open := true
		for _, u := range users {
			open = open && u.proxy.Conns() > 0
		}
		if open {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("some clients had no connection open for 10s:\n%s", p.report())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestClientNoticesFirst: the connections of three clients (one per
// transport mode) go dead, and each client gives up on its connection
// before the server notices anything, as a laptop waking from sleep does,
// and reconnects at once. On the server's default heartbeat the old
// sockets would look alive for 45 s more; each client takes its session
// over instead and is recovered, missing nothing sent to its dead
// connection.
func TestClientNoticesFirst(t *testing.T) {
	t.Parallel()
	srv := startServer(t, map[string]string{"RECOVERY_WINDOW": "30s"})
	base := srv.resources()
	p := newPopulation(t, srv, populationConfig{orgs: 2, proxied: true})
	p.connectAll()
	p.publish(3)
	p.waitEvents(15 * time.Second)

	hit := p.onePerMode()
	m := p.mark()
	p.waitConnections(hit)
	for _, u := range hit {
		// The connection goes dead: the server hears nothing more of it,
		// and for a second the network is not back, so that the client's
		// own goodbye (a POST when polling) is lost too.
		u.proxy.Stall(100, time.Minute)
		u.proxy.Refuse(time.Second)
	}
	p.publish(2) // to the dead connections
	for _, u := range hit {
		u.c.CloseEngine() // the client gives up on it first
	}
	p.waitBack(m, hit, 30*time.Second)
	p.publish(2)
	p.waitEvents(15 * time.Second)
	p.expectFault(m, fault{hit: hit, reasons: []string{"forced close"}, retries: true})
	p.checkStates()
	p.expectServerAgrees([]string{"client reconnected"})
	p.closeAll(base)
}

// onePerMode picks a client of each transport mode, from alternating
// organizations.
func (p *population) onePerMode() []*user {
	var out []*user
	for i, mode := range transportModes() {
		for _, u := range p.users {
			if u.mode.name == mode.name && u.org == p.orgs[i%len(p.orgs)] {
				out = append(out, u)
				break
			}
		}
	}
	return out
}

// expectServerAgrees checks the server's side of the faults: as many
// clients connected as there are, as many recovered as reconnected, and
// one logged disconnection (for one of reasons) per disconnection the
// clients saw.
func (p *population) expectServerAgrees(reasons []string) {
	p.t.Helper()
	p.poll()
	disconnects, reconnects := 0, 0
	for _, u := range p.users {
		disconnects += len(u.disconnects)
		reconnects += len(u.connects) - 1
	}
	p.srv.waitMetric("realtime_connections", 15*time.Second, func(v float64) bool { return v == float64(len(p.users)) }, "one per client")
	p.srv.waitMetric("realtime_engine_sessions", 15*time.Second, func(v float64) bool { return v == float64(len(p.users)) }, "one per client")
	if got := p.srv.metrics()["realtime_connections_recovered_total"]; got != float64(reconnects) {
		p.t.Errorf("realtime_connections_recovered_total = %v, want %d (every reconnection)", got, reconnects)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		logged := p.srv.disconnects()
		total, unexplained := 0, map[string]int{}
		for reason, n := range logged {
			total += n
			if !slices.Contains(reasons, reason) {
				unexplained[reason] = n
			}
		}
		if len(unexplained) > 0 {
			p.t.Fatalf("the server logged disconnections for %v, want only %q\n%s", unexplained, reasons, p.report())
		}
		if total == disconnects {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the server logged %d disconnections (%v), the clients saw %d\n%s", total, logged, disconnects, p.report())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
