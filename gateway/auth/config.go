package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by New for zero-valued Config fields.
const (
	// DefaultLeeway absorbs clock skew between the token issuer and us.
	DefaultLeeway = 30 * time.Second
	// DefaultJWKSRefreshInterval is how often the JWKS is re-fetched in the
	// background. Identity providers publish a new key well before signing
	// with it, so hourly is enough; unknown kids trigger an earlier refresh.
	DefaultJWKSRefreshInterval = time.Hour
	// DefaultJWKSMinRefreshInterval is the minimum time between two JWKS
	// fetches caused by tokens (unknown kid, no keys yet). It caps what a
	// client spamming random kids can make us send to the JWKS endpoint at
	// one request per interval per gateway process, while keeping a genuine
	// key rotation visible within seconds.
	DefaultJWKSMinRefreshInterval = 30 * time.Second
	// MaxTokenLength bounds the size of a token we are willing to parse. Real
	// access tokens are well under 4 KiB; the cap stops a client from making
	// us base64- and JSON-decode megabytes on the handshake path (auth.token
	// arrives in a Socket.IO packet limited only by maxHttpBufferSize).
	MaxTokenLength = 16 << 10
	// minRSABits refuses RSA keys that are too weak to trust (NIST: 2048).
	minRSABits = 2048
)

// Config configures a Verifier. Exactly one key source must be set: Secret
// (optionally with PreviousSecret), PublicKeyPEM, or JWKSURL.
type Config struct {
	// Secret is the HMAC key for HS256/HS384/HS512 tokens. It is used as raw
	// bytes, exactly like jsonwebtoken does in the NestJS API (no trimming, no
	// base64 decoding). Use at least 32 random bytes.
	Secret string
	// PreviousSecret is also accepted while a secret rotation is rolling out,
	// so tokens signed with the old secret keep working until they expire.
	// Requires Secret. Empty means none.
	PreviousSecret string
	// PublicKeyPEM is a PEM-encoded public key: PKIX "PUBLIC KEY" (RSA,
	// ECDSA P-256/384/521 or Ed25519), PKCS#1 "RSA PUBLIC KEY", or a
	// "CERTIFICATE" whose key is used (its validity dates are not checked:
	// the JWT's exp is what bounds a token). Literal "\n" sequences, as
	// produced by single-line environment variables, are accepted.
	PublicKeyPEM []byte
	// JWKSURL is the https URL of a JSON Web Key Set (e.g. an identity
	// provider's /.well-known/jwks.json). Plain http is refused unless the host
	// is loopback or AllowInsecureJWKSURL is set.
	JWKSURL string
	// AllowInsecureJWKSURL permits a plain-http JWKSURL on a non-loopback host
	// (e.g. an in-cluster service). Anyone who can tamper with that traffic
	// can mint tokens, so only use it on a trusted network.
	AllowInsecureJWKSURL bool

	// Algorithms pins the accepted "alg" values (case-insensitive; "none" is
	// rejected). Every entry must fit the key kind. Empty means the one
	// algorithm derived from the key: HS256 for a secret, RS256 for an RSA
	// key, ES256/ES384/ES512 for an EC key on P-256/P-384/P-521, EdDSA for an
	// Ed25519 key; with JWKS, per key: the key's own "alg" if it declares one,
	// otherwise the same derivation from its type.
	Algorithms []string

	// Issuer, when non-empty, must equal the token's "iss".
	Issuer string
	// Audience, when non-empty, must be the token's "aud" or one of its
	// entries.
	Audience string
	// Leeway is the clock-skew tolerance for exp, nbf and iat. Zero means
	// DefaultLeeway (30 s); a negative value means no leeway at all.
	Leeway time.Duration
	// AllowMissingExpiry accepts tokens without an "exp" claim. The zero value
	// (false) requires exp: a token that never expires cannot be revoked by
	// waiting, and the NestJS API always sets it, so a token without one is
	// more likely forged with a leaked secret or minted by mistake.
	AllowMissingExpiry bool

	// OrganizationClaim names the claim holding the organization id. Empty
	// means "orgId", falling back to "organizationId" (the two spellings the
	// NestJS API has used).
	OrganizationClaim string

	// HTTPClient fetches the JWKS. Nil means a client with a 10 s timeout.
	// Every fetch is also bounded by a 10 s context deadline.
	HTTPClient *http.Client
	// JWKSRefreshInterval is the background refresh period. Zero means
	// DefaultJWKSRefreshInterval (1 h).
	JWKSRefreshInterval time.Duration
	// JWKSMinRefreshInterval is the minimum time between fetches triggered by
	// tokens (unknown kid, no keys yet) and the retry period while the JWKS
	// cannot be fetched. Zero means DefaultJWKSMinRefreshInterval (30 s). It
	// must not exceed JWKSRefreshInterval.
	JWKSMinRefreshInterval time.Duration

	// Logger receives JWKS refresh failures and key-set changes (never
	// tokens). Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for exp/nbf/iat checks and JWKS refresh pacing. Nil
	// means time.Now. Tests set it; production leaves it nil.
	Now func() time.Time
}

// keyKind is the family of a verification key; an algorithm is only ever
// used with a key of its own family, which is what defeats alg confusion.
type keyKind uint8

const (
	kindHMAC keyKind = iota + 1
	kindRSA
	kindEC
	kindEd25519
)

