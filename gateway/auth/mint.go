package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintClaims is the identity put into a token by Mint.
type MintClaims struct {
	UserID         string // "sub"
	OrganizationID string // "orgId"
	Role           string // "role"
	Email          string // "email"
	// Extra claims are added last and override anything above, including
	// iat and exp, so tests can craft edge cases (e.g. "exp": nil removes
	// the claim as far as Verify is concerned).
	Extra map[string]any
}

// Mint returns an HS256 token with sub, orgId, role, email (each only when
// non-empty), iat = now and exp = now+ttl, as the NestJS API issues them. It
// is a development and test helper (`realtime token`); production tokens come
// from the API. A zero now means time.Now().
func Mint(secret string, claims MintClaims, ttl time.Duration, now time.Time) (string, error) {
	if secret == "" {
		return "", errors.New("auth: mint: empty secret")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("auth: mint: ttl must be positive, got %s", ttl)
	}
	if now.IsZero() {
		now = time.Now()
	}
	m := jwt.MapClaims{
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
	for k, v := range map[string]string{
		"sub":   claims.UserID,
		"orgId": claims.OrganizationID,
		"role":  claims.Role,
		"email": claims.Email,
	} {
		if v != "" {
			m[k] = v
		}
	}
	for k, v := range claims.Extra {
		m[k] = v
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, m).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	return s, nil
}
