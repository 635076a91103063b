package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// We use jwkset to decode and validate individual JWKs but run the cache
// ourselves instead of using keyfunc/jwkset's HTTP storage: their
// unknown-kid refresh makes every caller wait on a rate limiter (up to a
// minute by default), so a burst of tokens with random kids would park
// goroutines on the handshake path and then refetch once per waiter. Here a
// token-triggered refresh happens at most once per minInterval, concurrent
// callers share one in-flight fetch, and everyone else fails fast.
const (
	// jwksFetchTimeout bounds one JWKS HTTP request.
	jwksFetchTimeout = 10 * time.Second
	// maxJWKSBytes bounds the JWKS document we read; real ones are a few KiB.
	maxJWKSBytes = 1 << 20
)

type jwksOptions struct {
	url             string
	client          *http.Client
	refreshInterval time.Duration
	minInterval     time.Duration
	pinnedAlgs      []string // nil: per-key default
	logger          *slog.Logger
	now             func() time.Time
}

// verKey is one usable JWKS signing key.
type verKey struct {
	kid  string
	key  any      // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	algs []string // algorithms this key may verify
}

// keySet is an immutable snapshot of the JWKS, swapped atomically.
type keySet struct {
	byKID map[string][]*verKey
	all   []*verKey
}

// refreshCall is one JWKS fetch; done is closed when err is set.
type refreshCall struct {
	done chan struct{}
	err  error
}

type jwksCache struct {
	opts   jwksOptions
	logger *slog.Logger
	keys   atomic.Pointer[keySet] // nil until the first successful fetch

	life   context.Context // cancelled by close; parent of every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	inflight  *refreshCall
	lastStart time.Time // start of the latest fetch, by opts.now
	lastErr   error     // result of the latest finished fetch
}

func newJWKSCache(opts jwksOptions) *jwksCache {
	c := &jwksCache{opts: opts, logger: opts.logger}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	c.life, c.cancel = context.WithCancel(context.Background())
	return c
}

// start runs the first fetch, waiting for it until ctx is done, then starts
// the background refresh loop.
func (c *jwksCache) start(ctx context.Context) {
	if call, ok := c.startRefresh(true); ok {
		select {
		case <-call.done:
		case <-ctx.Done():
		}
	}
	c.wg.Add(1)
	go c.loop()
}

// loop refreshes every refreshInterval, or every minInterval while the last
// fetch failed, so a JWKS that was down at startup is picked up soon without
// hammering it.
func (c *jwksCache) loop() {
	defer c.wg.Done()
	timer := time.NewTimer(c.nextDelay())
	defer timer.Stop()
	for {
		select {
		case <-c.life.Done():
			return
		case <-timer.C:
		}
		if call, ok := c.startRefresh(true); ok {
			select {
			case <-call.done:
			case <-c.life.Done():
				return
			}
		}
		timer.Reset(c.nextDelay())
	}
}

func (c *jwksCache) nextDelay() time.Duration {
	c.mu.Lock()
	failed := c.lastErr != nil
	c.mu.Unlock()
	if failed || c.keys.Load() == nil {
		return c.opts.minInterval
	}
	return c.opts.refreshInterval
}

func (c *jwksCache) close() {
	c.mu.Lock()
	c.closed = true // no fetch starts (and no wg.Add happens) after this
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

// startRefresh joins the in-flight fetch or starts one. Unless force is set,
// a new fetch is refused (ok false) within minInterval of the previous one:
// that is what stops unknown-kid spam from reaching the JWKS endpoint.
func (c *jwksCache) startRefresh(force bool) (call *refreshCall, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false
	}
	if c.inflight != nil {
		return c.inflight, true
	}
	now := c.opts.now()
	if !force && !c.lastStart.IsZero() && now.Sub(c.lastStart) < c.opts.minInterval {
		return nil, false
	}
	call = &refreshCall{done: make(chan struct{})}
	c.inflight = call
	c.lastStart = now
	c.wg.Add(1)
	// The fetch runs on the cache's own context, not the caller's: one
	// impatient client must not abort a fetch other callers are waiting for.
	go func() {
		defer c.wg.Done()
		err := c.fetch(c.life)
		c.mu.Lock()
		c.inflight = nil
		c.lastErr = err
		c.mu.Unlock()
		call.err = err
		close(call.done)
	}()
	return call, true
}

