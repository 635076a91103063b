package redisadapter_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/operate/realtime/internal/faultproxy"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
	"github.com/operate/realtime/socketio/redisadapter"
)

// The streams mode's own tests: connection state recovery across nodes,
// restarts and failures. The cross-node behaviours every mode shares run
// in streams mode from cluster_test.go (modes), and against Node's
// @socket.io/redis-streams-adapter from interop_test.go.

// streamsNode starts a streams-mode node with connection state recovery.
func streamsNode(t *testing.T, name string, r *redistest.Server, window time.Duration, adjust ...func(*redisadapter.Config)) *goNode {
	t.Helper()
	cfg := testConfig(t, r.Addr, redisadapter.Streams)
	for _, f := range adjust {
		f(&cfg)
	}
	c, err := redisadapter.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return startGoNodeOpts(t, name, c, nodeOptions{wait: true, recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: window}})
}

// historyNode starts a streams-mode node with recovery and per-room
// histories for the "org:" rooms.
func historyNode(t *testing.T, name string, r *redistest.Server, window time.Duration) *goNode {
	t.Helper()
	c, err := redisadapter.New(testConfig(t, r.Addr, redisadapter.Streams))
	if err != nil {
		t.Fatal(err)
	}
	return startGoNodeOpts(t, name, c, nodeOptions{wait: true, recovery: &socketio.RecoveryOptions{
		MaxDisconnectionDuration: window,
		HistoryRooms:             func(room string) bool { return strings.HasPrefix(room, "org:") },
	}})
}

// stopNode shuts a node down as a deployment does (clients disconnected
// with "server shutting down", which they recover from elsewhere).
func stopNode(t *testing.T, n *goNode) {
	t.Helper()
	if err := n.srv.Shutdown(ctxT(t)); err != nil {
		t.Errorf("shutdown of %s: %v", n.name, err)
	}
	_ = n.cluster.Close()
}

// balancer is a load balancer in front of the nodes: a TCP proxy whose
// target the test moves, so that a client reconnects to another node.
type balancer struct {
	*faultproxy.Proxy
	URL string
}

func newBalancer(t *testing.T, firstURL string) *balancer {
	t.Helper()
	p, err := faultproxy.New(hostOf(firstURL))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return &balancer{Proxy: p, URL: "http://" + p.Addr()}
}

func hostOf(url string) string { return strings.TrimPrefix(url, "http://") }

// away cuts the client's connections and refuses new ones until back is
// called, when they go to the server at nextURL.
func (b *balancer) away(nextURL string) (back func()) {
	b.Refuse(time.Hour)
	b.SetTarget(hostOf(nextURL))
	b.Cut()
	return func() { b.Refuse(0) }
}

// recoveringClient connects through the balancer, reconnecting fast.
func recoveringClient(t *testing.T, d *sioclient.Driver, b *balancer, name string, transports []string, rooms ...string) *sioclient.Client {
	t.Helper()
	c := d.Connect(b.URL+"/", sioclient.Options{
		Name: name, Transports: transports,
		Query:             map[string]string{"rooms": strings.Join(rooms, ","), "name": name},
		ReconnectionDelay: 50, ReconnectionDelayMax: 200,
	})
	return c
}

// withOffset splits an event's arguments from its offset (a stream id).
func withOffset(t *testing.T, ev sioclient.Event) (args []json.RawMessage, offset string) {
	t.Helper()
	if len(ev.Args) == 0 {
		t.Fatalf("%s: no offset", ev)
	}
	if err := json.Unmarshal(ev.Args[len(ev.Args)-1], &offset); err != nil {
		t.Fatalf("%s: last argument is not an offset", ev)
	}
	if _, ok := rediswire.ParseStreamID(offset); !ok {
		t.Fatalf("%s: offset %q is not a stream id", ev, offset)
	}
	return ev.Args[:len(ev.Args)-1], offset
}