func (k keyKind) String() string {
	switch k {
	case kindHMAC:
		return "HMAC secret"
	case kindRSA:
		return "RSA key"
	case kindEC:
		return "EC key"
	case kindEd25519:
		return "Ed25519 key"
	}
	return "unknown key"
}

// algInfo describes a supported JWS algorithm: its canonical spelling, the key
// family it needs and, for ECDSA, the curve size it implies. ok is false for
// anything else, including "none".
func algInfo(alg string) (canonical string, kind keyKind, curveBits int, ok bool) {
	switch strings.ToUpper(alg) {
	case "HS256":
		return "HS256", kindHMAC, 0, true
	case "HS384":
		return "HS384", kindHMAC, 0, true
	case "HS512":
		return "HS512", kindHMAC, 0, true
	case "RS256":
		return "RS256", kindRSA, 0, true
	case "RS384":
		return "RS384", kindRSA, 0, true
	case "RS512":
		return "RS512", kindRSA, 0, true
	case "PS256":
		return "PS256", kindRSA, 0, true
	case "PS384":
		return "PS384", kindRSA, 0, true
	case "PS512":
		return "PS512", kindRSA, 0, true
	case "ES256":
		return "ES256", kindEC, 256, true
	case "ES384":
		return "ES384", kindEC, 384, true
	case "ES512":
		return "ES512", kindEC, 521, true
	case "EDDSA":
		return "EdDSA", kindEd25519, 0, true
	}
	return "", 0, 0, false
}

// asymmetricAlgorithms lists every algorithm a JWKS key can be used with; it
// is the parser-level allow-list for JWKS when Algorithms is empty (the
// per-key default is then enforced when the key is looked up).
func asymmetricAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}

// publicKeyInfo classifies a parsed public key and derives its default
// algorithm. It refuses key types and sizes we will not verify with.
func publicKeyInfo(key any) (kind keyKind, defaultAlg string, curveBits int, err error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N == nil {
			return 0, "", 0, errors.New("malformed RSA public key")
		}
		if bits := k.N.BitLen(); bits < minRSABits {
			return 0, "", 0, fmt.Errorf("RSA key is %d bits, need at least %d", bits, minRSABits)
		}
		return kindRSA, "RS256", 0, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return kindEC, "ES256", 256, nil
		case elliptic.P384():
			return kindEC, "ES384", 384, nil
		case elliptic.P521():
			return kindEC, "ES512", 521, nil
		}
		return 0, "", 0, fmt.Errorf("unsupported EC curve %s", k.Curve.Params().Name)
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return 0, "", 0, errors.New("malformed Ed25519 public key")
		}
		return kindEd25519, "EdDSA", 0, nil
	}
	return 0, "", 0, fmt.Errorf("unsupported public key type %T", key)
}

// resolveAlgorithms validates configured algorithm names against a key
// family (and EC curve, when known) and returns them canonicalized and
// de-duplicated. An empty configured list yields def.
func resolveAlgorithms(configured []string, kind keyKind, curveBits int, def []string) ([]string, error) {
	if len(configured) == 0 {
		return def, nil
	}
	out := make([]string, 0, len(configured))
	for _, a := range configured {
		name := strings.TrimSpace(a)
		if strings.EqualFold(name, "none") {
			return nil, errors.New(`algorithm "none" is never allowed`)
		}
		canon, k, bits, ok := algInfo(name)
		if !ok {
			return nil, fmt.Errorf("unknown or unsupported algorithm %q", a)
		}
		switch {
		case kind == 0 && k == kindHMAC: // JWKS: public keys only
			return nil, fmt.Errorf("algorithm %s needs a shared secret and cannot be used with a JWKS URL", canon)
		case kind != 0 && k != kind:
			return nil, fmt.Errorf("algorithm %s cannot be used with an %s", canon, kind)
		case kind == kindEC && curveBits != 0 && bits != curveBits:
			return nil, fmt.Errorf("algorithm %s does not match the EC key's P-%d curve", canon, curveBits)
		}
		if !containsString(out, canon) {
			out = append(out, canon)
		}
	}
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// parsePublicKeyPEM decodes the first PEM block of data into a public key.
func parsePublicKeyPEM(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil && bytes.Contains(data, []byte(`\n`)) {
		// A PEM squeezed into one environment variable line.
		block, _ = pem.Decode(bytes.ReplaceAll(data, []byte(`\n`), []byte("\n")))
	}
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "PUBLIC KEY":
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKIX public key: %w", err)
		}
		return key, nil
	case "RSA PUBLIC KEY":
		key, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#1 RSA public key: %w", err)
		}
		return key, nil
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		return cert.PublicKey, nil
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		// Say so plainly: a private key in the gateway's config is a leak
		// waiting to happen and the gateway only ever needs the public half.
		return nil, fmt.Errorf("PEM block is a %s; configure the public key only", block.Type)
	}
	return nil, fmt.Errorf("unsupported PEM block type %q", block.Type)
}

// checkJWKSURL refuses URLs we should not fetch keys from.
func checkJWKSURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse JWKS URL: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("JWKS URL %q has no host", RedactURL(raw))
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowInsecure || isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("JWKS URL %q uses plain http; whoever can alter that traffic can forge tokens (use https or set AllowInsecureJWKSURL)", RedactURL(raw))
	}
	return fmt.Errorf("JWKS URL %q must use https", RedactURL(raw))
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