// refresh triggers a token-driven fetch (subject to minInterval) and waits
// for it. It reports whether a fetch completed, so the caller knows whether
// looking again can help.
func (c *jwksCache) refresh(ctx context.Context) (bool, error) {
	call, ok := c.startRefresh(false)
	if !ok {
		return false, nil
	}
	select {
	case <-call.done:
		return true, nil
	case <-ctx.Done():
		return false, fmt.Errorf("waiting for JWKS refresh: %w", ctx.Err())
	}
}

// unavailable builds the "no keys" error, with the last fetch error for logs.
func (c *jwksCache) unavailable() error {
	c.mu.Lock()
	last, closed := c.lastErr, c.closed
	c.mu.Unlock()
	switch {
	case last != nil:
		return fmt.Errorf("%w: last fetch: %w", errKeysUnavailable, last)
	case closed:
		return fmt.Errorf("%w: %w", errKeysUnavailable, errClosed)
	}
	return errKeysUnavailable
}

// keyfunc returns a jwt.Keyfunc bound to ctx (which bounds waiting for a
// refresh).
func (c *jwksCache) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) { return c.lookup(ctx, t) }
}

func (c *jwksCache) lookup(ctx context.Context, t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errCritHeader
	}
	alg := t.Method.Alg()
	var kid string
	if k, present := t.Header["kid"]; present {
		s, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf(`token "kid" header is a %T, want a string`, k)
		}
		kid = s
	}

	set := c.keys.Load()
	if set == nil {
		// Nothing fetched yet (JWKS down at startup): try now, within the
		// same minInterval budget as unknown kids.
		if _, err := c.refresh(ctx); err != nil {
			return nil, err
		}
		if set = c.keys.Load(); set == nil {
			return nil, c.unavailable()
		}
	}

	candidates := set.all
	if kid != "" {
		candidates = set.byKID[kid]
		if len(candidates) == 0 {
			// Possibly a freshly rotated key: refetch, rate-limited.
			refreshed, err := c.refresh(ctx)
			if err != nil {
				return nil, err
			}
			if refreshed {
				set = c.keys.Load()
				candidates = set.byKID[kid]
			}
			if len(candidates) == 0 {
				return nil, fmt.Errorf("%w: %q", errUnknownKID, kid)
			}
		}
	}

	// Usually exactly one key fits; return it without allocating.
	var match *verKey
	n := 0
	for _, k := range candidates {
		if slices.Contains(k.algs, alg) {
			if match == nil {
				match = k
			}
			n++
		}
	}
	switch n {
	case 0:
		return nil, fmt.Errorf("%w %s (kid %q)", errNoCompatibleKey, alg, kid)
	case 1:
		return match.key, nil
	}
	ks := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, 0, n)}
	for _, k := range candidates {
		if slices.Contains(k.algs, alg) {
			ks.Keys = append(ks.Keys, k.key)
		}
	}
	return ks, nil
}

// fetch downloads, parses and installs the JWKS. On any failure the previous
// key set stays in place: an IdP hiccup must not log everybody out.
func (c *jwksCache) fetch(ctx context.Context) error {
	logURL := RedactURL(c.opts.url)
	set, skipped, err := c.download(ctx)
	if err != nil {
		err = fmt.Errorf("fetch JWKS %s: %w", logURL, err)
		c.logger.Warn("auth: JWKS refresh failed; keeping previous keys", "error", err, "have_keys", c.keys.Load() != nil)
		return err
	}
	for _, s := range skipped {
		c.logger.Debug("auth: JWKS key skipped", "url", logURL, "reason", s)
	}
	old := c.keys.Swap(set)
	newKids, oldKids := kidList(set), kidList(old)
	if old == nil || newKids != oldKids {
		c.logger.Info("auth: JWKS keys loaded", "url", logURL, "kids", newKids, "previous_kids", oldKids, "skipped", len(skipped))
	}
	return nil
}

