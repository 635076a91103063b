package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/internal/wsframe"
)

// TestTokenSources connects with the token in each place a client can put
// it, and with several at once, and checks who the socket is and where the
// gateway took the token from: auth beats header beats query, and a bad
// token in a higher place is not rescued by a good one below it.
func TestTokenSources(t *testing.T) {
	e := newEnv(t, envOptions{})
	tokA := e.token("org-a", "user-a", time.Hour)
	tokB := e.token("org-b", "user-b", time.Hour)
	tokC := e.token("org-c", "user-c", time.Hour)
	badSig := mint(t, "another-secret-another-secret-0123", auth.MintClaims{OrganizationID: "org-x", UserID: "user-x"}, time.Hour)

	tests := []struct {
		name    string
		auth    map[string]any
		header  string
		query   string
		user    string      // "" means refused
		source  auth.Source // when accepted
		message string      // when refused
	}{
		{name: "auth", auth: map[string]any{"token": tokA}, user: "user-a", source: auth.SourceAuth},
		{name: "auth with Bearer prefix", auth: map[string]any{"token": "Bearer " + tokA}, user: "user-a", source: auth.SourceAuth},
		{name: "header", header: "Bearer " + tokB, user: "user-b", source: auth.SourceHeader},
		{name: "header lowercase scheme", header: "bearer " + tokB, user: "user-b", source: auth.SourceHeader},
		{name: "query", query: tokC, user: "user-c", source: auth.SourceQuery},
		{name: "auth beats header and query", auth: map[string]any{"token": tokA}, header: "Bearer " + tokB, query: tokC, user: "user-a", source: auth.SourceAuth},
		{name: "header beats query", header: "Bearer " + tokB, query: tokC, user: "user-b", source: auth.SourceHeader},
		{name: "empty auth token falls through", auth: map[string]any{"token": ""}, header: "Bearer " + tokB, user: "user-b", source: auth.SourceHeader},
		{name: "null auth token falls through", auth: map[string]any{"token": nil}, query: tokC, user: "user-c", source: auth.SourceQuery},
		{name: "non-bearer header falls through", header: "Basic dXNlcjpwYXNz", query: tokC, user: "user-c", source: auth.SourceQuery},
		{name: "bad auth token is not rescued by header", auth: map[string]any{"token": badSig}, header: "Bearer " + tokB, message: "Unauthorized: Invalid token"},
		{name: "bad header token is not rescued by query", header: "Bearer " + badSig, query: tokC, message: "Unauthorized: Invalid token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := sioclient.Options{Auth: tc.auth}
			if tc.header != "" {
				// Custom headers only exist on polling requests (and in Node's
				// WebSocket handshake); use polling so the test means the same
				// thing in a browser.
				o.ExtraHeaders = map[string]string{"Authorization": tc.header}
				o.Transports = []string{"polling"}
			}
			if tc.query != "" {
				o.Query = map[string]string{"token": tc.query}
			}
			c := e.connect(o)
			if tc.user == "" {
				ce := c.WaitConnectError()
				if ce.Message != tc.message {
					t.Fatalf("connect_error %q, want %q", ce.Message, tc.message)
				}
				return
			}
			info := c.WaitConnect()
			got := connectedOf(t, c.Next(gateway.EventConnected))
			if got.UserID != tc.user || got.Message != gateway.ConnectedMessage {
				t.Fatalf("connected %+v, want user %s", got, tc.user)
			}
			s, ok := e.gw.Namespace().Socket(info.SID)
			if !ok {
				t.Fatalf("socket %s not found on the server", info.SID)
			}
			id, ok := gateway.IdentityOf(s)
			if !ok || id.UserID != tc.user || id.TokenSource != tc.source {
				t.Fatalf("identity %+v (ok %t), want user %s from %s", id, ok, tc.user, tc.source)
			}
			c.Close()
		})
	}
}

