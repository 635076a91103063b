package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/httpapi"
)

// The client is tested against the real HTTP API handler (package httpapi,
// imported by the tests only).

const key1 = "key-one-0123456789abcdef"

const invoice = `{"organizationId":"org-1","invoiceId":"inv-1"}`

// recorder is an in-memory Emitter behind the API; err, when set, is
// returned after recording the event (a partial delivery).
type recorder struct {
	mu     sync.Mutex
	events []events.Event
	err    error
}

func (r *recorder) Publish(_ context.Context, ev events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev.Payload = append([]byte(nil), ev.Payload...)
	r.events = append(r.events, ev)
	return r.err
}

func (r *recorder) published() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.events...)
}

// newAPI serves an API handler publishing to a new recorder, with key1.
func newAPI(t *testing.T, cfg httpapi.Config) (url string, rec *recorder) {
	t.Helper()
	rec, _ = cfg.Emitter.(*recorder)
	if rec == nil {
		rec = &recorder{}
	}
	cfg.Emitter = rec
	cfg.APIKeys = []string{key1}
	cfg.Logger = slog.New(slog.DiscardHandler)
	h, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, rec
}

// batchOf is n valid invoice:paid events for org-1.
func batchOf(n int) []apiclient.PublishRequest {
	reqs := make([]apiclient.PublishRequest, n)
	for i := range reqs {
		reqs[i] = apiclient.PublishRequest{Event: "invoice:paid", Payload: fmt.Appendf(nil, `{"organizationId":"org-1","invoiceId":"inv-%d"}`, i)}
	}
	return reqs
}

