package admin_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/admin"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/internal/testutil/leakcheck"
	"github.com/operate/realtime/internal/testutil/logbuf"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio/redisadapter"
)

// TestMain fails the package when its tests leave goroutines behind.
func TestMain(m *testing.M) { leakcheck.Main(m) }

const (
	testSecret = "admin-test-secret-0123456789abcdef"
	password   = "correct horse battery staple"
	adminKey   = "admin-key-0123456789abcdef"
)

// waitTimeout bounds the waits: generous, for a loaded 2-core machine.
const waitTimeout = 20 * time.Second

// node is a gateway with an Admin, served on 127.0.0.1.
type node struct {
	t    *testing.T
	gw   *gateway.Gateway
	adm  *admin.Admin
	url  string
	logs *logbuf.Buffer
}

type nodeOptions struct {
	id      string
	key     string
	ui      *admin.UIConfig
	cluster *redisadapter.Cluster
	// short makes leases last 1 s (renewed every 300 ms) and stats come
	// every 200 ms, instead of 15 s, 5 s and 2 s.
	short bool
}

func uiConfig(mod func(*admin.UIConfig)) *admin.UIConfig {
	u := &admin.UIConfig{Password: password}
	if mod != nil {
		mod(u)
	}
	return u
}

func startNode(t *testing.T, o nodeOptions) *node {
	t.Helper()
	logs := &logbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v, err := auth.New(context.Background(), auth.Config{Secret: testSecret, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	cfg := gateway.Config{Verifier: v, Logger: log}
	if o.cluster != nil {
		cfg.Adapter = o.cluster.Adapter
	}
	gw, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	acfg := admin.Config{Key: o.key, UI: o.ui, ServerID: o.id, Redis: o.cluster, Logger: log}
	var adm *admin.Admin
	if o.short {
		adm, err = admin.NewWithTiming(gw, acfg, 200*time.Millisecond, time.Second, 300*time.Millisecond)
	} else {
		adm, err = admin.New(gw, acfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(gw.Path(), gw)
	mux.Handle(admin.StatusPath, adm.StatusHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		adm.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		srv.Close()
	})
	return &node{t: t, gw: gw, adm: adm, url: srv.URL, logs: logs}
}

// token mints a token for the test secret.
func token(t testing.TB, org, user string) string {
	t.Helper()
	tok, err := auth.Mint(testSecret, auth.MintClaims{OrganizationID: org, UserID: user}, time.Hour, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// join connects a client of org and user to n's events namespace and
// waits for its connected event; o.Auth defaults to the token.
func join(t *testing.T, d *sioclient.Driver, n *node, org, user string, o sioclient.Options) *sioclient.Client {
	t.Helper()
	if o.Auth == nil && o.Query == nil && o.ExtraHeaders == nil {
		o.Auth = map[string]any{"token": token(t, org, user)}
	}
	if o.Reconnection == nil {
		o.Reconnection = new(false)
	}
	c := d.Connect(n.url+gateway.DefaultNamespace, o)
	c.WaitConnect()
	c.Next(gateway.EventConnected)
	return c
}

// login connects an admin UI client with these credentials.
func login(d *sioclient.Driver, n *node, authPayload map[string]any) *sioclient.Client {
	return d.Connect(n.url+admin.DefaultNamespace, sioclient.Options{Auth: authPayload, Reconnection: new(false)})
}

func credentials() map[string]any {
	return map[string]any{"username": admin.DefaultUsername, "password": password}
}

// shownSocket is a socket as the UI receives it.
type shownSocket struct {
	ID        string `json:"id"`
	ClientID  string `json:"clientId"`
	Transport string `json:"transport"`
	Nsp       string `json:"nsp"`
	Data      struct {
		UserID         string `json:"userId"`
		OrganizationID string `json:"organizationId"`
	} `json:"data"`
	Handshake struct {
		Address string            `json:"address"`
		Headers map[string]string `json:"headers"`
		Query   map[string]string `json:"query"`
		Issued  int64             `json:"issued"`
		URL     string            `json:"url"`
	} `json:"handshake"`
	Rooms []string `json:"rooms"`
}

// serverStats is server_stats as the UI receives it.
type serverStats struct {
	ServerID            string `json:"serverId"`
	Hostname            string `json:"hostname"`
	PID                 int    `json:"pid"`
	ClientsCount        int    `json:"clientsCount"`
	PollingClientsCount int    `json:"pollingClientsCount"`
	AggregatedEvents    []struct {
		Type  string `json:"type"`
		Count int    `json:"count"`
	} `json:"aggregatedEvents"`
	Namespaces []struct {
		Name         string `json:"name"`
		SocketsCount int    `json:"socketsCount"`
	} `json:"namespaces"`
}

func decode(t testing.TB, ev sioclient.Event, i int, v any) {
	t.Helper()
	if len(ev.Args) <= i {
		t.Fatalf("event %s has no argument %d", ev, i)
	}
	if err := json.Unmarshal(ev.Args[i], v); err != nil {
		t.Fatalf("event %s argument %d: %v", ev, i, err)
	}
}

func str(t testing.TB, ev sioclient.Event, i int) string {
	t.Helper()
	var s string
	decode(t, ev, i, &s)
	return s
}

// nextStats waits for the server_stats of the node named id.
func nextStats(t *testing.T, c *sioclient.Client, id string) serverStats {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		var st serverStats
		decode(t, c.Next("server_stats"), 0, &st)
		if st.ServerID == id {
			return st
		}
	}
	t.Fatalf("no server_stats of %s", id)
	return serverStats{}
}
