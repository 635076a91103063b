package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

const mb = 1 << 20

// ---- idle and storm ----------------------------------------------------------------------------------

// idleStorm: connect the idle levels one after the other, reading the
// server's RSS after each; then the reconnection storms on the same
// clients.
func (r *runner) idleStorm(kind string, rep int) error {
	cfg := r.cfg
	top := cfg.idleConns[len(cfg.idleConns)-1]
	k := max(1, cfg.idleServers)
	r.logf("[rep %d] idle/storm: %s, up to %d connections over %d server process(es)", rep, kind, top, k)
	// With several server processes (--idle-servers, to hold more than one
	// process's open-file limit), clients go round-robin to them and RSS and
	// CPU are their sums.
	var procs []*server
	var targets []string
	for i := range k {
		p, err := r.start(kind, fmt.Sprintf("%s-idle-%d-%d", kind, rep, i), "")
		if err != nil {
			return err
		}
		defer p.stop()
		procs = append(procs, p)
		targets = append(targets, p.addr)
	}
	srv := procs[0]
	if k > 1 {
		srv = &server{kind: kind, addr: procs[0].addr, pprof: procs[0].pprof, group: procs}
	}
	srv.waitQuiet(0.02, 5*time.Second)
	base := srv.rss()
	f, err := r.newFleet(kind, top, max(1, top/cfg.orgSize), targets)
	if err != nil {
		return err
	}
	defer f.stop()

	idle := Result{Scenario: "idle", Server: kind, Rep: rep, M: map[string]float64{"rss_base_mb": float64(base) / mb}}
	prevN, prevRSS := 0, base
	var cost float64 // bytes per connection used for the projections
	for li, level := range cfg.idleConns {
		cpu0 := srv.cpu()
		c, err := r.connect(f, top, level, cfg.connectConc)
		if err != nil {
			return err
		}
		if c.Failed > 0 {
			// Memory per connection and the connect rate over fewer
			// connections than asked would be figures of another run: a
			// refusal (a cap, a limit of the machine) fails the session.
			return fmt.Errorf("idle: %s refused %d of %d connections at the %d level: %s", kind, c.Failed, c.Failed+c.Connected, level, strings.Join(c.Errors, "; "))
		}
		cpu := srv.cpu() - cpu0
		srv.holding(level)
		if li == 0 {
			idle.M["connect_per_sec"] = float64(c.Connected) / (float64(c.ElapsedNS) / 1e9)
			idle.M["connect_cpu_us"] = float64(cpu.Microseconds()) / float64(max(c.Connected, 1))
			idle.M["connect_gen_cpu_us"] = float64(c.ConnectCPU) / 1000 / float64(max(c.Connected, 1))
			idle.M["connect_p50_ms"] = c.ConnectHist.quantile(0.5)
			idle.M["connect_p99_ms"] = c.ConnectHist.quantile(0.99)
		}
		srv.waitQuiet(0.02, 15*time.Second)
		cpuIdle0 := srv.cpu()
		time.Sleep(cfg.settle)
		cpuIdle := srv.cpu() - cpuIdle0
		st, err := r.stats(f)
		if err != nil {
			return err
		}
		n := st.Alive
		// What holding idle connections costs: heartbeats, timers.
		idle.M[fmt.Sprintf("idle_cpu_pct@%d", level)] = 100 * cpuIdle.Seconds() / cfg.settle.Seconds()
		if st.Welcomes != int64(n) && li == 0 {
			idle.Notes = append(idle.Notes, fmt.Sprintf("%d connected events for %d connections", st.Welcomes, n))
		}
		rss := srv.rss()
		idle.M[fmt.Sprintf("conns@%d", level)] = float64(n)
		idle.M[fmt.Sprintf("conns_upgraded@%d", level)] = float64(st.AliveUpgraded)
		if st.AlivePolling > 0 {
			idle.M[fmt.Sprintf("conns_polling@%d", level)] = float64(st.AlivePolling)
		}
		// Nothing was published: every connection that ended was ended
		// by the server (or the network) while idle.
		idle.M["idle_disconnects"] = float64(st.Closed) // cumulative: no reset between levels
		idle.M[fmt.Sprintf("rss_mb@%d", level)] = float64(rss) / mb
		perConn := float64(rss-base) / float64(max(n, 1))
		idle.M[fmt.Sprintf("rss_kb_per_conn@%d", level)] = perConn / 1024
		cost = perConn
		if li > 0 {
			marginal := float64(rss-prevRSS) / float64(max(n-prevN, 1))
			idle.M["rss_kb_marginal"] = marginal / 1024
			cost = max(perConn, marginal)
		}
		prevN, prevRSS = n, rss
		r.logf("  %s: %d connections (%d upgraded from polling, %d polling), RSS %.1f MB (%.2f KB/conn), %d closed by the server%s",
			kind, n, st.AliveUpgraded, st.AlivePolling, float64(rss)/mb, perConn/1024, st.Closed, lossMark(0, st.Closed))
	}
	// Projections are for one server process: its own base plus the
	// measured cost per connection.
	for _, p := range []int{50000, 100000} {
		idle.M[fmt.Sprintf("projected_rss_mb@%d", p)] = (float64(base)/float64(k) + float64(p)*cost) / mb
	}
	if k > 1 {
		idle.M["server_processes"] = float64(k)
	}
	if srv.pprof != "" {
		// The first process's own figures, over its share of the connections.
		first := max(prevN/k, 1)
		r.saveProfile(procs[0], "heap", fmt.Sprintf("ours-idle-heap-%d.pb.gz", rep), 0)
		if g := goroutines(procs[0]); g > 0 {
			idle.M["goroutines_per_conn"] = float64(g) / float64(first)
		}
		if ms := memStats(procs[0]); ms != nil {
			for name, v := range ms {
				idle.M[name+"_kb_per_conn"] = float64(v) / 1024 / float64(first)
			}
		}
	}
	if cfg.scenarios["idle"] {
		r.add(idle)
	}
	if !cfg.scenarios["storm"] {
		return nil
	}

	var rates, cpus, gens, p50s, p99s, maxs, fails []float64
	for round := 1; round <= cfg.stormRounds; round++ {
		if _, err := f.all(nil, func(int) Cmd { return Cmd{Op: "drop"} }); err != nil {
			return err
		}
		srv.waitQuiet(0.02, 30*time.Second)
		cpu0 := srv.cpu()
		c, err := r.connect(f, top, top, cfg.stormConc)
		if err != nil {
			return err
		}
		cpu := srv.cpu() - cpu0
		rate := float64(c.Connected) / (float64(c.ElapsedNS) / 1e9)
		rates = append(rates, rate)
		cpus = append(cpus, float64(cpu.Microseconds())/float64(max(c.Connected, 1)))
		gens = append(gens, float64(c.ConnectCPU)/1000/float64(max(c.Connected, 1)))
		p50s = append(p50s, c.ConnectHist.quantile(0.5))
		p99s = append(p99s, c.ConnectHist.quantile(0.99))
		maxs = append(maxs, c.ConnectHist.maxMS())
		fails = append(fails, float64(c.Failed))
		r.logf("  %s storm %d: %d reconnected in %.2fs (%.0f/s), %d failed", kind, round, c.Connected,
			float64(c.ElapsedNS)/1e9, rate, c.Failed)
	}
	r.add(Result{Scenario: "storm", Server: kind, Rep: rep, M: map[string]float64{
		"clients":          float64(top),
		"storm_per_sec":    median(rates),
		"storm_cpu_us":     median(cpus),
		"storm_gen_cpu_us": median(gens),
		"storm_p50_ms":     median(p50s),
		"storm_p99_ms":     median(p99s),
		"storm_max_ms":     median(maxs),
		"storm_failed":     median(fails),
		"storm_concurrent": float64(cfg.stormConc),
	}})
	return nil
}

