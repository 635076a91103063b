package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

const oldSecret = "old-secret-0123456789abcdef0123456789"

// fastConfigs are the verifier configurations the fast path must agree
// with golang-jwt under.
func fastConfigs() map[string]Config {
	clock := func() time.Time { return testNow }
	return map[string]Config{
		"default":        {Secret: testSecret, Now: clock},
		"rotation":       {Secret: testSecret, PreviousSecret: oldSecret, Now: clock},
		"no leeway":      {Secret: testSecret, Leeway: -1, Now: clock},
		"missing exp ok": {Secret: testSecret, AllowMissingExpiry: true, Now: clock},
		"iss and aud":    {Secret: testSecret, Issuer: "https://api.example.com", Audience: "realtime", Now: clock},
		"org claim":      {Secret: testSecret, OrganizationClaim: "tenant", Now: clock},
		"hs256 and 512":  {Secret: testSecret, Algorithms: []string{"HS512", "HS256"}, Now: clock},
		"hs512 only":     {Secret: testSecret, Algorithms: []string{"HS512"}, Now: clock},
		"long secret":    {Secret: strings.Repeat("k", 100), Now: clock},
	}
}

// hsToken signs header.payload (both JSON, base64url-encoded here) with
// HMAC over h and key.
func hsToken(h func() hash.Hash, key, header, payload string) string {
	signed := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	m := hmac.New(h, []byte(key))
	m.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

const stdHeader = `{"alg":"HS256","typ":"JWT"}`

// fastPayloads are claims sets: valid ones, and every way we could think
// of for one to be wrong or unusual.
func fastPayloads() []string {
	now := testNow.Unix()
	exp := strconv.FormatInt(now+3600, 10)
	iat := strconv.FormatInt(now, 10)
	base := func(extra string) string {
		return `{"sub":"user-1","orgId":"org-1","role":"admin","email":"ada@example.com","iat":` + iat + `,"exp":` + exp + extra + `}`
	}
	ps := []string{
		base(""),
		base(`,"jti":"tok-1"`),
		base(`,"jti":42`),
		base(`,"iss":"https://api.example.com","aud":"realtime"`),
		base(`,"iss":"https://api.example.com","aud":["other","realtime"]`),
		base(`,"iss":"https://evil.example.com","aud":"realtime"`),
		base(`,"iss":"https://api.example.com","aud":"other"`),
		base(`,"aud":null,"iss":null`),
		base(`,"tenant":"t-1"`),
		base(`,"tenant":""`),
		base(`,"tenant":7`),
		base(`,"nbf":` + strconv.FormatInt(now+10, 10)),
		base(`,"nbf":` + strconv.FormatInt(now+31, 10)),
		base(`,"nbf":` + strconv.FormatInt(now+30, 10)),
		base(`,"nbf":"soon"`),
		base(`,"nbf":null`),
		base(`,"plan":{"tier":"pro","seats":[1,2,{"x":"}"}]},"flags":[true,false,null],"s":"a\"b\\c\u00e9"`),
		base(`,"sub":"dup"`),
		base(`,"orgId":"dup"`),
		base(`,"s\u0075b":"escaped key"`),
		base(`,"organizationId":"org-2"`),
		`{"sub":"user-1","organizationId":"org-2","exp":` + exp + `}`,
		`{"sub":"user-1","orgId":"","organizationId":"org-2","exp":` + exp + `}`,
		`{"sub":"user-1","orgId":null,"organizationId":"org-2","exp":` + exp + `}`,
		`{"sub":"user-1","orgId":"org-1","organizationId":3,"exp":` + exp + `}`,
		`{"sub":"user-1","orgId":3,"organizationId":"org-2","exp":` + exp + `}`,
		`{"sub":"user-1","exp":` + exp + `}`,
		`{"orgId":"org-1","exp":` + exp + `}`,
		`{"sub":"","orgId":"org-1","exp":` + exp + `}`,
		`{"sub":null,"orgId":"org-1","exp":` + exp + `}`,
		`{"sub":12,"orgId":"org-1","exp":` + exp + `}`,
		`{"sub":"us\u0065r","orgId":"org-1","exp":` + exp + `}`,
		`{"sub":"\ud800","orgId":"org-1","exp":` + exp + `}`,
		`{"sub":"Zoë","orgId":"org-1","exp":` + exp + `}`,
		`{"sub":"user-1","orgId":"org-1","email":"zoë@example.com","role":["a"],"exp":` + exp + `}`,
		`{"sub":"user-1","orgId":"org-1","role":null,"email":null,"exp":` + exp + `}`,
		`{"sub":"user-1","orgId":"org-1"}`,
		`{"sub":"user-1","orgId":"org-1","exp":null}`,
		`{"sub":"user-1","orgId":"org-1","exp":"` + exp + `"}`,
		`{"sub":"user-1","orgId":"org-1","exp":` + exp + `.75}`,
		`{"sub":"user-1","orgId":"org-1","exp":` + exp + `e0}`,
		`{"sub":"user-1","orgId":"org-1","exp":1e13}`,
		`{"sub":"user-1","orgId":"org-1","exp":-1e13}`,
		`{"sub":"user-1","orgId":"org-1","exp":1e400}`,
		`{"sub":"user-1","orgId":"org-1","exp":-5}`,
		`{"sub":"user-1","orgId":"org-1","exp":` + strconv.FormatInt(now, 10) + `}`,
		`{"sub":"user-1","orgId":"org-1","exp":` + strconv.FormatInt(now-29, 10) + `}`,
		`{"sub":"user-1","orgId":"org-1","exp":` + strconv.FormatInt(now-30, 10) + `}`,
		`{"sub":"user-1","orgId":"org-1","exp":` + strconv.FormatInt(now-31, 10) + `}`,
		`{"sub":"user-1","orgId":"org-1","exp":` + exp + `,"iat":` + strconv.FormatInt(now+31, 10) + `}`,
		`{"sub":"user-1","orgId":"org-1","exp":` + exp + `,"iat":` + strconv.FormatInt(now+29, 10) + `}`,
		`{"sub":"user-1","orgId":"org-1","exp":` + exp + `,"iat":true}`,
		` { "sub" : "user-1" ,	"orgId":"org-1"
			, "exp" : ` + exp + ` } `,
		`{"sub":"user-1","orgId":"org-1","exp":` + exp + `} trailing`,
		`{"sub":"user-1","orgId":"org-1","exp":` + exp + `}{"sub":"x"}`,
		`{"sub":"user-1","orgId":"org-1","exp":` + exp + `,}`,
		`{"sub":"user-1","orgId":"org-1","exp":0x10}`,
		`["sub","user-1"]`,
		`"sub"`,
		`null`,
		`{}`,
		``,
		`{"sub":"user-1","orgId":"org-1","exp":` + exp + `,"x":"` + strings.Repeat("a", 1500) + `"}`,
		`{"sub":"user-1","orgId":"org-1","exp":` + exp + `,"x":"` + strings.Repeat("a", 3000) + `"}`,
	}
	return ps
}

// fastTokens are the payloads under several headers and keys, and tokens
// broken in every way the splitting and decoding could mishandle.
func fastTokens() []string {
	var toks []string
	for _, p := range fastPayloads() {
		toks = append(toks,
			hsToken(sha256.New, testSecret, stdHeader, p),
			hsToken(sha256.New, oldSecret, stdHeader, p),
			hsToken(sha256.New, "wrong-secret", stdHeader, p),
			hsToken(sha256.New, strings.Repeat("k", 100), stdHeader, p),
			hsToken(sha256.New, testSecret, `{"typ":"JWT","alg":"HS256"}`, p),
			hsToken(sha256.New, testSecret, `{"alg":"HS256"}`, p),
			hsToken(sha256.New, testSecret, `{"alg":"HS256","typ":"JWT","kid":"k1"}`, p),
			hsToken(sha256.New, testSecret, `{"alg":"HS256","typ":"JWT","crit":["b64"]}`, p),
			hsToken(sha512.New, testSecret, `{"alg":"HS512","typ":"JWT"}`, p),
			hsToken(sha256.New, testSecret, `{"alg":"none","typ":"JWT"}`, p),
		)
	}
	good := hsToken(sha256.New, testSecret, stdHeader, fastPayloads()[0])
	parts := strings.Split(good, ".")
	toks = append(toks,
		"",
		"abc",
		parts[0]+"."+parts[1],
		parts[0]+"."+parts[1]+".",
		parts[0]+"."+parts[1]+"."+parts[2]+".",
		parts[0]+"."+parts[1]+"."+parts[2]+"=",
		parts[0]+"."+parts[1]+"."+parts[2][:42],
		parts[0]+"."+parts[1]+"."+parts[2][:42]+"!",
		parts[0]+"."+parts[1]+"."+parts[2][:20]+"\n"+parts[2][20:],
		parts[0]+"."+parts[1]+"="+"."+parts[2],
		parts[0]+"."+parts[1][:len(parts[1])-1]+"."+parts[2],
		parts[0]+".."+parts[2],
		parts[0]+"."+strings.ReplaceAll(parts[1], "e", "+")+"."+parts[2],
		" "+good,
		good+" ",
		strings.Repeat("a", MaxTokenLength+1),
	)
	return toks
}

// agree checks that Verify (fast path first) and verifySlow (golang-jwt
// only) reach the same verdict on tok: the same claims, or the same error.
func agree(t testing.TB, v *Verifier, tok string) (fast bool) {
	t.Helper()
	ctx := context.Background()
	got, gotErr := v.Verify(ctx, tok)
	var want *Claims
	wantErr := error(checkLength(tok))
	if wantErr == nil {
		want, wantErr = v.verifySlow(ctx, tok)
		_, fast = v.verifyFast(tok)
	}
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("token %q: Verify error %v, golang-jwt error %v", tok, gotErr, wantErr)
	case gotErr != nil:
		if gotErr.Error() != wantErr.Error() || CodeOf(gotErr) != CodeOf(wantErr) {
			t.Fatalf("token %q: Verify error %v, golang-jwt error %v", tok, gotErr, wantErr)
		}
		if fast {
			t.Fatalf("token %q: the fast path accepted what golang-jwt refuses: %v", tok, wantErr)
		}
	default:
		if !reflect.DeepEqual(got.RawClaims(), want.RawClaims()) {
			t.Fatalf("token %q: raw claims %v, golang-jwt %v", tok, got.RawClaims(), want.RawClaims())
		}
		g, w := *got, *want
		g.raw, g.payload, w.raw, w.payload = nil, "", nil, ""
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("token %q: claims %+v, golang-jwt %+v", tok, g, w)
		}
	}
	return fast
}

