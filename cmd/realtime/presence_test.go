package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/webhook"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
)

// hookReceiver is the application's webhook endpoint in the tests: it
// verifies each request's signature and keeps the events.
type hookReceiver struct {
	secret string

	mu      sync.Mutex
	events  []webhook.Event
	badSigs int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if webhook.Verify(h.secret, r.Header.Get(webhook.SignatureHeader), body, 0, time.Now()) != nil {
		h.badSigs++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var b webhook.Body
	if json.Unmarshal(body, &b) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.events = append(h.events, b.Events...)
	w.WriteHeader(http.StatusNoContent)
}

// count returns how many events of a type were received for a user.
func (h *hookReceiver) count(typ, user string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.events {
		if e.Type == typ && e.UserID == user {
			n++
		}
	}
	return n
}

// TestPresenceAcrossNodes runs three realtime processes over one
// redis-server, with webhooks to a test receiver: presence is the same
// from every node (HTTP and client event), changes reach the watching
// sockets of the organization once, and when a node is killed with
// SIGKILL its users disappear within PRESENCE_TTL and those only there
// are reported as left (to the watchers and the webhook).
func TestPresenceAcrossNodes(t *testing.T) {
	const secret = "presence-secret-0123456789abcdef"
	const key = "presence-key-0123456789abcdef"
	const hookSecret = "whsec_presence_0123456789"
	const ttl = 2 * time.Second
	rds := redistest.Start(t)
	hooks := &hookReceiver{secret: hookSecret}
	recv := httptest.NewServer(hooks)
	t.Cleanup(recv.Close)
	env := baseEnv("JWT_SECRET", secret, "API_KEYS", key, "REDIS_URL", rds.URL(),
		"PRESENCE_TTL", ttl.String(), "PRESENCE_GRACE", "300ms",
		"WEBHOOK_URL", recv.URL+"/hooks/realtime", "WEBHOOK_SECRET", hookSecret, "WEBHOOK_BATCH_WAIT", "50ms")
	a, b, c := startServer(t, env), startServer(t, env), startServer(t, env)
	for _, s := range []*server{a, b, c} {
		waitReady(t, s, http.StatusOK)
	}

	d := sioclient.Start(t)
	connect := func(s *server, org, user string) *sioclient.Client {
		t.Helper()
		tok, err := auth.Mint(secret, auth.MintClaims{UserID: user, OrganizationID: org}, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cl := d.Connect(s.url+"/events", sioclient.Options{Auth: map[string]any{"token": tok}, Transports: []string{"websocket"}})
		cl.WaitConnect()
		cl.Next("connected")
		return cl
	}
	presenceAck := func(cl *sioclient.Client, req any) (ack struct {
		Success  bool   `json:"success"`
		Code     string `json:"code"`
		Watching bool   `json:"watching"`
		apiclient.Presence
	}) {
		t.Helper()
		args, err := cl.EmitWithAck(5*time.Second, "presence", req)
		if err != nil || len(args) != 1 {
			t.Fatalf("presence: %v %s", err, args)
		}
		if err := json.Unmarshal(args[0], &ack); err != nil || !ack.Success {
			t.Fatalf("presence ack %s: %v", args[0], err)
		}
		return ack
	}
	render := func(p apiclient.Presence) string {
		var parts []string
		for _, u := range p.Users {
			parts = append(parts, fmt.Sprintf("%s:%d", u.UserID, u.Connections))
		}
		return strings.Join(parts, ",")
	}
	httpPresence := func(s *server) string {
		p, err := apiclient.New(s.url, key).Presence(t.Context(), "org-p")
		if err != nil {
			t.Fatalf("GET presence on %s: %v", s.url, err)
		}
		return render(p)
	}

	watcher := connect(a, "org-p", "w")
	if ack := presenceAck(watcher, map[string]any{"watch": true}); !ack.Watching || ack.OrganizationID != "org-p" || render(ack.Presence) != "w:1" {
		t.Fatalf("watcher's first presence: %+v", ack)
	}
	// A watcher of another organization sees nothing of org-p.
	stranger := connect(b, "org-x", "s")
	if ack := presenceAck(stranger, map[string]any{"watch": true}); render(ack.Presence) != "s:1" {
		t.Fatalf("org-x presence: %+v", ack)
	}

	connect(b, "org-p", "u1")
	connect(c, "org-p", "u2")
	connect(c, "org-p", "u1")
	joined := map[string]bool{}
	for len(joined) < 2 {
		ev := watcher.Next("presence:joined")
		var p struct{ OrganizationID, UserID, Timestamp string }
		if err := json.Unmarshal(ev.Args[0], &p); err != nil || p.OrganizationID != "org-p" || p.Timestamp == "" {
			t.Fatalf("presence:joined %s", ev.Args[0])
		}
		if joined[p.UserID] {
			t.Fatalf("presence:joined twice for %s", p.UserID)
		}
		if p.UserID != "w" { // the watcher's own, if it came after the watch
			joined[p.UserID] = true
		}
	}
	if !joined["u1"] || !joined["u2"] {
		t.Fatalf("joined %v, want u1 and u2", joined)
	}
	for _, s := range []*server{a, b, c} {
		wait.For(t, "every node's view", func() bool { return httpPresence(s) == "u1:2,u2:1,w:1" })
	}
	if ack := presenceAck(watcher, nil); render(ack.Presence) != "u1:2,u2:1,w:1" || !ack.Watching {
		t.Fatalf("presence by client event: %+v", ack)
	}

	// A node batches its webhook events for up to a second, and a SIGKILL
	// loses what it has not posted yet: wait for node c's before killing it.
	wait.For(t, "node c's connections posted", func() bool {
		return hooks.count(webhook.TypeSocketConnected, "u2") == 1 && hooks.count(webhook.TypeSocketConnected, "u1") == 2 &&
			hooks.count(webhook.TypePresenceJoined, "u2") == 1
	})
	// kill -9 the node holding u2 and one of u1's connections.
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	wait.Within(t, ttl+10*time.Second, "the killed node's users gone", func() bool { return httpPresence(a) == "u1:1,w:1" })
	t.Logf("the killed node's users disappeared from presence %v after SIGKILL (PRESENCE_TTL %v)", time.Since(killed).Round(10*time.Millisecond), ttl)
	ev := watcher.Next("presence:left")
	if !strings.Contains(string(ev.Args[0]), `"userId":"u2"`) {
		t.Fatalf("presence:left %s, want u2", ev.Args[0])
	}
	t.Logf("presence:left reached the watcher %v after SIGKILL", time.Since(killed).Round(10*time.Millisecond))
	// The stranger's organization gets a user of its own: once the
	// stranger sees that (after everything above, on one Redis), it has
	// seen whatever org-p's changes could have brought it: nothing.
	connect(a, "org-x", "s2")
	for {
		ev := stranger.Next("presence:joined")
		if !strings.Contains(string(ev.Args[0]), `"organizationId":"org-x"`) {
			t.Fatalf("org-x's watcher received %s", ev)
		}
		if strings.Contains(string(ev.Args[0]), `"userId":"s2"`) {
			break
		}
	}
	for _, m := range stranger.Drain() {
		if strings.Contains(m.Event.Name, "presence") {
			t.Fatalf("org-x's watcher received %s", m.Event)
		}
	}

	// The webhook got the same story, signed.
	wait.For(t, "presence.left of u2 posted", func() bool { return hooks.count(webhook.TypePresenceLeft, "u2") == 1 })
	for _, want := range []struct {
		typ, user string
		n         int
	}{
		{webhook.TypeSocketConnected, "u1", 2},
		{webhook.TypeSocketConnected, "u2", 1},
		{webhook.TypeSocketConnected, "w", 1},
		{webhook.TypePresenceJoined, "u1", 1},
		{webhook.TypePresenceJoined, "u2", 1},
		{webhook.TypePresenceLeft, "u1", 0},
	} {
		if got := hooks.count(want.typ, want.user); got != want.n {
			t.Errorf("webhook %s for %s: %d, want %d", want.typ, want.user, got, want.n)
		}
	}
	hooks.mu.Lock()
	bad := hooks.badSigs
	types := make([]string, 0, len(hooks.events))
	for _, e := range hooks.events {
		types = append(types, e.Type)
	}
	hooks.mu.Unlock()
	if bad != 0 {
		t.Fatalf("%d webhook requests failed verification", bad)
	}
	if !slices.Contains(types, webhook.TypeSocketConnected) {
		t.Fatalf("webhook types %q", types)
	}
	// The metrics: one of the survivors removed the dead node, once; the
	// webhooks were delivered and none dropped.
	removed, delivered := 0.0, 0.0
	for _, s := range []*server{a, b} {
		m := scrapeMetrics(t, s)
		removed += metricValue(t, m, "realtime_presence_dead_nodes_removed_total")
		delivered += metricValue(t, m, `realtime_webhook_events_total{result="delivered"}`)
		if v := metricValue(t, m, `realtime_webhook_events_total{result="dropped"}`); v != 0 {
			t.Errorf("%s dropped %v webhook events", s.url, v)
		}
	}
	if removed != 1 || delivered == 0 {
		t.Fatalf("dead nodes removed %v (want 1), webhook events delivered %v", removed, delivered)
	}
	a.stop()
	b.stop()
}

func scrapeMetrics(t *testing.T, s *server) string {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricValue returns the value of the sample named exactly name (with its
// labels), failing when the scrape has none.
func metricValue(t *testing.T, scrape, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(scrape, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("%s: %q: %v", name, v, err)
			}
			return f
		}
	}
	t.Fatalf("the scrape has no %s", name)
	return 0
}
