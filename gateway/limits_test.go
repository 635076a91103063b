package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
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
	wait.For(t, "the disconnection to be counted", func() bool { return e.gw.ConnectionCount() == 3 })
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
	// An IPv6 host picks its address within its /64 at will (privacy
	// addresses): the cap counts the /64, or it would count nothing. An
	// IPv4 address is one address however it is written.
	t.Run("address forms", func(t *testing.T) {
		e := newEnv(t, envOptions{maxPerAddress: 1, trustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		for i, pair := range [][2]string{
			{"2001:db8:1:2::1", "2001:db8:1:2:a:b:c:d"},
			{"198.51.100.7", "::ffff:198.51.100.7"},
		} {
			e.join("org-1", "first"+strconv.Itoa(i), forwarded(pair[0]))
			o := forwarded(pair[1])
			o.Auth = map[string]any{"token": e.token("org-1", "second"+strconv.Itoa(i), time.Hour)}
			if code := refusedCode(t, e, o); code != string(gateway.CodeTooManyConnections) {
				t.Errorf("%s after %s: code %q, want %s", pair[1], pair[0], code, gateway.CodeTooManyConnections)
			}
		}
		e.join("org-1", "other", forwarded("2001:db8:1:3::1")) // another network
	})
	// Some proxies write the client's port too: the address is what counts.
	t.Run("with a port", func(t *testing.T) {
		e := newEnv(t, envOptions{maxPerAddress: 1, trustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}})
		for i, pair := range [][2]string{
			{"198.51.100.1:5678", "198.51.100.1"},
			{"[2001:db8:1:2::1]:443", "2001:db8:1:2::5"},
			{"[2001:db8:1:4::1]", "2001:db8:1:4::1"},
			{"198.51.100.2, 10.0.0.1:80", "198.51.100.2:1234"}, // a trusted hop with a port is skipped
		} {
			e.join("org-1", "first"+strconv.Itoa(i), forwarded(pair[0]))
			o := forwarded(pair[1])
			o.Auth = map[string]any{"token": e.token("org-1", "second"+strconv.Itoa(i), time.Hour)}
			if code := refusedCode(t, e, o); code != string(gateway.CodeTooManyConnections) {
				t.Errorf("%s after %s: code %q, want %s", pair[1], pair[0], code, gateway.CodeTooManyConnections)
			}
		}
		e.join("org-1", "other", forwarded("198.51.100.3:5678")) // another client
	})
}

// TestConnectionCapForwardedOnSeveralLines: a proxy may add its own
// X-Forwarded-For line after the one the client sent (HAProxy's option
// forwardfor does) rather than append to it; the lines are one list
// (RFC 9110 section 5.3), and the hop the trusted proxy wrote is at its
// end. A client cannot choose its address by sending the first line.
func TestConnectionCapForwardedOnSeveralLines(t *testing.T) {
	e := newEnv(t, envOptions{maxPerAddress: 1, trustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	e.join("org-1", "u1", sioclient.Options{Transports: []string{"polling"}, ExtraHeaders: map[string]string{"X-Forwarded-For": "198.51.100.1"}})

	// Client 198.51.100.1 again, which forged a first line.
	reply := rawPollingConnect(t, e, e.token("org-1", "u2", time.Hour), "198.51.100.9", "198.51.100.1")
	if !strings.Contains(reply, string(gateway.CodeTooManyConnections)) {
		t.Fatalf("second connection of 198.51.100.1, with a forged first X-Forwarded-For line: %q, want %s", reply, gateway.CodeTooManyConnections)
	}
}

// rawPollingConnect opens a polling session whose handshake carries one
// X-Forwarded-For line per forwarded value, connects to the gateway's
// namespace with token, and returns the CONNECT reply (or refusal).
func rawPollingConnect(t *testing.T, e *env, token string, forwarded ...string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	base := e.url + "/socket.io/?EIO=4&transport=polling"
	do := func(method, url, body string) string {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header["X-Forwarded-For"] = forwarded
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %q (%v)", method, url, resp.StatusCode, b, err)
		}
		return string(b)
	}
	open := do(http.MethodGet, base, "")
	var hs struct{ SID string }
	if !strings.HasPrefix(open, "0") || json.Unmarshal([]byte(open[1:]), &hs) != nil || hs.SID == "" {
		t.Fatalf("handshake: %q", open)
	}
	url := base + "&sid=" + hs.SID
	do(http.MethodPost, url, "40"+gateway.DefaultNamespace+`,{"token":"`+token+`"}`)
	for range 10 { // the CONNECT reply or the refusal, after any other packet
		for _, p := range strings.Split(do(http.MethodGet, url, ""), "\x1e") {
			if strings.HasPrefix(p, "40"+gateway.DefaultNamespace) || strings.HasPrefix(p, "44"+gateway.DefaultNamespace) {
				return p
			}
		}
	}
	t.Fatal("no CONNECT reply")
	return ""
}

// TestConnectionCountsReleasedOnEarlyClose: a socket disconnected as soon
// as it is connected, before the gateway's connection handler ran (here by
// disconnectSockets on its user's room, hammered from another goroutine,
// as an operator or another node may do at any moment), must leave the
// caps' counts as they were: a count taken without its release would
// refuse the user's connections for good once it reaches the cap.
func TestConnectionCountsReleasedOnEarlyClose(t *testing.T) {
	e := newEnv(t, envOptions{})
	nsp := e.gw.Server().Of(gateway.DefaultNamespace)
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { // also when the test fails midway
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = nsp.In(events.UserRoom("u1")).DisconnectSockets(context.Background(), true)
			runtime.Gosched()
		}
	}()
	const iterations = 200
	tok := e.token("org-1", "u1", time.Hour)
	for range iterations {
		c := e.connect(sioclient.Options{Auth: map[string]any{"token": tok}, Transports: []string{"websocket"}})
		c.WaitDisconnect()
		c.Close()
	}
	close(stop)
	<-done
	wait.For(t, "every socket gone", func() bool { return e.gw.ConnectionCount() == 0 })
	if a, u, o := gateway.CapCounts(e.gw); a != 0 || u != 0 || o != 0 {
		t.Fatalf("after %d connections closed early, the caps still count %d per address, %d per user, %d per organization", iterations, a, u, o)
	}
}
