package events_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/operate/realtime/gateway/events"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern string
		name    events.Name
		want    bool
	}{
		{"invoice:created", events.InvoiceCreated, true},
		{"invoice:created", events.InvoicePaid, false},
		{"invoice:*", events.InvoicePaid, true},
		{"invoice:*", events.ExpenseCreated, false},
		{"bank:*", events.BankTransactionAutoApproved, true},
		{"automation:*", events.AutomationTaxDeductionSuggested, true},
		{"inv:*", events.InvoiceCreated, false}, // a domain, not a prefix
		{"invoice", events.InvoiceCreated, false},
		{"*", events.InvoiceCreated, false}, // no global wildcard
		{":*", events.InvoiceCreated, false},
		{"invoice:cre*", events.InvoiceCreated, false},
	}
	for _, tt := range tests {
		if got := events.Match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %t, want %t", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestExpandPatterns(t *testing.T) {
	got, err := events.ExpandPatterns([]string{"notification:*", "invoice:paid", "notification:read", "invoice:created"})
	if err != nil {
		t.Fatal(err)
	}
	// Catalog order, no duplicates.
	want := []events.Name{events.InvoiceCreated, events.InvoicePaid, events.NotificationNew, events.NotificationRead, events.NotificationDeleted}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}

	if got, err := events.ExpandPatterns(nil); err != nil || len(got) != 0 {
		t.Errorf("no patterns: %v, %v", got, err)
	}

	// Every event matches the pattern of its domain and the patterns it expands to.
	for _, info := range events.Events() {
		names, err := events.ExpandPatterns([]string{info.Domain + ":*"})
		if err != nil || !slices.Contains(names, info.Name) || !events.Match(info.Domain+":*", info.Name) {
			t.Errorf("%s: domain pattern does not cover it (%v)", info.Name, err)
		}
		for _, n := range names {
			if !events.Match(info.Domain+":*", n) {
				t.Errorf("%s:* expanded to %s, which it does not match", info.Domain, n)
			}
		}
	}
}

func TestExpandPatternsUnknown(t *testing.T) {
	_, err := events.ExpandPatterns([]string{"invoice:*", "invoice:exploded", "payroll:*", "*"})
	var ve *events.ValidationError
	if !errors.As(err, &ve) || ve.Code != events.CodeUnknownEvent {
		t.Fatalf("err = %v, want unknown_event", err)
	}
	for _, bad := range []string{`"invoice:exploded"`, `"payroll:*"`, `"*"`} {
		if !strings.Contains(ve.Message, bad) {
			t.Errorf("message %q does not name %s", ve.Message, bad)
		}
	}
	if strings.Contains(ve.Message, `"invoice:*"`) {
		t.Errorf("message %q names a valid pattern", ve.Message)
	}
}
