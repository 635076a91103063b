package auth

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	jwtHS256 = jwt.SigningMethodHS256
	jwtRS256 = jwt.SigningMethodRS256
)

func TestVerifyHS256Claims(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret, Now: newClock(testNow).Now})
	c := wantCode(t, v, sign(t, jwtHS256, []byte(testSecret), "", claimsAt(testNow)), "")
	if c.UserID != "user-1" || c.OrganizationID != "org-1" || c.Role != "admin" || c.Email != "ada@example.com" {
		t.Errorf("claims = %+v", c)
	}
	if !c.ExpiresAt.Equal(testNow.Add(time.Hour)) || !c.IssuedAt.Equal(testNow) {
		t.Errorf("ExpiresAt = %v, IssuedAt = %v", c.ExpiresAt, c.IssuedAt)
	}
	if c.RawClaims()["email"] != "ada@example.com" || c.RawClaims()["exp"] != float64(testNow.Add(time.Hour).Unix()) {
		t.Errorf("Raw = %v", c.RawClaims())
	}
	if c.TokenID != "" {
		t.Errorf("TokenID = %q without a jti", c.TokenID)
	}
	// jti, what a revocation of one token names; only as a string.
	c = wantCode(t, v, sign(t, jwtHS256, []byte(testSecret), "", with(claimsAt(testNow), "jti", "tok-1")), "")
	if c.TokenID != "tok-1" {
		t.Errorf("TokenID = %q, want tok-1", c.TokenID)
	}
	c = wantCode(t, v, sign(t, jwtHS256, []byte(testSecret), "", with(claimsAt(testNow), "jti", 42)), "")
	if c.TokenID != "" {
		t.Errorf("TokenID = %q for a numeric jti", c.TokenID)
	}
}

func TestVerifyFailureCodes(t *testing.T) {
	now := testNow
	good := claimsAt(now)
	key := []byte(testSecret)
	v := newVerifier(t, Config{Secret: testSecret, Now: newClock(now).Now})

	valid := sign(t, jwtHS256, key, "", good)
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","orgId":"other","exp":9999999999}`)) + "." + parts[2]

	tests := []struct {
		name  string
		token string
		want  Code
	}{
		{"empty", "", CodeNoToken},
		{"garbage", "not-a-jwt", CodeInvalidToken},
		{"two segments", "a.b", CodeInvalidToken},
		{"four segments", valid + ".x", CodeInvalidToken},
		{"bad base64 header", "!!!." + parts[1] + "." + parts[2], CodeInvalidToken},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2], CodeInvalidToken},
		{"too long", valid + strings.Repeat("A", MaxTokenLength), CodeInvalidToken},
		{"wrong secret", sign(t, jwtHS256, []byte("another-secret-entirely-32-bytes!"), "", good), CodeInvalidToken},
		{"tampered payload", tampered, CodeInvalidToken},
		{"stripped signature", parts[0] + "." + parts[1] + ".", CodeInvalidToken},
		{"HS512 not allowed by default", sign(t, jwt.SigningMethodHS512, key, "", good), CodeInvalidToken},
		{"expired", sign(t, jwtHS256, key, "", with(good, "exp", now.Add(-time.Hour).Unix())), CodeTokenExpired},
		{"nbf in future", sign(t, jwtHS256, key, "", with(good, "nbf", now.Add(time.Hour).Unix())), CodeInvalidToken},
		{"iat in future", sign(t, jwtHS256, key, "", with(good, "iat", now.Add(time.Hour).Unix())), CodeInvalidToken},
		{"exp missing", sign(t, jwtHS256, key, "", with(good, "exp", nil)), CodeInvalidToken},
		{"exp not a number", sign(t, jwtHS256, key, "", with(good, "exp", "tomorrow")), CodeInvalidToken},
		{"exp absurd", sign(t, jwtHS256, key, "", with(good, "exp", 1e300)), CodeInvalidToken},
		{"nbf not a number", sign(t, jwtHS256, key, "", with(good, "nbf", true)), CodeInvalidToken},
		{"no sub", sign(t, jwtHS256, key, "", with(good, "sub", nil)), CodeNoUser},
		{"empty sub", sign(t, jwtHS256, key, "", with(good, "sub", "")), CodeNoUser},
		{"userId is not a fallback for sub", sign(t, jwtHS256, key, "", with(good, "sub", nil, "userId", "u", "id", "u")), CodeNoUser},
		{"numeric sub", sign(t, jwtHS256, key, "", with(good, "sub", 42)), CodeInvalidToken},
		{"no org", sign(t, jwtHS256, key, "", with(good, "orgId", nil)), CodeNoOrganization},
		{"empty org", sign(t, jwtHS256, key, "", with(good, "orgId", "")), CodeNoOrganization},
		{"numeric org", sign(t, jwtHS256, key, "", with(good, "orgId", 7)), CodeInvalidToken},
		{"expired without org is expired", sign(t, jwtHS256, key, "", with(good, "orgId", nil, "exp", now.Add(-time.Hour).Unix())), CodeTokenExpired},
		{"crit header refused", func() string {
			tok := jwt.NewWithClaims(jwtHS256, good)
			tok.Header["crit"] = []string{"exp"}
			s, _ := tok.SignedString(key)
			return s
		}(), CodeInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tt.token)
			if CodeOf(err) != tt.want {
				t.Fatalf("code = %q, want %q (err: %v)", CodeOf(err), tt.want, err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Message != tt.want.Message() {
				t.Fatalf("err = %#v, want *Error with message %q", err, tt.want.Message())
			}
			if tt.want != CodeNoToken && e.Err == nil {
				t.Error("detailed cause missing from Err")
			}
			if tt.token != "" && len(tt.token) > 20 && strings.Contains(err.Error(), tt.token) {
				t.Error("error text contains the token")
			}
		})
	}
}

