// Command realtime-bench is the benchmark harness that puts our server (the
// real `realtime` binary) beside two peers, Node's socket.io 4.8
// (bench/node) and Centrifugo v6.9.1 (installed from the Go module proxy by
// scripts/bench.sh), in the same run, on the same machine, one server at a
// time, and reports them with ours' ratio to each (--peers chooses them).
//
//	realtime-bench [run] [flags]   run the scenarios (quick by default; --full for the full set)
//	realtime-bench report FILE     rebuild a run's report from its results.json
//	realtime-bench worker          a load-generator process (started by run; JSON lines on stdin/stdout)
//
// The load generator speaks Engine.IO v4 / Socket.IO v5, each client with
// its own HS256 JWT minted with the servers' secret, spread over many
// organizations, on one of three transports:
//
//   - polling then upgrade (--upgrade-percent, default 25): what
//     socket.io-client does with its default options, and so every
//     browser: the handshake and the CONNECT over HTTP long-polling, then
//     the WebSocket probe ("2probe" → "3probe"), polling paused, "5", and
//     the rest of the connection over that WebSocket;
//   - long-polling only (--polling-percent, default 0);
//   - WebSocket straight away (the rest).
//
// Centrifugo's clients speak its JSON protocol over WebSocket (the
// /connection/websocket endpoint; Centrifugo has no long-polling
// transport, so none of them polls or upgrades): a connect command with a
// token whose channels claim subscribes the connection to its
// organization's channel on the server side, then publications pushed;
// events are published through its HTTP API (/api/batch).
//
// Connections are spread over several worker processes (this binary
// re-executed: at most --per-worker connections each, under the
// per-process open-file limit) and several source addresses in
// 127.0.0.0/8 (28k ephemeral ports per source/destination pair).
//
// Scenarios (docs/benchmarks.md describes method and results):
//
//	idle     memory per idle connection (RSS from /proc), connect rate, server CPU per connection;
//	         projections to 50k and 100k connections
//	storm    every client reconnects at once (JWT verified on each): rate, CPU per handshake
//	fanout   one organization of N clients, and N clients over N/10 organizations, at rising publish
//	         rates until saturation (loss or p99 >= 1 s): deliveries/s, latency, CPU per delivery
//	burst    100 events in one request into a room of 10k
//	redis    cross-node through Redis: two servers of each kind, publish on one
//	streams  the Redis Streams adapter (ours' REDIS_ADAPTER_MODE=streams, Node's
//	         @socket.io/redis-streams-adapter), two servers of each kind with recovery on:
//	         streams-history        server CPU and Redis commands per published event, streams vs the
//	                                classic adapter at the same rate (what keeping history costs)
//	         streams-fanout         deliveries/s and latency ramps over streams (and classic, for reference)
//	         streams-recovery       a recovery storm: every client on node A, A stopped (SIGTERM), events
//	                                published meanwhile, every client reconnects to node B at once: time
//	                                until all are back, recovered vs history:gap vs failed, Redis commands,
//	                                server CPU
//	         streams-recovery-kill  the same with SIGKILL (a crash)
//
// Users stay connected for hours, mostly idle, so every fan-out session
// (fanout, burst, redis) first idles for longer than every timeout of
// either server (--idle-before-publish, default: a whole heartbeat, i.e.
// ping interval + ping timeout, or the write and upgrade timeouts if
// longer, plus 5 s), then publishes and counts what arrived. Those
// sessions run both servers on a ping interval of --ping-interval (10 s
// instead of 25 s) to keep that idle at 35 s; the idle and storm scenarios
// keep the defaults. Nothing may be lost and no connection closed in the
// idle and the publication after it, in the bursts, while the idle
// scenario holds its connections, or at a publish rate below saturation:
// the report counts lost events and disconnects per scenario and server
// (sums over repetitions, never medians), marks every scenario that has
// any, and the run then exits with status 4. Losses at the failing steps
// of a ramp are the overload that defines saturation and are listed apart.
//
// A session that fails (a server that does not start, clients that cannot
// connect) is listed in the report's Errors section and the run then exits
// with status 1 (4 when events or connections were also lost).
//
// Every process started is killed by its PID when the run ends.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "worker":
		if err := runWorker(); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
	case "run":
		cfg, err := parseFlags(args)
		if err != nil {
			fmt.Fprintln(os.Stderr, "realtime-bench:", err)
			os.Exit(2)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			<-sig
			fmt.Fprintln(os.Stderr, "realtime-bench: interrupted, stopping every process started")
			killAll()
			os.Exit(130)
		}()
		if cfg.maxDuration > 0 {
			time.AfterFunc(cfg.maxDuration, func() {
				fmt.Fprintf(os.Stderr, "realtime-bench: --max-duration %v reached, stopping every process started\n", cfg.maxDuration)
				killAll()
				os.Exit(3)
			})
		}
		err = run(cfg)
		killAll()
		var lost *lossError
		switch {
		case errors.As(err, &lost):
			fmt.Fprintln(os.Stderr, "realtime-bench:", err)
			os.Exit(4)
		case err != nil:
			fmt.Fprintln(os.Stderr, "realtime-bench:", err)
			os.Exit(1)
		}
	case "report":
		if len(args) != 1 {
			fmt.Fprintln(os.Stderr, "usage: realtime-bench report results.json")
			os.Exit(2)
		}
		b, err := os.ReadFile(args[0])
		var rf resultsFile
		if err == nil {
			err = json.Unmarshal(b, &rf)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "realtime-bench report:", err)
			os.Exit(1)
		}
		fmt.Print(buildReport(rf))
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "realtime-bench: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
}

