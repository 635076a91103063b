package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// resultsFile is results.json: everything the report is built from
// (`realtime-bench report results.json` rebuilds it).
type resultsFile struct {
	Full    bool        `json:"full"`
	Repeat  int         `json:"repeat"`
	Clients clientSetup `json:"clients"`
	Machine machineInfo `json:"machine"`
	Results []Result    `json:"results"`
}

// clientSetup is how the clients connected and how long they idled: the
// report's header states it.
type clientSetup struct {
	PollingPercent int           `json:"pollingPercent"`
	UpgradePercent int           `json:"upgradePercent"`
	PingInterval   time.Duration `json:"pingInterval"`
	PingTimeout    time.Duration `json:"pingTimeout"`
	WriteTimeout   time.Duration `json:"writeTimeout"`
	Idle           time.Duration `json:"idleBeforePublish"`
}

func (c *config) clientSetup() clientSetup {
	pi, pt := c.heartbeat()
	return clientSetup{PollingPercent: c.polling, UpgradePercent: c.upgrade, PingInterval: pi, PingTimeout: pt,
		WriteTimeout: c.ourWriteTimeout(), Idle: c.idle}
}

// Result is one scenario's measurement of one server in one repetition.
type Result struct {
	Scenario string             `json:"scenario"`
	Server   string             `json:"server"`
	Rep      int                `json:"rep"`
	M        map[string]float64 `json:"metrics"`
	Steps    []Step             `json:"steps,omitempty"`
	Notes    []string           `json:"notes,omitempty"`
}

// Step is one publish rate of a fan-out ramp.
type Step struct {
	Rate          float64 `json:"rate"`      // events/s offered
	Published     int64   `json:"published"` // events accepted by the API
	Expected      int64   `json:"expected"`  // deliveries due
	Delivered     int64   `json:"delivered"` // deliveries received
	Lost          int64   `json:"lost"`      // due and not received (negative: duplicates)
	Closed        int64   `json:"closed"`    // connections the server ended during the step
	PerSec        float64 `json:"deliveriesPerSec"`
	P50, P99, Max float64 // ms, publish → receipt
	CPUPerDeliv   float64 `json:"serverCpuUsPerDelivery"`
	ServerCores   float64 `json:"serverCores"` // server CPU time / wall time
	GenCores      float64 `json:"generatorCores"`
	PubErrors     int64   `json:"publishErrors"`
	PubFirstErr   string  `json:"publishFirstError,omitempty"`
	PubBehind     bool    `json:"publisherBehind"` // the API took longer than the schedule
	Pass          bool    `json:"pass"`
	Why           string  `json:"why,omitempty"`
}

type runner struct {
	cfg     *config
	logDir  string
	results []Result
	// peerSat is each peer's saturation rate (events/s) per fan-out
	// config, in the current repetition (peer → config → rate), so that
	// ours is measured at it too; Centrifugo is also measured at Node's.
	peerSat map[string]map[string]float64
	log     *os.File
}

