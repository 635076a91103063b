package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/httpapi"
)

const invoice = `{"organizationId":"org-1","invoiceId":"inv-1"}`

var isoMillis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// TestPublishOne publishes single events with each kind of target and
// checks the answer and what reached the Emitter.
func TestPublishOne(t *testing.T) {
	url, rec := newAPI(t, httpapi.Config{})
	tests := []struct {
		name   string
		body   string
		target events.Target
	}{
		{"default target: the payload's organization", `{"event":"invoice:paid","payload":` + invoice + `}`, events.Target{OrganizationID: "org-1"}},
		{"null target", `{"event":"invoice:paid","payload":` + invoice + `,"target":null}`, events.Target{OrganizationID: "org-1"}},
		{"user-audience default", `{"event":"notification:new","payload":{"organizationId":"org-1","userId":"u-1","notificationId":"n","title":"t","message":"m","type":"info"}}`, events.Target{UserID: "u-1"}},
		{"explicit user", `{"event":"invoice:paid","payload":` + invoice + `,"target":{"userId":"u-2"}}`, events.Target{UserID: "u-2"}},
		{"explicit organization and user", `{"event":"invoice:paid","payload":` + invoice + `,"target":{"organizationId":"org-1","userId":"u-2"}}`, events.Target{OrganizationID: "org-1", UserID: "u-2"}},
		{"everyone", `{"event":"invoice:paid","payload":` + invoice + `,"target":{"all":true}}`, events.Target{All: true}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, url, httpapi.PathEvents, tc.body)
			if r.status != http.StatusAccepted {
				t.Fatalf("status %d %s", r.status, r.body)
			}
			var resp httpapi.PublishResponse
			r.decode(t, &resp)
			got := rec.published()
			if len(got) != i+1 {
				t.Fatalf("%d events published, want %d", len(got), i+1)
			}
			ev := got[i]
			if ev.ID != resp.ID || len(resp.ID) != 26 || ev.Target != tc.target {
				t.Fatalf("answer id %q; published %+v, want target %+v", resp.ID, ev, tc.target)
			}
			var p map[string]any
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				t.Fatal(err)
			}
			if ts, _ := p["timestamp"].(string); !isoMillis.MatchString(ts) {
				t.Errorf("timestamp %q is not set in the toISOString format", ts)
			}
		})
	}
}

