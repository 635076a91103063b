package gateway_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
)

// revokedEvent is the session:revoked payload.
type revokedEvent struct {
	Message string    `json:"message"`
	Code    auth.Code `json:"code"`
	Reason  string    `json:"reason"`
}

// expectRevoked checks that c is told why, then disconnected with a reason
// after which socket.io-client does not reconnect by itself.
func expectRevoked(t *testing.T, c *sioclient.Client, code auth.Code, reason string) {
	t.Helper()
	var ev revokedEvent
	decodeArg(t, c.Next(gateway.EventSessionRevoked), 0, &ev)
	if ev.Code != code || ev.Reason != reason || ev.Message == "" {
		t.Errorf("%s: session:revoked %+v, want code %s reason %q", c.Name(), ev, code, reason)
	}
	if got := c.WaitDisconnect(); got != "io server disconnect" {
		t.Errorf("%s: disconnected with %q, want io server disconnect", c.Name(), got)
	}
}

// stillConnected checks that c still receives its organization's events.
func stillConnected(t *testing.T, e *env, c *sioclient.Client, org string, seq int) {
	t.Helper()
	emitTo(t, e, events.InvoiceCreated, org, "", seq)
	if got := seqOf(t, c.Next(string(events.InvoiceCreated))); got != seq {
		t.Errorf("%s: seq %d, want %d", c.Name(), got, seq)
	}
}

func control(t *testing.T, what string, res gateway.ControlResult, err error, sockets int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if res.Sockets != sockets || res.Nodes != 1 || !res.Complete {
		t.Errorf("%s: %+v, want %d socket(s) on 1 node, complete", what, res, sockets)
	}
}

// TestDisconnect: a user within one organization, a user everywhere, an
// organization and one socket are disconnected with the reason they are
// shown; the others stay connected.
func TestDisconnect(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	u1a := e.join("org_a", "u1", sioclient.Options{Name: "u1a"})
	u1b := e.join("org_b", "u1", sioclient.Options{Name: "u1b"})
	u2a := e.join("org_a", "u2", sioclient.Options{Name: "u2a"})
	u3b := e.join("org_b", "u3", sioclient.Options{Name: "u3b"})
	u4c := e.join("org_c", "u4", sioclient.Options{Name: "u4c"})
	u4c2 := e.join("org_c", "u4", sioclient.Options{Name: "u4c2"})

	res, err := e.gw.Disconnect(ctx, gateway.Selector{UserID: "u1", OrganizationID: "org_a"}, "removed from org_a")
	control(t, "user in org_a", res, err, 1)
	expectRevoked(t, u1a, gateway.CodeSessionRevoked, "removed from org_a")
	stillConnected(t, e, u1b, "org_b", 1)

	res, err = e.gw.Disconnect(ctx, gateway.Selector{OrganizationID: "org_b"}, "")
	control(t, "org_b", res, err, 2)
	expectRevoked(t, u1b, gateway.CodeSessionRevoked, "")
	expectRevoked(t, u3b, gateway.CodeSessionRevoked, "")
	stillConnected(t, e, u2a, "org_a", 2)

	res, err = e.gw.Disconnect(ctx, gateway.Selector{SocketID: u4c.State().SID}, strings.Repeat("é", gateway.MaxReasonLength))
	control(t, "socket", res, err, 1)
	expectRevoked(t, u4c, gateway.CodeSessionRevoked, strings.Repeat("é", gateway.MaxReasonLength/2)) // cut on a rune
	stillConnected(t, e, u4c2, "org_c", 3)

	res, err = e.gw.Disconnect(ctx, gateway.Selector{UserID: "nobody"}, "")
	control(t, "nobody", res, err, 0)

	for _, bad := range []gateway.Selector{{}, {SocketID: "x", UserID: "u1"}, {SocketID: "x", OrganizationID: "o"}} {
		if _, err := e.gw.Disconnect(ctx, bad, ""); !errors.Is(err, gateway.ErrInvalidSelector) {
			t.Errorf("Disconnect(%+v) = %v, want ErrInvalidSelector", bad, err)
		}
	}
	if st := e.gw.Stats(); st.Revoked[gateway.CodeSessionRevoked] != 4 {
		t.Errorf("stats %+v, want 4 sessions revoked", st.Revoked)
	}
}

