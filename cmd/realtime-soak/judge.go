package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Record is one line of tests/node/soak-clients.mjs: something a client
// saw. TS is the client's clock (Date.now(), milliseconds), the same clock
// as the orchestrator's on one machine.
type Record struct {
	T      string `json:"t"` // connect, disconnect, cerr, upgrade, ev, gap, expiring, expired, refreshed
	C      int    `json:"c"`
	TS     int64  `json:"ts"`
	Rec    bool   `json:"rec"`    // connect: socket.recovered
	Tr     string `json:"tr"`     // connect, upgrade: the transport
	Reason string `json:"reason"` // disconnect, gap
	Desc   string `json:"desc"`   // disconnect
	Msg    string `json:"msg"`    // cerr
	N      string `json:"n"`      // ev: the event's name
	O      string `json:"o"`      // ev: the payload's organizationId
	U      string `json:"u"`      // ev: the payload's userId (notifications)
	S      int    `json:"s"`      // ev: the payload's seq (its organization's, or its user's for a notification)
	OK     bool   `json:"ok"`     // refreshed
	Err    string `json:"err"`    // refreshed
	Exp    string `json:"exp"`    // expiring, expired, refreshed: the token's expiry (RFC 3339)
	Max    int64  `json:"max"`    // lag: the event loop's worst delay (ms)
	Took   int64  `json:"took"`   // upgrade: ms since the probe transport was created
	From   string `json:"from"`   // gap
	// Off: expiring, expired, gap: the notice carried a recovery offset
	// (one more, last, string argument), i.e. it was logged and a later
	// recovery could replay it to another connection.
	Off bool `json:"off"`
}

// Client is one socket of the population and what it saw, in order.
type Client struct {
	ID      int
	Org     string
	User    string // every client is a user of its own
	Mode    string // default, polling, websocket
	Records []Record
}

// FaultKind says what the orchestrator did.
type FaultKind string

// The faults, and the restart, that explain a disconnection.
const (
	FaultCut     FaultKind = "cut"     // every connection of the hit clients reset
	FaultStall   FaultKind = "stall"   // the hit clients' connections silent until End
	FaultRefuse  FaultKind = "refuse"  // new connections reset from Start to End
	FaultRestart FaultKind = "restart" // the server stopped at Start, listening again at End
	FaultKill    FaultKind = "kill"    // the node the hit clients were on killed (SIGKILL) at Start, dead at End
)

// Fault is one injected fault.
type Fault struct {
	Kind       FaultKind
	Start, End time.Time
	// Hit are the clients the fault reached (their proxy had something to
	// cut, stall or refuse); nil means every client (the restart).
	Hit map[int]bool
}

func (f Fault) hits(c int) bool { return f.Hit == nil || f.Hit[c] }

// Publication is one published event: its organization's (or its user's)
// seq is its index plus one. At is when its POST started.
type Publication struct{ At time.Time }

// Sample is one reading of the server's figures.
type Sample struct {
	At         time.Time `json:"at"`
	Round      int       `json:"round"` // the readings of one round, one per node, share it
	Node       int       `json:"node"`
	Gen        int       `json:"gen"`    // which process of the node: 0, then 1 after its restart
	Steady     bool      `json:"steady"` // every client connected (over all nodes) in this round
	Conns      int       `json:"connections"`
	RSS        float64   `json:"rssBytes"`
	Goroutines float64   `json:"goroutines"`
	FDs        float64   `json:"openFiles"`
}

// JudgeParams are what the judge must know of the run.
type JudgeParams struct {
	// CutGrace: how soon after a cut (or the end of a refusal) the client
	// must notice it. A reset is seen at once, but a Node process runs
	// a thousand clients, and its event loop falls seconds behind while
	// thousands reconnect at once (the report shows by how much).
	CutGrace time.Duration
	// Heartbeat is PING_INTERVAL + PING_TIMEOUT: how long a client may take
	// to notice a connection that went silent.
	Heartbeat time.Duration
	// RestartLosesSessions: the server keeps its sessions in memory, so a
	// client reconnecting after the restart cannot be recovered (it must be
	// told with history:gap).
	RestartLosesSessions bool
	// UpgradeTimeout is the server's: how long it waits for a probe to
	// complete before it closes it.
	UpgradeTimeout time.Duration
	// ExpiryWarning is the server's TOKEN_EXPIRY_WARNING: how long before
	// a token's expiry its connection is warned (auth:expiring).
	ExpiryWarning time.Duration
	// Until: records after it (the orchestrator closing the clients) are
	// not judged.
	Until time.Time
	// Polling is how many clients poll (polling only, or default ones not
	// yet upgraded): each holds a goroutine and up to two descriptors in
	// the server only while a request is pending, so the floors may move
	// by that much without anything leaking.
	Polling int
}

