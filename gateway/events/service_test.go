package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/events"
)

// recorder is an Emitter that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
	err    error
}

func (r *recorder) Publish(_ context.Context, ev events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.events = append(r.events, ev)
	return nil
}

var fixedNow = time.Date(2025, 1, 31, 10, 30, 0, 123456789, time.FixedZone("CET", 3600))

const fixedStamp = "2025-01-31T09:30:00.123Z" // fixedNow as JavaScript's toISOString prints it

func newService(rec *recorder) *events.EventsService {
	n := 0
	return events.NewEventsService(rec,
		events.WithClock(func() time.Time { return fixedNow }),
		events.WithIDGenerator(func() string { n++; return "id-" + strings.Repeat("x", n) }))
}

// TestEveryEventThroughTypedService calls every generated Emit<Event> method (found by
// reflection, so that a new catalog event is covered without editing this test) with a payload
// that has only its required fields, and checks what reaches the Emitter.
func TestEveryEventThroughTypedService(t *testing.T) {
	for _, withUser := range []bool{false, true} {
		rec := &recorder{}
		svc := newService(rec)
		sv := reflect.ValueOf(svc)
		called := 0
		for i := 0; i < sv.NumMethod(); i++ {
			m := sv.Type().Method(i)
			if !strings.HasPrefix(m.Name, "Emit") || m.Name == "Emit" {
				continue
			}
			payload := minimalPayload(t, m.Type.In(2), withUser)
			out := sv.Method(i).Call([]reflect.Value{reflect.ValueOf(context.Background()), payload})
			if err, _ := out[1].Interface().(error); err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
			if out[0].String() == "" {
				t.Fatalf("%s: empty event id", m.Name)
			}
			called++
		}
		all := events.Events()
		if called != len(all) || len(rec.events) != len(all) {
			t.Fatalf("called %d typed methods, %d events published; the catalog has %d", called, len(rec.events), len(all))
		}

		seen := map[events.Name]bool{}
		for _, ev := range rec.events {
			info, ok := events.Lookup(ev.Name)
			if !ok || seen[ev.Name] {
				t.Fatalf("published unknown or duplicate event %q", ev.Name)
			}
			seen[ev.Name] = true
			if _, err := events.Validate(string(ev.Name), ev.Payload); err != nil {
				t.Errorf("%s: published payload does not validate: %v", ev.Name, err)
			}
			var p map[string]any
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				t.Fatal(err)
			}
			if p["timestamp"] != fixedStamp {
				t.Errorf("%s: timestamp = %v, want %s", ev.Name, p["timestamp"], fixedStamp)
			}
			want := events.Target{OrganizationID: "org-1"}
			if info.Audience == events.AudienceUser && withUser {
				want = events.Target{UserID: "user-1"}
			}
			if ev.Target != want {
				t.Errorf("%s (withUser=%t): target = %+v, want %+v", ev.Name, withUser, ev.Target, want)
			}
			if got, err := events.DefaultTarget(ev.Name, ev.Payload); err != nil || got != want {
				t.Errorf("%s: DefaultTarget = %+v, %v; want %+v", ev.Name, got, err, want)
			}
		}
	}
}

// minimalPayload fills the required fields (JSON tag without omitempty/omitzero) of a
// generated payload struct.
func minimalPayload(t *testing.T, typ reflect.Type, withUser bool) reflect.Value {
	v := reflect.New(typ).Elem()
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "organizationId":
			v.Field(i).SetString("org-1")
		case name == "userId" && withUser:
			v.Field(i).SetString("user-1")
		case opts != "":
			// optional
		case f.Type == reflect.TypeFor[events.NotificationType]():
			v.Field(i).SetString(string(events.NotificationTypeInfo))
		case f.Type.Kind() == reflect.String:
			v.Field(i).SetString("test-" + name)
		default:
			t.Fatalf("%s.%s: no test value for required %s", typ.Name(), f.Name, f.Type)
		}
	}
	return v
}

