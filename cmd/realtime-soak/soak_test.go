package main

import (
	"testing"
	"time"
)

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