// Verdict is the judge's answer.
type Verdict struct {
	Pass     bool     `json:"pass"`
	Failures []string `json:"failures"` // the first ones, with a client each
	// FailureCounts counts every failure by kind.
	FailureCounts map[string]int `json:"failureCounts"`

	Connects         int            `json:"connects"`
	Recovered        int            `json:"recovered"`
	NotRecovered     int            `json:"notRecovered"` // reconnections that came back afresh (with history:gap)
	Gaps             int            `json:"historyGaps"`
	ConnectErrors    int            `json:"connectErrors"`
	Upgrades         int            `json:"upgrades"`
	EventsReceived   int            `json:"eventsReceived"`
	EventsExcused    int            `json:"eventsExcused"` // missed before a fresh connection that said history:gap (or the first)
	Refreshes        int            `json:"tokenRefreshes"`
	RefreshRetries   int            `json:"tokenRefreshRetries"` // acks lost to a dropped connection, asked again
	Disconnects      int            `json:"disconnects"`
	DisconnectsBy    map[string]int `json:"disconnectsByCause"`    // "cut/transport close", "unexplained/transport close", ...
	UnexplainedByLag map[string]int `json:"unexplainedAfterFault"` // unexplained ones by seconds since the latest fault hitting the client
	// LateUpgrades are disconnections right after an upgrade the client
	// completed later than the server's upgrade timeout: the server had
	// closed the probe (as Node's engine.io does) before the client,
	// whose event loop was seconds behind, read that. The client's, not
	// the server's; counted apart, and listed in the report.
	LateUpgrades int `json:"lateUpgrades"`
	// ReplayedAuthNotices are auth:expiring and auth:expired received
	// within replayWindow of a recovered connection. Such notices were
	// once replayed old ones (a server finding, since fixed: they are
	// unlogged); a notice that carries an offset, which a replay would
	// need, fails the soak ("notice"), so what this counts now are live
	// notices to clients that came back inside their warning, judged like
	// any other (an expiry then is an away or stall expiry). Reported,
	// not failed.
	ReplayedAuthNotices int `json:"replayedAuthNotices"`
	// StallExpiries are tokens that expired while a stall kept their
	// warning from the client (the server then ends the connection).
	StallExpiries int `json:"stallExpiries"`
	// AwayExpiries are tokens that expired on a connection the client
	// opened less than the expiry warning before their expiry: it was away
	// (a fault) when the warning was due, and came back too late to
	// refresh (the server then ends the connection; the client connects
	// again with a new token, afresh).
	AwayExpiries int `json:"awayExpiries"`
	// ProbeErrors are failed upgrade probes; ProbeStuck the connections
	// that then went silent until their ping timeout, never upgraded.
	ProbeErrors       int      `json:"probeErrors"`
	ProbeStuck        int      `json:"probeStuck"`
	ResourceJudgement []string `json:"resources"`
}

// maxFailures is how many failures of each kind the verdict lists.
const maxFailures = 15

func (v *Verdict) fail(kind, format string, args ...any) {
	v.FailureCounts[kind]++
	if v.FailureCounts[kind] <= maxFailures {
		v.Failures = append(v.Failures, kind+": "+fmt.Sprintf(format, args...))
	}
}

// replayWindow is how soon after a recovered connection what it replays
// arrives.
const replayWindow = time.Second

// refreshAckTimeout is how long soak-clients.mjs waits for auth:refresh's
// ack.
const refreshAckTimeout = 10 * time.Second

// networkReasons are socket.io-client's reasons for a connection the
// network ended.
var networkReasons = []string{"transport close", "transport error", "ping timeout"}

