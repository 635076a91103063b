package redisadapter_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// modes are the configurations every cluster test runs in.
var modes = []struct {
	name string
	mode redisadapter.Mode
	sub  redisadapter.SubscriptionMode
}{
	{"classic", redisadapter.Classic, 0},
	{"sharded-dynamic", redisadapter.Sharded, redisadapter.Dynamic},
	{"sharded-static", redisadapter.Sharded, redisadapter.Static},
	{"sharded-dynamic-private", redisadapter.Sharded, redisadapter.DynamicPrivate},
	{"streams", redisadapter.Streams, 0},
}

// threeNodes starts three Go nodes on one Redis with two clients each.
type cluster struct {
	redis   *redistest.Server
	nodes   []*goNode
	d       *sioclient.Driver
	clients map[string]*sioclient.Client
	rooms   map[string][]string // client → rooms
}

// clientRooms: a user's devices on different nodes, two organisations.
var clientRooms = map[string][]string{
	"a1": {"org:1", "user:1"}, "a2": {"org:2", "user:2"},
	"b1": {"org:1", "user:3"}, "b2": {"org:2", "user:1"},
	"c1": {"org:1", "user:2"}, "c2": {"org:1", "user:1"},
}

func startCluster(t *testing.T, mode redisadapter.Mode, sub redisadapter.SubscriptionMode) *cluster {
	t.Helper()
	r := redistest.Start(t)
	cl := &cluster{redis: r, clients: map[string]*sioclient.Client{}, rooms: clientRooms}
	for _, name := range []string{"a", "b", "c"} {
		cfg := testConfig(t, r.Addr, mode)
		cfg.SubscriptionMode = sub
		cl.nodes = append(cl.nodes, startGoNode(t, name, cfg))
	}
	cl.d = startDriver(t)
	for i, n := range cl.nodes {
		for _, k := range []string{"1", "2"} {
			name := string(rune('a'+i)) + k
			cl.clients[name] = client(t, cl.d, n.URL, "/", name, clientRooms[name]...)
		}
	}
	for _, n := range cl.nodes {
		waitSubscribed(t, n.cluster) // room channels in the sharded dynamic modes
	}
	return cl
}

func (cl *cluster) node(name string) *goNode {
	for _, n := range cl.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// TestBroadcastExactlyOnceInOrder: each node broadcasts to organisation
// and user rooms (one room, several rooms, except, everyone), concurrently;
// every client receives exactly what its rooms select, once, and each
// publisher's events in the order they were sent.
func TestBroadcastExactlyOnceInOrder(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cl := startCluster(t, m.mode, m.sub)
			type target struct {
				to, except []string
			}
			targets := []target{
				{to: []string{"org:1"}},
				{to: []string{"user:1"}},
				{to: []string{"org:1", "user:1"}}, // a1 and c2 are in both: once
				{except: []string{"org:2"}},
				{},
				{to: []string{"org:2"}, except: []string{"user:1"}},
			}
			const perNode = 30
			var wg sync.WaitGroup
			errs := make(chan error, len(cl.nodes))
			for _, n := range cl.nodes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					nsp := n.srv.Of("/")
					for i := range perNode {
						tg := targets[i%len(targets)]
						op := nsp.To(tg.to...).Except(tg.except...)
						if err := op.Emit("ev", n.name, i); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			selects := func(rooms []string, tg target) bool {
				in := func(rs []string) bool {
					for _, r := range rs {
						if slices.Contains(rooms, r) {
							return true
						}
					}
					return false
				}
				return (len(tg.to) == 0 || in(tg.to)) && !in(tg.except)
			}
			for name, c := range cl.clients {
				want := map[string][]int{}
				total := 0
				for _, n := range cl.nodes {
					for i := range perNode {
						if selects(cl.rooms[name], targets[i%len(targets)]) {
							want[n.name] = append(want[n.name], i)
							total++
						}
					}
				}
				got := map[string][]int{}
				for range total {
					args := eventArgs(t, c.Next("ev"))
					got[args[0].(string)] = append(got[args[0].(string)], int(args[1].(float64)))
				}
				c.NoEvent("ev", 200*time.Millisecond) // nothing twice
				for _, n := range cl.nodes {
					if fmt.Sprint(got[n.name]) != fmt.Sprint(want[n.name]) {
						t.Errorf("%s got from %s %v, want %v", name, n.name, got[n.name], want[n.name])
					}
				}
			}
		})
	}
}