// TestFastPathAgreesWithGolangJWT holds the fast path to golang-jwt's
// verdicts, claims and errors over every configuration and token above,
// and checks that it does take the common tokens.
func TestFastPathAgreesWithGolangJWT(t *testing.T) {
	toks := fastTokens()
	for name, cfg := range fastConfigs() {
		t.Run(name, func(t *testing.T) {
			v := newVerifier(t, cfg)
			fast, ok := 0, 0
			for _, tok := range toks {
				if agree(t, v, tok) {
					fast++
				}
				if _, err := v.Verify(context.Background(), tok); err == nil {
					ok++
				}
			}
			if ok == 0 {
				t.Fatal("no token verified: the test checks nothing")
			}
			hs256 := name != "hs512 only"
			if hs256 && fast == 0 {
				t.Errorf("the fast path took none of the %d valid tokens", ok)
			}
			if !hs256 && fast != 0 {
				t.Errorf("the fast path took %d tokens with HS256 not allowed", fast)
			}
			t.Logf("%d of %d tokens valid, %d by the fast path", ok, len(toks), fast)
		})
	}
}

// TestFastPathTakesIssuedTokens: the tokens Mint issues (as the NestJS API
// does) are the ones the fast path is for.
func TestFastPathTakesIssuedTokens(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	tok, err := Mint(testSecret, MintClaims{UserID: "u1", OrganizationID: "o1", Role: "member", Email: "e@example.com"}, time.Hour, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	c, ok := v.verifyFast(tok)
	if !ok {
		t.Fatal("the fast path refused a token from Mint")
	}
	if c.UserID != "u1" || c.OrganizationID != "o1" || c.Role != "member" || c.Email != "e@example.com" || c.ExpiresAt.IsZero() || c.IssuedAt.IsZero() {
		t.Errorf("claims %+v", c)
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = v.verifyFast(tok) }); allocs > 6 {
		t.Errorf("%v allocations per fast verification, want at most 6", allocs)
	}
}