// TestStreamsRecoveryAcrossNodes: a client moves from node to node
// (dropped, held away while events are published, let back to another
// node), while one node publishes without pause. Every reconnection
// recovers the same socket, and the client receives every event meant for
// it exactly once, in order: those published while it was away (replayed
// from the stream before the CONNECT reply) and those published during the
// replay (buffered, de-duplicated) alike. With per-room histories, the
// replays come from the room's and the shared history streams.
func TestStreamsRecoveryAcrossNodes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		transports []string
		histories  bool
	}{{"websocket", []string{"websocket"}, false}, {"polling-then-websocket", nil, false}, {"websocket/histories", []string{"websocket"}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := redistest.Start(t)
			node := streamsNode
			if tc.histories {
				node = func(t *testing.T, name string, r *redistest.Server, window time.Duration, _ ...func(*redisadapter.Config)) *goNode {
					return historyNode(t, name, r, window)
				}
			}
			nodes := []*goNode{
				node(t, "a", r, time.Minute), node(t, "b", r, time.Minute), node(t, "c", r, time.Minute),
			}
			lb := newBalancer(t, nodes[0].URL)
			d := startDriver(t)
			c := recoveringClient(t, d, lb, "c", tc.transports, "org:1")
			first := c.WaitConnect()
			if first.Recovered {
				t.Fatal("first connection recovered")
			}
			wait.For(t, "the client on node a", func() bool { return nodes[0].srv.Of("/").RoomSize("org:1") == 1 })

			// Node b publishes without pause: to the client's room, to the
			// whole namespace, and to another room (never the client's).
			nsp := nodes[1].srv.Of("/")
			var sent atomic.Int64 // events meant for the client
			stop, done := make(chan struct{}), make(chan error, 1)
			go func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						done <- nil
						return
					default:
					}
					var err error
					switch i % 3 {
					case 0:
						err = nsp.To("org:1").Emit("seq", sent.Load())
					case 1:
						err = nsp.Emit("seq", sent.Load())
					case 2:
						err = nsp.To("org:2").Emit("other", i)
					}
					if err != nil {
						done <- err
						return
					}
					if i%3 != 2 {
						sent.Add(1)
					}
					time.Sleep(time.Millisecond)
				}
			}()
			next := int64(0)
			var last rediswire.StreamID
			expect := func(upTo int64) {
				t.Helper()
				for next < upTo {
					ev := c.Next("seq")
					args, offset := withOffset(t, ev)
					if len(args) != 1 || string(args[0]) != fmt.Sprint(next) {
						t.Fatalf("got %s, want seq %d", ev, next)
					}
					id, _ := rediswire.ParseStreamID(offset)
					if !last.Less(id) {
						t.Fatalf("%s: offset not after %s", ev, last)
					}
					last = id
					next++
				}
			}
			// The client has an offset before it first goes away.
			expect(1)
			const rounds = 6
			for round := range rounds {
				target := nodes[(round+1)%len(nodes)]
				back := lb.away(target.URL)
				c.WaitDisconnect()
				before := sent.Load()
				wait.For(t, "events published while the client is away", func() bool { return sent.Load() >= before+20 })
				back()
				info := c.WaitReconnect()
				if !info.Recovered || info.SID != first.SID {
					t.Fatalf("round %d (to %s): reconnection %+v, want recovered with sid %s", round, target.name, info, first.SID)
				}
				expect(before + 20)
			}
			close(stop)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if err := nodes[2].srv.Of("/").Emit("end"); err != nil {
				t.Fatal(err)
			}
			expect(sent.Load())
			if ev := c.NextAny(); ev.Name != "end" {
				t.Errorf("after the last seq: %s", ev)
			}
			c.NoEvent("seq", 0)
			c.NoEvent("other", 0)
			if tc.histories {
				for _, key := range []string{"socket.io#history#/#room#org:1", "socket.io#history#/#shared"} {
					if n, err := r.Do("XLEN", key); err != nil || n == "0" {
						t.Errorf("XLEN %s: %s, %v: the history streams were not written", key, n, err)
					}
				}
			}
			t.Logf("%d events over %d reconnections", sent.Load(), rounds)
		})
	}
}

