package events_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/operate/realtime/gateway/events"
)

// seedEvents are the 46 event names of the original Operate code (websocket.types.ts), in its
// order. The catalog must keep them: browsers already subscribe to these names.
var seedEvents = []events.Name{
	"invoice:created", "invoice:updated", "invoice:paid", "invoice:cancelled", "invoice:sent", "invoice:overdue",
	"expense:created", "expense:updated", "expense:approved", "expense:rejected", "expense:deleted",
	"bank:transaction_imported", "bank:transaction_classified", "bank:transaction_auto_approved",
	"bank:transactions_synced", "bank:account_connected", "bank:account_disconnected", "bank:sync_error",
	"notification:new", "notification:read", "notification:deleted",
	"document:uploaded", "document:processed", "document:classification_complete", "document:ocr_complete", "document:error",
	"hr:employee_added", "hr:employee_updated", "hr:leave_requested", "hr:leave_approved", "hr:leave_rejected", "hr:contract_expiring",
	"tax:return_submitted", "tax:return_accepted", "tax:return_rejected", "tax:filing_due_reminder",
	"integration:sync_started", "integration:sync_completed", "integration:sync_failed",
	"integration:connection_established", "integration:connection_lost",
	"automation:classification_complete", "automation:auto_approved", "automation:review_required",
	"automation:confidence_low", "automation:tax_deduction_suggested",
}

func TestCatalogMatchesSeed(t *testing.T) {
	all := events.Events()
	var names []events.Name
	for _, info := range all {
		names = append(names, info.Name)
		if info.Domain != info.Name.Domain() || info.Description == "" || info.PayloadType == "" {
			t.Errorf("%s: incomplete entry %+v", info.Name, info)
		}
		wantAudience := events.AudienceOrganization
		if info.Domain == "notification" {
			wantAudience = events.AudienceUser
		}
		if info.Audience != wantAudience {
			t.Errorf("%s: audience %s, want %s", info.Name, info.Audience, wantAudience)
		}
		if got, ok := events.Lookup(info.Name); !ok || got != info {
			t.Errorf("Lookup(%s) = %+v, %t", info.Name, got, ok)
		}
	}
	if !slices.Equal(names, seedEvents) {
		t.Errorf("catalog events\n%v\nwant the seed's\n%v", names, seedEvents)
	}
	want := []string{"invoice", "expense", "bank", "notification", "document", "hr", "tax", "integration", "automation"}
	if got := events.Domains(); !slices.Equal(got, want) {
		t.Errorf("Domains() = %v", got)
	}
	if _, ok := events.Lookup("invoice:exploded"); ok {
		t.Error("Lookup of an unknown event succeeded")
	}

	// The tables are the caller's copies.
	all[0].Name = "mutated"
	if events.Events()[0].Name != events.InvoiceCreated {
		t.Error("Events() exposes the package table")
	}
}

func TestSchema(t *testing.T) {
	var s struct {
		Schema     string `json:"$schema"`
		Properties map[string]struct {
			Ref      string `json:"$ref"`
			Audience string `json:"x-audience"`
		} `json:"properties"`
		Defs map[string]struct {
			Required []string `json:"required"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(events.Schema(), &s); err != nil {
		t.Fatal(err)
	}
	if s.Schema != "https://json-schema.org/draft/2020-12/schema" || len(s.Properties) != len(seedEvents) {
		t.Fatalf("schema %s with %d events", s.Schema, len(s.Properties))
	}
	for _, info := range events.Events() {
		p := s.Properties[string(info.Name)]
		if p.Ref != "#/$defs/"+info.PayloadType || p.Audience != string(info.Audience) {
			t.Errorf("%s: schema entry %+v", info.Name, p)
		}
		if req := s.Defs[info.PayloadType].Required; !slices.Contains(req, "organizationId") || !slices.Contains(req, "timestamp") {
			t.Errorf("%s: required %v", info.PayloadType, req)
		}
	}
}