// ---- one organization: bursts, then the fan-out ramp -------------------------------------------------

func (r *runner) oneOrg(kind string, rep int) error {
	cfg := r.cfg
	n := cfg.fanoutClients
	r.logf("[rep %d] one organization of %d: %s", rep, n, kind)
	srv, err := r.startFanout(kind, fmt.Sprintf("%s-oneorg-%d", kind, rep), "")
	if err != nil {
		return err
	}
	defer srv.stop()
	f, err := r.newFleet(kind, n, 1, []string{srv.addr})
	if err != nil {
		return err
	}
	defer f.stop()
	if _, err := r.connect(f, n, n, cfg.connectConc); err != nil {
		return err
	}
	srv.holding(n)
	pub := newPublisher(kind, srv.addr, cfg.apiKey, cfg.event, cfg.pubConc)
	defer pub.close()
	// The session's idle check is reported with the fan-out, or with the
	// bursts when they run alone.
	check, err := r.idleThenPublish("one organization", kind, f, pub, n, []int{0}, 1)
	if err != nil {
		return err
	}
	if cfg.scenarios["burst"] {
		var extra map[string]float64
		if !cfg.scenarios["fanout"] {
			extra = check
		}
		if err := r.bursts(kind, rep, srv, f, pub, n, extra); err != nil {
			return err
		}
	}
	if cfg.scenarios["fanout"] {
		return r.ramp("fanout-one-org", kind, rep, srv, f, pub, n, []int{0}, 1, cfg.oneOrgStart, check)
	}
	return nil
}

