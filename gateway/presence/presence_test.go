package presence

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/internal/testutil/leakcheck"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/wait"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// changes records the changes every tracker of a test reports, in one
// list: a change reported by two nodes would show twice.
type changes struct {
	mu   sync.Mutex
	list []string
}

func (c *changes) add(ch gateway.PresenceChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, ch.Event+" "+ch.OrganizationID+"/"+ch.UserID)
}

func (c *changes) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.list)
}

func (c *changes) count(s string) int {
	n := 0
	for _, x := range c.get() {
		if x == s {
			n++
		}
	}
	return n
}

func conn(org, user string) gateway.Connection {
	return gateway.Connection{OrganizationID: org, UserID: user}
}

// users renders a presence as "user:connections" in user order.
func users(p apiclient.Presence) string {
	var parts []string
	for _, u := range p.Users {
		parts = append(parts, fmt.Sprintf("%s:%d", u.UserID, u.Connections))
	}
	return strings.Join(parts, ",")
}

func presenceOf(t *testing.T, tr *Tracker, org string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := tr.Presence(ctx, org)
	if err != nil {
		t.Fatalf("presence of %s: %v", org, err)
	}
	if p.OrganizationID != org {
		t.Fatalf("presence of %s names %q", org, p.OrganizationID)
	}
	return users(p)
}

func TestMemoryPresenceAndGrace(t *testing.T) {
	var ch changes
	tr, err := New(Config{Grace: time.Hour, OnChange: ch.add})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()

	tr.Connected(conn("o1", "u1"))
	tr.Connected(conn("o1", "u1"))
	tr.Connected(conn("o1", "u2"))
	tr.Connected(conn("o2", "u3"))
	if got := presenceOf(t, tr, "o1"); got != "u1:2,u2:1" {
		t.Fatalf("o1 = %q, want u1:2,u2:1", got)
	}
	if got := presenceOf(t, tr, "o2"); got != "u3:1" {
		t.Fatalf("o2 = %q, want u3:1 (organizations are separate)", got)
	}
	wait.For(t, "three joined", func() bool { return len(ch.get()) == 3 })

	// u2 drops and comes back within the grace period: listed with zero
	// connections meanwhile, and no left/joined pair.
	tr.Disconnected(conn("o1", "u2"), "transport close")
	if got := presenceOf(t, tr, "o1"); got != "u1:2,u2:0" {
		t.Fatalf("o1 during grace = %q, want u1:2,u2:0", got)
	}
	tr.Connected(conn("o1", "u2"))
	tr.Disconnected(conn("o1", "u1"), "transport close")
	if got := presenceOf(t, tr, "o1"); got != "u1:1,u2:1" {
		t.Fatalf("o1 = %q, want u1:1,u2:1", got)
	}
	// A marker change after the others: once it is reported, every
	// earlier change has been.
	tr.Connected(conn("o9", "marker"))
	wait.For(t, "the marker joined", func() bool { return ch.count("presence:joined o9/marker") == 1 })
	want := []string{"presence:joined o1/u1", "presence:joined o1/u2", "presence:joined o2/u3", "presence:joined o9/marker"}
	got := ch.get()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("changes = %q, want %q (a reconnection within the grace period must not flap)", got, want)
	}
}

func TestMemoryLeftAfterGrace(t *testing.T) {
	var ch changes
	tr, err := New(Config{Grace: 50 * time.Millisecond, OnChange: ch.add})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.Connected(conn("o1", "u1"))
	tr.Disconnected(conn("o1", "u1"), "client namespace disconnect")
	wait.For(t, "u1 left", func() bool { return ch.count("presence:left o1/u1") == 1 })
	if got := ch.get(); !slices.Equal(got, []string{"presence:joined o1/u1", "presence:left o1/u1"}) {
		t.Fatalf("changes = %q", got)
	}
	if got := presenceOf(t, tr, "o1"); got != "" {
		t.Fatalf("o1 after left = %q, want nobody", got)
	}
}

// cluster is a set of trackers on one redis-server, as the nodes of a
// cluster.
type cluster struct {
	t      *testing.T
	srv    *redistest.Server
	client rueidis.Client
	ch     changes
}

