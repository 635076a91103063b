package auth

import (
	"crypto/sha256"
	"strconv"
	"strings"
	"testing"
)

// adversarialPayloads are claims sets that are valid JSON and signed with
// the right key, but where encoding/json (and so golang-jwt) decides
// something a hand-written scanner could get wrong.
func adversarialPayloads() []string {
	now := testNow.Unix()
	exp := strconv.FormatInt(now+3600, 10)
	base := func(extra string) string {
		return `{"sub":"user-1","orgId":"org-1","exp":` + exp + extra + `}`
	}
	return []string{
		// Numbers out of float64's range anywhere: encoding/json refuses
		// the whole payload, so golang-jwt refuses the token.
		base(`,"x":1e400`),
		base(`,"x":-1e400`),
		base(`,"x":[1,{"y":1e309}]`),
		base(`,"x":` + strings.Repeat("9", 310)),
		base(`,"x":` + strings.Repeat("9", 308) + `.5`),
		base(`,"x":1e-400`),
		base(`,"x":` + strings.Repeat("9", 300)),
		base(`,"x":1.7976931348623157e308`),
		base(`,"x":1.7976931348623159e308`),
		// Duplicates and near-duplicates of the claims the fast path reads.
		base(`,"exp":1`),
		base(`,"exp":null`),
		base(`,"orgId":""`),
		base(`,"Sub":"other","SUB":"x","orgid":"y"`),
		base(`,"s\u0075b":"x"`),
		base(`,"\u0073ub":"x"`),
		base(`,"sub\u0000":"x"`),
		base(`,"nbf":1e400`),
		base(`,"nbf":-0`),
		base(`,"iat":-0.0e0`),
		base(`,"nbf":` + exp + `e-100`),
		// Strings that are not what they look like.
		`{"sub":"user-1 ","orgId":"org-1","exp":` + exp + `}`,
		`{"sub":"us\/er","orgId":"org-1","exp":` + exp + `}`,
		`{"sub":"user-1","orgId":"org\u0000","exp":` + exp + `}`,
		`{"sub":"user-1","orgId":"org-1","role":"a\u0000b","exp":` + exp + `}`,
		`{"sub":"user-1","orgId":"org-1","jti":"j","exp":` + exp + `,"jti":"k"}`,
		`{"sub":"user-1","orgId":"org-1","email":{"a":"b"},"exp":` + exp + `}`,
		`{"sub":"user-1","orgId":"org-1","jti":null,"exp":` + exp + `}`,
		`{"sub":"user-1","orgId":"org-1","exp":` + exp + `,"x":"\"sub\":\"evil\""}`,
		`{"x":{"sub":"evil","orgId":"evil"},"sub":"user-1","orgId":"org-1","exp":` + exp + `}`,
		`{"x":["}","{","\\"],"sub":"user-1","orgId":"org-1","exp":` + exp + `}`,
		`{"sub":"user-1","orgId":"org-1","exp":` + exp + `,"deep":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`,
		"\ufeff" + base(""),
		"{\"sub\":\"user-1\",\"orgId\":\"org-1\",\"exp\":" + exp + "}\x00",
		"{\"sub\":\"user-1\",\"orgId\":\"org-1\",\"exp\":" + exp + "}\n",
		"{\"sub\":\"user-1\",\"orgId\":\"org-1\",\"exp\":" + exp + ",\"x\":\"\xff\"}",
		"{\"sub\":\"user-1\",\"orgId\":\"org-1\",\"exp\":" + exp + ",\"\xff\":1}",
		// iss/aud shapes when configured.
		base(`,"iss":"https://api.example.com","aud":"realtime","iss":"https://evil.example.com"`),
		base(`,"iss":"https://api.example.com","aud":["realtime"]`),
		base(`,"iss":"https://api.example.com","aud":"realtime","aud":"other"`),
		base(`,"iss":"https:\/\/api.example.com","aud":"realtime"`),
		base(`,"iss":["https://api.example.com"],"aud":"realtime"`),
		base(`,"tenant":"t-1","tenant":"t-2"`),
		base(`,"tenant":"t\u002d1"`),
	}
}

