package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Claims is the identity carried by a verified token.
type Claims struct {
	// UserID is the "sub" claim (never empty on a verified token).
	UserID string
	// OrganizationID is the tenant, from OrganizationClaim or "orgId" /
	// "organizationId" (never empty on a verified token).
	OrganizationID string
	// Role and Email are copied when present as strings, "" otherwise. They
	// are informational: the gateway must not grant anything on Role alone
	// without its own checks.
	Role  string
	Email string
	// ExpiresAt is "exp", the zero time if the token has none.
	ExpiresAt time.Time
	// IssuedAt is "iat", the zero time if the token has none.
	IssuedAt time.Time
	// TokenID is "jti" when it is a string, "" otherwise: what a
	// revocation of this one token names.
	TokenID string

	// raw holds every claim when the slow path decoded them all; payload
	// is the token's claims segment when the fast path read only the
	// above (RawClaims decodes it then).
	raw     map[string]any
	payload string
}

// RawClaims returns every claim of the token as decoded by encoding/json
// (numbers are float64). The fast path does not decode the claims it does
// not use: RawClaims decodes them on each call, for the rare caller that
// wants them. Callers must treat the map as read-only.
func (c *Claims) RawClaims() map[string]any {
	if c.raw != nil || c.payload == "" {
		return c.raw
	}
	b, err := base64.RawURLEncoding.DecodeString(c.payload)
	if err != nil {
		return nil // cannot happen: the fast path decoded it
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil // cannot happen: the fast path checked it
	}
	return m
}

// Detailed causes wrapped in Error.Err. They are for logs and tests; clients
// only ever see the Code's message.
var (
	errTokenTooLong    = fmt.Errorf("token is longer than %d bytes", MaxTokenLength)
	errAlgKeyMismatch  = errors.New("token algorithm does not match the key kind")
	errCritHeader      = errors.New(`token has a "crit" header; no JWS extensions are supported`)
	errKeysUnavailable = errors.New("no JWKS signing keys available yet")
	errUnknownKID      = errors.New("token kid is not in the JWKS")
	errNoCompatibleKey = errors.New("no JWKS key accepts the token algorithm")
	errMissingExpiry   = errors.New(`token has no "exp" claim`)
	errNoSubject       = errors.New(`token has no "sub" claim`)
	errNoOrganization  = errors.New("token has no organization claim")
	errClosed          = errors.New("verifier is closed")
)

// Verifier checks tokens against one configured key source. Create it with
// New; it is safe for concurrent use.
type Verifier struct {
	parser *jwt.Parser
	// keyfunc serves the secret or PEM key. It is built once in New so the
	// hot path allocates no closure; nil when jwks is used.
	keyfunc jwt.Keyfunc
	jwks    *jwksCache
	// hs256 holds the secrets (the current one first) when HS256 tokens
	// are accepted: the fast path (fast.go) verifies with them.
	hs256 []*hmacKey

	now        func() time.Time
	leeway     time.Duration
	requireExp bool
	issuer     string
	audience   string
	orgClaims  []string

	closeOnce sync.Once
}

