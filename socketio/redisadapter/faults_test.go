package redisadapter_test

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

func TestRedisRestart(t *testing.T) {
	for _, m := range modes[:2] {
		t.Run(m.name, func(t *testing.T) {
			r := redistest.Start(t)
			cfgA, cfgB := testConfig(t, r.Addr, m.mode), testConfig(t, r.Addr, m.mode)
			cfgA.SubscriptionMode, cfgB.SubscriptionMode = m.sub, m.sub
			a, b := startGoNode(t, "a", cfgA), startGoNode(t, "b", cfgB)
			d := startDriver(t)
			a1 := client(t, d, a.URL, "/", "a1", "org:1")
			b1 := client(t, d, b.URL, "/", "b1", "org:1")
			waitSubscribed(t, a.cluster)
			waitSubscribed(t, b.cluster)
			nspA, nspB := a.srv.Of("/"), b.srv.Of("/")
			if err := nspA.To("org:1").Emit("ev", "before"); err != nil {
				t.Fatal(err)
			}
			a1.Next("ev")
			b1.Next("ev")
			baseline := settledGoroutines()

			const cycles = 3
			for cycle := range cycles {
				r.Kill()
				for _, n := range []*goNode{a, b} {
					wait.For(t, n.name+" not ready", func() bool { return n.cluster.Ready() != nil })
				}
				// Redis is down: local delivery goes on, the error says the
				// other nodes were not reached, and fast.
				for i := range 3 {
					start := time.Now()
					err := nspA.To("org:1").Emit("ev", fmt.Sprintf("down-%d-%d", cycle, i))
					if !errors.Is(err, redisadapter.ErrUnavailable) {
						t.Fatalf("broadcast while Redis is down: %v", err)
					}
					if d := time.Since(start); d > time.Second {
						t.Errorf("broadcast while Redis is down took %v", d)
					}
					a1.Next("ev")
					if err := a.cluster.Ready(); err == nil {
						t.Fatal("Ready while Redis is down")
					}
				}
				b1.NoEvent("ev", 50*time.Millisecond)
				if list, err := nspB.FetchSockets(ctxT(t)); !errors.Is(err, redisadapter.ErrUnavailable) || len(list) != 1 {
					t.Errorf("fetchSockets while Redis is down: %d sockets, %v", len(list), err)
				}

				r.Restart()
				for _, n := range []*goNode{a, b} {
					waitSubscribed(t, n.cluster)
					if err := n.cluster.Ready(); err != nil {
						t.Fatalf("%s not ready after restart: %v", n.name, err)
					}
				}
				// Cross-node delivery is back, both ways.
				if err := nspA.To("org:1").Emit("ev", "after"); err != nil {
					t.Fatal(err)
				}
				a1.Next("ev")
				b1.Next("ev")
				if err := nspB.Emit("back", cycle); err != nil {
					t.Fatal(err)
				}
				a1.Next("back")
				b1.Next("back")
			}
			if s := a.cluster.Stats(); s.Reconnects < cycles || s.PublishErrors == 0 {
				t.Errorf("stats %+v", s)
			}
			// Nothing accumulates across reconnections.
			wait.For(t, "goroutines back to the baseline", func() bool {
				n := settledGoroutines()
				if n > baseline+4 {
					t.Logf("goroutines: %d, baseline %d", n, baseline)
					return false
				}
				return true
			})
		})
	}
}

func settledGoroutines() int {
	runtime.GC()
	return runtime.NumGoroutine()
}

// TestStartWithoutRedis: a node starts and serves its clients while Redis
// is down, and joins the cluster when Redis comes up.
func TestStartWithoutRedis(t *testing.T) {
	r := redistest.Start(t)
	r.Kill()
	cfg := testConfig(t, r.Addr, redisadapter.Classic)
	c, err := redisadapter.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := startGoNodeWith(t, "a", c)
	if err := c.Ready(); !errors.Is(err, redisadapter.ErrUnavailable) {
		t.Fatalf("Ready without Redis: %v", err)
	}
	d := startDriver(t)
	a1 := client(t, d, a.URL, "/", "a1", "org:1")
	if err := a.srv.Of("/").To("org:1").Emit("ev", 1); !errors.Is(err, redisadapter.ErrUnavailable) {
		t.Fatalf("broadcast without Redis: %v", err)
	}
	a1.Next("ev")
	if n, err := a.srv.Of("/").Adapter().ServerCount(ctxT(t)); err == nil {
		t.Errorf("serverCount without Redis: %d", n)
	}

	r.Restart()
	waitSubscribed(t, c)
	b := startGoNode(t, "b", testConfig(t, r.Addr, redisadapter.Classic))
	b1 := client(t, d, b.URL, "/", "b1", "org:1")
	if err := a.srv.Of("/").To("org:1").Emit("ev", 2); err != nil {
		t.Fatal(err)
	}
	a1.Next("ev")
	b1.Next("ev")
}