const usage = `realtime-bench: our server beside Node's socket.io 4.8 and Centrifugo v6.9.1, same run, same machine

Usage:
  realtime-bench [run] [--quick|--full] [--scenarios idle,storm,fanout,burst,redis,streams] [--peers node,centrifugo]
                 [--clients N]
                 [--repeat N] [--out DIR] [--realtime BIN] [--upgrade-percent P] [flags...]
  realtime-bench report results.json     rebuild report.md from a run's results
  realtime-bench worker     (internal: a load-generator process)

Run "realtime-bench run -h" for every flag. Exit status 1: a session failed (the report lists it);
4: the run lost events or connections where none may be lost (its report says where).
`

// config is a run's configuration.
type config struct {
	full       bool
	scenarios  map[string]bool
	servers    []string
	repeat     int
	out        string
	realtime   string
	nodeDir    string
	centrifugo string
	redisBin   string
	sources    []string
	perWorker  int
	secret     string
	apiKey     string
	event      string
	polling    int
	upgrade    int
	pprof      bool

	// The heartbeat both servers are started with (0: the server's
	// default), our server's write timeout, and the idle before the first
	// publication of every fan-out session.
	pingInterval time.Duration
	pingTimeout  time.Duration
	writeTimeout time.Duration
	idle         time.Duration

	maxDuration time.Duration

	idleConns   []int
	idleServers int
	connectConc int
	settle      time.Duration

	stormConc   int
	stormRounds int

	fanoutClients int
	orgSize       int
	step          time.Duration
	rampFactor    float64
	refine        int
	oneOrgStart   float64
	manyOrgStart  float64
	maxSteps      int
	pubConc       int

	burstRoom   int
	burstEvents int
	burstRounds int

	redisClients int

	// The streams scenarios (streams.go).
	streamsClients   int
	streamsRate      float64
	streamsSteps     int
	streamsStep      time.Duration
	streamsStart     float64
	recoveryEvents   int
	recoveryWindow   time.Duration
	recoveryStormCnc int
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("realtime-bench run", flag.ContinueOnError)
	full := fs.Bool("full", false, "the full run (default: quick, about 9 minutes with both peers)")
	quick := fs.Bool("quick", false, "the quick run (the default; exclusive with --full)")
	scen := fs.String("scenarios", "", "comma-separated: idle, storm, fanout, burst, redis, streams (= streams-history, streams-fanout, streams-recovery, streams-recovery-kill) or any of those four (default: idle, storm, fanout and burst in quick mode, also redis in full)")
	peers := fs.String("peers", "node,centrifugo", "peers measured beside ours, in this order: node (socket.io 4.8), centrifugo (Centrifugo "+centrifugoVersion+"); ours runs last and is also measured at each peer's saturation rate")
	servers := fs.String("servers", "", "servers to measure, in this order (overrides --peers; default: the peers, then ours)")
	clients := fs.Int("clients", 0, "shorthand for a smaller (or larger) run: sets --idle-conns, --fanout-clients, --burst-room and --redis-clients to this number")
	centrifugo := fs.String("centrifugo", filepath.Join(centrifugoCache, "centrifugo"), "the Centrifugo binary (scripts/bench.sh installs it there: "+centrifugoInstallHint()+")")
	repeat := fs.Int("repeat", 0, "repetitions of each scenario; medians are reported (default 1 quick, 3 full)")
	out := fs.String("out", "", "output directory (default artifacts/bench/<time>)")
	realtime := fs.String("realtime", "", "the realtime binary (default: go build ./cmd/realtime into the output directory)")
	nodeDir := fs.String("node-dir", "bench/node", "the Node peer (npm ci there first)")
	redisBin := fs.String("redis-server", "/usr/bin/redis-server", "redis-server binary, for the redis scenario")
	sources := fs.String("sources", "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5", "client source addresses (each gives 28k ports toward one server address)")
	perWorker := fs.Int("per-worker", 10000, "most connections per load-generator process (open files are capped at 20,000 per process)")
	polling := fs.Int("polling-percent", 0, "percentage of clients on HTTP long-polling only (never upgrading)")
	upgrade := fs.Int("upgrade-percent", 25, "percentage of clients that connect as socket.io-client does by default (and so every browser): long-polling, then the upgrade to WebSocket; the rest go straight to WebSocket")
	pingInterval := fs.Duration("ping-interval", 10*time.Second, "both servers' ping interval in the fan-out sessions (PING_INTERVAL for ours, pingInterval for Node; 0: their default, 25s), shorter than the default to keep their idle short; the idle and storm scenarios keep the default")
	pingTimeout := fs.Duration("ping-timeout", 0, "both servers' ping timeout in the fan-out sessions (0: their default, 20s)")
	writeTimeout := fs.Duration("write-timeout", 0, "our server's WRITE_TIMEOUT in the fan-out sessions (0: its default, 10s)")
	idleBefore := fs.Duration("idle-before-publish", 0, "idle between connecting and the first publication of every fan-out session (default: the longest timeout of either server + 5s: 35s with the default heartbeat settings)")
	pprofOn := fs.Bool("pprof", false, "profile our server (CPU during the saturation step, heap when idle) through REALTIME_PPROF_ADDR")
	maxDuration := fs.Duration("max-duration", 0, "kill everything and stop after this long (default 15m quick, 4h full)")
	idle := fs.String("idle-conns", "", "idle connection levels measured in one server (default 10000 quick; 10000,19000 full)")
	idleServers := fs.Int("idle-servers", 1, "server processes of each kind in the idle and storm scenarios (clients round-robin): more than ~19,500 connections need several")
	connectConc := fs.Int("connect-concurrency", 200, "handshakes in flight while ramping up connections (all workers together)")
	settle := fs.Duration("settle", 0, "wait after connecting before reading RSS (default 3s quick, 10s full)")
	stormConc := fs.Int("storm-concurrency", 2000, "handshakes in flight during a reconnection storm (all workers together)")
	stormRounds := fs.Int("storm-rounds", 0, "storms per run (default 1 quick, 4 full)")
	fanoutClients := fs.Int("fanout-clients", 10000, "clients in the fan-out scenarios")
	orgSize := fs.Int("org-size", 10, "clients per organization in the many-organizations fan-out")
	step := fs.Duration("step", 0, "duration of one publish-rate step (default 2s quick, 5s full)")
	rampFactor := fs.Float64("ramp-factor", 2, "publish rate multiplier between steps")
	refine := fs.Int("refine", -1, "bisection steps between the last passing and first failing rate (default 1 quick, 4 full)")
	oneOrgStart := fs.Float64("one-org-start", 1, "first publish rate (events/s) into one organization")
	manyOrgStart := fs.Float64("many-orgs-start", 1000, "first publish rate (events/s) over many organizations")
	maxSteps := fs.Int("max-steps", 12, "most steps of a ramp")
	pubConc := fs.Int("publish-concurrency", 8, "HTTP publish requests in flight")
	burstRoom := fs.Int("burst-room", 10000, "room size of the burst scenario")
	burstEvents := fs.Int("burst-events", 100, "events per burst (one batch request)")
	burstRounds := fs.Int("burst-rounds", 0, "bursts per run (default 2 quick, 5 full)")
	redisClients := fs.Int("redis-clients", 10000, "clients of the redis scenario, half on each server")
	streamsClients := fs.Int("streams-clients", 2000, "clients of the streams scenarios (each of their clusters holds them all)")
	streamsRate := fs.Float64("streams-rate", 200, "publish rate (events/s, over all organizations) at which streams-history compares the classic and streams adapters")
	streamsSteps := fs.Int("streams-steps", 3, "steps of streams-history per adapter, alternated (medians reported)")
	streamsStep := fs.Duration("streams-step", 5*time.Second, "duration of each streams-history step (longer than --step: CPU per event is read from /proc in 10 ms ticks, beside the clients' heartbeats)")
	streamsStart := fs.Float64("streams-fanout-start", 100, "first publish rate (events/s, over all organizations) of the streams-fanout ramps")
	recoveryEvents := fs.Int("recovery-events", 5, "events published into each organization while its clients are away, in the recovery storm")
	recoveryWindow := fs.Duration("recovery-window", 2*time.Minute, "both servers' recovery window in the streams scenarios (RECOVERY_WINDOW, maxDisconnectionDuration)")
	recoveryConc := fs.Int("recovery-concurrency", 0, "handshakes in flight during the recovery storm (default: every client at once)")
	var err error
	if err = fs.Parse(args); err != nil {
		return nil, err
	}
	if *quick && *full {
		return nil, fmt.Errorf("--quick and --full: choose one")
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *clients < 0 {
		return nil, fmt.Errorf("--clients must be positive")
	}
	if n := *clients; n > 0 {
		*idle = strconv.Itoa(n)
		*fanoutClients, *burstRoom, *redisClients, *streamsClients = n, n, n, n
	}
	c := &config{
		full: *full, repeat: *repeat, out: *out, realtime: *realtime, nodeDir: *nodeDir, centrifugo: *centrifugo, redisBin: *redisBin,
		perWorker: *perWorker, polling: *polling, upgrade: *upgrade, pprof: *pprofOn, connectConc: *connectConc, settle: *settle,
		stormConc: *stormConc, stormRounds: *stormRounds, fanoutClients: *fanoutClients, orgSize: *orgSize,
		step: *step, rampFactor: *rampFactor, refine: *refine, oneOrgStart: *oneOrgStart,
		manyOrgStart: *manyOrgStart, maxSteps: *maxSteps, pubConc: *pubConc, burstRoom: *burstRoom,
		burstEvents: *burstEvents, burstRounds: *burstRounds, redisClients: *redisClients,
		streamsClients: *streamsClients, streamsRate: *streamsRate, streamsSteps: *streamsSteps, streamsStep: *streamsStep, streamsStart: *streamsStart,
		recoveryEvents: *recoveryEvents, recoveryWindow: *recoveryWindow, recoveryStormCnc: *recoveryConc,
		event: "invoice:created", maxDuration: *maxDuration, idleServers: *idleServers,
		pingInterval: *pingInterval, pingTimeout: *pingTimeout, writeTimeout: *writeTimeout, idle: *idleBefore,
	}
	if c.polling < 0 || c.upgrade < 0 || c.polling+c.upgrade > 100 {
		return nil, fmt.Errorf("--polling-percent %d and --upgrade-percent %d: each at least 0, together at most 100", c.polling, c.upgrade)
	}
	if c.pingInterval < 0 || c.pingTimeout < 0 || c.writeTimeout < 0 || c.idle < 0 {
		return nil, fmt.Errorf("--ping-interval, --ping-timeout, --write-timeout and --idle-before-publish must not be negative")
	}
	if c.idle == 0 {
		c.idle = c.longestTimeout() + idleMargin
	} else if c.idle <= c.longestTimeout() {
		return nil, fmt.Errorf("--idle-before-publish %v does not exceed the servers' longest timeout (%v): the idle would not show what a real idle client meets", c.idle, c.longestTimeout())
	}
	pick := func(quick, fullV int) int {
		if c.full {
			return fullV
		}
		return quick
	}
	if c.repeat <= 0 {
		c.repeat = pick(1, 3)
	}
	if c.maxDuration <= 0 {
		c.maxDuration = time.Duration(pick(15, 240)) * time.Minute
	}
	if c.settle <= 0 {
		c.settle = time.Duration(pick(3, 10)) * time.Second
	}
	if c.stormRounds <= 0 {
		c.stormRounds = pick(1, 2)
	}
	if c.step <= 0 {
		c.step = time.Duration(pick(2, 5)) * time.Second
	}
	if c.refine < 0 {
		// Four halvings of the doubling interval find the last passing rate
		// within 5 %: a server just past its capacity still passes a 5 s step
		// until its backlog reaches 1 s, so a coarser search can stop well
		// short of the rate where its latency turns.
		c.refine = pick(1, 4)
	}
	if c.burstRounds <= 0 {
		c.burstRounds = pick(2, 5)
	}
	if *idle == "" {
		*idle = "10000"
		if c.full {
			*idle = "10000,19000"
		}
	}
	for _, s := range strings.Split(*idle, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil || n <= 0 {
			return nil, fmt.Errorf("--idle-conns: bad level %q", s)
		}
		if len(c.idleConns) > 0 && n <= c.idleConns[len(c.idleConns)-1] {
			return nil, fmt.Errorf("--idle-conns: levels must increase")
		}
		c.idleConns = append(c.idleConns, n)
	}
	if *scen == "" {
		*scen = "idle,storm,fanout,burst"
		if c.full {
			*scen += ",redis"
		}
	}
	c.scenarios, err = parseScenarios(*scen)
	if err != nil {
		return nil, err
	}
	if c.streamsClients <= 0 || c.streamsRate <= 0 || c.streamsSteps <= 0 || c.streamsStep <= 0 || c.streamsStart <= 0 || c.recoveryEvents <= 0 || c.recoveryWindow <= 0 || c.recoveryStormCnc < 0 {
		return nil, fmt.Errorf("--streams-clients, --streams-rate, --streams-steps, --streams-step, --streams-fanout-start, --recovery-events and --recovery-window must be positive")
	}
	if *servers == "" {
		for _, p := range strings.Split(*peers, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if !slices.Contains(peerKinds, p) {
				return nil, fmt.Errorf("--peers: unknown peer %q (node, centrifugo)", p)
			}
			c.servers = append(c.servers, p)
		}
		c.servers = append(c.servers, kindOurs)
	} else {
		for _, s := range strings.Split(*servers, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(allKinds, s) {
				return nil, fmt.Errorf("--servers: unknown server %q (ours, node, centrifugo)", s)
			}
			c.servers = append(c.servers, s)
		}
	}
	if abs, err := filepath.Abs(c.centrifugo); err == nil {
		c.centrifugo = abs
	}
	for _, s := range strings.Split(*sources, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.sources = append(c.sources, s)
		}
	}
	if len(c.sources) == 0 {
		return nil, fmt.Errorf("--sources: at least one address")
	}
	if c.perWorker <= 0 || c.perWorker > 19500 {
		return nil, fmt.Errorf("--per-worker must be in 1..19500 (open-file limit)")
	}
	c.secret = "bench-secret-" + randomHex(16)
	c.apiKey = "bench_" + randomHex(16)
	return c, nil
}

