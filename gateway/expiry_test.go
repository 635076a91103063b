package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
)

// noLeeway makes tokens expire exactly at exp, so that short TTLs keep the
// tests short. JWT exp has second granularity: a token minted with a TTL of
// n seconds expires in n-1 to n seconds.
var noLeeway = auth.Config{Leeway: -1}

type expiryEvent struct {
	Message   string    `json:"message"`
	Code      auth.Code `json:"code"`
	ExpiresAt string    `json:"expiresAt"`
}

type refreshResult struct {
	OK        bool      `json:"ok"`
	ExpiresAt *string   `json:"expiresAt"`
	Error     string    `json:"error"`
	Code      auth.Code `json:"code"`
}

// TestTokenExpiresWhileConnected: the socket is warned, then told and
// disconnected when its token expires, with a reason that does not make
// socket.io-client reconnect on its own (with the same, expired, token).
func TestTokenExpiresWhileConnected(t *testing.T) {
	e := newEnv(t, envOptions{authConfig: noLeeway})
	tok := e.token("org-1", "user-1", 2*time.Second)
	c := e.connect(sioclient.Options{Auth: map[string]any{"token": tok}, Reconnection: ptr(true), ReconnectionDelay: 50})
	c.WaitConnect()
	conn := connectedOf(t, c.Next(gateway.EventConnected))
	exp, err := time.Parse(time.RFC3339, conn.ExpiresAt)
	if err != nil {
		t.Fatalf("connected expiresAt %q: %v", conn.ExpiresAt, err)
	}

	var warn, expired expiryEvent
	decodeArg(t, c.Next(gateway.EventAuthExpiring), 0, &warn)
	if warn.ExpiresAt != conn.ExpiresAt || warn.Message == "" {
		t.Errorf("auth:expiring = %+v, want expiresAt %s", warn, conn.ExpiresAt)
	}
	if now := time.Now(); now.After(exp) {
		t.Errorf("auth:expiring arrived after the expiry (%v > %v)", now, exp)
	}
	decodeArg(t, c.Next(gateway.EventAuthExpired), 0, &expired)
	if now := time.Now(); now.Before(exp.Add(-50 * time.Millisecond)) {
		t.Errorf("auth:expired arrived %v before the token expired", exp.Sub(now))
	}
	if expired.Message != "Unauthorized: Token expired" || expired.Code != auth.CodeTokenExpired || expired.ExpiresAt != conn.ExpiresAt {
		t.Errorf("auth:expired = %+v", expired)
	}
	if reason := c.WaitDisconnect(); reason != "io server disconnect" {
		t.Errorf("disconnect reason %q, want \"io server disconnect\"", reason)
	}
	if st := c.State(); st.Connected || st.Active {
		t.Errorf("client state %+v: want disconnected and not reconnecting", st)
	}
	wait.For(t, "the server to drop the socket", func() bool { return e.gw.ConnectionCount() == 0 })
}

