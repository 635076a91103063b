package events_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/events"
)

// jsISO is the shape of JavaScript's new Date().toISOString().
var jsISO = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

const ts = `"timestamp":"2025-01-31T09:30:00.000Z"`

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name, event, payload string
		code, field          string
	}{
		{"unknown event", "invoice:exploded", `{}`, events.CodeUnknownEvent, ""},
		{"unknown domain", "payroll:run", `{}`, events.CodeUnknownEvent, ""},
		{"empty payload", "invoice:created", ``, events.CodeInvalidPayload, ""},
		{"blank payload", "invoice:created", "  \n", events.CodeInvalidPayload, ""},
		{"not JSON", "invoice:created", `{"organizationId":`, events.CodeInvalidPayload, ""},
		{"array", "invoice:created", `[{"organizationId":"o"}]`, events.CodeInvalidPayload, ""},
		{"string", "invoice:created", `"o"`, events.CodeInvalidPayload, ""},
		{"null", "invoice:created", `null`, events.CodeInvalidPayload, ""},
		{"duplicate field", "invoice:created", `{"organizationId":"a","invoiceId":"i","organizationId":"b"}`, events.CodeInvalidPayload, "organizationId"},
		{"duplicate via escaped key", "invoice:created", `{"organizationId":"a","invoiceId":"i","organization\u0049d":"b"}`, events.CodeInvalidPayload, "organizationId"},

		// missing required fields, for each kind the catalog has
		{"missing organizationId", "invoice:created", `{"invoiceId":"i"}`, events.CodeMissingField, "organizationId"},
		{"empty organizationId", "invoice:created", `{"organizationId":"","invoiceId":"i"}`, events.CodeMissingField, "organizationId"},
		{"missing domain id", "expense:created", `{"organizationId":"o"}`, events.CodeMissingField, "expenseId"},
		{"missing enum", "notification:new", `{"organizationId":"o","notificationId":"n","title":"t","message":"m"}`, events.CodeMissingField, "type"},
		{"missing automation field", "automation:auto_approved", `{"organizationId":"o","entityType":"transaction","entityId":"t","feature":"classification"}`, events.CodeMissingField, "action"},

		// wrong types, for each field type
		{"string given number", "invoice:created", `{"organizationId":"o","invoiceId":42}`, events.CodeInvalidType, "invoiceId"},
		{"string given null", "invoice:created", `{"organizationId":null,"invoiceId":"i"}`, events.CodeInvalidType, "organizationId"},
		{"number given string", "invoice:created", `{"organizationId":"o","invoiceId":"i","amount":"12.50"}`, events.CodeInvalidType, "amount"},
		{"optional number given null", "invoice:created", `{"organizationId":"o","invoiceId":"i","amount":null}`, events.CodeInvalidType, "amount"},
		{"integer given fraction", "tax:return_submitted", `{"organizationId":"o","taxYear":2024.5}`, events.CodeInvalidType, "taxYear"},
		{"integer given string", "tax:return_submitted", `{"organizationId":"o","taxYear":"2024"}`, events.CodeInvalidType, "taxYear"},
		{"boolean given string", "bank:transaction_classified", `{"organizationId":"o","autoApproved":"true"}`, events.CodeInvalidType, "autoApproved"},
		{"boolean given number", "notification:read", `{"organizationId":"o","notificationId":"n","title":"t","message":"m","type":"info","read":1}`, events.CodeInvalidType, "read"},
		{"enum given number", "notification:new", `{"organizationId":"o","notificationId":"n","title":"t","message":"m","type":1}`, events.CodeInvalidType, "type"},
		{"date-time given number", "invoice:created", `{"organizationId":"o","invoiceId":"i","timestamp":1738315800000}`, events.CodeInvalidType, "timestamp"},
		{"object given array", "automation:review_required", `{"organizationId":"o","entityType":"e","entityId":"i","feature":"f","action":"a","metadata":[]}`, events.CodeInvalidType, "metadata"},
		{"array given string", "bank:transactions_synced", `{"organizationId":"o","transactionIds":"t-1"}`, events.CodeInvalidType, "transactionIds"},
		{"array element", "bank:transactions_synced", `{"organizationId":"o","transactionIds":["t-1",2]}`, events.CodeInvalidType, "transactionIds[1]"},

		// wrong values
		{"bad enum", "notification:new", `{"organizationId":"o","notificationId":"n","title":"t","message":"m","type":"urgent"}`, events.CodeInvalidValue, "type"},
		{"enum is case-sensitive", "notification:new", `{"organizationId":"o","notificationId":"n","title":"t","message":"m","type":"INFO"}`, events.CodeInvalidValue, "type"},
		{"bad timestamp", "invoice:created", `{"organizationId":"o","invoiceId":"i","timestamp":"yesterday"}`, events.CodeInvalidValue, "timestamp"},
		{"date only", "invoice:created", `{"organizationId":"o","invoiceId":"i","timestamp":"2025-01-31"}`, events.CodeInvalidValue, "timestamp"},
		{"no zone", "invoice:created", `{"organizationId":"o","invoiceId":"i","timestamp":"2025-01-31T09:30:00"}`, events.CodeInvalidValue, "timestamp"},
		{"month 13", "invoice:created", `{"organizationId":"o","invoiceId":"i","timestamp":"2025-13-01T00:00:00Z"}`, events.CodeInvalidValue, "timestamp"},
		{"bad dueDate", "tax:filing_due_reminder", `{"organizationId":"o","dueDate":"31.07.2025"}`, events.CodeInvalidValue, "dueDate"},
		{"unsafe integer", "bank:transactions_synced", `{"organizationId":"o","transactionCount":9007199254740993}`, events.CodeInvalidValue, "transactionCount"},
		{"number overflow", "invoice:created", `{"organizationId":"o","invoiceId":"i","amount":1e400}`, events.CodeInvalidValue, "amount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := events.Validate(tt.event, json.RawMessage(tt.payload))
			var ve *events.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %s, %v; want a *ValidationError", out, err)
			}
			if ve.Code != tt.code || ve.Field != tt.field {
				t.Errorf("code %q field %q, want %q %q (%s)", ve.Code, ve.Field, tt.code, tt.field, ve.Message)
			}
			// The message names the event and the field.
			if !strings.Contains(ve.Message, tt.event) || tt.field != "" && !strings.Contains(ve.Message, tt.field) {
				t.Errorf("message %q should name %q and %q", ve.Message, tt.event, tt.field)
			}
		})
	}
}

