package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The streams scenarios: two servers of a kind clustered through one Redis
// with the Redis Streams adapter (ours: REDIS_ADAPTER_MODE=streams; Node:
// @socket.io/redis-streams-adapter 0.3.1), connection state recovery on in
// both (RECOVERY_WINDOW; connectionStateRecovery).
const (
	// scenStreamsHistory: the same publish rate over many organizations
	// into a classic (Pub/Sub) cluster and a streams cluster, alternated:
	// server and Redis CPU and Redis commands per published event. The
	// difference is what keeping history (XADD) costs.
	scenStreamsHistory = "streams-history"
	// scenStreamsFanout: the fan-out ramp over the streams cluster;
	// scenStreamsFanoutClassic the same over the classic one, for
	// reference (reported, not selectable).
	scenStreamsFanout        = "streams-fanout"
	scenStreamsFanoutClassic = "streams-fanout-classic"
	// scenStreamsRecovery: every client on node A, A stopped with SIGTERM,
	// events published on B meanwhile, then every client reconnects to B
	// at once asking to recover; scenStreamsRecoveryKill the same with
	// SIGKILL.
	scenStreamsRecovery     = "streams-recovery"
	scenStreamsRecoveryKill = "streams-recovery-kill"
)

// streamsScenarios are what "streams" in --scenarios stands for.
var streamsScenarios = []string{scenStreamsHistory, scenStreamsFanout, scenStreamsRecovery, scenStreamsRecoveryKill}

// parseScenarios reads --scenarios.
func parseScenarios(list string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		switch s = strings.TrimSpace(s); s {
		case "idle", "storm", "fanout", "burst", "redis", scenStreamsHistory, scenStreamsFanout, scenStreamsRecovery, scenStreamsRecoveryKill:
			out[s] = true
		case "streams":
			for _, x := range streamsScenarios {
				out[x] = true
			}
		default:
			return nil, fmt.Errorf("--scenarios: unknown scenario %q", s)
		}
	}
	return out, nil
}

// redisCluster is a Redis and two servers of one kind on it.
type redisCluster struct {
	rd, a, b *server
	// group measures both servers and Redis together.
	group *server
}

func (c *redisCluster) stop() {
	c.a.stop()
	c.b.stop()
	c.rd.stop()
}

// startCluster starts a Redis and two servers of kind in mode, with
// recovery on for window (0: off).
func (r *runner) startCluster(kind, mode, name string, window time.Duration) (*redisCluster, error) {
	rd, err := startRedis(r.cfg.redisBin, r.logDir)
	if err != nil {
		return nil, err
	}
	c := &redisCluster{rd: rd}
	url := "redis://" + rd.addr
	if c.a, err = r.startFanoutMode(kind, name+"-a", url, mode, window); err != nil {
		rd.stop()
		return nil, err
	}
	if c.b, err = r.startFanoutMode(kind, name+"-b", url, mode, window); err != nil {
		c.a.stop()
		rd.stop()
		return nil, err
	}
	c.group = &server{kind: kind, addr: c.a.addr, group: []*server{c.a, c.b, rd}}
	return c, nil
}

