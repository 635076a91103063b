package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Every process the orchestrator starts is registered here, so that it is
// killed (by its PID) however the run ends.
var (
	procsMu sync.Mutex
	procs   = map[int]*exec.Cmd{}
)

func register(c *exec.Cmd) {
	procsMu.Lock()
	procs[c.Process.Pid] = c
	procsMu.Unlock()
}

func unregister(c *exec.Cmd) {
	procsMu.Lock()
	delete(procs, c.Process.Pid)
	procsMu.Unlock()
}

// killAll kills every process still registered.
func killAll() {
	procsMu.Lock()
	defer procsMu.Unlock()
	for pid, c := range procs {
		_ = c.Process.Kill()
		_, _ = c.Process.Wait()
		delete(procs, pid)
	}
}

// ---- /proc -------------------------------------------------------------------------------------------

// clockTick is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU is a process's user+system CPU time, all threads.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command may contain spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}

// procRSS is a process's resident set size in bytes (VmRSS).
func procRSS(pid int) int64 {
	return procStatus(pid, "VmRSS:")
}

func procStatus(pid int, key string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// waitQuiet waits until pid uses less than frac of a core over two
// consecutive 250 ms windows, or until limit.
func waitQuiet(pid int, frac float64, limit time.Duration) {
	deadline := time.Now().Add(limit)
	calm := 0
	prev := procCPU(pid)
	for time.Now().Before(deadline) && calm < 2 {
		time.Sleep(250 * time.Millisecond)
		cur := procCPU(pid)
		if float64(cur-prev) < frac*float64(250*time.Millisecond) {
			calm++
		} else {
			calm = 0
		}
		prev = cur
	}
}

// ---- servers -----------------------------------------------------------------------------------------

// Server kinds.
const (
	kindOurs       = "ours"
	kindNode       = "node"
	kindCentrifugo = "centrifugo"
)

// protoCentrifugo is the Cmd.Protocol of Centrifugo's clients.
const protoCentrifugo = "centrifugo"

// allKinds are the server kinds in the report's order: ours, then the
// peers.
var allKinds = []string{kindOurs, kindNode, kindCentrifugo}

// peerKinds are the peers ours is compared with.
var peerKinds = []string{kindNode, kindCentrifugo}

// protocolOf is the Cmd.Protocol of the clients of a server kind.
func protocolOf(kind string) string {
	if kind == kindCentrifugo {
		return protoCentrifugo
	}
	return ""
}

// server is one running server process.
type server struct {
	kind string
	addr string // 127.0.0.1:port
	cmd  *exec.Cmd
	pid  int
	log  *os.File
	// pprof is our server's profiling address ("" when not enabled).
	pprof string
	// group, when set, makes this a set of processes measured together
	// (CPU summed): the servers of a cluster and their Redis.
	group []*server
	// pingInterval is the heartbeat the server runs with; heartbeatLoad
	// the share of a core its connections' heartbeats take (see holding).
	pingInterval  time.Duration
	heartbeatLoad float64
}

type serverSpec struct {
	kind    string
	ours    string // the realtime binary
	nodeDir string // bench/node
	// centrifugo is the Centrifugo binary.
	centrifugo string
	secret     string
	apiKey     string
	logDir     string
	redisURL   string
	pprof      bool
	name       string // for the log file
	// Heartbeat and write timeout; zero leaves the server's default.
	pingInterval time.Duration
	pingTimeout  time.Duration
	writeTimeout time.Duration
	// redisMode is the Redis adapter ("" or "classic": Pub/Sub; "streams":
	// Redis Streams, ours' REDIS_ADAPTER_MODE=streams and Node's
	// @socket.io/redis-streams-adapter); recoveryWindow turns connection
	// state recovery on (ours' RECOVERY_WINDOW, Node's
	// connectionStateRecovery.maxDisconnectionDuration).
	redisMode      string
	recoveryWindow time.Duration
}

// startServer starts a server and waits until it answers /healthz.
func startServer(spec serverSpec) (*server, error) {
	// The port freePort found may be taken before the server binds it: a
	// server that connects to Redis before it listens (Centrifugo) can get
	// it as the local port of one of its own connections. Another port
	// then.
	for attempt := 1; ; attempt++ {
		s, err := startServerOnce(spec)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return s, err
		}
	}
}

