package redisemitter_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/operate/realtime/internal/testutil/leakcheck"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
	"github.com/operate/realtime/socketio/redisemitter"
)

const waitTimeout = 20 * time.Second

// TestMain fails the package when its tests leave goroutines behind.
func TestMain(m *testing.M) { leakcheck.Main(m) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t *testing.T, addr string) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(redisadapter.Config{Addr: addr}.ClientOption())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestWireFormatMatchesNodeEmitter performs the same operations with
// @socket.io/redis-emitter 5.1 and with this package and compares what
// reaches Redis, channel and payload, byte for byte.
func TestWireFormatMatchesNodeEmitter(t *testing.T) {
	r := redistest.Start(t)
	sub := r.PSubscribe(t, "*")
	node := redistest.StartNode(t, "redis-emitter.mjs", "--redis", r.URL())
	node.Timeout = waitTimeout
	e := redisemitter.New(newClient(t, r.Addr), nil)
	ctx := ctxT(t)
	bin := []byte{9, 0, 0xff}
	for _, tc := range []struct {
		name string
		node map[string]any
		go_  func() error
	}{
		{
			"to one room, binary",
			map[string]any{"cmd": "emit", "rooms": []string{"room1"}, "event": "from-emitter", "args": []any{42, map[string]string{"$bin": b64(bin)}}},
			func() error { return e.To("room1").Emit(ctx, "from-emitter", 42, bin) },
		},
		{
			"everyone, JSON values",
			map[string]any{"cmd": "emit", "event": "all", "args": []any{"s", 1.5, -7, nil, true, map[string]any{"a": []any{1, "x"}}}},
			func() error {
				return e.Emit(ctx, "all", "s", 1.5, -7, nil, true, map[string]any{"a": []any{1, "x"}})
			},
		},
		{
			"namespace, rooms, except, volatile, compress",
			map[string]any{"cmd": "emit", "nsp": "/custom", "rooms": []string{"r1", "r2"}, "except": []string{"r3"}, "volatile": true, "compress": false, "event": "e-custom"},
			func() error {
				return e.Of("/custom").To("r1").To("r2").Except("r3").Volatile().Compress(false).Emit(ctx, "e-custom")
			},
		},
		{
			"serverSideEmit",
			map[string]any{"cmd": "serverSideEmit", "args": []any{"sse", 1, "two"}},
			func() error { return e.ServerSideEmit(ctx, "sse", 1, "two") },
		},
		{
			"socketsJoin",
			map[string]any{"cmd": "socketsJoin", "rooms": []string{"room1"}, "join": []string{"ej"}},
			func() error { return e.In("room1").SocketsJoin(ctx, "ej") },
		},
		{
			"socketsLeave",
			map[string]any{"cmd": "socketsLeave", "except": []string{"a"}, "leave": []string{"b", "c"}},
			func() error { return e.Except("a").SocketsLeave(ctx, "b", "c") },
		},
		{
			"disconnectSockets",
			map[string]any{"cmd": "disconnectSockets", "nsp": "/custom", "close": true},
			func() error { return e.Of("custom").DisconnectSockets(ctx, true) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node.MustCall(tc.node)
			want := sub.Next(t, waitTimeout)
			if err := tc.go_(); err != nil {
				t.Fatal(err)
			}
			got := sub.Next(t, waitTimeout)
			if got.Channel != want.Channel || !bytes.Equal(got.Payload, want.Payload) {
				t.Errorf("Node emitter: %s % x\n(%q)\nGo emitter:   %s % x\n(%q)", want.Channel, want.Payload, want.Payload, got.Channel, got.Payload, got.Payload)
			}
		})
	}
	if err := e.Emit(ctx, "disconnect"); err == nil {
		t.Error("reserved event name accepted")
	}
}

// goNode is a Go server in the cluster whose sockets join the rooms of
// their "rooms" query parameter.
type goNode struct {
	srv     *socketio.Server
	cluster *redisadapter.Cluster
	URL     string
	sse     chan socketio.Args
}