// TestStreamsRecoveryTwiceInARow (raw long-polling, so that the order on
// the wire shows): a client recovers on another node, then stops polling
// without a word (its socket stays on that node until the ping timeout)
// and comes back to a third node with the same private id and a later
// offset: it recovers again, and the event that went to the stale socket
// is replayed. The restored session stays in Redis (GET, not Node's
// GETDEL). Each time the missed event comes before the CONNECT reply.
func TestStreamsRecoveryTwiceInARow(t *testing.T) {
	r := redistest.Start(t)
	a, b, c := streamsNode(t, "a", r, time.Minute), streamsNode(t, "b", r, time.Minute), streamsNode(t, "c", r, time.Minute)
	emit := func(name string) {
		t.Helper()
		if err := c.srv.Of("/").Emit(name); err != nil {
			t.Fatal(err)
		}
	}
	auth := func(pid, offset string) string {
		b, _ := json.Marshal(map[string]string{"pid": pid, "offset": offset})
		return string(b)
	}

	c1 := dialPolling(t, a.URL)
	pkts := c1.connect("")
	sid, pid := connectReply(t, pkts[len(pkts)-1])
	if pid == "" {
		t.Fatalf("CONNECT reply %q without a pid", pkts)
	}
	emit("e0")
	offset := eventOffset(t, c1.poll()[0], "e0")
	// The client closes its transport: node a persists the session.
	c1.post("1")
	wait.For(t, "the disconnection on a", func() bool { return a.srv.Of("/").SocketCount() == 0 })
	emit("e1")

	c2 := dialPolling(t, b.URL)
	pkts = c2.connect(auth(pid, offset))
	if len(pkts) != 2 {
		t.Fatalf("first recovery on b: %q, want e1 then the CONNECT reply", pkts)
	}
	offset = eventOffset(t, pkts[0], "e1")
	if got, _ := connectReply(t, pkts[1]); got != sid {
		t.Fatalf("first recovery: sid %s, want %s", got, sid)
	}

	// c2 stops polling: node b still has its socket.
	emit("e2")
	if b.srv.Of("/").SocketCount() != 1 {
		t.Fatal("node b noticed the silent drop already")
	}
	c3 := dialPolling(t, c.URL)
	pkts = c3.connect(auth(pid, offset))
	if len(pkts) != 2 {
		t.Fatalf("second recovery on c: %q, want e2 then the CONNECT reply", pkts)
	}
	eventOffset(t, pkts[0], "e2")
	if got, _ := connectReply(t, pkts[1]); got != sid {
		t.Fatalf("second recovery: sid %s, want %s", got, sid)
	}
	emit("e3")
	eventOffset(t, c3.poll()[0], "e3")

	// c3 stops polling too; the client reports an older offset (e1's)
	// on a: everything after it is replayed.
	emit("e4")
	c4 := dialPolling(t, a.URL)
	pkts = c4.connect(auth(pid, offset))
	if len(pkts) != 4 {
		t.Fatalf("third recovery from e1's offset: %q, want e2, e3, e4 then the CONNECT reply", pkts)
	}
	for i, name := range []string{"e2", "e3", "e4"} {
		eventOffset(t, pkts[i], name)
	}
}

