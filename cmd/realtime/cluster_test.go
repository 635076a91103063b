package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
)

// TestCluster runs two realtime processes over one redis-server, as a
// deployment behind a load balancer would: an event published on either
// node reaches the clients of both; while Redis is down each node keeps
// serving its own clients, reports not-ready, and answers a publish with
// 503 cluster_unavailable; once Redis is back, cross-node delivery resumes.
func TestCluster(t *testing.T) {
	const secret = "cluster-secret-0123456789abcdef"
	const key = "cluster-key-0123456789abcdef"
	rds := redistest.Start(t)
	env := baseEnv("JWT_SECRET", secret, "API_KEYS", key, "REDIS_URL", rds.URL())
	a := startServer(t, env)
	b := startServer(t, env)
	waitReady(t, a, http.StatusOK)
	waitReady(t, b, http.StatusOK)

	tok, err := auth.Mint(secret, auth.MintClaims{UserID: "u1", OrganizationID: "org-c"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d := sioclient.Start(t)
	onA := d.Connect(a.url+"/events", sioclient.Options{Auth: map[string]any{"token": tok}, Transports: []string{"websocket"}})
	onB := d.Connect(b.url+"/events", sioclient.Options{Auth: map[string]any{"token": tok}, Transports: []string{"websocket"}})
	onA.WaitConnect()
	onB.WaitConnect()
	onA.Next("connected")
	onB.Next("connected")

	emit := func(srv *server, invoice string) (string, int) {
		t.Helper()
		out, stderr, code := runCLI(t, baseEnv("API_KEYS", key), "emit", "invoice:created", "--url", srv.url,
			"--org", "org-c", "--data", `{"invoiceId":"`+invoice+`"}`)
		return out + stderr, code
	}
	received := func(c *sioclient.Client, invoice string) {
		t.Helper()
		ev := c.Next("invoice:created")
		if !strings.Contains(string(ev.Args[0]), `"invoiceId":"`+invoice+`"`) {
			t.Fatalf("%s received %s, want invoice %s", c.Name(), ev.Args[0], invoice)
		}
	}

	// Published on B, delivered on both nodes.
	if out, code := emit(b, "inv-1"); code != 0 {
		t.Fatalf("emit on B: exit %d: %s", code, out)
	}
	received(onA, "inv-1")
	received(onB, "inv-1")

	// Redis down: local delivery goes on, the answer says it was local only.
	rds.Kill()
	waitReady(t, a, http.StatusServiceUnavailable)
	waitReady(t, b, http.StatusServiceUnavailable)
	out, code := emit(b, "inv-2")
	if code == 0 || !strings.Contains(out, "cluster_unavailable") {
		t.Fatalf("emit on B with Redis down: exit %d: %s", code, out)
	}
	received(onB, "inv-2")
	onA.NoEvent("invoice:created", 300*time.Millisecond)

	// Redis back: both nodes resubscribe and cross-node delivery resumes.
	rds.Restart()
	waitReady(t, a, http.StatusOK)
	waitReady(t, b, http.StatusOK)
	if out, code := emit(a, "inv-3"); code != 0 {
		t.Fatalf("emit on A after the restart: exit %d: %s", code, out)
	}
	received(onA, "inv-3")
	received(onB, "inv-3")

	onA.Close()
	onB.Close()
	a.stop()
	b.stop()
}

// waitReady polls /readyz until it answers status.
func waitReady(t *testing.T, s *server, status int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz never answered %d (last: %v %v)", s.url, status, resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
