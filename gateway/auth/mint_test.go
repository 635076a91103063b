package auth

import (
	"strings"
	"testing"
	"time"
)

func TestMintRoundTrip(t *testing.T) {
	tok, err := Mint(testSecret, MintClaims{UserID: "u1", OrganizationID: "o1", Role: "member", Email: "e@example.com", Extra: map[string]any{"plan": "pro"}}, 15*time.Minute, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "eyJhbGciOiJIUzI1NiIs") {
		t.Errorf("not an HS256 JWT: %s", Redact(tok))
	}
	v := newVerifier(t, Config{Secret: testSecret, Now: newClock(testNow.Add(time.Minute)).Now})
	c := wantCode(t, v, tok, "")
	if c.UserID != "u1" || c.OrganizationID != "o1" || c.Role != "member" || c.Email != "e@example.com" || c.RawClaims()["plan"] != "pro" {
		t.Errorf("claims = %+v", c)
	}
	if !c.IssuedAt.Equal(testNow) || !c.ExpiresAt.Equal(testNow.Add(15*time.Minute)) {
		t.Errorf("iat/exp = %v/%v", c.IssuedAt, c.ExpiresAt)
	}

	// After ttl (+leeway) it is expired.
	late := newVerifier(t, Config{Secret: testSecret, Now: newClock(testNow.Add(16 * time.Minute)).Now})
	wantCode(t, late, tok, CodeTokenExpired)
}

func TestMintOmitsEmptyAndExtraOverrides(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret, Now: newClock(testNow).Now})
	noOrg, err := Mint(testSecret, MintClaims{UserID: "u1"}, time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, v, noOrg, CodeNoOrganization)

	override, err := Mint(testSecret, MintClaims{UserID: "u1", OrganizationID: "o1", Extra: map[string]any{"sub": "u2", "exp": nil}}, time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, v, override, CodeInvalidToken) // exp removed, required by default
	lax := newVerifier(t, Config{Secret: testSecret, AllowMissingExpiry: true, Now: newClock(testNow).Now})
	if c := wantCode(t, lax, override, ""); c.UserID != "u2" {
		t.Errorf("UserID = %q, want the Extra override", c.UserID)
	}
}

func TestMintErrors(t *testing.T) {
	if _, err := Mint("", MintClaims{UserID: "u"}, time.Hour, testNow); err == nil {
		t.Error("empty secret accepted")
	}
	if _, err := Mint(testSecret, MintClaims{UserID: "u"}, 0, testNow); err == nil {
		t.Error("zero ttl accepted")
	}
	tok, err := Mint(testSecret, MintClaims{UserID: "u", OrganizationID: "o"}, time.Minute, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, newVerifier(t, Config{Secret: testSecret}), tok, "") // zero now = time.Now
}
