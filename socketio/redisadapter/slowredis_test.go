package redisadapter_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// TestStreamsSlowRedis: under load (the soak's three nodes on a busy
// machine) Redis answers an XADD later than Config.PublishTimeout, but
// executes it. The broadcast must then reach every client of every node
// exactly once: not delivered to this node's clients on the side (the
// stream delivers it here too once the append lands: a duplicate), and not
// appended twice by a retry. CLIENT PAUSE WRITE holds Redis's writes, as
// a busy Redis does, while its reads go on.
func TestStreamsSlowRedis(t *testing.T) {
	const timeout = 300 * time.Millisecond
	short := func(c *redisadapter.Config) { c.PublishTimeout = timeout }
	for _, tc := range []struct {
		name  string
		pause time.Duration
		// answered: the stall is shorter than the broadcast's retries, which
		// find out that the append landed and return with its offset.
		answered bool
	}{
		{"shorter than the retries", 3 * timeout, true},
		{"longer than the retries", 8 * timeout, false},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			r := redistest.Start(t)
			a := streamsNode(t, "a", r, time.Minute, short)
			b := streamsNode(t, "b", r, time.Minute, short)
			d := startDriver(t)
			a1 := client(t, d, a.URL, "/", "a1", "org:1")
			b1 := client(t, d, b.URL, "/", "b1", "org:1")
			nspA := a.srv.Of("/")
			if err := nspA.To("org:1").Emit("ev", 1); err != nil {
				t.Fatal(err)
			}
			a1.Next("ev")
			b1.Next("ev")

			if _, err := r.Do("CLIENT", "PAUSE", strconv.FormatInt(tc.pause.Milliseconds(), 10), "WRITE"); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			emitErr := nspA.To("org:1").Emit("ev", 2)
			took := time.Since(start)
			switch err := emitErr; {
			case tc.answered && err != nil:
				t.Errorf("broadcast during a %v stall: %v (after %v), want it appended once Redis answers", tc.pause, err, took)
			case !tc.answered && !errors.Is(err, redisadapter.ErrUnavailable):
				t.Errorf("broadcast during a %v stall: %v (after %v), want ErrUnavailable", tc.pause, err, took)
			case !tc.answered && (!errors.Is(err, redisadapter.ErrOutcomeUnknown) || !errors.Is(err, socketio.ErrOutcomeUnknown)):
				t.Errorf("broadcast during a %v stall: %v, want ErrOutcomeUnknown (it may yet be appended)", tc.pause, err)
			}
			wait.For(t, "the stall over", func() bool { return time.Since(start) > tc.pause+2*timeout })
			// Whether the append landed is Redis's to say: a repeated
			// attempt (or the one the stall held) may have run, or every
			// attempt may have been dropped with its connection. Either way
			// every client got the same: the event from the stream, once,
			// or nothing at all; never this node's clients alone.
			n, err := r.Do("XLEN", "socket.io")
			if err != nil || (n != "2" && (tc.answered || n != "1")) {
				t.Fatalf("XLEN: %s, %v: want each broadcast appended once", n, err)
			}
			for name, c := range map[string]*sioclient.Client{"a1": a1, "b1": b1} {
				if n == "2" {
					if args := eventArgs(t, c.Next("ev")); len(args) != 2 || args[0] != float64(2) {
						t.Errorf("%s: got %v, want 2 and its offset (delivered from the stream)", name, args)
					}
				}
				c.NoEvent("ev", timeout)
			}
			t.Logf("broadcast answered %v after %v; appended: %t", emitErr, took, n == "2")
		})
	}
}

// TestStreamsReplayFromMemory: a client that missed thousands of entries
// recovers with what the node's reader handled meanwhile, read from memory:
// Redis runs the session's check and one XRANGE for the entries the reader
// has not handled yet, however many were missed (a storm of recoveries,
// each reading the stream from its offset, kept Redis busy for seconds in
// the 3-node soak). Everything missed still arrives once, in order.
func TestStreamsReplayFromMemory(t *testing.T) {
	r := redistest.Start(t)
	a := streamsNode(t, "a", r, time.Minute)
	b := streamsNode(t, "b", r, time.Minute)
	lb := newBalancer(t, a.URL)
	d := startDriver(t)
	c := recoveringClient(t, d, lb, "c", []string{"websocket"}, "org:1")
	first := c.WaitConnect()
	wait.For(t, "the client on node a", func() bool { return a.srv.Of("/").RoomSize("org:1") == 1 })
	nspB := b.srv.Of("/")
	if err := nspB.To("org:1").Emit("seq", 0); err != nil {
		t.Fatal(err)
	}
	c.Next("seq")

	back := lb.away(a.URL)
	c.WaitDisconnect()
	const missed = 2500
	publishSeqs(t, nspB, missed)
	before := xrangeCalls(t, r)
	back()
	info := c.WaitReconnect()
	if !info.Recovered || info.SID != first.SID {
		t.Fatalf("reconnection %+v, want recovered", info)
	}
	expectOrg1Seqs(t, c, missed)
	if n := xrangeCalls(t, r) - before; n > 2 {
		t.Errorf("the recovery ran %d XRANGE commands, want at most 2 (the offset's check, the entries not read yet)", n)
	}
}