func startGoNode(t *testing.T, cfg redisadapter.Config, nsps ...string) *goNode {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.MinRetryDelay, cfg.MaxRetryDelay = 20*time.Millisecond, 200*time.Millisecond
	c, err := redisadapter.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := socketio.NewServer(&socketio.Options{Adapter: c.Adapter, Logger: cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	n := &goNode{srv: srv, cluster: c, sse: make(chan socketio.Args, 16)}
	for _, name := range append([]string{"/"}, nsps...) {
		nsp := srv.Of(name)
		nsp.Use(func(_ context.Context, s *socketio.Socket) error {
			if r := s.Handshake().Query().Get("rooms"); r != "" {
				s.Join(strings.Split(r, ",")...)
			}
			return nil
		})
		nsp.OnServerSideEmit("sse", func(args socketio.Args, _ func(...any)) { n.sse <- args })
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
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.WaitSubscribed(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func connect(t *testing.T, d *sioclient.Driver, url, name string, rooms ...string) *sioclient.Client {
	t.Helper()
	c := d.Connect(url, sioclient.Options{Name: name, Transports: []string{"websocket"}, Query: map[string]string{"rooms": strings.Join(rooms, ",")}})
	c.WaitConnect()
	return c
}

// TestEmitterToMixedCluster: the Go emitter publishing to the clients of a
// Node socket.io server (@socket.io/redis-adapter) and of a Go server, in
// classic and sharded mode.
func TestEmitterToMixedCluster(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      redisadapter.Config
		nodeArgs []string
	}{
		{"classic", redisadapter.Config{}, []string{"--mode", "classic"}},
		{"sharded-dynamic", redisadapter.Config{Mode: redisadapter.Sharded}, []string{"--mode", "sharded"}},
		{"sharded-static", redisadapter.Config{Mode: redisadapter.Sharded, SubscriptionMode: redisadapter.Static}, []string{"--mode", "sharded", "--subscription-mode", "static"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := redistest.Start(t)
			cfg := tc.cfg
			cfg.Addr = r.Addr
			gn := startGoNode(t, cfg, "/custom")
			node := redistest.StartNode(t, "redis-node.mjs", append([]string{"--redis", r.URL(), "--nsps", "/,/custom"}, tc.nodeArgs...)...)
			node.Timeout = waitTimeout
			d := sioclient.Start(t)
			d.Timeout = waitTimeout
			g1 := connect(t, d, gn.URL+"/", "g1", "room1", "org:1")
			g2 := connect(t, d, gn.URL+"/", "g2", "room2")
			n1 := connect(t, d, node.URL+"/", "n1", "room1")
			n2 := connect(t, d, node.URL+"/", "n2", "room2", "org:1")
			nc := connect(t, d, node.URL+"/custom", "nc", "r1")
			sharded := cfg.Mode == redisadapter.Sharded
			if sharded {
				r.WaitNumSub(t, "socket.io#/#", true, 2, waitTimeout)
				r.WaitNumSub(t, "socket.io#/custom#", true, 2, waitTimeout)
				if cfg.SubscriptionMode == redisadapter.Dynamic {
					r.WaitNumSub(t, "socket.io#/#room1#", true, 2, waitTimeout)
					r.WaitNumSub(t, "socket.io#/custom#r1#", true, 1, waitTimeout)
				}
			} else {
				r.WaitNumSub(t, "socket.io-request#/#", false, 2, waitTimeout)
				r.WaitNumSub(t, "socket.io-request#/custom#", false, 2, waitTimeout)
			}
			ctx := ctxT(t)
			cfg.Logger = slog.New(slog.DiscardHandler)
			e, err := redisemitter.NewFromConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()

			if err := e.To("room1").Emit(ctx, "hello", "emitted", []byte{1, 2}); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*sioclient.Client{g1, n1} {
				ev := c.Next("hello")
				if b, err := sioclient.AsBin(ev.Args[1]); string(ev.Args[0]) != `"emitted"` || err != nil || !bytes.Equal(b, []byte{1, 2}) {
					t.Errorf("%s: %s", c.Name(), ev)
				}
			}
			if err := e.To("room1", "org:1").Except("room2").Compress(false).Emit(ctx, "multi", 1); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*sioclient.Client{g1, n1} {
				c.Next("multi")
			}
			if err := e.Of("/custom").To("r1").Emit(ctx, "custom", true); err != nil {
				t.Fatal(err)
			}
			nc.Next("custom")
			if err := e.Emit(ctx, "all"); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*sioclient.Client{g1, g2, n1, n2} {
				c.Next("all")
			}
			for _, c := range []*sioclient.Client{g2, n2} {
				c.NoEvent("hello", 20*time.Millisecond)
				c.NoEvent("multi", 20*time.Millisecond)
			}

			if err := e.ServerSideEmit(ctx, "sse", "x"); err != nil {
				t.Fatal(err)
			}
			select {
			case args := <-gn.sse:
				if string(args.Raw(0)) != `"x"` {
					t.Errorf("go sse %s", args.Raw(0))
				}
			case <-time.After(waitTimeout):
				t.Fatal("no server-side event on the Go node")
			}
			node.NextEvent(nil)

			if err := e.In("room2").SocketsJoin(ctx, "joined"); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(waitTimeout)
			for gn.srv.Of("/").RoomSize("joined") != 1 {
				if time.Now().After(deadline) {
					t.Fatal("g2 did not join")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if sharded && cfg.SubscriptionMode == redisadapter.Dynamic {
				r.WaitNumSub(t, "socket.io#/#joined#", true, 2, waitTimeout)
			}
			if err := e.To("joined").Emit(ctx, "to-joined"); err != nil {
				t.Fatal(err)
			}
			g2.Next("to-joined")
			n2.Next("to-joined")
			if err := e.In("joined").SocketsLeave(ctx, "room2"); err != nil {
				t.Fatal(err)
			}
			for gn.srv.Of("/").RoomSize("room2") != 0 {
				if time.Now().After(deadline) {
					t.Fatal("g2 did not leave room2")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := e.In("org:1").DisconnectSockets(ctx, false); err != nil {
				t.Fatal(err)
			}
			g1.WaitDisconnect()
			n2.WaitDisconnect()
		})
	}
}

// TestEmitterWithoutRedis: NewFromConfig does not need Redis up; a publish
// fails with ErrUnavailable until Redis answers.
func TestEmitterWithoutRedis(t *testing.T) {
	r := redistest.Start(t)
	r.Kill()
	e, err := redisemitter.NewFromConfig(redisadapter.Config{Addr: r.Addr, MinRetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := ctxT(t)
	if err := e.Emit(ctx, "x"); !errors.Is(err, redisemitter.ErrUnavailable) {
		t.Fatalf("emit without Redis: %v", err)
	}
	r.Restart()
	sub := r.PSubscribe(t, "*")
	deadline := time.Now().Add(waitTimeout)
	for {
		err := e.To("r").Emit(ctx, "x")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m := sub.Next(t, waitTimeout); m.Channel != "socket.io#/#r#" {
		t.Errorf("published on %s", m.Channel)
	}
}