// TestDisconnectIsNotRecovered: a socket disconnected on purpose does not
// get its session back by connection state recovery, even one restored
// before (which the memory adapter keeps until it expires).
func TestDisconnectIsNotRecovered(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		a := e.join("org-1", "user-1", sioclient.Options{})
		first := a.State().SID
		emitTo(t, e, events.InvoiceCreated, "org-1", "", 1)
		a.Next(string(events.InvoiceCreated))
		drop(t, e, a)
		a.Connect()
		if info := a.WaitConnect(); !info.Recovered || info.SID != first {
			t.Fatalf("reconnection %+v, want recovered", info)
		}
		a.Next(gateway.EventConnected)
		sessionKeys := func() string {
			keys, err := e.redis.Do("KEYS", "sio:session:*")
			if err != nil {
				t.Fatal(err)
			}
			return keys
		}
		if e.redis != nil {
			wait.For(t, "the session to be kept in Redis", func() bool { return sessionKeys() != "" })
		}

		res, err := e.gw.Disconnect(context.Background(), gateway.Selector{UserID: "user-1"}, "bye")
		control(t, "disconnect", res, err, 1)
		expectRevoked(t, a, gateway.CodeSessionRevoked, "bye")
		if e.redis != nil {
			// The streams adapter drops the session in Redis from its own
			// goroutine, moments after the disconnection.
			wait.For(t, "the session to be dropped in Redis", func() bool { return sessionKeys() == "" })
		}
		a.Connect()
		if info := a.WaitConnect(); info.Recovered || info.SID == first {
			t.Fatalf("reconnection after the disconnect %+v, want a new socket", info)
		}
		a.Next(gateway.EventConnected)
		if gap := historyGapOf(t, a.Next(gateway.EventHistoryGap)); gap.Reason != "unavailable" {
			t.Errorf("history:gap %+v", gap)
		}
	})
}

// TestRevokeTokenID: the socket holding the token is disconnected, the
// token is refused at connect and at refresh with TOKEN_REVOKED; another
// token of the same user works.
func TestRevokeTokenID(t *testing.T) {
	e := newEnv(t, envOptions{})
	revokedTok := mint(t, testSecret, auth.MintClaims{OrganizationID: "org-1", UserID: "user-1", Extra: map[string]any{"jti": "tok-1"}}, time.Hour)
	otherTok := mint(t, testSecret, auth.MintClaims{OrganizationID: "org-1", UserID: "user-1", Extra: map[string]any{"jti": "tok-2"}}, time.Hour)
	a := e.join("org-1", "user-1", sioclient.Options{Name: "a", Auth: map[string]any{"token": revokedTok}})
	b := e.join("org-1", "user-1", sioclient.Options{Name: "b", Auth: map[string]any{"token": otherTok}})

	res, r, err := e.gw.Revoke(context.Background(), gateway.Revocation{TokenID: "tok-1"}, time.Now().Add(time.Hour))
	control(t, "revoke", res, err, 1)
	if d := time.Until(r.Until); d < time.Hour || d > time.Hour+time.Minute {
		t.Errorf("until %s, want the token's exp plus the leeway", r.Until)
	}
	expectRevoked(t, a, gateway.CodeTokenRevoked, "")
	stillConnected(t, e, b, "org-1", 1)

	c := e.connect(sioclient.Options{Auth: map[string]any{"token": revokedTok}})
	ce := c.WaitConnectError()
	if ce.Message != "Unauthorized: Token revoked" || string(ce.Data) != `{"code":"TOKEN_REVOKED"}` {
		t.Errorf("connect_error %+v", ce)
	}
	var rr refreshResult
	ack(t, b, gateway.EventAuthRefresh, map[string]any{"token": revokedTok}, &rr)
	if rr.OK || rr.Code != gateway.CodeTokenRevoked {
		t.Errorf("refresh with the revoked token: %+v", rr)
	}
	stillConnected(t, e, b, "org-1", 2) // a refused refresh changes nothing

	// Revoking it again changes nothing and disconnects nobody.
	res, _, err = e.gw.Revoke(context.Background(), gateway.Revocation{TokenID: "tok-1"}, time.Time{})
	control(t, "revoke again", res, err, 0)
	if st := e.gw.Stats(); st.Refused[gateway.CodeTokenRevoked] != 1 || st.Revoked[gateway.CodeTokenRevoked] != 1 || st.Revocations != 1 {
		t.Errorf("stats: refused %v, revoked %v, revocations %d", st.Refused, st.Revoked, st.Revocations)
	}
}