// TestStreamsFreshNodeReplaysFromMemory: a node that starts after the
// events its clients missed (a restart, a crash, a deploy) reads the
// stream's recent broadcasts into memory once, before it serves
// recoveries, and replays them from there: a reconnection storm onto it
// does not read the stream once per client.
func TestStreamsFreshNodeReplaysFromMemory(t *testing.T) {
	r := redistest.Start(t)
	a := streamsNode(t, "a", r, time.Minute)
	lb := newBalancer(t, a.URL)
	d := startDriver(t)
	c := recoveringClient(t, d, lb, "c", []string{"websocket"}, "org:1")
	first := c.WaitConnect()
	wait.For(t, "the client on node a", func() bool { return a.srv.Of("/").RoomSize("org:1") == 1 })
	nspA := a.srv.Of("/")
	if err := nspA.To("org:1").Emit("seq", 0); err != nil {
		t.Fatal(err)
	}
	c.Next("seq")

	back := lb.away(a.URL) // refused until back(): the client keeps trying
	c.WaitDisconnect()
	const missed = 1500
	publishSeqs(t, nspA, missed)
	b := streamsNode(t, "b", r, time.Minute) // starts after every missed event
	if got := b.cluster.Stats().RecentWarmed; got < missed {
		t.Fatalf("node b read %d recent broadcasts into memory at start, want at least %d", got, missed)
	}
	lb.SetTarget(hostOf(b.URL))
	before := xrangeCalls(t, r)
	back()
	info := c.WaitReconnect()
	if !info.Recovered || info.SID != first.SID {
		t.Fatalf("reconnection %+v, want recovered", info)
	}
	expectOrg1Seqs(t, c, missed)
	if n := xrangeCalls(t, r) - before; n > 1 {
		t.Errorf("the recovery on the fresh node ran %d XRANGE commands, want at most 1 (the offset's check)", n)
	}
	if got := b.cluster.Stats().ReplaysFromMemory; got != 1 {
		t.Errorf("node b replayed %d recoveries from memory, want 1", got)
	}
}

// TestStreamsOnce: broadcasts with the same socketio.Once key, on any
// node, append the packet once: a repeat delivers nothing, answers the
// first append's offset and sets Once.Tag to the first one's tag. Room
// operations and broadcasts without Once are unaffected.
func TestStreamsOnce(t *testing.T) {
	r := redistest.Start(t)
	a := streamsNode(t, "a", r, time.Minute)
	b := streamsNode(t, "b", r, time.Minute)
	d := startDriver(t)
	a1 := client(t, d, a.URL, "/", "a1", "org:1")
	b1 := client(t, d, b.URL, "/", "b1", "org:1")
	p, err := socketio.NewPacket("ev", 1)
	if err != nil {
		t.Fatal(err)
	}
	first := &socketio.Once{Key: "k1", Keep: time.Minute, Tag: "id-a"}
	offset, err := a.srv.Of("/").To("org:1").Once(first).EmitPacketLogged(t.Context(), p)
	if err != nil || offset == "" || first.Tag != "id-a" {
		t.Fatalf("first broadcast: offset %q, tag %q, %v", offset, first.Tag, err)
	}
	for _, c := range []*sioclient.Client{a1, b1} {
		if _, got := withOffset(t, c.Next("ev")); got != offset {
			t.Fatalf("delivered with offset %s, answered %s", got, offset)
		}
	}
	before, err := r.Do("XLEN", "socket.io")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*goNode{b, a} {
		again := &socketio.Once{Key: "k1", Keep: time.Minute, Tag: "id-again"}
		got, err := n.srv.Of("/").To("org:1").Once(again).EmitPacketLogged(t.Context(), p)
		if err != nil || got != offset || again.Tag != "id-a" {
			t.Errorf("repeat: offset %q, tag %q, %v; want %q, %q", got, again.Tag, err, offset, "id-a")
		}
	}
	if n, err := r.Do("XLEN", "socket.io"); err != nil || n != before {
		t.Errorf("XLEN %s, %v after the repeats, want %s", n, err, before)
	}
	if ttl, err := r.Do("PTTL", "socket.io#once#k1"); err != nil || ttl == "-1" || ttl == "-2" {
		t.Errorf("PTTL of the once key: %s, %v: want it kept for a bounded time", ttl, err)
	}
	other := &socketio.Once{Key: "k2", Keep: time.Minute, Tag: "id-b"}
	if got, err := b.srv.Of("/").To("org:1").Once(other).EmitPacketLogged(t.Context(), p); err != nil || got == offset || other.Tag != "id-b" {
		t.Errorf("another key: offset %q (first %q), tag %q, %v: want a broadcast of its own", got, offset, other.Tag, err)
	}
	a1.Next("ev")
	b1.Next("ev")
	a1.NoEvent("ev", 300*time.Millisecond)
	b1.NoEvent("ev", 300*time.Millisecond)
}

// publishSeqs emits "seq" 1..n to org:1, every fifth to org:2 instead
// (not the client's: filtered out of the replay).
func publishSeqs(t *testing.T, nsp *socketio.Namespace, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		room := "org:1"
		if i%5 == 0 {
			room = "org:2"
		}
		if err := nsp.To(room).Emit("seq", i); err != nil {
			t.Fatal(err)
		}
	}
}

// expectOrg1Seqs checks that c got "seq" 1..n in order except every fifth
// (published to org:2, not c's), then nothing more.
func expectOrg1Seqs(t *testing.T, c *sioclient.Client, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if i%5 == 0 {
			continue
		}
		ev := c.Next("seq")
		if args, _ := withOffset(t, ev); len(args) != 1 || string(args[0]) != strconv.Itoa(i) {
			t.Fatalf("got %s, want seq %d", ev, i)
		}
	}
	c.NoEvent("seq", 100*time.Millisecond)
}
