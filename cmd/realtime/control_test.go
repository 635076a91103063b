package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
)

// TestClusterControl runs the control API across realtime processes over
// one redis-server: a disconnect and a revocation asked of one node act on
// another's clients, and a node started after the revocation refuses the
// token (it read it from Redis).
func TestClusterControl(t *testing.T) {
	const secret = "cluster-secret-0123456789abcdef"
	const key = "cluster-key-0123456789abcdef"
	rds := redistest.Start(t)
	env := baseEnv("JWT_SECRET", secret, "API_KEYS", key, "REDIS_URL", rds.URL())
	a := startServer(t, env)
	b := startServer(t, env)
	waitReady(t, a, http.StatusOK)
	waitReady(t, b, http.StatusOK)

	token := func(user string) string {
		tok, err := auth.Mint(secret, auth.MintClaims{UserID: user, OrganizationID: "org-c",
			Extra: map[string]any{"iat": time.Now().Add(-time.Minute).Unix()}}, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	d := sioclient.Start(t)
	join := func(s *server, tok string) *sioclient.Client {
		c := d.Connect(s.url+"/events", sioclient.Options{Auth: map[string]any{"token": tok}, Transports: []string{"websocket"}})
		c.WaitConnect()
		c.Next("connected")
		return c
	}
	expectRevoked := func(c *sioclient.Client, code string) {
		t.Helper()
		ev := c.Next("session:revoked")
		if !strings.Contains(string(ev.Args[0]), `"code":"`+code+`"`) {
			t.Errorf("session:revoked %s, want code %s", ev.Args[0], code)
		}
		if r := c.WaitDisconnect(); r != "io server disconnect" {
			t.Errorf("disconnected with %q", r)
		}
	}
	ctx := context.Background()

	onB := join(b, token("u1"))
	res, err := apiclient.New(a.url, key).DisconnectUser(ctx, "u1", "org-c", "removed")
	if err != nil || res.Sockets != 1 || res.Nodes != 2 || !res.Complete {
		t.Fatalf("disconnect through A: %+v, %v", res, err)
	}
	expectRevoked(onB, "SESSION_REVOKED")

	revokedTok := token("u2")
	onA := join(a, revokedTok)
	rev, err := apiclient.New(b.url, key).Revoke(ctx, apiclient.RevocationRequest{UserID: "u2"})
	if err != nil || rev.Sockets != 1 || rev.Nodes != 2 {
		t.Fatalf("revoke through B: %+v, %v", rev, err)
	}
	expectRevoked(onA, "TOKEN_REVOKED")

	c := startServer(t, env)
	waitReady(t, c, http.StatusOK)
	late := d.Connect(c.url+"/events", sioclient.Options{Auth: map[string]any{"token": revokedTok}, Transports: []string{"websocket"}})
	if ce := late.WaitConnectError(); string(ce.Data) != `{"code":"TOKEN_REVOKED"}` {
		t.Errorf("a node started after the revocation: connect_error %+v", ce)
	}

	resp, err := http.Get(b.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`realtime_control_requests_total{operation="revoke",result="ok"} 1`, `realtime_token_revocations 1`} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("B's metrics lack %s", want)
		}
	}
	a.stop()
	b.stop()
	c.stop()
}
