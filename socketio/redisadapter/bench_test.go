package redisadapter_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/wsclient"
	"github.com/operate/realtime/internal/wsframe"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// Cross-node delivery benchmark: events published on node A are delivered
// through Redis to the WebSocket clients of nodes B and C (half on each).
// The clients live in a child process (this test binary re-executed) that
// timestamps every delivery, so the figures are:
//
//   - deliveries/s: client deliveries per second of wall time;
//   - cpu-µs/delivery: CPU of the three servers (this process: A
//     publishing, B and C receiving, decoding and fanning out) per delivery;
//   - redis-cpu-µs/msg: redis-server's CPU per published message;
//   - p50-ms, p99-ms: publish-to-client latency.
//
// The same run measures two-node Node.js clusters (socket.io 4.8 with
// redis-adapter 8.3 classic, and with redis-streams-adapter 0.3.1;
// publishing on one node to the clients of the other, CPU of both Node
// processes) with the same clients, for comparison. The streams modes run
// with connection state recovery on (their reason to be): every delivered
// event carries its offset.
//
//	go test -run '^$' -bench CrossNode -benchtime 2000x ./socketio/redisadapter
//
// (-benchtime Nx: N events; with fanout F there are N×F deliveries.)

const benchChildEnv = "REDISADAPTER_BENCH_CHILD"

// benchPayload is a typical gateway event.
var benchPayload = json.RawMessage(`{"timestamp":"2026-11-26T06:33:12.123Z","organizationId":"org_01HZX8","userId":"usr_42","invoiceId":"inv_9f8e7d","invoiceNumber":"INV-2026-0042","amount":1250.5,"currency":"EUR","status":"SENT","customerName":"Muster GmbH"}`)