func newCluster(t *testing.T) *cluster {
	srv := redistest.Start(t)
	cl, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &cluster{t: t, srv: srv, client: cl}
}

func (c *cluster) node(name string, ttl, grace time.Duration) *Tracker {
	tr, err := New(Config{
		Redis:    func() (rueidis.Client, error) { return c.client, nil },
		Node:     name,
		TTL:      ttl,
		Grace:    grace,
		OnChange: c.ch.add,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(tr.Close)
	return tr
}

func TestThreeNodes(t *testing.T) {
	c := newCluster(t)
	const ttl = 2 * time.Second
	a, b, n3 := c.node("a", ttl, time.Hour), c.node("b", ttl, time.Hour), c.node("c", ttl, time.Hour)

	a.Connected(conn("o1", "u1"))
	n3.Connected(conn("o1", "u1"))
	b.Connected(conn("o1", "u2"))
	n3.Connected(conn("o1", "u3"))
	n3.Connected(conn("o1", "u3"))
	b.Connected(conn("o2", "u1")) // the same user id in another organization
	for _, tr := range []*Tracker{a, b, n3} {
		wait.For(t, "every node sees o1's users", func() bool { return presenceOf(t, tr, "o1") == "u1:2,u2:1,u3:2" })
		if got := presenceOf(t, tr, "o2"); got != "u1:1" {
			t.Fatalf("o2 on %s = %q, want u1:1", tr.Node(), got)
		}
	}
	wait.For(t, "four joined", func() bool { return len(c.ch.get()) == 4 })
	for _, u := range []string{"o1/u1", "o1/u2", "o1/u3", "o2/u1"} {
		if n := c.ch.count("presence:joined " + u); n != 1 {
			t.Fatalf("joined %s reported %d times, want once for the cluster: %q", u, n, c.ch.get())
		}
	}

	// u2 moves from b to a (a reload behind a load balancer): no flap.
	b.Disconnected(conn("o1", "u2"), "transport close")
	a.Connected(conn("o1", "u2"))
	wait.For(t, "u2 counted on a", func() bool { return presenceOf(t, b, "o1") == "u1:2,u2:1,u3:2" })

	// c crashes: nothing more is written by it. Its users disappear once
	// its heartbeat is older than the TTL; u3, who was only there, is
	// reported as left, once; u1, also on a, is not.
	crashed := time.Now()
	n3.abandon()
	wait.Within(t, ttl+5*time.Second, "c's users gone within the TTL", func() bool {
		return presenceOf(t, a, "o1") == "u1:1,u2:1"
	})
	t.Logf("c's users disappeared %v after the crash (TTL %v)", time.Since(crashed).Round(10*time.Millisecond), ttl)
	wait.Within(t, ttl+5*time.Second, "u3 reported left", func() bool { return c.ch.count("presence:left o1/u3") == 1 })
	a.Connected(conn("o9", "marker"))
	wait.For(t, "marker", func() bool { return c.ch.count("presence:joined o9/marker") == 1 })
	for _, s := range c.ch.get() {
		if strings.HasPrefix(s, "presence:left") && s != "presence:left o1/u3" {
			t.Fatalf("unexpected %s: %q", s, c.ch.get())
		}
	}
	if n := c.ch.count("presence:left o1/u3"); n != 1 {
		t.Fatalf("u3 left reported %d times", n)
	}
	if st := a.Stats().NodesRemoved + b.Stats().NodesRemoved; st != 1 {
		t.Fatalf("dead nodes removed = %d, want 1", st)
	}
	if n, err := c.srv.Do("EXISTS", DefaultKeyPrefix+"node:c"); err != nil || n != "0" {
		t.Fatalf("c's org set still exists: %q %v", n, err)
	}
}

// A user whose only node crashed and who reconnects to another node before
// the dead node is removed neither leaves nor joins again: one presence.
func TestReconnectAfterCrashDoesNotFlap(t *testing.T) {
	c := newCluster(t)
	const ttl = 900 * time.Millisecond
	a, b := c.node("a", ttl, time.Hour), c.node("b", ttl, time.Hour)
	b.Connected(conn("o1", "u1"))
	wait.For(t, "u1 joined", func() bool { return c.ch.count("presence:joined o1/u1") == 1 })
	b.abandon()
	a.Connected(conn("o1", "u1"))
	wait.For(t, "b removed", func() bool { return a.Stats().NodesRemoved == 1 })
	wait.For(t, "u1 counted once", func() bool { return presenceOf(t, a, "o1") == "u1:1" })
	a.Connected(conn("o9", "marker"))
	wait.For(t, "marker", func() bool { return c.ch.count("presence:joined o9/marker") == 1 })
	if got := c.ch.get(); !slices.Equal(got, []string{"presence:joined o1/u1", "presence:joined o9/marker"}) {
		t.Fatalf("changes = %q, want one joined for u1 and nothing else", got)
	}
}

// A node that shuts down cleanly keeps its counts for the grace period:
// its clients reconnect elsewhere without a left/joined pair; the others'
// are reported as left after it.
func TestCleanShutdownKeepsGrace(t *testing.T) {
	c := newCluster(t)
	const ttl = 3 * time.Second
	a, b := c.node("a", ttl, 300*time.Millisecond), c.node("b", ttl, 300*time.Millisecond)
	b.Connected(conn("o1", "u1"))
	b.Connected(conn("o1", "u2"))
	wait.For(t, "two joined", func() bool { return len(c.ch.get()) == 2 })
	b.Close()
	a.Connected(conn("o1", "u1")) // u1 reconnects elsewhere; u2 does not
	wait.For(t, "u2 left", func() bool { return c.ch.count("presence:left o1/u2") == 1 })
	a.Connected(conn("o9", "marker"))
	wait.For(t, "marker", func() bool { return c.ch.count("presence:joined o9/marker") == 1 })
	if n := c.ch.count("presence:left o1/u1") + c.ch.count("presence:joined o1/u1"); n != 1 {
		t.Fatalf("u1 flapped: %q", c.ch.get())
	}
	if got := presenceOf(t, a, "o1"); got != "u1:1" {
		t.Fatalf("o1 = %q, want u1:1", got)
	}
}

// Redis down: changes wait on the node and are written once it is back;
// a node declared dead meanwhile writes all its counts again.
func TestRedisOutage(t *testing.T) {
	c := newCluster(t)
	const ttl = 600 * time.Millisecond
	a, b := c.node("a", ttl, time.Hour), c.node("b", ttl, time.Hour)
	a.Connected(conn("o1", "u1"))
	wait.For(t, "u1 visible", func() bool { return presenceOf(t, b, "o1") == "u1:1" })
	c.srv.Kill()
	a.Connected(conn("o1", "u2"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := b.Presence(ctx, "o1")
	cancel()
	if err == nil {
		t.Fatal("presence read while Redis is down: want an error")
	}
	wait.For(t, "a failed a round", func() bool { return a.Stats().SyncErrors > 0 })
	c.srv.Restart() // empty: every count is gone
	wait.For(t, "a's counts written again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p, err := b.Presence(ctx, "o1")
		return err == nil && users(p) == "u1:1,u2:1"
	})
}

// A node removed as dead while it still runs (frozen past the TTL) writes
// nothing until it has renewed, then writes all of its counts again: no
// entry of a removed node is left behind.
func TestRemovedNodeRenewsBeforeWriting(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", time.Hour, time.Hour)
	// b reads: a's own answers also list its connections not written yet.
	b := c.node("b", time.Hour, time.Hour)
	a.Connected(conn("o1", "u1"))
	wait.For(t, "u1 visible", func() bool { return presenceOf(t, b, "o1") == "u1:1" })
	// What another node's cleanup does to a dead node.
	if _, err := c.srv.Do("ZREM", DefaultKeyPrefix+"nodes", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.srv.Do("DEL", DefaultKeyPrefix+"org:o1", DefaultKeyPrefix+"node:a"); err != nil {
		t.Fatal(err)
	}
	a.Connected(conn("o1", "u2"))
	wait.For(t, "a renewed and wrote everything", func() bool { return presenceOf(t, b, "o1") == "u1:1,u2:1" })
	if s, err := c.srv.Do("ZSCORE", DefaultKeyPrefix+"nodes", "a"); err != nil || s == "" {
		t.Fatalf("a is not in the set of nodes: %q %v", s, err)
	}
}
