package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// report is what a soak writes: soak-report.json, soak-report.txt and
// soak.svg in the output directory.
type report struct {
	Pass         bool           `json:"pass"`
	Started      time.Time      `json:"started"`
	Ended        time.Time      `json:"ended"`
	Duration     string         `json:"duration"`
	Machine      string         `json:"machine"`
	Nodes        int            `json:"nodes"`
	Config       reportConfig   `json:"config"`
	Clients      map[string]int `json:"clientsByMode"`
	Organization int            `json:"organizations"`
	Published    int            `json:"eventsPublished"`
	UserEvents   int            `json:"notificationsPublished"` // of Published: to one user each
	StreamLen    int64          `json:"streamLength,omitempty"` // entries in the Redis stream at the end (several nodes)
	RedisStats   []string       `json:"redisCommandStats,omitempty"`
	PublishRetry int            `json:"publishRetries"`
	Faults       map[string]int `json:"faults"`
	FaultHits    map[string]int `json:"faultHits"` // client connections hit, by fault kind
	Server       map[string]int `json:"serverDisconnectsByReason"`
	Verdict      Verdict        `json:"verdict"`
	Resources    resourceRange  `json:"resources"`
	Samples      []Sample       `json:"samples"`
	ClientLag    []Lag          `json:"clientEventLoopLag"`
	ClientLagMax int64          `json:"clientEventLoopLagMaxMs"`
	Logs         string         `json:"logs"`
}

type reportConfig struct {
	Duration, FaultEvery, TokenTTL, ExpiryWarning, PingInterval, PingTimeout, RecoveryWindow, MeanGap string
	Mix                                                                                               [3]int
	Restart                                                                                           bool
	Seed                                                                                              uint64
}

type resourceRange struct {
	RSSMiB     [2]float64 `json:"rssMiB"` // min, max
	Goroutines [2]float64 `json:"goroutines"`
	OpenFiles  [2]float64 `json:"openFiles"`
	Conns      [2]int     `json:"connections"`
}

func newReport(cfg config, s *soak, clients []Client, v Verdict, start, end time.Time, work string) *report {
	r := &report{
		Pass:     v.Pass,
		Started:  start.UTC(),
		Ended:    end.UTC(),
		Duration: end.Sub(start).Round(time.Second).String(),
		Machine:  machine(),
		Nodes:    cfg.Nodes,
		Config: reportConfig{
			Duration: cfg.Duration.String(), FaultEvery: cfg.FaultEvery.String(), TokenTTL: cfg.TokenTTL.String(),
			ExpiryWarning: cfg.ExpiryWarning.String(), PingInterval: cfg.PingInterval.String(), PingTimeout: cfg.PingTimeout.String(),
			RecoveryWindow: cfg.RecoveryWindow.String(), MeanGap: cfg.MeanGap.String(), Mix: cfg.Mix, Restart: cfg.Restart, Seed: cfg.Seed,
		},
		Clients:      map[string]int{},
		Organization: cfg.Orgs,
		Faults:       map[string]int{},
		FaultHits:    map[string]int{},
		Server:       s.serverBy,
		Verdict:      v,
		Samples:      s.samples,
		Logs:         work,
	}
	for _, c := range clients {
		r.Clients[c.Mode]++
	}
	r.ClientLag = s.pop.lagReadings()
	for _, l := range r.ClientLag {
		r.ClientLagMax = max(r.ClientLagMax, l.MaxMs)
	}
	for k, n := range s.pub.published() {
		r.Published += n
		if strings.HasPrefix(k, "user-") {
			r.UserEvents += n
		}
	}
	r.StreamLen = s.streamLen
	r.RedisStats = s.redisStats
	r.PublishRetry = s.pub.failures
	for _, f := range s.faults {
		r.Faults[string(f.Kind)]++
		if f.Hit == nil {
			r.FaultHits[string(f.Kind)] += cfg.Clients
		} else {
			r.FaultHits[string(f.Kind)] += len(f.Hit)
		}
	}
	totals := byRound(s.samples)
	if len(totals) > 0 {
		first := totals[0]
		r.Resources = resourceRange{
			RSSMiB:     [2]float64{first.RSS / (1 << 20), first.RSS / (1 << 20)},
			Goroutines: [2]float64{first.Goroutines, first.Goroutines},
			OpenFiles:  [2]float64{first.FDs, first.FDs},
			Conns:      [2]int{first.Conns, first.Conns},
		}
		for _, x := range totals {
			rr := &r.Resources
			rr.RSSMiB = [2]float64{min(rr.RSSMiB[0], x.RSS/(1<<20)), max(rr.RSSMiB[1], x.RSS/(1<<20))}
			rr.Goroutines = [2]float64{min(rr.Goroutines[0], x.Goroutines), max(rr.Goroutines[1], x.Goroutines)}
			rr.OpenFiles = [2]float64{min(rr.OpenFiles[0], x.FDs), max(rr.OpenFiles[1], x.FDs)}
			rr.Conns = [2]int{min(rr.Conns[0], x.Conns), max(rr.Conns[1], x.Conns)}
		}
	}
	return r
}

