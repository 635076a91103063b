package auth

import (
	"testing"
	"time"
)

// TestValidUntil checks that ValidUntil is exactly the instant Verify starts
// refusing the token as expired, with and without leeway.
func TestValidUntil(t *testing.T) {
	exp := testNow.Add(time.Hour)
	for _, tc := range []struct {
		name   string
		leeway time.Duration
		want   time.Time
	}{
		{"default leeway", 0, exp.Add(DefaultLeeway)},
		{"custom leeway", 5 * time.Second, exp.Add(5 * time.Second)},
		{"no leeway", -1, exp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock(testNow)
			v := newVerifier(t, Config{Secret: testSecret, Leeway: tc.leeway, Now: clock.Now})
			token := sign(t, jwtHS256, []byte(testSecret), "", claimsAt(testNow))
			c := wantCode(t, v, token, "")
			got := v.ValidUntil(c)
			if !got.Equal(tc.want) {
				t.Fatalf("ValidUntil = %v, want %v", got, tc.want)
			}
			clock.Advance(got.Sub(testNow) - time.Nanosecond)
			wantCode(t, v, token, "")
			clock.Advance(time.Nanosecond)
			wantCode(t, v, token, CodeTokenExpired)
		})
	}

	t.Run("no exp", func(t *testing.T) {
		v := newVerifier(t, Config{Secret: testSecret, AllowMissingExpiry: true, Now: newClock(testNow).Now})
		c := wantCode(t, v, sign(t, jwtHS256, []byte(testSecret), "", with(claimsAt(testNow), "exp", nil)), "")
		if got := v.ValidUntil(c); !got.IsZero() {
			t.Errorf("ValidUntil without exp = %v, want zero", got)
		}
		if got := v.ValidUntil(nil); !got.IsZero() {
			t.Errorf("ValidUntil(nil) = %v, want zero", got)
		}
	})
}
