package auth

import (
	"context"
	"crypto/elliptic"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/operate/realtime/internal/testutil/wait"
)

// jwksConfig is a JWKS Config with a controllable clock and a background
// refresh far enough away not to interfere unless a test wants it.
func jwksConfig(url string, clock *testClock) Config {
	return Config{
		JWKSURL:                url,
		JWKSRefreshInterval:    time.Hour,
		JWKSMinRefreshInterval: time.Minute,
		Now:                    clock.Now,
		Logger:                 quietLogger,
	}
}

func TestJWKSVerifiesKeyTypes(t *testing.T) {
	rk := rsaKey()
	ec := ecKey(t, elliptic.P384())
	ed := edKey(t)
	srv := newJWKSServer(t)
	srv.setKeys(
		jwk(t, &rk.PublicKey, "rsa", "RS256"),
		jwk(t, &ec.PublicKey, "ec", ""), // no alg: derived ES384 from the curve
		jwk(t, ed.Public(), "ed", "EdDSA"),
	)
	clock := newClock(testNow)
	v := newVerifier(t, jwksConfig(srv.URL, clock))
	claims := claimsAt(testNow)

	tests := []struct {
		name   string
		method jwt.SigningMethod
		priv   any
		kid    string
		want   Code
	}{
		{"RS256", jwt.SigningMethodRS256, rk, "rsa", ""},
		{"ES384 derived", jwt.SigningMethodES384, ec, "ec", ""},
		{"EdDSA", jwt.SigningMethodEdDSA, ed, "ed", ""},
		{"PS256 on an RS256 key", jwt.SigningMethodPS256, rk, "rsa", CodeInvalidToken},
		{"RS512 on an RS256 key", jwt.SigningMethodRS512, rk, "rsa", CodeInvalidToken},
		{"right key, wrong kid", jwt.SigningMethodRS256, rk, "ec", CodeInvalidToken},
		{"signed by a stranger", jwt.SigningMethodRS256, rsaKey2(), "rsa", CodeInvalidToken},
		{"HS256 refused", jwt.SigningMethodHS256, []byte(testSecret), "rsa", CodeInvalidToken},
		{"none refused", jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa", CodeInvalidToken},
		{"no kid, one key fits", jwt.SigningMethodEdDSA, ed, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, v, sign(t, tt.method, tt.priv, tt.kid, claims), tt.want)
		})
	}
	// HS256 signed with the JWK JSON of the RSA key as secret: confusion.
	raw, _ := json.Marshal(jwk(t, &rk.PublicKey, "rsa", "RS256"))
	wantCode(t, v, sign(t, jwt.SigningMethodHS256, raw, "rsa", claims), CodeInvalidToken)

	if got := srv.hits.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times, want 1 (the initial fetch)", got)
	}
}

func TestJWKSPinnedAlgorithms(t *testing.T) {
	rk := rsaKey()
	srv := newJWKSServer(t)
	srv.setKeys(jwk(t, &rk.PublicKey, "noalg", ""), jwk(t, &rk.PublicKey, "rs256", "RS256"))
	claims := claimsAt(testNow)

	// Default: an RSA key without alg takes RS256 only.
	def := newVerifier(t, jwksConfig(srv.URL, newClock(testNow)))
	wantCode(t, def, sign(t, jwt.SigningMethodRS256, rk, "noalg", claims), "")
	wantCode(t, def, sign(t, jwt.SigningMethodPS256, rk, "noalg", claims), CodeInvalidToken)

	// Pinned PS256: the alg-less key takes it; the RS256-declared key is
	// unusable (its declared alg is not allowed).
	cfg := jwksConfig(srv.URL, newClock(testNow))
	cfg.Algorithms = []string{"PS256"}
	pinned := newVerifier(t, cfg)
	wantCode(t, pinned, sign(t, jwt.SigningMethodPS256, rk, "noalg", claims), "")
	wantCode(t, pinned, sign(t, jwt.SigningMethodRS256, rk, "noalg", claims), CodeInvalidToken)
	wantCode(t, pinned, sign(t, jwt.SigningMethodPS256, rk, "rs256", claims), CodeInvalidToken)
}