// TestFastPathAdversarialPayloads: on each payload above, signed correctly
// under each configuration, the fast path agrees with golang-jwt.
func TestFastPathAdversarialPayloads(t *testing.T) {
	for name, cfg := range fastConfigs() {
		t.Run(name, func(t *testing.T) {
			v := newVerifier(t, cfg)
			for _, p := range adversarialPayloads() {
				for _, key := range []string{testSecret, oldSecret} {
					agree(t, v, hsToken(sha256.New, key, stdHeader, p))
				}
			}
		})
	}
}

// TestFastPathAdversarialTokens: tokens whose header, segments or
// signature are unusual, built around a valid one.
func TestFastPathAdversarialTokens(t *testing.T) {
	exp := strconv.FormatInt(testNow.Unix()+3600, 10)
	p := `{"sub":"user-1","orgId":"org-1","exp":` + exp + `}`
	good := hsToken(sha256.New, testSecret, stdHeader, p)
	parts := strings.Split(good, ".")
	// A signature whose last character differs only in the two bits
	// base64 drops: non-strict decoding gives the same MAC.
	sig := []byte(parts[2])
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	sig[42] = alpha[strings.IndexByte(alpha, sig[42])^1]
	toks := []string{
		good,
		parts[0] + "." + parts[1] + "." + string(sig),
		parts[0] + "." + parts[1] + "\n." + parts[2],
		parts[0] + "." + parts[1][:10] + "\r\n" + parts[1][10:] + "." + parts[2],
		parts[0] + "\n." + parts[1] + "." + parts[2],
		parts[0] + "." + parts[1] + "." + parts[2] + "\n",
		parts[0] + "." + parts[1] + "." + strings.ToUpper(parts[2]),
		parts[0] + "." + parts[1] + "." + strings.Repeat("A", 43),
		parts[0] + "." + parts[1] + "." + parts[2] + "AAAA",
		parts[0] + "." + parts[1] + "." + parts[2][:40],
		parts[0] + "." + parts[1] + "." + strings.ReplaceAll(strings.ReplaceAll(parts[2], "-", "+"), "_", "/"),
		strings.Repeat(parts[0]+".", 3) + parts[1] + "." + parts[2],
		hsToken(sha256.New, testSecret, `{"alg":"HS256","typ":"JWT","alg":"none"}`, p),
		hsToken(sha256.New, testSecret, `{"alg":"none","typ":"JWT","alg":"HS256"}`, p),
		hsToken(sha256.New, testSecret, `{"alg":"hs256","typ":"JWT"}`, p),
		hsToken(sha256.New, testSecret, `{"alg":"HS256 ","typ":"JWT"}`, p),
		hsToken(sha256.New, testSecret, `{"alg":"HS256","typ":"JWT","b64":false,"crit":["b64"]}`, p),
		hsToken(sha256.New, testSecret, `{"alg":"HS256","typ":"JWT","crit":[]}`, p),
		hsToken(sha256.New, testSecret, `{"alg":"HS256","typ":"JWT","jku":"https://evil/"}`, p),
		hsToken(sha256.New, testSecret, `{"alg":"HS256","typ":"JWT"} `, p),
		hsToken(sha256.New, testSecret, `{"alg":"HS256","typ":"JWT"}`, p)[:len(good)-1],
		hsToken(sha256.New, "", stdHeader, p),
		parts[0] + "." + parts[1] + "." + parts[2] + strings.Repeat("A", maxFastToken),
		parts[0] + "." + strings.Repeat("e", maxFastToken) + "." + parts[2],
	}
	for name, cfg := range fastConfigs() {
		t.Run(name, func(t *testing.T) {
			v := newVerifier(t, cfg)
			for _, tok := range toks {
				agree(t, v, tok)
			}
		})
	}
}
