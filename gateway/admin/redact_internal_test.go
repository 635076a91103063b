package admin

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestShownArgs(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`["auth:refresh",{"token":"eyJ.secret"}]`, `["auth:refresh",{"token":"[redacted]"}]`},
		{`["x",{"a":{"Access_Token":"s","n":12345678901234567890},"list":[{"password":"p"}]}]`,
			`["x",{"a":{"Access_Token":"[redacted]","n":12345678901234567890},"list":[{"password":"[redacted]"}]}]`},
		// Untouched when there is nothing to redact, byte for byte.
		{`["invoice:paid",{"organizationId":"o","amount":1.50}]`, `["invoice:paid",{"organizationId":"o","amount":1.50}]`},
		{`["s","token"]`, `["s","token"]`},
	} {
		var args []json.RawMessage
		if err := json.Unmarshal([]byte(c.in), &args); err != nil {
			t.Fatal(err)
		}
		if got := string(shownArgs(args)); got != c.want {
			t.Errorf("shownArgs(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	big := []json.RawMessage{json.RawMessage(`"bulk"`), json.RawMessage(`"` + strings.Repeat("x", maxEventBytes) + `"`)}
	if got := string(shownArgs(big)); got != `["bulk","(8200 bytes, not shown)"]` {
		t.Errorf("large event shown as %.80s", got)
	}
}

func TestSessions(t *testing.T) {
	a, err := newUIAuth("admin", "a password of 20 chars", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	id := a.newSession(now)
	if !a.validSession(id, now.Add(59*time.Minute)) {
		t.Error("a fresh session is refused")
	}
	if a.validSession(id, now.Add(61*time.Minute)) {
		t.Error("an expired session is accepted")
	}
	body, _, _ := cutLast(id, ".")
	// A changed last digit of the expiry, under the original signature
	// (a fixed "9" left the body unchanged one time in ten).
	changed := byte('9')
	if body[len(body)-1] == '9' {
		changed = '8'
	}
	forged := body[:len(body)-1] + string(changed) + "." + a.sign(body)
	if a.validSession(forged, now) {
		t.Error("a session with a changed expiry is accepted")
	}
	other, err := newUIAuth("admin", "another password, 20c", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if other.validSession(id, now) {
		t.Error("a session survives a password change")
	}
	for _, bad := range []string{"", "v1.", "v1.x.y", "v2.1.abc", id + "x"} {
		if a.validSession(bad, now) {
			t.Errorf("session %q accepted", bad)
		}
	}
}
