package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestSoakSmoke runs the whole soak briefly: a few hundred real clients,
// each kind of fault once, the restart, and the judge, on shortened
// heartbeats. It is what `make test` runs of `make soak`.
func TestSoakSmoke(t *testing.T) {
	cfg, err := configFromEnv(func(name string) string {
		return map[string]string{
			// A cut, the restart, a stall, in 45 s; heartbeats long enough
			// for a loaded machine.
			"SOAK_DURATION":      "45s",
			"SOAK_QUIET":         "20s",
			"SOAK_CLIENTS":       "200",
			"SOAK_ORGS":          "10",
			"SOAK_FAULT_EVERY":   "8s",
			"SOAK_PING_INTERVAL": "5s",
			"SOAK_PING_TIMEOUT":  "5s",
			"SOAK_TOKEN_TTL":     "30s",
			"SOAK_MEAN_GAP":      "3s",
			"SOAK_OUT":           t.TempDir(),
		}[name]
	})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	v, err := run(ctx, cfg, &log)
	if err != nil {
		t.Fatalf("soak: %v\n%s", err, log.String())
	}
	if !v.Pass {
		t.Fatalf("the soak failed:\n%s", log.String())
	}
	// It judged something: the cuts and the restart disconnected clients
	// (a stall or a refusal may not: a stall can end before the heartbeat
	// notices it), events flowed, clients recovered and refreshed tokens.
	for _, want := range []string{"cut", "restart"} {
		found := false
		for k := range v.DisconnectsBy {
			found = found || strings.HasPrefix(k, want+"/")
		}
		if !found {
			t.Errorf("no disconnection explained by %s: %v\n%s", want, v.DisconnectsBy, log.String())
		}
	}
	if v.EventsReceived == 0 || v.Recovered == 0 || v.Refreshes == 0 {
		t.Errorf("events %d, recovered %d, refreshes %d: want some of each\n%s", v.EventsReceived, v.Recovered, v.Refreshes, log.String())
	}
	t.Logf("\n%s", log.String())
}

func TestConfigFromEnv(t *testing.T) {
	cfg, err := configFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Duration != 10*time.Minute || cfg.Clients != 2000 || cfg.Orgs != 100 || cfg.Mix != [3]int{80, 15, 5} {
		t.Errorf("defaults: %+v", cfg)
	}
	modes := map[string]int{}
	perOrg := map[string]map[string]int{}
	for i := range cfg.Clients {
		modes[cfg.mode(i)]++
		org := cfg.org(i)
		if perOrg[org] == nil {
			perOrg[org] = map[string]int{}
		}
		perOrg[org][cfg.mode(i)]++
	}
	if modes["default"] != 1600 || modes["polling"] != 300 || modes["websocket"] != 100 {
		t.Errorf("modes %v, want the 80/15/5 mix", modes)
	}
	mixed := 0
	for _, m := range perOrg {
		if len(m) >= 2 {
			mixed++
		}
	}
	if mixed < len(perOrg)*9/10 {
		t.Errorf("only %d of %d organizations have clients of two modes or more", mixed, len(perOrg))
	}

	for _, bad := range []map[string]string{
		{"SOAK_DURATION": "ten"},
		{"SOAK_CLIENTS": "-1"},
		{"SOAK_MIX": "50,50"},
		{"SOAK_MIX": "50,40,5"},
		{"SOAK_CLIENTS": "10000"},
	} {
		if _, err := configFromEnv(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