// TestRevokeUserTokens: a user's tokens issued before a time are revoked,
// within one organization or everywhere; a token issued after, or another
// organization's, still works; a token without iat counts as older.
func TestRevokeUserTokens(t *testing.T) {
	e := newEnv(t, envOptions{})
	now := time.Now()
	tok := func(org string, iat time.Time) string {
		extra := map[string]any{"iat": iat.Unix()}
		if iat.IsZero() {
			extra["iat"] = nil
		}
		return mint(t, testSecret, auth.MintClaims{OrganizationID: org, UserID: "user-1", Extra: extra}, time.Hour)
	}
	old := tok("org-1", now.Add(-time.Minute))
	fresh := tok("org-1", now.Add(-time.Second))
	oldOther := tok("org-2", now.Add(-time.Minute))
	noIat := tok("org-1", time.Time{})
	a := e.join("org-1", "user-1", sioclient.Options{Name: "old", Auth: map[string]any{"token": old}})
	b := e.join("org-1", "user-1", sioclient.Options{Name: "fresh", Auth: map[string]any{"token": fresh}})
	c := e.join("org-2", "user-1", sioclient.Options{Name: "other-org", Auth: map[string]any{"token": oldOther}})
	d := e.join("org-1", "user-1", sioclient.Options{Name: "no-iat", Auth: map[string]any{"token": noIat}})

	res, _, err := e.gw.Revoke(context.Background(), gateway.Revocation{UserID: "user-1", OrganizationID: "org-1", IssuedBefore: now.Add(-30 * time.Second)}, time.Time{})
	control(t, "revoke", res, err, 2)
	expectRevoked(t, a, gateway.CodeTokenRevoked, "")
	expectRevoked(t, d, gateway.CodeTokenRevoked, "")
	stillConnected(t, e, b, "org-1", 1)
	stillConnected(t, e, c, "org-2", 2)
	if ce := e.connect(sioclient.Options{Auth: map[string]any{"token": old}}).WaitConnectError(); string(ce.Data) != `{"code":"TOKEN_REVOKED"}` {
		t.Errorf("connect_error %+v", ce)
	}

	// Everywhere, up to now: the fresh token too, and the other
	// organization's.
	res, _, err = e.gw.Revoke(context.Background(), gateway.Revocation{UserID: "user-1"}, time.Time{})
	control(t, "revoke everywhere", res, err, 2)
	expectRevoked(t, b, gateway.CodeTokenRevoked, "")
	expectRevoked(t, c, gateway.CodeTokenRevoked, "")

	for _, bad := range []gateway.Revocation{{}, {TokenID: "t", UserID: "u"}, {OrganizationID: "o"}, {UserID: "u", IssuedBefore: now.Add(time.Hour)}} {
		if _, _, err := e.gw.Revoke(context.Background(), bad, time.Time{}); !errors.Is(err, gateway.ErrInvalidRevocation) {
			t.Errorf("Revoke(%+v) = %v, want ErrInvalidRevocation", bad, err)
		}
	}
}

// TestOrganizationRoom: a user made to leave the organization's room no
// longer receives its organization-wide events but still those sent to the
// user; joining again restores them. Delivery still checks the payload's
// organization: nothing of another organization arrives either way.
func TestOrganizationRoom(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	a := e.join("org-1", "user-1", sioclient.Options{Name: "a"})
	other := e.join("org-2", "user-1", sioclient.Options{Name: "other"}) // same user, other organization
	peer := e.join("org-1", "user-2", sioclient.Options{Name: "peer"})

	res, err := e.gw.SetOrganizationRoom(ctx, "org-1", "user-1", false)
	control(t, "leave", res, err, 1)
	res, err = e.gw.SetOrganizationRoom(ctx, "org-1", "user-1", false)
	control(t, "leave again", res, err, 0)
	emitTo(t, e, events.InvoiceCreated, "org-1", "", 1)
	emitTo(t, e, events.NotificationNew, "org-1", "user-1", 2)
	emitTo(t, e, events.InvoiceCreated, "org-2", "", 3)
	expectNames(t, a, events.NotificationNew)
	expectNames(t, other, events.InvoiceCreated)
	expectNames(t, peer, events.InvoiceCreated)

	res, err = e.gw.SetOrganizationRoom(ctx, "org-1", "user-1", true)
	control(t, "join", res, err, 1)
	emitTo(t, e, events.InvoiceCreated, "org-1", "", 4)
	emitTo(t, e, events.InvoiceCreated, "org-2", "", 5)
	expectNames(t, a, events.InvoiceCreated)
	if _, err := e.gw.SetOrganizationRoom(ctx, "", "user-1", true); !errors.Is(err, gateway.ErrInvalidSelector) {
		t.Errorf("no organization: %v", err)
	}
}
