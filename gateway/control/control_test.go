package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/control"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/httpapi"
	"github.com/operate/realtime/gateway/metrics"
	"github.com/operate/realtime/internal/testutil/leakcheck"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio/redisadapter"
)

// TestMain fails the package when its tests leave goroutines behind.
func TestMain(m *testing.M) { leakcheck.Main(m) }

const (
	testSecret = "control-test-secret-0123456789abcdef"
	apiKey     = "control-api-key-0123456789abcdef"
)

// node is a gateway with its HTTP API (control included), on a real HTTP
// server, a node of a cluster over Redis.
type node struct {
	gw     *gateway.Gateway
	api    *httpapi.Handler
	url    string
	client *apiclient.Client
	store  *control.RedisStore
}

type cluster struct {
	t     *testing.T
	redis *redistest.Server
	mode  redisadapter.Mode
	d     *sioclient.Driver
	svc   *events.EventsService // publishes through node 0
	// requestsTimeout bounds cluster-wide requests; zero: the default.
	requestsTimeout time.Duration
}

func newCluster(t *testing.T, mode redisadapter.Mode) *cluster {
	return &cluster{t: t, redis: redistest.Start(t), mode: mode, d: sioclient.Start(t)}
}

// start starts a node; sync is how often it reads the revocations back.
func (c *cluster) start(sync time.Duration) *node {
	t := c.t
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	rc, err := redisadapter.New(redisadapter.Config{Addr: c.redis.Addr, Mode: c.mode, Logger: log, RequestsTimeout: c.requestsTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() }) // after the gateway's shutdown
	v, err := auth.New(context.Background(), auth.Config{Secret: testSecret, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	store := control.NewRedisStore(rc.Config())
	t.Cleanup(store.Close)
	gw, err := gateway.New(gateway.Config{Verifier: v, Adapter: rc.Adapter, Revocations: store, RevocationSync: sync, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Config{Emitter: gw, APIKeys: []string{apiKey}, Control: control.NewAPI(gw), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(gw.Path(), gw)
	mux.Handle("/", api)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		srv.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rc.WaitSubscribed(ctx); err != nil {
		t.Fatal(err)
	}
	if c.svc == nil {
		c.svc = events.NewEventsService(gw)
	}
	return &node{gw: gw, api: api, url: srv.URL, client: apiclient.New(srv.URL, apiKey), store: store}
}

// startNodes starts n nodes and waits until each sees the others.
func (c *cluster) startNodes(n int, sync time.Duration) []*node {
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = c.start(sync)
	}
	wait.For(c.t, "every node to see the others", func() bool {
		for _, nd := range nodes {
			if k, err := nd.gw.Namespace().Adapter().ServerCount(context.Background()); err != nil || k != n {
				return false
			}
		}
		return true
	})
	return nodes
}

func (c *cluster) token(org, user string, extra map[string]any) string {
	c.t.Helper()
	tok, err := auth.Mint(testSecret, auth.MintClaims{OrganizationID: org, UserID: user, Extra: extra}, time.Hour, time.Time{})
	if err != nil {
		c.t.Fatal(err)
	}
	return tok
}

// join connects a client to a node and waits for its connected event.
func (c *cluster) join(nd *node, name, token string) *sioclient.Client {
	c.t.Helper()
	cl := c.d.Connect(nd.url+gateway.DefaultNamespace, sioclient.Options{Name: name, Auth: map[string]any{"token": token}, Reconnection: ptr(false)})
	cl.WaitConnect()
	cl.Next(gateway.EventConnected)
	return cl
}

func ptr[T any](v T) *T { return &v }

type revoked struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

func expectRevoked(t *testing.T, c *sioclient.Client, code, reason string) {
	t.Helper()
	ev := c.Next(gateway.EventSessionRevoked)
	var r revoked
	if len(ev.Args) != 1 || json.Unmarshal(ev.Args[0], &r) != nil || r.Code != code || r.Reason != reason {
		t.Errorf("%s: %s, want code %s reason %q", c.Name(), ev, code, reason)
	}
	if got := c.WaitDisconnect(); got != "io server disconnect" {
		t.Errorf("%s: disconnected with %q", c.Name(), got)
	}
}

// expectEvent publishes an org-wide event and checks that c gets it.
func (c *cluster) expectEvent(cl *sioclient.Client, org string) {
	c.t.Helper()
	if _, err := c.svc.Emit(context.Background(), events.InvoiceCreated, json.RawMessage(`{"organizationId":"`+org+`","invoiceId":"inv-1"}`), events.Target{}); err != nil {
		c.t.Fatal(err)
	}
	cl.Next(string(events.InvoiceCreated))
}

func expectResult(t *testing.T, what string, got apiclient.ControlResponse, err error, sockets, nodes int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got.Sockets != sockets || got.Nodes != nodes || !got.Complete {
		t.Errorf("%s: %+v, want %d socket(s), %d nodes, complete", what, got, sockets, nodes)
	}
}

// TestControlAcrossNodes: the control API of one node acts on the sockets
// of every node, in each Redis mode.
func TestControlAcrossNodes(t *testing.T) {
	for _, mode := range []redisadapter.Mode{redisadapter.Classic, redisadapter.Sharded, redisadapter.Streams} {
		t.Run(mode.String(), func(t *testing.T) { testControlAcrossNodes(t, mode) })
	}
}

func testControlAcrossNodes(t *testing.T, mode redisadapter.Mode) {
	c := newCluster(t, mode)
	nodes := c.startNodes(3, time.Minute)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()

	a1 := c.join(n2, "a1", c.token("org_a", "u1", nil))
	a1b := c.join(n3, "a1b", c.token("org_a", "u1", nil))
	b1 := c.join(n3, "b1", c.token("org_b", "u1", nil))
	a2 := c.join(n2, "a2", c.token("org_a", "u2", nil))
	witness := c.join(n2, "witness", c.token("org_a", "u3", nil))

	// A user within one organization, on two other nodes.
	res, err := n1.client.DisconnectUser(ctx, "u1", "org_a", "removed from org_a")
	expectResult(t, "disconnect user", res, err, 2, 3)
	expectRevoked(t, a1, "SESSION_REVOKED", "removed from org_a")
	expectRevoked(t, a1b, "SESSION_REVOKED", "removed from org_a")
	c.expectEvent(b1, "org_b")

	// The organization room: u2 leaves org_a's room on its node, from n3,
	// and joins it again from n1.
	res, err = n3.client.LeaveOrganizationRoom(ctx, "org_a", "u2")
	expectResult(t, "leave", res, err, 1, 3)
	invoice := func(id string) {
		t.Helper()
		if _, err := c.svc.Emit(ctx, events.InvoiceCreated, json.RawMessage(`{"organizationId":"org_a","invoiceId":"`+id+`"}`), events.Target{}); err != nil {
			t.Fatal(err)
		}
		witness.Next(string(events.InvoiceCreated)) // n2 has delivered it
	}
	invoice("inv-left")
	res, err = n1.client.JoinOrganizationRoom(ctx, "org_a", "u2")
	expectResult(t, "join", res, err, 1, 3)
	invoice("inv-joined")
	if ev := a2.Next(string(events.InvoiceCreated)); !strings.Contains(string(ev.Args[0]), "inv-joined") {
		t.Errorf("a2 got %s first, want inv-joined (inv-left was sent while it was out of the room)", ev)
	}

	// One socket by id, then an organization.
	res, err = n1.client.DisconnectSocket(ctx, b1.State().SID, "")
	expectResult(t, "disconnect socket", res, err, 1, 3)
	expectRevoked(t, b1, "SESSION_REVOKED", "")
	res, err = n3.client.DisconnectOrganization(ctx, "org_a", "organization suspended")
	expectResult(t, "disconnect organization", res, err, 2, 3)
	expectRevoked(t, a2, "SESSION_REVOKED", "organization suspended")
	expectRevoked(t, witness, "SESSION_REVOKED", "organization suspended")
}

// TestRevocationsAcrossNodes: a revocation made on one node disconnects the
// sockets holding the token on the others, is refused at connect and at
// refresh everywhere, and reaches a node started afterwards (from Redis),
// and one that missed the notification, within its sync interval.
func TestRevocationsAcrossNodes(t *testing.T) {
	for _, mode := range []redisadapter.Mode{redisadapter.Classic, redisadapter.Streams} {
		t.Run(mode.String(), func(t *testing.T) { testRevocationsAcrossNodes(t, mode) })
	}
}

func testRevocationsAcrossNodes(t *testing.T, mode redisadapter.Mode) {
	c := newCluster(t, mode)
	nodes := c.startNodes(2, time.Minute)
	n1, n2 := nodes[0], nodes[1]
	ctx := context.Background()

	revokedTok := c.token("org_a", "u1", map[string]any{"jti": "tok-1"})
	goodTok := c.token("org_a", "u1", map[string]any{"jti": "tok-2"})
	holder := c.join(n2, "holder", revokedTok)
	other := c.join(n2, "other", goodTok)

	exp := time.Now().Add(time.Hour)
	res, err := n1.client.Revoke(ctx, apiclient.RevocationRequest{TokenID: "tok-1", ExpiresAt: &exp})
	expectResult(t, "revoke", res.ControlResponse, err, 1, 2)
	if res.Revocation.TokenID != "tok-1" || res.Revocation.Until == "" {
		t.Errorf("revocation %+v", res.Revocation)
	}
	expectRevoked(t, holder, "TOKEN_REVOKED", "")
	c.expectEvent(other, "org_a")

	refused := func(nd *node, tok string) {
		t.Helper()
		cl := c.d.Connect(nd.url+gateway.DefaultNamespace, sioclient.Options{Auth: map[string]any{"token": tok}, Reconnection: ptr(false)})
		if ce := cl.WaitConnectError(); ce.Message != "Unauthorized: Token revoked" || string(ce.Data) != `{"code":"TOKEN_REVOKED"}` {
			t.Errorf("connect_error %+v", ce)
		}
	}
	refused(n1, revokedTok)
	refused(n2, revokedTok)
	res2, err := other.EmitWithAck(5*time.Second, gateway.EventAuthRefresh, map[string]any{"token": revokedTok})
	if err != nil || len(res2) != 1 || !strings.Contains(string(res2[0]), `"code":"TOKEN_REVOKED"`) {
		t.Errorf("refresh with the revoked token: %s, %v", res2, err)
	}

	// A node started afterwards knows it from Redis by the time it says
	// it is ready.
	n3 := c.start(time.Minute)
	wait.For(t, "the new node to be ready", func() bool { return n3.gw.Ready() == nil })
	if !n3.gw.TokenRevoked(&auth.Claims{UserID: "u1", OrganizationID: "org_a", TokenID: "tok-1", IssuedAt: time.Now()}) {
		t.Error("the new node is ready and does not know the revocation")
	}
	refused(n3, revokedTok)

	// A revocation whose notification a node missed (written to Redis
	// only, as if the node had been cut off) reaches it at its next read,
	// and disconnects the sockets it concerns there.
	fast := c.start(100 * time.Millisecond)
	late := c.join(fast, "late", c.token("org_b", "u9", map[string]any{"iat": time.Now().Add(-time.Minute).Unix()}))
	r := gateway.Revocation{UserID: "u9", IssuedBefore: time.Now(), Until: time.Now().Add(time.Hour)}
	if err := n1.store.SaveRevocation(ctx, r); err != nil {
		t.Fatal(err)
	}
	expectRevoked(t, late, "TOKEN_REVOKED", "")
	if st := fast.gw.Stats(); st.Revocations != 2 || st.Revoked[gateway.CodeTokenRevoked] != 1 {
		t.Errorf("stats of the late node: %d revocations, revoked %v", st.Revocations, st.Revoked)
	}
}

// TestRevocationsExpireInRedis: the key of a revocation expires when the
// tokens it names have (the token's exp plus the leeway).
func TestRevocationsExpireInRedis(t *testing.T) {
	c := newCluster(t, redisadapter.Classic)
	n := c.startNodes(1, time.Minute)[0]
	exp := time.Now().Add(10 * time.Minute)
	if _, err := n.client.Revoke(context.Background(), apiclient.RevocationRequest{TokenID: "tok-1", ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
	keys, err := c.redis.Do("KEYS", n.store.Prefix()+"*")
	if err != nil || keys == "" || strings.Contains(keys, " ") {
		t.Fatalf("keys %q, %v: want one", keys, err)
	}
	ttl, err := c.redis.Do("PTTL", keys)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := strconv.ParseInt(ttl, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	leeway := auth.DefaultLeeway
	if d := time.Duration(ms) * time.Millisecond; d > 10*time.Minute+leeway || d < 9*time.Minute {
		t.Errorf("PTTL %s, want the token's remaining life plus the leeway", d)
	}
}

// TestControlHTTPErrors: the control routes answer JSON errors with codes.
func TestControlHTTPErrors(t *testing.T) {
	c := newCluster(t, redisadapter.Classic)
	n := c.startNodes(1, time.Minute)[0]
	tests := []struct {
		name, key, path, body string
		status                int
		code                  string
	}{
		{"no key", "", "/api/v1/users/u1/disconnect", "", 401, "unauthorized"},
		{"wrong key", "wrong-key-0123456789abcdef", "/api/v1/users/u1/disconnect", "", 403, "forbidden"},
		{"invalid UTF-8", apiKey, "/api/v1/users/%FF/disconnect", "", 400, "invalid_selector"},
		{"U+FFFD", apiKey, "/api/v1/organizations/%EF%BF%BD/disconnect", "", 400, "invalid_selector"},
		{"unknown field", apiKey, "/api/v1/users/u1/disconnect", `{"reasn":"x"}`, 400, "invalid_request"},
		{"not JSON", apiKey, "/api/v1/users/u1/disconnect", `{`, 400, "invalid_json"},
		{"organization on a socket", apiKey, "/api/v1/sockets/abc/disconnect", `{"organizationId":"o"}`, 400, "invalid_request"},
		{"empty revocation", apiKey, "/api/v1/revocations", `{}`, 400, "invalid_revocation"},
		{"jti and user", apiKey, "/api/v1/revocations", `{"jti":"t","userId":"u"}`, 400, "invalid_revocation"},
		{"future", apiKey, "/api/v1/revocations", `{"userId":"u","issuedBefore":"2999-01-01T00:00:00Z"}`, 400, "invalid_revocation"},
		{"GET", apiKey, "/api/v1/revocations", "", 405, "method_not_allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodPost
			if tc.name == "GET" {
				method = http.MethodGet
			}
			req, err := http.NewRequest(method, n.url+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.key != "" {
				req.Header.Set("Authorization", "Bearer "+tc.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var e apiclient.ErrorBody
			if resp.StatusCode != tc.status || json.Unmarshal(body, &e) != nil || e.Code != tc.code || e.Message == "" {
				t.Errorf("%d %s, want %d %s", resp.StatusCode, body, tc.status, tc.code)
			}
		})
	}
	// Counted: the requests that reached the gateway, by result.
	rec := httptest.NewRecorder()
	metrics.Handler(n.gw, metrics.Options{ControlRequests: n.api.ControlRequests}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`realtime_control_requests_total{operation="revoke",result="invalid"} 3`,
		`realtime_sockets_revoked_total{code="SESSION_REVOKED"} 0`,
		`realtime_token_revocations 0`,
	} {
		if !strings.Contains(rec.Body.String(), want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The Go client's error.
	_, err := apiclient.New(n.url, "wrong-key-0123456789abcdef").DisconnectOrganization(context.Background(), "o", "")
	var ae *apiclient.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 403 {
		t.Errorf("client error %v", err)
	}
}

// TestControlWithoutRedis: with Redis down, a control request still acts
// on the node that took it, and answers 503 cluster_unavailable saying
// what was done; the revocation holds on that node.
func TestControlWithoutRedis(t *testing.T) {
	c := newCluster(t, redisadapter.Classic)
	c.requestsTimeout = time.Second
	nodes := c.startNodes(2, time.Minute)
	n1 := nodes[0]
	a := c.join(n1, "a", c.token("org_a", "u1", nil))
	b := c.join(n1, "b", c.token("org_a", "u2", map[string]any{"jti": "tok-b"}))
	c.redis.Kill()

	expectPartial := func(what string, err error, sockets int) {
		t.Helper()
		var ae *apiclient.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 503 || ae.Code != apiclient.CodeClusterUnavailable || ae.Result == nil {
			t.Fatalf("%s: %v, want 503 cluster_unavailable with a result", what, err)
		}
		if ae.Result.Sockets != sockets || ae.Result.Nodes != 1 || ae.Result.Complete {
			t.Errorf("%s: result %+v, want %d socket(s) on this node, incomplete", what, *ae.Result, sockets)
		}
	}
	_, err := n1.client.DisconnectUser(context.Background(), "u1", "", "bye")
	expectPartial("disconnect", err, 1)
	expectRevoked(t, a, "SESSION_REVOKED", "bye")
	_, err = n1.client.Revoke(context.Background(), apiclient.RevocationRequest{TokenID: "tok-b"})
	expectPartial("revoke", err, 1)
	expectRevoked(t, b, "TOKEN_REVOKED", "")
	if !n1.gw.TokenRevoked(&auth.Claims{UserID: "u2", OrganizationID: "org_a", TokenID: "tok-b"}) {
		t.Error("the revocation does not hold on the node that took it")
	}
}
