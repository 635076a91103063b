package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The HS256 fast path.
//
// Verifying through golang-jwt costs about 13 µs and 58 allocations per
// token: it decodes the header and every claim into maps, and keys a new
// HMAC each time. Every connection verifies a token, so in a reconnect
// storm this is a good part of a handshake. The fast path verifies the
// tokens the NestJS API (and Mint) issue, HS256 with the header
// {"alg":"HS256","typ":"JWT"}, by hand: it splits the compact JWS,
// checks the HMAC with a keyed hash from a pool, and reads only the claims
// Claims holds. It only ever accepts: anything it does not handle exactly
// as the slow path would (another header, a bad signature, a claim that
// fails a check or has an unexpected type, an escape in a string, a
// duplicate key, invalid JSON) falls back to golang-jwt, which then
// produces the verdict and the error. TestFastPathAgreesWithGolangJWT and
// FuzzFastPath hold it to that.

// hs256JWTHeader is base64url({"alg":"HS256","typ":"JWT"}), the header of
// every token jsonwebtoken and golang-jwt sign with HS256.
const hs256JWTHeader = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

// maxFastToken bounds the tokens the fast path handles with its pooled
// buffers; longer ones (real ones are 200-400 bytes) take the slow path.
const maxFastToken = 2048

// fastScratch is the fast path's working memory, pooled rather than on the
// stack: the handshake runs on a short-lived goroutine whose stack would
// have to grow for it.
type fastScratch struct {
	// inner is the inner HMAC input: the key's ipad block, then the signing
	// input. It is reused for the decoded claims afterwards.
	inner [sha256.BlockSize + maxFastToken]byte
	// enc holds the base64 being decoded: a []byte(string) conversion
	// would allocate.
	enc [maxFastToken]byte
}

var fastScratchPool = sync.Pool{New: func() any { return new(fastScratch) }}

// hmacKey is one HS256 secret as HMAC's padded key blocks (RFC 2104),
// computed once: the MAC is then two sha256.Sum256 calls, with no keyed
// hash to allocate or reset.
type hmacKey struct {
	ipad, opad [sha256.BlockSize]byte
}

func newHMACKey(secret []byte) *hmacKey {
	k := secret
	if len(k) > sha256.BlockSize {
		sum := sha256.Sum256(k)
		k = sum[:]
	}
	h := &hmacKey{}
	for i := range sha256.BlockSize {
		var b byte
		if i < len(k) {
			b = k[i]
		}
		h.ipad[i], h.opad[i] = b^0x36, b^0x5c
	}
	return h
}

// verifies reports whether sig is the HS256 MAC of signed under k.
func (k *hmacKey) verifies(sc *fastScratch, signed string, sig []byte) bool {
	n := copy(sc.inner[:], k.ipad[:])
	n += copy(sc.inner[n:], signed)
	inner := sha256.Sum256(sc.inner[:n])
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], k.opad[:])
	copy(outer[sha256.BlockSize:], inner[:])
	mac := sha256.Sum256(outer[:])
	return hmac.Equal(mac[:], sig)
}

// verifyFast returns the claims of token when the fast path can vouch for
// it; ok is false when the slow path must decide.
func (v *Verifier) verifyFast(token string) (c *Claims, ok bool) {
	if v.hs256 == nil || len(token) > maxFastToken || !strings.HasPrefix(token, hs256JWTHeader+".") {
		return nil, false
	}
	rest := token[len(hs256JWTHeader)+1:]
	dot := strings.IndexByte(rest, '.')
	if dot < 0 || strings.IndexByte(rest[dot+1:], '.') >= 0 {
		return nil, false
	}
	payload64, sig64 := rest[:dot], rest[dot+1:]
	if base64.RawURLEncoding.DecodedLen(len(sig64)) != sha256.Size {
		return nil, false
	}
	sc := fastScratchPool.Get().(*fastScratch)
	defer fastScratchPool.Put(sc)
	var sig [sha256.Size + 2]byte
	m := copy(sc.enc[:], sig64)
	if n, err := base64.RawURLEncoding.Decode(sig[:], sc.enc[:m]); err != nil || n != sha256.Size {
		return nil, false
	}
	signed := token[:len(hs256JWTHeader)+1+dot]
	verified := false
	for _, k := range v.hs256 {
		if k.verifies(sc, signed, sig[:sha256.Size]) {
			verified = true
			break
		}
	}
	if !verified {
		return nil, false
	}
	m = copy(sc.enc[:], payload64)
	n, err := base64.RawURLEncoding.Decode(sc.inner[:], sc.enc[:m])
	if err != nil {
		return nil, false
	}
	var fc fastClaims
	if !fc.read(sc.inner[:n], v) {
		return nil, false
	}
	return v.fastClaims(&fc, payload64)
}