func TestTypedPayloadJSON(t *testing.T) {
	rec := &recorder{}
	svc := newService(rec)
	id, err := svc.EmitInvoiceCreated(context.Background(), events.InvoicePayload{
		OrganizationID: "org-1",
		InvoiceID:      "inv-1",
		InvoiceNumber:  "INV-2025-0042",
		Amount:         new(0.0), // a pointer, so that zero is sent
		Currency:       "EUR",
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := rec.events[0]
	const want = `{"organizationId":"org-1","invoiceId":"inv-1","invoiceNumber":"INV-2025-0042","amount":0,"currency":"EUR","timestamp":"` + fixedStamp + `"}`
	if string(ev.Payload) != want || id != ev.ID || ev.Name != events.InvoiceCreated {
		t.Errorf("got id %q event %+v payload\n%s\nwant\n%s", id, ev, ev.Payload, want)
	}

	// A provided time.Time is normalised to the JavaScript format, in UTC.
	_, err = svc.EmitTaxFilingDueReminder(context.Background(), events.TaxPayload{
		Timestamp:      time.Date(2025, 3, 1, 12, 0, 0, 987654321, time.FixedZone("X", -2*3600)),
		OrganizationID: "org-1",
		TaxYear:        new(int64(2024)),
		DueDate:        time.Date(2025, 7, 31, 23, 59, 59, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	const want2 = `{"timestamp":"2025-03-01T14:00:00.987Z","organizationId":"org-1","taxYear":2024,"dueDate":"2025-07-31T23:59:59.000Z"}`
	if got := string(rec.events[1].Payload); got != want2 {
		t.Errorf("payload\n%s\nwant\n%s", got, want2)
	}
}

func TestTypedAndRawPathsAgree(t *testing.T) {
	rec := &recorder{}
	svc := newService(rec)
	ctx := context.Background()
	if _, err := svc.EmitNotificationNew(ctx, events.NotificationPayload{
		OrganizationID: "org-1", UserID: "u-1", NotificationID: "n-1", Title: "Paid", Message: "INV-1 was paid", Type: events.NotificationTypeSuccess,
	}); err != nil {
		t.Fatal(err)
	}
	raw := `{"organizationId":"org-1","userId":"u-1","notificationId":"n-1","title":"Paid","message":"INV-1 was paid","type":"success"}`
	if _, err := svc.Emit(ctx, events.NotificationNew, json.RawMessage(raw), events.Target{}); err != nil {
		t.Fatal(err)
	}
	if a, b := rec.events[0], rec.events[1]; string(a.Payload) != string(b.Payload) || a.Target != b.Target {
		t.Errorf("typed and raw differ:\n%s %+v\n%s %+v", a.Payload, a.Target, b.Payload, b.Target)
	}

	// The typed path rejects what the raw path rejects: a missing required field.
	_, err := svc.EmitInvoicePaid(ctx, events.InvoicePayload{OrganizationID: "org-1"})
	var ve *events.ValidationError
	if !errors.As(err, &ve) || ve.Code != events.CodeMissingField || ve.Field != "invoiceId" {
		t.Errorf("EmitInvoicePaid without invoiceId: %v", err)
	}
	if len(rec.events) != 2 {
		t.Error("an invalid event reached the emitter")
	}
}

func TestEmitTargets(t *testing.T) {
	ctx := context.Background()
	payload := json.RawMessage(`{"organizationId":"org-1","userId":"u-9","expenseId":"e-1"}`)
	tests := []struct {
		name   string
		target events.Target
		want   events.Target
		code   string
	}{
		{"default", events.Target{}, events.Target{OrganizationID: "org-1"}, ""},
		{"explicit user overrides", events.Target{UserID: "u-9"}, events.Target{UserID: "u-9"}, ""},
		{"org and user", events.Target{OrganizationID: "org-1", UserID: "u-9"}, events.Target{OrganizationID: "org-1", UserID: "u-9"}, ""},
		{"all", events.Target{All: true}, events.Target{All: true}, ""},
		{"other tenant", events.Target{OrganizationID: "org-2"}, events.Target{}, events.CodeInvalidTarget},
		{"all with org", events.Target{All: true, OrganizationID: "org-1"}, events.Target{}, events.CodeInvalidTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			_, err := newService(rec).Emit(ctx, events.ExpenseApproved, payload, tt.target)
			if tt.code != "" {
				var ve *events.ValidationError
				if !errors.As(err, &ve) || ve.Code != tt.code || len(rec.events) != 0 {
					t.Fatalf("err = %v, want code %s and nothing published", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.events[0].Target; got != tt.want {
				t.Errorf("target = %+v, want %+v", got, tt.want)
			}
		})
	}

	// WithTarget does the same for typed methods.
	rec := &recorder{}
	_, err := newService(rec).EmitExpenseApproved(ctx, events.ExpensePayload{OrganizationID: "org-1", ExpenseID: "e-1"},
		events.WithTarget(events.Target{UserID: "submitter"}))
	if err != nil || rec.events[0].Target != (events.Target{UserID: "submitter"}) {
		t.Errorf("WithTarget: %v %+v", err, rec.events)
	}
}

func TestEmitPayloadForms(t *testing.T) {
	rec := &recorder{}
	svc := newService(rec)
	ctx := context.Background()
	for _, p := range []any{
		json.RawMessage(`{"organizationId":"o","documentId":"d"}`),
		[]byte(`{"organizationId":"o","documentId":"d"}`),
		map[string]any{"organizationId": "o", "documentId": "d"},
		events.DocumentPayload{OrganizationID: "o", DocumentID: "d"},
	} {
		if _, err := svc.Emit(ctx, events.DocumentUploaded, p, events.Target{}); err != nil {
			t.Errorf("%T: %v", p, err)
		}
	}
	if _, err := svc.Emit(ctx, events.DocumentUploaded, make(chan int), events.Target{}); err == nil || !strings.Contains(err.Error(), "document:uploaded") {
		t.Errorf("unencodable payload: %v", err)
	}
	if _, err := svc.Emit(ctx, "document:nope", json.RawMessage(`{}`), events.Target{}); err == nil {
		t.Error("unknown event accepted")
	}
}

func TestEmitPublishError(t *testing.T) {
	boom := errors.New("redis down")
	rec := &recorder{err: boom}
	_, err := newService(rec).EmitHRLeaveApproved(context.Background(), events.HRPayload{OrganizationID: "o", LeaveRequestID: "l"})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "hr:leave_approved") {
		t.Errorf("err = %v, want wrapped %v naming the event", err, boom)
	}
}

func TestDefaultIDs(t *testing.T) {
	rec := &recorder{}
	svc := events.NewEventsService(rec)
	seen := map[string]bool{}
	for range 100 {
		id, err := svc.EmitBankAccountConnected(context.Background(), events.BankPayload{OrganizationID: "o", AccountID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 26 || seen[id] {
			t.Fatalf("bad or duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestConcurrentEmit(t *testing.T) {
	rec := &recorder{}
	svc := events.NewEventsService(rec)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := svc.EmitIntegrationSyncCompleted(context.Background(), events.IntegrationPayload{
					OrganizationID: "o", IntegrationName: "datev", RecordsProcessed: new(int64(3)),
				}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(rec.events) != 400 {
		t.Errorf("published %d events, want 400", len(rec.events))
	}
}

func TestNewEventsServiceNilEmitter(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a nil Emitter")
		}
	}()
	events.NewEventsService(nil)
}

// TestNewEvent: the function publishers without a service use (the HTTP API) returns what
// Emit publishes, and refuses what Emit refuses, before anything is published.
func TestNewEvent(t *testing.T) {
	raw := json.RawMessage(`{"organizationId":"org-1","userId":"u-1","notificationId":"n-1","title":"Paid","message":"INV-1 was paid","type":"success"}`)
	ev, err := events.NewEvent(events.NotificationNew, raw, events.Target{}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if _, err := newService(rec).Emit(context.Background(), events.NotificationNew, raw, events.Target{}); err != nil {
		t.Fatal(err)
	}
	want := rec.events[0]
	if ev.Name != want.Name || string(ev.Payload) != string(want.Payload) || ev.Target != want.Target {
		t.Errorf("NewEvent = %+v (payload %s)\nEmit published %+v (payload %s)", ev, ev.Payload, want, want.Payload)
	}
	if !strings.Contains(string(ev.Payload), `"timestamp":"`+fixedStamp+`"`) || ev.Target != (events.Target{UserID: "u-1"}) {
		t.Errorf("payload %s, target %+v: want the timestamp set from now and the user's default target", ev.Payload, ev.Target)
	}
	if len(ev.ID) != 26 || ev.ID[:10] != events.NewEventID(fixedNow)[:10] {
		t.Errorf("id %q is not a ULID-style id of now (%s)", ev.ID, events.NewEventID(fixedNow))
	}

	for _, tc := range []struct {
		name    string
		event   events.Name
		payload string
		target  events.Target
		code    string
	}{
		{"unknown event", "invoice:payed", `{"organizationId":"o","invoiceId":"i"}`, events.Target{}, events.CodeUnknownEvent},
		{"missing field", events.InvoicePaid, `{"organizationId":"o"}`, events.Target{}, events.CodeMissingField},
		{"other tenant", events.InvoicePaid, `{"organizationId":"o","invoiceId":"i"}`, events.Target{OrganizationID: "p"}, events.CodeInvalidTarget},
	} {
		ev, err := events.NewEvent(tc.event, json.RawMessage(tc.payload), tc.target, fixedNow)
		var ve *events.ValidationError
		if !errors.As(err, &ve) || ve.Code != tc.code || !reflect.ValueOf(ev).IsZero() {
			t.Errorf("%s: NewEvent = %+v, %v; want a zero Event and code %s", tc.name, ev, err, tc.code)
		}
	}
}