func TestFetchSocketsJoinLeaveDisconnect(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cl := startCluster(t, m.mode, m.sub)
			a, b := cl.node("a").srv.Of("/"), cl.node("b").srv.Of("/")
			ctx := ctxT(t)

			// fetchSockets from every node sees the same sockets.
			all, err := a.FetchSockets(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 6 {
				t.Fatalf("fetchSockets: %d sockets, want 6", len(all))
			}
			org1, err := b.In("org:1").FetchSockets(ctx)
			if err != nil {
				t.Fatal(err)
			}
			names := []string{}
			for _, s := range org1 {
				names = append(names, dataName(t, s))
				if s.Handshake == nil || s.Handshake.Query().Get("rooms") == "" || s.Handshake.Address == "" {
					t.Errorf("socket %s handshake %+v", s.ID, s.Handshake)
				}
				if !slices.Contains(s.Rooms, s.ID) || !slices.Contains(s.Rooms, "org:1") {
					t.Errorf("socket %s rooms %v", s.ID, s.Rooms)
				}
			}
			slices.Sort(names)
			if strings.Join(names, ",") != "a1,b1,c1,c2" {
				t.Errorf("fetchSockets in org:1 = %v", names)
			}
			if n, err := a.Adapter().ServerCount(ctx); err != nil || n != 3 {
				t.Errorf("serverCount = %d, %v", n, err)
			}

			// socketsJoin from a: every org:2 socket joins "vip", across nodes.
			if err := a.In("org:2").SocketsJoin(ctx, "vip"); err != nil {
				t.Fatal(err)
			}
			wait.For(t, "vip joined on every node", func() bool {
				return cl.node("a").srv.Of("/").RoomSize("vip") == 1 && cl.node("b").srv.Of("/").RoomSize("vip") == 1
			})
			for _, n := range cl.nodes {
				waitSubscribed(t, n.cluster)
			}
			if err := b.To("vip").Emit("vip", 1); err != nil {
				t.Fatal(err)
			}
			cl.clients["a2"].Next("vip")
			cl.clients["b2"].Next("vip")
			for _, name := range []string{"a1", "b1", "c1", "c2"} {
				cl.clients[name].NoEvent("vip", 50*time.Millisecond)
			}
			vip, err := cl.node("c").srv.Of("/").In("vip").FetchSockets(ctx)
			if err != nil || len(vip) != 2 {
				t.Fatalf("fetchSockets in vip: %v, %v", socketIDs(vip), err)
			}

			// socketsLeave from c.
			if err := cl.node("c").srv.Of("/").In("vip").Except("user:1").SocketsLeave(ctx, "vip"); err != nil {
				t.Fatal(err)
			}
			wait.For(t, "a2 left vip", func() bool { return cl.node("a").srv.Of("/").RoomSize("vip") == 0 })
			if cl.node("b").srv.Of("/").RoomSize("vip") != 1 {
				t.Error("b2 (user:1) left vip")
			}

			// Remote socket operations through a fetched RemoteSocket.
			var b2 *socketio.RemoteSocket
			for _, s := range all {
				if dataName(t, s) == "b2" {
					b2 = s
				}
			}
			if _, local := b2.Local(); local {
				t.Fatal("b2 is local to node a")
			}
			if err := b2.Emit("direct", "hi"); err != nil {
				t.Fatal(err)
			}
			if ev := cl.clients["b2"].Next("direct"); string(ev.Args[0]) != `"hi"` {
				t.Errorf("direct = %s", ev)
			}

			// disconnectSockets from a reaches the user:1 sockets everywhere.
			if err := a.In("user:1").DisconnectSockets(ctx, false); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"a1", "b2", "c2"} {
				if r := cl.clients[name].WaitDisconnect(); r != "io server disconnect" {
					t.Errorf("%s: disconnect reason %q", name, r)
				}
			}
			wait.For(t, "3 sockets left", func() bool {
				list, err := b.FetchSockets(ctx)
				return err == nil && len(list) == 3
			})
		})
	}
}

