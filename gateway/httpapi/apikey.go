package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/time/rate"
)

// MinAPIKeyLength is the shortest API key accepted in the configuration:
// shorter keys can be guessed.
const MinAPIKeyLength = 16

// keyring holds the SHA-256 digests of the configured API keys, and each
// key's publish budget.
type keyring struct {
	digests [][sha256.Size]byte
	keys    []*apiKey
}

// apiKey is a configured key, as a request that presented it sees it.
type apiKey struct {
	// id names the key in logs: the first 8 hex digits of its digest,
	// enough to tell keys apart and useless to an attacker.
	id string
	// digest is the key's whole SHA-256 digest: the scope of its
	// publishes' keys in the cluster (see onceScope), where two keys must
	// never meet.
	digest [sha256.Size]byte
	// budget bounds the events published with the key; nil when unlimited.
	// Each key has its own, so one runaway publisher cannot starve others.
	budget *rate.Limiter
}

func newKeyring(keys []string, budget func() *rate.Limiter) (keyring, error) {
	var k keyring
	for i, key := range keys {
		if len(key) < MinAPIKeyLength {
			return keyring{}, fmt.Errorf("httpapi: API key %d is %d characters long, need at least %d", i+1, len(key), MinAPIKeyLength)
		}
		d := sha256.Sum256([]byte(key))
		k.digests = append(k.digests, d)
		k.keys = append(k.keys, &apiKey{id: hex.EncodeToString(d[:4]), digest: d, budget: budget()})
	}
	return k, nil
}

// match returns the key presented is, if any. Comparing digests makes the
// time independent of the keys' lengths, and every key is compared so that
// the time does not tell which one matched either.
func (k keyring) match(presented string) (*apiKey, bool) {
	d := sha256.Sum256([]byte(presented))
	found, index := 0, 0
	for i, want := range k.digests {
		eq := subtle.ConstantTimeCompare(d[:], want[:])
		found |= eq
		index = subtle.ConstantTimeSelect(eq, i, index)
	}
	if found == 0 {
		return nil, false
	}
	return k.keys[index], true
}

// authenticate checks the request's API key.
func (h *Handler) authenticate(r *http.Request) (*apiKey, *apiError) {
	presented, ok := bearer(r.Header.Get("Authorization"))
	if !ok || presented == "" {
		return nil, newError(http.StatusUnauthorized, CodeUnauthorized,
			`missing API key: send "Authorization: Bearer <API key>"`, "")
	}
	if len(h.keys.digests) == 0 {
		return nil, newError(http.StatusForbidden, CodeForbidden,
			"the publish API is disabled: no API keys are configured (API_KEYS)", "")
	}
	key, ok := h.keys.match(presented)
	if !ok {
		return nil, newError(http.StatusForbidden, CodeForbidden, "invalid API key", "")
	}
	return key, nil
}

// bearer extracts the credentials of a Bearer Authorization header; the
// scheme is case-insensitive (RFC 9110 §11.1).
func bearer(h string) (string, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(rest), true
}