// TestProbeRebuildsSilentSubscription: the subscription connection of a
// node stops delivering without closing (a proxy discards Redis's bytes);
// the probe notices, the connection is rebuilt, delivery comes back.
func TestProbeRebuildsSilentSubscription(t *testing.T) {
	for _, m := range modes[:2] {
		t.Run(m.name, func(t *testing.T) {
			r := redistest.Start(t)
			proxy := redistest.NewProxy(t, r.Addr)
			cfgA := testConfig(t, proxy.Addr, m.mode)
			cfgA.ProbeInterval = 200 * time.Millisecond
			a := startGoNode(t, "a", cfgA)
			b := startGoNode(t, "b", testConfig(t, r.Addr, m.mode))
			d := startDriver(t)
			a1 := client(t, d, a.URL, "/", "a1", "org:1")
			waitSubscribed(t, a.cluster)
			waitSubscribed(t, b.cluster)
			nspB := b.srv.Of("/")
			if err := nspB.To("org:1").Emit("ev", 0); err != nil {
				t.Fatal(err)
			}
			a1.Next("ev")

			if n := proxy.BlackholeSubscribers(); n != 1 {
				t.Fatalf("%d subscription connections through the proxy, want 1", n)
			}
			wait.For(t, "a probe failure", func() bool { return a.cluster.Stats().ProbeFailures > 0 })
			wait.For(t, "a new subscription connection", func() bool { return a.cluster.Stats().Reconnects > 0 })
			waitSubscribed(t, a.cluster)
			if err := a.cluster.Ready(); err != nil {
				t.Errorf("not ready after the rebuild: %v", err)
			}
			// What was published meanwhile is lost (Pub/Sub is at most
			// once); what is published now arrives.
			if err := nspB.To("org:1").Emit("ev", 1); err != nil {
				t.Fatal(err)
			}
			if ev := a1.Next("ev"); string(ev.Args[0]) != "1" {
				t.Errorf("after the rebuild: %s", ev)
			}
		})
	}
}

// startGoNodeWith is startGoNode for a given cluster, without waiting for
// its subscriptions.
func startGoNodeWith(t *testing.T, name string, c *redisadapter.Cluster) *goNode {
	t.Helper()
	return startGoNodeCluster(t, name, c, false)
}

// TestSlowHandlerDoesNotBlockReadLoop: a server-side handler that blocks
// its worker fills that worker's queue; messages are then dropped and
// counted, while the Redis read loop goes on (probes keep coming back) and
// delivery resumes once the handler returns.
func TestSlowHandlerDoesNotBlockReadLoop(t *testing.T) {
	r := redistest.Start(t)
	cfgA := testConfig(t, r.Addr, redisadapter.Classic)
	cfgA.Workers, cfgA.QueueSize, cfgA.ProbeInterval = 1, 4, 100*time.Millisecond
	a := startGoNode(t, "a", cfgA)
	b := startGoNode(t, "b", testConfig(t, r.Addr, redisadapter.Classic))
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	a.srv.Of("/").OnServerSideEmit("block", func(socketio.Args, func(...any)) {
		entered <- struct{}{}
		<-release
	})
	d := startDriver(t)
	a1 := client(t, d, a.URL, "/", "a1", "org:1")
	ctx := ctxT(t)
	if err := b.srv.Of("/").ServerSideEmit(ctx, "block"); err != nil {
		t.Fatal(err)
	}
	<-entered
	nspB := b.srv.Of("/")
	wait.For(t, "messages dropped", func() bool {
		_ = nspB.To("org:1").Emit("ev", "flood")
		return a.cluster.Stats().Dropped > 0
	})
	// The read loop is free: probes come back, the node stays ready.
	probesBefore := a.cluster.Stats()
	deadline := time.Now().Add(5 * cfgA.ProbeInterval)
	for time.Now().Before(deadline) {
		if err := a.cluster.Ready(); err != nil {
			t.Fatalf("not ready while a worker is blocked: %v", err)
		}
		time.Sleep(cfgA.ProbeInterval / 2)
	}
	if s := a.cluster.Stats(); s.ProbeFailures != probesBefore.ProbeFailures {
		t.Errorf("probe failed while a worker was blocked: %+v", s)
	}
	close(release)
	// What was queued is delivered (the queue was full: QueueSize floods),
	// then a fresh event, published once the queue has room again (before,
	// it would rightly be dropped).
	for range cfgA.QueueSize {
		if ev := a1.Next("ev"); string(ev.Args[0]) != `"flood"` {
			t.Fatalf("queued event %s, want a flood", ev)
		}
	}
	if err := nspB.To("org:1").Emit("ev", "after"); err != nil {
		t.Fatal(err)
	}
	for string(a1.Next("ev").Args[0]) != `"after"` {
	}
}