// TestValidationTable: every invalid request is a 400 with a code and a
// field path, and publishes nothing.
func TestValidationTable(t *testing.T) {
	url, rec := newAPI(t, httpapi.Config{MaxBatch: 3})
	ev := func(payload string) string { return `{"event":"invoice:paid","payload":` + payload + `}` }
	withTarget := func(target string) string {
		return `{"event":"invoice:paid","payload":` + invoice + `,"target":` + target + `}`
	}
	tests := []struct {
		name  string
		path  string
		body  string
		code  string
		field string
	}{
		{"empty body", httpapi.PathEvents, ``, httpapi.CodeInvalidJSON, ""},
		{"blank body", httpapi.PathEvents, "  \n", httpapi.CodeInvalidJSON, ""},
		{"not JSON", httpapi.PathEvents, `event=invoice:paid`, httpapi.CodeInvalidJSON, ""},
		{"trailing data", httpapi.PathEvents, ev(invoice) + ` {}`, httpapi.CodeInvalidJSON, ""},
		{"array instead of object", httpapi.PathEvents, `[` + ev(invoice) + `]`, httpapi.CodeInvalidRequest, ""},
		{"string", httpapi.PathEvents, `"invoice:paid"`, httpapi.CodeInvalidRequest, ""},
		{"unknown member", httpapi.PathEvents, `{"event":"invoice:paid","data":` + invoice + `}`, httpapi.CodeInvalidRequest, "data"},
		{"missing event", httpapi.PathEvents, `{"payload":` + invoice + `}`, events.CodeMissingField, "event"},
		{"null event", httpapi.PathEvents, `{"event":null,"payload":` + invoice + `}`, events.CodeMissingField, "event"},
		{"empty event", httpapi.PathEvents, `{"event":"","payload":` + invoice + `}`, events.CodeMissingField, "event"},
		{"numeric event", httpapi.PathEvents, `{"event":5,"payload":` + invoice + `}`, events.CodeInvalidType, "event"},
		{"unknown event", httpapi.PathEvents, `{"event":"invoice:nope","payload":` + invoice + `}`, events.CodeUnknownEvent, "event"},
		{"control event", httpapi.PathEvents, `{"event":"auth:expired","payload":` + invoice + `}`, events.CodeUnknownEvent, "event"},
		{"missing payload", httpapi.PathEvents, `{"event":"invoice:paid"}`, events.CodeMissingField, "payload"},
		{"array payload", httpapi.PathEvents, ev(`[]`), events.CodeInvalidType, "payload"},
		{"string payload", httpapi.PathEvents, ev(`"x"`), events.CodeInvalidType, "payload"},
		{"missing organizationId", httpapi.PathEvents, ev(`{"invoiceId":"inv-1"}`), events.CodeMissingField, "payload.organizationId"},
		{"empty organizationId", httpapi.PathEvents, ev(`{"organizationId":"","invoiceId":"inv-1"}`), events.CodeMissingField, "payload.organizationId"},
		{"numeric organizationId", httpapi.PathEvents, ev(`{"organizationId":1,"invoiceId":"inv-1"}`), events.CodeInvalidType, "payload.organizationId"},
		{"missing domain field", httpapi.PathEvents, ev(`{"organizationId":"org-1"}`), events.CodeMissingField, "payload.invoiceId"},
		{"wrong type", httpapi.PathEvents, ev(`{"organizationId":"org-1","invoiceId":"inv-1","amount":"12.50"}`), events.CodeInvalidType, "payload.amount"},
		{"bad timestamp", httpapi.PathEvents, ev(`{"organizationId":"org-1","invoiceId":"inv-1","timestamp":"yesterday"}`), events.CodeInvalidValue, "payload.timestamp"},
		{"duplicate field", httpapi.PathEvents, ev(`{"organizationId":"org-1","organizationId":"org-2","invoiceId":"inv-1"}`), events.CodeInvalidPayload, "payload.organizationId"},
		{"bad enum", httpapi.PathEvents, `{"event":"notification:new","payload":{"organizationId":"o","notificationId":"n","title":"t","message":"m","type":"loud"}}`, events.CodeInvalidValue, "payload.type"},
		{"fractional integer", httpapi.PathEvents, `{"event":"tax:return_submitted","payload":{"organizationId":"o","taxYear":2024.5}}`, events.CodeInvalidType, "payload.taxYear"},
		{"bad array element", httpapi.PathEvents, `{"event":"bank:transactions_synced","payload":{"organizationId":"o","transactionIds":["a",1]}}`, events.CodeInvalidType, "payload.transactionIds[1]"},
		{"target not an object", httpapi.PathEvents, withTarget(`"org-1"`), events.CodeInvalidType, "target"},
		{"unknown target member", httpapi.PathEvents, withTarget(`{"orgId":"org-1"}`), httpapi.CodeInvalidRequest, "target.orgId"},
		{"numeric target organization", httpapi.PathEvents, withTarget(`{"organizationId":5}`), events.CodeInvalidType, "target.organizationId"},
		{"empty target user", httpapi.PathEvents, withTarget(`{"userId":""}`), events.CodeInvalidTarget, "target.userId"},
		{"other tenant", httpapi.PathEvents, withTarget(`{"organizationId":"org-2"}`), events.CodeInvalidTarget, "target.organizationId"},
		{"all with organization", httpapi.PathEvents, withTarget(`{"all":true,"organizationId":"org-1"}`), events.CodeInvalidTarget, "target"},
		{"non-boolean all", httpapi.PathEvents, withTarget(`{"all":"yes"}`), events.CodeInvalidType, "target.all"},
		{"target naming nobody", httpapi.PathEvents, withTarget(`{"all":false}`), events.CodeInvalidTarget, "target"},

		{"batch: object", httpapi.PathBatch, ev(invoice), httpapi.CodeInvalidRequest, ""},
		{"batch: empty", httpapi.PathBatch, `[]`, httpapi.CodeEmptyBatch, ""},
		{"batch: too many", httpapi.PathBatch, `[` + strings.Repeat(ev(invoice)+`,`, 3) + ev(invoice) + `]`, httpapi.CodeTooManyEvents, ""},
		{"batch: element not an object", httpapi.PathBatch, `[` + ev(invoice) + `,5]`, httpapi.CodeInvalidRequest, "[1]"},
		{"batch: invalid second event", httpapi.PathBatch, `[` + ev(invoice) + `,` + ev(`{"organizationId":"org-1"}`) + `]`, events.CodeMissingField, "[1].payload.invoiceId"},
		{"batch: unknown event", httpapi.PathBatch, `[{"event":"nope","payload":{}}]`, events.CodeUnknownEvent, "[0].event"},
		{"batch: bad target", httpapi.PathBatch, `[` + ev(invoice) + `,` + withTarget(`{"organizationId":"org-9"}`) + `]`, events.CodeInvalidTarget, "[1].target.organizationId"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, url, tc.path, tc.body)
			e := r.errorBody(t)
			if r.status != http.StatusBadRequest || e.Code != tc.code || e.Field != tc.field || e.Message == "" {
				t.Fatalf("answer %d %s, want 400 code %s field %q", r.status, r.body, tc.code, tc.field)
			}
			if strings.HasPrefix(tc.field, "[") && !strings.HasPrefix(e.Message, "event "+tc.field[1:2]+": ") {
				t.Errorf("batch message %q does not say which event", e.Message)
			}
		})
	}
	if n := len(rec.published()); n != 0 {
		t.Fatalf("%d events published by invalid requests", n)
	}
}