// New validates cfg and builds a Verifier. Configuration mistakes (no key,
// several key sources, unknown algorithm, algorithm that does not fit the
// key, unparsable PEM, insecure JWKS URL, ...) are returned as errors.
//
// With a JWKSURL, New performs the first fetch and waits for it until ctx is
// done; if the fetch fails (or ctx ends first) New still succeeds: Verify
// returns AUTH_UNAVAILABLE until a background or token-triggered retry gets
// the keys. ctx does not bound the Verifier's lifetime: call Close.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	v := &Verifier{
		now:        cfg.Now,
		leeway:     cfg.Leeway,
		requireExp: !cfg.AllowMissingExpiry,
		issuer:     cfg.Issuer,
		audience:   cfg.Audience,
	}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case v.leeway == 0:
		v.leeway = DefaultLeeway
	case v.leeway < 0:
		v.leeway = 0
	}
	if c := strings.TrimSpace(cfg.OrganizationClaim); c != "" {
		v.orgClaims = []string{c}
	} else {
		v.orgClaims = []string{"orgId", "organizationId"}
	}

	var sources []string
	if cfg.Secret != "" {
		sources = append(sources, "Secret")
	}
	if len(cfg.PublicKeyPEM) > 0 {
		sources = append(sources, "PublicKeyPEM")
	}
	if cfg.JWKSURL != "" {
		sources = append(sources, "JWKSURL")
	}
	switch {
	case len(sources) == 0:
		return nil, errors.New("auth: no verification key configured: set one of Secret, PublicKeyPEM or JWKSURL")
	case len(sources) > 1:
		return nil, fmt.Errorf("auth: configure exactly one key source, got %s", strings.Join(sources, " and "))
	}
	if cfg.PreviousSecret != "" && cfg.Secret == "" {
		return nil, errors.New("auth: PreviousSecret is set without Secret")
	}

	var algs []string
	switch {
	case cfg.Secret != "":
		var err error
		algs, err = resolveAlgorithms(cfg.Algorithms, kindHMAC, 0, []string{"HS256"})
		if err != nil {
			return nil, fmt.Errorf("auth: Algorithms: %w", err)
		}
		// Convert once: jwt's HMAC verifier wants []byte and converting the
		// string per call would allocate on every handshake.
		var key any = []byte(cfg.Secret)
		if cfg.PreviousSecret != "" && cfg.PreviousSecret != cfg.Secret {
			key = jwt.VerificationKeySet{Keys: []jwt.VerificationKey{[]byte(cfg.Secret), []byte(cfg.PreviousSecret)}}
		}
		v.keyfunc = staticKeyfunc(kindHMAC, key)
		if containsString(algs, "HS256") {
			v.hs256 = []*hmacKey{newHMACKey([]byte(cfg.Secret))}
			if cfg.PreviousSecret != "" && cfg.PreviousSecret != cfg.Secret {
				v.hs256 = append(v.hs256, newHMACKey([]byte(cfg.PreviousSecret)))
			}
		}

	case len(cfg.PublicKeyPEM) > 0:
		key, err := parsePublicKeyPEM(cfg.PublicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("auth: PublicKeyPEM: %w", err)
		}
		kind, def, bits, err := publicKeyInfo(key)
		if err != nil {
			return nil, fmt.Errorf("auth: PublicKeyPEM: %w", err)
		}
		algs, err = resolveAlgorithms(cfg.Algorithms, kind, bits, []string{def})
		if err != nil {
			return nil, fmt.Errorf("auth: Algorithms: %w", err)
		}
		v.keyfunc = staticKeyfunc(kind, key)

	default: // JWKS
		if err := checkJWKSURL(cfg.JWKSURL, cfg.AllowInsecureJWKSURL); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		var err error
		algs, err = resolveAlgorithms(cfg.Algorithms, 0, 0, asymmetricAlgorithms())
		if err != nil {
			return nil, fmt.Errorf("auth: Algorithms: %w", err)
		}
		refresh, minRefresh := cfg.JWKSRefreshInterval, cfg.JWKSMinRefreshInterval
		if refresh == 0 {
			refresh = DefaultJWKSRefreshInterval
		}
		if minRefresh == 0 {
			minRefresh = DefaultJWKSMinRefreshInterval
		}
		if refresh < 0 || minRefresh < 0 {
			return nil, errors.New("auth: JWKS refresh intervals must not be negative")
		}
		if minRefresh > refresh {
			return nil, fmt.Errorf("auth: JWKSMinRefreshInterval (%s) exceeds JWKSRefreshInterval (%s)", minRefresh, refresh)
		}
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: jwksFetchTimeout}
		}
		var pinned []string
		if len(cfg.Algorithms) > 0 {
			pinned = algs
		}
		v.jwks = newJWKSCache(jwksOptions{
			url:             cfg.JWKSURL,
			client:          client,
			refreshInterval: refresh,
			minInterval:     minRefresh,
			pinnedAlgs:      pinned,
			logger:          cfg.Logger,
			now:             v.now,
		})
		v.jwks.start(ctx)
	}

	// Claims are validated by hand (validateClaims) rather than by jwt's
	// validator: we need exp-versus-everything-else precedence for the error
	// codes, and we read exp/iat once for Claims anyway.
	v.parser = jwt.NewParser(jwt.WithValidMethods(algs), jwt.WithoutClaimsValidation())
	return v, nil
}

// staticKeyfunc serves a fixed key after checking that the token's algorithm
// belongs to the key's family. WithValidMethods already pins the algorithm;
// this second check keeps alg confusion impossible even if that list were
// ever misconfigured.
func staticKeyfunc(kind keyKind, key any) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errCritHeader
		}
		if _, k, _, ok := algInfo(t.Method.Alg()); !ok || k != kind {
			return nil, errAlgKeyMismatch
		}
		return key, nil
	}
}