func run(cfg *config) error {
	if cfg.out == "" {
		cfg.out = filepath.Join("artifacts", "bench", time.Now().Format("20060102-150405"))
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	r := &runner{cfg: cfg, logDir: cfg.out, peerSat: map[string]map[string]float64{}}
	lf, err := os.Create(filepath.Join(cfg.out, "run.log"))
	if err != nil {
		return err
	}
	defer lf.Close()
	r.log = lf

	if cfg.realtime == "" {
		cfg.realtime = filepath.Join(cfg.out, "realtime")
		r.logf("building ./cmd/realtime → %s", cfg.realtime)
		b := exec.Command("go", "build", "-o", cfg.realtime, "./cmd/realtime")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/realtime (run from the module root): %w", err)
		}
	}
	if abs, err := filepath.Abs(cfg.nodeDir); err == nil {
		cfg.nodeDir = abs
	}
	for _, s := range cfg.servers {
		switch s {
		case kindNode:
			if _, err := os.Stat(filepath.Join(cfg.nodeDir, "node_modules", "socket.io")); err != nil {
				return fmt.Errorf("the Node peer is not installed: run npm ci --prefix %s", cfg.nodeDir)
			}
		case kindCentrifugo:
			if _, err := os.Stat(cfg.centrifugo); err != nil {
				return fmt.Errorf("the Centrifugo peer is not installed (%v): run %s (scripts/bench.sh does), or pass --centrifugo BIN or --peers node", err, centrifugoInstallHint())
			}
		}
	}
	machine := describeMachine(cfg)
	r.logf("machine: %s", machine.oneLine())
	r.logf("command: %s", strings.Join(os.Args, " "))

	start := time.Now()
	for rep := 1; rep <= cfg.repeat; rep++ {
		r.peerSat = map[string]map[string]float64{}
		if cfg.scenarios["idle"] || cfg.scenarios["storm"] {
			for _, kind := range cfg.servers {
				r.try(func() error { return r.idleStorm(kind, rep) })
			}
		}
		if cfg.scenarios["fanout"] || cfg.scenarios["burst"] {
			for _, kind := range cfg.servers {
				r.try(func() error { return r.oneOrg(kind, rep) })
			}
		}
		if cfg.scenarios["fanout"] {
			for _, kind := range cfg.servers {
				r.try(func() error { return r.manyOrgs(kind, rep) })
			}
		}
		if cfg.scenarios["redis"] {
			for _, kind := range cfg.servers {
				r.try(func() error { return r.redis(kind, rep) })
			}
		}
		if cfg.scenarios[scenStreamsHistory] || cfg.scenarios[scenStreamsFanout] {
			for _, kind := range cfg.servers {
				r.try(func() error { return r.streamsLoad(kind, rep) })
			}
		}
		for _, sc := range []struct {
			name string
			sig  syscall.Signal
		}{{scenStreamsRecovery, syscall.SIGTERM}, {scenStreamsRecoveryKill, syscall.SIGKILL}} {
			if cfg.scenarios[sc.name] {
				for _, kind := range cfg.servers {
					r.try(func() error { return r.recoveryStorm(sc.name, kind, rep, sc.sig) })
				}
			}
		}
	}
	machine.LoadEnd = loadAvg()
	machine.Duration = time.Since(start).Round(time.Second).String()

	rf := resultsFile{Full: cfg.full, Repeat: cfg.repeat, Clients: cfg.clientSetup(), Machine: machine, Results: r.results}
	rep := buildReport(rf)
	if err := os.WriteFile(filepath.Join(cfg.out, "report.md"), []byte(rep), 0o644); err != nil {
		return err
	}
	raw, _ := json.MarshalIndent(rf, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.out, "results.json"), raw, 0o644); err != nil {
		return err
	}
	fmt.Print(rep)
	fmt.Fprintf(os.Stderr, "\nresults: %s/report.md, %s/results.json (logs there too)\n", cfg.out, cfg.out)
	// A session that could not run (a server that did not start, clients
	// refused) fails the run too, after the report: a peer that silently
	// measured nothing would read as a run that passed.
	var failed []string
	for _, res := range r.results {
		if res.Scenario == "error" {
			failed = append(failed, res.Notes...)
		}
	}
	var errs []error
	if bad := unexpectedLosses(r.results); len(bad) > 0 {
		errs = append(errs, &lossError{bad})
	}
	if len(failed) > 0 {
		errs = append(errs, fmt.Errorf("%d session(s) failed (the report's Errors section):\n  %s", len(failed), strings.Join(failed, "\n  ")))
	}
	return errors.Join(errs...)
}

// try runs one session; a failure is logged and recorded, the run goes on.
func (r *runner) try(f func() error) {
	if err := f(); err != nil {
		r.logf("ERROR: %v", err)
		r.results = append(r.results, Result{Scenario: "error", Notes: []string{err.Error()}})
	}
	killAll() // nothing survives a session
}

func (r *runner) logf(format string, args ...any) {
	line := time.Now().Format("15:04:05 ") + fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, line)
	if r.log != nil {
		fmt.Fprintln(r.log, line)
	}
}

func (r *runner) add(res Result) {
	r.results = append(r.results, res)
	b, _ := json.Marshal(res.M)
	r.logf("result %s/%s rep %d: %s", res.Scenario, res.Server, res.Rep, b)
}

// start starts a server with its default heartbeat and timeouts (the idle
// and storm scenarios, so that their memory and CPU figures are those of a
// production configuration).
func (r *runner) start(kind, name, redisURL string) (*server, error) {
	return startServer(serverSpec{
		kind: kind, ours: r.cfg.realtime, nodeDir: r.cfg.nodeDir, centrifugo: r.cfg.centrifugo, secret: r.cfg.secret, apiKey: r.cfg.apiKey,
		logDir: r.logDir, redisURL: redisURL, pprof: r.cfg.pprof && kind == kindOurs, name: name,
	})
}

// startFanout starts a server of a fan-out session, on the heartbeat
// (--ping-interval, --ping-timeout) and write timeout its idle period
// is sized for.
func (r *runner) startFanout(kind, name, redisURL string) (*server, error) {
	return r.startFanoutMode(kind, name, redisURL, "", 0)
}

// startFanoutMode is startFanout with a Redis adapter mode and a recovery
// window (0: recovery off).
func (r *runner) startFanoutMode(kind, name, redisURL, mode string, window time.Duration) (*server, error) {
	return startServer(serverSpec{
		redisMode: mode, recoveryWindow: window,
		kind: kind, ours: r.cfg.realtime, nodeDir: r.cfg.nodeDir, centrifugo: r.cfg.centrifugo, secret: r.cfg.secret, apiKey: r.cfg.apiKey,
		logDir: r.logDir, redisURL: redisURL, pprof: r.cfg.pprof && kind == kindOurs, name: name,
		pingInterval: r.cfg.pingInterval, pingTimeout: r.cfg.pingTimeout, writeTimeout: r.cfg.writeTimeout,
	})
}