// TestBatch publishes a batch; its ids come back in order and the events
// reach the Emitter in order.
func TestBatch(t *testing.T) {
	url, rec := newAPI(t, httpapi.Config{})
	var items []string
	for i := range 5 {
		items = append(items, fmt.Sprintf(`{"event":"invoice:created","payload":{"organizationId":"org-%d","invoiceId":"inv-%d"}}`, i%2, i))
	}
	r := post(t, url, httpapi.PathBatch, "["+strings.Join(items, ",")+"]")
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var resp httpapi.BatchResponse
	r.decode(t, &resp)
	got := rec.published()
	if len(resp.IDs) != 5 || len(got) != 5 {
		t.Fatalf("ids %v, %d published", resp.IDs, len(got))
	}
	for i, ev := range got {
		var p struct{ InvoiceID string }
		_ = json.Unmarshal(ev.Payload, &p)
		if ev.ID != resp.IDs[i] || p.InvoiceID != fmt.Sprintf("inv-%d", i) || ev.Target.OrganizationID != fmt.Sprintf("org-%d", i%2) {
			t.Errorf("event %d: %+v (id %s)", i, ev, resp.IDs[i])
		}
	}
}

// TestPublishFailure: an Emitter error is a 500 that lists what was
// published before it.
func TestPublishFailure(t *testing.T) {
	rec := &recorder{fail: func(n int, _ events.Event) error {
		if n == 1 {
			return errBoom
		}
		return nil
	}}
	url, _ := newAPI(t, httpapi.Config{Emitter: rec})
	body := `[` + strings.Repeat(`{"event":"invoice:paid","payload":`+invoice+`},`, 2) + `{"event":"invoice:paid","payload":` + invoice + `}]`
	r := post(t, url, httpapi.PathBatch, body)
	e := r.errorBody(t)
	got := rec.published()
	if r.status != http.StatusInternalServerError || e.Code != httpapi.CodePublishFailed || !strings.Contains(e.Message, "boom") ||
		len(e.IDs) != 1 || len(got) != 1 || got[0].ID != e.IDs[0] {
		t.Fatalf("answer %d %s; published %v", r.status, r.body, got)
	}
}

// TestPublishClusterUnavailable: when the cluster cannot be reached the
// events still go to this node's clients, and the answer is a 503 that says
// so and lists every id.
func TestPublishClusterUnavailable(t *testing.T) {
	var calls int
	rec := &recorder{fail: func(int, events.Event) error {
		calls++
		return fmt.Errorf("gateway: reached this node only: %w", events.ErrClusterUnavailable)
	}}
	url, _ := newAPI(t, httpapi.Config{Emitter: rec})
	body := `[` + strings.Repeat(`{"event":"invoice:paid","payload":`+invoice+`},`, 2) + `{"event":"invoice:paid","payload":` + invoice + `}]`
	r := post(t, url, httpapi.PathBatch, body)
	e := r.errorBody(t)
	if r.status != http.StatusServiceUnavailable || e.Code != httpapi.CodeClusterUnavailable ||
		!strings.Contains(e.Message, "this node") || len(e.IDs) != 3 || calls != 3 {
		t.Fatalf("answer %d %s after %d publish calls", r.status, r.body, calls)
	}
}

