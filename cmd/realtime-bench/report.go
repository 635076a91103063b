package main

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// metric describes how a metric is shown and which way is better.
type metric struct {
	label  string
	unit   string
	better int // +1 higher is better, -1 lower is better, 0 informational
	prec   int
}

// metricInfo returns the description of a metric key ("rss_mb@10000": the
// level after @ is put into the label).
func metricInfo(key string) metric {
	base, level, _ := strings.Cut(key, "@")
	lv := ""
	if level != "" {
		n, _ := strconv.Atoi(level)
		lv = " at " + thousands(float64(n))
	}
	switch base {
	case "rss_base_mb":
		return metric{"server RSS, no connection", "MB", -1, 1}
	case "server_processes":
		return metric{"server processes (RSS and CPU summed)", "", 0, 0}
	case "conns":
		return metric{"connections held" + lv, "", 0, 0}
	case "rss_mb":
		return metric{"server RSS" + lv + " connections", "MB", -1, 1}
	case "rss_kb_per_conn":
		return metric{"RSS per idle connection" + lv, "KB", -1, 2}
	case "rss_kb_marginal":
		return metric{"RSS per added connection (between the levels)", "KB", -1, 2}
	case "projected_rss_mb":
		return metric{"projected RSS" + lv + " connections", "MB", -1, 0}
	case "go_heap_inuse_kb_per_conn":
		return metric{"Go heap in use per connection (after GC; whole process / connections)", "KB", -1, 2}
	case "go_stack_inuse_kb_per_conn":
		return metric{"Go stacks per connection", "KB", -1, 2}
	case "go_sys_kb_per_conn":
		return metric{"Go runtime memory from the OS per connection (Sys)", "KB", -1, 2}
	case "goroutines_per_conn":
		return metric{"goroutines per connection", "", 0, 2}
	case "connect_per_sec":
		return metric{"connect rate (ramp-up, JWT verified)", "/s", +1, 0}
	case "connect_cpu_us":
		return metric{"server CPU per connection (ramp-up)", "µs", -1, 0}
	case "connect_gen_cpu_us":
		return metric{"load generator CPU per connection (ramp-up)", "µs", 0, 0}
	case "storm_gen_cpu_us":
		return metric{"load generator CPU per handshake", "µs", 0, 0}
	case "connect_p50_ms":
		return metric{"handshake p50 (ramp-up)", "ms", -1, 1}
	case "connect_p99_ms":
		return metric{"handshake p99 (ramp-up)", "ms", -1, 1}
	case "clients":
		return metric{"clients", "", 0, 0}
	case "orgs":
		return metric{"organizations", "", 0, 0}
	case "storm_per_sec":
		return metric{"reconnection rate (JWT verified)", "/s", +1, 0}
	case "storm_cpu_us":
		return metric{"server CPU per handshake", "µs", -1, 0}
	case "storm_p50_ms":
		return metric{"handshake p50", "ms", -1, 1}
	case "storm_p99_ms":
		return metric{"handshake p99", "ms", -1, 1}
	case "storm_max_ms":
		return metric{"handshake max", "ms", -1, 1}
	case "storm_failed":
		return metric{"failed handshakes", "", -1, 0}
	case "storm_concurrent":
		return metric{"handshakes in flight", "", 0, 0}
	case "room":
		return metric{"room size", "", 0, 0}
	case "events":
		return metric{"events per burst", "", 0, 0}
	case "burst_done_ms":
		return metric{"burst fully delivered after", "ms", -1, 0}
	case "burst_p50_ms":
		return metric{"latency p50", "ms", -1, 1}
	case "burst_p99_ms":
		return metric{"latency p99", "ms", -1, 1}
	case "burst_max_ms":
		return metric{"latency max", "ms", -1, 1}
	case "burst_cpu_us":
		return metric{"server CPU per delivery", "µs", -1, 2}
	case "burst_deliveries_sec":
		return metric{"deliveries per second", "/s", +1, 0}
	case "burst_lost":
		return metric{"lost deliveries", "", -1, 0}
	case "sat_rate":
		return metric{"saturation publish rate", "events/s", +1, 1}
	case "sat_deliveries_sec":
		return metric{"saturation throughput (no loss, p99 < 1 s)", "deliveries/s", +1, 0}
	case "sat_p50_ms":
		return metric{"latency p50 at saturation", "ms", 0, 1}
	case "sat_p99_ms":
		return metric{"latency p99 at saturation", "ms", 0, 1}
	case "sat_max_ms":
		return metric{"latency max at saturation", "ms", 0, 1}
	case "sat_cpu_us":
		return metric{"server CPU per delivery at saturation", "µs", -1, 2}
	case "sat_server_cores":
		return metric{"server cores used at saturation", "", 0, 2}
	case "sat_generator_cores":
		return metric{"load generator cores at saturation", "", 0, 2}
	case "sat_lower_bound":
		return metric{"not saturated at the last step (lower bound)", "", 0, 0}
	case "fail_rate":
		return metric{"first failing publish rate", "events/s", +1, 1}
	case "at_node_sat_rate":
		return metric{"Node's saturation rate", "events/s", 0, 1}
	case "at_node_sat_p50_ms":
		return metric{"latency p50 at Node's saturation rate", "ms", -1, 1}
	case "at_node_sat_p99_ms":
		return metric{"latency p99 at Node's saturation rate", "ms", -1, 1}
	case "at_node_sat_cpu_us":
		return metric{"server CPU per delivery at Node's saturation rate", "µs", -1, 2}
	case "runnable":
		return metric{"cross-node delivery works", "", +1, 0}
	}
	return metric{key, "", 0, 2}
}

