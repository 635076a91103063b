package corebench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/presence"
)

// connectsPerRound is how many clients connect in one measured round: the
// size of the reconnect storm.
const connectsPerRound = 10_000

// BenchmarkConnect: rounds of 10,000 clients each doing a full JWT
// handshake with the gateway as cmd/realtime wires it (HS256 verifier,
// in-memory presence publishing its changes, Info logs in JSON, default
// connection caps lifted since every client is on 127.0.0.1), with 200 or
// 2,000 handshakes in flight. It reports the server's CPU (and the part of
// it spent in the kernel) and heap allocations per connect: the WebSocket
// upgrade, the Engine.IO open, the CONNECT and its token, the rooms, the
// presence change, the "connected" event, the log line and the counters.
// The clients close between rounds, outside the measurement.
func BenchmarkConnect(b *testing.B) {
	for _, inflight := range []int{200, 2000} {
		b.Run("inflight="+strconv.Itoa(inflight), func(b *testing.B) { benchConnect(b, inflight) })
	}
}

func benchConnect(b *testing.B, inflight int) {
	gw, addr := startGateway(b)
	c := startChildSpec(b, fmt.Sprintf("connect %s %d %d", addr, connectsPerRound, inflight))
	round := func(r int) (took time.Duration) {
		fmt.Fprintf(c.in, "round %d\n", r)
		f := strings.Fields(c.line(b))
		if len(f) != 3 || f[0] != "done" {
			b.Fatalf("child: %q", f)
		}
		if n, _ := strconv.Atoi(f[1]); n != connectsPerRound {
			b.Fatalf("%d of %d clients connected", n, connectsPerRound)
		}
		ns, _ := strconv.ParseInt(f[2], 10, 64)
		return time.Duration(ns)
	}
	closeAll := func() {
		fmt.Fprintln(c.in, "close")
		if line := c.line(b); line != "closed" {
			b.Fatalf("child: %q", line)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for gw.ConnectionCount() > 0 {
			if time.Now().After(deadline) {
				b.Fatalf("%d sockets still connected", gw.ConnectionCount())
			}
			time.Sleep(10 * time.Millisecond)
		}
		runtime.GC()
	}
	// Warm up: the handshake goroutines' stacks, pools, the JIT-free but
	// lazily built parts of the server.
	round(-1)
	closeAll()

	var (
		cpu, kernel, wall time.Duration
		allocs            uint64
	)
	b.ResetTimer()
	for i := range b.N {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		stopProfile := profileRound(b, inflight, i)
		user0, sys0 := cpuTimes()
		wall += round(i)
		user1, sys1 := cpuTimes()
		cpu += user1 + sys1 - user0 - sys0
		kernel += sys1 - sys0
		stopProfile()
		runtime.ReadMemStats(&ms1)
		allocs += ms1.Mallocs - ms0.Mallocs
		b.StopTimer()
		closeAll()
		b.StartTimer()
	}
	connects := float64(b.N) * connectsPerRound
	b.ReportMetric(float64(cpu.Nanoseconds())/connects/1000, "µs-cpu/connect")
	b.ReportMetric(float64(kernel.Nanoseconds())/connects/1000, "µs-sys/connect")
	b.ReportMetric(float64(allocs)/connects, "allocs/connect")
	b.ReportMetric(connects/wall.Seconds(), "connects/s")
	b.ReportMetric(0, "ns/op")
}

// profileRound starts a CPU profile of one measured round when
// CONNECT_CPUPROFILE names a file prefix: -cpuprofile would mix in the
// closes between rounds, which cost as much as the connects.
func profileRound(b *testing.B, inflight, i int) (stop func()) {
	prefix := os.Getenv("CONNECT_CPUPROFILE")
	if prefix == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d.%d", prefix, inflight, i))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// startGateway serves a gateway wired as cmd/realtime wires it for a single
// node with presence on.
func startGateway(tb testing.TB) (*gateway.Gateway, string) {
	tb.Helper()
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	verifier, err := auth.New(context.Background(), auth.Config{Secret: connectSecret})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(verifier.Close)
	var gwRef atomic.Pointer[gateway.Gateway]
	tracker, err := presence.New(presence.Config{
		// No grace: the users of a closed round leave before the next
		// round, not during it.
		Grace:  -1,
		Logger: log,
		OnChange: func(c gateway.PresenceChange) {
			if gw := gwRef.Load(); gw != nil && gw.PresenceWatched(c.OrganizationID) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = gw.PublishPresence(ctx, c)
				cancel()
			}
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tracker.Close)
	gw, err := gateway.New(gateway.Config{
		Verifier:  verifier,
		Observers: []gateway.Observer{tracker},
		Presence:  tracker.Presence,
		// Heartbeats out of the measurement, as in the other benchmarks.
		Engine:                   &engineio.Options{PingInterval: time.Hour, PingTimeout: time.Hour, Logger: log},
		MaxConnectionsPerAddress: -1,
		Logger:                   log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	gwRef.Store(gw)
	// The listener and HTTP server of cmd/realtime, with its defaults.
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hs := &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { _ = engineio.ServeFast(hs, ln, gw.Path()) }()
	tb.Cleanup(func() { hs.Close() })
	return gw, ln.Addr().String()
}