func TestValidateNormalizes(t *testing.T) {
	tests := []struct {
		name, event, payload, want string
	}{
		{"canonical timestamp kept", "invoice:paid",
			`{"organizationId":"o","invoiceId":"i",` + ts + `}`,
			`{"organizationId":"o","invoiceId":"i",` + ts + `}`},
		{"offset converted to UTC", "invoice:paid",
			`{"timestamp":"2025-01-31T10:30:00+01:00","organizationId":"o","invoiceId":"i"}`,
			`{` + ts + `,"organizationId":"o","invoiceId":"i"}`},
		{"nanoseconds truncated to milliseconds", "invoice:paid",
			`{"timestamp":"2025-01-31T09:30:00.999999999Z","organizationId":"o","invoiceId":"i"}`,
			`{"timestamp":"2025-01-31T09:30:00.999Z","organizationId":"o","invoiceId":"i"}`},
		{"every date-time field", "tax:filing_due_reminder",
			`{"organizationId":"o","dueDate":"2025-07-31T23:59:59Z","timestamp":"2025-01-31T09:30:00Z"}`,
			`{"organizationId":"o","dueDate":"2025-07-31T23:59:59.000Z",` + ts + `}`},
		{"unknown fields pass through", "expense:created",
			`{"organizationId":"o","expenseId":"e",` + ts + `,"vatRate":0.19,"tags":["travel"],"amount":12.5}`,
			`{"organizationId":"o","expenseId":"e",` + ts + `,"vatRate":0.19,"tags":["travel"],"amount":12.5}`},
		{"object with any content", "automation:classification_complete",
			`{"organizationId":"o","entityType":"transaction","entityId":"batch","feature":"classification","action":"CLASSIFIED","metadata":{"total":3,"flags":["x"]},` + ts + `}`,
			`{"organizationId":"o","entityType":"transaction","entityId":"batch","feature":"classification","action":"CLASSIFIED","metadata":{"total":3,"flags":["x"]},` + ts + `}`},
		{"escaped strings", "document:uploaded",
			`{"organizationId":"o\"1","documentId":"d\\1","fileName":"Rechnung \u00e4.pdf",` + ts + `}`,
			`{"organizationId":"o\"1","documentId":"d\\1","fileName":"Rechnung \u00e4.pdf",` + ts + `}`},
		{"integral number with exponent", "tax:return_accepted",
			`{"organizationId":"o","taxYear":2.024e3,` + ts + `}`,
			`{"organizationId":"o","taxYear":2.024e3,` + ts + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := events.Validate(tt.event, json.RawMessage(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", out, tt.want)
			}
		})
	}
}

func TestValidateAddsTimestamp(t *testing.T) {
	before := time.Now().UTC().Truncate(time.Millisecond)
	out, err := events.Validate("bank:sync_error", json.RawMessage(" {\n \"organizationId\": \"o\", \"error\": \"PSD2 consent expired\"\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ Timestamp string }
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if !jsISO.MatchString(p.Timestamp) {
		t.Fatalf("timestamp %q is not in toISOString format", p.Timestamp)
	}
	got, _ := time.Parse(time.RFC3339, p.Timestamp)
	if got.Before(before) || got.After(time.Now()) {
		t.Errorf("timestamp %s is not the current time", p.Timestamp)
	}
}

func TestValidateDoesNotCopyCanonicalPayloads(t *testing.T) {
	in := json.RawMessage(`{"organizationId":"o","invoiceId":"i",` + ts + `}`)
	out, err := events.Validate("invoice:sent", in)
	if err != nil || &out[0] != &in[0] {
		t.Errorf("a payload that needs no normalising should be returned as is (err %v)", err)
	}
}

func TestValidateAllocations(t *testing.T) {
	canonical := json.RawMessage(`{"organizationId":"org-1","invoiceId":"inv-1","amount":12.5,"currency":"EUR",` + ts + `}`)
	withoutTimestamp := json.RawMessage(`{"organizationId":"org-1","invoiceId":"inv-1","amount":12.5,"currency":"EUR"}`)
	for _, tt := range []struct {
		name    string
		payload json.RawMessage
		max     float64
	}{
		{"canonical", canonical, 2},              // the time.Parse input string; the error return
		{"timestamp added", withoutTimestamp, 1}, // the returned payload
	} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := events.Validate("invoice:created", tt.payload); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > tt.max {
			t.Errorf("%s: %.0f allocations per Validate, want at most %.0f", tt.name, allocs, tt.max)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	payload := json.RawMessage(`{"organizationId":"org-1","userId":"u-1","invoiceId":"inv-1","invoiceNumber":"INV-2025-0042","amount":1234.56,"currency":"EUR","status":"SENT"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.Validate("invoice:sent", payload); err != nil {
			b.Fatal(err)
		}
	}
}
