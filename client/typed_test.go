package client_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/operate/realtime/client"
	"github.com/operate/realtime/gateway/events"
)

// The organization and user of the typed-handler samples (events_gen_test.go).
const (
	sampleOrg  = "org_typed"
	sampleUser = "user_typed"
)

// sampleTime has millisecond precision in UTC, as the gateway writes times.
var sampleTime = time.Date(2025, 1, 31, 9, 45, 0, 123_000_000, time.UTC)

func ptr[T any](v T) *T { return &v }

// typedCase is one catalog event in the generated table: how to register
// its typed handler, how to emit it, and a payload with every field set.
type typedCase struct {
	name   events.Name
	on     func(c *client.Client, got chan<- any) (off func())
	emit   func(ctx context.Context, svc *events.EventsService, p any) (string, error)
	sample any
}

// TestTypedHandlersForEveryEvent sends every catalog event, with every
// field of its payload set, through the gateway, and expects it back in its
// typed handler equal field for field. The table is generated from the
// catalog (events_gen_test.go), like the handlers.
func TestTypedHandlersForEveryEvent(t *testing.T) {
	if len(typedCases) != len(events.Events()) {
		t.Fatalf("%d typed cases for %d catalog events: run go generate ./gateway/events", len(typedCases), len(events.Events()))
	}
	s := startServer(t, serverOptions{})
	c := newClient(t, client.Config{URL: s.url, Token: token(t, sampleOrg, sampleUser, time.Hour)})
	got := make(chan any, 1)
	var last events.Name
	for _, tc := range typedCases {
		tc.on(c, got)
	}
	raw := record(c)
	c.OnEvent(string(events.InvoicePaid), func(json.RawMessage) {}) // raw beside typed: both run
	connect(t, c)
	ctx := context.Background()
	for _, tc := range typedCases {
		if _, err := tc.emit(ctx, s.svc, tc.sample); err != nil {
			t.Fatalf("%s: emit: %v", tc.name, err)
		}
		select {
		case p := <-got:
			if !reflect.DeepEqual(p, tc.sample) {
				t.Errorf("%s: typed handler got\n%#v\nwant\n%#v", tc.name, p, tc.sample)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("%s: typed handler not called (last received: %s)", tc.name, last)
		}
		last = tc.name
	}
	raw.mu.Lock()
	defer raw.mu.Unlock()
	if len(raw.errs) > 0 {
		t.Errorf("errors reported: %v", raw.errs)
	}
}