// fastClaims applies the checks of Verifier.claims to what the fast path
// read, accepting only: every failure is the slow path's to report.
func (v *Verifier) fastClaims(fc *fastClaims, payload64 string) (*Claims, bool) {
	exp, hasExp := fc.date(fastExp)
	nbf, hasNbf := fc.date(fastNbf)
	iat, hasIat := fc.date(fastIat)
	if !fc.datesOK {
		return nil, false
	}
	if v.issuer != "" && string(fc.get(fastIss)) != v.issuer {
		return nil, false
	}
	if v.audience != "" && string(fc.get(fastAud)) != v.audience {
		return nil, false
	}
	now := v.now()
	if hasNbf && now.Add(v.leeway).Before(nbf) {
		return nil, false
	}
	if hasIat && now.Add(v.leeway).Before(iat) {
		return nil, false
	}
	if !hasExp && v.requireExp {
		return nil, false
	}
	if hasExp && !now.Before(exp.Add(v.leeway)) {
		return nil, false
	}
	sub := fc.get(fastSub)
	if len(sub) == 0 {
		return nil, false
	}
	var org []byte
	for i := range v.orgClaims {
		if org = fc.get(fastOrg + fastField(i)); len(org) > 0 {
			break
		}
	}
	if len(org) == 0 {
		return nil, false
	}
	c := &Claims{
		UserID:         string(sub),
		OrganizationID: string(org),
		payload:        payload64,
	}
	if r := fc.get(fastRole); len(r) > 0 {
		c.Role = string(r)
	}
	if e := fc.get(fastEmail); len(e) > 0 {
		c.Email = string(e)
	}
	if j := fc.get(fastJti); len(j) > 0 {
		c.TokenID = string(j)
	}
	if hasExp {
		c.ExpiresAt = exp
	}
	if hasIat {
		c.IssuedAt = iat
	}
	return c, true
}

// fastField indexes the claims the fast path reads. The organization
// claims come last, one field each, in Verifier.orgClaims order.
type fastField int

const (
	fastExp fastField = iota
	fastNbf
	fastIat
	fastIss
	fastAud
	fastSub
	fastRole
	fastEmail
	fastJti
	fastOrg
	fastOrgs = 2 // at most this many organization claims are read
)

// numericFields are the fields that hold NumericDates; the others hold
// strings.
func (f fastField) numeric() bool { return f <= fastIat }

func (f fastField) name(v *Verifier) string {
	switch f {
	case fastExp:
		return "exp"
	case fastNbf:
		return "nbf"
	case fastIat:
		return "iat"
	case fastIss:
		return "iss"
	case fastAud:
		return "aud"
	case fastSub:
		return "sub"
	case fastRole:
		return "role"
	case fastEmail:
		return "email"
	case fastJti:
		return "jti"
	}
	return v.orgClaims[f-fastOrg]
}

// fastClaims holds the raw values of the claims read: a string's bytes
// (escape-free ASCII) or a number's literal.
type fastClaims struct {
	val     [fastOrg + fastOrgs][]byte
	seen    [fastOrg + fastOrgs]bool
	datesOK bool
}

func (fc *fastClaims) get(f fastField) []byte { return fc.val[f] }