func TestJWKSRotation(t *testing.T) {
	k1, k2 := rsaKey(), rsaKey2()
	srv := newJWKSServer(t)
	srv.setKeys(jwk(t, &k1.PublicKey, "k1", "RS256"))
	clock := newClock(testNow)
	v := newVerifier(t, jwksConfig(srv.URL, clock))

	tok1 := sign(t, jwtRS256, k1, "k1", claimsAt(testNow))
	tok2 := sign(t, jwtRS256, k2, "k2", claimsAt(testNow))
	wantCode(t, v, tok1, "")

	// The IdP publishes k2. Within the minimum interval of the initial
	// fetch an unknown kid does not cause a fetch and fails fast.
	srv.addKey(jwk(t, &k2.PublicKey, "k2", "RS256"))
	wantCode(t, v, tok2, CodeInvalidToken)
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("hits = %d, want 1", got)
	}

	// Once the interval has passed, the unknown kid triggers one refresh
	// and the token verifies.
	clock.Advance(time.Minute)
	wantCode(t, v, tok2, "")
	wantCode(t, v, tok1, "")
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2", got)
	}

	// k1 is retired: after the next refresh it is gone.
	srv.setKeys(jwk(t, &k2.PublicKey, "k2", "RS256"))
	clock.Advance(time.Minute)
	wantCode(t, v, sign(t, jwtRS256, k2, "k3-unknown", claimsAt(testNow)), CodeInvalidToken) // triggers the refresh
	wantCode(t, v, tok1, CodeInvalidToken)
	wantCode(t, v, tok2, "")
}

func TestJWKSUnknownKidSpamIsRateLimited(t *testing.T) {
	rk := rsaKey()
	srv := newJWKSServer(t)
	srv.setKeys(jwk(t, &rk.PublicKey, "k1", "RS256"))
	clock := newClock(testNow)
	v := newVerifier(t, jwksConfig(srv.URL, clock))

	spam := func(round int) {
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok := sign(t, jwtRS256, rk, fmt.Sprintf("evil-%d-%d", round, i), claimsAt(testNow))
				if _, err := v.Verify(context.Background(), tok); CodeOf(err) != CodeInvalidToken {
					t.Errorf("spam token: %v", err)
				}
			}()
		}
		wg.Wait()
	}

	spam(0) // right after the initial fetch: no refetch at all
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("after spam within the interval: hits = %d, want 1", got)
	}
	for round := 1; round <= 3; round++ {
		clock.Advance(time.Minute)
		spam(round)
		spam(round) // the second burst falls inside the new interval
		if got, want := srv.hits.Load(), int64(1+round); got != want {
			t.Fatalf("after round %d: hits = %d, want %d (one fetch per interval)", round, got, want)
		}
	}
	// The legitimate key still works throughout.
	wantCode(t, v, sign(t, jwtRS256, rk, "k1", claimsAt(testNow)), "")
}

func TestJWKSDownAtStart(t *testing.T) {
	rk := rsaKey()
	srv := newJWKSServer(t)
	srv.setKeys(jwk(t, &rk.PublicKey, "k1", "RS256"))
	srv.setStatus(http.StatusServiceUnavailable)
	clock := newClock(testNow)

	v, err := New(context.Background(), jwksConfig(srv.URL, clock))
	if err != nil {
		t.Fatalf("New must not fail when the JWKS is down: %v", err)
	}
	defer v.Close()
	tok := sign(t, jwtRS256, rk, "k1", claimsAt(testNow))

	_, err = v.Verify(context.Background(), tok)
	if CodeOf(err) != CodeAuthUnavailable {
		t.Fatalf("Verify while JWKS down: %v, want AUTH_UNAVAILABLE", err)
	}
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("error %q should carry the fetch failure for logs", err)
	}
	if MessageOf(err) != CodeAuthUnavailable.Message() {
		t.Errorf("wire message = %q", MessageOf(err))
	}

	// The JWKS comes back. Within the interval we do not refetch...
	srv.setStatus(http.StatusOK)
	wantCode(t, v, tok, CodeAuthUnavailable)
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("hits = %d, want 1", got)
	}
	// ...after it, the next token fetches the keys and verifies.
	clock.Advance(time.Minute)
	wantCode(t, v, tok, "")
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2", got)
	}
}

