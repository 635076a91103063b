package main

import (
	"fmt"
	"math"
	"slices"
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
	case "conns_upgraded":
		return metric{"of which upgraded from long-polling" + lv, "", 0, 0}
	case "conns_polling":
		return metric{"of which long-polling" + lv, "", 0, 0}
	case "idle_cpu_pct":
		return metric{"server CPU while holding them idle" + lv + " (heartbeats)", "% of a core", -1, 1}
	case "idle_disconnects":
		return metric{"connections closed by the server while held idle", "", -1, 0}
	case "idle_s":
		return metric{"idle between connecting and the first publication", "s", 0, 0}
	case "announced_heartbeat_s":
		return metric{"heartbeat the server announced (ping interval + timeout): not covered by the idle", "s", 0, 1}
	case "after_idle_lost":
		return metric{"deliveries lost in the publication after the idle", "", -1, 0}
	case "after_idle_disconnects":
		return metric{"connections closed during the idle and that publication", "", -1, 0}
	case "after_idle_publish_errors":
		return metric{"publish requests refused after the idle", "", -1, 0}
	case "after_idle_p99_ms":
		return metric{"latency p99 of the publication after the idle", "ms", 0, 1}
	case "burst_disconnects":
		return metric{"connections closed during the bursts", "", -1, 0}
	case "ramp_lost":
		return metric{"deliveries lost at the failing steps (overload)", "", 0, 0}
	case "ramp_disconnects":
		return metric{"connections closed at the failing steps (overload)", "", 0, 0}
	case "below_sat_lost":
		return metric{"deliveries lost below the saturation rate", "", -1, 0}
	case "below_sat_disconnects":
		return metric{"connections closed below the saturation rate", "", -1, 0}
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
		return metric{"lost deliveries, all bursts", "", -1, 0}
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
	case "low_rate":
		return metric{"the ramp's first publish rate", "events/s", 0, 1}
	case "low_rate_p99_ms":
		return metric{"latency p99 at the ramp's first rate", "ms", -1, 1}
	case "runnable":
		return metric{"cross-node delivery works", "", +1, 0}
	case "history_rate":
		return metric{"publish rate, over all organizations", "events/s", 0, 0}
	case "classic_cpu_us_per_event":
		return metric{"classic adapter: CPU per published event, both servers + Redis", "µs", -1, 1}
	case "streams_cpu_us_per_event":
		return metric{"streams adapter: CPU per published event, both servers + Redis", "µs", -1, 1}
	case "classic_idle_pct":
		return metric{"classic adapter: CPU of the cluster at rest (heartbeats)", "% of a core", -1, 1}
	case "streams_idle_pct":
		return metric{"streams adapter: CPU of the cluster at rest (heartbeats, blocking XREADs)", "% of a core", -1, 1}
	case "classic_net_cpu_us_per_event":
		return metric{"classic adapter: CPU per event beyond the CPU at rest", "µs", -1, 1}
	case "streams_net_cpu_us_per_event":
		return metric{"streams adapter: CPU per event beyond the CPU at rest", "µs", -1, 1}
	case "history_cpu_us_per_event":
		return metric{"history's cost: streams minus classic, per event, beyond the CPU at rest", "µs", -1, 1}
	case "streams_over_classic_cpu":
		return metric{"streams CPU / classic CPU per event, beyond the CPU at rest", "×", -1, 2}
	case "classic_redis_cpu_us_per_event":
		return metric{"classic adapter: Redis CPU per event", "µs", -1, 1}
	case "streams_redis_cpu_us_per_event":
		return metric{"streams adapter: Redis CPU per event", "µs", -1, 1}
	case "classic_redis_cmds_per_event":
		return metric{"classic adapter: Redis commands per event", "", -1, 2}
	case "streams_redis_cmds_per_event":
		return metric{"streams adapter: Redis commands per event", "", -1, 2}
	case "classic_p99_ms":
		return metric{"classic adapter: latency p99", "ms", -1, 1}
	case "streams_p99_ms":
		return metric{"streams adapter: latency p99", "ms", -1, 1}
	case "history_lost":
		return metric{"deliveries lost in these steps", "", -1, 0}
	case "missed_per_client":
		return metric{"events each client missed while away", "", 0, 0}
	case "exit_ms":
		return metric{"node A's exit after the signal", "ms", 0, 0}
	case "recovery_s":
		return metric{"time until every client is back (reconnected, missed events replayed)", "s", -1, 2}
	case "recovery_p50_ms":
		return metric{"reconnection p50 (TCP connect to CONNECT reply, replay included)", "ms", -1, 0}
	case "recovery_p99_ms":
		return metric{"reconnection p99", "ms", -1, 0}
	case "recovered":
		return metric{"clients recovered (same session, missed events replayed)", "", +1, 0}
	case "not_recovered":
		return metric{"clients not recovered (a new session)", "", -1, 0}
	case "gaps":
		return metric{"of which told so with history:gap (ours only)", "", 0, 0}
	case "failed":
		return metric{"clients that could not reconnect", "", -1, 0}
	case "replayed":
		return metric{"missed events replayed", "", +1, 0}
	case "replay_missing":
		return metric{"missed events of recovered clients not replayed", "", -1, 0}
	case "storm_server_cpu_ms":
		return metric{"node B CPU during the storm", "ms", -1, 0}
	case "storm_server_cpu_us_per_client":
		return metric{"node B CPU per reconnecting client", "µs", -1, 0}
	case "storm_redis_cpu_ms":
		return metric{"Redis CPU during the storm", "ms", -1, 0}
	case "storm_redis_cmds":
		return metric{"Redis commands during the storm", "", -1, 0}
	case "storm_redis_cmds_per_client":
		return metric{"Redis commands per reconnecting client", "", -1, 2}
	case "storm_redis_cmds_per_replayed":
		return metric{"Redis commands per replayed event", "", -1, 2}
	}
	for _, peer := range peerKinds {
		at := "at " + peerName(peer) + "'s saturation rate"
		switch base {
		case "at_" + peer + "_sat_rate":
			return metric{peerName(peer) + "'s saturation rate", "events/s", 0, 1}
		case "at_" + peer + "_sat_p50_ms":
			return metric{"latency p50 " + at, "ms", -1, 1}
		case "at_" + peer + "_sat_p99_ms":
			return metric{"latency p99 " + at, "ms", -1, 1}
		case "at_" + peer + "_sat_cpu_us":
			return metric{"server CPU per delivery " + at, "µs", -1, 2}
		}
	}
	return metric{key, "", 0, 2}
}