// date parses a NumericDate as numericDate does. A value out of range
// clears datesOK.
func (fc *fastClaims) date(f fastField) (time.Time, bool) {
	lit := fc.val[f]
	if !fc.seen[f] {
		return time.Time{}, false
	}
	x, err := strconv.ParseFloat(string(lit), 64)
	if err != nil || math.IsNaN(x) || math.Abs(x) > maxNumericDate {
		fc.datesOK = false
		return time.Time{}, false
	}
	sec, frac := math.Modf(x)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// read scans the claims object p. It returns false for anything the slow
// path must judge: invalid JSON, a claim of interest seen twice, null or
// of another type than the fast path expects, a string with an escape or a
// byte outside printable ASCII.
func (fc *fastClaims) read(p []byte, v *Verifier) bool {
	if len(v.orgClaims) > fastOrgs || !json.Valid(p) || !numbersFit(p) {
		return false
	}
	fc.datesOK = true
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return false
	}
	i = skipSpace(p, i+1)
	if i < len(p) && p[i] == '}' {
		return true
	}
	nfields := fastOrg + fastField(len(v.orgClaims))
	for {
		// A key: p is valid JSON, so it is a string.
		key, next, ok := plainString(p, i)
		if !ok {
			return false // an escaped key might spell a claim of interest
		}
		i = skipSpace(p, next)
		i = skipSpace(p, i+1) // ':'
		start := i
		i = skipValue(p, i)
		f := fastField(-1)
		for g := fastExp; g < nfields; g++ {
			if (g == fastIss && v.issuer == "") || (g == fastAud && v.audience == "") {
				continue // not checked: whatever it holds
			}
			if string(key) == g.name(v) {
				f = g
				break
			}
		}
		if f >= 0 {
			if fc.seen[f] {
				return false
			}
			fc.seen[f] = true
			switch c := p[start]; {
			case f.numeric():
				if c != '-' && (c < '0' || c > '9') {
					return false
				}
				fc.val[f] = p[start:i]
			case c == '"':
				s, _, ok := plainString(p, start)
				if !ok {
					return false
				}
				fc.val[f] = s
			default:
				return false
			}
		}
		i = skipSpace(p, i)
		if p[i] == '}' {
			return true
		}
		i = skipSpace(p, i+1) // ','
	}
}

// numbersFit reports whether every number in the valid JSON p, at any
// depth, is within float64's range: encoding/json refuses a payload with
// one that is not (1e400 anywhere), so golang-jwt refuses the token. A
// literal with no exponent and at most maxPlainNumber bytes always fits,
// which spares the common ones a ParseFloat.
func numbersFit(p []byte) bool {
	for i := 0; i < len(p); {
		switch c := p[i]; {
		case c == '"':
			i = skipValue(p, i)
		case c == '-' || (c >= '0' && c <= '9'):
			j := skipValue(p, i)
			lit := p[i:j]
			if len(lit) > maxPlainNumber || bytes.ContainsAny(lit, "eE") {
				if _, err := strconv.ParseFloat(string(lit), 64); err != nil {
					return false
				}
			}
			i = j
		default:
			i++
		}
	}
	return true
}

// maxPlainNumber is a length below which a literal without an exponent is
// less than 1e300.
const maxPlainNumber = 300

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// plainString returns the contents of the JSON string at p[i] and the index
// after it; ok is false when it holds an escape or a byte outside
// printable ASCII (the slow path's decoding of those is its own).
func plainString(p []byte, i int) (s []byte, next int, ok bool) {
	for j := i + 1; j < len(p); j++ {
		switch c := p[j]; {
		case c == '"':
			return p[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// skipValue returns the index after the JSON value at p[i]; p is valid.
func skipValue(p []byte, i int) int {
	switch p[i] {
	case '"':
		for j := i + 1; ; j++ {
			switch p[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
	case '{', '[':
		depth := 0
		for j := i; ; j++ {
			switch p[j] {
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			case '"':
				j = skipValue(p, j) - 1
			}
		}
	}
	// A number, true, false or null.
	j := i
	for j < len(p) && p[j] != ',' && p[j] != '}' && p[j] != ']' && p[j] != ' ' && p[j] != '\t' && p[j] != '\n' && p[j] != '\r' {
		j++
	}
	return j
}