var scenarioTitles = map[string]string{
	"idle":             "1. Idle connections",
	"storm":            "4. Handshake storm (every client reconnects at once)",
	"fanout-one-org":   "2a. Fan-out, one organization",
	"fanout-many-orgs": "2b. Fan-out, many organizations",
	"burst":            "3. Bursts",
	"redis":            "5. Cross-node through Redis",
}

var scenarioOrder = []string{"idle", "fanout-one-org", "fanout-many-orgs", "burst", "storm", "redis"}

// agg holds the medians of one scenario's metrics per server.
type agg struct {
	med   map[string]map[string]float64 // server → metric → median
	runs  map[string]int
	keys  []string
	notes []string
}

func aggregate(results []Result) map[string]*agg {
	out := map[string]*agg{}
	vals := map[string]map[string]map[string][]float64{}
	for _, r := range results {
		if r.Scenario == "error" {
			continue
		}
		a := out[r.Scenario]
		if a == nil {
			a = &agg{med: map[string]map[string]float64{}, runs: map[string]int{}}
			out[r.Scenario] = a
			vals[r.Scenario] = map[string]map[string][]float64{}
		}
		a.runs[r.Server]++
		for _, n := range r.Notes {
			a.notes = append(a.notes, fmt.Sprintf("%s (run %d): %s", r.Server, r.Rep, n))
		}
		if vals[r.Scenario][r.Server] == nil {
			vals[r.Scenario][r.Server] = map[string][]float64{}
		}
		for k, v := range r.M {
			vals[r.Scenario][r.Server][k] = append(vals[r.Scenario][r.Server][k], v)
		}
	}
	for s, byServer := range vals {
		a := out[s]
		seen := map[string]bool{}
		for srv, ms := range byServer {
			a.med[srv] = map[string]float64{}
			for k, v := range ms {
				a.med[srv][k] = median(v)
				if !seen[k] {
					seen[k] = true
					a.keys = append(a.keys, k)
				}
			}
		}
		sort.Slice(a.keys, func(i, j int) bool { return keyOrder(a.keys[i]) < keyOrder(a.keys[j]) })
	}
	return out
}

var keyPrefixOrder = []string{
	"clients", "orgs", "room", "events", "server_processes", "conns", "rss_base", "rss_mb", "rss_kb_per_conn", "rss_kb_marginal", "projected",
	"goroutines", "go_", "connect_per_sec", "connect_cpu", "connect_gen", "connect_p", "storm_concurrent", "storm_per_sec", "storm_cpu", "storm_gen", "storm_p",
	"storm_max", "storm_failed", "sat_deliveries", "sat_rate", "sat_p50", "sat_p99", "sat_max", "sat_cpu", "sat_server",
	"sat_generator", "sat_lower", "fail_rate", "at_node_sat_rate", "at_node_sat_p50", "at_node_sat_p99", "at_node_sat_cpu",
	"burst_done", "burst_deliveries", "burst_p50", "burst_p99", "burst_max", "burst_cpu", "burst_lost", "runnable",
}

func keyOrder(k string) string {
	base, level, _ := strings.Cut(k, "@")
	for i, p := range keyPrefixOrder {
		if strings.HasPrefix(base, p) {
			n, _ := strconv.Atoi(level)
			return fmt.Sprintf("%03d-%09d-%s", i, n, k)
		}
	}
	return "999-" + k
}

// ratio is ours' advantage over Node: > 1 means ours is better.
func ratio(m metric, ours, node float64) (float64, bool) {
	switch {
	case m.better > 0 && node > 0:
		return ours / node, true
	case m.better < 0 && ours > 0:
		return node / ours, true
	}
	return 0, false
}