func TestOrganizationClaims(t *testing.T) {
	now := testNow
	key := []byte(testSecret)
	base := with(claimsAt(now), "orgId", nil)
	tests := []struct {
		name     string
		orgClaim string
		claims   jwt.MapClaims
		wantOrg  string
		wantCode Code
	}{
		{"orgId", "", with(base, "orgId", "o1"), "o1", ""},
		{"organizationId fallback", "", with(base, "organizationId", "o2"), "o2", ""},
		{"orgId wins over organizationId", "", with(base, "orgId", "o1", "organizationId", "o2"), "o1", ""},
		{"empty orgId falls back", "", with(base, "orgId", "", "organizationId", "o2"), "o2", ""},
		{"custom claim", "tenantId", with(base, "tenantId", "t1", "orgId", "o1"), "t1", ""},
		{"custom claim has no fallback", "tenantId", with(base, "orgId", "o1"), "", CodeNoOrganization},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, Config{Secret: testSecret, OrganizationClaim: tt.orgClaim, Now: newClock(now).Now})
			c := wantCode(t, v, sign(t, jwtHS256, key, "", tt.claims), tt.wantCode)
			if c != nil && c.OrganizationID != tt.wantOrg {
				t.Errorf("OrganizationID = %q, want %q", c.OrganizationID, tt.wantOrg)
			}
		})
	}
}