func (c *jwksCache) download(ctx context.Context) (*keySet, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.opts.url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.opts.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, nil, fmt.Errorf("unexpected HTTP status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, nil, fmt.Errorf("JWKS larger than %d bytes", maxJWKSBytes)
	}
	return parseKeySet(body, c.opts.pinnedAlgs)
}

// parseKeySet builds a keySet from a JWKS document. Keys we cannot or must
// not use are skipped (and reported), so one exotic key does not make the
// whole set unusable; a set with no usable key is an error.
func parseKeySet(body []byte, pinned []string) (*keySet, []string, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("decode JWKS: %w", err)
	}
	set := &keySet{byKID: make(map[string][]*verKey, len(doc.Keys))}
	var skipped []string
	for i, raw := range doc.Keys {
		k, err := parseJWK(raw, pinned)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		set.all = append(set.all, k)
		if k.kid != "" {
			set.byKID[k.kid] = append(set.byKID[k.kid], k)
		}
	}
	if len(set.all) == 0 {
		return nil, skipped, fmt.Errorf("JWKS has no usable signing key (%d keys, skipped: %s)", len(doc.Keys), strings.Join(skipped, "; "))
	}
	return set, skipped, nil
}

// parseJWK turns one JWK into a verKey, deciding which algorithms it may
// verify: its declared "alg" if any (it must fit the key), else the default
// for its type; intersected with the pinned algorithms when configured.
func parseJWK(raw json.RawMessage, pinned []string) (*verKey, error) {
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode JWK: %w", err)
	}
	kid := m.KID
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, fmt.Errorf("kid %q: use %q is not sig", kid, m.USE)
	}
	if len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify) {
		return nil, fmt.Errorf("kid %q: key_ops %v does not include verify", kid, m.KEYOPS)
	}
	if m.KTY == jwkset.KtyOct {
		// A symmetric key in a published key set would let anyone who can
		// read the JWKS sign tokens.
		return nil, fmt.Errorf("kid %q: symmetric (oct) keys are not accepted from a JWKS", kid)
	}
	// Private: false makes jwkset ignore any private parameters someone
	// published by mistake; we only ever hold the public key.
	j, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: false}, jwkset.JWKValidateOptions{})
	if err != nil {
		return nil, fmt.Errorf("kid %q: %w", kid, err)
	}
	kind, def, bits, err := publicKeyInfo(j.Key())
	if err != nil {
		return nil, fmt.Errorf("kid %q: %w", kid, err)
	}
	algs := []string{def}
	if m.ALG != "" {
		canon, k, b, ok := algInfo(string(m.ALG))
		if !ok || canon != string(m.ALG) || k != kind || (kind == kindEC && b != bits) {
			return nil, fmt.Errorf("kid %q: alg %q cannot be used with its %s", kid, m.ALG, kind)
		}
		algs = []string{canon}
	}
	if pinned != nil {
		var allowed []string
		for _, a := range pinned {
			_, k, b, _ := algInfo(a)
			if k != kind || (kind == kindEC && b != bits) {
				continue
			}
			if m.ALG != "" && a != string(m.ALG) {
				continue
			}
			allowed = append(allowed, a)
		}
		if len(allowed) == 0 {
			return nil, fmt.Errorf("kid %q: none of the configured algorithms fits its %s", kid, kind)
		}
		algs = allowed
	}
	return &verKey{kid: kid, key: j.Key(), algs: algs}, nil
}

// kidList renders a key set's kids for logs, sorted so that refreshes that
// change nothing compare equal.
func kidList(s *keySet) string {
	if s == nil {
		return ""
	}
	kids := make([]string, 0, len(s.all))
	for _, k := range s.all {
		kids = append(kids, k.kid)
	}
	sort.Strings(kids)
	return strings.Join(kids, ",")
}
