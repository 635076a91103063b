package auth

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNewConfigErrors(t *testing.T) {
	rsaPEM := pkixPEM(t, &rsaKey().PublicKey)
	ecPEM := pkixPEM(t, &ecKey(t, elliptic.P256()).PublicKey)
	weakRSA := pkixPEM(t, &mustRSA(1024).PublicKey)
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey())})

	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no key", Config{}, "no verification key configured"},
		{"secret and PEM", Config{Secret: testSecret, PublicKeyPEM: rsaPEM}, "Secret and PublicKeyPEM"},
		{"secret and JWKS", Config{Secret: testSecret, JWKSURL: "https://idp.example.com/jwks"}, "Secret and JWKSURL"},
		{"previous without secret", Config{PreviousSecret: "old", PublicKeyPEM: rsaPEM}, "PreviousSecret is set without Secret"},
		{"unknown alg", Config{Secret: testSecret, Algorithms: []string{"HS999"}}, `unknown or unsupported algorithm "HS999"`},
		{"none alg", Config{Secret: testSecret, Algorithms: []string{"none"}}, `"none" is never allowed`},
		{"None alg any case", Config{Secret: testSecret, Algorithms: []string{"HS256", "NoNe"}}, `"none" is never allowed`},
		{"RS alg with secret", Config{Secret: testSecret, Algorithms: []string{"RS256"}}, "RS256 cannot be used with an HMAC secret"},
		{"HS alg with RSA key", Config{PublicKeyPEM: rsaPEM, Algorithms: []string{"HS256"}}, "HS256 cannot be used with an RSA key"},
		{"ES alg with RSA key", Config{PublicKeyPEM: rsaPEM, Algorithms: []string{"ES256"}}, "ES256 cannot be used with an RSA key"},
		{"ES384 with P-256 key", Config{PublicKeyPEM: ecPEM, Algorithms: []string{"ES384"}}, "does not match the EC key's P-256 curve"},
		{"HS alg with JWKS", Config{JWKSURL: "https://idp.example.com/jwks", Algorithms: []string{"HS256"}}, "cannot be used with a JWKS URL"},
		{"garbage PEM", Config{PublicKeyPEM: []byte("not a pem")}, "no PEM block found"},
		{"private key PEM", Config{PublicKeyPEM: privPEM}, "configure the public key only"},
		{"weak RSA", Config{PublicKeyPEM: weakRSA}, "need at least 2048"},
		{"odd PEM type", Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "FOO", Bytes: []byte{1}})}, `unsupported PEM block type "FOO"`},
		{"corrupt PKIX", Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}})}, "parse PKIX public key"},
		{"plain http JWKS", Config{JWKSURL: "http://idp.example.com/jwks"}, "plain http"},
		{"ftp JWKS", Config{JWKSURL: "ftp://idp.example.com/jwks"}, "must use https"},
		{"relative JWKS", Config{JWKSURL: "/jwks"}, "has no host"},
		{"min above refresh", Config{JWKSURL: "https://idp.example.com/jwks", JWKSRefreshInterval: time.Minute, JWKSMinRefreshInterval: time.Hour}, "exceeds JWKSRefreshInterval"},
		{"negative interval", Config{JWKSURL: "https://idp.example.com/jwks", JWKSRefreshInterval: -time.Minute}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(context.Background(), tt.cfg)
			if err == nil {
				v.Close()
				t.Fatal("New succeeded, want error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %q, want it to contain %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "auth: ") {
				t.Errorf("config error %q lacks the package prefix", err)
			}
		})
	}
}

func TestNewAcceptsPEMForms(t *testing.T) {
	rsaPub := &rsaKey().PublicKey
	tests := []struct {
		name string
		pem  []byte
	}{
		{"PKIX RSA", pkixPEM(t, rsaPub)},
		{"PKCS#1 RSA", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(rsaPub)})},
		{"certificate", certPEM(t, rsaKey())},
		{"escaped newlines from an env var", bytes.ReplaceAll(pkixPEM(t, rsaPub), []byte("\n"), []byte(`\n`))},
	}
	tok := sign(t, jwtRS256, rsaKey(), "", claimsAt(testNow))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, Config{PublicKeyPEM: tt.pem, Now: newClock(testNow).Now})
			wantCode(t, v, tok, "")
		})
	}
}

func TestInsecureJWKSURLOptIn(t *testing.T) {
	// Loopback http is fine without opting in (local IdP, tests).
	for _, u := range []string{"http://127.0.0.1:1/jwks", "http://localhost:1/jwks", "http://[::1]:1/jwks"} {
		if err := checkJWKSURL(u, false); err != nil {
			t.Errorf("checkJWKSURL(%q): %v", u, err)
		}
	}
	// A non-loopback http URL needs AllowInsecureJWKSURL. Keep the test off
	// the network with a transport that always fails.
	failing := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("no network in tests")
	})}
	v, err := New(context.Background(), Config{JWKSURL: "http://jwks.internal/keys", AllowInsecureJWKSURL: true, HTTPClient: failing, Logger: quietLogger})
	if err != nil {
		t.Fatalf("New with AllowInsecureJWKSURL: %v", err)
	}
	defer v.Close()
	_, err = v.Verify(context.Background(), sign(t, jwtRS256, rsaKey(), "k1", claimsAt(time.Now())))
	if CodeOf(err) != CodeAuthUnavailable || !strings.Contains(err.Error(), "no network in tests") {
		t.Fatalf("Verify err = %v, want AUTH_UNAVAILABLE carrying the fetch error", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
