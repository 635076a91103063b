package realuser

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/sioclient"
)

// TestTokenRefreshThroughExpiries: clients whose tokens live 5 s answer
// each auth:expiring with a fresh token in auth:refresh, as docs/gateway.md
// tells applications to, and stay connected through at least three
// expiries, receiving events all along.
func TestTokenRefreshThroughExpiries(t *testing.T) {
	t.Parallel()
	const (
		ttl      = 5 * time.Second
		warning  = 2 * time.Second
		expiries = 3
	)
	// No leeway: a connection lives exactly as long as its token.
	srv := startServer(t, shortTimers(map[string]string{"TOKEN_EXPIRY_WARNING": warning.String(), "JWT_LEEWAY": "0"}))
	base := srv.resources()
	p := newPopulation(t, srv, populationConfig{orgs: 2, tokenTTL: ttl})

	// outlived[u] are the expiries of the tokens u's connection was given
	// and refreshed, in order.
	outlived := map[*user][]time.Time{}
	refreshes := 0
	p.onEvent = func(u *user, ev sioclient.Event) {
		switch ev.Name {
		case "auth:expired":
			u.problem("token expired: %s", ev)
		case "auth:expiring":
			var warn struct {
				ExpiresAt string `json:"expiresAt"`
			}
			if err := json.Unmarshal(ev.Args[0], &warn); err != nil || warn.ExpiresAt != jsTime(u.expiresAt) {
				u.problem("auth:expiring %s, want expiresAt %s", ev, jsTime(u.expiresAt))
			}
			old := u.expiresAt
			tok := p.mint(u)
			u.c.SetAuth(map[string]any{"token": tok}) // for a reconnection, if one came
			res, err := u.c.EmitWithAck(5*time.Second, "auth:refresh", map[string]any{"token": tok})
			var ack struct {
				OK        bool   `json:"ok"`
				ExpiresAt string `json:"expiresAt"`
				Code      string `json:"code"`
			}
			switch {
			case err != nil:
				u.problem("auth:refresh: %v", err)
			case len(res) != 1 || json.Unmarshal(res[0], &ack) != nil || !ack.OK || ack.ExpiresAt != jsTime(u.expiresAt):
				u.problem("auth:refresh answered %s, want ok with expiresAt %s", res, jsTime(u.expiresAt))
			default:
				outlived[u] = append(outlived[u], old)
				refreshes++
			}
		}
	}
	p.connectAll()

	// Until every connection has lived past the exp of `expiries` tokens,
	// an event per organization every second.
	deadline := time.Now().Add(time.Duration(expiries+3) * ttl)
	for {
		done := true
		for _, u := range p.users {
			n := 0
			for _, exp := range outlived[u] {
				if time.Now().After(exp) {
					n++
				}
			}
			done = done && n >= expiries
		}
		if done {
			break
		}
		p.failOnTrouble()
		if time.Now().After(deadline) {
			t.Fatalf("connections did not outlive %d tokens by the deadline:\n%s", expiries, p.report())
		}
		p.publish(1)
		p.idle(time.Second)
	}
	p.waitEvents(15 * time.Second)
	p.expectNoDisconnect()
	p.checkStates()

	m := srv.metrics()
	if got := m[`realtime_token_refreshes_total{result="ok"}`]; got != float64(refreshes) {
		t.Errorf("the server counts %v refreshes, the clients made %d", got, refreshes)
	}
	for _, name := range []string{`realtime_token_refreshes_total{result="refused"}`, "realtime_token_expiries_total"} {
		if m[name] != 0 {
			t.Errorf("%s = %v, want 0", name, m[name])
		}
	}
	p.closeAll(base)
}

// jsTime formats t as the gateway writes times (JavaScript's toISOString).
func jsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