// Judge checks what every client saw against what was published and done.
// It is a pure function of its arguments.
func Judge(clients []Client, pubs map[string][]Publication, faults []Fault, samples []Sample, p JudgeParams) Verdict {
	v := Verdict{FailureCounts: map[string]int{}, DisconnectsBy: map[string]int{}, UnexplainedByLag: map[string]int{}}
	until := p.Until.UnixMilli()
	for i := range clients {
		judgeClient(&v, &clients[i], pubs[clients[i].Org], pubs[clients[i].User], faults, p, until)
	}
	v.ResourceJudgement = judgeResources(&v, samples, p.Polling)
	v.Pass = len(v.FailureCounts) == 0
	return v
}

// fresh is a connection that did not recover a session: what was
// published before it connected may be missing, if the server said so.
type fresh struct {
	at    int64
	first bool // the client's first connection: nothing to recover
	gap   bool // history:gap received on it
}

// sequence is one numbered flow of events a client must receive whole,
// once, in order: its organization's, or its user's.
type sequence struct {
	key     string // the organization or user
	pubs    []Publication
	name    func(seq int) string // the event published with a seq
	last    int                  // the last seq received
	pending []fresh              // fresh connections since the last event of this sequence
}

// excused says whether seq, missing, may be: published before a fresh
// connection since the previous event, which was the first or told of the
// gap.
func (q *sequence) excused(seq int) bool {
	if seq < 1 || seq > len(q.pubs) {
		return false
	}
	at := q.pubs[seq-1].At.UnixMilli()
	for _, f := range q.pending {
		if at < f.at && (f.first || f.gap) {
			return true
		}
	}
	return false
}

// receive judges the event r of this sequence.
func (q *sequence) receive(v *Verdict, c *Client, r Record) {
	switch {
	case r.S < 1 || r.S > len(q.pubs):
		v.fail("unknown", "client %d received %s #%d of %s, never published (%d were)", c.ID, r.N, r.S, q.key, len(q.pubs))
		return
	case r.N != q.name(r.S):
		v.fail("unknown", "client %d received #%d of %s as %s, published as %s", c.ID, r.S, q.key, r.N, q.name(r.S))
	}
	switch {
	case r.S == q.last+1:
	case r.S <= q.last:
		v.fail("duplicate", "client %d received #%d of %s again (or late) after #%d, at %s", c.ID, r.S, q.key, q.last, clock(r.TS))
		return
	default:
		for seq := q.last + 1; seq < r.S; seq++ {
			if q.excused(seq) {
				v.EventsExcused++
			} else {
				v.fail("lost", "client %d (%s) of %s: #%d missing (received #%d after #%d at %s)", c.ID, c.Mode, q.key, seq, r.S, q.last, clock(r.TS))
			}
		}
	}
	q.last = r.S
	q.pending = nil
}

// end judges what the client never received of this sequence.
func (q *sequence) end(v *Verdict, c *Client) {
	for seq := q.last + 1; seq <= len(q.pubs); seq++ {
		if q.excused(seq) {
			v.EventsExcused++
		} else {
			v.fail("lost", "client %d (%s) of %s: #%d never received (the last it got: #%d)", c.ID, c.Mode, q.key, seq, q.last)
		}
	}
}

