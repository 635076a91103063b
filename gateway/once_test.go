package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/httpapi"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// streamsNode is a gateway node clustered over r in streams mode, with
// recovery (offsets), room histories when history is set, and its HTTP
// API.
//
// Its Redis client always pipelines: a command alone on an idle connection
// is otherwise sent synchronously with the caller's deadline as the
// connection's, which closes the connection when it passes, and Redis then
// drops what the pause held. Under load commands are pipelined anyway, and
// held ones land late: the case these tests are for.
func streamsNode(t *testing.T, r *redistest.Server, publishTimeout time.Duration, history *gateway.HistoryOptions) (e *env, api string) {
	t.Helper()
	c := streamsCluster(t, redisadapter.Config{Addr: r.Addr, PublishTimeout: publishTimeout,
		AdjustClientOption: func(o *rueidis.ClientOption) { o.AlwaysPipelining = true }})
	e = newEnv(t, envOptions{recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}, history: history, adapter: c.Adapter})
	e.redis = r
	h, err := httpapi.New(httpapi.Config{Emitter: e.gw, History: e.gw, APIKeys: []string{historyKey}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return e, srv.URL
}

// postEvents posts body to the API at url with the Idempotency-Key idem
// and returns the status and body of the answer.
func postEvents(t *testing.T, url, path, idem, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+historyKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idem)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestRetryAfterOutcomeUnknown: a publish through the HTTP API gets 503
// publish_outcome_unknown while Redis holds its writes (CLIENT PAUSE WRITE,
// longer than the append's retries); once Redis is back, the same request
// with the same Idempotency-Key, on the other node (whose idempotency cache
// never saw it), answers 202 with the event's id and offset: those of the
// first attempt when its append landed late, which every client received
// with that offset. Every client of both nodes gets the event exactly once,
// and the stream holds it once. Over the namespace stream alone and with
// room histories (the two append scripts).
func TestRetryAfterOutcomeUnknown(t *testing.T) {
	const timeout = 200 * time.Millisecond
	named := regexp.MustCompile(`^event ([0-9A-Z]{26}) may or may not`)
	for _, tc := range []struct {
		name    string
		history *gateway.HistoryOptions
	}{
		{"log", nil},
		{"rooms", &gateway.HistoryOptions{Size: 100, TTL: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := redistest.Start(t)
			a, apiA := streamsNode(t, r, timeout, tc.history)
			b, apiB := streamsNode(t, r, timeout, tc.history)
			ca := a.join("org-1", "user-1", sioclient.Options{})
			cb := b.join("org-1", "user-2", sioclient.Options{})
			body := func(i int) string {
				return fmt.Sprintf(`{"event":"invoice:created","payload":{"organizationId":"org-1","invoiceId":"inv-%d","amount":12,"currency":"EUR"}}`, i)
			}
			// next returns the offset of the next event c receives, which
			// must be invoice i.
			next := func(c *sioclient.Client, i int) string {
				t.Helper()
				ev := c.Next(string(events.InvoiceCreated))
				if want := fmt.Sprintf(`"invoiceId":"inv-%d"`, i); !strings.Contains(string(ev.Args[0]), want) {
					t.Fatalf("got %s, want inv-%d", ev, i)
				}
				return offsetOf(t, ev)
			}

			// A first event, so that the stall finds the nodes in their
			// steady state (the append script loaded in Redis: an EVALSHA
			// held by the pause would be answered NOSCRIPT, after its
			// caller gave up, and never land).
			if status, answer := postEvents(t, apiA, "/api/v1/events", "inv-0", body(0)); status != http.StatusAccepted {
				t.Fatalf("first publish: %d %s", status, answer)
			}
			next(ca, 0)
			next(cb, 0)

			const idem = "inv-1-created"
			before := streamLen(t, r)
			pause := 10 * timeout // the append's retries give up after 5
			if _, err := r.Do("CLIENT", "PAUSE", strconv.FormatInt(pause.Milliseconds(), 10), "WRITE"); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			status, answer := postEvents(t, apiA, "/api/v1/events", idem, body(1))
			var first httpapi.ErrorBody
			decodeJSON(t, answer, &first)
			if status != http.StatusServiceUnavailable || first.Code != httpapi.CodeOutcomeUnknown {
				t.Fatalf("publish during a %v stall: %d %s, want 503 %s", pause, status, answer, httpapi.CodeOutcomeUnknown)
			}
			m := named.FindStringSubmatch(first.Message)
			if m == nil {
				t.Fatalf("503 message %q names no event id", first.Message)
			}
			wait.For(t, "the stall over", func() bool { return time.Since(start) > pause+2*timeout })
			if n := streamLen(t, r) - before; n != 1 {
				t.Fatalf("%d entries appended by the first attempt, want 1: its append held by the stall landed after it", n)
			}
			offset := next(ca, 1)

			status, answer = postEvents(t, apiB, "/api/v1/events", idem, body(1))
			var retry httpapi.PublishResponse
			decodeJSON(t, answer, &retry)
			if status != http.StatusAccepted || retry.Offset == "" {
				t.Fatalf("retry on the other node: %d %s, want 202 with an offset", status, answer)
			}
			if retry.ID != m[1] || retry.Offset != offset {
				t.Errorf("retry answered id %s offset %s; the first attempt landed as id %s, delivered with offset %s", retry.ID, retry.Offset, m[1], offset)
			}
			if got := next(cb, 1); got != retry.Offset {
				t.Errorf("node b's client got offset %s, want %s", got, retry.Offset)
			}
			if n := streamLen(t, r) - before; n != 1 {
				t.Errorf("%d entries appended, want the event once", n)
			}

			// The same request again, on either node: the same answer,
			// nothing delivered again.
			for _, api := range []string{apiA, apiB} {
				status, answer = postEvents(t, api, "/api/v1/events", idem, body(1))
				var again httpapi.PublishResponse
				decodeJSON(t, answer, &again)
				if status != http.StatusAccepted || again != retry {
					t.Errorf("another retry: %d %s, want 202 %+v", status, answer, retry)
				}
			}
			ca.NoEvent(string(events.InvoiceCreated), 3*timeout)
			cb.NoEvent(string(events.InvoiceCreated), 3*timeout)
		})
	}
}

// TestOnceBatchAcrossNodes: a batch retried with its Idempotency-Key on
// another node, after the first attempt published it, publishes nothing
// again and answers the first attempt's ids and offsets.
func TestOnceBatchAcrossNodes(t *testing.T) {
	r := redistest.Start(t)
	a, apiA := streamsNode(t, r, time.Second, nil)
	_, apiB := streamsNode(t, r, time.Second, nil)
	c := a.join("org-1", "user-1", sioclient.Options{})
	before := streamLen(t, r)
	body := `[{"event":"invoice:created","payload":{"organizationId":"org-1","invoiceId":"inv-1","amount":1,"currency":"EUR"}},
		{"event":"invoice:created","payload":{"organizationId":"org-1","invoiceId":"inv-2","amount":2,"currency":"EUR"}}]`
	status, answer := postEvents(t, apiA, "/api/v1/events/batch", "batch-1", body)
	var first httpapi.BatchResponse
	decodeJSON(t, answer, &first)
	if status != http.StatusAccepted || len(first.IDs) != 2 || len(first.Offsets) != 2 || first.IDs[0] == first.IDs[1] {
		t.Fatalf("batch: %d %s", status, answer)
	}
	for i := range 2 {
		if got := offsetOf(t, c.Next(string(events.InvoiceCreated))); got != first.Offsets[i] {
			t.Errorf("event %d delivered with offset %s, answered %s", i, got, first.Offsets[i])
		}
	}
	status, answer = postEvents(t, apiB, "/api/v1/events/batch", "batch-1", body)
	var retry httpapi.BatchResponse
	decodeJSON(t, answer, &retry)
	if status != http.StatusAccepted || strings.Join(retry.IDs, ",") != strings.Join(first.IDs, ",") ||
		strings.Join(retry.Offsets, ",") != strings.Join(first.Offsets, ",") {
		t.Errorf("retry on node b: %d %s, want the first answer %+v", status, answer, first)
	}
	c.NoEvent(string(events.InvoiceCreated), 500*time.Millisecond)
	if n := streamLen(t, r) - before; n != 2 {
		t.Errorf("%d entries appended, want the batch once", n)
	}
}

// streamLen is the length of the namespace stream (every namespace's: one
// stream by default).
func streamLen(t *testing.T, r *redistest.Server) int {
	t.Helper()
	n, err := r.Do("XLEN", "socket.io")
	if err != nil {
		t.Fatal(err)
	}
	i, err := strconv.Atoi(n)
	if err != nil {
		t.Fatalf("XLEN answered %q", n)
	}
	return i
}

func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("answer %s: %v", s, err)
	}
}