func dataName(t *testing.T, s *socketio.RemoteSocket) string {
	t.Helper()
	var m map[string]any
	switch d := s.Data.(type) {
	case map[string]any:
		m = d
	case json.RawMessage:
		if err := json.Unmarshal(d, &m); err != nil {
			t.Fatalf("socket %s data %s: %v", s.ID, d, err)
		}
	default:
		t.Fatalf("socket %s data %T %v", s.ID, s.Data, s.Data)
	}
	name, _ := m["name"].(string)
	return name
}

func TestBroadcastWithAckAndServerSideEmit(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cl := startCluster(t, m.mode, m.sub)
			a := cl.node("a").srv.Of("/")
			// Every org:1 client answers with its name.
			done := make(chan []socketio.Args, 1)
			errc := make(chan error, 1)
			go func() {
				res, err := a.Timeout(waitTimeout).To("org:1").EmitWithAck(ctxT(t), "question", 42)
				done <- res
				errc <- err
			}()
			for _, name := range []string{"a1", "b1", "c1", "c2"} {
				ev := cl.clients[name].Next("question")
				cl.clients[name].Ack(ev, map[string]any{"from": name})
			}
			res, err := <-done, <-errc
			if err != nil {
				t.Fatal(err)
			}
			var froms []string
			for _, r := range res {
				var v struct{ From string }
				if err := r.Decode(0, &v); err != nil {
					t.Fatal(err)
				}
				froms = append(froms, v.From)
			}
			slices.Sort(froms)
			if strings.Join(froms, ",") != "a1,b1,c1,c2" {
				t.Errorf("acks from %v", froms)
			}

			// serverSideEmit: the other nodes get it, not the sender.
			ctx := ctxT(t)
			if err := a.ServerSideEmit(ctx, "sse", "hello", []byte{1, 2}); err != nil {
				t.Fatal(err)
			}
			for _, n := range cl.nodes[1:] {
				e := n.nextSSE(t)
				if e.event != "sse" || string(e.args.Raw(0)) != `"hello"` {
					t.Errorf("%s: sse %s %v", n.name, e.event, rawArgs(e.args))
				}
				if b, ok := e.args.Bytes(1); !ok || string(b) != "\x01\x02" {
					t.Errorf("%s: binary argument %s", n.name, e.args.Raw(1))
				}
			}
			answers, err := cl.node("b").srv.Of("/").ServerSideEmitWithAck(ctx, "sse-ack", "q")
			if err != nil {
				t.Fatal(err)
			}
			var from []string
			for _, ans := range answers {
				var v struct{ From string }
				if err := ans.Decode(0, &v); err != nil {
					t.Fatal(err)
				}
				from = append(from, v.From)
			}
			slices.Sort(from)
			if strings.Join(from, ",") != "a,c" {
				t.Errorf("serverSideEmitWithAck answers from %v", from)
			}
			for _, n := range []*goNode{cl.node("a"), cl.node("c")} {
				n.nextSSE(t)
			}
			if m.mode == redisadapter.Classic {
				rooms, err := a.AllRooms(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range []string{"org:1", "org:2", "user:1", "user:2", "user:3"} {
					if !slices.Contains(rooms, r) {
						t.Errorf("allRooms lacks %s: %v", r, rooms)
					}
				}
			}
		})
	}
}

