package gateway_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/sioclient"
)

type subscribeResult struct {
	Success          bool     `json:"success"`
	SubscribedTo     []string `json:"subscribedTo"`
	UnsubscribedFrom []string `json:"unsubscribedFrom"`
	Subscriptions    []string `json:"subscriptions"`
	Filter           string   `json:"filter"`
	Error            string   `json:"error"`
	Code             string   `json:"code"`
}

// probes are published after every change of subscriptions.
var probes = []events.Name{
	events.InvoiceCreated, events.InvoicePaid, events.ExpenseCreated,
	events.BankSyncError, events.NotificationNew, events.AutomationAutoApproved,
}

func publishProbes(t *testing.T, e *env) {
	t.Helper()
	for i, name := range probes {
		user := ""
		if name == events.NotificationNew {
			user = "user-1" // to the user's room
		}
		emitTo(t, e, name, "org-1", user, i)
	}
}

// without returns probes minus the given events.
func without(drop ...events.Name) []events.Name {
	return slices.DeleteFunc(slices.Clone(probes), func(n events.Name) bool { return slices.Contains(drop, n) })
}

func only(keep ...events.Name) []events.Name {
	return slices.DeleteFunc(slices.Clone(probes), func(n events.Name) bool { return !slices.Contains(keep, n) })
}

func domainNames(domain string) []string {
	var out []string
	for _, e := range events.Events() {
		if e.Domain == domain {
			out = append(out, string(e.Name))
		}
	}
	return out
}

// TestSubscriptions walks one socket through subscribe and unsubscribe,
// with names and wildcards, and checks after each step what it receives,
// while a socket that never subscribes keeps receiving everything.
func TestSubscriptions(t *testing.T) {
	e := newEnv(t, envOptions{})
	all := e.join("org-1", "user-1", sioclient.Options{Name: "all"})
	sub := e.join("org-1", "user-1", sioclient.Options{Name: "sub"})

	step := func(name string, event string, patterns []string, wantAck subscribeResult, want []events.Name) {
		t.Helper()
		if event != "" {
			var r subscribeResult
			ack(t, sub, event, map[string]any{"events": patterns}, &r)
			if !r.Success || !slices.Equal(r.SubscribedTo, wantAck.SubscribedTo) || !slices.Equal(r.UnsubscribedFrom, wantAck.UnsubscribedFrom) ||
				(wantAck.Subscriptions != nil && !slices.Equal(r.Subscriptions, wantAck.Subscriptions)) {
				t.Fatalf("%s: %s %v acked %+v, want %+v", name, event, patterns, r, wantAck)
			}
		}
		publishProbes(t, e)
		expectNames(t, sub, want...)
		expectNames(t, all, probes...)
	}

	step("no subscription", "", nil, subscribeResult{}, probes)
	step("subscribe to a domain", gateway.EventSubscribe, []string{"invoice:*"},
		subscribeResult{SubscribedTo: []string{"invoice:*"}, Subscriptions: domainNames("invoice")},
		only(events.InvoiceCreated, events.InvoicePaid))
	step("subscribe to more names", gateway.EventSubscribe, []string{"expense:created", "notification:new"},
		subscribeResult{SubscribedTo: []string{"expense:created", "notification:new"},
			Subscriptions: append(domainNames("invoice"), "expense:created", "notification:new")},
		only(events.InvoiceCreated, events.InvoicePaid, events.ExpenseCreated, events.NotificationNew))
	step("unsubscribe one name", gateway.EventUnsubscribe, []string{"invoice:paid"},
		subscribeResult{UnsubscribedFrom: []string{"invoice:paid"}},
		only(events.InvoiceCreated, events.ExpenseCreated, events.NotificationNew))
	step("unsubscribe domains", gateway.EventUnsubscribe, []string{"invoice:*", "notification:*"},
		subscribeResult{UnsubscribedFrom: []string{"invoice:*", "notification:*"}, Subscriptions: []string{"expense:created"}},
		only(events.ExpenseCreated))
	step("unsubscribe from everything", gateway.EventUnsubscribe, []string{"*"},
		subscribeResult{UnsubscribedFrom: []string{"*"}, Subscriptions: []string{}},
		nil)
	step("subscribe to everything", gateway.EventSubscribe, []string{"*"},
		subscribeResult{SubscribedTo: []string{"*"}, Subscriptions: namesOf(events.Events())},
		probes)

	// Unsubscribing without ever subscribing removes from everything.
	fresh := e.join("org-1", "user-1", sioclient.Options{Name: "fresh"})
	var r subscribeResult
	ack(t, fresh, gateway.EventUnsubscribe, map[string]any{"events": []string{"bank:*", "automation:auto_approved"}}, &r)
	if !r.Success || len(r.Subscriptions) != len(events.Events())-len(domainNames("bank"))-1 {
		t.Fatalf("unsubscribe from the default: %+v", r)
	}
	publishProbes(t, e)
	expectNames(t, fresh, without(events.BankSyncError, events.AutomationAutoApproved)...)
	expectNames(t, sub, probes...)
	expectNames(t, all, probes...)

	// Once a socket chose what it receives, subscribing adds to that.
	ack(t, fresh, gateway.EventSubscribe, map[string]any{"events": []string{"bank:sync_error"}}, &r)
	publishProbes(t, e)
	expectNames(t, fresh, without(events.AutomationAutoApproved)...)

	// A subscribe without an acknowledgement is applied all the same.
	quiet := e.join("org-1", "user-1", sioclient.Options{Name: "quiet"})
	quiet.Emit(gateway.EventSubscribe, map[string]any{"events": []string{"invoice:created"}})
	settle(t, quiet) // handled in order: the subscribe is applied after this
	publishProbes(t, e)
	expectNames(t, quiet, events.InvoiceCreated)
}