// alternate sends each request to the next of its hosts, as a load
// balancer may send a publisher's retries to another node.
type alternate struct {
	mu    sync.Mutex
	hosts []string
	sent  []string
}

func (a *alternate) RoundTrip(req *http.Request) (*http.Response, error) {
	a.mu.Lock()
	host := a.hosts[len(a.sent)%len(a.hosts)]
	a.sent = append(a.sent, host)
	a.mu.Unlock()
	req = req.Clone(req.Context())
	req.URL.Host, req.Host = host, host
	return http.DefaultTransport.RoundTrip(req)
}

// TestClientRetriesOutcomeUnknown: the Go client, publishing while Redis
// holds its writes, gets 503 publish_outcome_unknown and retries with the
// same Idempotency-Key, on the other node: the publish succeeds, and every
// client gets the event once.
func TestClientRetriesOutcomeUnknown(t *testing.T) {
	const timeout = 200 * time.Millisecond
	r := redistest.Start(t)
	a, apiA := streamsNode(t, r, timeout, nil)
	b, apiB := streamsNode(t, r, timeout, nil)
	ca := a.join("org-1", "user-1", sioclient.Options{})
	cb := b.join("org-1", "user-2", sioclient.Options{})
	lb := &alternate{hosts: []string{strings.TrimPrefix(apiA, "http://"), strings.TrimPrefix(apiB, "http://")}}
	client := apiclient.New(apiA, historyKey)
	client.HTTPClient = &http.Client{Transport: lb}
	svc := events.NewEventsService(client)
	// The append script loaded, as in TestRetryAfterOutcomeUnknown.
	if _, err := svc.EmitInvoiceCreated(t.Context(), events.InvoicePayload{OrganizationID: "org-1", InvoiceID: "inv-0", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	ca.Next(string(events.InvoiceCreated))
	cb.Next(string(events.InvoiceCreated))
	lb.mu.Lock()
	lb.sent = nil
	lb.mu.Unlock()

	before := streamLen(t, r)
	pause := 10 * timeout // longer than an attempt's appends (5 × timeout)
	if _, err := r.Do("CLIENT", "PAUSE", strconv.FormatInt(pause.Milliseconds(), 10), "WRITE"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.EmitInvoiceCreated(t.Context(), events.InvoicePayload{OrganizationID: "org-1", InvoiceID: "inv-1", Currency: "EUR"}); err != nil {
		t.Fatalf("publish through a %v stall: %v, want it retried until it succeeds", pause, err)
	}
	lb.mu.Lock()
	sent := len(lb.sent)
	lb.mu.Unlock()
	if sent < 2 {
		t.Errorf("%d requests sent, want a retry after 503 %s", sent, apiclient.CodeOutcomeUnknown)
	}
	for _, c := range []*sioclient.Client{ca, cb} {
		if ev := c.Next(string(events.InvoiceCreated)); !strings.Contains(string(ev.Args[0]), `"invoiceId":"inv-1"`) {
			t.Fatalf("got %s, want inv-1", ev)
		}
	}
	ca.NoEvent(string(events.InvoiceCreated), 3*timeout)
	cb.NoEvent(string(events.InvoiceCreated), 3*timeout)
	if n := streamLen(t, r) - before; n != 1 {
		t.Errorf("%d entries appended over %d attempts, want the event once", n, sent)
	}
}