// peerName is how the report names a server kind.
func peerName(kind string) string {
	switch kind {
	case kindNode:
		return "Node"
	case kindCentrifugo:
		return "Centrifugo"
	case kindOurs:
		return "ours"
	}
	return kind
}

// serversIn are the server kinds that have results, in the report's
// order (ours, Node, Centrifugo), and the peers among them.
func serversIn(results []Result) (servers, peers []string) {
	for _, k := range allKinds {
		for _, r := range results {
			if r.Server == k {
				servers = append(servers, k)
				if k != kindOurs {
					peers = append(peers, k)
				}
				break
			}
		}
	}
	return servers, peers
}

var scenarioTitles = map[string]string{
	"idle":                   "1. Idle connections",
	"storm":                  "4. Handshake storm (every client reconnects at once)",
	"fanout-one-org":         "2a. Fan-out, one organization",
	"fanout-many-orgs":       "2b. Fan-out, many organizations",
	"burst":                  "3. Bursts",
	"redis":                  "5. Cross-node through Redis",
	scenStreamsHistory:       "6a. Redis Streams: what history costs per published event (streams vs classic adapter, same rate)",
	scenStreamsFanout:        "6b. Redis Streams: fan-out over many organizations, two servers",
	scenStreamsFanoutClassic: "6b'. Classic Redis adapter: the same fan-out, for reference",
	scenStreamsRecovery:      "6c. Redis Streams: recovery storm after a node's graceful restart (SIGTERM), every client to the other node at once",
	scenStreamsRecoveryKill:  "6d. Redis Streams: recovery storm after a node's crash (SIGKILL)",
}

