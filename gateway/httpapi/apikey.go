package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

// MinAPIKeyLength is the shortest API key accepted in the configuration:
// shorter keys can be guessed.
const MinAPIKeyLength = 16

// keyring holds the SHA-256 digests of the configured API keys.
type keyring struct {
	digests [][sha256.Size]byte
}

func newKeyring(keys []string) (keyring, error) {
	var k keyring
	for i, key := range keys {
		if len(key) < MinAPIKeyLength {
			return keyring{}, fmt.Errorf("httpapi: API key %d is %d characters long, need at least %d", i+1, len(key), MinAPIKeyLength)
		}
		k.digests = append(k.digests, sha256.Sum256([]byte(key)))
	}
	return k, nil
}

// match reports whether presented is one of the keys, and its id for logs
// (the first 8 hex digits of its digest: enough to tell keys apart, useless
// to an attacker). Comparing digests makes the time independent of the
// keys' lengths, and every key is compared so that the time does not tell
// which one matched either.
func (k keyring) match(presented string) (id string, ok bool) {
	d := sha256.Sum256([]byte(presented))
	found := 0
	for _, want := range k.digests {
		found |= subtle.ConstantTimeCompare(d[:], want[:])
	}
	if found == 0 {
		return "", false
	}
	return hex.EncodeToString(d[:4]), true
}

// authenticate checks the request's API key. It returns the key's id.
func (h *Handler) authenticate(r *http.Request) (string, *apiError) {
	key, ok := bearer(r.Header.Get("Authorization"))
	if !ok || key == "" {
		return "", newError(http.StatusUnauthorized, CodeUnauthorized,
			`missing API key: send "Authorization: Bearer <API key>"`, "")
	}
	if len(h.keys.digests) == 0 {
		return "", newError(http.StatusForbidden, CodeForbidden,
			"the publish API is disabled: no API keys are configured (API_KEYS)", "")
	}
	id, ok := h.keys.match(key)
	if !ok {
		return "", newError(http.StatusForbidden, CodeForbidden, "invalid API key", "")
	}
	return id, nil
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