// TestClientAsEmitter: an EventsService on a Client publishes through the
// API; a retry after a 5xx uses the same Idempotency-Key and publishes once.
func TestClientAsEmitter(t *testing.T) {
	rec := &recorder{}
	h, err := httpapi.New(httpapi.Config{Emitter: rec, APIKeys: []string{key1}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		keys []string
	)
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		first := len(keys) == 1
		mu.Unlock()
		if first {
			h.ServeHTTP(httptest.NewRecorder(), r)              // published...
			http.Error(w, "bad gateway", http.StatusBadGateway) // ...but the answer is lost
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(flaky.Close)
	srv := flaky

	svc := events.NewEventsService(apiclient.New(flaky.URL, key1))
	id, err := svc.EmitInvoicePaid(context.Background(), events.InvoicePayload{OrganizationID: "org-1", InvoiceID: "inv-1", UserID: "u-1"})
	if err != nil {
		t.Fatal(err)
	}
	got := rec.published()
	if len(got) != 1 || got[0].Name != events.InvoicePaid || got[0].Target != (events.Target{OrganizationID: "org-1"}) {
		t.Fatalf("published %+v", got)
	}
	mu.Lock()
	seen := append([]string(nil), keys...)
	mu.Unlock()
	if len(seen) != 2 || seen[0] != id || seen[1] != id {
		t.Fatalf("Idempotency-Keys %v, want the event id %s twice", seen, id)
	}

	// Client errors come back typed and are not retried.
	_, err = apiclient.New(srv.URL, key1).Send(context.Background(), apiclient.PublishRequest{Event: "invoice:paid", Payload: []byte(`{"organizationId":"org-1"}`)}, "")
	var ae *apiclient.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || ae.Code != events.CodeMissingField || ae.Field != "payload.invoiceId" {
		t.Fatalf("error %v", err)
	}
	_, err = apiclient.New(srv.URL, "wrong-key-0123456789abcdef").SendBatch(context.Background(), []apiclient.PublishRequest{{Event: "invoice:paid", Payload: []byte(invoice)}}, "")
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusForbidden {
		t.Fatalf("error %v", err)
	}
	if n := len(rec.published()); n != 1 {
		t.Errorf("%d events published, want 1", n)
	}
}

// TestClientWaitsForRetryAfter: the Client retries a 429 after the
// Retry-After it was given, and the event is published once.
func TestClientWaitsForRetryAfter(t *testing.T) {
	url, rec := newAPI(t, httpapi.Config{PublishRate: 1, MaxBatch: 100})
	if _, err := apiclient.New(url, key1).SendBatch(context.Background(), batchOf(100), ""); err != nil {
		t.Fatalf("batch: %v", err) // spends the whole budget
	}
	start := time.Now()
	svc := events.NewEventsService(apiclient.New(url, key1))
	if _, err := svc.EmitInvoicePaid(context.Background(), events.InvoicePayload{OrganizationID: "org-1", InvoiceID: "inv-1"}); err != nil {
		t.Fatalf("publish through the limit: %v", err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("published after %v: the client did not wait for Retry-After (1 s)", waited)
	}
	if n := len(rec.published()); n != 101 {
		t.Errorf("%d events published, want 101", n)
	}

	// Without retries the caller sees the 429 and how long to wait.
	c := apiclient.New(url, key1)
	c.Retries = -1
	_, err := c.SendBatch(context.Background(), batchOf(1), "")
	for range 100 { // drain whatever refilled meanwhile
		if err != nil {
			break
		}
		_, err = c.SendBatch(context.Background(), batchOf(1), "")
	}
	var ae *apiclient.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusTooManyRequests || ae.Code != apiclient.CodeRateLimited || ae.RetryAfter != time.Second {
		t.Fatalf("error %v (%+v), want a 429 with RetryAfter 1s", err, ae)
	}
}

// TestClientDoesNotRetryClusterUnavailable: a 503 cluster_unavailable means
// the event reached the answering node's clients; a retry would deliver it
// to them again, so the Client returns the error (with the ids) instead.
func TestClientDoesNotRetryClusterUnavailable(t *testing.T) {
	rec := &recorder{err: fmt.Errorf("gateway: reached this node only: %w", events.ErrClusterUnavailable)}
	url, _ := newAPI(t, httpapi.Config{Emitter: rec})
	id, err := events.NewEventsService(apiclient.New(url, key1)).EmitInvoicePaid(context.Background(),
		events.InvoicePayload{OrganizationID: "org-1", InvoiceID: "inv-1"})
	var ae *apiclient.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable || ae.Code != apiclient.CodeClusterUnavailable || len(ae.IDs) != 1 {
		t.Fatalf("id %q, error %v (%+v), want a 503 cluster_unavailable with the event's id", id, err, ae)
	}
	if n := len(rec.published()); n != 1 {
		t.Errorf("the event was handed to the gateway %d times, want 1 (no retry)", n)
	}
}

// unknownFirst is an Emitter behind the API whose first publish of each
// event gets no answer from Redis (events.ErrOutcomeUnknown).
type unknownFirst struct {
	recorder
	failed map[string]bool // by invoiceId
}

func (u *unknownFirst) Publish(ctx context.Context, ev events.Event) error {
	var p struct {
		InvoiceID string `json:"invoiceId"`
	}
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return err
	}
	u.mu.Lock()
	first := !u.failed[p.InvoiceID]
	u.failed[p.InvoiceID] = true
	u.mu.Unlock()
	if first {
		return fmt.Errorf("gateway: no answer: %w", events.ErrOutcomeUnknown)
	}
	return u.recorder.Publish(ctx, ev)
}

// TestClientRetriesOutcomeUnknownWithKey: a 503 publish_outcome_unknown is
// retried when the request carries an Idempotency-Key (the event's id),
// which makes the gateway publish it at most once; an event without an id
// goes without a key, and its 503 is returned instead.
func TestClientRetriesOutcomeUnknownWithKey(t *testing.T) {
	em := &unknownFirst{failed: map[string]bool{}}
	h, err := httpapi.New(httpapi.Config{Emitter: em, APIKeys: []string{key1}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := apiclient.New(srv.URL, key1)
	ev := events.Event{ID: "01JHX8Q2W3E4R5T6Y7U8I9O0P1", Name: events.InvoicePaid, Payload: []byte(invoice),
		Target: events.Target{OrganizationID: "org-1"}}
	if err := c.Publish(context.Background(), ev); err != nil {
		t.Fatalf("publish with a key: %v, want it retried after 503 %s", err, apiclient.CodeOutcomeUnknown)
	}
	if n := len(em.published()); n != 1 {
		t.Fatalf("%d events published, want 1", n)
	}
	ev.ID, ev.Payload = "", []byte(`{"organizationId":"org-1","invoiceId":"inv-2"}`)
	err = c.Publish(context.Background(), ev)
	var ae *apiclient.APIError
	if !errors.As(err, &ae) || ae.Code != apiclient.CodeOutcomeUnknown {
		t.Fatalf("publish without a key: %v, want the 503 %s (not retried)", err, apiclient.CodeOutcomeUnknown)
	}
	if n := len(em.published()); n != 1 {
		t.Errorf("%d events published, want still 1", n)
	}
}