func TestJWKSBackgroundRetryAfterFailedStart(t *testing.T) {
	rk := rsaKey()
	srv := newJWKSServer(t)
	srv.setKeys(jwk(t, &rk.PublicKey, "k1", "RS256"))
	srv.setStatus(http.StatusInternalServerError)

	// Real clock: the background loop retries every min interval while it
	// has no keys, without any token asking for it.
	v := newVerifier(t, Config{JWKSURL: srv.URL, JWKSMinRefreshInterval: 20 * time.Millisecond, JWKSRefreshInterval: time.Hour})
	wait.For(t, "a background retry", func() bool { return srv.hits.Load() >= 2 })
	srv.setStatus(http.StatusOK)
	before := srv.hits.Load()
	wait.For(t, "a successful background fetch", func() bool { return srv.handled.Load() > before })
	wait.For(t, "keys", func() bool { return v.jwks.keys.Load() != nil })

	// Once loaded, the loop backs off to the (hour-long) refresh interval.
	time.Sleep(100 * time.Millisecond)
	settled := srv.hits.Load()
	time.Sleep(100 * time.Millisecond)
	if got := srv.hits.Load(); got != settled {
		t.Errorf("background kept fetching after success: %d -> %d", settled, got)
	}
	wantCode(t, v, sign(t, jwtRS256, rk, "k1", claimsAt(time.Now())), "")
}

func TestJWKSKeepsKeysWhenRefreshFails(t *testing.T) {
	rk := rsaKey()
	srv := newJWKSServer(t)
	srv.setKeys(jwk(t, &rk.PublicKey, "k1", "RS256"))
	clock := newClock(testNow)
	v := newVerifier(t, jwksConfig(srv.URL, clock))

	for _, breakage := range []func(){
		func() { srv.setStatus(http.StatusBadGateway) },
		func() { srv.setStatus(http.StatusOK); srv.setKeys() }, // empty set
	} {
		breakage()
		clock.Advance(time.Minute)
		before := srv.hits.Load()
		wantCode(t, v, sign(t, jwtRS256, rk, "unknown", claimsAt(testNow)), CodeInvalidToken)
		if srv.hits.Load() != before+1 {
			t.Fatal("unknown kid did not trigger a refresh")
		}
		wantCode(t, v, sign(t, jwtRS256, rk, "k1", claimsAt(testNow)), "")
	}
}