// TestRefreshKeepsConnection refreshes twice: after each warning, with a
// short token and then a long one; the socket outlives every token it had
// and still receives events.
func TestRefreshKeepsConnection(t *testing.T) {
	e := newEnv(t, envOptions{authConfig: noLeeway})
	c := e.connect(sioclient.Options{Auth: map[string]any{"token": e.token("org-1", "user-1", 2*time.Second)}})
	info := c.WaitConnect()
	c.Next(gateway.EventConnected)

	c.Next(gateway.EventAuthExpiring)
	second := e.token("org-1", "user-1", 3*time.Second)
	var r refreshResult
	ack(t, c, gateway.EventAuthRefresh, map[string]any{"token": second}, &r)
	if !r.OK || r.ExpiresAt == nil || r.Error != "" {
		t.Fatalf("refresh = %+v", r)
	}
	secondExp, err := time.Parse(time.RFC3339, *r.ExpiresAt)
	if err != nil {
		t.Fatalf("expiresAt %q: %v", *r.ExpiresAt, err)
	}

	// The new token gets its own warning; answer it with a long token.
	var warn expiryEvent
	decodeArg(t, c.Next(gateway.EventAuthExpiring), 0, &warn)
	if warn.ExpiresAt != *r.ExpiresAt {
		t.Errorf("second warning for %s, want %s", warn.ExpiresAt, *r.ExpiresAt)
	}
	ack(t, c, gateway.EventAuthRefresh, e.token("org-1", "user-1", time.Hour), &r) // the token as a plain string
	if !r.OK || r.ExpiresAt == nil {
		t.Fatalf("second refresh = %+v", r)
	}
	final, _ := time.Parse(time.RFC3339, *r.ExpiresAt)
	if time.Until(final) < 59*time.Minute {
		t.Errorf("final expiresAt %s, want an hour from now", *r.ExpiresAt)
	}

	time.Sleep(time.Until(secondExp) + 300*time.Millisecond)
	c.NoEvent(gateway.EventAuthExpired, 200*time.Millisecond)
	if st := c.State(); !st.Connected || st.SID != info.SID {
		t.Fatalf("state %+v, want still connected as %s", st, info.SID)
	}
	s, _ := e.gw.Namespace().Socket(info.SID)
	if id, _ := gateway.IdentityOf(s); !id.ExpiresAt.Equal(final) {
		t.Errorf("server-side expiry %v, want %v", id.ExpiresAt, final)
	}
	if _, err := e.svc.EmitInvoicePaid(context.Background(), events.InvoicePayload{OrganizationID: "org-1", InvoiceID: "inv-1"}); err != nil {
		t.Fatal(err)
	}
	c.Next(string(events.InvoicePaid))
}

// TestRefreshErrors: every refused refresh leaves the connection and its
// identity as they were.
func TestRefreshErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.connect(sioclient.Options{Auth: map[string]any{"token": e.token("org-1", "user-1", time.Hour)}})
	info := c.WaitConnect()
	c.Next(gateway.EventConnected)
	s, _ := e.gw.Namespace().Socket(info.SID)
	before, _ := gateway.IdentityOf(s)

	expired := mint(t, testSecret, auth.MintClaims{OrganizationID: "org-1", UserID: "user-1", Extra: map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}}, time.Hour)
	tests := []struct {
		name    string
		arg     any
		code    auth.Code
		message string
	}{
		{"other user", map[string]any{"token": e.token("org-1", "user-2", time.Hour)}, gateway.CodeIdentityMismatch, "Unauthorized: Token belongs to another user or organization"},
		{"other organization", map[string]any{"token": e.token("org-2", "user-1", time.Hour)}, gateway.CodeIdentityMismatch, "Unauthorized: Token belongs to another user or organization"},
		{"invalid", map[string]any{"token": "nope"}, auth.CodeInvalidToken, "Unauthorized: Invalid token"},
		{"wrong secret", map[string]any{"token": mint(t, "wrong-secret-wrong-secret-0123456789", auth.MintClaims{OrganizationID: "org-1", UserID: "user-1"}, time.Hour)}, auth.CodeInvalidToken, "Unauthorized: Invalid token"},
		{"expired", map[string]any{"token": expired}, auth.CodeTokenExpired, "Unauthorized: Token expired"},
		{"no token field", map[string]any{}, auth.CodeNoToken, "Unauthorized: No token provided"},
		{"non-string token", map[string]any{"token": 5}, auth.CodeInvalidToken, "Unauthorized: Invalid token"},
		{"number", 5, auth.CodeInvalidToken, "Unauthorized: Invalid token"},
		{"no argument", nil, auth.CodeNoToken, "Unauthorized: No token provided"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r refreshResult
			ack(t, c, gateway.EventAuthRefresh, tc.arg, &r)
			if r.OK || r.Code != tc.code || r.Error != tc.message || r.ExpiresAt != nil {
				t.Fatalf("refresh = %+v, want code %s message %q", r, tc.code, tc.message)
			}
		})
	}
	after, _ := gateway.IdentityOf(s)
	if after != before || !c.State().Connected {
		t.Fatalf("identity changed from %+v to %+v, or the client was disconnected", before, after)
	}

	// A refresh without an acknowledgement is applied all the same.
	c.Emit(gateway.EventAuthRefresh, map[string]any{"token": e.token("org-1", "user-1", 2*time.Hour)})
	wait.For(t, "the silent refresh", func() bool {
		id, _ := gateway.IdentityOf(s)
		return id.ExpiresAt.After(before.ExpiresAt.Add(30 * time.Minute))
	})
}