func machine() string {
	cpu := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, cpu, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	return fmt.Sprintf("%s/%s, %d CPUs (%s), %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), strings.TrimSpace(cpu), runtime.Version())
}

func (r *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report directory: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the report: %w", err)
	}
	for name, data := range map[string][]byte{
		"soak-report.json": append(b, '\n'),
		"soak-report.txt":  []byte(r.text()),
		"soak.svg":         plot(byRound(r.Samples), r.Started),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
	}
	return nil
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func counts(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// text is the report for people.
func (r *report) text() string {
	var b strings.Builder
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	v := r.Verdict
	fmt.Fprintf(&b, "soak %s: %s from %s to %s on %s\n", verdict, r.Duration, r.Started.Format(time.RFC3339), r.Ended.Format(time.RFC3339), r.Machine)
	fmt.Fprintf(&b, "clients: %s over %d organizations; tokens %s (warning %s); heartbeat %s + %s; recovery window %s\n",
		counts(r.Clients), r.Organization, r.Config.TokenTTL, r.Config.ExpiryWarning, r.Config.PingInterval, r.Config.PingTimeout, r.Config.RecoveryWindow)
	fmt.Fprintf(&b, "events: %d published (%d of them notifications to one user; %d POST retries), %d received, %d excused (missed before a fresh connection told of it by history:gap)\n",
		r.Published, r.UserEvents, r.PublishRetry, v.EventsReceived, v.EventsExcused)
	fmt.Fprintf(&b, "faults: %s; clients hit: %s\n", counts(r.Faults), counts(r.FaultHits))
	fmt.Fprintf(&b, "connections: %d (%d recovered, %d afresh, %d history:gap), %d upgrades, %d connect errors, %d token refreshes\n",
		v.Connects, v.Recovered, v.NotRecovered, v.Gaps, v.Upgrades, v.ConnectErrors, v.Refreshes)
	fmt.Fprintf(&b, "disconnects (clients): %d: %s\n", v.Disconnects, counts(v.DisconnectsBy))
	if v.LateUpgrades > 0 {
		fmt.Fprintf(&b, "late upgrades: %d disconnections right after an upgrade the client finished more than the server's upgrade timeout (10 s) after its probe started, while its event loop ran late: the server had closed the probe\n", v.LateUpgrades)
	}
	if v.AwayExpiries > 0 {
		fmt.Fprintf(&b, "tokens expired on a connection opened less than the warning before their expiry (the client away when warned): %d\n", v.AwayExpiries)
	}
	if v.StallExpiries > 0 || v.ProbeErrors > 0 {
		fmt.Fprintf(&b, "tokens expired during a stall: %d; failed upgrade probes: %d, of which %d left the client silent until its ping timeout (engine.io-client)\n", v.StallExpiries, v.ProbeErrors, v.ProbeStuck)
	}
	if v.ReplayedAuthNotices > 0 {
		fmt.Fprintf(&b, "auth notices right after a recovered connection: %d (live, without an offset: the client came back inside its token's warning)\n", v.ReplayedAuthNotices)
	}
	if len(v.UnexplainedByLag) > 0 {
		fmt.Fprintf(&b, "unexplained disconnects by time since the latest fault hitting the client: %s\n", counts(v.UnexplainedByLag))
	}
	fmt.Fprintf(&b, "disconnects (server log): %s\n", counts(r.Server))
	fmt.Fprintf(&b, "the clients' Node process: event loop up to %d ms late (worst of %d readings)\n", r.ClientLagMax, len(r.ClientLag))
	rr := r.Resources
	if r.Nodes > 1 {
		fmt.Fprintf(&b, "%d nodes over Redis (streams mode, %d stream entries at the end); server figures are sums over the nodes\n", r.Nodes, r.StreamLen)
		for _, l := range r.RedisStats {
			fmt.Fprintf(&b, "  redis %s\n", l)
		}
	}
	fmt.Fprintf(&b, "server (%d samples): connections %d–%d, RSS %.0f–%.0f MiB, goroutines %.0f–%.0f, open files %.0f–%.0f\n",
		len(r.Samples), rr.Conns[0], rr.Conns[1], rr.RSSMiB[0], rr.RSSMiB[1], rr.Goroutines[0], rr.Goroutines[1], rr.OpenFiles[0], rr.OpenFiles[1])
	for _, l := range v.ResourceJudgement {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	if !r.Pass {
		fmt.Fprintf(&b, "failures: %s\n", counts(v.FailureCounts))
		for _, f := range v.Failures {
			fmt.Fprintf(&b, "  %s\n", f)
		}
	}
	fmt.Fprintf(&b, "logs: %s\n", r.Logs)
	return b.String()
}

// byRound sums each round's readings over the nodes; Gen is the sum of the
// nodes' generations, so that it changes at a restart.
func byRound(samples []Sample) []Sample {
	var out []Sample
	for _, m := range samples {
		if len(out) == 0 || out[len(out)-1].Round != m.Round {
			out = append(out, Sample{At: m.At, Round: m.Round, Steady: m.Steady})
		}
		t := &out[len(out)-1]
		t.Conns += m.Conns
		t.RSS += m.RSS
		t.Goroutines += m.Goroutines
		t.FDs += m.FDs
		t.Gen += m.Gen
	}
	return out
}