func (r *runner) manyOrgs(kind string, rep int) error {
	cfg := r.cfg
	n := cfg.fanoutClients
	orgs := max(1, n/cfg.orgSize)
	r.logf("[rep %d] %d organizations of %d: %s", rep, orgs, cfg.orgSize, kind)
	srv, err := r.startFanout(kind, fmt.Sprintf("%s-manyorgs-%d", kind, rep), "")
	if err != nil {
		return err
	}
	defer srv.stop()
	f, err := r.newFleet(kind, n, orgs, []string{srv.addr})
	if err != nil {
		return err
	}
	defer f.stop()
	if _, err := r.connect(f, n, n, cfg.connectConc); err != nil {
		return err
	}
	srv.holding(n)
	pub := newPublisher(kind, srv.addr, cfg.apiKey, cfg.event, cfg.pubConc)
	defer pub.close()
	list := make([]int, orgs)
	for i := range list {
		list[i] = i
	}
	check, err := r.idleThenPublish(fmt.Sprintf("%d organizations", orgs), kind, f, pub, n, list, orgs)
	if err != nil {
		return err
	}
	return r.ramp("fanout-many-orgs", kind, rep, srv, f, pub, n, list, orgs, cfg.manyOrgStart, check)
}

// idleThenPublish is how a real client population lives: connected and
// idle for longer than every timeout of the server (a heartbeat, a write
// deadline, an upgrade), then an event for everyone. After the idle it
// publishes a few events into each organization and returns, as metrics
// of the session's result, what was lost and how many connections ended
// meanwhile. Nothing may be lost and no connection may end here: the
// clients are well-behaved and the load is tiny.
func (r *runner) idleThenPublish(what, kind string, f *fleet, pub *publisher, n int, orgs []int, nOrgs int) (map[string]float64, error) {
	cfg := r.cfg
	if err := r.ensure(f, n); err != nil {
		return nil, err
	}
	if err := r.reset(f); err != nil {
		return nil, err
	}
	st0, err := r.stats(f)
	if err != nil {
		return nil, err
	}
	m := map[string]float64{"idle_s": cfg.idle.Seconds()}
	// A server that ignores the heartbeat it was given (an older binary
	// without PING_INTERVAL, say) announces its own: say when the idle
	// does not cover it.
	if pi, pt := time.Duration(st0.PingIntervalMS)*time.Millisecond, time.Duration(st0.PingTimeoutMS)*time.Millisecond; pi+pt >= cfg.idle {
		r.logf("  NOTE: %s announced pingInterval %v, pingTimeout %v: the idle of %v does not cover a whole heartbeat", kind, pi, pt, cfg.idle)
		m["announced_heartbeat_s"] = (pi + pt).Seconds()
	}
	r.logf("  %s, %s: %d connections (%d upgraded from polling, %d polling) idle for %v (longest timeout %v)",
		kind, what, st0.Alive, st0.AliveUpgraded, st0.AlivePolling, cfg.idle, cfg.longestTimeout())
	time.Sleep(cfg.idle)
	st1, err := r.stats(f)
	if err != nil {
		return nil, err
	}
	perOrg := 1
	if len(orgs) == 1 {
		perOrg = 3 // a few events, so that one that is cut mid-stream shows
	}
	k := len(orgs) * perOrg
	ps := pub.run(float64(k), time.Second, orgs, nOrgs)
	var expected int64
	for o, e := range ps.PerOrg {
		expected += e * members(n, nOrgs, o)
	}
	st, _ := r.drain(f, expected, 30*time.Second)
	lost := expected - st.Received
	m["after_idle_lost"] = float64(lost)
	m["after_idle_disconnects"] = float64(st.Closed)
	m["after_idle_p99_ms"] = st.Latency.quantile(0.99)
	if ps.Errors > 0 {
		m["after_idle_publish_errors"] = float64(ps.Errors)
	}
	r.logf("  %s after %v idle: %d connections closed during the idle, %d after; %d/%d delivered, lost %d, p99 %.1f ms, %d publish errors%s",
		kind, cfg.idle, st1.Closed, st.Closed-st1.Closed, st.Received, expected, lost, st.Latency.quantile(0.99), ps.Errors,
		lossMark(lost, st.Closed+ps.Errors))
	return m, nil
}