func judgeClient(v *Verdict, c *Client, orgPubs, userPubs []Publication, faults []Fault, p JudgeParams, until int64) {
	org := &sequence{key: c.Org, pubs: orgPubs, name: eventName}
	user := &sequence{key: c.User, pubs: userPubs, name: userEventName}
	var (
		connected  bool   // per the client
		connAt     int64  // when the current (or last) connection started
		connects   int    // connections so far
		changed    int64  // when the client last connected or disconnected
		upgrade    Record // the last upgrade since the last disconnection (it may come before the connect)
		recovered  bool   // the current connection recovered a session
		probeFail  bool   // a probe failed since the last disconnection
		expired    bool   // auth:expired arrived on the current connection
		away       bool   // ... on a connection opened too close to the token's expiry to be warned in time
		tokenEnded bool   // the session ended for its token since the last connect (refused as expired, or ended at the expiry): the next connection is afresh
	)
	// gapOn says whether the connection starting at record j is told of a
	// gap (history:gap may come after an event broadcast meanwhile).
	gapOn := func(j int) bool {
		for _, r := range c.Records[j+1:] {
			switch r.T {
			case "gap":
				return true
			case "connect", "disconnect":
				return false
			}
		}
		return false
	}
	for j, r := range c.Records {
		if r.TS > until {
			break
		}
		switch r.T {
		case "connect":
			v.Connects++
			if connected {
				v.fail("protocol", "client %d connected twice without a disconnect", c.ID)
			}
			connected = true
			switch {
			case connects == 0:
				if r.Rec {
					v.fail("recovery", "client %d: its first connection says recovered", c.ID)
				}
				org.pending = append(org.pending, fresh{at: r.TS, first: true})
				user.pending = append(user.pending, fresh{at: r.TS, first: true})
			case r.Rec:
				v.Recovered++
			default:
				v.NotRecovered++
				f := fresh{at: r.TS, gap: gapOn(j)}
				org.pending, user.pending = append(org.pending, f), append(user.pending, f)
				// A client that has received no event has no offset to
				// recover from (socket.io-client sends none): nothing to
				// recover. What it should have had is still judged.
				// Refused for an expired token, the client had lost its
				// session: the server ended it at the token's deadline
				// (while a stall kept the warning away), not recoverable.
				if (org.last > 0 || user.last > 0) && !tokenEnded && !(p.RestartLosesSessions && restartBetween(faults, connAt, r.TS)) {
					v.fail("recovery", "client %d (%s) reconnected at %s without recovering its session", c.ID, c.Mode, clock(r.TS))
				}
			}
			connects++
			connAt, changed, recovered, expired, away, tokenEnded = r.TS, r.TS, r.Rec, false, false, false
		case "gap":
			v.Gaps++
			if r.Off {
				v.fail("notice", "client %d received history:gap at %s carrying a recovery offset: a notice about one connection must never be logged (a recovery would replay it)", c.ID, clock(r.TS))
			}
			if connects < 2 {
				v.fail("recovery", "client %d: history:gap on its first connection", c.ID)
			}
		case "disconnect":
			v.Disconnects++
			connected, changed = false, r.TS
			cause, lag := explain(faults, c.ID, connAt, r.TS, r.Reason, p)
			switch {
			case cause != "unexplained":
			case r.Reason == "io server disconnect" && expired && stalledAround(faults, c.ID, r.TS, p):
				// Its token's deadline passed while the network was dead:
				// the warning could not reach it, the server ended the
				// connection, as it must, and with it the session: the next
				// connection, with a new token, is afresh.
				cause = "stall-expiry"
				tokenEnded = true
			case r.Reason == "io server disconnect" && away:
				// Likewise, the client having been away when it was warned;
				// the server ended the session: the next connection, with a
				// new token, is afresh.
				cause = "away-expiry"
				tokenEnded = true
			case r.Reason == "ping timeout" && probeFail && upgrade.T == "":
				// The probe failed while long-polling paused for it, and
				// polling never resumed (engine.io-client 6.6.8 _probe:
				// the pause callback returns early once the probe failed).
				cause = "probe-failed"
				v.ProbeStuck++
			}
			if cause == "unexplained" && r.Reason == "transport close" && upgrade.T == "upgrade" &&
				p.UpgradeTimeout > 0 && upgrade.Took >= p.UpgradeTimeout.Milliseconds() && r.TS-upgrade.TS <= p.CutGrace.Milliseconds() {
				cause = "late-upgrade"
				v.LateUpgrades++
			}
			upgrade, probeFail = Record{}, false
			v.DisconnectsBy[cause+"/"+r.Reason]++
			if cause == "unexplained" {
				v.UnexplainedByLag[lag]++
				v.fail("disconnect", "client %d (%s) disconnected at %s (%s: %s) with no fault to explain it (latest fault hitting it: %s)",
					c.ID, c.Mode, clock(r.TS), r.Reason, r.Desc, lag)
			}
		case "cerr":
			v.ConnectErrors++
			tokenEnded = tokenEnded || strings.Contains(r.Msg, "Token expired")
		case "upgradeError":
			v.ProbeErrors++
			probeFail = true
		case "upgrade":
			v.Upgrades++
			upgrade = r
		case "expired", "expiring":
			if r.Off {
				v.fail("notice", "client %d received auth:%s at %s carrying a recovery offset: a notice about one connection must never be logged (a recovery would replay it)", c.ID, r.T, clock(r.TS))
			}
			if connected && recovered && r.TS-connAt <= replayWindow.Milliseconds() {
				// Live (it carries no offset): judged as any other.
				v.ReplayedAuthNotices++
			}
			switch {
			case r.T == "expired" && stalledAround(faults, c.ID, r.TS, p):
				expired = true
				v.StallExpiries++
			case r.T == "expired" && connected && openedLate(r.Exp, connAt, p.ExpiryWarning):
				expired, away = true, true
				v.AwayExpiries++
			case r.T == "expired":
				expired = true
				v.fail("token", "client %d: its token expired (auth:expired) at %s", c.ID, clock(r.TS))
			}
		case "refreshed":
			switch {
			case r.OK:
				v.Refreshes++
			case strings.Contains(r.Err, "socket has been disconnected"),
				strings.Contains(r.Err, "timed out") && (!connected || r.TS-changed < refreshAckTimeout.Milliseconds()+500):
				// The ack was lost with a connection that dropped while
				// it was awaited; the client asks again.
				v.RefreshRetries++
			default:
				v.fail("token", "client %d: auth:refresh refused at %s: %s", c.ID, clock(r.TS), r.Err)
			}
		case "ev":
			v.EventsReceived++
			switch {
			case isUserEvent(r.N) && r.U != c.User:
				v.fail("tenancy", "client %d (%s) received %s #%d of %q", c.ID, c.User, r.N, r.S, r.U)
			case isUserEvent(r.N):
				user.receive(v, c, r)
			case r.O != c.Org:
				v.fail("tenancy", "client %d of %s received %s #%d of %q", c.ID, c.Org, r.N, r.S, r.O)
			default:
				org.receive(v, c, r)
			}
		}
	}
	if !connected {
		v.fail("end", "client %d (%s) is not connected at the end", c.ID, c.Mode)
	}
	org.end(v, c)
	user.end(v, c)
}