// The servers' timeouts that bear on an idle connection, at their defaults
// (the same in both: engineio's options mirror engine.io's).
const (
	defaultPingInterval   = 25 * time.Second
	defaultPingTimeout    = 20 * time.Second
	defaultWriteTimeout   = 10 * time.Second // ours; Node has none
	defaultUpgradeTimeout = 10 * time.Second
)

// idleMargin is how much longer than the longest timeout the fan-out
// sessions idle.
const idleMargin = 5 * time.Second

// heartbeat is the ping interval and timeout the servers of the fan-out
// sessions run with.
func (c *config) heartbeat() (interval, timeout time.Duration) {
	interval, timeout = c.pingInterval, c.pingTimeout
	if interval == 0 {
		interval = defaultPingInterval
	}
	if timeout == 0 {
		timeout = defaultPingTimeout
	}
	return interval, timeout
}

// ourWriteTimeout is the write timeout our server runs with in the fan-out
// sessions.
func (c *config) ourWriteTimeout() time.Duration {
	if c.writeTimeout == 0 {
		return defaultWriteTimeout
	}
	return c.writeTimeout
}

// longestTimeout is the longest of the servers' timeouts that an idle
// connection can meet: a whole heartbeat (a ping, then the wait for its
// pong), a write deadline, the upgrade's. An idle period longer than it
// passes through every one of them.
func (c *config) longestTimeout() time.Duration {
	pi, pt := c.heartbeat()
	return max(pi+pt, c.ourWriteTimeout(), defaultUpgradeTimeout)
}