// TestPublishOutcomeUnknown: when the cluster cannot tell whether an event
// was published (Redis Streams did not answer the append), the batch stops
// there and the answer is a 503 of its own, listing the ids published
// before it; it is not confused with cluster_unavailable (nothing was
// delivered on the side).
func TestPublishOutcomeUnknown(t *testing.T) {
	var calls int
	rec := &recorder{fail: func(int, events.Event) error {
		calls++
		if calls == 2 {
			return fmt.Errorf("gateway: publish: %w", events.ErrOutcomeUnknown)
		}
		return nil
	}}
	url, _ := newAPI(t, httpapi.Config{Emitter: rec})
	body := `[` + strings.Repeat(`{"event":"invoice:paid","payload":`+invoice+`},`, 2) + `{"event":"invoice:paid","payload":` + invoice + `}]`
	r := post(t, url, httpapi.PathBatch, body)
	e := r.errorBody(t)
	if r.status != http.StatusServiceUnavailable || e.Code != httpapi.CodeOutcomeUnknown ||
		!strings.Contains(e.Message, "may or may not") || len(e.IDs) != 1 || calls != 2 {
		t.Fatalf("answer %d %s after %d publish calls", r.status, r.body, calls)
	}
}

// TestAPIKeys: no key is 401 with a challenge, a wrong key 403, either
// configured key works, and authentication comes before reading the body.
func TestAPIKeys(t *testing.T) {
	url, rec := newAPI(t, httpapi.Config{MaxBodyBytes: 1024})
	body := `{"event":"invoice:paid","payload":` + invoice + `}`
	tests := []struct {
		name   string
		auth   string
		status int
		code   string
	}{
		{"no header", "", http.StatusUnauthorized, httpapi.CodeUnauthorized},
		{"other scheme", "Basic " + key1, http.StatusUnauthorized, httpapi.CodeUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized, httpapi.CodeUnauthorized},
		{"wrong key", "Bearer key-three-0123456789abcdef", http.StatusForbidden, httpapi.CodeForbidden},
		{"prefix of a key", "Bearer " + key1[:len(key1)-1], http.StatusForbidden, httpapi.CodeForbidden},
		{"first key", "Bearer " + key1, http.StatusAccepted, ""},
		{"second key, lowercase scheme", "bearer " + key2, http.StatusAccepted, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.auth != "" {
				headers = []string{"Authorization", tc.auth}
			}
			r := do(t, http.MethodPost, url+httpapi.PathEvents, strings.NewReader(body), headers...)
			if r.status != tc.status {
				t.Fatalf("status %d %s, want %d", r.status, r.body, tc.status)
			}
			if tc.code != "" {
				if e := r.errorBody(t); e.Code != tc.code {
					t.Fatalf("code %s, want %s", e.Code, tc.code)
				}
			}
			if challenge := r.header.Get("WWW-Authenticate"); (tc.status == http.StatusUnauthorized) != strings.HasPrefix(challenge, "Bearer") {
				t.Errorf("WWW-Authenticate %q with status %d", challenge, tc.status)
			}
		})
	}
	if n := len(rec.published()); n != 2 {
		t.Errorf("%d events published, want 2", n)
	}
	// A huge body without a key is refused for the key, not the size.
	r := do(t, http.MethodPost, url+httpapi.PathEvents, strings.NewReader(strings.Repeat("x", 4096)))
	if r.status != http.StatusUnauthorized {
		t.Errorf("unauthenticated large body: status %d", r.status)
	}

	// Without configured keys, publishing is disabled.
	url2, _ := newAPI(t, httpapi.Config{APIKeys: []string{}})
	r = post(t, url2, httpapi.PathEvents, body)
	if e := r.errorBody(t); r.status != http.StatusForbidden || !strings.Contains(e.Message, "no API keys") {
		t.Errorf("no keys configured: %d %s", r.status, r.body)
	}

	if _, err := httpapi.New(httpapi.Config{Emitter: &recorder{}, APIKeys: []string{"short"}}); err == nil {
		t.Error("a 5-character API key was accepted")
	}
}

