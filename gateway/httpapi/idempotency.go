package httpapi

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"time"
)

// MaxIdempotencyKeyLength bounds an Idempotency-Key header.
const MaxIdempotencyKeyLength = 255

// errKeyReused: the key was first used with another request body.
var errKeyReused = errors.New("idempotency key reused with a different request")

// validIdempotencyKey accepts 1 to 255 visible ASCII characters.
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > MaxIdempotencyKeyLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// idemCache remembers the answers of successful requests by idempotency key,
// at most max of them and each for ttl. It is a FIFO: every entry lives for
// the same ttl, so the oldest entry is always the first to expire.
type idemCache struct {
	// Static after construction.
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*idemEntry
	order   *list.List // of *idemEntry, oldest first
}

// idemEntry is one key: pending until done is closed, then either stored
// (resp is the answer to replay) or forgotten (the attempt failed).
type idemEntry struct {
	// Static after construction.
	key         string
	fingerprint [sha256.Size]byte
	done        chan struct{}

	// Set before done is closed, read after.
	resp   response
	stored bool

	// Guarded by idemCache.mu.
	elem    *list.Element
	expires time.Time // zero while pending
}

func newIdemCache(ttl time.Duration, max int, now func() time.Time) *idemCache {
	return &idemCache{ttl: ttl, max: max, now: now, entries: make(map[string]*idemEntry), order: list.New()}
}

// begin looks key up. It returns either a pending entry that the caller now
// owns and must finish, or the stored answer to replay. A request with the
// same key and another body gets errKeyReused; one that arrives while the
// first attempt runs waits for it (until ctx ends).
func (c *idemCache) begin(ctx context.Context, key string, body []byte) (owned *idemEntry, replay *response, err error) {
	fp := sha256.Sum256(body)
	for {
		c.mu.Lock()
		now := c.now()
		c.evictLocked(now)
		e := c.entries[key]
		if e != nil && !e.expires.IsZero() && !now.Before(e.expires) {
			c.removeLocked(e) // expired but not evicted yet (behind a pending entry)
			e = nil
		}
		if e == nil {
			e = &idemEntry{key: key, fingerprint: fp, done: make(chan struct{})}
			e.elem = c.order.PushBack(e)
			c.entries[key] = e
			c.evictLocked(now)
			c.mu.Unlock()
			return e, nil, nil
		}
		c.mu.Unlock()

		if e.fingerprint != fp {
			return nil, nil, errKeyReused
		}
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		if e.stored {
			r := e.resp
			return nil, &r, nil
		}
		// The first attempt failed and was forgotten: this one runs.
	}
}

// finish records the answer of an owned entry: a 2xx answer is kept for
// replays, anything else forgets the key so that a retry runs again.
func (c *idemCache) finish(e *idemEntry, r response) {
	c.mu.Lock()
	if r.status >= 200 && r.status < 300 {
		e.resp, e.stored = r, true
		e.expires = c.now().Add(c.ttl)
	} else {
		c.removeLocked(e)
	}
	c.mu.Unlock()
	close(e.done)
}

// evictLocked drops expired entries and, past max, the oldest ones (even
// pending: the bound on memory wins; such a key simply runs again). c.mu
// must be held.
func (c *idemCache) evictLocked(now time.Time) {
	for {
		front := c.order.Front()
		if front == nil {
			return
		}
		e := front.Value.(*idemEntry)
		expired := !e.expires.IsZero() && !now.Before(e.expires)
		if !expired && c.order.Len() <= c.max {
			return
		}
		c.removeLocked(e)
	}
}

func (c *idemCache) removeLocked(e *idemEntry) {
	if e.elem == nil {
		return
	}
	c.order.Remove(e.elem)
	e.elem = nil
	if c.entries[e.key] == e {
		delete(c.entries, e.key)
	}
}

// len returns the number of keys held.
func (c *idemCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// MaxOnceKeep bounds how long the cluster remembers the publish of an event
// sent with an Idempotency-Key (events.OnceEmitter; the Redis Streams mode
// keeps one Redis key per event, about 210 bytes): the idempotency TTL, at
// most this. Ten minutes covers the retries the key is for, those of a
// publisher told 503 publish_outcome_unknown (the Go client's within
// seconds, a job queue's backoff within minutes), long after the first
// attempt's own appends have landed or been dropped (5 × the publish
// timeout); and a publisher sending 1,000 such events per second costs
// Redis about 130 MB, where the idempotency TTL (24 h by default) would
// cost 18 GB.
const MaxOnceKeep = 10 * time.Minute

// onceScope derives, for a publish request with an Idempotency-Key, the
// part shared by its events' keys in the cluster (see onceKey): a digest of
// the API key's own digest (publishers of two API keys never share keys,
// whatever Idempotency-Keys they pick), the endpoint and the
// Idempotency-Key (the idempotency cache's scope), and the body's digest,
// so that a key reused with another body on a node that never saw the
// first (and cannot answer 422) publishes its own events rather than
// answering with another request's. 128 bits: no two requests meet.
func onceScope(apiKey *[sha256.Size]byte, path, idemKey string, body *[sha256.Size]byte) string {
	h := sha256.New()
	h.Write(apiKey[:])
	h.Write(body[:])
	// Neither contains a NUL: the separator keeps them apart.
	h.Write([]byte(path + "\x00" + idemKey))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// onceKey is the key in the cluster of the event at index i of the request
// whose scope is scope (onceScope).
func onceKey(scope string, i int) string { return scope + ":" + strconv.Itoa(i) }
