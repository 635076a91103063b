package httpapi

import (
	"crypto/sha256"
	"testing"
)

// TestOnceKeys: the cluster key of an event differs with anything that
// tells two requests apart (the API key, the endpoint, the
// Idempotency-Key, the body) and with the event's place in the batch, and
// is the same for the same event of the same request, whichever node
// derives it.
func TestOnceKeys(t *testing.T) {
	keyA, keyB := sha256.Sum256([]byte("key-one-0123456789abcdef")), sha256.Sum256([]byte("key-two-0123456789abcdef"))
	body, other := sha256.Sum256([]byte(`[{"event":"a"}]`)), sha256.Sum256([]byte(`[{"event":"b"}]`))
	base := onceScope(&keyA, PathBatch, "k1", &body)
	if again := onceScope(&keyA, PathBatch, "k1", &body); again != base || onceKey(again, 1) != onceKey(base, 1) {
		t.Fatalf("the same request gives %s, then %s", base, again)
	}
	seen := map[string]string{}
	add := func(what, key string) {
		t.Helper()
		if prev, ok := seen[key]; ok {
			t.Errorf("%s and %s share the key %s", prev, what, key)
		}
		seen[key] = what
	}
	add("event 0", onceKey(base, 0))
	add("event 1", onceKey(base, 1))
	add("event 10", onceKey(base, 10))
	add("another API key", onceKey(onceScope(&keyB, PathBatch, "k1", &body), 0))
	add("another endpoint", onceKey(onceScope(&keyA, PathEvents, "k1", &body), 0))
	add("another Idempotency-Key", onceKey(onceScope(&keyA, PathBatch, "k2", &body), 0))
	add("another body", onceKey(onceScope(&keyA, PathBatch, "k1", &other), 0))
	// The endpoint and the Idempotency-Key are not simply concatenated.
	add("a shifted boundary", onceKey(onceScope(&keyA, PathBatch+"k", "1", &body), 0))
	if len(base) != 32 {
		t.Errorf("scope %q: want 128 bits in hex", base)
	}
}