// TestDynamicRoomChurn: rooms joined and left concurrently settle on the
// right subscriptions (one channel per room with local members).
func TestDynamicRoomChurn(t *testing.T) {
	r := redistest.Start(t)
	cfg := testConfig(t, r.Addr, redisadapter.Sharded)
	a := startGoNode(t, "a", cfg)
	d := startDriver(t)
	for i := range 3 {
		client(t, d, a.URL, "/", fmt.Sprintf("c%d", i))
	}
	socks := a.srv.Of("/").Sockets()
	var wg sync.WaitGroup
	for _, s := range socks {
		for g := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 200 {
					room := fmt.Sprintf("churn:%d", (i+g)%4)
					s.Join(room)
					s.Leave(room)
				}
			}()
		}
	}
	wg.Wait()
	socks[0].Join("churn:0")
	waitSubscribed(t, a.cluster)
	for i := range 4 {
		want := 0
		if i == 0 {
			want = 1
		}
		if n, err := r.NumSub(fmt.Sprintf("socket.io#/#churn:%d#", i), true); err != nil || n != want {
			t.Errorf("churn:%d has %d subscribers (%v), want %d", i, n, err, want)
		}
	}
	socks[0].Leave("churn:0")
	waitSubscribed(t, a.cluster)
	r.WaitNumSub(t, "socket.io#/#churn:0#", true, 0, waitTimeout)
}

// TestLocalStaysOnThisNode: operations with the Local flag act on this
// node's sockets and never reach the others, in every mode (the namespace
// handles the flag; adapters never see it).
func TestLocalStaysOnThisNode(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cl := startCluster(t, m.mode, m.sub)
			a := cl.node("a").srv.Of("/")
			ctx := ctxT(t)

			if err := a.Local().To("org:1").Emit("ev", "local"); err != nil {
				t.Fatal(err)
			}
			// Then a cluster-wide broadcast to the same room: a local one
			// wrongly published would come before it on its channel.
			if err := a.To("org:1").Emit("ev", "all"); err != nil {
				t.Fatal(err)
			}
			if got := eventArgs(t, cl.clients["a1"].Next("ev")); got[0] != "local" {
				t.Fatalf("a1 first got %v, want the local broadcast", got)
			}
			for _, name := range []string{"a1", "b1", "c1", "c2"} {
				if got := eventArgs(t, cl.clients[name].Next("ev")); got[0] != "all" {
					t.Fatalf("%s got %v, want the cluster-wide broadcast", name, got)
				}
				cl.clients[name].NoEvent("ev", 100*time.Millisecond)
			}

			local, err := a.Local().FetchSockets(ctx)
			if err != nil {
				t.Fatal(err)
			}
			names := []string{}
			for _, s := range local {
				names = append(names, dataName(t, s))
			}
			slices.Sort(names)
			if strings.Join(names, ",") != "a1,a2" {
				t.Errorf("local fetchSockets = %v, want a1,a2", names)
			}

			if err := a.Local().In("org:1").SocketsJoin(ctx, "lvip"); err != nil {
				t.Fatal(err)
			}
			if err := a.In("org:2").SocketsJoin(ctx, "marker"); err != nil {
				t.Fatal(err)
			}
			// The cluster-wide join, sent after the local one, reached b:
			// a local join wrongly sent would have too.
			wait.For(t, "the cluster-wide join on b", func() bool { return cl.node("b").srv.Of("/").RoomSize("marker") == 1 })
			if n := a.RoomSize("lvip"); n != 1 {
				t.Errorf("lvip on a has %d sockets, want 1 (a1)", n)
			}
			for _, name := range []string{"b", "c"} {
				if n := cl.node(name).srv.Of("/").RoomSize("lvip"); n != 0 {
					t.Errorf("lvip on %s has %d sockets: the local join left node a", name, n)
				}
			}
		})
	}
}
