package realuser

import (
	"testing"
	"time"
)

// shortTimers makes every server timeout short, so that a test idles past
// all of them in seconds: a ping every second, a pong awaited 2 s, a
// write given 500 ms.
func shortTimers(extra map[string]string) map[string]string {
	env := map[string]string{"PING_INTERVAL": "1s", "PING_TIMEOUT": "2s", "WRITE_TIMEOUT": "500ms"}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// TestIdlePastEveryTimeout: clients of three organizations in the three
// transport modes stay connected while idle longer than the ping
// interval, the ping timeout and the write timeout together, twice, and
// receive every event published after each idle stretch.
func TestIdlePastEveryTimeout(t *testing.T) {
	t.Parallel()
	srv := startServer(t, shortTimers(nil))
	base := srv.resources()
	p := newPopulation(t, srv, populationConfig{orgs: 3, perMode: 2})
	p.connectAll()

	for range 2 {
		// Longer than PING_INTERVAL + PING_TIMEOUT (3 s) and WRITE_TIMEOUT:
		// the heartbeat runs a few times, and the events below are the
		// first writes long after the probe reply and the last pong.
		p.idle(4 * time.Second)
		p.publish(5)
		p.waitEvents(15 * time.Second)
	}
	p.expectNoDisconnect()
	p.checkStates()
	m := srv.metrics()
	if lost := m["realtime_engine_heartbeats_lost_total"]; lost != 0 {
		t.Errorf("realtime_engine_heartbeats_lost_total = %v, want 0", lost)
	}
	if got, want := m["realtime_engine_upgrades_total"], float64(len(p.orgs)*2); got != want {
		t.Errorf("realtime_engine_upgrades_total = %v, want %v (one per default-transport client)", got, want)
	}
	p.closeAll(base)
}

// TestIdleOnServerDefaults: on the server's default timing (no timing
// variable set: a ping every 25 s, 20 s for the pong, 10 s per write),
// clients in the three transport modes stay connected through 35 s of
// idleness, past the first heartbeat, and receive the event published
// then. This is the original bug's reproduction: every upgraded
// connection was cut at its first write more than 10 s after the upgrade,
// that is the first ping at 25 s, and the client reconnected, over and
// over.
func TestIdleOnServerDefaults(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	base := srv.resources()
	p := newPopulation(t, srv, populationConfig{orgs: 2})
	p.connectAll()

	p.idle(35 * time.Second)
	p.publish(3)
	p.expectNoDisconnect()
	p.waitEvents(15 * time.Second)
	p.checkStates()
	p.closeAll(base)
}