// openedLate says whether a connection opened at connAt had less than the
// expiry warning left on its token (expiring at exp, RFC 3339): the
// warning was due while the client was away.
func openedLate(exp string, connAt int64, warning time.Duration) bool {
	t, err := time.Parse(time.RFC3339, exp)
	return err == nil && warning > 0 && connAt >= t.Add(-warning).UnixMilli()
}

// stalledAround says whether a stall hit client c and covered ts (up to
// the slack after its end, when what it held is delivered).
func stalledAround(faults []Fault, c int, ts int64, p JudgeParams) bool {
	for _, f := range faults {
		if f.Kind == FaultStall && f.hits(c) && ts >= f.Start.UnixMilli() && ts <= f.End.UnixMilli()+p.CutGrace.Milliseconds() {
			return true
		}
	}
	return false
}

// restartBetween says whether the server restarted while a connection
// started at from was open, before to.
func restartBetween(faults []Fault, from, to int64) bool {
	for _, f := range faults {
		if f.Kind == FaultRestart && f.Start.UnixMilli() >= from && f.Start.UnixMilli() <= to {
			return true
		}
	}
	return false
}

// explain finds the fault behind a disconnection at ts of client c whose
// connection started at connAt: the fault must have hit c while that
// connection was open, and the client must have noticed within the time
// that fault allows. It returns the fault's kind, or "unexplained" and how
// long after the latest fault hitting c the disconnection came.
func explain(faults []Fault, c int, connAt, ts int64, reason string, p JudgeParams) (string, string) {
	slack := p.CutGrace.Milliseconds()
	network := slices.Contains(networkReasons, reason)
	latest := int64(-1)
	for _, f := range faults {
		if !f.hits(c) {
			continue
		}
		start, end := f.Start.UnixMilli(), f.End.UnixMilli()
		if start <= ts {
			latest = max(latest, start)
		}
		if ts < start {
			continue
		}
		switch f.Kind {
		case FaultRestart, FaultKill:
			// A stopping (or dying) server ends every connection; whatever
			// the client calls it.
			if connAt <= end && ts <= end+slack {
				return string(f.Kind), ""
			}
		case FaultCut:
			// Cutting every proxy takes a while: Start to End.
			if network && connAt <= end && ts <= end+slack {
				return string(f.Kind), ""
			}
		case FaultRefuse:
			// A polling client's next request is a new connection: refused.
			if network && connAt <= end && ts <= end+slack {
				return string(f.Kind), ""
			}
		case FaultStall:
			// Noticed by the heartbeat, or when the stall ends and the
			// connection the server closed meanwhile is closed.
			if network && connAt <= start && ts <= end+p.Heartbeat.Milliseconds()+slack {
				return string(f.Kind), ""
			}
		}
	}
	if latest < 0 {
		return "unexplained", "none"
	}
	return "unexplained", lagBucket(time.Duration(ts-latest) * time.Millisecond)
}

