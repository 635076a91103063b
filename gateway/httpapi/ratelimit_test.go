package httpapi_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/httpapi"
)

// batchOf is a batch body of n valid invoice:paid events for org-1.
func batchOf(n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`{"event":"invoice:paid","payload":{"organizationId":"org-1","invoiceId":"inv-%d"}}`, i)
	}
	return "[" + strings.Join(items, ",") + "]"
}

const oneEvent = `{"event":"invoice:paid","payload":{"organizationId":"org-1","invoiceId":"inv-x"}}`

// TestPublishRateLimit: each API key has its own budget of events; a
// request beyond it is refused whole (429, Retry-After, a JSON body saying
// so) and publishes nothing; invalid requests spend nothing; the budget
// refills at the configured rate.
func TestPublishRateLimit(t *testing.T) {
	// Slow refill (one event per 500 ms) so that the budget is still empty
	// when the next request comes, however loaded the machine.
	url, rec := newAPI(t, httpapi.Config{PublishRate: 2, PublishBurst: 100, MaxBatch: 100})

	if r := post(t, url, httpapi.PathBatch, batchOf(100)); r.status != http.StatusAccepted {
		t.Fatalf("a full batch within the burst: %d %s", r.status, r.body)
	}
	r := post(t, url, httpapi.PathEvents, oneEvent)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("past the burst: %d %s, want 429", r.status, r.body)
	}
	if e := r.errorBody(t); e.Code != httpapi.CodeRateLimited || !strings.Contains(e.Message, "nothing was published") {
		t.Errorf("429 body %+v", e)
	}
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || secs != 1 { // one event at 2/s: 500 ms, rounded up
		t.Errorf("Retry-After %q, want 1", r.header.Get("Retry-After"))
	}
	if n := len(rec.published()); n != 100 {
		t.Fatalf("%d events published, want the batch's 100 only", n)
	}

	// An invalid request is answered for what it is, and costs nothing.
	if r := post(t, url, httpapi.PathEvents, `{"event":"invoice:nope","payload":{}}`); r.status != http.StatusBadRequest {
		t.Errorf("invalid event while over budget: %d %s, want 400", r.status, r.body)
	}
	// Another key has its own budget.
	r = do(t, http.MethodPost, url+httpapi.PathEvents, strings.NewReader(oneEvent), "Authorization", "Bearer "+key2)
	if r.status != http.StatusAccepted {
		t.Errorf("second key: %d %s", r.status, r.body)
	}

	time.Sleep(time.Duration(secs) * time.Second) // two events' worth of refill
	if r := post(t, url, httpapi.PathBatch, batchOf(2)); r.status != http.StatusAccepted {
		t.Fatalf("after Retry-After: %d %s", r.status, r.body)
	}
	if n := len(rec.published()); n != 103 {
		t.Errorf("%d events published, want 103", n)
	}
}

// TestPublishRateLimitIdempotent: a refused request is not remembered
// under its Idempotency-Key, so the retry publishes.
func TestPublishRateLimitIdempotent(t *testing.T) {
	url, rec := newAPI(t, httpapi.Config{PublishRate: 1, MaxBatch: 100}) // burst: max(100, 2 s) = 100
	if r := post(t, url, httpapi.PathBatch, batchOf(100)); r.status != http.StatusAccepted {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	r := post(t, url, httpapi.PathEvents, oneEvent, "Idempotency-Key", "k-1")
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("over budget: %d %s", r.status, r.body)
	}
	time.Sleep(time.Second)
	r = post(t, url, httpapi.PathEvents, oneEvent, "Idempotency-Key", "k-1")
	if r.status != http.StatusAccepted || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry: %d %s (replayed %q), want a fresh 202", r.status, r.body, r.header.Get("Idempotent-Replayed"))
	}
	if n := len(rec.published()); n != 101 {
		t.Errorf("%d events published, want 101", n)
	}
}

// TestPublishRateLimitConfig: a burst that a full batch could never fit
// in, or a rate that is not a rate, is a configuration error.
func TestPublishRateLimitConfig(t *testing.T) {
	for _, cfg := range []httpapi.Config{
		{PublishRate: 10, PublishBurst: 50, MaxBatch: 100},
		{PublishRate: -1},
	} {
		cfg.Emitter = &recorder{}
		if _, err := httpapi.New(cfg); err == nil {
			t.Errorf("New(rate %v, burst %d, max batch %d): no error", cfg.PublishRate, cfg.PublishBurst, cfg.MaxBatch)
		}
	}
}

// TestPublishRateHuge: an absurd rate is no limit in practice, not an
// overflowed (negative) burst that refuses everything.
func TestPublishRateHuge(t *testing.T) {
	url, _ := newAPI(t, httpapi.Config{PublishRate: 1e300})
	if r := post(t, url, httpapi.PathBatch, batchOf(100)); r.status != http.StatusAccepted {
		t.Fatalf("batch at rate 1e300: %d %s", r.status, r.body)
	}
}
