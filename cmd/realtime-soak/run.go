package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cutGrace is how soon a client must notice a reset connection, after
// the last proxy was cut: the Node process's event loop runs seconds late
// while thousands of clients reconnect at once.
const cutGrace = 15 * time.Second

// refuseFor is how long the proxies refuse new connections in a refusal.
const refuseFor = 5 * time.Second

// sampleEvery is how often the server's figures are read.
const sampleEvery = 10 * time.Second

// soak is one run's moving parts.
type soak struct {
	cfg   config
	logw  io.Writer
	addrs []string // one per node
	env   []string // the nodes' environment beyond the soak's (Redis)
	rnd   *rand.Rand

	pop *population
	pub *publisher

	mu       sync.Mutex
	srvs     []*server // nil while a node restarts
	gens     []int     // each node's process: 0, 1 after its restart
	faults   []Fault
	samples  []Sample
	notes    []string // what went wrong outside the clients (server exits, publish errors)
	serverBy map[string]int

	redisAddr  string   // with several nodes
	streamLen  int64    // the stream's length at the end
	redisStats []string // Redis's INFO commandstats at the end, of the commands that matter
}

func (s *soak) logf(format string, args ...any) {
	fmt.Fprintf(s.logw, "%s soak: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (s *soak) note(format string, args ...any) {
	s.mu.Lock()
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
	s.mu.Unlock()
	s.logf(format, args...)
}

func (s *soak) addFault(f Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
	s.logf("fault %s: hit %s", f.Kind, hitCount(f, s.cfg.Clients))
}

func hitCount(f Fault, all int) string {
	if f.Hit == nil {
		return strconv.Itoa(all) + " (all)"
	}
	return strconv.Itoa(len(f.Hit))
}

// run runs one soak and writes its report into cfg.Out.
func run(ctx context.Context, cfg config, logw io.Writer) (Verdict, error) {
	root, err := repoRoot()
	if err != nil {
		return Verdict{}, err
	}
	work, err := os.MkdirTemp("", "realtime-soak-")
	if err != nil {
		return Verdict{}, fmt.Errorf("work directory: %w", err)
	}
	s := &soak{cfg: cfg, logw: logw, rnd: rand.New(rand.NewPCG(cfg.Seed, 1)), serverBy: map[string]int{}}
	bin := cfg.Binary
	if bin == "" {
		s.logf("building the server")
		if bin, err = buildServer(ctx, root, work, logw); err != nil {
			return Verdict{}, err
		}
		defer os.Remove(bin)
	}
	for range cfg.Nodes {
		port, err := freePort()
		if err != nil {
			return Verdict{}, err
		}
		s.addrs = append(s.addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	// Events are published through node 0, never restarted when there
	// are several.
	base := "http://" + s.addrs[0]
	serverLog, err := os.Create(filepath.Join(work, "server.log"))
	if err != nil {
		return Verdict{}, fmt.Errorf("server log: %w", err)
	}
	defer serverLog.Close()
	nodeLog, err := os.Create(filepath.Join(work, "node.log"))
	if err != nil {
		return Verdict{}, fmt.Errorf("node log: %w", err)
	}
	defer nodeLog.Close()
	s.logf("logs in %s", work)

	if cfg.Nodes > 1 {
		port, err := freePort()
		if err != nil {
			return Verdict{}, err
		}
		raddr := "127.0.0.1:" + strconv.Itoa(port)
		redis, err := startRedis(ctx, raddr, work, serverLog)
		if err != nil {
			return Verdict{}, err
		}
		defer func() { _ = redis.Process.Kill(); _ = redis.Wait() }()
		s.env = []string{"REDIS_URL=redis://" + raddr, "REDIS_ADAPTER_MODE=streams",
			// Above what a run appends: a trimmed history would fail
			// recoveries for a reason of the soak's choosing.
			"REDIS_STREAM_MAXLEN=" + strconv.Itoa(cfg.StreamMaxLen)}
		s.redisAddr = raddr
		s.logf("%d nodes over redis-server %s in streams mode", cfg.Nodes, raddr)
	}
	s.srvs = make([]*server, cfg.Nodes)
	s.gens = make([]int, cfg.Nodes)
	defer func() {
		s.mu.Lock()
		srvs := append([]*server(nil), s.srvs...)
		s.mu.Unlock()
		for _, srv := range srvs {
			if srv != nil {
				_ = srv.stop(20 * time.Second)
			}
		}
	}()
	for i, addr := range s.addrs {
		srv, err := startServer(ctx, bin, addr, cfg, s.env, serverLog)
		if err != nil {
			return Verdict{}, err
		}
		s.mu.Lock()
		s.srvs[i] = srv
		s.mu.Unlock()
	}
	orgs := make([]string, cfg.Orgs)
	for i := range orgs {
		orgs[i] = fmt.Sprintf("org-%d", i+1)
	}
	users := make([]string, cfg.Clients)
	orgOf := make(map[string]string, cfg.Clients)
	for i := range users {
		users[i] = userID(i)
		orgOf[users[i]] = cfg.org(i)
	}
	s.pub = newPublisher(base, orgs, orgOf)
	rawLog, err := os.Create(filepath.Join(work, "clients.jsonl"))
	if err != nil {
		return Verdict{}, fmt.Errorf("clients log: %w", err)
	}
	defer rawLog.Close()
	raw := bufio.NewWriterSize(rawLog, 256<<10)
	defer raw.Flush()
	if s.pop, err = startPopulation(root, cfg, s.addrs, nodeLog, raw); err != nil {
		return Verdict{}, err
	}
	popClosed := false
	defer func() {
		if !popClosed {
			s.pop.close()
		}
	}()

	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() { defer sampling.Done(); s.sample(sampleCtx) }()
	defer func() { stopSampling(); sampling.Wait() }()

	// The population connects, RampPerSecond at a time.
	s.logf("connecting %d clients over %d organizations (mix default/polling/websocket %v%%)", cfg.Clients, cfg.Orgs, cfg.Mix)
	tick := time.NewTicker(time.Second / time.Duration(cfg.RampPerSecond))
	for i := range cfg.Clients {
		if err := s.pop.connect(i); err != nil {
			tick.Stop()
			return Verdict{}, err
		}
		select {
		case <-ctx.Done():
			tick.Stop()
			return Verdict{}, ctx.Err()
		case <-tick.C:
		}
	}
	tick.Stop()
	if !s.waitFor(ctx, "every client connected", 2*time.Minute, func() bool {
		conn, _ := s.pop.counts(nil)
		return conn == cfg.Clients
	}) {
		s.note("not every client connected within 2m of the ramp")
	}

	// Events and faults.
	runStart := time.Now()
	runEnd := runStart.Add(cfg.Duration)
	s.logf("running until %s", runEnd.UTC().Format("15:04:05"))
	pubCtx, stopPublishing := context.WithCancel(ctx)
	pubErrs := make(chan error, 1)
	var publishing sync.WaitGroup
	publishing.Add(1)
	go func() {
		defer publishing.Done()
		s.pub.run(pubCtx, orgs, users, cfg.MeanGap, cfg.UserGap, cfg.Seed, pubErrs)
	}()

	restartAt, killAt := -1, -1
	var slots []time.Time
	for t := runStart.Add(cfg.FaultEvery); t.Before(runEnd.Add(-cfg.Quiet)); t = t.Add(cfg.FaultEvery) {
		slots = append(slots, t)
	}
	if cfg.Restart && len(slots) > 0 {
		restartAt = len(slots) / 2
	}
	if cfg.Kill && cfg.Nodes > 1 && len(slots) > 0 {
		// Late in the run, after the restart: the killed node's clients
		// recover from the sessions it kept in Redis while they were
		// connected, not from ones stored at a disconnection.
		killAt = len(slots) * 3 / 4
		if killAt == restartAt {
			killAt = len(slots) - 1
		}
		if killAt == restartAt {
			killAt = -1
		}
	}
	var background sync.WaitGroup
	injected := 0
	for k, at := range slots {
		if !sleepUntil(ctx, at) {
			break
		}
		var err error
		switch k {
		case restartAt:
			err = s.restart(ctx, bin, serverLog, len(s.addrs)-1, false)
		case killAt:
			// Not the node the restart stops, when there is another.
			err = s.restart(ctx, bin, serverLog, max(len(s.addrs)-2, 1), true)
		default:
			s.inject(injected, &background)
			injected++
		}
		if err != nil {
			s.note("restart: %v", err)
			break
		}
		// Events while the clients are away, or coming back.
		away := append(slices.Clone(orgs), pick(s.rnd, users, len(users)/10)...)
		if err := s.pub.publishAll(ctx, away); err != nil {
			s.note("publishing after a fault: %v", err)
		}
	}
	sleepUntil(ctx, runEnd)
	stopPublishing()
	publishing.Wait()
	background.Wait()
	select {
	case err := <-pubErrs:
		s.note("publisher: %v", err)
	default:
	}
	if ctx.Err() != nil {
		return Verdict{}, ctx.Err()
	}

	// The last event of every organization and user, then everyone must
	// have all.
	if err := s.pub.publishAll(ctx, append(slices.Clone(orgs), users...)); err != nil {
		s.note("publishing the last events: %v", err)
	}
	want := s.pub.published()
	if !s.waitFor(ctx, "every client connected with every event", cfg.Quiet+time.Minute, func() bool {
		conn, caught := s.pop.counts(want)
		return conn == cfg.Clients && caught == cfg.Clients
	}) {
		s.note("not every client connected with every event %s after the end", cfg.Quiet+time.Minute)
	}
	until := time.Now()
	if s.redisAddr != "" {
		s.checkStream(ctx)
	}
	stopSampling()
	sampling.Wait()
	clients := s.pop.close()
	popClosed = true

	s.mu.Lock()
	srvs := s.srvs
	s.srvs = make([]*server, cfg.Nodes)
	s.mu.Unlock()
	for i, srv := range srvs {
		if srv == nil {
			continue
		}
		if err := srv.stop(20 * time.Second); err != nil {
			s.note("node %d's exit after SIGTERM: %v", i, err)
		}
		for k, n := range srv.serverDisconnects() {
			s.serverBy[k] += n
		}
	}

	v := Judge(clients, s.pub.snapshot(), s.faults, s.samples, JudgeParams{
		CutGrace:  cutGrace,
		Heartbeat: cfg.heartbeat(),
		// One node keeps its sessions in memory; several keep them in
		// Redis (streams mode), which outlives any of them.
		RestartLosesSessions: cfg.Nodes == 1,
		Polling:              cfg.Clients * cfg.Mix[1] / 100,
		UpgradeTimeout:       10 * time.Second, // the server's default (engineio.Options.UpgradeTimeout)
		ExpiryWarning:        cfg.ExpiryWarning,
		Until:                until,
	})
	if len(s.notes) > 0 {
		v.Pass = false
		v.FailureCounts["run"] += len(s.notes)
		for _, n := range s.notes {
			v.Failures = append(v.Failures, "run: "+n)
		}
	}
	rep := newReport(cfg, s, clients, v, runStart, until, work)
	if err := rep.write(cfg.Out); err != nil {
		return v, err
	}
	fmt.Fprint(logw, rep.text())
	return v, nil
}

// inject injects fault k of the rotation: every connection cut; some
// clients stalled past the heartbeat (or not quite); new connections
// refused for a few seconds right after every connection was cut.
func (s *soak) inject(k int, background *sync.WaitGroup) {
	proxies := s.pop.proxies
	cut := func() {
		at := time.Now()
		hit := map[int]bool{}
		for i, p := range proxies {
			if p.Cut() > 0 {
				hit[i] = true
			}
		}
		s.addFault(Fault{Kind: FaultCut, Start: at, End: time.Now(), Hit: hit})
	}
	switch k % 3 {
	case 0:
		cut()
	case 1:
		n := max(len(proxies)/20, 1)
		hb := s.cfg.heartbeat()
		d := hb/2 + time.Duration(s.rnd.Int64N(int64(hb)))
		at := time.Now()
		hit := map[int]bool{}
		for _, i := range s.rnd.Perm(len(proxies))[:n] {
			if proxies[i].Stall(100, d) > 0 {
				hit[i] = true
			}
		}
		s.addFault(Fault{Kind: FaultStall, Start: at, End: at.Add(d), Hit: hit})
	case 2:
		before := make([]int64, len(proxies))
		for i, p := range proxies {
			before[i] = p.Stats().Refused.Load()
		}
		at := time.Now()
		for _, p := range proxies {
			p.Refuse(refuseFor)
		}
		cut()
		background.Add(1)
		go func() {
			defer background.Done()
			time.Sleep(refuseFor + cutGrace)
			hit := map[int]bool{}
			for i, p := range proxies {
				if p.Stats().Refused.Load() > before[i] {
					hit[i] = true
				}
			}
			s.addFault(Fault{Kind: FaultRefuse, Start: at, End: at.Add(refuseFor), Hit: hit})
		}()
	}
}

// restart stops a node and starts it again on the same port: with
// SIGTERM (a deploy), or with SIGKILL when kill is set (a crash: the node
// stores nothing on its way out, its clients recover from the sessions it
// kept in Redis while they were connected). On one node nothing is
// published meanwhile (there is no server to take it). With several, node
// (never node 0, through which events are published) is stopped while
// events flow: its clients reconnect to the next node meanwhile (their
// proxies point there, as a load balancer would send them) and must
// recover everything from Redis; once it is back they are cut and
// reconnect home.
func (s *soak) restart(ctx context.Context, bin string, serverLog *os.File, node int, kill bool) error {
	var home map[int]bool
	if len(s.addrs) == 1 {
		s.pub.paused.Lock()
		defer s.pub.paused.Unlock()
	} else {
		home = map[int]bool{}
		for i, p := range s.pop.proxies {
			if i%len(s.addrs) == node {
				home[i] = true
				p.SetTarget(s.addrs[(node+1)%len(s.addrs)])
			}
		}
	}
	at := time.Now()
	s.mu.Lock()
	old := s.srvs[node]
	s.srvs[node] = nil
	s.mu.Unlock()
	kind := FaultRestart
	if kill {
		kind = FaultKill
		old.kill()
		s.logf("node %d killed (SIGKILL)", node)
	} else if err := old.stop(30 * time.Second); err != nil {
		s.note("node %d's exit at the restart: %v", node, err)
	}
	s.mu.Lock()
	for k, n := range old.serverDisconnects() {
		s.serverBy[k] += n
	}
	s.mu.Unlock()
	if kill {
		// The fault is the kill; the node stays down while its clients
		// come back elsewhere, as after a crash.
		s.addFault(Fault{Kind: kind, Start: at, End: time.Now(), Hit: home})
		sleepUntil(ctx, time.Now().Add(cutGrace))
	}
	srv, err := startServer(ctx, bin, s.addrs[node], s.cfg, s.env, serverLog)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.srvs[node] = srv
	s.gens[node]++
	s.mu.Unlock()
	if !kill {
		s.addFault(Fault{Kind: kind, Start: at, End: time.Now(), Hit: home})
	}
	if home != nil {
		// Give the moved clients time to come back elsewhere, then home.
		if !kill {
			sleepUntil(ctx, time.Now().Add(cutGrace))
		}
		for i := range home {
			s.pop.proxies[i].SetTarget(s.addrs[node])
		}
		// Every moved client is hit, cut or not: a polling client between
		// two requests has no connection to cut, but its next request
		// goes home, where its session is unknown (HTTP 400, "xhr poll
		// error: 400"), as behind a load balancer that moves it. Counting
		// only the cut ones failed two such clients in the 3-node soak
		// of 2026-12-03 as unexplained.
		cutAt := time.Now()
		for i := range home {
			s.pop.proxies[i].Cut()
		}
		s.addFault(Fault{Kind: FaultCut, Start: cutAt, End: time.Now(), Hit: home})
	}
	return nil
}

// checkStream notes a stream trimmed during the run (its length reached
// REDIS_STREAM_MAXLEN): recoveries would then fail for the soak's reason.
func (s *soak) checkStream(ctx context.Context) {
	n, err := redisInt(ctx, s.redisAddr, "XLEN", "socket.io")
	if err != nil {
		s.note("reading the stream's length: %v", err)
		return
	}
	s.streamLen = n
	s.logf("the stream holds %d entries (REDIS_STREAM_MAXLEN=%d)", n, s.cfg.StreamMaxLen)
	// What Redis spent its time on: a storm of recoveries reading the
	// stream shows in XRANGE.
	if info, err := redisBulk(ctx, s.redisAddr, "INFO", "commandstats"); err == nil {
		for _, l := range strings.Split(info, "\n") {
			name, stats, ok := strings.Cut(strings.TrimSpace(l), ":")
			if ok && slices.Contains([]string{"cmdstat_xrange", "cmdstat_xadd", "cmdstat_evalsha", "cmdstat_xread", "cmdstat_get", "cmdstat_set"}, name) {
				s.redisStats = append(s.redisStats, strings.TrimPrefix(name, "cmdstat_")+" "+stats)
			}
		}
	}
	if n >= int64(s.cfg.StreamMaxLen)*9/10 {
		s.note("the stream holds %d entries, near REDIS_STREAM_MAXLEN=%d: history may have been trimmed; raise SOAK_STREAM_MAXLEN", n, s.cfg.StreamMaxLen)
	}
}

// pick returns n of list, at random.
func pick(rnd *rand.Rand, list []string, n int) []string {
	out := make([]string, 0, n)
	for _, i := range rnd.Perm(len(list))[:min(n, len(list))] {
		out = append(out, list[i])
	}
	return out
}

// sample reads every node's figures every sampleEvery until ctx ends.
func (s *soak) sample(ctx context.Context) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for round := 0; ; round++ {
		var got []Sample
		total := 0
		for node, addr := range s.addrs {
			s.mu.Lock()
			gen, up := s.gens[node], s.srvs[node] != nil
			s.mu.Unlock()
			if !up {
				continue
			}
			m, err := scrape(ctx, "http://"+addr)
			if err != nil {
				continue
			}
			m.At, m.Round, m.Node, m.Gen = time.Now(), round, node, gen
			total += m.Conns
			got = append(got, m)
		}
		s.mu.Lock()
		for _, m := range got {
			if s.gens[m.Node] == m.Gen { // not a reading of a stopping process, filed under the new one
				m.Steady = steady(s.cfg.Clients, len(s.addrs), total, len(got), m)
				s.samples = append(s.samples, m)
			}
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// waitFor polls cond every 100 ms until it holds, within or ctx ends.
func (s *soak) waitFor(ctx context.Context, what string, within time.Duration, cond func() bool) bool {
	start := time.Now()
	deadline := start.Add(within)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
	return true
}

// sleepUntil sleeps until t, or reports false when ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// steady says whether node m's reading is of a steady population: every
// client connected, every node read, and with several nodes this one
// holding its own clients (after a restart its clients come home only
// once it is back: until then the process serves none, a floor its
// growth must not be measured from).
func steady(clients, nodes, total, read int, m Sample) bool {
	if total != clients || read != nodes {
		return false
	}
	return nodes == 1 || m.Conns == homeClients(clients, nodes, m.Node)
}

// homeClients is how many clients node (of nodes) serves: client i's home
// is node i % nodes.
func homeClients(clients, nodes, node int) int {
	n := clients / nodes
	if node < clients%nodes {
		n++
	}
	return n
}