func TestLeewayBoundaries(t *testing.T) {
	now := testNow
	key := []byte(testSecret)
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	tests := []struct {
		name   string
		leeway time.Duration
		claims jwt.MapClaims
		want   Code
	}{
		// Default leeway 30 s: valid while now < exp+30s.
		{"exp 29s ago", 0, with(claimsAt(now), "exp", at(-29*time.Second)), ""},
		{"exp exactly 30s ago", 0, with(claimsAt(now), "exp", at(-30*time.Second)), CodeTokenExpired},
		{"exp 31s ago", 0, with(claimsAt(now), "exp", at(-31*time.Second)), CodeTokenExpired},
		{"nbf 30s ahead", 0, with(claimsAt(now), "nbf", at(30*time.Second)), ""},
		{"nbf 31s ahead", 0, with(claimsAt(now), "nbf", at(31*time.Second)), CodeInvalidToken},
		{"iat 30s ahead", 0, with(claimsAt(now), "iat", at(30*time.Second)), ""},
		{"iat 31s ahead", 0, with(claimsAt(now), "iat", at(31*time.Second)), CodeInvalidToken},
		{"fractional exp inside leeway", 0, with(claimsAt(now), "exp", float64(at(-30*time.Second))+0.5), ""},
		// Custom leeway.
		{"5s leeway, exp 4s ago", 5 * time.Second, with(claimsAt(now), "exp", at(-4*time.Second)), ""},
		{"5s leeway, exp 5s ago", 5 * time.Second, with(claimsAt(now), "exp", at(-5*time.Second)), CodeTokenExpired},
		{"5s leeway, nbf 6s ahead", 5 * time.Second, with(claimsAt(now), "nbf", at(6*time.Second)), CodeInvalidToken},
		// Negative leeway disables it.
		{"no leeway, exp now", -1, with(claimsAt(now), "exp", at(0)), CodeTokenExpired},
		{"no leeway, exp in 1s", -1, with(claimsAt(now), "exp", at(time.Second)), ""},
		{"no leeway, nbf now", -1, with(claimsAt(now), "nbf", at(0)), ""},
		{"no leeway, nbf in 1s", -1, with(claimsAt(now), "nbf", at(time.Second)), CodeInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, Config{Secret: testSecret, Leeway: tt.leeway, Now: newClock(now).Now})
			wantCode(t, v, sign(t, jwtHS256, key, "", tt.claims), tt.want)
		})
	}
}

func TestAllowMissingExpiry(t *testing.T) {
	tok := sign(t, jwtHS256, []byte(testSecret), "", with(claimsAt(testNow), "exp", nil))
	strict := newVerifier(t, Config{Secret: testSecret, Now: newClock(testNow).Now})
	wantCode(t, strict, tok, CodeInvalidToken)
	lax := newVerifier(t, Config{Secret: testSecret, AllowMissingExpiry: true, Now: newClock(testNow).Now})
	if c := wantCode(t, lax, tok, ""); !c.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt = %v, want zero", c.ExpiresAt)
	}
	// An expired token is still expired when exp is optional.
	wantCode(t, lax, sign(t, jwtHS256, []byte(testSecret), "", with(claimsAt(testNow), "exp", testNow.Add(-time.Hour).Unix())), CodeTokenExpired)
}

func TestIssuerAndAudience(t *testing.T) {
	now := testNow
	key := []byte(testSecret)
	v := newVerifier(t, Config{Secret: testSecret, Issuer: "https://api.operate.test", Audience: "realtime", Now: newClock(now).Now})
	base := with(claimsAt(now), "iss", "https://api.operate.test", "aud", "realtime")
	tests := []struct {
		name   string
		claims jwt.MapClaims
		want   Code
	}{
		{"both match", base, ""},
		{"aud array contains", with(base, "aud", []string{"billing", "realtime"}), ""},
		{"wrong issuer", with(base, "iss", "https://evil.test"), CodeInvalidToken},
		{"missing issuer", with(base, "iss", nil), CodeInvalidToken},
		{"issuer not a string", with(base, "iss", 1), CodeInvalidToken},
		{"wrong audience", with(base, "aud", "billing"), CodeInvalidToken},
		{"aud array without us", with(base, "aud", []string{"billing"}), CodeInvalidToken},
		{"missing audience", with(base, "aud", nil), CodeInvalidToken},
		{"wrong issuer beats expired", with(base, "iss", "https://evil.test", "exp", now.Add(-time.Hour).Unix()), CodeInvalidToken},
		{"expired with right iss/aud", with(base, "exp", now.Add(-time.Hour).Unix()), CodeTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, v, sign(t, jwtHS256, key, "", tt.claims), tt.want)
		})
	}
	// Without Issuer/Audience configured, iss and aud are not checked.
	open := newVerifier(t, Config{Secret: testSecret, Now: newClock(now).Now})
	wantCode(t, open, sign(t, jwtHS256, key, "", with(base, "iss", "anyone", "aud", "anything")), "")
}

