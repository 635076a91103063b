package redisadapter_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/internal/faultproxy"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// TestStreamsStalledRedisStallsNoHeartbeat: Redis goes silent (its
// connections stall, as behind a dead network path; the cluster is not
// told, and a write to it waits the whole PublishTimeout). Clients whose
// connection dies are closed at their ping timeout on the engine's
// heartbeat goroutine, which stores their session: that must not wait on
// Redis, or every heartbeat of the node would wait with it. So the
// heartbeats go on (every dead client is closed, the live one keeps its
// connection), the sessions that do not fit the queue are counted, and
// Shutdown returns by its deadline, saying what it could not store.
func TestStreamsStalledRedisStallsNoHeartbeat(t *testing.T) {
	r := redistest.Start(t)
	rp, err := faultproxy.New(r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rp.Close() })
	cfg := testConfig(t, rp.Addr(), redisadapter.Streams)
	cfg.PublishTimeout = time.Minute // longer than any wait below
	cfg.ProbeInterval = -1           // Redis looks up: writes wait, not fail fast
	cfg.SessionQueueSize = 1
	cfg.AdjustClientOption = func(o *rueidis.ClientOption) { o.ConnWriteTimeout = time.Minute }
	c, err := redisadapter.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := startGoNodeOpts(t, "a", c, nodeOptions{
		wait:     true,
		recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute},
		engine:   &engineio.Options{PingInterval: 300 * time.Millisecond, PingTimeout: time.Second},
	})
	// Before the node's cleanup: its Redis connections fail instead of
	// holding the adapter's goroutines.
	t.Cleanup(func() { rp.Refuse(time.Hour); rp.Cut() })
	var gone atomic.Int32
	n.srv.Of("/").OnDisconnect(func(_ *socketio.Socket, reason socketio.DisconnectReason) {
		if reason == socketio.ReasonPingTimeout {
			gone.Add(1)
		}
	})

	// The doomed clients go through a proxy that will go silent.
	cp, err := faultproxy.New(hostOf(n.URL))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Close() })
	d := startDriver(t)
	no := false
	const doomed = 3
	for i := range doomed {
		dc := d.Connect("http://"+cp.Addr()+"/", sioclient.Options{
			Name: "doomed" + string(rune('0'+i)), Transports: []string{"websocket"}, Reconnection: &no,
		})
		dc.WaitConnect()
	}
	live := client(t, d, n.URL, "/", "live")

	rp.Stall(rp.Conns(), time.Hour)
	cp.Stall(doomed, time.Hour)
	wait.For(t, "every dead client closed at its ping timeout", func() bool { return gone.Load() == doomed })
	// One session is written (stalled), one queued, the other dropped.
	wait.For(t, "a session dropped", func() bool { return c.Stats().SessionsDropped >= 1 })
	if st := live.State(); !st.Connected {
		t.Fatalf("the live client lost its connection: %+v", st)
	}
	for _, m := range live.Drain() {
		if m.Type == "disconnect" {
			t.Fatalf("the live client was disconnected: %s", m)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- n.srv.Shutdown(ctx) }()
	var serr error
	wait.For(t, "Shutdown to return", func() bool {
		select {
		case serr = <-shut:
			return true
		default:
			return false
		}
	})
	if !errors.Is(serr, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with Redis stalled: %v, want the deadline's error", serr)
	}
}
