package redisadapter_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// interopModes are the configurations shared with Node's adapters.
var interopModes = []struct {
	name     string
	mode     redisadapter.Mode
	sub      redisadapter.SubscriptionMode
	nodeArgs []string
}{
	{"classic", redisadapter.Classic, 0, []string{"--mode", "classic"}},
	{"sharded-dynamic", redisadapter.Sharded, redisadapter.Dynamic, []string{"--mode", "sharded", "--subscription-mode", "dynamic"}},
	{"sharded-static", redisadapter.Sharded, redisadapter.Static, []string{"--mode", "sharded", "--subscription-mode", "static"}},
	{"sharded-dynamic-private", redisadapter.Sharded, redisadapter.DynamicPrivate, []string{"--mode", "sharded", "--subscription-mode", "dynamic-private"}},
	{"streams", redisadapter.Streams, 0, []string{"--mode", "streams"}},
}

// mixed is a cluster of one Go node and one Node.js socket.io server with
// @socket.io/redis-adapter, two clients on each.
type mixed struct {
	redis   *redistest.Server
	gn      *goNode
	node    *redistest.Node
	d       *sioclient.Driver
	clients map[string]*sioclient.Client
}

var mixedRooms = map[string][]string{
	"g1": {"org:1", "user:1"}, "g2": {"org:2", "user:2"},
	"n1": {"org:1", "user:2"}, "n2": {"org:2", "user:1"},
}

