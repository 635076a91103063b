package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/events"
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

// TestPublisherEventsAreValid checks that every event the publisher posts
// passes the gateway's validation (a 400 would stop the soak), that the
// organization events cover the catalog's every domain of organization
// audience, and that notifications name their user.
func TestPublisherEventsAreValid(t *testing.T) {
	p := newPublisher("http://unused", []string{"org-1"}, map[string]string{"user-7": "org-1"})
	domains := map[string]bool{}
	for seq := 1; seq <= len(orgKinds)+len(userKinds); seq++ {
		for _, key := range []string{"org-1", "user-7"} {
			name, body, err := p.body(key, seq)
			if err != nil {
				t.Fatal(err)
			}
			var req struct {
				Event   string          `json:"event"`
				Payload json.RawMessage `json:"payload"`
			}
			if err := json.Unmarshal(body, &req); err != nil {
				t.Fatal(err)
			}
			ev, err := events.NewEvent(events.Name(req.Event), req.Payload, events.Target{}, time.Now())
			if err != nil {
				t.Fatalf("%s #%d to %s: %v", name, seq, key, err)
			}
			rooms := ev.Target.Rooms()
			switch key {
			case "user-7":
				if !isUserEvent(name) || name != userEventName(seq) || len(rooms) != 1 || rooms[0] != events.UserRoom("user-7") {
					t.Errorf("%s #%d to user-7: rooms %v", name, seq, rooms)
				}
			default:
				if isUserEvent(name) || name != eventName(seq) {
					t.Errorf("%s #%d to org-1 (want %s)", name, seq, eventName(seq))
				}
				domain, _, _ := strings.Cut(name, ":")
				domains[domain] = true
			}
		}
	}
	for _, d := range []string{"invoice", "expense", "bank", "document", "hr", "tax", "integration", "automation"} {
		if !domains[d] {
			t.Errorf("no %s event published to organizations", d)
		}
	}
}
