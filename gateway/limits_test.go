package gateway_test

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/internal/testutil/sioclient"
)

// refusedCode connects with o and returns the connect_error code.
func refusedCode(t *testing.T, e *env, o sioclient.Options) string {
	t.Helper()
	c := e.connect(o)
	ce := c.WaitConnectError()
	c.Close()
	var data struct{ Code string }
	if err := json.Unmarshal(ce.Data, &data); err != nil {
		t.Fatalf("connect_error %+v: %v", ce, err)
	}
	return data.Code
}

// TestConnectionCaps: connections beyond the cap of a user, an organization
// or an address are refused with TOO_MANY_CONNECTIONS, and counted; a
// disconnection makes room again.
func TestConnectionCaps(t *testing.T) {
	e := newEnv(t, envOptions{maxPerUser: 2, maxPerOrg: 3, maxPerAddress: -1})
	a1 := e.join("org-1", "u1", sioclient.Options{})
	e.join("org-1", "u1", sioclient.Options{})
	// A third tab of u1.
	if code := refusedCode(t, e, sioclient.Options{Auth: map[string]any{"token": e.token("org-1", "u1", time.Hour)}}); code != string(gateway.CodeTooManyConnections) {
		t.Fatalf("third connection of a user: code %q", code)
	}
	// The same user id in another organization is another user.
	e.join("org-2", "u1", sioclient.Options{})
	// The organization's cap.
	e.join("org-1", "u2", sioclient.Options{})
	if code := refusedCode(t, e, sioclient.Options{Auth: map[string]any{"token": e.token("org-1", "u3", time.Hour)}}); code != string(gateway.CodeTooManyConnections) {
		t.Fatalf("fourth connection of an organization: code %q", code)
	}
	// A disconnection makes room.
	a1.Disconnect()
	waitFor(t, "the disconnection to be counted", func() bool { return e.gw.ConnectionCount() == 3 })
	e.join("org-1", "u3", sioclient.Options{})
	if n := e.gw.Stats().Refused[gateway.CodeTooManyConnections]; n != 2 {
		t.Errorf("%d refusals counted, want 2", n)
	}
}

// TestConnectionCapPerAddress: the address cap counts the TCP peer, or,
// behind a trusted proxy, the client address it forwards; X-Forwarded-For
// from anyone else is not believed.
func TestConnectionCapPerAddress(t *testing.T) {
	forwarded := func(addr string) sioclient.Options {
		return sioclient.Options{Transports: []string{"polling"}, ExtraHeaders: map[string]string{"X-Forwarded-For": addr}}
	}
	t.Run("untrusted", func(t *testing.T) {
		e := newEnv(t, envOptions{maxPerAddress: 1})
		e.join("org-1", "u1", forwarded("198.51.100.1"))
		o := forwarded("198.51.100.2") // a forged header changes nothing
		o.Auth = map[string]any{"token": e.token("org-1", "u2", time.Hour)}
		if code := refusedCode(t, e, o); code != string(gateway.CodeTooManyConnections) {
			t.Fatalf("second connection from 127.0.0.1: code %q", code)
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		e := newEnv(t, envOptions{maxPerAddress: 1, trustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		e.join("org-1", "u1", forwarded("198.51.100.1"))
		e.join("org-1", "u2", forwarded("10.1.1.1, 198.51.100.2")) // the last untrusted hop counts
		o := forwarded("198.51.100.1")
		o.Auth = map[string]any{"token": e.token("org-1", "u3", time.Hour)}
		if code := refusedCode(t, e, o); code != string(gateway.CodeTooManyConnections) {
			t.Fatalf("second connection of 198.51.100.1: code %q", code)
		}
	})
}
