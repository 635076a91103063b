package gateway

import (
	"strconv"
	"testing"
	"time"
)

// TestRevocationsSet: the set keeps the latest time per user, ignores what
// expired, and matches tokens by jti, by user within an organization or in
// all of them.
func TestRevocationsSet(t *testing.T) {
	now := time.Now()
	rs := newRevocations()
	if rs.revoked("o", "u", "j", now, now) {
		t.Fatal("an empty set revokes")
	}
	if !rs.add(Revocation{TokenID: "j", Until: now.Add(time.Hour)}, now) || rs.add(Revocation{TokenID: "j", Until: now.Add(time.Minute)}, now) {
		t.Error("add of a token: new, then nothing more")
	}
	if rs.add(Revocation{TokenID: "old", Until: now.Add(-time.Second)}, now) {
		t.Error("an expired revocation was added")
	}
	t0 := now.Add(-time.Minute)
	rs.add(Revocation{UserID: "u", OrganizationID: "o", IssuedBefore: t0, Until: now.Add(time.Hour)}, now)
	if rs.add(Revocation{UserID: "u", OrganizationID: "o", IssuedBefore: t0.Add(-time.Second), Until: now.Add(time.Hour)}, now) {
		t.Error("an earlier time replaced a later one")
	}
	for _, tc := range []struct {
		org, user, jti string
		iat            time.Time
		want           bool
	}{
		{"o", "x", "j", now, true},                  // by jti
		{"o", "u", "", t0.Add(-time.Second), true},  // issued before
		{"o", "u", "", t0, false},                   // not before
		{"o", "u", "", time.Time{}, true},           // no iat
		{"p", "u", "", t0.Add(-time.Second), false}, // another organization
		{"o", "v", "", t0.Add(-time.Second), false}, // another user
		{"o", "u", "k", t0.Add(time.Second), false}, // another jti, later
		{"p", "w", "j2", t0.Add(-time.Hour), false}, // nothing
	} {
		if got := rs.revoked(tc.org, tc.user, tc.jti, tc.iat, now); got != tc.want {
			t.Errorf("revoked(%q, %q, %q, %v) = %t", tc.org, tc.user, tc.jti, tc.iat, got)
		}
	}
	rs.add(Revocation{UserID: "w", IssuedBefore: now, Until: now.Add(time.Hour)}, now) // every organization
	if !rs.revoked("any", "w", "", now.Add(-time.Second), now) {
		t.Error("a revocation in every organization does not apply")
	}
	if rs.revoked("o", "u", "j", t0, now.Add(2*time.Hour)) {
		t.Error("revocations past their until still apply")
	}
}

// BenchmarkRevocationCheck is what a connect and a refresh pay for
// revocations: with none, and with 10,000 held.
func BenchmarkRevocationCheck(b *testing.B) {
	now := time.Now()
	for _, n := range []int{0, 10_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			rs := newRevocations()
			for i := range n {
				if i%2 == 0 {
					rs.add(Revocation{TokenID: "jti-" + strconv.Itoa(i), Until: now.Add(time.Hour)}, now)
				} else {
					rs.add(Revocation{UserID: "u-" + strconv.Itoa(i), OrganizationID: "o", IssuedBefore: now, Until: now.Add(time.Hour)}, now)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if rs.revoked("org_1", "user_1", "some-jti", now, now) {
					b.Fatal("revoked")
				}
			}
		})
	}
}