// TestConnectFailures checks every refusal: its connect_error message and
// data.code, and that the socket joined nothing.
func TestConnectFailures(t *testing.T) {
	e := newEnv(t, envOptions{})
	past := time.Now().Add(-2 * time.Minute).Unix() // beyond the 30 s leeway
	tests := []struct {
		name    string
		auth    map[string]any
		header  string
		message string
		code    auth.Code
	}{
		{name: "no token", message: "Unauthorized: No token provided", code: auth.CodeNoToken},
		{name: "empty bearer header", header: "Bearer", message: "Unauthorized: No token provided", code: auth.CodeNoToken},
		{name: "garbage", auth: map[string]any{"token": "not-a-jwt"}, message: "Unauthorized: Invalid token", code: auth.CodeInvalidToken},
		{name: "wrong secret", auth: map[string]any{"token": mint(t, "wrong-secret-wrong-secret-0123456789", auth.MintClaims{OrganizationID: "o", UserID: "u"}, time.Hour)},
			message: "Unauthorized: Invalid token", code: auth.CodeInvalidToken},
		{name: "alg none", auth: map[string]any{"token": unsignedToken(map[string]any{"sub": "u", "orgId": "o", "exp": time.Now().Add(time.Hour).Unix()})},
			message: "Unauthorized: Invalid token", code: auth.CodeInvalidToken},
		{name: "non-string auth token", auth: map[string]any{"token": 42}, message: "Unauthorized: Invalid token", code: auth.CodeInvalidToken},
		{name: "expired", auth: map[string]any{"token": mint(t, testSecret, auth.MintClaims{OrganizationID: "o", UserID: "u", Extra: map[string]any{"exp": past}}, time.Hour)},
			message: "Unauthorized: Token expired", code: auth.CodeTokenExpired},
		{name: "no organization", auth: map[string]any{"token": mint(t, testSecret, auth.MintClaims{UserID: "u"}, time.Hour)},
			message: "Unauthorized: Token has no organization", code: auth.CodeNoOrganization},
		{name: "no user", auth: map[string]any{"token": mint(t, testSecret, auth.MintClaims{OrganizationID: "o"}, time.Hour)},
			message: "Unauthorized: Token has no user", code: auth.CodeNoUser},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := sioclient.Options{Auth: tc.auth}
			if tc.header != "" {
				o.ExtraHeaders = map[string]string{"Authorization": tc.header}
				o.Transports = []string{"polling"}
			}
			c := e.connect(o)
			ce := c.WaitConnectError()
			var data struct {
				Code auth.Code `json:"code"`
			}
			if err := json.Unmarshal(ce.Data, &data); err != nil {
				t.Fatalf("connect_error data %s: %v", ce.Data, err)
			}
			if ce.Message != tc.message || data.Code != tc.code {
				t.Fatalf("connect_error %q data %s, want %q code %s", ce.Message, ce.Data, tc.message, tc.code)
			}
			c.NoEvent(gateway.EventConnected, 50*time.Millisecond)
			c.Close()
		})
	}
	if n := e.gw.ConnectionCount(); n != 0 {
		t.Errorf("%d sockets connected after refusals", n)
	}
}

// TestAuthUnavailable: with a JWKS that cannot be fetched, a connection is
// refused with a message that does not log the user out.
func TestAuthUnavailable(t *testing.T) {
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(jwks.Close) // after the verifier's cleanup, which stops its refreshes
	e := newEnv(t, envOptions{authConfig: auth.Config{JWKSURL: jwks.URL, JWKSMinRefreshInterval: 20 * time.Millisecond, JWKSRefreshInterval: time.Hour}})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "u", "orgId": "o", "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k1"
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	c := e.connect(sioclient.Options{Auth: map[string]any{"token": signed}})
	ce := c.WaitConnectError()
	if ce.Message != auth.CodeAuthUnavailable.Message() || !strings.Contains(string(ce.Data), `"AUTH_UNAVAILABLE"`) {
		t.Fatalf("connect_error %q data %s", ce.Message, ce.Data)
	}
}

// unsignedToken builds an alg "none" JWT.
func unsignedToken(claims map[string]any) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]any{"alg": "none", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "."
}

// TestOtherNamespacesRefused: "/" (which every Socket.IO server has) and
// unknown namespaces answer "Invalid namespace", even with a valid token.
func TestOtherNamespacesRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok := e.token("org-1", "user-1", time.Hour)
	for _, nsp := range []string{"/", "/admin", "/events2"} {
		t.Run(nsp, func(t *testing.T) {
			c := e.d.Connect(e.url+nsp, sioclient.Options{Auth: map[string]any{"token": tok}, Reconnection: ptr(false)})
			ce := c.WaitConnectError()
			if ce.Message != "Invalid namespace" || string(ce.Data) != "null" {
				t.Fatalf("connect_error %q data %s, want \"Invalid namespace\" without data", ce.Message, ce.Data)
			}
			c.Close()
		})
	}
	// The gateway namespace still works on the same server.
	e.join("org-1", "user-1", sioclient.Options{})
}

// TestConnectedAndRooms checks the connected payload and the rooms joined.
func TestConnectedAndRooms(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok := e.token("org-1", "user-1", time.Hour)
	c := e.connect(sioclient.Options{Auth: map[string]any{"token": tok}, Transports: []string{"websocket"}})
	info := c.WaitConnect()
	got := connectedOf(t, c.Next(gateway.EventConnected))
	if got.Message != "Successfully connected to real-time updates" || got.UserID != "user-1" || got.OrganizationID != "org-1" {
		t.Errorf("connected = %+v", got)
	}
	exp, err := time.Parse(time.RFC3339, got.ExpiresAt)
	if err != nil || time.Until(exp) < 59*time.Minute || time.Until(exp) > time.Hour {
		t.Errorf("connected expiresAt = %q (%v), want about an hour from now", got.ExpiresAt, err)
	}
	s, ok := e.gw.Namespace().Socket(info.SID)
	if !ok {
		t.Fatal("socket not on the server")
	}
	if !s.In("org:org-1") || !s.In("user:user-1") || len(s.Rooms()) != 3 {
		t.Errorf("rooms = %v, want own id, org:org-1, user:user-1", s.Rooms())
	}
	if e.gw.Namespace().RoomSize("org:org-1") != 1 || e.gw.Namespace().RoomSize("user:user-1") != 1 {
		t.Error("room sizes are not 1")
	}
	c.Close()
	wait.For(t, "the socket to leave its rooms", func() bool { return e.gw.Namespace().RoomSize("org:org-1") == 0 })
}