var scenarioOrder = []string{"idle", "fanout-one-org", "fanout-many-orgs", "burst", "storm", "redis",
	scenStreamsHistory, scenStreamsFanout, scenStreamsFanoutClassic, scenStreamsRecovery, scenStreamsRecoveryKill}

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
				if summed[k] {
					a.med[srv][k] = sumAbs(v)
				} else {
					a.med[srv][k] = median(v)
				}
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
	"clients", "orgs", "room", "events", "idle_s", "announced", "after_idle_lost", "after_idle_disconnects",
	"after_idle_publish", "after_idle_p99", "server_processes", "conns", "idle_disconnects", "idle_cpu", "rss_base", "rss_mb", "rss_kb_per_conn", "rss_kb_marginal", "projected",
	"goroutines", "go_", "connect_per_sec", "connect_cpu", "connect_gen", "connect_p", "storm_concurrent", "storm_per_sec", "storm_cpu", "storm_gen", "storm_p",
	"storm_max", "storm_failed", "sat_deliveries", "sat_rate", "sat_p50", "sat_p99", "sat_max", "sat_cpu", "sat_server",
	"sat_generator", "sat_lower", "fail_rate", "at_node_sat_rate", "at_node_sat_p50", "at_node_sat_p99", "at_node_sat_cpu",
	"at_centrifugo_sat_rate", "at_centrifugo_sat_p50", "at_centrifugo_sat_p99", "at_centrifugo_sat_cpu",
	"low_rate", "burst_done", "burst_deliveries", "burst_p50", "burst_p99", "burst_max", "burst_cpu", "burst_lost", "burst_disconnects",
	"below_sat", "ramp_", "runnable",
	"history_rate", "classic_idle", "streams_idle", "classic_cpu", "streams_cpu", "classic_net", "streams_net", "history_cpu", "streams_over", "classic_redis_cpu", "streams_redis_cpu",
	"classic_redis_cmds", "streams_redis_cmds", "classic_p99", "streams_p99", "history_lost",
	"missed_per_client", "exit_ms", "recovery_s", "recovered", "not_recovered", "gaps", "failed", "replayed", "replay_missing",
	"recovery_p", "storm_server_cpu_ms", "storm_server_cpu_us", "storm_redis_cpu", "storm_redis_cmds_per_client", "storm_redis_cmds_per_replayed", "storm_redis_cmds",
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

// ratio is ours' advantage over a peer: > 1 means ours is better.
func ratio(m metric, ours, node float64) (float64, bool) {
	switch {
	case m.better > 0 && node > 0:
		return ours / node, true
	case m.better < 0 && ours > 0:
		return node / ours, true
	}
	return 0, false
}