func startServerOnce(spec serverSpec) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env := append(os.Environ(),
		"JWT_SECRET="+spec.secret,
		"API_KEYS="+spec.apiKey,
		"MAX_BATCH_EVENTS=100",
	)
	var cmd *exec.Cmd
	s := &server{kind: spec.kind, addr: addr, pingInterval: spec.pingInterval}
	if s.pingInterval == 0 {
		s.pingInterval = defaultPingInterval
	}
	switch spec.kind {
	case kindOurs:
		cmd = exec.Command(spec.ours, "serve", "--addr", addr, "--dev=false", "--log-level", "warn", "--log-format", "json", "--shutdown-timeout", "5s")
		// The ramps publish far past the default per-key budget, and the
		// Node peer has none. The clients come from a few source addresses
		// (thousands each), far past the default cap of connections per
		// address, which the peers do not have either.
		env = append(env, "PUBLISH_RATE=off", "MAX_CONNECTIONS_PER_ADDRESS=off")
		if spec.pprof {
			pp, err := freePort()
			if err != nil {
				return nil, err
			}
			s.pprof = "127.0.0.1:" + strconv.Itoa(pp)
			env = append(env, "REALTIME_PPROF_ADDR="+s.pprof)
		}
		if spec.redisURL != "" {
			env = append(env, "REDIS_URL="+spec.redisURL)
		}
		if spec.redisMode != "" {
			env = append(env, "REDIS_ADAPTER_MODE="+spec.redisMode)
		}
		if spec.recoveryWindow > 0 {
			env = append(env, "RECOVERY_WINDOW="+spec.recoveryWindow.String())
		}
		for _, d := range []struct {
			name string
			v    time.Duration
		}{{"PING_INTERVAL", spec.pingInterval}, {"PING_TIMEOUT", spec.pingTimeout}, {"WRITE_TIMEOUT", spec.writeTimeout}} {
			if d.v > 0 {
				env = append(env, d.name+"="+d.v.String())
			}
		}
	case kindNode:
		args := []string{filepath.Join(spec.nodeDir, "server.mjs"), "--addr", addr}
		if spec.redisURL != "" {
			args = append(args, "--redis", spec.redisURL)
		}
		if spec.redisMode != "" {
			args = append(args, "--redis-mode", spec.redisMode)
		}
		if spec.recoveryWindow > 0 {
			args = append(args, "--recovery-window", strconv.FormatInt(spec.recoveryWindow.Milliseconds(), 10))
		}
		if spec.pingInterval > 0 {
			args = append(args, "--ping-interval", strconv.FormatInt(spec.pingInterval.Milliseconds(), 10))
		}
		if spec.pingTimeout > 0 {
			args = append(args, "--ping-timeout", strconv.FormatInt(spec.pingTimeout.Milliseconds(), 10))
		}
		cmd = exec.Command("node", args...)
		cmd.Dir = spec.nodeDir
	case kindCentrifugo:
		path, err := writeCentrifugoConfig(spec, "127.0.0.1", port)
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(spec.centrifugo, "--config", path)
	default:
		return nil, fmt.Errorf("unknown server kind %q", spec.kind)
	}
	cmd.Env = env
	logPath := filepath.Join(spec.logDir, spec.name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", spec.kind, err)
	}
	register(cmd)
	s.cmd, s.pid, s.log = cmd, cmd.Process.Pid, lf
	health := "/healthz"
	if spec.kind == kindCentrifugo {
		health = "/health"
	}
	if err := waitHealthy(addr, health, 20*time.Second); err != nil {
		s.stop()
		tail, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%s server did not become healthy: %w\n%s", spec.kind, err, lastLines(string(tail), 15))
	}
	return s, nil
}

func (s *server) stop() {
	if s == nil || s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	unregister(s.cmd)
	s.log.Close()
	s.cmd = nil
}

// terminate ends the server with sig (SIGTERM: its graceful shutdown;
// SIGKILL: a crash) and waits until it has exited, killing it after limit.
// It returns how long the exit took.
func (s *server) terminate(sig syscall.Signal, limit time.Duration) time.Duration {
	if s == nil || s.cmd == nil {
		return 0
	}
	t0 := time.Now()
	_ = s.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		_ = s.cmd.Process.Kill()
		<-done
	}
	el := time.Since(t0)
	unregister(s.cmd)
	s.log.Close()
	s.cmd = nil
	return el
}

func (s *server) cpu() time.Duration {
	if s.group != nil {
		var t time.Duration
		for _, m := range s.group {
			t += m.cpu()
		}
		return t
	}
	return procCPU(s.pid)
}

func (s *server) rss() int64 {
	if s.group != nil {
		var t int64
		for _, m := range s.group {
			t += m.rss()
		}
		return t
	}
	return procRSS(s.pid)
}

// waitQuiet waits until every process of s is quiet (see waitQuiet): below
// frac of a core beside its connections' heartbeats.
func (s *server) waitQuiet(frac float64, limit time.Duration) {
	if s.group != nil {
		for _, m := range s.group {
			m.waitQuiet(frac, limit)
		}
		return
	}
	waitQuiet(s.pid, frac+s.heartbeatLoad, limit)
}