// lagBucket groups a delay in buckets for the report.
func lagBucket(d time.Duration) string {
	for _, b := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second, time.Minute} {
		if d < b {
			return "<" + b.String()
		}
	}
	return ">=1m0s"
}

func clock(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04:05.000") }

// Resource growth tolerances: the last third of a server process's steady
// samples against the first half, the smallest reading of each (a fault's
// reconnections make short peaks; a leak raises the floor).
const (
	goroutineTolerance = 0.10
	goroutineAbs       = 50
	fdTolerance        = 0.05
	fdAbs              = 50
	rssTolerance       = 0.25
	rssAbs             = 64 << 20
	minSteadySamples   = 6
)

// judgeResources fails on growth of goroutines, open files or memory once
// the population is steady (every client connected), within each server
// process, and says what it compared.
func judgeResources(v *Verdict, samples []Sample, polling int) []string {
	type proc struct{ node, gen int }
	byProc := map[proc][]Sample{}
	for _, s := range samples {
		if s.Steady {
			k := proc{s.Node, s.Gen}
			byProc[k] = append(byProc[k], s)
		}
	}
	procs := make([]proc, 0, len(byProc))
	for k := range byProc {
		procs = append(procs, k)
	}
	sort.Slice(procs, func(i, j int) bool {
		return procs[i].node < procs[j].node || procs[i].node == procs[j].node && procs[i].gen < procs[j].gen
	})
	var out []string
	for _, k := range procs {
		steady := byProc[k]
		g := fmt.Sprintf("node %d process %d", k.node, k.gen)
		if len(steady) < minSteadySamples {
			out = append(out, fmt.Sprintf("%s: %d steady samples, too few to judge growth", g, len(steady)))
			continue
		}
		first, last := steady[:len(steady)/2], steady[len(steady)-len(steady)/3:]
		for _, m := range []struct {
			name     string
			get      func(Sample) float64
			tol, abs float64
		}{
			{"goroutines", func(s Sample) float64 { return s.Goroutines }, goroutineTolerance, goroutineAbs + 2*float64(polling)},
			{"open files", func(s Sample) float64 { return s.FDs }, fdTolerance, fdAbs + 2*float64(polling)},
			{"RSS", func(s Sample) float64 { return s.RSS }, rssTolerance, rssAbs},
		} {
			base, end := minOf(first, m.get), minOf(last, m.get)
			limit := base*(1+m.tol) + m.abs
			line := fmt.Sprintf("%s, %d steady samples: %s floor %s → %s (limit %s)", g, len(steady), m.name, human(m.name, base), human(m.name, end), human(m.name, limit))
			out = append(out, line)
			if end > limit {
				v.fail("growth", "%s", line)
			}
		}
	}
	return out
}

func minOf(s []Sample, get func(Sample) float64) float64 {
	m := get(s[0])
	for _, x := range s[1:] {
		m = min(m, get(x))
	}
	return m
}

func human(name string, x float64) string {
	if strings.HasPrefix(name, "RSS") {
		return fmt.Sprintf("%.1f MiB", x/(1<<20))
	}
	return fmt.Sprintf("%.0f", x)
}