func TestSecretRotation(t *testing.T) {
	const oldSecret = "old-secret-0123456789abcdef012345"
	claims := claimsAt(testNow)
	byNew := sign(t, jwtHS256, []byte(testSecret), "", claims)
	byOld := sign(t, jwtHS256, []byte(oldSecret), "", claims)
	byOther := sign(t, jwtHS256, []byte("unrelated-secret-0123456789abcdef"), "", claims)

	rotating := newVerifier(t, Config{Secret: testSecret, PreviousSecret: oldSecret, Now: newClock(testNow).Now})
	wantCode(t, rotating, byNew, "")
	wantCode(t, rotating, byOld, "")
	wantCode(t, rotating, byOther, CodeInvalidToken)

	rotated := newVerifier(t, Config{Secret: testSecret, Now: newClock(testNow).Now})
	wantCode(t, rotated, byNew, "")
	wantCode(t, rotated, byOld, CodeInvalidToken)
}

func TestConfiguredHMACAlgorithms(t *testing.T) {
	key := []byte(testSecret)
	claims := claimsAt(testNow)
	v := newVerifier(t, Config{Secret: testSecret, Algorithms: []string{"hs384", "HS512"}, Now: newClock(testNow).Now})
	wantCode(t, v, sign(t, jwt.SigningMethodHS384, key, "", claims), "")
	wantCode(t, v, sign(t, jwt.SigningMethodHS512, key, "", claims), "")
	wantCode(t, v, sign(t, jwtHS256, key, "", claims), CodeInvalidToken)
}

func TestNoneAlgorithmRefused(t *testing.T) {
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claimsAt(testNow))
	rsaPEM := pkixPEM(t, &rsaKey().PublicKey)
	for name, cfg := range map[string]Config{
		"secret": {Secret: testSecret},
		"PEM":    {PublicKeyPEM: rsaPEM},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.Now = newClock(testNow).Now
			wantCode(t, newVerifier(t, cfg), none, CodeInvalidToken)
		})
	}
}

func TestAlgorithmConfusionRefused(t *testing.T) {
	pub := &rsaKey().PublicKey
	pemBytes := pkixPEM(t, pub)
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	claims := claimsAt(testNow)
	v := newVerifier(t, Config{PublicKeyPEM: pemBytes, Now: newClock(testNow).Now})
	// The classic attack: HMAC-sign with the (public) key material as secret.
	for name, secret := range map[string][]byte{"PEM bytes": pemBytes, "DER bytes": der} {
		for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
			t.Run(name+"/"+m.Alg(), func(t *testing.T) {
				wantCode(t, v, sign(t, m, secret, "", claims), CodeInvalidToken)
			})
		}
	}
	// Even if HS256 were somehow in the parser's list, the keyfunc refuses
	// to hand an RSA key to an HMAC method.
	kf := staticKeyfunc(kindRSA, pub)
	if _, err := kf(&jwt.Token{Method: jwt.SigningMethodHS256, Header: map[string]any{}}); !errors.Is(err, errAlgKeyMismatch) {
		t.Errorf("staticKeyfunc(RSA) with HS256 = %v, want errAlgKeyMismatch", err)
	}
	// And an RSA verifier does not take ES256 tokens.
	ec := ecKey(t, elliptic.P256())
	wantCode(t, v, sign(t, jwt.SigningMethodES256, ec, "", claims), CodeInvalidToken)
}

