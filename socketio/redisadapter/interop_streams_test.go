package redisadapter_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// Mixed clusters of Go nodes and Node.js servers with
// @socket.io/redis-streams-adapter 0.3.1 (tests/node/redis-node.mjs --mode
// streams). Broadcasts and requests both ways run in interop_test.go
// (interopModes); here: the stream entries are the same bytes, and a
// client recovers across the two implementations, both ways.

// waitStreamsPeers waits until n servers subscribe to the namespace
// channel and n readers are blocked reading the stream: Node's adapter
// subscribes and starts reading asynchronously, and reads from "$", so an
// entry added before it reads is not delivered by it.
func waitStreamsPeers(t *testing.T, r *redistest.Server, n int) {
	t.Helper()
	r.WaitNumSub(t, "socket.io#/#", false, n, waitTimeout)
	wait.For(t, "stream readers blocked in XREAD", func() bool {
		list, err := r.Do("CLIENT", "LIST")
		return err == nil && strings.Count(list, "cmd=xread") >= n
	})
}

// lastEntry returns the fields of the stream's last entry ("" and nil
// when it is empty).
func lastEntry(t *testing.T, r *redistest.Server) (id string, fields map[string]string) {
	t.Helper()
	out, err := r.Do("XREVRANGE", "socket.io", "+", "-", "COUNT", "1")
	if err != nil {
		t.Fatal(err)
	}
	if out == "" {
		return "", nil
	}
	// "<id> uid <uid> nsp <nsp> type <type> data <data>" (the test data has
	// no spaces).
	f := strings.Split(out, " ")
	if len(f) < 7 || len(f)%2 != 1 {
		t.Fatalf("last entry %q", out)
	}
	fields = map[string]string{}
	for i := 1; i+1 < len(f); i += 2 {
		fields[f[i]] = f[i+1]
	}
	return f[0], fields
}

// TestStreamsWireMatchesNodeAdapter performs the same operations on a Node
// server and on a Go node and compares the stream entries they append
// (and the Pub/Sub message of serverSideEmit), byte for byte, the random
// uid aside.
func TestStreamsWireMatchesNodeAdapter(t *testing.T) {
	r := redistest.Start(t)
	cfg := testConfig(t, r.Addr, redisadapter.Streams)
	cfg.ProbeInterval = -1
	gn := startGoNode(t, "go", cfg)
	node := startNodeServer(t, r, "--mode", "streams")
	waitStreamsPeers(t, r, 2)
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
		{"socketsLeave", map[string]any{"cmd": "socketsLeave", "except": []string{"r"}, "leave": []string{"j"}},
			func() error { return nsp.Except("r").SocketsLeave(ctx, "j") }},
		{"disconnectSockets", map[string]any{"cmd": "disconnectSockets", "except": []string{"r"}, "close": true},
			func() error { return nsp.Except("r").DisconnectSockets(ctx, true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The stream is emptied after each case: the first entry is
			// Node's, the second Go's.
			node.MustCall(tc.node)
			var wantID string
			var want map[string]string
			wait.For(t, "Node's entry", func() bool {
				wantID, want = lastEntry(t, r)
				return wantID != ""
			})
			if err := tc.goOp(); err != nil {
				t.Fatal(err)
			}
			id, got := lastEntry(t, r)
			if id == wantID {
				t.Fatal("the Go node appended nothing")
			}
			if len(got["uid"]) != 16 || len(want["uid"]) != 16 || got["uid"] == want["uid"] {
				t.Errorf("uids: Node %q, Go %q", want["uid"], got["uid"])
			}
			for _, k := range []string{"nsp", "type", "data"} {
				if got[k] != want[k] {
					t.Errorf("%s:\nNode: %s\nGo:   %s", k, want[k], got[k])
				}
			}
			if len(got) != len(want) {
				t.Errorf("fields: Node %v, Go %v", want, got)
			}
			if _, err := r.Do("DEL", "socket.io"); err != nil {
				t.Fatal(err)
			}
		})
	}
	// serverSideEmit travels over Pub/Sub, always as msgpack.
	sub := r.PSubscribe(t, "socket.io#/#")
	node.MustCall(map[string]any{"cmd": "serverSideEmit", "event": "sse", "args": []any{1, "two"}})
	want := sub.Next(t, waitTimeout)
	if err := nsp.ServerSideEmit(ctx, "sse", 1, "two"); err != nil {
		t.Fatal(err)
	}
	got := sub.Next(t, waitTimeout)
	node.NextEvent(nil)
	gn.nextSSE(t)
	if w, g := maskUID(want.Payload), maskUID(got.Payload); !bytes.Equal(w, g) {
		t.Errorf("serverSideEmit\nNode: %q\nGo:   %q", w, g)
	}
}