// pingPongCost is a generous figure of the server CPU one ping and its
// pong take (measured on the 2-core VM, loaded: ~30 µs ours, ~36 µs Node).
const pingPongCost = 50 * time.Microsecond

// holding tells s that it holds conns connections, so that waiting for it
// to be quiet allows for their heartbeats: with a short ping interval they
// alone can keep a server above a quiet threshold.
func (s *server) holding(conns int) {
	if s.group != nil {
		servers := 0
		for _, m := range s.group {
			if m.kind != "redis" {
				servers++
			}
		}
		for _, m := range s.group {
			if m.kind != "redis" {
				m.holding(conns / servers)
			}
		}
		return
	}
	s.heartbeatLoad = float64(conns) * pingPongCost.Seconds() / s.pingInterval.Seconds()
}

func waitHealthy(addr, path string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// ---- redis -------------------------------------------------------------------------------------------

// startRedis starts a throwaway redis-server without persistence.
func startRedis(bin, logDir string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	lf, err := os.Create(filepath.Join(logDir, "redis.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	register(cmd)
	s := &server{kind: "redis", addr: "127.0.0.1:" + strconv.Itoa(port), cmd: cmd, pid: cmd.Process.Pid, log: lf}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", s.addr); err == nil {
			c.Close()
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	return nil, errors.New("redis-server did not start")
}

// ---- workers -----------------------------------------------------------------------------------------

// workerProc is a running load-generator process.
type workerProc struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	next int
	mu   sync.Mutex
}

func startWorker(logDir string, n int) (*workerProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "worker")
	lf, err := os.Create(filepath.Join(logDir, fmt.Sprintf("worker-%d.log", n)))
	if err != nil {
		return nil, err
	}
	cmd.Stderr = lf
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	register(cmd)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	return &workerProc{cmd: cmd, in: in, out: sc}, nil
}

// call sends a command and waits for its reply.
func (w *workerProc) call(c Cmd) (Reply, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	c.ID = w.next
	b, _ := json.Marshal(c)
	if _, err := w.in.Write(append(b, '\n')); err != nil {
		return Reply{}, fmt.Errorf("worker %s: %w", c.Op, err)
	}
	if !w.out.Scan() {
		return Reply{}, fmt.Errorf("worker %s: worker exited (%v)", c.Op, w.out.Err())
	}
	var r Reply
	if err := json.Unmarshal(w.out.Bytes(), &r); err != nil {
		return Reply{}, err
	}
	if r.Err != "" {
		return r, fmt.Errorf("worker %s: %s", c.Op, r.Err)
	}
	return r, nil
}

func (w *workerProc) stop() {
	if w == nil || w.cmd == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		_, _ = w.call(Cmd{Op: "quit"})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	w.in.Close()
	_ = w.cmd.Process.Kill()
	_ = w.cmd.Wait()
	unregister(w.cmd)
	w.cmd = nil
}

// fleet is the set of workers of one measurement.
type fleet struct {
	ws []*workerProc
}

// all runs f on every worker in parallel and returns the replies in order.
func (f *fleet) all(ctx context.Context, mk func(i int) Cmd) ([]Reply, error) {
	out := make([]Reply, len(f.ws))
	errs := make([]error, len(f.ws))
	var wg sync.WaitGroup
	for i, w := range f.ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = w.call(mk(i))
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (f *fleet) stop() {
	var wg sync.WaitGroup
	for _, w := range f.ws {
		wg.Add(1)
		go func() { defer wg.Done(); w.stop() }()
	}
	wg.Wait()
}

// sum merges the counters of the workers' replies.
func sum(rs []Reply) Reply {
	var t Reply
	for _, r := range rs {
		t.Connected += r.Connected
		t.Failed += r.Failed
		t.Errors = append(t.Errors, r.Errors...)
		t.ElapsedNS = max(t.ElapsedNS, r.ElapsedNS)
		t.ConnectHist.add(r.ConnectHist)
		t.ConnectCPU += r.ConnectCPU
		t.Alive += r.Alive
		t.AliveUpgraded += r.AliveUpgraded
		t.AlivePolling += r.AlivePolling
		t.PingIntervalMS = max(t.PingIntervalMS, r.PingIntervalMS)
		t.PingTimeoutMS = max(t.PingTimeoutMS, r.PingTimeoutMS)
		t.Received += r.Received
		t.Welcomes += r.Welcomes
		t.Closed += r.Closed
		t.Malformed += r.Malformed
		t.Latency.add(r.Latency)
		t.CPUNS += r.CPUNS
		t.Recovered += r.Recovered
		t.NotRecovered += r.NotRecovered
		t.Gaps += r.Gaps
		t.WithOffset += r.WithOffset
	}
	return t
}