func TestPublicKeyAlgorithms(t *testing.T) {
	rk := rsaKey()
	ec256, ec384, ec521 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P384()), ecKey(t, elliptic.P521())
	ed := edKey(t)
	claims := claimsAt(testNow)
	tests := []struct {
		name   string
		pub    crypto.PublicKey
		algs   []string
		method jwt.SigningMethod
		priv   any
		want   Code
	}{
		{"RS256 default", &rk.PublicKey, nil, jwt.SigningMethodRS256, rk, ""},
		{"RS512 not default", &rk.PublicKey, nil, jwt.SigningMethodRS512, rk, CodeInvalidToken},
		{"PS256 not default", &rk.PublicKey, nil, jwt.SigningMethodPS256, rk, CodeInvalidToken},
		{"RS384 configured", &rk.PublicKey, []string{"RS384"}, jwt.SigningMethodRS384, rk, ""},
		{"RS512 configured", &rk.PublicKey, []string{"RS512"}, jwt.SigningMethodRS512, rk, ""},
		{"PS256 configured", &rk.PublicKey, []string{"PS256"}, jwt.SigningMethodPS256, rk, ""},
		{"PS384 configured", &rk.PublicKey, []string{"PS384"}, jwt.SigningMethodPS384, rk, ""},
		{"PS512 configured", &rk.PublicKey, []string{"PS512", "RS256"}, jwt.SigningMethodPS512, rk, ""},
		{"RS256 refused when only PS256", &rk.PublicKey, []string{"PS256"}, jwt.SigningMethodRS256, rk, CodeInvalidToken},
		{"wrong RSA key", &rsaKey2().PublicKey, nil, jwt.SigningMethodRS256, rk, CodeInvalidToken},
		{"ES256 default on P-256", &ec256.PublicKey, nil, jwt.SigningMethodES256, ec256, ""},
		{"ES384 default on P-384", &ec384.PublicKey, nil, jwt.SigningMethodES384, ec384, ""},
		{"ES512 default on P-521", &ec521.PublicKey, nil, jwt.SigningMethodES512, ec521, ""},
		{"wrong EC key", &ecKey(t, elliptic.P256()).PublicKey, nil, jwt.SigningMethodES256, ec256, CodeInvalidToken},
		{"EdDSA default", ed.Public(), nil, jwt.SigningMethodEdDSA, ed, ""},
		{"wrong Ed25519 key", edKey(t).Public(), nil, jwt.SigningMethodEdDSA, ed, CodeInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, Config{PublicKeyPEM: pkixPEM(t, tt.pub), Algorithms: tt.algs, Now: newClock(testNow).Now})
			wantCode(t, v, sign(t, tt.method, tt.priv, "", claims), tt.want)
		})
	}
	t.Run("certificate EC", func(t *testing.T) {
		v := newVerifier(t, Config{PublicKeyPEM: certPEM(t, ec256), Now: newClock(testNow).Now})
		wantCode(t, v, sign(t, jwt.SigningMethodES256, ec256, "", claims), "")
	})
}

func TestVerifyConcurrent(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret, PreviousSecret: "old-secret-0123456789abcdef012345", Now: newClock(testNow).Now})
	good := sign(t, jwtHS256, []byte(testSecret), "", claimsAt(testNow))
	bad := sign(t, jwtHS256, []byte("nope-nope-nope-nope-nope-nope-nope"), "", claimsAt(testNow))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if _, err := v.Verify(context.Background(), good); err != nil {
					t.Errorf("worker %d: %v", i, err)
					return
				}
				if _, err := v.Verify(context.Background(), bad); CodeOf(err) != CodeInvalidToken {
					t.Errorf("worker %d: bad token: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestCloseIsIdempotent(t *testing.T) {
	v, err := New(context.Background(), Config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	v.Close()
}