// TestBodyLimit: bodies over the limit are 413, with or without a
// Content-Length.
func TestBodyLimit(t *testing.T) {
	url, rec := newAPI(t, httpapi.Config{MaxBodyBytes: 256})
	big := `{"event":"invoice:paid","payload":{"organizationId":"org-1","invoiceId":"` + strings.Repeat("x", 300) + `"}}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(strings.NewReader(big)) // unknown length: sent chunked
		}
		r := do(t, http.MethodPost, url+httpapi.PathEvents, body, "Authorization", "Bearer "+key1)
		if e := r.errorBody(t); r.status != http.StatusRequestEntityTooLarge || e.Code != httpapi.CodeBodyTooLarge {
			t.Errorf("chunked=%t: %d %s", chunked, r.status, r.body)
		}
	}
	if r := post(t, url, httpapi.PathEvents, `{"event":"invoice:paid","payload":`+invoice+`}`); r.status != http.StatusAccepted {
		t.Errorf("small body: %d %s", r.status, r.body)
	}
	if n := len(rec.published()); n != 1 {
		t.Errorf("%d events published, want 1", n)
	}
}

// TestRoutes: health, readiness, schema, and JSON answers for unknown
// routes and methods.
func TestRoutes(t *testing.T) {
	var notReady error
	url, _ := newAPI(t, httpapi.Config{Ready: func() error { return notReady }})
	if r := do(t, http.MethodGet, url+"/healthz", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), `"ok"`) {
		t.Errorf("healthz: %d %s", r.status, r.body)
	}
	if r := do(t, http.MethodGet, url+"/readyz", nil); r.status != http.StatusOK {
		t.Errorf("readyz: %d %s", r.status, r.body)
	}
	notReady = fmt.Errorf("redis 10.0.0.7:6379: dial tcp: connection refused")
	if r := do(t, http.MethodGet, url+"/readyz", nil); r.status != http.StatusServiceUnavailable || strings.TrimSpace(string(r.body)) != `{"status":"unavailable"}` {
		t.Errorf("readyz while not ready, to the public: %d %s, want no internals", r.status, r.body)
	}
	if r := do(t, http.MethodGet, url+"/readyz", nil, "Authorization", "Bearer "+key1); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "10.0.0.7:6379") {
		t.Errorf("readyz while not ready, with an API key: %d %s, want the reason", r.status, r.body)
	}
	if r := do(t, http.MethodGet, url+httpapi.PathSchema, nil); r.status != http.StatusOK || string(r.body) != string(events.Schema()) {
		t.Errorf("schema: %d, %d bytes", r.status, len(r.body))
	}
	r := do(t, http.MethodGet, url+httpapi.PathEvents, nil, "Authorization", "Bearer "+key1)
	if e := r.errorBody(t); r.status != http.StatusMethodNotAllowed || e.Code != httpapi.CodeMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Errorf("GET events: %d %s Allow %q", r.status, r.body, r.header.Get("Allow"))
	}
	r = do(t, http.MethodGet, url+"/api/v2/events", nil)
	if e := r.errorBody(t); r.status != http.StatusNotFound || e.Code != httpapi.CodeNotFound {
		t.Errorf("unknown path: %d %s", r.status, r.body)
	}
}

// TestTimestampKept: a publisher's timestamp is kept (normalized), not
// replaced.
func TestTimestampKept(t *testing.T) {
	url, rec := newAPI(t, httpapi.Config{})
	r := post(t, url, httpapi.PathEvents, `{"event":"invoice:paid","payload":{"organizationId":"org-1","invoiceId":"i","timestamp":"2025-01-31T10:30:00+01:00"}}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if p := string(rec.published()[0].Payload); !strings.Contains(p, `"timestamp":"2025-01-31T09:30:00.000Z"`) {
		t.Errorf("payload %s", p)
	}
}

// TestRefusedRequestsCannotFloodTheLog: requests without a valid API key
// are each answered 401, but logged within a budget (200 requests wrote 200
// lines before).
func TestRefusedRequestsCannotFloodTheLog(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	url, _ := newAPI(t, httpapi.Config{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	for range 200 {
		if r := do(t, http.MethodPost, url+httpapi.PathEvents, strings.NewReader(`{}`)); r.status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", r.status)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "publish refused"); n == 0 || n > 30 {
		t.Errorf("%d log lines for 200 refused requests", n)
	}
}

// lockedWriter serializes a logger's writes into a buffer.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