func buildReport(rf resultsFile) string {
	m, results := rf.Machine, rf.Results
	var b strings.Builder
	mode := "quick"
	if rf.Full {
		mode = "full"
	}
	servers, peers := serversIn(results)
	var names []string
	for _, p := range peers {
		names = append(names, peerDescription(p))
	}
	if len(names) == 0 {
		names = []string{"no peer"}
	}
	fmt.Fprintf(&b, "# realtime-bench: ours vs %s (%s run)\n\n", strings.Join(names, " and "), mode)
	fmt.Fprintf(&b, "- machine: %d × %s, %d GiB RAM, Linux %s, open files %s per process\n", m.Cores, m.CPU, m.MemGiB, m.Kernel, m.NoFile)
	fmt.Fprintf(&b, "- software: %s (ours: the `realtime` binary), Node %s (bench/node: socket.io 4.8.4, jsonwebtoken 9.0.3)", m.Go, m.Node)
	if m.Centrifugo != "" {
		fmt.Fprintf(&b, ", Centrifugo (`%s`)", m.Centrifugo)
	}
	fmt.Fprintf(&b, "\n")
	fmt.Fprintf(&b, "- load average at start %s, at end %s; run took %s; started %s\n", m.LoadStart, m.LoadEnd, m.Duration, m.Started)
	fmt.Fprintf(&b, "- command: `%s`\n", m.Command)
	fmt.Fprintf(&b, "- %d repetition(s); figures are medians over them, except counts of lost events and disconnects, which are sums. Servers run one at a time; server, load generator and publisher share the machine's %d cores; all traffic on 127.0.0.0/8.\n", rf.Repeat, m.Cores)
	fmt.Fprintf(&b, "- ratio = ours' advantage over the peer: peer/ours for lower-is-better figures, ours/peer for higher-is-better; > 1 means ours is better.\n")
	b.WriteString(rf.Clients.describe())
	if slices.Contains(peers, kindCentrifugo) {
		b.WriteString("- Centrifugo's clients all connect over WebSocket with its JSON protocol (it has no long-polling transport): the long-polling shares above apply to ours and Node only. Its tokens carry a `channels` claim (server-side subscription to org:<orgId>); events go through its HTTP API (`/api/batch`, one publish command per event). In the fan-out sessions it runs on the same ping interval, with its own pong timeout (its default 8 s, or half the interval when that is shorter: Centrifugo requires it below the interval).\n")
	}
	b.WriteString("\n")

	b.WriteString(lossesSection(rf.Clients, results))
	ag := aggregate(results)
	for _, s := range scenarioOrder {
		a := ag[s]
		if a == nil {
			continue
		}
		title := scenarioTitles[s]
		var marks []string
		for _, srv := range servers {
			if lost, disc, _ := unexpected(s, srv, results); lost != 0 || disc != 0 {
				marks = append(marks, fmt.Sprintf("%s: %s lost, %s disconnects", srv, thousands(float64(lost)), thousands(float64(disc))))
			}
		}
		if len(marks) > 0 {
			title += " — LOST EVENTS OR DISCONNECTS (" + strings.Join(marks, "; ") + ")"
		}
		fmt.Fprintf(&b, "## %s\n\n", title)
		head, rule := "| metric |", "|---|"
		for _, srv := range servers {
			head += " " + peerName(srv) + " |"
			rule += "---:|"
		}
		for _, p := range peers {
			if len(peers) == 1 {
				head += " ratio |"
			} else {
				head += " ours/" + peerName(p) + " |"
			}
			rule += "---:|"
		}
		fmt.Fprintf(&b, "%s\n%s\n", head, rule)
		for _, k := range a.keys {
			mi := metricInfo(k)
			unit := ""
			if mi.unit != "" {
				unit = " (" + mi.unit + ")"
			}
			row := fmt.Sprintf("| %s%s |", mi.label, unit)
			for _, srv := range servers {
				v, ok := a.med[srv][k]
				if ok {
					row += " " + format(v, mi.prec) + " |"
				} else {
					row += " – |"
				}
			}
			o, okO := a.med[kindOurs][k]
			for _, p := range peers {
				fr := ""
				if n, okN := a.med[p][k]; okO && okN && !summed[k] {
					if rt, ok := ratio(mi, o, n); ok {
						fr = fmt.Sprintf("%.2f×", rt)
					}
				}
				row += " " + fr + " |"
			}
			fmt.Fprintf(&b, "%s\n", row)
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

// peerDescription names a peer and its version in the report's title.
func peerDescription(kind string) string {
	switch kind {
	case kindNode:
		return "Node socket.io 4.8.4"
	case kindCentrifugo:
		return "Centrifugo " + centrifugoVersion
	}
	return kind
}

// targets checks the issues' targets against the medians: issue 6's
// against Node, issue 14's against Centrifugo (and Node's memory).
func targets(ag map[string]*agg, results []Result) string {
	var b strings.Builder
	// perRun lists the ratio of metric k to peer's within each repetition.
	perRun := func(s, k, peer string) string {
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
			n, ok2 := vals[rep][peer]
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
	// row is a target on ours' ratio to peer's figure.
	row := func(name, s, k string, need float64, peer string) {
		o, ok1 := get(s, kindOurs, k)
		n, ok2 := get(s, peer, k)
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
		fmt.Fprintf(&b, "| %s | %s %s | %s %s | ≥ %s× | %s%.2f× | %s | %s |\n", name, format(o, mi.prec), mi.unit, format(n, mi.prec), mi.unit,
			strconv.FormatFloat(need, 'f', -1, 64), lb, rt, perRun(s, k, peer), verdict)
	}
	// below is a target on ours' own figure (lower is better).
	below := func(name, s, k string, limit float64, peer string) {
		o, ok := get(s, kindOurs, k)
		if !ok {
			return
		}
		mi := metricInfo(k)
		n := "–"
		if v, ok := get(s, peer, k); ok {
			n = format(v, mi.prec) + " " + mi.unit
		}
		verdict := "**met**"
		if o >= limit {
			verdict = "**MISSED**"
		}
		fmt.Fprintf(&b, "| %s | %s %s | %s | < %s %s | %s %s | | %s |\n", name, format(o, mi.prec), mi.unit, n, format(limit, mi.prec), mi.unit,
			format(o, mi.prec), mi.unit, verdict)
	}
	header := func(title, peer string) {
		fmt.Fprintf(&b, "## %s\n\n", title)
		fmt.Fprintf(&b, "measured = the ratio of the medians; per run = the ratio within each repetition.\n\n")
		fmt.Fprintf(&b, "| target | ours | %s | needed | measured | per run | verdict |\n|---|---:|---:|---:|---:|---:|---|\n", peerName(peer))
	}

	_, peers := serversIn(results)
	if slices.Contains(peers, kindNode) {
		header("Targets (issue 6)", kindNode)
		for _, k := range sortedKeys(ag["idle"], "rss_kb_per_conn@") {
			row("idle memory per connection ≤ 1/3 of Node's ("+strings.TrimPrefix(metricInfo(k).label, "RSS per idle connection ")+")", "idle", k, 3, kindNode)
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
		row("fan-out saturation ≥ 5× Node's, one organization", "fanout-one-org", "sat_deliveries_sec", 5, kindNode)
		row("fan-out saturation ≥ 5× Node's, many organizations", "fanout-many-orgs", "sat_deliveries_sec", 5, kindNode)
		row("p99 at Node's saturation rate ≤ 1/5 of Node's, one organization", "fanout-one-org", "at_node_sat_p99_ms", 5, kindNode)
		row("p99 at Node's saturation rate ≤ 1/5 of Node's, many organizations", "fanout-many-orgs", "at_node_sat_p99_ms", 5, kindNode)
		row("connect rate with JWT ≥ 3× Node's (reconnection storm)", "storm", "storm_per_sec", 3, kindNode)
		row("connect rate with JWT ≥ 3× Node's (ramp-up, bounded concurrency)", "idle", "connect_per_sec", 3, kindNode)
		row("server CPU per JWT handshake (storm): ours' advantage ≥ 3×", "storm", "storm_cpu_us", 3, kindNode)
		fmt.Fprintf(&b, "\n")
	}
	if slices.Contains(peers, kindCentrifugo) {
		header("Targets (issue 14)", kindCentrifugo)
		row("reconnection storm rate ≥ 1.5× Centrifugo's", "storm", "storm_per_sec", 1.5, kindCentrifugo)
		row("connect rate ≥ 1.5× Centrifugo's (ramp-up, bounded concurrency)", "idle", "connect_per_sec", 1.5, kindCentrifugo)
		below("server CPU per JWT handshake (storm) ≤ 0.2 ms", "storm", "storm_cpu_us", 200.5, kindCentrifugo)
		below("p99 of one event to one organization at the ramp's first rate < 50 ms", "fanout-one-org", "low_rate_p99_ms", 50, kindCentrifugo)
		if slices.Contains(peers, kindNode) {
			for _, k := range sortedKeys(ag["idle"], "rss_kb_per_conn@") {
				row("idle memory per connection ≤ 1/5 of Node's ("+strings.TrimPrefix(metricInfo(k).label, "RSS per idle connection ")+"; vs Node)", "idle", k, 5, kindNode)
			}
		}
		fmt.Fprintf(&b, "\n")
	}
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

// ---- lost events and disconnects ---------------------------------------------------------------------

// summed are the counts of lost events and disconnects: summed over
// repetitions (a loss in one run must not vanish in a median) and never
// turned into a ratio.
var summed = map[string]bool{
	"idle_disconnects":          true,
	"after_idle_lost":           true,
	"after_idle_disconnects":    true,
	"after_idle_publish_errors": true,
	"burst_lost":                true,
	"burst_disconnects":         true,
	"below_sat_lost":            true,
	"below_sat_disconnects":     true,
	"ramp_lost":                 true,
	"ramp_disconnects":          true,
}

// unexpectedLost and unexpectedDisconnects are the counts that must be
// zero for a well-behaved client population: everything but the losses at
// the failing steps of a ramp, which are the overload that defines
// saturation. Each key comes with where it was counted, for the report.
var (
	unexpectedLost = []struct{ key, where string }{
		{"after_idle_lost", "after the idle"},
		{"burst_lost", "in the bursts"},
		{"below_sat_lost", "below the saturation rate"},
	}
	unexpectedDisconnects = []struct{ key, where string }{
		{"idle_disconnects", "held idle"},
		{"after_idle_disconnects", "during and after the idle"},
		{"after_idle_publish_errors", "publish errors after the idle"},
		{"burst_disconnects", "in the bursts"},
		{"below_sat_disconnects", "below the saturation rate"},
	}
)

// countsLosses reports whether r counted lost events or disconnects (the
// storm does not: it only reconnects).
func countsLosses(r Result) bool {
	for k := range r.M {
		if summed[k] {
			return true
		}
	}
	return false
}

func sumAbs(v []float64) float64 {
	var t float64
	for _, x := range v {
		t += math.Abs(x)
	}
	return t
}

// unexpected sums, over the repetitions of scenario s on server srv, the
// events lost and the connections closed where nothing may be, and says
// where they were counted.
func unexpected(s, srv string, results []Result) (lost, disconnects int64, where []string) {
	byKey := map[string]float64{}
	for _, r := range results {
		if r.Scenario == s && r.Server == srv {
			for k, v := range r.M {
				if summed[k] {
					byKey[k] += math.Abs(v)
				}
			}
		}
	}
	for _, u := range unexpectedLost {
		if v := int64(byKey[u.key]); v != 0 {
			lost += v
			where = append(where, fmt.Sprintf("%s lost %s", thousands(float64(v)), u.where))
		}
	}
	for _, u := range unexpectedDisconnects {
		if v := int64(byKey[u.key]); v != 0 {
			disconnects += v
			where = append(where, fmt.Sprintf("%s %s", thousands(float64(v)), u.where))
		}
	}
	return lost, disconnects, where
}

// unexpectedLosses lists the scenarios with unexpected losses or
// disconnects, one line each.
func unexpectedLosses(results []Result) []string {
	var out []string
	for _, s := range scenarioOrder {
		for _, srv := range allKinds {
			if lost, disc, where := unexpected(s, srv, results); lost != 0 || disc != 0 {
				out = append(out, fmt.Sprintf("%s/%s: %s events lost, %s disconnects (%s)", s, srv,
					thousands(float64(lost)), thousands(float64(disc)), strings.Join(where, ", ")))
			}
		}
	}
	return out
}

// lossError ends a run whose report shows unexpected losses.
type lossError struct{ scenarios []string }

func (e *lossError) Error() string {
	return "LOST EVENTS OR DISCONNECTS where there must be none:\n  " + strings.Join(e.scenarios, "\n  ")
}

// describe is the report's header line on how the clients connected and
// how long they idled.
func (c clientSetup) describe() string {
	if c.PingInterval == 0 {
		return "" // a results.json from before these fields
	}
	ws := 100 - c.PollingPercent - c.UpgradePercent
	return fmt.Sprintf("- clients: %d %% long-polling then upgrade to WebSocket (socket.io-client's default, as every browser connects), "+
		"%d %% straight to WebSocket, %d %% long-polling only. Fan-out sessions (fan-out, bursts, Redis): the servers on a ping interval of %v "+
		"and a ping timeout of %v, our write timeout %v; the clients idle %v after connecting (longer than every one of those timeouts), "+
		"then one publication counts what arrived. The idle and storm scenarios run on the servers' default heartbeat (%v, %v).\n",
		c.UpgradePercent, ws, c.PollingPercent, c.PingInterval, c.PingTimeout, c.WriteTimeout, c.Idle, defaultPingInterval, defaultPingTimeout)
}

// lossesSection is the report's table of lost events and disconnects per
// scenario and server, first, so that a loss is the first thing read.
func lossesSection(cs clientSetup, results []Result) string {
	var b strings.Builder
	type row struct{ s, srv string }
	var rows []row
	seen := map[row]bool{}
	for _, s := range scenarioOrder {
		for _, srv := range allKinds {
			for _, r := range results {
				if rw := (row{s, srv}); r.Scenario == s && r.Server == srv && !seen[rw] && countsLosses(r) {
					seen[rw] = true
					rows = append(rows, rw)
				}
			}
		}
	}
	if len(rows) == 0 {
		return ""
	}
	fmt.Fprintf(&b, "## Lost events and disconnects\n\n")
	fmt.Fprintf(&b, "Nothing may be lost and no connection closed while clients idle (the idle scenario's hold; each fan-out session's idle of %v and the publication after it), in the bursts, or at a publish rate below saturation. The failing steps of a ramp are the overload that defines saturation: their losses are listed apart. Sums over all repetitions.\n\n", cs.Idle)
	fmt.Fprintf(&b, "| scenario | server | lost | disconnects | where | at failing steps (overload): lost / closed | verdict |\n|---|---|---:|---:|---|---:|---|\n")
	for _, rw := range rows {
		lost, disc, where := unexpected(rw.s, rw.srv, results)
		var rl, rd float64
		ramp := false
		for _, r := range results {
			if r.Scenario == rw.s && r.Server == rw.srv {
				if v, ok := r.M["ramp_lost"]; ok {
					ramp = true
					rl += v
					rd += r.M["ramp_disconnects"]
				}
			}
		}
		over := "–"
		if ramp {
			over = thousands(rl) + " / " + thousands(rd)
		}
		verdict := "ok"
		if lost != 0 || disc != 0 {
			verdict = "**LOSSES**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", scenarioTitles[rw.s], rw.srv, thousands(float64(lost)),
			thousands(float64(disc)), strings.Join(where, ", "), over, verdict)
	}
	fmt.Fprintf(&b, "\n")
	return b.String()
}