func buildReport(cfg *config, m machineInfo, results []Result) string {
	var b strings.Builder
	mode := "quick"
	if cfg.full {
		mode = "full"
	}
	fmt.Fprintf(&b, "# realtime-bench: ours vs Node socket.io 4.8.4 (%s run)\n\n", mode)
	fmt.Fprintf(&b, "- machine: %d × %s, %d GiB RAM, Linux %s, open files %s per process\n", m.Cores, m.CPU, m.MemGiB, m.Kernel, m.NoFile)
	fmt.Fprintf(&b, "- software: %s (ours: the `realtime` binary), Node %s (bench/node: socket.io 4.8.4, jsonwebtoken 9.0.3)\n", m.Go, m.Node)
	fmt.Fprintf(&b, "- load average at start %s, at end %s; run took %s; started %s\n", m.LoadStart, m.LoadEnd, m.Duration, m.Started)
	fmt.Fprintf(&b, "- command: `%s`\n", m.Command)
	fmt.Fprintf(&b, "- %d repetition(s); figures are medians over them. Server, load generator and publisher share the machine's %d cores; all traffic on 127.0.0.0/8.\n", cfg.repeat, m.Cores)
	fmt.Fprintf(&b, "- ratio = ours' advantage: Node/ours for lower-is-better figures, ours/Node for higher-is-better; > 1 means ours is better.\n\n")

	ag := aggregate(results)
	for _, s := range scenarioOrder {
		a := ag[s]
		if a == nil {
			continue
		}
		fmt.Fprintf(&b, "## %s\n\n", scenarioTitles[s])
		fmt.Fprintf(&b, "| metric | ours | Node | ratio |\n|---|---:|---:|---:|\n")
		for _, k := range a.keys {
			mi := metricInfo(k)
			o, okO := a.med[kindOurs][k]
			n, okN := a.med[kindNode][k]
			unit := ""
			if mi.unit != "" {
				unit = " (" + mi.unit + ")"
			}
			fo, fn, fr := "–", "–", ""
			if okO {
				fo = format(o, mi.prec)
			}
			if okN {
				fn = format(n, mi.prec)
			}
			if okO && okN {
				if rt, ok := ratio(mi, o, n); ok {
					fr = fmt.Sprintf("%.2f×", rt)
				}
			}
			fmt.Fprintf(&b, "| %s%s | %s | %s | %s |\n", mi.label, unit, fo, fn, fr)
		}
		fmt.Fprintf(&b, "\n")
		if len(a.notes) > 0 {
			for _, n := range dedupe(a.notes) {
				fmt.Fprintf(&b, "- %s\n", n)
			}
			fmt.Fprintf(&b, "\n")
		}
	}
	b.WriteString(targets(ag, results))
	b.WriteString(rampTables(results))
	var errs []string
	for _, r := range results {
		if r.Scenario == "error" {
			errs = append(errs, r.Notes...)
		}
	}
	if len(errs) > 0 {
		fmt.Fprintf(&b, "## Errors\n\n")
		for _, e := range errs {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
		fmt.Fprintf(&b, "\n")
	}
	return b.String()
}

// targets checks the targets against the medians.
func targets(ag map[string]*agg, results []Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Targets (issue 6)\n\n")
	fmt.Fprintf(&b, "measured = the ratio of the medians; per run = the ratio within each repetition.\n\n")
	fmt.Fprintf(&b, "| target | ours | Node | needed | measured | per run | verdict |\n|---|---:|---:|---:|---:|---:|---|\n")
	// perRun lists the ratio of metric k within each repetition.
	perRun := func(s, k string) string {
		vals := map[int]map[string]float64{}
		for _, r := range results {
			if r.Scenario != s {
				continue
			}
			if v, ok := r.M[k]; ok {
				if vals[r.Rep] == nil {
					vals[r.Rep] = map[string]float64{}
				}
				vals[r.Rep][r.Server] = v
			}
		}
		var reps []int
		for rep := range vals {
			reps = append(reps, rep)
		}
		sort.Ints(reps)
		var out []string
		for _, rep := range reps {
			o, ok1 := vals[rep][kindOurs]
			n, ok2 := vals[rep][kindNode]
			if !ok1 || !ok2 {
				continue
			}
			if rt, ok := ratio(metricInfo(k), o, n); ok {
				out = append(out, fmt.Sprintf("%.1f×", rt))
			}
		}
		return strings.Join(out, ", ")
	}
	get := func(s, srv, k string) (float64, bool) {
		a := ag[s]
		if a == nil {
			return 0, false
		}
		v, ok := a.med[srv][k]
		return v, ok
	}
	row := func(name, s, k string, need float64) {
		o, ok1 := get(s, kindOurs, k)
		n, ok2 := get(s, kindNode, k)
		if !ok1 || !ok2 {
			return
		}
		mi := metricInfo(k)
		rt, ok := ratio(mi, o, n)
		if !ok {
			return
		}
		verdict := "**met**"
		if rt < need {
			verdict = "**MISSED**"
		}
		lb := ""
		if v, _ := get(s, kindOurs, "sat_lower_bound"); v > 0 && strings.HasPrefix(k, "sat_") {
			lb = "≥ "
			if rt < need {
				verdict = "not shown (ours not saturated: lower bound)"
			}
		}
		fmt.Fprintf(&b, "| %s | %s %s | %s %s | ≥ %.0f× | %s%.2f× | %s | %s |\n", name, format(o, mi.prec), mi.unit, format(n, mi.prec), mi.unit, need, lb, rt, perRun(s, k), verdict)
	}
	for _, k := range sortedKeys(ag["idle"], "rss_kb_per_conn@") {
		row("idle memory per connection ≤ 1/3 of Node's ("+strings.TrimPrefix(metricInfo(k).label, "RSS per idle connection ")+")", "idle", k, 3)
	}
	if o, ok := get("idle", kindOurs, "projected_rss_mb@100000"); ok {
		verdict := "**met** (projection)"
		if o >= 1024 {
			verdict = "**MISSED** (projection)"
		}
		n, _ := get("idle", kindNode, "projected_rss_mb@100000")
		var runs []string
		for _, r := range results {
			if r.Scenario == "idle" && r.Server == kindOurs {
				if v, ok := r.M["projected_rss_mb@100000"]; ok {
					runs = append(runs, fmt.Sprintf("%.0f MB", v))
				}
			}
		}
		fmt.Fprintf(&b, "| 100,000 connections in < 1 GB RSS (projected from the measured cost per connection) | %.0f MB | %.0f MB | < 1024 MB | %.0f MB | %s | %s |\n", o, n, o, strings.Join(runs, ", "), verdict)
	}
	row("fan-out saturation ≥ 5× Node's, one organization", "fanout-one-org", "sat_deliveries_sec", 5)
	row("fan-out saturation ≥ 5× Node's, many organizations", "fanout-many-orgs", "sat_deliveries_sec", 5)
	row("p99 at Node's saturation rate ≤ 1/5 of Node's, one organization", "fanout-one-org", "at_node_sat_p99_ms", 5)
	row("p99 at Node's saturation rate ≤ 1/5 of Node's, many organizations", "fanout-many-orgs", "at_node_sat_p99_ms", 5)
	row("connect rate with JWT ≥ 3× Node's (reconnection storm)", "storm", "storm_per_sec", 3)
	row("connect rate with JWT ≥ 3× Node's (ramp-up, bounded concurrency)", "idle", "connect_per_sec", 3)
	row("server CPU per JWT handshake (storm): ours' advantage ≥ 3×", "storm", "storm_cpu_us", 3)
	fmt.Fprintf(&b, "\n")
	return b.String()
}

func sortedKeys(a *agg, prefix string) []string {
	if a == nil {
		return nil
	}
	var out []string
	for _, k := range a.keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// rampTables lists every fan-out step of the last repetition.
func rampTables(results []Result) string {
	var b strings.Builder
	last := map[string]Result{}
	for _, r := range results {
		if len(r.Steps) > 0 {
			last[r.Scenario+"/"+r.Server] = r
		}
	}
	if len(last) == 0 {
		return ""
	}
	keys := make([]string, 0, len(last))
	for k := range last {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(&b, "## Fan-out steps (last repetition)\n\n")
	for _, k := range keys {
		r := last[k]
		fmt.Fprintf(&b, "### %s, %s (run %d)\n\n", r.Scenario, r.Server, r.Rep)
		fmt.Fprintf(&b, "| events/s | deliveries/s | p50 ms | p99 ms | max ms | lost | closed | server µs CPU/delivery | server cores | generator cores | verdict |\n")
		fmt.Fprintf(&b, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, s := range r.Steps {
			v := "pass"
			if !s.Pass {
				v = "fail: " + s.Why
			}
			fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.1f | %d | %d | %.2f | %.2f | %.2f | %s |\n", format(s.Rate, 1),
				thousands(s.PerSec), s.P50, s.P99, s.Max, s.Lost, s.Closed, s.CPUPerDeliv, s.ServerCores, s.GenCores, v)
		}
		fmt.Fprintf(&b, "\n")
	}
	return b.String()
}

func format(v float64, prec int) string {
	if math.Abs(v) >= 1000 && prec <= 1 {
		return thousands(v)
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// thousands formats v rounded, with thousands separators.
func thousands(v float64) string {
	neg := v < 0
	s := strconv.FormatInt(int64(math.Round(math.Abs(v))), 10)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