// Close stops background JWKS refreshing and waits for it to finish. Verify
// keeps working afterwards with the keys already cached. Close is idempotent.
func (v *Verifier) Close() {
	v.closeOnce.Do(func() {
		if v.jwks != nil {
			v.jwks.close()
		}
	})
}

// Verify checks token and returns its claims. Every error is an *Error: see
// the package documentation for the codes. ctx bounds only a wait for a
// JWKS refresh; secret and PEM verification never block.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if err := checkLength(token); err != nil {
		return nil, err
	}
	if c, ok := v.verifyFast(token); ok {
		return c, nil
	}
	return v.verifySlow(ctx, token)
}

// checkLength refuses the empty token and tokens too long to parse.
func checkLength(token string) error {
	if token == "" {
		return newError(CodeNoToken, nil)
	}
	if len(token) > MaxTokenLength {
		return newError(CodeInvalidToken, errTokenTooLong)
	}
	return nil
}

// verifySlow is Verify through golang-jwt, for every token the fast path
// does not accept itself.
func (v *Verifier) verifySlow(ctx context.Context, token string) (*Claims, error) {
	kf := v.keyfunc
	if v.jwks != nil {
		kf = v.jwks.keyfunc(ctx)
	}
	raw := jwt.MapClaims{}
	t, err := v.parser.ParseWithClaims(token, raw, kf)
	if err != nil {
		return nil, classifyParseError(t, err)
	}
	return v.claims(raw)
}

// ValidUntil returns the instant from which Verify rejects the token that
// produced c as expired: its exp plus the leeway. It is the zero time when
// the token has no exp. A gateway that keeps a connection open on a token
// must end it at this instant, not at exp: ending it earlier would have the
// client reconnect with the same token, which Verify still accepts.
func (v *Verifier) ValidUntil(c *Claims) time.Time {
	if c == nil || c.ExpiresAt.IsZero() {
		return time.Time{}
	}
	return c.ExpiresAt.Add(v.leeway)
}

// Leeway returns the clock-skew tolerance applied to exp, nbf and iat.
func (v *Verifier) Leeway() time.Duration { return v.leeway }

