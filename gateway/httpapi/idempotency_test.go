package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/httpapi"
)

const paid = `{"event":"invoice:paid","payload":` + invoice + `}`

func idOf(t *testing.T, r result) string {
	t.Helper()
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var resp httpapi.PublishResponse
	r.decode(t, &resp)
	return resp.ID
}

// TestIdempotentRetry: a retry with the same key and body gets the first
// answer, byte for byte, and publishes nothing more.
func TestIdempotentRetry(t *testing.T) {
	url, rec := newAPI(t, httpapi.Config{})
	first := post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", "order-42")
	second := post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", "order-42")
	if idOf(t, first) != idOf(t, second) || string(first.body) != string(second.body) {
		t.Fatalf("answers differ: %s / %s", first.body, second.body)
	}
	if first.header.Get("Idempotent-Replayed") != "" || second.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("Idempotent-Replayed: %q then %q", first.header.Get("Idempotent-Replayed"), second.header.Get("Idempotent-Replayed"))
	}
	// Batches are idempotent too, under their own scope.
	b1 := post(t, url, httpapi.PathBatch, "["+paid+","+paid+"]", "Idempotency-Key", "order-42")
	b2 := post(t, url, httpapi.PathBatch, "["+paid+","+paid+"]", "Idempotency-Key", "order-42")
	if b1.status != http.StatusAccepted || string(b1.body) != string(b2.body) {
		t.Fatalf("batch answers: %d %s / %s", b1.status, b1.body, b2.body)
	}
	// Without a key, a repeat publishes again.
	if idOf(t, post(t, url, httpapi.PathEvents, paid)) == idOf(t, post(t, url, httpapi.PathEvents, paid)) {
		t.Error("two requests without a key got the same id")
	}
	if n := len(rec.published()); n != 1+2+2 {
		t.Errorf("%d events published, want 5", n)
	}
}

// TestIdempotencyKeyScopes: the same key under another API key is another
// request; reusing a key with another body is refused.
func TestIdempotencyKeyScopes(t *testing.T) {
	url, rec := newAPI(t, httpapi.Config{})
	a := idOf(t, post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", "k"))
	b := idOf(t, do(t, http.MethodPost, url+httpapi.PathEvents, strings.NewReader(paid), "Authorization", "Bearer "+key2, "Idempotency-Key", "k"))
	if a == b {
		t.Error("two API keys share an idempotency key")
	}
	r := post(t, url, httpapi.PathEvents, `{"event":"invoice:sent","payload":`+invoice+`}`, "Idempotency-Key", "k")
	if e := r.errorBody(t); r.status != http.StatusUnprocessableEntity || e.Code != httpapi.CodeIdempotencyKeyReused {
		t.Errorf("reused key: %d %s", r.status, r.body)
	}
	for _, bad := range []string{strings.Repeat("k", 256), "has space", "tab\tkey", "é"} {
		r := post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", bad)
		if e := r.errorBody(t); r.status != http.StatusBadRequest || e.Code != httpapi.CodeInvalidIdempotencyKey || e.Field != "Idempotency-Key" {
			t.Errorf("key %q: %d %s", bad, r.status, r.body)
		}
	}
	if n := len(rec.published()); n != 2 {
		t.Errorf("%d events published, want 2", n)
	}
}

// TestIdempotencyFailuresNotStored: an invalid request or a failed publish
// does not burn the key: the corrected retry runs.
func TestIdempotencyFailuresNotStored(t *testing.T) {
	fail := true
	var mu sync.Mutex
	rec := &recorder{fail: func(int, events.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errBoom
		}
		return nil
	}}
	url, _ := newAPI(t, httpapi.Config{Emitter: rec})
	if r := post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", "k1"); r.status != http.StatusInternalServerError {
		t.Fatalf("failing publish: %d %s", r.status, r.body)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	idOf(t, post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", "k1"))

	if r := post(t, url, httpapi.PathEvents, `{"event":"invoice:paid","payload":{}}`, "Idempotency-Key", "k2"); r.status != http.StatusBadRequest {
		t.Fatalf("invalid request: %d %s", r.status, r.body)
	}
	idOf(t, post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", "k2")) // another body, same key: runs
	if n := len(rec.published()); n != 2 {
		t.Errorf("%d events published, want 2", n)
	}
}

// TestIdempotencyConcurrent: simultaneous retries publish once and all get
// the same answer.
func TestIdempotencyConcurrent(t *testing.T) {
	url, rec := newAPI(t, httpapi.Config{})
	const n = 20
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", "same")
			if r.status == http.StatusAccepted {
				var resp httpapi.PublishResponse
				r.decode(t, &resp)
				ids[i] = resp.ID
			}
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("answer %d: id %q, want %q", i, id, ids[0])
		}
	}
	if got := len(rec.published()); got != 1 {
		t.Fatalf("%d events published, want 1", got)
	}
}