func startMixed(t *testing.T, mode redisadapter.Mode, sub redisadapter.SubscriptionMode, nodeArgs []string) *mixed {
	t.Helper()
	r := redistest.Start(t)
	cfg := testConfig(t, r.Addr, mode)
	cfg.SubscriptionMode = sub
	m := &mixed{redis: r, gn: startGoNode(t, "go", cfg), clients: map[string]*sioclient.Client{}}
	m.node = startNodeServer(t, r, nodeArgs...)
	m.d = startDriver(t)
	for name, rooms := range mixedRooms {
		url := m.gn.URL
		if name[0] == 'n' {
			url = m.node.URL
		}
		m.clients[name] = client(t, m.d, url, "/", name, rooms...)
	}
	// Both servers subscribed: Node's subscriptions are asynchronous, so
	// count the subscribers of the channels on Redis.
	sharded := mode == redisadapter.Sharded
	if mode == redisadapter.Streams {
		waitStreamsPeers(t, r, 2)
	} else if sharded {
		r.WaitNumSub(t, "socket.io#/#", true, 2, waitTimeout)
		if sub != redisadapter.Static {
			for _, room := range []string{"org:1", "org:2", "user:1", "user:2"} {
				r.WaitNumSub(t, "socket.io#/#"+room+"#", true, 2, waitTimeout)
			}
		}
	} else {
		r.WaitNumSub(t, "socket.io-request#/#", false, 2, waitTimeout)
	}
	waitSubscribed(t, m.gn.cluster)
	return m
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestNodeInteropBroadcast(t *testing.T) {
	for _, im := range interopModes {
		t.Run(im.name, func(t *testing.T) {
			m := startMixed(t, im.mode, im.sub, im.nodeArgs)
			bin := []byte{0, 1, 2, 0xfe, 0xff}

			// Go → Node and Go: one room, binary, an object, a float.
			if err := m.gn.srv.Of("/").To("org:1").Emit("hello", "from-go", bin, json.RawMessage(`{"k":"v","n":1.5}`)); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"g1", "n1"} {
				ev := m.clients[name].Next("hello")
				if len(ev.Args) != 3 || string(ev.Args[0]) != `"from-go"` || string(ev.Args[2]) != `{"k":"v","n":1.5}` {
					t.Errorf("%s: %s", name, ev)
				}
				if b, err := sioclient.AsBin(ev.Args[1]); err != nil || !bytes.Equal(b, bin) {
					t.Errorf("%s: binary argument %s (%v)", name, ev.Args[1], err)
				}
			}
			// Node → Go and Node.
			m.node.MustCall(map[string]any{"cmd": "broadcast", "rooms": []string{"org:1"}, "event": "hello",
				"args": []any{"from-node", map[string]string{"$bin": b64(bin)}, map[string]any{"nested": map[string]string{"$bin": b64([]byte{9})}}}})
			for _, name := range []string{"g1", "n1"} {
				ev := m.clients[name].Next("hello")
				if len(ev.Args) != 3 || string(ev.Args[0]) != `"from-node"` {
					t.Fatalf("%s: %s", name, ev)
				}
				if b, err := sioclient.AsBin(ev.Args[1]); err != nil || !bytes.Equal(b, bin) {
					t.Errorf("%s: binary argument %s (%v)", name, ev.Args[1], err)
				}
				var nested struct{ Nested sioclient.Binary }
				if err := json.Unmarshal(ev.Args[2], &nested); err != nil || !bytes.Equal(nested.Nested, []byte{9}) {
					t.Errorf("%s: nested binary %s (%v)", name, ev.Args[2], err)
				}
			}
			// A binary argument a Go server received from a client and
			// broadcasts on (the zishang bug: it arrived as {}).
			m.gn.srv.Of("/").OnEvent("relay", func(s *socketio.Socket, ev *socketio.Event) {
				_ = s.Broadcast().To("org:2").Emit("relayed", ev.Args)
			})
			m.clients["g1"].Emit("relay", sioclient.Bin([]byte{7, 7}), "x")
			for _, name := range []string{"g2", "n2"} {
				ev := m.clients[name].Next("relayed")
				if b, err := sioclient.AsBin(ev.Args[0]); err != nil || !bytes.Equal(b, []byte{7, 7}) || string(ev.Args[1]) != `"x"` {
					t.Errorf("%s: relayed %s (%v)", name, ev, err)
				}
			}
			// Several rooms, except, flags, from each side. (Not volatile:
			// a volatile event may rightly be dropped for a busy client; the
			// flag's encoding is checked by the codec tests.)
			m.node.MustCall(map[string]any{"cmd": "broadcast", "rooms": []string{"org:1", "org:2"}, "except": []string{"user:1"},
				"event": "multi", "args": []any{"node"}, "compress": false})
			if err := m.gn.srv.Of("/").To("org:1", "org:2").Except("user:1").Compress(false).Emit("multi", "go"); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"g2", "n1"} {
				got := []string{}
				for range 2 {
					var s string
					_ = json.Unmarshal(m.clients[name].Next("multi").Args[0], &s)
					got = append(got, s)
				}
				slices.Sort(got)
				if strings.Join(got, ",") != "go,node" {
					t.Errorf("%s: multi from %v", name, got)
				}
			}
			for _, name := range []string{"g1", "n2"} {
				m.clients[name].NoEvent("multi", 100*time.Millisecond)
			}
			// To a socket id (a private room) on the other server.
			nodeSockets := m.node.MustCall(map[string]any{"cmd": "fetchSockets", "rooms": []string{"user:2"}})
			var ns []struct{ ID string }
			_ = json.Unmarshal(nodeSockets, &ns)
			var n1ID string
			for _, s := range ns {
				n1ID = s.ID
			}
			goSockets, _ := m.gn.srv.Of("/").In("user:2").FetchSockets(ctxT(t))
			if len(ns) != 2 || len(goSockets) != 2 {
				t.Fatalf("fetchSockets user:2: node %s, go %v", nodeSockets, socketIDs(goSockets))
			}
			for _, s := range goSockets {
				if _, local := s.Local(); !local {
					n1ID = s.ID
				}
			}
			if err := m.gn.srv.Of("/").To(n1ID).Emit("private", 1); err != nil {
				t.Fatal(err)
			}
			m.clients["n1"].Next("private")
			m.clients["g2"].NoEvent("private", 50*time.Millisecond)
		})
	}
}