func init() {
	if spec := os.Getenv(benchChildEnv); spec != "" {
		if err := runBenchChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

func BenchmarkCrossNodeDelivery(b *testing.B) {
	for _, fanout := range []int{1, 100, 1000} {
		for _, mode := range []redisadapter.Mode{redisadapter.Classic, redisadapter.Sharded, redisadapter.Streams} {
			b.Run(fmt.Sprintf("go-%s/fanout=%d", mode, fanout), func(b *testing.B) { benchGo(b, mode, fanout) })
		}
		for _, mode := range []string{"classic", "streams"} {
			b.Run(fmt.Sprintf("node-%s/fanout=%d", mode, fanout), func(b *testing.B) { benchNode(b, mode, fanout) })
		}
	}
}

func benchGo(b *testing.B, mode redisadapter.Mode, fanout int) {
	r := redistest.Start(b)
	cfg := redisadapter.Config{Addr: r.Addr, Mode: mode, Logger: slog.New(slog.DiscardHandler)}
	if mode == redisadapter.Streams {
		// Every event is kept: the stream holds them all, as the Node
		// streams adapter's would with the same maxLen.
		cfg.MaxLen = max(int64(b.N), 10_000)
	}
	a := startBenchNode(b, cfg)
	bn, cn := startBenchNode(b, cfg), startBenchNode(b, cfg)
	child := startBenchChild(b, strings.TrimPrefix(bn.URL, "http://")+","+strings.TrimPrefix(cn.URL, "http://"), fanout)
	deadline := time.Now().Add(time.Minute)
	joined := func() int { return bn.srv.Of("/").RoomSize("org:1") + cn.srv.Of("/").RoomSize("org:1") }
	for joined() < fanout {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d clients joined", joined(), fanout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitSubscribed(b, bn.cluster)
	waitSubscribed(b, cn.cluster)
	nsp := a.srv.Of("/").To("org:1")

	b.ResetTimer()
	cpu0, redis0, t0 := cpuTime(), procCPU(r.PID()), time.Now()
	const publishers = 16
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := nsp.Emit("bench", time.Now().UnixNano(), benchPayload); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	res := child.expect(b, int64(b.N)*int64(fanout))
	wall := time.Since(t0)
	cpu, redisCPU := cpuTime()-cpu0, procCPU(r.PID())-redis0
	b.StopTimer()
	if failed.Load() > 0 {
		b.Errorf("%d publishes failed", failed.Load())
	}
	for _, n := range []*goNode{bn, cn} {
		if st := n.cluster.Stats(); st.Dropped > 0 {
			b.Logf("a receiver dropped %d messages (queue full)", st.Dropped)
		}
	}
	report(b, res, wall, cpu, redisCPU)
}

func benchNode(b *testing.B, mode string, fanout int) {
	r := redistest.Start(b)
	// Heartbeats out of the way: a client busy reading a backlog of
	// events must not be dropped for a late pong.
	args := []string{"--mode", mode, "--ping-interval", "3600000"}
	if mode == "streams" {
		args = append(args, "--recovery", "120000", "--max-len", strconv.Itoa(max(b.N, 10_000)))
	}
	na := startNodeServer(b, r, args...)
	nb := startNodeServer(b, r, args...)
	na.Timeout = 10 * time.Minute
	child := startBenchChild(b, strings.TrimPrefix(nb.URL, "http://"), fanout)
	if mode == "streams" {
		r.WaitNumSub(b, "socket.io#/#", false, 2, time.Minute)
	} else {
		r.WaitNumSub(b, "socket.io-request#/#", false, 2, time.Minute)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var list []any
		_ = json.Unmarshal(nb.MustCall(map[string]any{"cmd": "fetchSockets", "rooms": []string{"org:1"}}), &list)
		if len(list) >= fanout {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d clients joined the Node server", len(list), fanout)
		}
		time.Sleep(50 * time.Millisecond)
	}

	b.ResetTimer()
	cpu0 := procCPU(na.PID()) + procCPU(nb.PID())
	redis0, t0 := procCPU(r.PID()), time.Now()
	na.MustCall(map[string]any{"cmd": "benchEmit", "rooms": []string{"org:1"}, "count": b.N, "payload": benchPayload})
	res := child.expect(b, int64(b.N)*int64(fanout))
	wall := time.Since(t0)
	cpu := procCPU(na.PID()) + procCPU(nb.PID()) - cpu0
	redisCPU := procCPU(r.PID()) - redis0
	b.StopTimer()
	report(b, res, wall, cpu, redisCPU)
}

// startBenchNode starts a Go node whose sockets join the rooms of their
// "rooms" query parameter, with heartbeats out of the measurement.
func startBenchNode(b *testing.B, cfg redisadapter.Config) *goNode {
	c, err := redisadapter.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	var recovery *socketio.RecoveryOptions
	if cfg.Mode == redisadapter.Streams {
		recovery = &socketio.RecoveryOptions{}
	}
	srv, err := socketio.NewServer(&socketio.Options{
		Adapter:  c.Adapter,
		Logger:   cfg.Logger,
		Engine:   &engineio.Options{PingInterval: time.Hour, PingTimeout: time.Hour, MaxQueueBytes: 64 << 20},
		Recovery: recovery,
	})
	if err != nil {
		b.Fatal(err)
	}
	srv.Of("/").Use(func(_ context.Context, s *socketio.Socket) error {
		if r := s.Handshake().Query().Get("rooms"); r != "" {
			s.Join(strings.Split(r, ",")...)
		}
		return nil
	})
	hs := httptest.NewServer(srv)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
		_ = c.Close()
	})
	waitSubscribed(b, c)
	return &goNode{name: "bench", srv: srv, cluster: c, URL: hs.URL}
}

func report(b *testing.B, res benchResult, wall, cpu, redisCPU time.Duration) {
	if res.got == 0 {
		b.Fatal("nothing delivered")
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(res.got)/wall.Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(res.got), "cpu-µs/delivery")
	b.ReportMetric(float64(redisCPU.Microseconds())/float64(b.N), "redis-cpu-µs/msg")
	b.ReportMetric(float64(res.p50)/1e3, "p50-ms")
	b.ReportMetric(float64(res.p99)/1e3, "p99-ms")
}

// cpuTime returns this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU returns another process's user+system CPU time (Linux /proc).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	// Fields after the command name, which may contain spaces: utime and
	// stime are the 14th and 15th fields of the line.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ
}