// TestIdempotencyBounds: answers are forgotten after the TTL, and the
// oldest go first past the maximum number of keys.
func TestIdempotencyBounds(t *testing.T) {
	url, _ := newAPI(t, httpapi.Config{IdempotencyTTL: 200 * time.Millisecond, IdempotencyMaxKeys: 2})
	a := idOf(t, post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", "a"))
	if idOf(t, post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", "a")) != a {
		t.Fatal("not replayed within the TTL")
	}
	time.Sleep(250 * time.Millisecond)
	if idOf(t, post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", "a")) == a {
		t.Fatal("replayed after the TTL")
	}

	url, _ = newAPI(t, httpapi.Config{IdempotencyMaxKeys: 2})
	ids := map[string]string{}
	for _, k := range []string{"k1", "k2", "k3"} {
		ids[k] = idOf(t, post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", k))
	}
	if idOf(t, post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", "k3")) != ids["k3"] ||
		idOf(t, post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", "k2")) != ids["k2"] {
		t.Error("recent keys were forgotten")
	}
	if idOf(t, post(t, url, httpapi.PathEvents, paid, "Idempotency-Key", "k1")) == ids["k1"] {
		t.Error("the oldest key was kept beyond the maximum")
	}
}

// onceEmitter is a recorder that is an events.OnceEmitter: it records the
// keys and keeps it is given, and answers earlier, for a key it saw, the
// id of the event first published with it, as the gateway does.
type onceEmitter struct {
	*recorder
	mu    sync.Mutex
	keys  []string
	keeps []time.Duration
	ids   map[string]string
}

func (o *onceEmitter) PublishOffset(ctx context.Context, ev events.Event) (string, error) {
	return "", o.Publish(ctx, ev)
}

func (o *onceEmitter) PublishOnce(ctx context.Context, ev events.Event, key string, keep time.Duration) (string, string, error) {
	o.mu.Lock()
	o.keys, o.keeps = append(o.keys, key), append(o.keeps, keep)
	id, seen := o.ids[key]
	if !seen {
		o.ids[key] = ev.ID
		id = ev.ID
	}
	o.mu.Unlock()
	if seen {
		return id, "", nil
	}
	return id, "", o.Publish(ctx, ev)
}

// TestIdempotencyKeyReachesTheCluster: an event sent with an
// Idempotency-Key is published through events.OnceEmitter, with a key of
// its own per event, kept for the idempotency TTL up to MaxOnceKeep; a
// retry the node's cache cannot answer (its first attempt failed, or ran
// on another node) gets the same keys and answers the ids the emitter
// gives. Without an Idempotency-Key nothing changes.
func TestIdempotencyKeyReachesTheCluster(t *testing.T) {
	for _, ttl := range []time.Duration{time.Minute, time.Hour} {
		em := &onceEmitter{recorder: &recorder{}, ids: map[string]string{}}
		urlA, _ := newAPI(t, httpapi.Config{Emitter: em, IdempotencyTTL: ttl})
		urlB, _ := newAPI(t, httpapi.Config{Emitter: em, IdempotencyTTL: ttl}) // another node, sharing the cluster
		batch := "[" + paid + "," + paid + "]"
		var first, retry httpapi.BatchResponse
		post(t, urlA, httpapi.PathBatch, batch, "Idempotency-Key", "b-1").decode(t, &first)
		post(t, urlB, httpapi.PathBatch, batch, "Idempotency-Key", "b-1").decode(t, &retry)
		if len(first.IDs) != 2 || strings.Join(retry.IDs, ",") != strings.Join(first.IDs, ",") {
			t.Errorf("ttl %v: first ids %v, retry on another node %v: want the same", ttl, first.IDs, retry.IDs)
		}
		if n := len(em.published()); n != 2 {
			t.Errorf("ttl %v: %d events published, want 2", ttl, n)
		}
		if len(em.keys) != 4 || em.keys[0] == em.keys[1] || em.keys[2] != em.keys[0] || em.keys[3] != em.keys[1] {
			t.Errorf("ttl %v: keys %q: want one per event, the same on the retry", ttl, em.keys)
		}
		for _, keep := range em.keeps {
			if want := min(ttl, httpapi.MaxOnceKeep); keep != want {
				t.Errorf("ttl %v: keep %v, want %v", ttl, keep, want)
			}
		}
		post(t, urlA, httpapi.PathEvents, paid)
		if len(em.keys) != 4 || len(em.published()) != 3 {
			t.Errorf("ttl %v: a publish without Idempotency-Key went through PublishOnce (%d keys, %d published)", ttl, len(em.keys), len(em.published()))
		}
	}
}
