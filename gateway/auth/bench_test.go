package auth

import (
	"context"
	"testing"
	"time"
)

// BenchmarkVerifyHS256 measures the handshake hot path: a valid HS256 token,
// secret verifier, claims extracted.
func BenchmarkVerifyHS256(b *testing.B) {
	v := newVerifier(b, Config{Secret: testSecret})
	tok, err := Mint(testSecret, MintClaims{UserID: "user-1", OrganizationID: "org-1", Role: "admin", Email: "ada@example.com"}, time.Hour, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyHS256Parallel is the same under contention (handshake storm).
func BenchmarkVerifyHS256Parallel(b *testing.B) {
	v := newVerifier(b, Config{Secret: testSecret})
	tok, err := Mint(testSecret, MintClaims{UserID: "user-1", OrganizationID: "org-1", Role: "admin", Email: "ada@example.com"}, time.Hour, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyRS256JWKS is the JWKS path with a cached key, for comparison.
func BenchmarkVerifyRS256JWKS(b *testing.B) {
	rk := rsaKey()
	srv := newJWKSServer(b)
	srv.setKeys(jwk(b, &rk.PublicKey, "k1", "RS256"))
	v := newVerifier(b, Config{JWKSURL: srv.URL})
	tok := sign(b, jwtRS256, rk, "k1", claimsAt(time.Now()))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
