package gateway_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/sioclient"
)

// TestTenancyOfTheDeliveryPath: an organization's event never reaches a
// socket of another organization, whatever room it is sent to, whoever
// sends it (here straight through the namespace, as another node, a Node
// server or a Redis emitter would) and whatever the user ids: user "u1"
// belongs to both organizations, as a user moved from one to the other
// still holding a token of the first would.
func TestTenancyOfTheDeliveryPath(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.join("org-a", "u1", sioclient.Options{Name: "u1@a"})
	b := e.join("org-b", "u1", sioclient.Options{Name: "u1@b", Transports: []string{"polling"}})
	b2 := e.join("org-b", "u2", sioclient.Options{Name: "u2@b"})
	nsp := e.gw.Namespace()
	paid := func(org string, seq int) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"organizationId":%q,"invoiceId":"inv-%d","seq":%d}`, org, seq, seq))
	}

	// The attack, through the publish API: org-a's event targeted at
	// user u1 reaches u1's org-a socket only.
	if _, err := e.svc.Emit(context.Background(), events.InvoicePaid, paid("org-a", 1), events.Target{UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	// Everyone: still only org-a's sockets.
	if _, err := e.svc.Emit(context.Background(), events.InvoicePaid, paid("org-a", 2), events.Target{All: true}); err != nil {
		t.Fatal(err)
	}
	refused := e.gw.Stats().CrossTenantRefused
	// Straight through the namespace, to the other organization's rooms.
	for seq, rooms := range [][]string{
		3: {"org:org-b"},
		4: {"user:u1"},
		5: {"org:org-a", "org:org-b"},
	} {
		if rooms != nil {
			mustEmitEvent(t, nsp.To(rooms...).Emit(string(events.InvoicePaid), paid("org-a", seq)))
		}
	}
	// Without an organization, or with an ambiguous one: nobody.
	dropped := e.gw.Stats().NoTenantDropped
	for _, p := range []string{
		`{"invoiceId":"x","seq":6}`,
		`{"organizationId":"org-b","organizationId":"org-a","invoiceId":"x","seq":7}`,
		`{"organizationId":"","invoiceId":"x","seq":8}`,
		`{"organizationId":42,"invoiceId":"x","seq":9}`,
	} {
		mustEmitEvent(t, nsp.To("org:org-a", "org:org-b").Emit(string(events.InvoicePaid), json.RawMessage(p)))
	}
	// org-b's own event, to org-b: delivered there.
	mustEmitEvent(t, nsp.To("org:org-b").Emit(string(events.InvoicePaid), paid("org-b", 10)))

	expectOnly(t, a, 1, 2, 4, 5)
	expectOnly(t, b, 10)
	expectOnly(t, b2, 10)
	st := e.gw.Stats()
	// Through the namespace: seq 3 (u1@b, u2@b), 4 (u1@b), 5 (both).
	if n := st.CrossTenantRefused - refused; n != 5 {
		t.Errorf("%d cross-organization deliveries refused, want 5", n)
	}
	if n := st.NoTenantDropped - dropped; n != 4 {
		t.Errorf("%d broadcasts without an organization dropped, want 4", n)
	}
}

func mustEmitEvent(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// expectOnly settles c and checks the seqs of the catalog events it
// received since the last check.
func expectOnly(t *testing.T, c *sioclient.Client, want ...int) {
	t.Helper()
	settle(t, c)
	for _, w := range want {
		if got := seqOf(t, c.NextAny()); got != w {
			t.Fatalf("%s received seq %d, want %d", c.Name(), got, w)
		}
	}
	noMoreEvents(t, c)
}

// TestIdentifiersMustBeValidText: Go's JSON decoder turns an unpaired UTF-16
// surrogate into U+FFFD, so "org\ud800" and "org\ud801" would be one tenant.
// Such ids are refused in tokens and in published payloads.
func TestIdentifiersMustBeValidText(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, claims := range []string{
		`{"sub":"u1","orgId":"org\ud800","exp":%d}`,
		`{"sub":"u\udc00","orgId":"org-1","exp":%d}`,
		`{"sub":"u1","orgId":"org\ufffd","exp":%d}`,
	} {
		tok := hs256Token(t, fmt.Sprintf(claims, time.Now().Add(time.Hour).Unix()))
		c := e.connect(sioclient.Options{Auth: map[string]any{"token": tok}})
		ce := c.WaitConnectError()
		if !strings.Contains(string(ce.Data), string(auth.CodeInvalidToken)) {
			t.Errorf("token %s: connect_error %q %s, want %s", claims, ce.Message, ce.Data, auth.CodeInvalidToken)
		}
		c.Close()
	}
	for _, p := range []string{
		`{"organizationId":"org\ud800","invoiceId":"x"}`,
		`{"organizationId":"org-1","userId":"\udfff","invoiceId":"x"}`,
	} {
		_, err := e.svc.Emit(context.Background(), events.InvoicePaid, json.RawMessage(p), events.Target{})
		var ve *events.ValidationError
		if !errors.As(err, &ve) || ve.Code != events.CodeInvalidValue {
			t.Errorf("publish %s: %v, want a validation error %s", p, err, events.CodeInvalidValue)
		}
	}
	if n := e.gw.ConnectionCount(); n != 0 {
		t.Errorf("%d sockets connected", n)
	}
}

// hs256Token signs raw claims JSON with the test secret, byte for byte (a
// Go string cannot hold an unpaired surrogate, a JSON escape can).
func hs256Token(t *testing.T, claims string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}