// TestStreamsRecoveryRefused: when what the client missed cannot be
// replayed whole — its offset was trimmed from the stream (MaxLen), its
// session expired, or Redis was flushed — it connects as a new socket
// (recovered false) and nothing is replayed, never part of it.
func TestStreamsRecoveryRefused(t *testing.T) {
	const short = time.Second
	for _, tc := range []struct {
		name   string
		window time.Duration
		adjust func(*redisadapter.Config)
		away   func(t *testing.T, r *redistest.Server, pub *socketio.Namespace)
	}{
		{"trimmed", time.Minute, func(c *redisadapter.Config) { c.MaxLen = 10 }, func(t *testing.T, _ *redistest.Server, pub *socketio.Namespace) {
			// MAXLEN ~ trims whole nodes of the stream (100 entries by
			// default): publish enough to drop the client's offset.
			for i := range 400 {
				if err := pub.To("org:2").Emit("filler", i); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"expired", short, nil, func(t *testing.T, _ *redistest.Server, _ *socketio.Namespace) {
			// The session lives for the window after the disconnection
			// (and at most window + a third of it, but at least a second,
			// from the last time it was kept while connected).
			time.Sleep(3 * short)
		}},
		{"flushed", time.Minute, nil, func(t *testing.T, r *redistest.Server, _ *socketio.Namespace) {
			if _, err := r.Do("FLUSHALL"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := redistest.Start(t)
			var adjust []func(*redisadapter.Config)
			if tc.adjust != nil {
				adjust = append(adjust, tc.adjust)
			}
			a, b := streamsNode(t, "a", r, tc.window, adjust...), streamsNode(t, "b", r, tc.window, adjust...)
			lb := newBalancer(t, a.URL)
			d := startDriver(t)
			c := recoveringClient(t, d, lb, "c", []string{"websocket"}, "org:1")
			first := c.WaitConnect()
			pub := b.srv.Of("/")
			if err := pub.To("org:1").Emit("e0"); err != nil {
				t.Fatal(err)
			}
			withOffset(t, c.Next("e0"))

			back := lb.away(b.URL)
			c.WaitDisconnect()
			wait.For(t, "the disconnection on a", func() bool { return a.srv.Of("/").SocketCount() == 0 })
			if err := pub.To("org:1").Emit("missed"); err != nil {
				t.Fatal(err)
			}
			tc.away(t, r, pub)
			back()
			info := c.WaitReconnect()
			if info.Recovered || info.SID == first.SID {
				t.Fatalf("reconnection %+v, want a new socket (first sid %s)", info, first.SID)
			}
			if err := pub.To("org:1").Emit("after"); err != nil {
				t.Fatal(err)
			}
			if ev := c.NextAny(); ev.Name != "after" {
				t.Fatalf("first event after the reconnection: %s, want after (nothing replayed)", ev)
			}
		})
	}
}

// TestStreamsRestartEveryNode: the client survives the replacement of
// every node, one at a time and then all at once, with events published
// while it is away each time; Redis keeps the stream and the sessions.
func TestStreamsRestartEveryNode(t *testing.T) {
	r := redistest.Start(t)
	a, b := streamsNode(t, "a", r, time.Minute), streamsNode(t, "b", r, time.Minute)
	lb := newBalancer(t, a.URL)
	d := startDriver(t)
	c := recoveringClient(t, d, lb, "c", nil, "org:1")
	first := c.WaitConnect()
	publish := func(n *goNode, name string) {
		t.Helper()
		if err := n.srv.Of("/").To("org:1").Emit(name); err != nil {
			t.Fatal(err)
		}
	}
	received := func(names ...string) {
		t.Helper()
		for _, name := range names {
			if ev := c.NextAny(); ev.Name != name {
				t.Fatalf("got %s, want %s", ev, name)
			}
		}
	}
	recovered := func(step string) {
		t.Helper()
		if info := c.WaitReconnect(); !info.Recovered || info.SID != first.SID {
			t.Fatalf("%s: reconnection %+v, want recovered with sid %s", step, info, first.SID)
		}
	}
	publish(b, "e0")
	received("e0")

	// Rolling: a goes (its client is told "server shutting down"), the
	// client comes back to b.
	back := lb.away(b.URL)
	stopNode(t, a)
	c.WaitDisconnect()
	publish(b, "e1")
	back()
	recovered("a stopped, to b")
	received("e1")

	// b goes; a2 replaces it.
	a2 := streamsNode(t, "a2", r, time.Minute)
	back = lb.away(a2.URL)
	stopNode(t, b)
	c.WaitDisconnect()
	publish(a2, "e2")
	back()
	recovered("b stopped, to a2")
	received("e2")

	// Every node at once: a2 goes, and the client is away while b2 and c2
	// start and b2 publishes.
	lb.Refuse(time.Hour)
	stopNode(t, a2)
	c.WaitDisconnect()
	b2, c2 := streamsNode(t, "b2", r, time.Minute), streamsNode(t, "c2", r, time.Minute)
	publish(b2, "e3")
	publish(c2, "e4")
	lb.SetTarget(hostOf(c2.URL))
	lb.Refuse(0)
	recovered("all restarted, to c2")
	received("e3", "e4")
	publish(b2, "e5")
	received("e5")
}

// TestStreamsRedisLostData: Redis restarts empty. Broadcasts meanwhile
// reach only the publishing node's sockets and fail with ErrUnavailable;
// once Redis is back each stream reader finds that the last entry it read
// is gone, so entries may have been lost: the local sockets are
// disconnected, their clients reconnect as new sockets (recovered false),
// and delivery across nodes resumes.
func TestStreamsRedisLostData(t *testing.T) {
	r := redistest.Start(t)
	a, b := streamsNode(t, "a", r, time.Minute), streamsNode(t, "b", r, time.Minute)
	d := startDriver(t)
	ca := client(t, d, a.URL, "/", "ca", "org:1")
	cb := client(t, d, b.URL, "/", "cb", "org:1")
	if err := b.srv.Of("/").To("org:1").Emit("e0"); err != nil {
		t.Fatal(err)
	}
	ca.Next("e0")
	cb.Next("e0")

	r.Kill()
	wait.For(t, "a not ready", func() bool { return a.cluster.Ready() != nil })
	if err := a.srv.Of("/").To("org:1").Emit("down"); err == nil {
		t.Fatal("broadcast with Redis down succeeded")
	}
	ca.Next("down")
	cb.NoEvent("down", 100*time.Millisecond)
	r.Restart()
	for _, n := range []*goNode{a, b} {
		wait.For(t, n.name+" sees the gap", func() bool { return n.cluster.Stats().StreamGaps > 0 })
	}
	for _, c := range []*sioclient.Client{ca, cb} {
		c.WaitDisconnect()
		if info := c.WaitReconnect(); info.Recovered {
			t.Errorf("%s recovered across lost data", c.Name())
		}
	}
	for _, n := range []*goNode{a, b} {
		waitSubscribed(t, n.cluster)
		wait.For(t, n.name+" ready", func() bool { return n.cluster.Ready() == nil })
	}
	if err := a.srv.Of("/").To("org:1").Emit("back"); err != nil {
		t.Fatal(err)
	}
	ca.Next("back")
	cb.Next("back")
}

// TestStreamsReplayFiltered: the namespace's delivery filter applies to
// what a recovery replays from the stream, as to live broadcasts, on
// whichever node the client comes back to; a Socket.Emit keeps its direct
// mark when replayed on another node, so that a filter letting direct
// emits through (Packet.Direct) still does. The client
// is a raw polling one that stops polling, so that its socket, still
// connected on node a, is emitted to directly while the client is away.
func TestStreamsReplayFiltered(t *testing.T) {
	r := redistest.Start(t)
	a, b := streamsNode(t, "a", r, time.Minute), streamsNode(t, "b", r, time.Minute)
	// Direct emits are let through: the mark must survive the stream and
	// the replay.
	blockBlocked := func(p *socketio.Packet) func(*socketio.Socket) bool {
		if p.Event() == "blocked" && !p.Direct() {
			return func(*socketio.Socket) bool { return false }
		}
		return nil
	}
	for _, n := range []*goNode{a, b} {
		n.srv.Of("/").SetDeliveryFilter(blockBlocked)
	}
	nsp := a.srv.Of("/")
	c1 := dialPolling(t, a.URL)
	pkts := c1.connect("")
	sid, pid := connectReply(t, pkts[len(pkts)-1])
	if err := nsp.Emit("e0"); err != nil {
		t.Fatal(err)
	}
	offset := eventOffset(t, c1.poll()[0], "e0")

	// c1 polls no more; its socket is still on a.
	s, ok := nsp.Socket(sid)
	if !ok {
		t.Fatal("no socket on a")
	}
	if err := s.Emit("blocked", "direct"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{nsp.Emit("blocked", "broadcast"), nsp.To(sid).Emit("blocked", "to-room"), nsp.Emit("e1")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	c2 := dialPolling(t, b.URL)
	auth, _ := json.Marshal(map[string]string{"pid": pid, "offset": offset})
	pkts = c2.connect(string(auth))
	if len(pkts) != 3 {
		t.Fatalf("recovery on b: %q, want the direct emit, e1, then the CONNECT reply", pkts)
	}
	if !strings.HasPrefix(pkts[0], `42["blocked","direct",`) {
		t.Errorf("first replayed packet %q, want the direct emit", pkts[0])
	}
	eventOffset(t, pkts[1], "e1")
	if got, _ := connectReply(t, pkts[2]); got != sid {
		t.Errorf("sid %s, want %s", got, sid)
	}
}

// TestStreamsSessionEndsWithTheSocket: the session kept in Redis while
// its socket is connected is deleted when the socket ends on purpose (the
// client's namespace disconnect), so that its private id recovers nothing
// afterwards, on any node, as with a session that was never persisted.
func TestStreamsSessionEndsWithTheSocket(t *testing.T) {
	r := redistest.Start(t)
	a, b := streamsNode(t, "a", r, time.Minute), streamsNode(t, "b", r, time.Minute)
	c1 := dialPolling(t, a.URL)
	pkts := c1.connect("")
	sid, pid := connectReply(t, pkts[len(pkts)-1])
	if err := a.srv.Of("/").Emit("e0"); err != nil {
		t.Fatal(err)
	}
	offset := eventOffset(t, c1.poll()[0], "e0")
	key := "sio:session:" + pid
	wait.For(t, "the session kept while connected", func() bool {
		n, err := r.Do("EXISTS", key)
		return err == nil && n == "1"
	})
	c1.post("41") // leave the namespace
	wait.For(t, "the session dropped", func() bool {
		n, err := r.Do("EXISTS", key)
		return err == nil && n == "0"
	})
	c2 := dialPolling(t, b.URL)
	auth, _ := json.Marshal(map[string]string{"pid": pid, "offset": offset})
	pkts = c2.connect(string(auth))
	if got, _ := connectReply(t, pkts[len(pkts)-1]); len(pkts) != 1 || got == sid {
		t.Fatalf("after a namespace disconnect: %q, want a new socket and nothing replayed", pkts)
	}
}

// xrangeCalls is how many XRANGE commands Redis has served.
func xrangeCalls(t *testing.T, r *redistest.Server) int {
	t.Helper()
	info, err := r.Do("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "cmdstat_xrange:calls="); ok {
			var n int
			fmt.Sscan(strings.SplitN(rest, ",", 2)[0], &n)
			return n
		}
	}
	return 0
}

// TestStreamsRecoveryStormFromMemory: a node stops and all its clients
// come back to another node at once, while the namespace's stream holds
// far more entries after their offsets than they missed (other rooms'
// events). Every client recovers, with exactly its own missed events, in
// order, and the surviving node replays them from the broadcasts it
// delivered itself (Stats.ReplaysFromMemory), reading nothing from the
// stream but each offset's check: a replay from the stream reads the whole
// tail for each client, which is what made every client of a 200-client
// storm give up with history:gap on a loaded machine
// (docs/benchmarks.md, streams-recovery).
func TestStreamsRecoveryStormFromMemory(t *testing.T) {
	r := redistest.Start(t)
	a, b := streamsNode(t, "a", r, time.Minute), streamsNode(t, "b", r, time.Minute)
	lb := newBalancer(t, a.URL)
	d := startDriver(t)
	const clients, orgs, missed, noise = 9, 3, 8, 300
	cs := make([]*sioclient.Client, clients)
	sids := make([]string, clients)
	for i := range cs {
		cs[i] = recoveringClient(t, d, lb, fmt.Sprintf("c%d", i), []string{"websocket"}, fmt.Sprintf("org:%d", i%orgs))
		sids[i] = cs[i].WaitConnect().SID
	}
	wait.For(t, "every client in its room on a", func() bool {
		total := 0
		for o := range orgs {
			total += a.srv.Of("/").RoomSize(fmt.Sprintf("org:%d", o))
		}
		return total == clients
	})
	emit := func(room, event string, args ...any) {
		t.Helper()
		if err := b.srv.Of("/").To(room).Emit(event, args...); err != nil {
			t.Fatal(err)
		}
	}
	for o := range orgs {
		emit(fmt.Sprintf("org:%d", o), "e0")
	}
	for _, c := range cs {
		withOffset(t, c.Next("e0"))
	}

	back := lb.away(b.URL)
	stopNode(t, a)
	for _, c := range cs {
		c.WaitDisconnect()
	}
	for k := range missed {
		for o := range orgs {
			emit(fmt.Sprintf("org:%d", o), "m", o, k)
		}
		for j := range noise / missed {
			emit("org:other", "noise", j)
		}
	}
	fromMemory := b.cluster.Stats().ReplaysFromMemory
	xranges := xrangeCalls(t, r)
	back()
	for i, c := range cs {
		if info := c.WaitReconnect(); !info.Recovered || info.SID != sids[i] {
			t.Fatalf("client %d: reconnection %+v, want recovered with sid %s", i, info, sids[i])
		}
	}
	for i, c := range cs {
		var last rediswire.StreamID
		for k := range missed {
			ev := c.Next("m")
			args, offset := withOffset(t, ev)
			if want := fmt.Sprintf("[%d %d]", i%orgs, k); fmt.Sprint(rawStrings(args)) != want {
				t.Fatalf("client %d: got %s, want m %s", i, ev, want)
			}
			id, _ := rediswire.ParseStreamID(offset)
			if !last.Less(id) {
				t.Fatalf("client %d: %s not after %s", i, ev, last)
			}
			last = id
		}
	}
	for o := range orgs {
		emit(fmt.Sprintf("org:%d", o), "end")
	}
	for i, c := range cs {
		if ev := c.NextAny(); ev.Name != "end" {
			t.Errorf("client %d: after its missed events: %s", i, ev)
		}
	}
	if got := b.cluster.Stats().ReplaysFromMemory - fromMemory; got != clients {
		t.Errorf("%d replays from memory, want %d", got, clients)
	}
	// RestoreSession's offset check is one XRANGE per client; a replay
	// from the stream would add at least one more each.
	if got := xrangeCalls(t, r) - xranges; got > clients {
		t.Errorf("%d XRANGE during the storm for %d clients: the replays read the stream", got, clients)
	}
}

func rawStrings(raw []json.RawMessage) []string {
	out := make([]string, len(raw))
	for i, r := range raw {
		out[i] = string(r)
	}
	return out
}