func TestNodeInteropRequests(t *testing.T) {
	for _, im := range interopModes {
		t.Run(im.name, func(t *testing.T) {
			m := startMixed(t, im.mode, im.sub, im.nodeArgs)
			nsp := m.gn.srv.Of("/")
			ctx := ctxT(t)

			// serverCount both ways.
			if n, err := nsp.Adapter().ServerCount(ctx); err != nil || n != 2 {
				t.Errorf("go serverCount = %d, %v", n, err)
			}
			if r := m.node.MustCall(map[string]any{"cmd": "serverCount"}); string(r) != "2" {
				t.Errorf("node serverCount = %s", r)
			}

			// fetchSockets from Go sees Node's sockets in Node's shape.
			list, err := nsp.In("org:1").FetchSockets(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var n1 *socketio.RemoteSocket
			for _, s := range list {
				if dataName(t, s) == "n1" {
					n1 = s
				}
			}
			if len(list) != 2 || n1 == nil {
				t.Fatalf("go fetchSockets org:1: %v", socketIDs(list))
			}
			if n1.Handshake.Query().Get("name") != "n1" || n1.Handshake.Header.Get("Connection") == "" ||
				n1.Handshake.Time.IsZero() || !slices.Contains(n1.Rooms, "org:1") || !slices.Contains(n1.Rooms, n1.ID) {
				t.Errorf("node socket as seen by go: %+v %+v", n1, n1.Handshake)
			}
			// fetchSockets from Node sees Go's sockets.
			var fromNode []struct {
				ID      string
				Rooms   []string
				Data    map[string]any
				Query   map[string]any
				Address string
				Headers map[string]any
				Issued  float64
				Time    string
			}
			if err := json.Unmarshal(m.node.MustCall(map[string]any{"cmd": "fetchSockets", "rooms": []string{"user:1"}}), &fromNode); err != nil {
				t.Fatal(err)
			}
			var g1 int = -1
			for i, s := range fromNode {
				if s.Data["name"] == "g1" {
					g1 = i
				}
			}
			if len(fromNode) != 2 || g1 < 0 {
				t.Fatalf("node fetchSockets user:1: %+v", fromNode)
			}
			if s := fromNode[g1]; s.Query["name"] != "g1" || s.Address == "" || s.Issued == 0 || !strings.Contains(s.Time, "GMT") ||
				s.Headers["host"] == "" || !slices.Contains(s.Rooms, "user:1") {
				t.Errorf("go socket as seen by node: %+v", s)
			}

			// serverSideEmit, with and without ack, both ways.
			if err := nsp.ServerSideEmit(ctx, "sse", "go->node", []byte{5}); err != nil {
				t.Fatal(err)
			}
			ev := m.node.NextEvent(nil)
			var sse struct {
				Event string
				Args  []json.RawMessage
			}
			_ = json.Unmarshal(ev, &sse)
			if sse.Event != "sse" || len(sse.Args) != 2 || string(sse.Args[0]) != `"go->node"` {
				t.Errorf("node got %s", ev)
			} else if b, err := sioclient.AsBin(sse.Args[1]); err != nil || !bytes.Equal(b, []byte{5}) {
				t.Errorf("node got binary %s (%v)", sse.Args[1], err)
			}
			answers, err := nsp.ServerSideEmitWithAck(ctx, "sse-ack", 1)
			if err != nil || len(answers) != 1 {
				t.Fatalf("go serverSideEmitWithAck: %d answers, %v", len(answers), err)
			}
			if got := string(answers[0].Raw(0)); got != `{"from":"node","got":[1]}` {
				t.Errorf("node answered %s", got)
			}
			m.node.NextEvent(nil)
			m.node.MustCall(map[string]any{"cmd": "serverSideEmit", "event": "sse", "args": []any{"node->go", map[string]string{"$bin": b64([]byte{6})}}})
			e := m.gn.nextSSE(t)
			if e.event != "sse" || string(e.args.Raw(0)) != `"node->go"` {
				t.Errorf("go got %s %v", e.event, rawArgs(e.args))
			}
			if im.mode != redisadapter.Classic {
				// The sharded and streams adapters send binary as msgpack: a
				// real []byte.
				if b, ok := e.args.Bytes(1); !ok || !bytes.Equal(b, []byte{6}) {
					t.Errorf("go got binary %s", e.args.Raw(1))
				}
			} else if string(e.args.Raw(1)) != `{"type":"Buffer","data":[6]}` {
				// The classic adapter's requests are JSON: a Buffer's JSON form,
				// as a Node server gets it.
				t.Errorf("go got %s", e.args.Raw(1))
			}
			var res struct {
				Error     *string
				Responses []map[string]any
			}
			if err := json.Unmarshal(m.node.MustCall(map[string]any{"cmd": "serverSideEmitWithAck", "event": "sse-ack", "args": []any{"x"}}), &res); err != nil {
				t.Fatal(err)
			}
			if res.Error != nil || len(res.Responses) != 1 || res.Responses[0]["from"] != "go" {
				t.Errorf("node serverSideEmitWithAck: %+v", res)
			}
			m.gn.nextSSE(t)

			// Broadcast with ack across both, from each side.
			type ackRes struct {
				res []socketio.Args
				err error
			}
			done := make(chan ackRes, 1)
			go func() {
				r, err := nsp.Timeout(waitTimeout).To("org:2").EmitWithAck(ctx, "q", "go", []byte{1})
				done <- ackRes{r, err}
			}()
			for _, name := range []string{"g2", "n2"} {
				ev := m.clients[name].Next("q")
				if b, err := sioclient.AsBin(ev.Args[1]); err != nil || b[0] != 1 {
					t.Errorf("%s: q %s", name, ev)
				}
				m.clients[name].Ack(ev, name, "ignored second arg")
			}
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			var froms []string
			for _, a := range r.res {
				s, _ := a.String(0)
				froms = append(froms, s)
			}
			slices.Sort(froms)
			if strings.Join(froms, ",") != "g2,n2" {
				t.Errorf("go broadcast acks %v", froms)
			}
			// From Node, with a binary ack from the Go client. The two org:1
			// clients are replaced by auto-acking ones; in the dynamic sharded
			// modes the room's channel is left and re-subscribed, and the
			// new clients connect only once both servers have unsubscribed:
			// Node's sharded adapter (node-redis 6.3) was seen to lose the
			// subscription of a room deleted and re-created at once (its
			// SUNSUBSCRIBE and SSUBSCRIBE cross); this side re-reads the
			// room's state instead.
			for _, name := range []string{"g1", "n1"} {
				m.clients[name].Close()
			}
			dynamic := im.mode == redisadapter.Sharded && im.sub != redisadapter.Static
			if dynamic {
				m.redis.WaitNumSub(t, "socket.io#/#org:1#", true, 0, waitTimeout)
			}
			for _, name := range []string{"g1", "n1"} {
				m.clients[name] = m.d.Connect(urlOf(m, name)+"/", sioclient.Options{
					Name: name + "-auto", Transports: []string{"websocket"},
					Query:   map[string]string{"rooms": "org:1", "name": name},
					AutoAck: []any{map[string]any{"from": name, "bin": sioclient.Bin([]byte{8})}},
				})
				m.clients[name].WaitConnect()
			}
			if dynamic {
				m.redis.WaitNumSub(t, "socket.io#/#org:1#", true, 2, waitTimeout)
			}
			var nres struct {
				Error     *string
				Responses []json.RawMessage
			}
			if err := json.Unmarshal(m.node.MustCall(map[string]any{"cmd": "broadcastAck", "rooms": []string{"org:1"}, "event": "q", "args": []any{"node"}, "timeout": 10000}), &nres); err != nil {
				t.Fatal(err)
			}
			if nres.Error != nil || len(nres.Responses) != 2 {
				t.Fatalf("node broadcast acks: %+v", nres)
			}
			for _, raw := range nres.Responses {
				var v struct {
					From string
					Bin  sioclient.Binary
				}
				if err := json.Unmarshal(raw, &v); err != nil || !bytes.Equal(v.Bin, []byte{8}) {
					t.Errorf("node got ack %s (%v)", raw, err)
				}
			}

			// socketsJoin from Node reaches Go's sockets; disconnectSockets
			// from Go reaches Node's.
			m.node.MustCall(map[string]any{"cmd": "socketsJoin", "rooms": []string{"user:2"}, "join": []string{"club"}})
			wait.For(t, "g2 joined club", func() bool { return nsp.RoomSize("club") == 1 })
			if err := nsp.In("org:2").SocketsLeave(ctx, "user:1"); err != nil {
				t.Fatal(err)
			}
			var rooms []string
			wait.For(t, "n2 left user:1 on node", func() bool {
				_ = json.Unmarshal(m.node.MustCall(map[string]any{"cmd": "localRooms"}), &rooms)
				return !slices.Contains(rooms, "user:1")
			})
			if im.mode == redisadapter.Classic {
				all, err := nsp.AllRooms(ctx)
				if err != nil || !slices.Contains(all, "club") || !slices.Contains(all, "org:2") {
					t.Errorf("go allRooms = %v, %v", all, err)
				}
				var nall []string
				_ = json.Unmarshal(m.node.MustCall(map[string]any{"cmd": "allRooms"}), &nall)
				if !slices.Contains(nall, "club") || !slices.Contains(nall, "user:2") || slices.Contains(nall, "user:1") {
					t.Errorf("node allRooms = %v", nall)
				}
			}
			if err := nsp.In("org:2").DisconnectSockets(ctx, true); err != nil {
				t.Fatal(err)
			}
			m.clients["g2"].WaitDisconnect()
			m.clients["n2"].WaitDisconnect()
		})
	}
}

func urlOf(m *mixed, name string) string {
	if name[0] == 'n' {
		return m.node.URL
	}
	return m.gn.URL
}

// TestNodeEmitter: @socket.io/redis-emitter 5.1 publishing to a cluster of
// a Go and a Node server (classic mode: the emitter uses PUBLISH).
func TestNodeEmitter(t *testing.T) {
	r := redistest.Start(t)
	gn := startGoNode(t, "go", testConfig(t, r.Addr, redisadapter.Classic), "/", "/custom")
	node := startNodeServer(t, r, "--nsps", "/,/custom")
	em := redistest.StartNode(t, "redis-emitter.mjs", "--redis", r.URL())
	em.Timeout = waitTimeout
	d := startDriver(t)
	g1 := client(t, d, gn.URL, "/", "g1", "room1", "room2")
	g2 := client(t, d, gn.URL, "/", "g2", "room3")
	gc := client(t, d, gn.URL, "/custom", "gc", "r1")
	n1 := client(t, d, node.URL, "/", "n1", "room1")
	r.WaitNumSub(t, "socket.io-request#/#", false, 2, waitTimeout)
	r.WaitNumSub(t, "socket.io-request#/custom#", false, 2, waitTimeout)

	bin := map[string]string{"$bin": b64([]byte{9})}
	em.MustCall(map[string]any{"cmd": "emit", "rooms": []string{"room1"}, "event": "from-emitter", "args": []any{42, bin}})
	for _, c := range []*sioclient.Client{g1, n1} {
		ev := c.Next("from-emitter")
		if b, err := sioclient.AsBin(ev.Args[1]); string(ev.Args[0]) != "42" || err != nil || b[0] != 9 {
			t.Errorf("%s: %s", c.Name(), ev)
		}
	}
	g2.NoEvent("from-emitter", 50*time.Millisecond)
	// Several rooms, except, another namespace.
	em.MustCall(map[string]any{"cmd": "emit", "rooms": []string{"room2", "room3"}, "except": []string{"room1"}, "compress": false, "event": "multi"})
	g2.Next("multi")
	g1.NoEvent("multi", 50*time.Millisecond)
	em.MustCall(map[string]any{"cmd": "emit", "nsp": "/custom", "rooms": []string{"r1"}, "event": "e-custom", "args": []any{"c"}})
	gc.Next("e-custom")
	// serverSideEmit reaches both servers ("emitter" is nobody's uid).
	em.MustCall(map[string]any{"cmd": "serverSideEmit", "args": []any{"sse", "from-emitter"}})
	if e := gn.nextSSE(t); e.event != "sse" || string(e.args.Raw(0)) != `"from-emitter"` {
		t.Errorf("go got %s %v", e.event, rawArgs(e.args))
	}
	node.NextEvent(nil)
	// socketsJoin / socketsLeave / disconnectSockets (requests without uid).
	em.MustCall(map[string]any{"cmd": "socketsJoin", "rooms": []string{"room3"}, "join": []string{"joined"}})
	wait.For(t, "g2 joined", func() bool { return gn.srv.Of("/").RoomSize("joined") == 1 })
	em.MustCall(map[string]any{"cmd": "socketsLeave", "rooms": []string{"room1"}, "leave": []string{"room2"}})
	wait.For(t, "g1 left room2", func() bool { return gn.srv.Of("/").RoomSize("room2") == 0 })
	em.MustCall(map[string]any{"cmd": "disconnectSockets", "rooms": []string{"joined"}})
	if r := g2.WaitDisconnect(); r != "io server disconnect" {
		t.Errorf("g2 disconnect: %s", r)
	}
}

// TestWireMatchesNodeAdapter performs the same operations on a Node server
// (@socket.io/redis-adapter 8.3) and on a Go server and compares what
// reaches Redis, byte for byte once the random uids are masked.
func TestWireMatchesNodeAdapter(t *testing.T) {
	for _, im := range interopModes[:2] {
		t.Run(im.name, func(t *testing.T) {
			r := redistest.Start(t)
			cfg := testConfig(t, r.Addr, im.mode)
			cfg.ProbeInterval = -1 // no probe messages in the capture
			gn := startGoNode(t, "go", cfg)
			node := startNodeServer(t, r, im.nodeArgs...)
			var sub *redistest.Subscription
			sharded := im.mode == redisadapter.Sharded
			if sharded {
				sub = r.SSubscribe(t, "socket.io#/#", "socket.io#/#room1#")
			} else {
				sub = r.PSubscribe(t, "*")
			}
			nsp := gn.srv.Of("/")
			ctx := ctxT(t)
			bin := map[string]string{"$bin": b64([]byte{1, 2, 3})}
			for _, tc := range []struct {
				name string
				node map[string]any
				goOp func() error
			}{
				{"one room, binary", map[string]any{"cmd": "broadcast", "rooms": []string{"room1"}, "event": "bin", "args": []any{bin}},
					func() error { return nsp.To("room1").Emit("bin", []byte{1, 2, 3}) }},
				{"everyone", map[string]any{"cmd": "broadcast", "event": "hello", "args": []any{"world", 1, 1.5, map[string]any{"a": true}}},
					func() error { return nsp.Emit("hello", "world", 1, 1.5, map[string]any{"a": true}) }},
				{"rooms, except, flags", map[string]any{"cmd": "broadcast", "rooms": []string{"room1", "room2"}, "except": []string{"room3"}, "volatile": true, "compress": false, "event": "x"},
					func() error { return nsp.To("room1", "room2").Except("room3").Volatile().Compress(false).Emit("x") }},
				{"socketsJoin", map[string]any{"cmd": "socketsJoin", "rooms": []string{"room1"}, "join": []string{"j"}},
					func() error { return nsp.In("room1").SocketsJoin(ctx, "j") }},
				{"disconnectSockets", map[string]any{"cmd": "disconnectSockets", "except": []string{"r"}, "close": true},
					func() error { return nsp.Except("r").DisconnectSockets(ctx, true) }},
				{"serverSideEmit", map[string]any{"cmd": "serverSideEmit", "event": "sse", "args": []any{1, "two"}},
					func() error { return nsp.ServerSideEmit(ctx, "sse", 1, "two") }},
			} {
				t.Run(tc.name, func(t *testing.T) {
					node.MustCall(tc.node)
					want := sub.Next(t, waitTimeout)
					if err := tc.goOp(); err != nil {
						t.Fatal(err)
					}
					got := sub.Next(t, waitTimeout)
					if tc.name == "serverSideEmit" {
						// Each server receives the other's: drain them.
						node.NextEvent(nil)
						gn.nextSSE(t)
					}
					w, g := maskUID(want.Payload), maskUID(got.Payload)
					if want.Channel != got.Channel || !bytes.Equal(w, g) {
						t.Errorf("Node: %s %q\nGo:   %s %q", want.Channel, w, got.Channel, g)
					}
				})
			}
		})
	}
}

// maskUID replaces the publisher's uid (6 characters in classic mode, 16
// hex digits in sharded mode) with X's.
func maskUID(p []byte) []byte {
	p = append([]byte(nil), p...)
	switch {
	case len(p) > 8 && p[0] == 0x93 && p[1] == 0xa6: // msgpack [uid(6), ...]
		copy(p[2:8], "XXXXXX")
	case bytes.HasPrefix(p, []byte(`{"uid":"`)):
		copy(p[8:14], "XXXXXX")
	default:
		if i := bytes.LastIndex(p, []byte(`"uid":"`)); i >= 0 && i+7+16 <= len(p) {
			copy(p[i+7:i+7+16], "XXXXXXXXXXXXXXXX")
		} else if i := bytes.Index(p, []byte("\xa3uid\xb0")); i >= 0 {
			copy(p[i+5:i+5+16], "XXXXXXXXXXXXXXXX")
		}
	}
	return p
}

// TestSpecificResponseChannel: with publishOnSpecificResponseChannel on
// both sides, answers go to the requester's own channel.
func TestSpecificResponseChannel(t *testing.T) {
	r := redistest.Start(t)
	cfg := testConfig(t, r.Addr, redisadapter.Classic)
	cfg.PublishOnSpecificResponseChannel = true
	gn := startGoNode(t, "go", cfg)
	node := startNodeServer(t, r, "--specific-response-channel")
	d := startDriver(t)
	client(t, d, gn.URL, "/", "g1", "org:1")
	client(t, d, node.URL, "/", "n1", "org:1")
	r.WaitNumSub(t, "socket.io-request#/#", false, 2, waitTimeout)
	responses := r.PSubscribe(t, "socket.io-response#/#*")
	ctx := ctxT(t)

	list, err := gn.srv.Of("/").FetchSockets(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("go fetchSockets: %v, %v", socketIDs(list), err)
	}
	if m := responses.Next(t, waitTimeout); m.Channel == "socket.io-response#/#" {
		t.Errorf("Node answered on the common channel")
	}
	var fromNode []any
	if err := json.Unmarshal(node.MustCall(map[string]any{"cmd": "fetchSockets"}), &fromNode); err != nil || len(fromNode) != 2 {
		t.Fatalf("node fetchSockets: %v, %v", fromNode, err)
	}
	if m := responses.Next(t, waitTimeout); m.Channel == "socket.io-response#/#" {
		t.Errorf("Go answered on the common channel")
	}
	// serverSideEmit answers always use the common channel (as in Node).
	answers, err := gn.srv.Of("/").ServerSideEmitWithAck(ctx, "sse-ack", 1)
	if err != nil || len(answers) != 1 {
		t.Fatalf("serverSideEmitWithAck: %d answers, %v", len(answers), err)
	}
	if m := responses.Next(t, waitTimeout); m.Channel != "socket.io-response#/#" {
		t.Errorf("serverSideEmit answered on %s", m.Channel)
	}
}

// TestLegacyRequests: the request forms of adapters before 8.0 (SOCKETS,
// and remoteJoin/remoteLeave/remoteDisconnect by socket id) are answered.
func TestLegacyRequests(t *testing.T) {
	r := redistest.Start(t)
	gn := startGoNode(t, "go", testConfig(t, r.Addr, redisadapter.Classic))
	d := startDriver(t)
	c := client(t, d, gn.URL, "/", "g1", "org:1")
	responses := r.PSubscribe(t, "socket.io-response#/#*")
	sid := gn.srv.Of("/").Sockets()[0].ID()
	publish := func(js string) {
		t.Helper()
		if _, err := r.Do("PUBLISH", "socket.io-request#/#", js); err != nil {
			t.Fatal(err)
		}
	}
	publish(`{"uid":"old","requestId":"r0","type":0,"rooms":["org:1"]}`)
	if m := responses.Next(t, waitTimeout); string(m.Payload) != `{"requestId":"r0","sockets":["`+sid+`"]}` {
		t.Errorf("SOCKETS answer %s", m.Payload)
	}
	publish(`{"uid":"old","requestId":"r1","type":2,"sid":"` + sid + `","room":"legacy"}`)
	if m := responses.Next(t, waitTimeout); string(m.Payload) != `{"requestId":"r1"}` {
		t.Errorf("remoteJoin answer %s", m.Payload)
	}
	if gn.srv.Of("/").RoomSize("legacy") != 1 {
		t.Error("remoteJoin not applied")
	}
	publish(`{"uid":"old","requestId":"r2","type":3,"sid":"` + sid + `","room":"legacy"}`)
	responses.Next(t, waitTimeout)
	if gn.srv.Of("/").RoomSize("legacy") != 0 {
		t.Error("remoteLeave not applied")
	}
	publish(`{"uid":"old","requestId":"r3","type":4,"sid":"nobody-here","close":false}`) // not ours: no answer
	publish(`{"uid":"old","requestId":"r4","type":4,"sid":"` + sid + `","close":false}`)
	if m := responses.Next(t, waitTimeout); string(m.Payload) != `{"requestId":"r4"}` {
		t.Errorf("remoteDisconnect answer %s", m.Payload)
	}
	c.WaitDisconnect()
	// Malformed requests are counted and ignored.
	publish(`{"type":`)
	publish("\x93\xc1")
	wait.For(t, "decode errors counted", func() bool { return gn.cluster.Stats().DecodeErrors >= 2 })
}