// FuzzFastPath: for any claims under any of the headers and keys, and for
// any token string at all, Verify agrees with golang-jwt.
func FuzzFastPath(f *testing.F) {
	for i, p := range append(fastPayloads(), adversarialPayloads()...) {
		f.Add(p, uint8(i), "")
	}
	for _, tok := range fastTokens()[:40] {
		f.Add("", uint8(0), tok)
	}
	verifiers := map[string]*Verifier{}
	for name, cfg := range fastConfigs() {
		verifiers[name] = newVerifier(f, cfg)
	}
	names := make([]string, 0, len(verifiers))
	for n := range verifiers {
		names = append(names, n)
	}
	headers := []string{stdHeader, `{"alg":"HS256"}`, `{"alg":"HS512","typ":"JWT"}`}
	keys := []string{testSecret, oldSecret, strings.Repeat("k", 100)}
	f.Fuzz(func(t *testing.T, payload string, sel uint8, raw string) {
		for _, name := range names {
			v := verifiers[name]
			if raw != "" {
				agree(t, v, raw)
				continue
			}
			h := headers[int(sel)%len(headers)]
			hf := sha256.New
			if strings.Contains(h, "HS512") {
				hf = sha512.New
			}
			agree(t, v, hsToken(hf, keys[int(sel/4)%len(keys)], h, payload))
		}
	})
}

func ExampleClaims_RawClaims() {
	v, _ := New(context.Background(), Config{Secret: testSecret})
	tok, _ := Mint(testSecret, MintClaims{UserID: "u1", OrganizationID: "o1", Extra: map[string]any{"plan": "pro"}}, time.Hour, time.Time{})
	c, _ := v.Verify(context.Background(), tok)
	fmt.Println(c.UserID, c.OrganizationID, c.RawClaims()["plan"])
	// Output: u1 o1 pro
}