// classifyParseError maps a jwt parse/signature failure to a Code. Only "we
// have no keys" is not the token's fault.
func classifyParseError(t *jwt.Token, err error) *Error {
	switch {
	case errors.Is(err, errKeysUnavailable), errors.Is(err, errClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return newError(CodeAuthUnavailable, fmt.Errorf("verify token: %w", err))
	}
	if t != nil && t.Method != nil {
		kid, _ := t.Header["kid"].(string)
		return newError(CodeInvalidToken, fmt.Errorf("verify %s token (kid %q): %w", t.Method.Alg(), kid, err))
	}
	return newError(CodeInvalidToken, fmt.Errorf("verify token: %w", err))
}

// claims validates the registered claims of a token whose signature is
// already verified, and extracts the identity. Order matters for the code a
// client sees: anything that makes the token wrong (types, iss, aud, nbf,
// iat) is INVALID_TOKEN even if the token is also expired, because
// TOKEN_EXPIRED tells the client "refresh and retry", which would not help.
func (v *Verifier) claims(raw map[string]any) (*Claims, error) {
	exp, hasExp, err := numericDate(raw, "exp")
	if err != nil {
		return nil, newError(CodeInvalidToken, err)
	}
	nbf, hasNbf, err := numericDate(raw, "nbf")
	if err != nil {
		return nil, newError(CodeInvalidToken, err)
	}
	iat, hasIat, err := numericDate(raw, "iat")
	if err != nil {
		return nil, newError(CodeInvalidToken, err)
	}
	if v.issuer != "" {
		if iss, _ := raw["iss"].(string); iss != v.issuer {
			return nil, newError(CodeInvalidToken, fmt.Errorf("token issuer %q is not the expected %q", iss, v.issuer))
		}
	}
	if v.audience != "" && !hasAudience(raw["aud"], v.audience) {
		return nil, newError(CodeInvalidToken, fmt.Errorf("token audience does not include %q", v.audience))
	}

	now := v.now()
	// Same boundaries as golang-jwt's validator: valid while
	// now < exp+leeway, and from nbf-leeway / iat-leeway on.
	if hasNbf && now.Add(v.leeway).Before(nbf) {
		return nil, newError(CodeInvalidToken, fmt.Errorf("token not valid before %s (now %s, leeway %s)", nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.leeway))
	}
	if hasIat && now.Add(v.leeway).Before(iat) {
		return nil, newError(CodeInvalidToken, fmt.Errorf("token issued in the future at %s (now %s, leeway %s)", iat.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.leeway))
	}
	if !hasExp {
		if v.requireExp {
			return nil, newError(CodeInvalidToken, errMissingExpiry)
		}
	} else if !now.Before(exp.Add(v.leeway)) {
		return nil, newError(CodeTokenExpired, fmt.Errorf("token expired at %s (now %s, leeway %s)", exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.leeway))
	}

	c := &Claims{raw: raw}
	if hasExp {
		c.ExpiresAt = exp
	}
	if hasIat {
		c.IssuedAt = iat
	}
	if jti, ok := raw["jti"].(string); ok {
		c.TokenID = jti
	}

	// sub only: the NestJS API puts the user id there, and accepting
	// userId/id as well would let any other token type we sign with the
	// same secret (password reset, invitation, ...) pass as a session.
	switch s, err := stringClaim(raw, "sub"); {
	case err != nil:
		return nil, newError(CodeInvalidToken, err)
	case s == "":
		return nil, newError(CodeNoUser, errNoSubject)
	default:
		c.UserID = s
	}
	for _, name := range v.orgClaims {
		s, err := stringClaim(raw, name)
		if err != nil {
			return nil, newError(CodeInvalidToken, err)
		}
		if s != "" {
			c.OrganizationID = s
			break
		}
	}
	if c.OrganizationID == "" {
		return nil, newError(CodeNoOrganization, fmt.Errorf("%w (looked for %s)", errNoOrganization, strings.Join(v.orgClaims, ", ")))
	}
	c.Role, _ = raw["role"].(string)
	c.Email, _ = raw["email"].(string)
	return c, nil
}

// stringClaim reads an identifier claim. Absent, null and "" all count as
// missing (like the `payload.orgId || payload.organizationId` of the NestJS
// code); any non-string value is a malformed token rather than "missing", so
// an id never gets silently reformatted from a JSON number.
func stringClaim(raw map[string]any, name string) (string, error) {
	switch val := raw[name].(type) {
	case nil:
		return "", nil
	case string:
		// Go's JSON decoder turns an unpaired surrogate (\ud800) or invalid
		// UTF-8 into U+FFFD: distinct ids would become one tenant.
		if strings.ContainsRune(val, utf8.RuneError) {
			return "", fmt.Errorf("claim %q holds an unpaired surrogate, invalid UTF-8 or U+FFFD", name)
		}
		return val, nil
	default:
		return "", fmt.Errorf("claim %q is a %T, want a string", name, val)
	}
}

// hasAudience reports whether the "aud" claim (a string or an array of
// strings, RFC 7519 §4.1.3) contains want.
func hasAudience(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, e := range a {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// maxNumericDate keeps NumericDates within what time.Unix represents
// without overflow (about year 33658); anything larger is garbage.
const maxNumericDate = 1e12

// numericDate reads a NumericDate claim (seconds since the epoch, possibly
// fractional). present is false when the claim is absent or null.
func numericDate(raw map[string]any, name string) (t time.Time, present bool, err error) {
	var f float64
	switch val := raw[name].(type) {
	case nil:
		return time.Time{}, false, nil
	case float64:
		f = val
	case interface{ Float64() (float64, error) }: // json.Number, should a decoder ever use it
		if f, err = val.Float64(); err != nil {
			return time.Time{}, false, fmt.Errorf("claim %q is not a number: %w", name, err)
		}
	default:
		return time.Time{}, false, fmt.Errorf("claim %q is a %T, want a NumericDate", name, val)
	}
	if math.IsNaN(f) || math.Abs(f) > maxNumericDate {
		return time.Time{}, false, fmt.Errorf("claim %q is out of range: %s", name, strconv.FormatFloat(f, 'g', -1, 64))
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// MayBlock reports whether Verify can wait (for a JWKS fetch), and so
// whether its ctx needs a deadline. With a secret or a PEM key it never
// waits.
func (v *Verifier) MayBlock() bool { return v.jwks != nil }
