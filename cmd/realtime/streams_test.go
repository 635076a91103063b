package main

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/internal/faultproxy"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
)

// TestStreamsClusterRecovery runs realtime processes over one
// redis-server in streams mode with RECOVERY_WINDOW, behind a load
// balancer (a TCP proxy), with a socket.io-client on default transports
// (polling, then the upgrade). The node the client is on is killed with
// SIGKILL, so it persists nothing at the disconnection: the client
// reconnects to another node and recovers the same socket, with every
// invoice published meanwhile, once, in order. Then every node is
// replaced (SIGTERM, new processes) while events are published, and the
// client recovers again.
func TestStreamsClusterRecovery(t *testing.T) {
	const secret = "streams-secret-0123456789abcdef"
	const key = "streams-key-0123456789abcdef"
	rds := redistest.Start(t)
	env := baseEnv("JWT_SECRET", secret, "API_KEYS", key, "REDIS_URL", rds.URL(),
		"REDIS_ADAPTER_MODE", "streams", "RECOVERY_WINDOW", "1m")
	a, b, c := startServer(t, env), startServer(t, env), startServer(t, env)
	for _, s := range []*server{a, b, c} {
		waitReady(t, s, http.StatusOK)
		s.waitLog(`"msg":"connection state recovery across nodes (Redis streams)"`)
	}
	lb, err := faultproxy.New(strings.TrimPrefix(a.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lb.Close() })

	tok, err := auth.Mint(secret, auth.MintClaims{UserID: "u1", OrganizationID: "org-s"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d := sioclient.Start(t)
	d.Timeout = 30 * time.Second
	cl := d.Connect("http://"+lb.Addr()+"/events", sioclient.Options{
		Auth: map[string]any{"token": tok}, ReconnectionDelay: 100, ReconnectionDelayMax: 300,
	})
	first := cl.WaitConnect()
	cl.Next("connected")

	publish := func(s *server, invoice string) {
		t.Helper()
		body := fmt.Sprintf(`{"event":"invoice:created","payload":{"organizationId":"org-s","invoiceId":%q}}`, invoice)
		req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("publish %s on %s: %s", invoice, s.url, resp.Status)
		}
	}
	next := 0
	received := func(upTo int) {
		t.Helper()
		for ; next < upTo; next++ {
			ev := cl.Next("invoice:created")
			if want := fmt.Sprintf(`"invoiceId":"inv-%d"`, next); !strings.Contains(string(ev.Args[0]), want) {
				t.Fatalf("got %s, want inv-%d", ev, next)
			}
		}
	}
	recovered := func(step string) {
		t.Helper()
		info := cl.WaitReconnect()
		if !info.Recovered || info.SID != first.SID {
			t.Fatalf("%s: reconnection %+v, want recovered with sid %s", step, info, first.SID)
		}
	}
	publish(b, "inv-0")
	received(1)

	// kill -9 the client's node; invoices are published while the client
	// is held away, then it reaches node c.
	lb.Refuse(time.Hour)
	lb.SetTarget(strings.TrimPrefix(c.url, "http://"))
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.done
	cl.WaitDisconnect()
	for i := 1; i <= 5; i++ {
		publish(b, fmt.Sprintf("inv-%d", i))
	}
	lb.Refuse(0)
	recovered("after kill -9")
	publish(c, "inv-6")
	received(7)

	// Every node replaced: b and c stop (the client's node last), a new
	// node starts, an invoice is published while the client is away.
	b.stop()
	lb.Refuse(time.Hour)
	c.stop()
	cl.WaitDisconnect()
	e := startServer(t, env)
	waitReady(t, e, http.StatusOK)
	publish(e, "inv-7")
	lb.SetTarget(strings.TrimPrefix(e.url, "http://"))
	lb.Refuse(0)
	recovered("after every node was replaced")
	publish(e, "inv-8")
	received(9)
	cl.NoEvent("invoice:created", 300*time.Millisecond)
	cl.Close()
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-e.done
}