// streamsLoad runs streams-history and streams-fanout: a classic and a
// streams cluster of kind, each with its own clients (half on each
// server, over many organizations), up at the same time so that their
// measurements alternate.
func (r *runner) streamsLoad(kind string, rep int) error {
	cfg := r.cfg
	n := cfg.streamsClients
	nOrgs := max(1, n/cfg.orgSize)
	r.logf("[rep %d] streams-history/fanout, 2 × %s on classic and 2 × %s on streams, %d clients over %d organizations each", rep, kind, kind, n, nOrgs)
	type side struct {
		mode string
		c    *redisCluster
		f    *fleet
		pub  *publisher
		cpu  []float64 // server and Redis CPU per published event, µs
		net  []float64 // the same without the cluster's CPU at rest
		idle float64   // the cluster's CPU at rest, cores
		rcpu []float64 // Redis alone
		cmds []float64 // Redis commands per published event
		p99  []float64
		lost int64
	}
	sides := []*side{{mode: "classic"}, {mode: "streams"}}
	for _, s := range sides {
		window := time.Duration(0)
		if s.mode == "streams" {
			window = cfg.recoveryWindow
		}
		c, err := r.startCluster(kind, s.mode, fmt.Sprintf("%s-%s-%d", kind, s.mode, rep), window)
		if err != nil {
			return err
		}
		defer c.stop()
		s.c = c
		f, err := r.newFleet(kind, n, nOrgs, []string{c.a.addr, c.b.addr})
		if err != nil {
			return err
		}
		defer f.stop()
		s.f = f
		cr, err := r.connect(f, n, n, cfg.connectConc)
		if err != nil {
			return err
		}
		if cr.Alive < n {
			return fmt.Errorf("%s %s: only %d of %d clients connected", kind, s.mode, cr.Alive, n)
		}
		c.group.holding(n)
		s.pub = newPublisher(kind, c.a.addr, cfg.apiKey, cfg.event, cfg.pubConc)
		defer s.pub.close()
	}
	list := make([]int, nOrgs)
	for i := range list {
		list[i] = i
	}
	if cfg.scenarios[scenStreamsHistory] {
		// What each cluster burns with nothing published (heartbeats,
		// the streams readers' blocking reads), so that the cost per event
		// is not the idle cost spread over a low rate.
		for _, s := range sides {
			s.c.group.waitQuiet(0.05, 20*time.Second)
			c0, t0 := s.c.group.cpu(), time.Now()
			time.Sleep(cfg.streamsStep)
			s.idle = (s.c.group.cpu() - c0).Seconds() / time.Since(t0).Seconds()
		}
		for i := 0; i < cfg.streamsSteps; i++ {
			for _, s := range sides {
				before, err := redisCommandStats(s.c.rd.addr)
				if err != nil {
					return err
				}
				rcpu0 := s.c.rd.cpu()
				st, err := r.stepFor(cfg.streamsStep, s.c.group, s.f, s.pub, n, list, nOrgs, cfg.streamsRate)
				if err != nil {
					return err
				}
				rcpu := s.c.rd.cpu() - rcpu0
				after, err := redisCommandStats(s.c.rd.addr)
				if err != nil {
					return err
				}
				ev := float64(max(st.Published, 1))
				cpuEv := st.CPUPerDeliv * float64(st.Delivered) / ev
				netEv := cpuEv
				if st.ServerCores > 0 {
					wall := cpuEv * ev / 1e6 / st.ServerCores // seconds
					netEv = max(0, cpuEv-s.idle*wall*1e6/ev)
				}
				s.net = append(s.net, netEv)
				cmds := float64(commandDelta(before, after).total()) / ev
				s.cpu = append(s.cpu, cpuEv)
				s.rcpu = append(s.rcpu, float64(rcpu.Microseconds())/ev)
				s.cmds = append(s.cmds, cmds)
				s.p99 = append(s.p99, st.P99)
				s.lost += abs(st.Lost)
				r.logf("  %s %s %.0f ev/s: %.1f µs server+Redis CPU/event (%.1f beyond the %.1f%% of a core at rest; Redis %.1f), %.2f Redis commands/event, p99 %.1f ms, lost %d %s",
					kind, s.mode, cfg.streamsRate, cpuEv, netEv, 100*s.idle, s.rcpu[len(s.rcpu)-1], cmds, st.P99, st.Lost, passWord(st))
			}
		}
		cl, sm := sides[0], sides[1]
		res := Result{Scenario: scenStreamsHistory, Server: kind, Rep: rep, M: map[string]float64{
			"clients":                        float64(n),
			"orgs":                           float64(nOrgs),
			"history_rate":                   cfg.streamsRate,
			"classic_cpu_us_per_event":       median(cl.cpu),
			"streams_cpu_us_per_event":       median(sm.cpu),
			"history_cpu_us_per_event":       median(sm.net) - median(cl.net),
			"classic_net_cpu_us_per_event":   median(cl.net),
			"streams_net_cpu_us_per_event":   median(sm.net),
			"classic_idle_pct":               100 * cl.idle,
			"streams_idle_pct":               100 * sm.idle,
			"classic_redis_cpu_us_per_event": median(cl.rcpu),
			"streams_redis_cpu_us_per_event": median(sm.rcpu),
			"classic_redis_cmds_per_event":   median(cl.cmds),
			"streams_redis_cmds_per_event":   median(sm.cmds),
			"classic_p99_ms":                 median(cl.p99),
			"streams_p99_ms":                 median(sm.p99),
			"history_lost":                   float64(cl.lost + sm.lost),
		}}
		if c := median(cl.net); c > 0 {
			res.M["streams_over_classic_cpu"] = median(sm.net) / c
		}
		r.add(res)
	}
	if cfg.scenarios[scenStreamsFanout] {
		for _, s := range []struct {
			name string
			sd   *side
		}{{scenStreamsFanoutClassic, sides[0]}, {scenStreamsFanout, sides[1]}} {
			if err := r.ramp(s.name, kind, rep, s.sd.c.group, s.sd.f, s.sd.pub, n, list, nOrgs, cfg.streamsStart,
				map[string]float64{"orgs": float64(nOrgs)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// recoveryStorm: the clients of node A, with recovery on, lose A (sig),
// events are published on B meanwhile, and every client reconnects to B
// at once asking to recover.
func (r *runner) recoveryStorm(name, kind string, rep int, sig syscall.Signal) error {
	cfg := r.cfg
	n := cfg.streamsClients
	nOrgs := max(1, n/cfg.orgSize)
	k := cfg.recoveryEvents
	r.logf("[rep %d] %s: 2 × %s on streams, %d clients on A over %d organizations, A ends with %v, %d events per organization meanwhile, all to B",
		rep, name, kind, n, nOrgs, sig, k)
	c, err := r.startCluster(kind, "streams", fmt.Sprintf("%s-%s-%d", kind, name, rep), cfg.recoveryWindow)
	if err != nil {
		return err
	}
	defer c.stop()
	f, err := r.newFleetRecovery(kind, n, nOrgs, []string{c.a.addr}, true)
	if err != nil {
		return err
	}
	defer f.stop()
	cr, err := r.connect(f, n, n, cfg.connectConc)
	if err != nil {
		return err
	}
	if cr.Alive < n {
		return fmt.Errorf("%s: only %d of %d clients connected to A", name, cr.Alive, n)
	}
	pub := newPublisher(kind, c.b.addr, cfg.apiKey, cfg.event, cfg.pubConc)
	defer pub.close()
	res := Result{Scenario: name, Server: kind, Rep: rep, M: map[string]float64{
		"clients": float64(n), "orgs": float64(nOrgs), "missed_per_client": float64(k),
	}}

	// One event each, published on B: every client holds an offset.
	if err := r.reset(f); err != nil {
		return err
	}
	if err := postPerOrg(pub, nOrgs, 1); err != nil {
		return fmt.Errorf("%s: first event: %w", name, err)
	}
	st, _ := r.drain(f, int64(n), 30*time.Second)
	if st.WithOffset < int64(n) {
		res.Notes = append(res.Notes, fmt.Sprintf("only %d of %d clients had an offset before the restart (%d first events received)", st.WithOffset, n, st.Received))
	}

	// A goes away; every client notices its connection end.
	exit := c.a.terminate(sig, 30*time.Second)
	res.M["exit_ms"] = float64(exit.Milliseconds())
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, err = r.stats(f); err != nil {
			return err
		}
		if st.Alive == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.Alive > 0 {
		return fmt.Errorf("%s: %d clients still connected 30 s after A ended", name, st.Alive)
	}

	// Missed while away.
	if err := postPerOrg(pub, nOrgs, k); err != nil {
		return fmt.Errorf("%s: events while away: %w", name, err)
	}
	if err := r.reset(f); err != nil {
		return err
	}
	c.b.waitQuiet(0.05, 10*time.Second)
	before, err := redisCommandStats(c.rd.addr)
	if err != nil {
		return err
	}
	cpuB0, cpuR0 := c.b.cpu(), c.rd.cpu()
	conc := cfg.recoveryStormCnc
	if conc <= 0 {
		conc = n
	}
	t0 := time.Now()
	storm, err := r.connectTo(f, n, conc, c.b.addr)
	if err != nil {
		return err
	}
	stormDur := time.Since(t0)
	// The missed events come before the CONNECT reply, so they are all
	// in when the storm's connects return; the drain only catches a
	// server that sends them after it (which the count would then show).
	if st, err = r.stats(f); err != nil {
		return err
	}
	st, _ = r.drain(f, st.Recovered*int64(k), 3*time.Second)
	cpuB, cpuR := c.b.cpu()-cpuB0, c.rd.cpu()-cpuR0
	after, err := redisCommandStats(c.rd.addr)
	if err != nil {
		return err
	}
	d := commandDelta(before, after)
	m := res.M
	m["recovery_s"] = stormDur.Seconds()
	m["recovery_p50_ms"] = storm.ConnectHist.quantile(0.5)
	m["recovery_p99_ms"] = storm.ConnectHist.quantile(0.99)
	m["recovered"] = float64(st.Recovered)
	m["not_recovered"] = float64(st.NotRecovered)
	m["gaps"] = float64(st.Gaps)
	m["failed"] = float64(storm.Failed)
	m["replayed"] = float64(st.Received)
	if due := st.Recovered * int64(k); due > st.Received {
		m["replay_missing"] = float64(due - st.Received)
	} else {
		m["replay_missing"] = 0
	}
	m["storm_server_cpu_ms"] = float64(cpuB.Milliseconds())
	m["storm_redis_cpu_ms"] = float64(cpuR.Milliseconds())
	m["storm_server_cpu_us_per_client"] = float64(cpuB.Microseconds()) / float64(n)
	m["storm_redis_cmds"] = float64(d.total())
	m["storm_redis_cmds_per_client"] = float64(d.total()) / float64(n)
	if st.Received > 0 {
		m["storm_redis_cmds_per_replayed"] = float64(d.total()) / float64(st.Received)
	}
	res.Notes = append(res.Notes, "Redis commands during the storm: "+d.top(6))
	if storm.Failed > 0 {
		res.Notes = append(res.Notes, "failed handshakes: "+strings.Join(storm.Errors, "; "))
	}
	r.logf("  %s %s: %d recovered, %d not (%d history:gap), %d failed in %v (p99 %.0f ms); %d of %d missed events replayed; B %v CPU, Redis %v CPU, %d Redis commands (%s)",
		kind, name, st.Recovered, st.NotRecovered, st.Gaps, storm.Failed, stormDur.Round(time.Millisecond), m["recovery_p99_ms"],
		st.Received, int64(n)*int64(k), cpuB, cpuR, d.total(), d.top(6))
	r.add(res)
	return nil
}

// connectTo moves every client to target and connects those not
// connected, conc handshakes in flight overall.
func (r *runner) connectTo(f *fleet, n, conc int, target string) (Reply, error) {
	nw := len(f.ws)
	rs, err := f.all(context.Background(), func(i int) Cmd {
		return Cmd{Op: "connect", Concurrency: max(1, conc/nw), Target: target}
	})
	t := sum(rs)
	if t.Failed > 0 {
		r.logf("  %d connections failed: %s", t.Failed, strings.Join(t.Errors, "; "))
	}
	return t, err
}

// postPerOrg publishes k events into each of nOrgs organizations, in
// batches of at most 100 events.
func postPerOrg(pub *publisher, nOrgs, k int) error {
	var evs []int // organization of each event
	for seq := 0; seq < k; seq++ {
		for o := range nOrgs {
			evs = append(evs, o)
		}
	}
	now := time.Now().UnixNano()
	for len(evs) > 0 {
		m := min(len(evs), pub.maxBatch)
		b := pub.openBatch(make([]byte, 0, 320*m))
		for i, o := range evs[:m] {
			if i > 0 {
				b = append(b, ',')
			}
			b = pub.appendEvent(b, o, int64(i), now)
		}
		if err := pub.post(pub.closeBatch(b)); err != nil {
			return err
		}
		evs = evs[m:]
	}
	return nil
}

// ---- Redis INFO commandstats -------------------------------------------------------------------------

// cmdStats are Redis's per-command counters (INFO commandstats): calls
// and microseconds spent, by command name.
type cmdStats map[string]cmdStat

type cmdStat struct {
	Calls int64
	Usec  int64
}

// redisCommandStats reads INFO commandstats from the Redis at addr.
func redisCommandStats(addr string) (cmdStats, error) {
	text, err := redisInfo(addr, "commandstats")
	if err != nil {
		return nil, err
	}
	return parseCommandStats(text), nil
}

// redisInfo sends INFO section and returns its text.
func redisInfo(addr, section string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("redis INFO: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n", len(section), section); err != nil {
		return "", fmt.Errorf("redis INFO: %w", err)
	}
	return readBulk(bufio.NewReader(c))
}

// readBulk reads one RESP bulk string.
func readBulk(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("redis INFO: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "$") {
		return "", fmt.Errorf("redis INFO: unexpected reply %q", line)
	}
	size, err := strconv.Atoi(line[1:])
	if err != nil || size < 0 {
		return "", fmt.Errorf("redis INFO: bad bulk length %q", line)
	}
	buf := make([]byte, size+2)
	if _, err := io.ReadFull(br, buf); err != nil {
		return "", fmt.Errorf("redis INFO: %w", err)
	}
	return string(buf[:size]), nil
}

// parseCommandStats reads the lines
// "cmdstat_<name>:calls=N,usec=N,usec_per_call=F,…" of INFO commandstats.
func parseCommandStats(text string) cmdStats {
	out := cmdStats{}
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		name, rest, ok := strings.Cut(l, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var s cmdStat
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				s.Calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				s.Usec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		out[strings.TrimPrefix(name, "cmdstat_")] = s
	}
	return out
}

// commandDelta is what happened between two readings, without the INFO
// commands that took them.
func commandDelta(before, after cmdStats) cmdStats {
	out := cmdStats{}
	for name, a := range after {
		if name == "info" {
			continue
		}
		b := before[name]
		if d := (cmdStat{a.Calls - b.Calls, a.Usec - b.Usec}); d.Calls > 0 {
			out[name] = d
		}
	}
	return out
}

// total is the number of commands.
func (s cmdStats) total() int64 {
	var t int64
	for _, c := range s {
		t += c.Calls
	}
	return t
}

// top lists the k most called commands: "xadd 1000, get 200".
func (s cmdStats) top(k int) string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if s[names[i]].Calls != s[names[j]].Calls {
			return s[names[i]].Calls > s[names[j]].Calls
		}
		return names[i] < names[j]
	})
	if len(names) > k {
		names = names[:k]
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, s[n].Calls)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
