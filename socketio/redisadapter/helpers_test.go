package redisadapter_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/internal/testutil/leakcheck"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// waitTimeout bounds every wait: generous, since the tests must pass with
// -race on a loaded 2-core machine, and only a bug makes a wait this long.
const waitTimeout = 20 * time.Second

// TestMain fails the package when its tests leave goroutines behind
// (clusters, servers, processes).
func TestMain(m *testing.M) { leakcheck.Main(m) }

// testLogger sends logs to the test log (shown with -v or on failure).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a log after the test ended
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testConfig is a Config with short retry delays and probes, so that
// failure tests run quickly.
func testConfig(t testing.TB, addr string, mode redisadapter.Mode) redisadapter.Config {
	return redisadapter.Config{
		Addr:          addr,
		Mode:          mode,
		MinRetryDelay: 20 * time.Millisecond,
		MaxRetryDelay: 200 * time.Millisecond,
		ProbeInterval: 300 * time.Millisecond,
		DialTimeout:   time.Second,
		Logger:        testLogger(t),
	}
}

// goNode is one of our servers in a cluster.
type goNode struct {
	name    string
	srv     *socketio.Server
	cluster *redisadapter.Cluster
	URL     string

	mu  sync.Mutex
	sse []sseEvent
	got chan struct{}
}

type sseEvent struct {
	nsp, event string
	args       socketio.Args
}

// startGoNode starts a server on 127.0.0.1 whose namespaces (nsps, "/" by
// default) join each socket to the rooms of its "rooms" query parameter
// (comma-separated) and set its data to {"name": query name}; the
// server-side events "sse" and "sse-ack" are recorded, the latter answered
// with {"from": node name, "got": args}. It waits until the node's
// subscriptions are in place.
func startGoNode(t testing.TB, name string, cfg redisadapter.Config, nsps ...string) *goNode {
	t.Helper()
	c, err := redisadapter.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return startGoNodeCluster(t, name, c, true, nsps...)
}

func startGoNodeCluster(t testing.TB, name string, c *redisadapter.Cluster, wait bool, nsps ...string) *goNode {
	t.Helper()
	return startGoNodeOpts(t, name, c, nodeOptions{wait: wait, nsps: nsps})
}

// nodeOptions are the options of startGoNodeOpts.
type nodeOptions struct {
	wait     bool // for the subscriptions
	nsps     []string
	recovery *socketio.RecoveryOptions
	engine   *engineio.Options // nil: 2 s ping interval and timeout
}

// startGoNodeOpts is startGoNodeCluster with connection state recovery
// when o.recovery is set. Its namespaces also answer a client event
// "join" (join the room named by the first argument, then ack).
func startGoNodeOpts(t testing.TB, name string, c *redisadapter.Cluster, o nodeOptions) *goNode {
	t.Helper()
	nsps := o.nsps
	engine := o.engine
	if engine == nil {
		engine = &engineio.Options{PingInterval: 2 * time.Second, PingTimeout: 2 * time.Second}
	}
	srv, err := socketio.NewServer(&socketio.Options{
		Adapter:  c.Adapter,
		Logger:   testLogger(t),
		Engine:   engine,
		Recovery: o.recovery,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &goNode{name: name, srv: srv, cluster: c, got: make(chan struct{}, 1)}
	if len(nsps) == 0 {
		nsps = []string{"/"}
	}
	for _, nspName := range nsps {
		nsp := srv.Of(nspName)
		nsp.Use(func(_ context.Context, s *socketio.Socket) error {
			q := s.Handshake().Query()
			if r := q.Get("rooms"); r != "" {
				s.Join(strings.Split(r, ",")...)
			}
			s.SetData(map[string]any{"name": q.Get("name")})
			return nil
		})
		nsp.OnEvent("join", func(s *socketio.Socket, e *socketio.Event) {
			room, _ := e.Args.String(0)
			s.Join(room)
			_ = e.Ack()
		})
		nsp.OnServerSideEmit("sse", func(args socketio.Args, _ func(...any)) { n.record(nspName, "sse", args) })
		nsp.OnServerSideEmit("sse-ack", func(args socketio.Args, ack func(...any)) {
			n.record(nspName, "sse-ack", args)
			if ack != nil {
				ack(map[string]any{"from": name, "got": rawArgs(args)})
			}
		})
	}
	hs := httptest.NewServer(srv)
	n.URL = hs.URL
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
		_ = c.Close()
	})
	if o.wait {
		waitSubscribed(t, c)
	}
	return n
}

func waitSubscribed(t testing.TB, c *redisadapter.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.WaitSubscribed(ctx); err != nil {
		t.Fatalf("subscriptions not in place: %v", err)
	}
}

func (n *goNode) record(nsp, event string, args socketio.Args) {
	n.mu.Lock()
	n.sse = append(n.sse, sseEvent{nsp, event, args})
	n.mu.Unlock()
	select {
	case n.got <- struct{}{}:
	default:
	}
}

// nextSSE waits for the next server-side event received.
func (n *goNode) nextSSE(t *testing.T) sseEvent {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		n.mu.Lock()
		if len(n.sse) > 0 {
			e := n.sse[0]
			n.sse = n.sse[1:]
			n.mu.Unlock()
			return e
		}
		n.mu.Unlock()
		select {
		case <-n.got:
		case <-deadline:
			t.Fatalf("%s: no server-side event within %v", n.name, waitTimeout)
		}
	}
}

// client connects a socket.io-client over WebSocket to a node.
func client(t *testing.T, d *sioclient.Driver, url, nsp, name string, rooms ...string) *sioclient.Client {
	t.Helper()
	c := d.Connect(url+nsp, sioclient.Options{
		Name:       name,
		Transports: []string{"websocket"},
		Query:      map[string]string{"rooms": strings.Join(rooms, ","), "name": name},
	})
	c.WaitConnect()
	return c
}

func startDriver(t *testing.T) *sioclient.Driver {
	d := sioclient.Start(t)
	d.Timeout = waitTimeout
	return d
}

// eventArgs decodes an event's arguments as JSON values.
func eventArgs(t *testing.T, ev sioclient.Event) []any {
	t.Helper()
	out := make([]any, len(ev.Args))
	for i, a := range ev.Args {
		if err := json.Unmarshal(a, &out[i]); err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
	}
	return out
}

// rawArgs returns the arguments as JSON values.
func rawArgs(a socketio.Args) []json.RawMessage {
	out := make([]json.RawMessage, a.Len())
	for i := range out {
		out[i] = a.Raw(i)
	}
	return out
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func socketIDs(list []*socketio.RemoteSocket) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ID
	}
	sort.Strings(out)
	return out
}

// startNodeServer starts tests/node/redis-node.mjs against redis.
func startNodeServer(t testing.TB, r *redistest.Server, args ...string) *redistest.Node {
	t.Helper()
	n := redistest.StartNode(t, "redis-node.mjs", append([]string{"--redis", r.URL()}, args...)...)
	n.Timeout = waitTimeout
	return n
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}