func TestJWKSWaitIsBoundedByContext(t *testing.T) {
	rk := rsaKey()
	srv := newJWKSServer(t)
	srv.setKeys(jwk(t, &rk.PublicKey, "k1", "RS256"))
	clock := newClock(testNow)
	v := newVerifier(t, jwksConfig(srv.URL, clock))

	// The next fetch hangs; a token waiting for it gives up with its ctx.
	block := make(chan struct{})
	srv.mu.Lock()
	srv.block = block
	srv.mu.Unlock()
	defer close(block) // release the handler before Close waits for the fetch
	clock.Advance(time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := v.Verify(ctx, sign(t, jwtRS256, rk, "k2", claimsAt(testNow)))
	if CodeOf(err) != CodeAuthUnavailable {
		t.Fatalf("Verify = %v, want AUTH_UNAVAILABLE on ctx timeout", err)
	}
	// Known kids are served from the cache meanwhile, without waiting.
	wantCode(t, v, sign(t, jwtRS256, rk, "k1", claimsAt(testNow)), "")
}

func TestJWKSConcurrentRotation(t *testing.T) {
	k1, k2 := rsaKey(), rsaKey2()
	srv := newJWKSServer(t)
	srv.setKeys(jwk(t, &k1.PublicKey, "k1", "RS256"))
	v := newVerifier(t, Config{JWKSURL: srv.URL, JWKSMinRefreshInterval: time.Millisecond, JWKSRefreshInterval: 5 * time.Millisecond})
	tok1 := sign(t, jwtRS256, k1, "k1", claimsAt(time.Now()))
	tok2 := sign(t, jwtRS256, k2, "k2", claimsAt(time.Now()))

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := v.Verify(context.Background(), tok1); err != nil {
					t.Errorf("k1: %v", err)
					return
				}
				_, _ = v.Verify(context.Background(), tok2) // may or may not be known yet
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	srv.setKeys(jwk(t, &k1.PublicKey, "k1", "RS256"), jwk(t, &k2.PublicKey, "k2", "RS256"))
	wait.For(t, "k2 to verify", func() bool { _, err := v.Verify(context.Background(), tok2); return err == nil })
	close(stop)
	wg.Wait()
}

func TestJWKSCloseStopsBackgroundWork(t *testing.T) {
	rk := rsaKey()
	srv := newJWKSServer(t)
	srv.setKeys(jwk(t, &rk.PublicKey, "k1", "RS256"))
	// Fetches are counted where they start, in the client: a request sent just
	// before Close may reach the server's handler after Close returned, so the
	// server's count would blame Close for a fetch it did not start.
	var started atomic.Int64
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		started.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	v, err := New(context.Background(), Config{JWKSURL: srv.URL, JWKSMinRefreshInterval: time.Millisecond, JWKSRefreshInterval: 5 * time.Millisecond, HTTPClient: client, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, "background refreshes", func() bool { return started.Load() >= 3 })
	v.Close()
	after := started.Load()
	time.Sleep(50 * time.Millisecond) // ten refresh intervals
	if got := started.Load(); got != after {
		t.Errorf("fetches after Close: %d -> %d", after, got)
	}
	// Cached keys still verify; unknown kids cannot trigger a fetch.
	wantCode(t, v, sign(t, jwtRS256, rk, "k1", claimsAt(time.Now())), "")
	wantCode(t, v, sign(t, jwtRS256, rk, "k9", claimsAt(time.Now())), CodeInvalidToken)
	if got := started.Load(); got != after {
		t.Errorf("fetch after Close: %d -> %d", after, got)
	}
}

func TestNewWaitsForFirstFetchOnlyUntilCtxDone(t *testing.T) {
	rk := rsaKey()
	srv := newJWKSServer(t)
	srv.setKeys(jwk(t, &rk.PublicKey, "k1", "RS256"))
	block := make(chan struct{})
	srv.block = block

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	v, err := New(ctx, Config{JWKSURL: srv.URL, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("New took %s despite a 50ms ctx", d)
	}
	srv.mu.Lock()
	srv.block = nil
	srv.mu.Unlock()
	close(block)
	// The first fetch carries on in the background and lands.
	wait.For(t, "keys", func() bool { return v.jwks.keys.Load() != nil })
	wantCode(t, v, sign(t, jwtRS256, rk, "k1", claimsAt(time.Now())), "")
	v.Close()
}

func TestParseKeySetSkipsUnusableKeys(t *testing.T) {
	rk := rsaKey()
	ec := ecKey(t, elliptic.P256())
	good, _ := json.Marshal(jwk(t, &rk.PublicKey, "good", "RS256"))
	enc := jwk(t, &rk.PublicKey, "enc", "")
	enc.USE = "enc"
	encJSON, _ := json.Marshal(enc)
	badAlg, _ := json.Marshal(jwk(t, &ec.PublicKey, "ec-as-rsa", "RS256"))
	weak, _ := json.Marshal(jwk(t, &mustRSA(1024).PublicKey, "weak", ""))
	doc := fmt.Sprintf(`{"keys":[%s,%s,%s,%s,{"kty":"oct","kid":"hmac","k":"c2VjcmV0"},{"kty":"RSA","kid":"broken","n":"!!","e":"AQAB"},{"kty":"EC","kid":"wrongtype","crv":1}]}`,
		good, encJSON, badAlg, weak)

	set, skipped, err := parseKeySet([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.all) != 1 || set.byKID["good"] == nil {
		t.Fatalf("usable keys = %d, want only %q", len(set.all), "good")
	}
	joined := strings.Join(skipped, "\n")
	for _, want := range []string{`use "enc"`, "oct", `alg "RS256" cannot be used with its EC key`, "need at least 2048", `"broken"`, "key 6"} {
		if !strings.Contains(joined, want) {
			t.Errorf("skip reasons %q lack %q", joined, want)
		}
	}

	if _, _, err := parseKeySet([]byte(`{"keys":[]}`), nil); err == nil {
		t.Error("empty JWKS accepted")
	}
	if _, _, err := parseKeySet([]byte(`<html>`), nil); err == nil {
		t.Error("non-JSON JWKS accepted")
	}
}