func namesOf(list []events.EventInfo) []string {
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = string(e.Name)
	}
	return out
}

// TestSubscriptionBadInput: malformed or unknown subscriptions are refused
// with a clear error and change nothing.
func TestSubscriptionBadInput(t *testing.T) {
	e := newEnv(t, envOptions{maxPatterns: 5})
	c := e.join("org-1", "user-1", sioclient.Options{})
	var r subscribeResult
	ack(t, c, gateway.EventSubscribe, map[string]any{"events": []string{"invoice:paid"}}, &r)
	if !r.Success {
		t.Fatalf("subscribe: %+v", r)
	}

	tests := []struct {
		name   string
		arg    any
		code   string
		substr string
	}{
		{"no argument", nil, gateway.CodeInvalidRequest, "expects {events: [...]}"},
		{"a string", "invoice:created", gateway.CodeInvalidRequest, "expects {events: [...]}"},
		{"an array", []string{"invoice:created"}, gateway.CodeInvalidRequest, "expects {events: [...]}"},
		{"no events", map[string]any{}, gateway.CodeInvalidRequest, "events is missing"},
		{"null events", map[string]any{"events": nil}, gateway.CodeInvalidRequest, "events is missing"},
		{"events not an array", map[string]any{"events": "invoice:created"}, gateway.CodeInvalidRequest, "events is not an array"},
		{"empty events", map[string]any{"events": []string{}}, gateway.CodeInvalidRequest, "events is empty"},
		{"non-string entry", map[string]any{"events": []any{"invoice:created", 1}}, gateway.CodeInvalidRequest, "events[1] is not a string"},
		{"empty entry", map[string]any{"events": []string{" "}}, gateway.CodeInvalidRequest, "events[0] is empty"},
		{"unknown name", map[string]any{"events": []string{"invoice:created", "invoice:nope"}}, gateway.CodeUnknownEvent, `"invoice:nope"`},
		{"unknown domain", map[string]any{"events": []string{"nope:*"}}, gateway.CodeUnknownEvent, `"nope:*"`},
		{"control event", map[string]any{"events": []string{"auth:expired"}}, gateway.CodeUnknownEvent, `"auth:expired"`},
		{"too many", map[string]any{"events": []string{"invoice:*", "expense:*", "bank:*", "tax:*", "hr:*", "document:*"}}, gateway.CodeInvalidRequest, "at most 5"},
	}
	for _, tc := range tests {
		for _, event := range []string{gateway.EventSubscribe, gateway.EventUnsubscribe} {
			t.Run(tc.name+"/"+event, func(t *testing.T) {
				var r subscribeResult
				ack(t, c, event, tc.arg, &r)
				if r.Success || r.Code != tc.code || !strings.Contains(r.Error, tc.substr) || !strings.HasPrefix(r.Error, event) {
					t.Fatalf("ack %+v, want code %s and an error about %q", r, tc.code, tc.substr)
				}
			})
		}
	}
	// Nothing changed: still exactly invoice:paid.
	publishProbes(t, e)
	expectNames(t, c, events.InvoicePaid)
}

// TestUnsupportedClientEvents: clients cannot publish or send anything but
// the control events; asking for an acknowledgement gets an error, and the
// connection is unharmed either way.
func TestUnsupportedClientEvents(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.join("org-1", "user-1", sioclient.Options{})
	other := e.join("org-1", "user-2", sioclient.Options{})
	for _, name := range []string{"invoice:created", "join", "connected", "auth:expired"} {
		var r subscribeResult
		ack(t, c, name, map[string]any{"organizationId": "org-1", "invoiceId": "x"}, &r)
		if r.Success || r.Code != gateway.CodeUnsupportedEvent || !strings.Contains(r.Error, `"`+name+`"`) {
			t.Errorf("%s acked %+v", name, r)
		}
		c.Emit(name, map[string]any{"organizationId": "org-1", "invoiceId": "x"}) // no ack: ignored
	}
	// Nothing reached the other socket of the organization, and both still work.
	expectNames(t, other)
	publishProbes(t, e)
	expectNames(t, c, probes...)
	expectNames(t, other, without(events.NotificationNew)...)
}
