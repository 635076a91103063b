package events_test

import (
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/events"
)

func TestNewEventID(t *testing.T) {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	t0 := time.UnixMilli(1_738_315_800_000)
	seen := map[string]bool{}
	prev := ""
	for i := range 1000 {
		id := events.NewEventID(t0.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 26 || strings.Trim(id, alphabet) != "" {
			t.Fatalf("id %q is not 26 Crockford base32 digits", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
		if id <= prev {
			t.Fatalf("id %q of a later millisecond does not sort after %q", id, prev)
		}
		prev = id
	}
	// The time prefix is the standard ULID encoding of the Unix milliseconds.
	if got := events.NewEventID(time.UnixMilli(0))[:10]; got != "0000000000" {
		t.Errorf("epoch prefix %q", got)
	}
	if got := events.NewEventID(time.UnixMilli(1<<48 - 1))[:10]; got != "7ZZZZZZZZZ" {
		t.Errorf("max prefix %q", got)
	}
}