// lossMark is the console's mark for a count of lost events and
// disconnects that must be zero.
func lossMark(lost, disconnects int64) string {
	if lost == 0 && disconnects == 0 {
		return ": OK"
	}
	return "   <<<<<<<<<< LOST EVENTS OR DISCONNECTS"
}

// bursts: burstEvents events in one batch request into the room of all n
// clients, waiting for every delivery before the next burst.
func (r *runner) bursts(kind string, rep int, srv *server, f *fleet, pub *publisher, n int, extra map[string]float64) error {
	cfg := r.cfg
	var done, p50s, p99s, maxs, cpus, rates []float64
	var lost, disconnects int64
	for round := 1; round <= cfg.burstRounds; round++ {
		if err := r.ensure(f, n); err != nil {
			return err
		}
		srv.waitQuiet(0.03, 15*time.Second)
		if err := r.reset(f); err != nil {
			return err
		}
		cpu0 := srv.cpu()
		t0 := time.Now()
		if err := pub.post(pub.batchBody(0, cfg.burstEvents, t0.UnixNano())); err != nil {
			return fmt.Errorf("burst publish: %w", err)
		}
		expected := int64(cfg.burstEvents) * int64(n)
		st, last := r.drain(f, expected, 60*time.Second)
		cpu := srv.cpu() - cpu0
		el := last.Sub(t0)
		done = append(done, float64(el.Microseconds())/1000)
		p50s = append(p50s, st.Latency.quantile(0.5))
		p99s = append(p99s, st.Latency.quantile(0.99))
		maxs = append(maxs, st.Latency.maxMS())
		cpus = append(cpus, float64(cpu.Microseconds())/float64(max(st.Received, 1)))
		rates = append(rates, float64(st.Received)/el.Seconds())
		lost += abs(expected - st.Received)
		disconnects += st.Closed
		r.logf("  %s burst %d: %d/%d delivered in %v, p99 %.0f ms, %.2f µs CPU/delivery, %d connections closed%s", kind,
			round, st.Received, expected, el.Round(time.Millisecond), st.Latency.quantile(0.99),
			cpus[len(cpus)-1], st.Closed, lossMark(expected-st.Received, st.Closed))
	}
	res := Result{Scenario: "burst", Server: kind, Rep: rep, M: map[string]float64{
		"room":                 float64(n),
		"events":               float64(cfg.burstEvents),
		"burst_done_ms":        median(done),
		"burst_p50_ms":         median(p50s),
		"burst_p99_ms":         median(p99s),
		"burst_max_ms":         median(maxs),
		"burst_cpu_us":         median(cpus),
		"burst_deliveries_sec": median(rates),
		"burst_lost":           float64(lost),
		"burst_disconnects":    float64(disconnects),
	}}
	for k, v := range extra {
		res.M[k] = v
	}
	r.add(res)
	return nil
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// ensure reconnects the clients the server dropped (a slow consumer closed
// during an overloaded step).
func (r *runner) ensure(f *fleet, n int) error {
	st, err := r.stats(f)
	if err != nil {
		return err
	}
	if st.Alive >= n {
		return nil
	}
	r.logf("  reconnecting %d dropped clients", n-st.Alive)
	c, err := r.connect(f, n, n, r.cfg.connectConc)
	if err != nil {
		return err
	}
	if c.Alive < n {
		return fmt.Errorf("only %d of %d clients connected", c.Alive, n)
	}
	return nil
}

// drain waits until expected bench events arrived, or until nothing
// arrived for 3 s, or limit. It returns the final counters and when the
// last progress was seen.
func (r *runner) drain(f *fleet, expected int64, limit time.Duration) (Reply, time.Time) {
	start := time.Now()
	var last int64 = -1
	lastChange := start
	for {
		st, err := r.stats(f)
		if err != nil {
			return st, lastChange
		}
		now := time.Now()
		if st.Received != last {
			last, lastChange = st.Received, now
		}
		if st.Received >= expected || now.Sub(lastChange) > 3*time.Second || now.Sub(start) > limit {
			return st, lastChange
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// members is the number of clients of organization o among n clients
// spread round-robin over nOrgs organizations.
func members(n, nOrgs, o int) int64 {
	m := n / nOrgs
	if o < n%nOrgs {
		m++
	}
	return int64(m)
}

// ---- the fan-out ramp --------------------------------------------------------------------------------

func (r *runner) ramp(name, kind string, rep int, srv *server, f *fleet, pub *publisher, n int, orgs []int, nOrgs int, start float64, extra map[string]float64) error {
	cfg := r.cfg
	res := Result{Scenario: name, Server: kind, Rep: rep, M: map[string]float64{"clients": float64(n), "orgs": float64(nOrgs)}}
	for k, v := range extra {
		res.M[k] = v
	}
	var best *Step
	pass, fail := 0.0, 0.0
	profiled := false
	runStep := func(rate float64, profile string) (Step, error) {
		s, err := r.step(srv, f, pub, n, orgs, nOrgs, rate, profile)
		if err != nil {
			return s, err
		}
		res.Steps = append(res.Steps, s)
		r.logf("  %s %s %8.1f ev/s: %9.0f deliveries/s, p50 %7.1f ms, p99 %7.1f ms, max %7.1f ms, lost %d, closed %d, %.2f µs CPU/delivery, server %.2f cores, generator %.2f cores %s",
			kind, name, rate, s.PerSec, s.P50, s.P99, s.Max, s.Lost, s.Closed, s.CPUPerDeliv, s.ServerCores, s.GenCores, passWord(s))
		if s.Pass && (best == nil || s.PerSec > best.PerSec) {
			c := s
			best = &c
		}
		return s, nil
	}
	profileFor := func(what string) string {
		if srv.pprof == "" || profiled {
			return ""
		}
		return fmt.Sprintf("ours-%s-cpu-%s-%d.pb.gz", name, what, rep)
	}
	rate := start
	for i := 0; i < cfg.maxSteps; i++ {
		s, err := runStep(rate, "")
		if err != nil {
			return err
		}
		if !s.Pass {
			fail = rate
			break
		}
		pass = rate
		rate *= cfg.rampFactor
	}
	for i := 0; i < cfg.refine && pass > 0 && fail > 0; i++ {
		mid := math.Sqrt(pass * fail)
		s, err := runStep(mid, "")
		if err != nil {
			return err
		}
		if s.Pass {
			pass = mid
		} else {
			fail = mid
		}
	}
	// A CPU profile of our server just past saturation says what limits it.
	if srv.pprof != "" && fail > 0 {
		if _, err := runStep(fail, profileFor("saturated")); err != nil {
			return err
		}
		profiled = true
	}
	if len(res.Steps) > 0 {
		res.M["low_rate"] = res.Steps[0].Rate
		res.M["low_rate_p99_ms"] = res.Steps[0].P99
	}
	if fail == 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("not saturated at %.0f events/s: the saturation figure is a lower bound", pass))
		res.M["sat_lower_bound"] = 1
	}
	if best != nil {
		res.M["sat_rate"] = best.Rate
		res.M["sat_deliveries_sec"] = best.PerSec
		res.M["sat_p50_ms"] = best.P50
		res.M["sat_p99_ms"] = best.P99
		res.M["sat_max_ms"] = best.Max
		res.M["sat_cpu_us"] = best.CPUPerDeliv
		res.M["sat_server_cores"] = best.ServerCores
		res.M["sat_generator_cores"] = best.GenCores
	} else {
		res.Notes = append(res.Notes, "no step passed")
		res.M["sat_deliveries_sec"] = 0
	}
	if fail > 0 {
		res.M["fail_rate"] = fail
	}
	// Latency at each peer's saturation rate: the peer's own figure, and
	// the others measured at the same offered rate (ours at every peer's,
	// Centrifugo at Node's: the servers run in the order node, centrifugo,
	// ours).
	if kind != kindOurs && best != nil {
		if r.peerSat[kind] == nil {
			r.peerSat[kind] = map[string]float64{}
		}
		r.peerSat[kind][name] = best.Rate
		p := "at_" + kind + "_sat_"
		res.M[p+"p99_ms"] = best.P99
		res.M[p+"p50_ms"] = best.P50
		res.M[p+"cpu_us"] = best.CPUPerDeliv
		res.M[p+"rate"] = best.Rate
	}
	for _, peer := range peerKinds {
		if peer == kind || (kind != kindOurs && peer != kindNode) {
			continue
		}
		rate := r.peerSat[peer][name]
		if rate <= 0 {
			continue
		}
		prof := ""
		if srv.pprof != "" {
			prof = fmt.Sprintf("ours-%s-cpu-at-%s-sat-%d.pb.gz", name, peer, rep)
		}
		s, err := runStep(rate, prof)
		if err != nil {
			return err
		}
		p := "at_" + peer + "_sat_"
		res.M[p+"p99_ms"] = s.P99
		res.M[p+"p50_ms"] = s.P50
		res.M[p+"cpu_us"] = s.CPUPerDeliv
		res.M[p+"rate"] = rate
		if !s.Pass {
			res.Notes = append(res.Notes, fmt.Sprintf("failed at %s's saturation rate: %s", peerName(peer), s.Why))
		}
	}
	// Losses at the failing steps are the overload that defines
	// saturation; at a rate below the best passing one they are not.
	var lost, closed, lostBelow, closedBelow int64
	for _, s := range res.Steps {
		lost += abs(s.Lost)
		closed += s.Closed
		if best != nil && s.Rate < best.Rate {
			lostBelow += abs(s.Lost)
			closedBelow += s.Closed
		}
	}
	res.M["ramp_lost"] = float64(lost)
	res.M["ramp_disconnects"] = float64(closed)
	res.M["below_sat_lost"] = float64(lostBelow)
	res.M["below_sat_disconnects"] = float64(closedBelow)
	if lostBelow != 0 || closedBelow != 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d events lost and %d connections closed at rates below the saturation rate", lostBelow, closedBelow))
	}
	r.add(res)
	return nil
}

func passWord(s Step) string {
	if s.Pass {
		return "PASS"
	}
	return "FAIL (" + s.Why + ")"
}

// step publishes at rate for the step duration and measures the deliveries.
func (r *runner) step(srv *server, f *fleet, pub *publisher, n int, orgs []int, nOrgs int, rate float64, profile string) (Step, error) {
	return r.stepDur(r.cfg.step, srv, f, pub, n, orgs, nOrgs, rate, profile)
}

// stepFor is step for another duration than --step, without a profile.
func (r *runner) stepFor(d time.Duration, srv *server, f *fleet, pub *publisher, n int, orgs []int, nOrgs int, rate float64) (Step, error) {
	return r.stepDur(d, srv, f, pub, n, orgs, nOrgs, rate, "")
}

func (r *runner) stepDur(dur time.Duration, srv *server, f *fleet, pub *publisher, n int, orgs []int, nOrgs int, rate float64, profile string) (Step, error) {
	s := Step{Rate: rate}
	if err := r.ensure(f, n); err != nil {
		return s, err
	}
	srv.waitQuiet(0.05, 20*time.Second)
	if err := r.reset(f); err != nil {
		return s, err
	}
	st0, err := r.stats(f)
	if err != nil {
		return s, err
	}
	gen0 := time.Duration(st0.CPUNS) + selfCPU()
	cpu0 := srv.cpu()
	t0 := time.Now()
	profDone := make(chan struct{})
	if profile != "" {
		go func() {
			defer close(profDone)
			r.saveProfile(srv, "profile", profile, dur)
		}()
	} else {
		close(profDone)
	}
	ps := pub.run(rate, dur, orgs, nOrgs)
	for o, k := range ps.PerOrg {
		s.Expected += k * members(n, nOrgs, o)
	}
	st, last := r.drain(f, s.Expected, 30*time.Second)
	<-profDone
	wall := time.Since(t0)
	cpu := srv.cpu() - cpu0
	gen := time.Duration(st.CPUNS) + selfCPU() - gen0
	s.Published = ps.Events
	s.Delivered = st.Received
	s.Lost = s.Expected - st.Received
	s.Closed = st.Closed
	s.PerSec = float64(st.Received) / last.Sub(t0).Seconds()
	s.P50, s.P99, s.Max = st.Latency.quantile(0.5), st.Latency.quantile(0.99), st.Latency.maxMS()
	s.CPUPerDeliv = float64(cpu.Nanoseconds()) / 1000 / float64(max(st.Received, 1))
	s.ServerCores = cpu.Seconds() / wall.Seconds()
	s.GenCores = gen.Seconds() / wall.Seconds()
	s.PubErrors, s.PubFirstErr = ps.Errors, ps.FirstErr
	s.PubBehind = ps.Elapsed > dur+dur/2
	var why []string
	if s.Lost != 0 {
		why = append(why, fmt.Sprintf("lost %d", s.Lost))
	}
	if s.Closed > 0 {
		why = append(why, fmt.Sprintf("%d connections closed", s.Closed))
	}
	if s.PubErrors > 0 {
		why = append(why, fmt.Sprintf("%d publish errors: %s", s.PubErrors, s.PubFirstErr))
	}
	if s.P99 >= 1000 {
		why = append(why, fmt.Sprintf("p99 %.0f ms", s.P99))
	}
	if ps.Events == 0 {
		why = append(why, "nothing published")
	}
	s.Why = strings.Join(why, ", ")
	s.Pass = len(why) == 0
	return s, nil
}

// ---- redis -------------------------------------------------------------------------------------------

// redis: two servers of a kind clustered through one Redis; the clients of
// one organization are split over both; events are published on the
// first, so half of the deliveries cross Redis.
func (r *runner) redis(kind string, rep int) error {
	cfg := r.cfg
	n := cfg.redisClients
	r.logf("[rep %d] redis, 2 × %s, one organization of %d", rep, kind, n)
	rd, err := startRedis(cfg.redisBin, r.logDir)
	if err != nil {
		return err
	}
	defer rd.stop()
	url := "redis://" + rd.addr
	a, err := r.startFanout(kind, fmt.Sprintf("%s-redis-a-%d", kind, rep), url)
	if err != nil {
		return err
	}
	defer a.stop()
	b, err := r.startFanout(kind, fmt.Sprintf("%s-redis-b-%d", kind, rep), url)
	if err != nil {
		return err
	}
	defer b.stop()
	f, err := r.newFleet(kind, n, 1, []string{a.addr, b.addr})
	if err != nil {
		return err
	}
	defer f.stop()
	if _, err := r.connect(f, n, n, cfg.connectConc); err != nil {
		return err
	}
	pub := newPublisher(kind, a.addr, cfg.apiKey, cfg.event, cfg.pubConc)
	defer pub.close()

	// Probe: does an event published on A reach the clients of B?
	if err := r.reset(f); err != nil {
		return err
	}
	if err := pub.post(pub.batchBody(0, 1, time.Now().UnixNano())); err != nil {
		return fmt.Errorf("redis probe: %w", err)
	}
	st, _ := r.drain(f, int64(n), 10*time.Second)
	if st.Received < int64(n) {
		note := fmt.Sprintf("cross-node delivery does not work: %d of %d clients got the probe event", st.Received, n)
		if kind == kindOurs {
			note += " (cmd/realtime does not read REDIS_URL yet: scenario 5 waits for the Redis adapter's wiring)"
		}
		r.logf("  %s", note)
		r.results = append(r.results, Result{Scenario: "redis", Server: kind, Rep: rep, M: map[string]float64{"runnable": 0}, Notes: []string{note}})
		return nil
	}
	check, err := r.idleThenPublish("one organization over two servers", kind, f, pub, n, []int{0}, 1)
	if err != nil {
		return err
	}
	// The CPU of both servers and of Redis counts: measure the sum.
	group := &server{kind: kind, addr: a.addr, pprof: a.pprof, group: []*server{a, b, rd}}
	group.holding(n)
	return r.ramp("redis", kind, rep, group, f, pub, n, []int{0}, 1, cfg.oneOrgStart, check)
}

// ---- profiles ----------------------------------------------------------------------------------------

// saveProfile fetches /debug/pprof/<what> from our server into the output
// directory (seconds: the CPU profile's duration).
func (r *runner) saveProfile(srv *server, what, file string, d time.Duration) {
	url := "http://" + srv.pprof + "/debug/pprof/" + what
	if d > 0 {
		url += "?seconds=" + strconv.Itoa(int(math.Ceil(d.Seconds())))
	} else if what == "heap" {
		url += "?gc=1"
	}
	resp, err := http.Get(url)
	if err != nil {
		r.logf("  pprof %s: %v", what, err)
		return
	}
	defer resp.Body.Close()
	out, err := os.Create(filepath.Join(r.logDir, file))
	if err != nil {
		return
	}
	defer out.Close()
	if _, err := io.Copy(out, resp.Body); err == nil {
		r.logf("  profile saved: %s", filepath.Join(r.logDir, file))
	}
}

// goroutines reads our server's goroutine count from pprof.
func goroutines(srv *server) int {
	resp, err := http.Get("http://" + srv.pprof + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b := make([]byte, 200)
	k, _ := io.ReadFull(resp.Body, b)
	var n int
	fmt.Sscanf(string(b[:k]), "goroutine profile: total %d", &n)
	return n
}

// memStats reads our server's runtime.MemStats from the heap profile's
// text form (after a GC): heap in use, goroutine stacks, and everything the
// runtime holds from the OS.
func memStats(srv *server) map[string]int64 {
	resp, err := http.Get("http://" + srv.pprof + "/debug/pprof/heap?debug=1&gc=1")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, l := range strings.Split(string(b), "\n") {
		var v int64
		switch {
		case strings.HasPrefix(l, "# HeapInuse = "):
			fmt.Sscan(strings.TrimPrefix(l, "# HeapInuse = "), &v)
			out["go_heap_inuse"] = v
		case strings.HasPrefix(l, "# Stack = "):
			fmt.Sscan(strings.TrimPrefix(l, "# Stack = "), &v)
			out["go_stack_inuse"] = v
		case strings.HasPrefix(l, "# Sys = "):
			fmt.Sscan(strings.TrimPrefix(l, "# Sys = "), &v)
			out["go_sys"] = v
		}
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