// ---------------------------------------------------------------------------
// The client process

type benchChild struct {
	in  io.WriteCloser
	out *bufio.Scanner
}

type benchResult struct {
	got      int64
	p50, p99 int64 // µs
}

func startBenchChild(tb testing.TB, addr string, n int) *benchChild {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d org:1", benchChildEnv, addr, n))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &benchChild{in: in, out: bufio.NewScanner(out)}
	tb.Cleanup(func() {
		in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if line := c.line(tb); line != "ready" {
		tb.Fatalf("bench child: %q", line)
	}
	return c
}

func (c *benchChild) line(tb testing.TB) string {
	tb.Helper()
	if !c.out.Scan() {
		tb.Fatalf("bench child exited: %v", c.out.Err())
	}
	return c.out.Text()
}

// expect waits until the clients received total events and returns the
// count and latency percentiles.
func (c *benchChild) expect(tb testing.TB, total int64) benchResult {
	tb.Helper()
	fmt.Fprintf(c.in, "expect %d\n", total)
	var r benchResult
	if _, err := fmt.Sscanf(c.line(tb), "done %d %d %d", &r.got, &r.p50, &r.p99); err != nil {
		tb.Fatal(err)
	}
	if r.got < total {
		tb.Errorf("clients received %d of %d events", r.got, total)
	}
	return r
}

// runBenchChild opens n Socket.IO WebSocket clients joined to a room, spread
// over the servers of a comma-separated address list, and
// records the latency of each "bench" event; "expect <total>" answers
// "done <received> <p50 µs> <p99 µs>" once total events have arrived (or
// after 2 minutes).
func runBenchChild(spec string) error {
	f := strings.Fields(spec)
	if len(f) != 3 {
		return fmt.Errorf("bad spec %q", spec)
	}
	addrs, room := strings.Split(f[0], ","), f[2]
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return err
	}
	var (
		received atomic.Int64
		mu       sync.Mutex
		lat      []int32
	)
	conns := make([]*wsframe.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var firstErr atomic.Value
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := wsclient.Dial(ctx, addrs[i%len(addrs)], "rooms="+room)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	for _, c := range conns {
		go func() {
			local := make([]int32, 0, 1024)
			flush := func() {
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
				local = local[:0]
			}
			var p []byte
			for {
				var err error
				if p, _, err = c.ReadMessage(p[:0]); err != nil {
					flush()
					return
				}
				if ts, ok := benchTimestamp(p); ok {
					local = append(local, int32(min((time.Now().UnixNano()-ts)/1e3, 1<<31-1)))
					received.Add(1)
					if len(local) == cap(local) {
						flush()
					}
				} else if string(p) == "2" { // Engine.IO ping
					_ = c.WriteText([]byte("3"))
				}
			}
		}()
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var total int64
		if _, err := fmt.Sscanf(in.Text(), "expect %d", &total); err != nil {
			continue
		}
		deadline := time.Now().Add(2 * time.Minute)
		for received.Load() < total && time.Now().Before(deadline) {
			time.Sleep(200 * time.Microsecond)
		}
		time.Sleep(20 * time.Millisecond) // let the readers flush their samples
		mu.Lock()
		all := append([]int32(nil), lat...)
		lat = lat[:0]
		mu.Unlock()
		slices.Sort(all)
		p := func(q float64) int32 {
			if len(all) == 0 {
				return 0
			}
			return all[min(len(all)-1, int(q*float64(len(all))))]
		}
		fmt.Printf("done %d %d %d\n", received.Swap(0), p(0.50), p(0.99))
	}
	return nil
}

// benchTimestamp extracts ts from a `42["bench",<ts>,...]` frame.
func benchTimestamp(p []byte) (int64, bool) {
	const prefix = `42["bench",`
	if len(p) < len(prefix) || string(p[:len(prefix)]) != prefix {
		return 0, false
	}
	rest := p[len(prefix):]
	end := 0
	for end < len(rest) && rest[end] != ',' && rest[end] != ']' {
		end++
	}
	f, err := strconv.ParseFloat(string(rest[:end]), 64)
	return int64(f), err == nil
}