// newFleet starts enough workers for n clients of a server of kind and
// sets them up: client g (0 ≤ g < n) in organization g%orgs, connecting to
// targets[g%len].
func (r *runner) newFleet(kind string, n, orgs int, targets []string) (*fleet, error) {
	return r.newFleetRecovery(kind, n, orgs, targets, false)
}

// newFleetRecovery is newFleet with the clients keeping what connection
// state recovery needs (Cmd.Recovery) when recovery is set.
func (r *runner) newFleetRecovery(kind string, n, orgs int, targets []string, recovery bool) (*fleet, error) {
	nw := (n + r.cfg.perWorker - 1) / r.cfg.perWorker
	f := &fleet{}
	for i := range nw {
		w, err := startWorker(r.logDir, i)
		if err != nil {
			f.stop()
			return nil, err
		}
		f.ws = append(f.ws, w)
	}
	_, err := f.all(context.Background(), func(i int) Cmd {
		first, count := share(n, nw, i)
		return Cmd{
			Op: "setup", Secret: r.cfg.secret, Namespace: "/events", Event: r.cfg.event, Targets: targets,
			Sources: r.cfg.sources, First: first, Count: count, Orgs: orgs, PollingPercent: r.cfg.polling,
			UpgradePercent: r.cfg.upgrade, TokenTTL: 24 * time.Hour, Protocol: protocolOf(kind), Recovery: recovery,
		}
	})
	if err != nil {
		f.stop()
		return nil, err
	}
	return f, nil
}

// share is worker i's range of n clients over nw workers.
func share(n, nw, i int) (first, count int) {
	base, extra := n/nw, n%nw
	first = i*base + min(i, extra)
	count = base
	if i < extra {
		count++
	}
	return
}

// connect opens the connections of the first fraction of each worker's
// clients (all of them for frac 1) with conc handshakes in flight overall.
func (r *runner) connect(f *fleet, n, level, conc int) (Reply, error) {
	nw := len(f.ws)
	rs, err := f.all(context.Background(), func(i int) Cmd {
		_, count := share(n, nw, i)
		to := count
		if level < n {
			to = int(int64(count) * int64(level) / int64(n))
		}
		return Cmd{Op: "connect", To: to, Concurrency: max(1, conc/nw)}
	})
	t := sum(rs)
	if err != nil {
		return t, err
	}
	if t.Failed > 0 {
		r.logf("  %d connections failed: %s", t.Failed, strings.Join(t.Errors, "; "))
	}
	return t, nil
}

func (r *runner) stats(f *fleet) (Reply, error) {
	rs, err := f.all(context.Background(), func(int) Cmd { return Cmd{Op: "stats"} })
	return sum(rs), err
}

func (r *runner) reset(f *fleet) error {
	_, err := f.all(context.Background(), func(int) Cmd { return Cmd{Op: "reset"} })
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- machine -----------------------------------------------------------------------------------------

type machineInfo struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	MemGiB int    `json:"memGiB"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	Node   string `json:"node"`
	// Centrifugo is the module and Go version of the Centrifugo binary,
	// from its build information ("" when not measured).
	Centrifugo string `json:"centrifugo,omitempty"`
	NoFile     string `json:"nofile"`
	LoadStart  string `json:"loadStart"`
	LoadEnd    string `json:"loadEnd"`
	Duration   string `json:"duration"`
	Command    string `json:"command"`
	Started    string `json:"started"`
}

func (m machineInfo) oneLine() string {
	return fmt.Sprintf("%d × %s, %d GiB, Linux %s, %s, Node %s, nofile %s, load %s", m.Cores, m.CPU, m.MemGiB,
		m.Kernel, m.Go, m.Node, m.NoFile, m.LoadStart)
}

func describeMachine(cfg *config) machineInfo {
	m := machineInfo{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAvg(),
		Command: strings.Join(os.Args, " "), Started: time.Now().UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					m.CPU = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	m.MemGiB = int((procMeminfo("MemTotal:") + (1 << 29)) >> 30)
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("node", "--version").Output(); err == nil {
		m.Node = strings.TrimSpace(string(out))
	}
	if slices.Contains(cfg.servers, kindCentrifugo) {
		m.Centrifugo = centrifugoBuild(cfg.centrifugo)
	}
	if out, err := exec.Command("sh", "-c", "ulimit -n").Output(); err == nil {
		m.NoFile = strings.TrimSpace(string(out))
	}
	return m
}

func procMeminfo(key string) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			f := strings.Fields(l)
			if len(f) >= 2 {
				var kb int64
				fmt.Sscan(f[1], &kb)
				return kb * 1024
			}
		}
	}
	return 0
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