// TestLogsNeverContainTokens: refused and accepted connections are logged,
// with the query string redacted and without the token anywhere.
func TestLogsNeverContainTokens(t *testing.T) {
	e := newEnv(t, envOptions{})
	expired := mint(t, testSecret, auth.MintClaims{OrganizationID: "o", UserID: "u", Extra: map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}}, time.Hour)
	c := e.connect(sioclient.Options{Query: map[string]string{"token": expired}, Transports: []string{"polling"}})
	c.WaitConnectError()
	good := e.token("org-1", "user-1", time.Hour)
	e.join("org-1", "user-1", sioclient.Options{Query: map[string]string{"token": good}})

	logs := e.logs.String()
	for _, tok := range []string{expired, good} {
		// The signature is what makes a token a credential.
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		if strings.Contains(logs, sig) {
			t.Fatalf("logs contain a token:\n%s", logs)
		}
	}
	for _, want := range []string{"connection refused", "code=TOKEN_EXPIRED", "tokenSource=query", "token=eyJhbG…", "client connected", "userId=user-1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// TestConnectedSocketForgetsItsToken: a connected socket keeps neither its
// bearer token (auth, query or header) nor what a client padded its CONNECT
// payload or headers with: it lives for days, and FetchSockets shows it.
func TestConnectedSocketForgetsItsToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		name string
		opts sioclient.Options
		auth string
	}{
		{"auth", sioclient.Options{Auth: map[string]any{"token": e.token("org-1", "user-1", time.Hour), "app": "web"}}, `{"app":"web"}`},
		{"query", sioclient.Options{Query: map[string]string{"token": e.token("org-1", "user-2", time.Hour)}}, `{}`},
		{"header", sioclient.Options{ExtraHeaders: map[string]string{"Authorization": "Bearer " + e.token("org-1", "user-3", time.Hour), "X-Padding": strings.Repeat("p", 4000)}}, `{}`},
		{"padded auth", sioclient.Options{Auth: map[string]any{"token": e.token("org-1", "user-4", time.Hour), "pad": strings.Repeat("p", 100_000)}}, `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Transports = []string{"polling"} // extra headers reach the server on every transport
			c := e.connect(tc.opts)
			info := c.WaitConnect()
			s, ok := e.gw.Namespace().Socket(info.SID)
			if !ok {
				t.Fatal("socket not on the server")
			}
			h := s.Handshake()
			if string(h.Auth) != tc.auth || strings.Contains(h.URL, "eyJhbGciOiJIUzI1NiIs") {
				t.Errorf("handshake keeps credentials: auth %.80s, url %s", h.Auth, h.URL)
			}
			// Only the headers the gateway reads are kept, and not the token.
			if h.Header.Get("Authorization") != "" || h.Header.Get("X-Padding") != "" || h.Header.Get("Host") == "" {
				t.Errorf("handshake headers kept: %q", h.Header)
			}
			c.Close()
		})
	}
}

// TestRefusalsCannotFloodTheLog is the log flood of issue 12: one
// WebSocket with a 250 KB query sending 400 CONNECTs without a token wrote
// 95 MiB of log in under two seconds. The connection is now closed after
// a few refusals, and the log lines that remain are short.
func TestRefusalsCannotFloodTheLog(t *testing.T) {
	e := newEnv(t, envOptions{})
	before := len(e.logs.String())
	addr := strings.TrimPrefix(e.url, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := (&wsframe.Dialer{}).Dial(ctx, "ws://"+addr+"/socket.io/?EIO=4&transport=websocket&junk="+strings.Repeat("x", 250_000))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, _, err := conn.ReadMessage(nil); err != nil { // the open packet
		t.Fatal(err)
	}
	go func() {
		for range 400 {
			if conn.WriteText([]byte("40/events,{}")) != nil {
				return
			}
		}
	}()
	refusals := 0
	_ = conn.NetConn().SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		p, _, err := conn.ReadMessage(nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after %d refusals", refusals)
			}
			break
		}
		if strings.HasPrefix(string(p), "44/events,") {
			refusals++
		}
	}
	if refusals != 5 {
		t.Errorf("%d refusals before the connection closed, want 5", refusals)
	}
	if n := len(e.logs.String()) - before; n > 8<<10 {
		t.Errorf("%d bytes of log for one abusive connection", n)
	}
	if n := e.gw.Stats().Refused[auth.CodeNoToken]; n != 5 {
		t.Errorf("%d refusals counted, want 5", n)
	}
}
