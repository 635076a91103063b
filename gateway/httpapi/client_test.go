package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/httpapi"
)

// TestClientAsEmitter: an EventsService on a Client publishes through the
// API; a retry after a 5xx uses the same Idempotency-Key and publishes once.
func TestClientAsEmitter(t *testing.T) {
	rec := &recorder{}
	h, err := httpapi.New(httpapi.Config{Emitter: rec, APIKeys: []string{key1}})
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

	svc := events.NewEventsService(httpapi.NewClient(flaky.URL, key1))
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
	_, err = httpapi.NewClient(srv.URL, key1).Send(context.Background(), httpapi.PublishRequest{Event: "invoice:paid", Payload: []byte(`{"organizationId":"org-1"}`)}, "")
	var ae *httpapi.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || ae.Code != events.CodeMissingField || ae.Field != "payload.invoiceId" {
		t.Fatalf("error %v", err)
	}
	_, err = httpapi.NewClient(srv.URL, "wrong-key-0123456789abcdef").SendBatch(context.Background(), []httpapi.PublishRequest{{Event: "invoice:paid", Payload: []byte(invoice)}}, "")
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusForbidden {
		t.Fatalf("error %v", err)
	}
	if n := len(rec.published()); n != 1 {
		t.Errorf("%d events published, want 1", n)
	}
}

// TestDevToken: the endpoint exists only when configured, and mints tokens
// the gateway's verifier accepts.
func TestDevToken(t *testing.T) {
	url, _ := newAPI(t, httpapi.Config{})
	r := do(t, http.MethodPost, url+httpapi.PathDevToken, strings.NewReader(`{"organizationId":"o","userId":"u"}`))
	if e := r.errorBody(t); r.status != http.StatusNotFound || e.Code != httpapi.CodeNotFound {
		t.Fatalf("without DevTokens: %d %s", r.status, r.body)
	}

	const secret = "dev-secret-0123456789abcdef0123456789"
	url, _ = newAPI(t, httpapi.Config{DevTokens: &httpapi.DevTokens{Secret: secret}})
	c := httpapi.NewClient(url, "")
	resp, err := c.DevToken(context.Background(), httpapi.DevTokenRequest{OrganizationID: "org-1", UserID: "user-1", Role: "admin", TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.New(context.Background(), auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(context.Background(), resp.Token)
	if err != nil {
		t.Fatal(err)
	}
	if claims.UserID != "user-1" || claims.OrganizationID != "org-1" || claims.Role != "admin" ||
		time.Until(claims.ExpiresAt) > 10*time.Minute || time.Until(claims.ExpiresAt) < 9*time.Minute ||
		resp.ExpiresAt != claims.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000Z") {
		t.Fatalf("claims %+v, answer %+v", claims, resp)
	}

	for _, tc := range []struct{ body, field string }{
		{`{"userId":"u"}`, "organizationId"},
		{`{"organizationId":"o"}`, "userId"},
		{`{"organizationId":"o","userId":"u","ttl":"forever"}`, "ttl"},
		{`{"organizationId":"o","userId":"u","ttl":"48h"}`, "ttl"},
		{`{"organizationId":"o","userId":"u","admin":true}`, ""},
		{`{"organizationId":"o","userId":"u"} {}`, ""},
		{`nope`, ""},
	} {
		r := do(t, http.MethodPost, url+httpapi.PathDevToken, strings.NewReader(tc.body))
		if e := r.errorBody(t); r.status != http.StatusBadRequest || e.Field != tc.field {
			t.Errorf("%s: %d %s, want 400 field %q", tc.body, r.status, r.body, tc.field)
		}
	}
	if r := do(t, http.MethodGet, url+httpapi.PathDevToken, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /dev/token: %d", r.status)
	}
}