// TestStreamsRecoveryWithNode: a client of the Node server drops and comes
// back to the Go node, which restores the session Node stored and replays
// what both published meanwhile; then it drops from the Go node and comes
// back to the Node server, which restores the session the Go node stored.
// Same socket id each time, rooms and data kept, events once and in order.
func TestStreamsRecoveryWithNode(t *testing.T) {
	r := redistest.Start(t)
	gn := streamsNode(t, "go", r, time.Minute)
	node := startNodeServer(t, r, "--mode", "streams", "--recovery", "60000")
	waitStreamsPeers(t, r, 2)
	lb := newBalancer(t, node.URL)
	d := startDriver(t)
	c := recoveringClient(t, d, lb, "c", []string{"websocket"}, "org:1")
	first := c.WaitConnect()
	goNsp := gn.srv.Of("/")
	nodeEmit := func(event string) {
		t.Helper()
		node.MustCall(map[string]any{"cmd": "broadcast", "rooms": []string{"org:1"}, "event": event, "args": []any{"n"}})
	}
	goEmit := func(event string) {
		t.Helper()
		if err := goNsp.To("org:1").Emit(event, "g"); err != nil {
			t.Fatal(err)
		}
	}
	received := func(events ...string) {
		t.Helper()
		for _, name := range events {
			ev := c.NextAny()
			if ev.Name != name {
				t.Fatalf("got %s, want %s", ev, name)
			}
			withOffset(t, ev)
		}
	}
	goEmit("e0")
	received("e0") // delivered by Node, with an offset

	// Node → Go.
	back := lb.away(gn.URL)
	c.WaitDisconnect()
	wait.For(t, "Node to see the disconnection", func() bool {
		var list []any
		_ = json.Unmarshal(node.MustCall(map[string]any{"cmd": "sockets"}), &list)
		return len(list) == 0
	})
	nodeEmit("n1")
	goEmit("g1")
	nodeEmit("n2")
	back()
	if info := c.WaitReconnect(); !info.Recovered || info.SID != first.SID {
		t.Fatalf("Node → Go: reconnection %+v, want recovered with sid %s", info, first.SID)
	}
	received("n1", "g1", "n2")
	s, ok := goNsp.Socket(first.SID)
	if !ok || !s.In("org:1") {
		t.Fatalf("the recovered socket on Go: %v, rooms %v", ok, s.Rooms())
	}
	if data, _ := s.Data().(json.RawMessage); string(data) != `{"name":"c"}` {
		t.Errorf("data restored from Node's session: %v", s.Data())
	}
	nodeEmit("n3")
	received("n3")

	// Go → Node.
	back = lb.away(node.URL)
	c.WaitDisconnect()
	wait.For(t, "Go to see the disconnection", func() bool { return goNsp.SocketCount() == 0 })
	goEmit("g2")
	nodeEmit("n4")
	back()
	if info := c.WaitReconnect(); !info.Recovered || info.SID != first.SID {
		t.Fatalf("Go → Node: reconnection %+v, want recovered with sid %s", info, first.SID)
	}
	received("g2", "n4")
	var socks []struct {
		ID        string
		Rooms     []string
		Data      map[string]any
		Recovered bool
	}
	if err := json.Unmarshal(node.MustCall(map[string]any{"cmd": "sockets"}), &socks); err != nil {
		t.Fatal(err)
	}
	if len(socks) != 1 || socks[0].ID != first.SID || !socks[0].Recovered || socks[0].Data["name"] != "c" ||
		!strings.Contains(strings.Join(socks[0].Rooms, ","), "org:1") {
		t.Errorf("the recovered socket on Node: %+v", socks)
	}
	goEmit("g3")
	received("g3")
	c.NoEvent("e0", 100*time.Millisecond)
}

// TestStreamsHistoryKeepsNodeWire: with per-room histories on (an extension
// of ours), a Go node still appends to the namespace stream exactly what
// Node's adapter appends, and also the same entry, under the same id, to
// the room's history stream.
func TestStreamsHistoryKeepsNodeWire(t *testing.T) {
	r := redistest.Start(t)
	cfg := testConfig(t, r.Addr, redisadapter.Streams)
	cfg.ProbeInterval = -1
	c, err := redisadapter.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gn := startGoNodeOpts(t, "go", c, nodeOptions{wait: true, recovery: &socketio.RecoveryOptions{
		MaxDisconnectionDuration: time.Minute,
		HistoryRooms:             func(room string) bool { return strings.HasPrefix(room, "room") },
	}})
	node := startNodeServer(t, r, "--mode", "streams")
	waitStreamsPeers(t, r, 2)

	node.MustCall(map[string]any{"cmd": "broadcast", "rooms": []string{"room1"}, "event": "hello", "args": []any{"world"}})
	var wantID string
	var want map[string]string
	wait.For(t, "Node's entry", func() bool {
		wantID, want = lastEntry(t, r)
		return wantID != ""
	})
	if err := gn.srv.Of("/").To("room1").Emit("hello", "world"); err != nil {
		t.Fatal(err)
	}
	id, got := lastEntry(t, r)
	if id == wantID {
		t.Fatal("the Go node appended nothing")
	}
	for _, k := range []string{"nsp", "type", "data"} {
		if got[k] != want[k] {
			t.Errorf("%s:\nNode: %s\nGo:   %s", k, want[k], got[k])
		}
	}
	if len(got) != len(want) {
		t.Errorf("fields: Node %v, Go %v", want, got)
	}
	hist, err := r.Do("XRANGE", "socket.io#history#/#room#room1", "-", "+")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hist, id+" ") || strings.Count(hist, " uid ") != 1 || !strings.Contains(hist, " data "+got["data"]) {
		t.Errorf("the room's history stream holds %q, want the entry %s only", hist, id)
	}
}
