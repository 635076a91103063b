package main

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

// t0 is the start of every judged timeline; times below are offsets in
// seconds from it.
var t0 = time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }
func ms(sec float64) int64     { return at(sec).UnixMilli() }

// timeline builds one client's records.
type timeline struct{ c Client }

func newTimeline() *timeline {
	return &timeline{c: Client{ID: 1, Org: "org-1", User: "user-1", Mode: "default"}}
}

func (tl *timeline) connect(sec float64, recovered bool) *timeline {
	tl.c.Records = append(tl.c.Records, Record{T: "connect", C: 1, TS: ms(sec), Rec: recovered, Tr: "polling"})
	return tl
}

func (tl *timeline) disconnect(sec float64, reason string) *timeline {
	tl.c.Records = append(tl.c.Records, Record{T: "disconnect", C: 1, TS: ms(sec), Reason: reason})
	return tl
}

func (tl *timeline) gap(sec float64) *timeline {
	tl.c.Records = append(tl.c.Records, Record{T: "gap", C: 1, TS: ms(sec), Reason: "unavailable"})
	return tl
}

func (tl *timeline) events(sec float64, seqs ...int) *timeline {
	for _, s := range seqs {
		tl.c.Records = append(tl.c.Records, Record{T: "ev", C: 1, TS: ms(sec), N: eventName(s), O: tl.c.Org, S: s})
	}
	return tl
}

// notes appends notifications to the client's user with these seqs.
func (tl *timeline) notes(sec float64, seqs ...int) *timeline {
	for _, s := range seqs {
		tl.c.Records = append(tl.c.Records, Record{T: "ev", C: 1, TS: ms(sec), N: userEventName(s), O: tl.c.Org, U: tl.c.User, S: s})
	}
	return tl
}

// withUser adds to pubs notifications to user-1, published at the given
// seconds.
func withUser(pubs map[string][]Publication, secs ...float64) map[string][]Publication {
	for _, s := range secs {
		pubs["user-1"] = append(pubs["user-1"], Publication{At: at(s)})
	}
	return pubs
}

// published are n events of org-1, published at the given seconds.
func published(secs ...float64) map[string][]Publication {
	var l []Publication
	for _, s := range secs {
		l = append(l, Publication{At: at(s)})
	}
	return map[string][]Publication{"org-1": l}
}

func params() JudgeParams {
	return JudgeParams{CutGrace: 5 * time.Second, Heartbeat: 45 * time.Second, RestartLosesSessions: true, Until: at(1000)}
}

func cut(sec float64) Fault {
	return Fault{Kind: FaultCut, Start: at(sec), End: at(sec), Hit: map[int]bool{1: true}}
}

// judged judges one timeline and checks the failure kinds it gave.
func judged(t *testing.T, tl *timeline, pubs map[string][]Publication, faults []Fault, p JudgeParams, want ...string) Verdict {
	t.Helper()
	v := Judge([]Client{tl.c}, pubs, faults, nil, p)
	for _, kind := range want {
		if v.FailureCounts[kind] == 0 {
			t.Errorf("no %q failure; failures: %v", kind, v.Failures)
		}
	}
	for kind := range v.FailureCounts {
		found := false
		for _, w := range want {
			found = found || w == kind
		}
		if !found {
			t.Errorf("unexpected %q failure: %v", kind, v.Failures)
		}
	}
	if v.Pass != (len(want) == 0) {
		t.Errorf("pass = %t with failures %v", v.Pass, v.Failures)
	}
	return v
}

func TestJudgeCleanClient(t *testing.T) {
	tl := newTimeline().connect(0, false).events(5, 1, 2).events(9, 3)
	v := judged(t, tl, published(4, 4.5, 8), nil, params())
	if v.EventsReceived != 3 || v.Connects != 1 || v.Disconnects != 0 {
		t.Errorf("counts: %+v", v)
	}
}

func TestJudgeEventsPublishedBeforeTheFirstConnectionMayBeMissing(t *testing.T) {
	tl := newTimeline().connect(10, false).events(12, 3)
	v := judged(t, tl, published(1, 2, 11), nil, params())
	if v.EventsExcused != 2 {
		t.Errorf("excused %d, want 2", v.EventsExcused)
	}
}

func TestJudgeLostEvent(t *testing.T) {
	tl := newTimeline().connect(0, false).events(5, 1, 3)
	judged(t, tl, published(4, 4.1, 4.2), nil, params(), "lost")
}

func TestJudgeEventMissingAfterTheFirstConnection(t *testing.T) {
	// #1 was published after the client connected: it had to arrive.
	tl := newTimeline().connect(0, false).events(5, 2)
	judged(t, tl, published(1, 4), nil, params(), "lost")
}

func TestJudgeDuplicateEvent(t *testing.T) {
	tl := newTimeline().connect(0, false).events(5, 1, 2, 2)
	judged(t, tl, published(4, 4.1), nil, params(), "duplicate")
}

func TestJudgeReorderedEvents(t *testing.T) {
	tl := newTimeline().connect(0, false).events(5, 1, 3, 2)
	judged(t, tl, published(4, 4.1, 4.2), nil, params(), "lost", "duplicate")
}

func TestJudgeMissingTail(t *testing.T) {
	tl := newTimeline().connect(0, false).events(5, 1)
	judged(t, tl, published(4, 6), nil, params(), "lost")
}

func TestJudgeOtherOrganization(t *testing.T) {
	tl := newTimeline().connect(0, false)
	tl.c.Records = append(tl.c.Records, Record{T: "ev", C: 1, TS: ms(5), N: eventName(1), O: "org-2", S: 1})
	judged(t, tl, published(), nil, params(), "tenancy")
}

func TestJudgeUnpublishedSeq(t *testing.T) {
	tl := newTimeline().connect(0, false).events(5, 1)
	judged(t, tl, published(), nil, params(), "unknown")
}

func TestJudgeNotConnectedAtTheEnd(t *testing.T) {
	tl := newTimeline().connect(0, false).disconnect(10, "transport close")
	judged(t, tl, published(), []Fault{cut(9)}, params(), "end")
}

func TestJudgeUnexplainedDisconnect(t *testing.T) {
	tl := newTimeline().connect(0, false).disconnect(30, "transport close").connect(32, true)
	v := judged(t, tl, published(), nil, params(), "disconnect")
	if v.UnexplainedByLag["none"] != 1 {
		t.Errorf("lag buckets %v", v.UnexplainedByLag)
	}
}

func TestJudgeCutExplainsAPromptDisconnect(t *testing.T) {
	tl := newTimeline().connect(0, false).events(5, 1).disconnect(20.5, "transport close").connect(22, true).events(23, 2)
	v := judged(t, tl, published(4, 21), []Fault{cut(20)}, params())
	if v.DisconnectsBy["cut/transport close"] != 1 || v.Recovered != 1 {
		t.Errorf("counts: %+v", v)
	}
}

func TestJudgeCutDoesNotExplainALateDisconnect(t *testing.T) {
	// The reported symptom: "transport close" 5–17 s after a cut, of a
	// connection the cut did not end.
	tl := newTimeline().connect(0, false).disconnect(28, "transport close").connect(30, true)
	v := judged(t, tl, published(), []Fault{cut(20)}, params(), "disconnect")
	if v.UnexplainedByLag["<10s"] != 1 {
		t.Errorf("lag buckets %v", v.UnexplainedByLag)
	}
}

func TestJudgeCutDoesNotExplainTheNextConnection(t *testing.T) {
	tl := newTimeline().connect(0, false).disconnect(20.1, "transport close").connect(22, true).disconnect(24, "transport close").connect(26, true)
	judged(t, tl, published(), []Fault{cut(20)}, params(), "disconnect")
}

func TestJudgeCutOfAnotherClient(t *testing.T) {
	f := cut(20)
	f.Hit = map[int]bool{2: true}
	tl := newTimeline().connect(0, false).disconnect(20.1, "transport close").connect(22, true)
	judged(t, tl, published(), []Fault{f}, params(), "disconnect")
}

func TestJudgeCutDoesNotExplainAServerDisconnect(t *testing.T) {
	tl := newTimeline().connect(0, false).events(5, 1).disconnect(20.1, "io server disconnect").connect(22, false)
	judged(t, tl, published(4), []Fault{cut(20)}, params(), "disconnect", "recovery")
}

func TestJudgeStallExplainsAPingTimeout(t *testing.T) {
	stall := Fault{Kind: FaultStall, Start: at(10), End: at(40), Hit: map[int]bool{1: true}}
	tl := newTimeline().connect(0, false).disconnect(60, "ping timeout").connect(62, true)
	judged(t, tl, published(), []Fault{stall}, params())
	late := newTimeline().connect(0, false).disconnect(95, "ping timeout").connect(97, true)
	judged(t, late, published(), []Fault{stall}, params(), "disconnect")
}

func TestJudgeRefusalExplainsAPollingError(t *testing.T) {
	refuse := Fault{Kind: FaultRefuse, Start: at(10), End: at(15), Hit: map[int]bool{1: true}}
	tl := newTimeline().connect(0, false).disconnect(14, "transport error").connect(17, true)
	judged(t, tl, published(), []Fault{refuse}, params())
}

func TestJudgeRecoveredReconnectionMissesNothing(t *testing.T) {
	// #2 was published while the client was away; it came back recovered
	// without it.
	tl := newTimeline().connect(0, false).events(5, 1).disconnect(20.1, "transport close").connect(23, true).events(25, 3)
	judged(t, tl, published(4, 21, 24), []Fault{cut(20)}, params(), "lost")
}

func TestJudgeReconnectionNotRecovered(t *testing.T) {
	tl := newTimeline().connect(0, false).events(5, 1).disconnect(20.1, "transport close").connect(23, false).gap(23)
	judged(t, tl, published(4), []Fault{cut(20)}, params(), "recovery")
}

func TestJudgeRestartLosesSessionsInMemory(t *testing.T) {
	restart := Fault{Kind: FaultRestart, Start: at(20), End: at(22)}
	// #2 and #3 published before the fresh connection: missing, told by
	// history:gap (after an event broadcast meanwhile); #4 after it.
	tl := newTimeline().connect(0, false).events(5, 1).disconnect(20.2, "transport close").
		connect(24, false).events(24.1, 4).gap(24.2)
	v := judged(t, tl, published(4, 19, 23, 24.05), []Fault{restart}, params())
	if v.EventsExcused != 2 || v.NotRecovered != 1 || v.DisconnectsBy["restart/transport close"] != 1 {
		t.Errorf("counts: %+v", v)
	}

	// Without the gap signal the same loss is silent: a failure.
	silent := newTimeline().connect(0, false).events(5, 1).disconnect(20.2, "transport close").connect(24, false).events(24.1, 4)
	judged(t, silent, published(4, 19, 23, 24.05), []Fault{restart}, params(), "lost")

	// An event published after the fresh connection must arrive.
	after := newTimeline().connect(0, false).events(5, 1).disconnect(20.2, "transport close").connect(24, false).gap(24).events(26, 4)
	judged(t, after, published(4, 19, 25, 25.5), []Fault{restart}, params(), "lost")

	// Where sessions survive a restart (Redis), it must recover.
	p := params()
	p.RestartLosesSessions = false
	judged(t, newTimeline().connect(0, false).events(5, 1).disconnect(20.2, "transport close").connect(24, false).gap(24),
		published(4), []Fault{restart}, p, "recovery")
}

func TestJudgeIgnoresRecordsAfterTheEnd(t *testing.T) {
	p := params()
	p.Until = at(50)
	tl := newTimeline().connect(0, false).disconnect(60, "io client disconnect")
	judged(t, tl, published(), nil, p)
}

func TestJudgeTokens(t *testing.T) {
	tl := newTimeline().connect(0, false)
	tl.c.Records = append(tl.c.Records,
		Record{T: "refreshed", C: 1, TS: ms(5), OK: true},
		Record{T: "refreshed", C: 1, TS: ms(6), OK: false, Err: "Unauthorized"},
		Record{T: "expired", C: 1, TS: ms(7)},
		// An ack awaited while connected for the whole 10 s: the server's.
		Record{T: "refreshed", C: 1, TS: ms(20), OK: false, Err: "operation has timed out"})
	// One lost with a connection that dropped meanwhile: asked again.
	tl.disconnect(30, "transport close").connect(32, true)
	tl.c.Records = append(tl.c.Records, Record{T: "refreshed", C: 1, TS: ms(35), OK: false, Err: "operation has timed out"})
	faults := []Fault{cut(29.9)}
	v := judged(t, tl, published(), faults, params(), "token")
	if v.Refreshes != 1 || v.FailureCounts["token"] != 3 || v.RefreshRetries != 1 {
		t.Errorf("counts: %+v", v)
	}
}

func TestJudgeResources(t *testing.T) {
	flat := func(gen, n, conns int, goroutines func(i int) float64) []Sample {
		var out []Sample
		for i := range n {
			out = append(out, Sample{At: at(float64(i * 10)), Gen: gen, Conns: conns, Steady: conns == 1000, RSS: 100 << 20, Goroutines: goroutines(i), FDs: 2000})
		}
		return out
	}
	steady := flat(0, 12, 1000, func(int) float64 { return 3000 })
	v := Judge(nil, nil, nil, steady, JudgeParams{})
	if !v.Pass || len(v.ResourceJudgement) != 3 {
		t.Errorf("steady: %+v", v)
	}

	// One goroutine more per sample: a leak.
	leak := flat(0, 12, 1000, func(i int) float64 { return 3000 + float64(i)*100 })
	v = Judge(nil, nil, nil, leak, JudgeParams{})
	if v.Pass || v.FailureCounts["growth"] != 1 || !strings.Contains(v.Failures[0], "goroutines") {
		t.Errorf("leak: %+v", v)
	}

	// A peak while clients reconnect is not growth: the floor is compared.
	peaks := flat(0, 12, 1000, func(i int) float64 { return 3000 + float64(i%2)*2000 })
	if v = Judge(nil, nil, nil, peaks, JudgeParams{}); !v.Pass {
		t.Errorf("peaks: %+v", v)
	}

	// Samples with part of the population away are not steady; a new
	// process starts from its own floor.
	mixed := append(flat(0, 12, 1000, func(int) float64 { return 3000 }), flat(1, 12, 1000, func(int) float64 { return 6000 })...)
	mixed = append(mixed, Sample{At: at(500), Gen: 1, Conns: 10, Goroutines: 50000})
	// Another node is judged on its own.
	mixed = append(mixed, flat(0, 12, 1000, func(int) float64 { return 100 })...)
	for i := len(mixed) - 12; i < len(mixed); i++ {
		mixed[i].Node = 1
	}
	if v = Judge(nil, nil, nil, mixed, JudgeParams{}); !v.Pass || len(v.ResourceJudgement) != 9 {
		t.Errorf("mixed: %+v", v)
	}

	few := flat(0, 3, 1000, func(i int) float64 { return float64(i) * 1e6 })
	if v = Judge(nil, nil, nil, few, JudgeParams{}); !v.Pass || !strings.Contains(v.ResourceJudgement[0], "too few") {
		t.Errorf("few: %+v", v)
	}
}

func TestJudgeLateUpgrade(t *testing.T) {
	p := params()
	p.UpgradeTimeout = 10 * time.Second
	// The upgrade may come before the connect, when the client's event
	// loop is that late.
	late := newTimeline().connect(0, false).disconnect(10.5, "transport close")
	late.c.Records = append(late.c.Records, Record{T: "upgrade", C: 1, TS: ms(12), Tr: "websocket", Took: 11500})
	late.connect(12, true).disconnect(13, "transport close").connect(15, true)
	late.c.Records[1].TS = ms(10.5)
	v := judged(t, late, published(), []Fault{cut(10)}, p)
	if v.LateUpgrades != 1 || v.DisconnectsBy["late-upgrade/transport close"] != 1 {
		t.Errorf("counts: %+v", v)
	}
	late = newTimeline().connect(0, false)
	late.c.Records = append(late.c.Records, Record{T: "upgrade", C: 1, TS: ms(12), Tr: "websocket", Took: 11500})
	late.disconnect(13, "transport close").connect(15, true)
	v = judged(t, late, published(), nil, p)
	if v.LateUpgrades != 1 || v.DisconnectsBy["late-upgrade/transport close"] != 1 {
		t.Errorf("counts: %+v", v)
	}

	// An upgrade within the timeout explains nothing.
	prompt := newTimeline().connect(0, false)
	prompt.c.Records = append(prompt.c.Records, Record{T: "upgrade", C: 1, TS: ms(2), Tr: "websocket", Took: 300})
	prompt.disconnect(3, "transport close").connect(5, true)
	judged(t, prompt, published(), nil, p, "disconnect")

	// Nor does a late one long before the disconnection.
	old := newTimeline().connect(0, false)
	old.c.Records = append(old.c.Records, Record{T: "upgrade", C: 1, TS: ms(12), Tr: "websocket", Took: 11500})
	old.disconnect(40, "transport close").connect(42, true)
	judged(t, old, published(), nil, p, "disconnect")
}

func TestJudgeReconnectionBeforeAnyEvent(t *testing.T) {
	// Nothing received yet, so no offset to recover from: not recovered,
	// and nothing missing.
	tl := newTimeline().connect(0, false).disconnect(10.1, "transport close").connect(12, false).events(14, 1)
	judged(t, tl, published(13), []Fault{cut(10)}, params())
	// But what was published while it was connected had to arrive.
	tl = newTimeline().connect(0, false).disconnect(10.1, "transport close").connect(12, false).events(14, 2)
	judged(t, tl, published(5, 13), []Fault{cut(10)}, params(), "lost")
}

func TestJudgeReplayedAuthNotices(t *testing.T) {
	// The 2026-12-03 3-node soak's client 891: stalled while its token's
	// warning was due, back (recovered) with that token inside the
	// server's leeway, then warned and expired at once, live. An away
	// expiry, not an unexplained disconnect.
	stall := Fault{Kind: FaultStall, Start: at(10), End: at(40), Hit: map[int]bool{1: true}}
	exp := at(25).Format(time.RFC3339) // enforced 30 s later (the leeway)
	p := params()
	p.ExpiryWarning = 30 * time.Second
	tl := newTimeline().connect(0, false).events(5, 1).disconnect(50, "ping timeout").connect(52, true)
	tl.c.Records = append(tl.c.Records,
		Record{T: "expiring", C: 1, TS: ms(52.1), Exp: exp},
		Record{T: "expired", C: 1, TS: ms(52.1), Exp: exp},
		Record{T: "disconnect", C: 1, TS: ms(52.1), Reason: "io server disconnect"},
		Record{T: "connect", C: 1, TS: ms(52.2), Tr: "polling"},
		Record{T: "gap", C: 1, TS: ms(52.2), Reason: "unavailable"})
	v := judged(t, tl, published(4), []Fault{stall}, p)
	if v.ReplayedAuthNotices != 2 || v.AwayExpiries != 1 {
		t.Errorf("counts: %+v", v)
	}
	tl = newTimeline().connect(0, false).events(5, 1).disconnect(50, "ping timeout").connect(52, true)
	tl.c.Records = append(tl.c.Records,
		Record{T: "expiring", C: 1, TS: ms(52.1)},
		Record{T: "expired", C: 1, TS: ms(52.1)})
	// Later on the same connection, an expiry is the connection's own.
	tl.c.Records = append(tl.c.Records, Record{T: "expired", C: 1, TS: ms(70)})
	judged(t, tl, published(4), []Fault{stall}, params(), "token")
}

func TestJudgeLoggedNotices(t *testing.T) {
	// A notice about one connection that carries an offset was logged: a
	// recovery could replay it to another connection. Exact, unlike the
	// timing heuristic above.
	tl := newTimeline().connect(0, false).events(5, 1)
	tl.c.Records = append(tl.c.Records, Record{T: "expiring", C: 1, TS: ms(6), Off: true})
	judged(t, tl, published(4), nil, params(), "notice")
	tl = newTimeline().connect(0, false).events(5, 1).disconnect(10.1, "transport close").connect(12, false)
	tl.c.Records = append(tl.c.Records, Record{T: "gap", C: 1, TS: ms(12.1), Reason: "unavailable", Off: true})
	judged(t, tl, published(4), []Fault{cut(10)}, params(), "notice", "recovery")
	// Without an offset the same notices pass.
	tl = newTimeline().connect(0, false).events(5, 1)
	tl.c.Records = append(tl.c.Records, Record{T: "expiring", C: 1, TS: ms(6)})
	judged(t, tl, published(4), nil, params())
}

func TestJudgeStallExpiryAndStuckProbe(t *testing.T) {
	stall := Fault{Kind: FaultStall, Start: at(10), End: at(40), Hit: map[int]bool{1: true}}
	tl := newTimeline().connect(0, false)
	tl.c.Records = append(tl.c.Records, Record{T: "expired", C: 1, TS: ms(40.5)})
	tl.disconnect(40.6, "io server disconnect").connect(42, false)
	v := judged(t, tl, published(), []Fault{stall}, params())
	if v.StallExpiries != 1 || v.DisconnectsBy["stall-expiry/io server disconnect"] != 1 {
		t.Errorf("counts: %+v", v)
	}
	// Without the stall, an expiry is a failure.
	judged(t, tl, published(), nil, params(), "token", "disconnect")

	probe := newTimeline().connect(0, false)
	probe.c.Records = append(probe.c.Records, Record{T: "upgradeError", C: 1, TS: ms(5), Msg: "probe error: transport closed"})
	probe.disconnect(45, "ping timeout").connect(47, false)
	if v := judged(t, probe, published(), nil, params()); v.ProbeStuck != 1 {
		t.Errorf("counts: %+v", v)
	}
	// A ping timeout with no failed probe is unexplained.
	judged(t, newTimeline().connect(0, false).disconnect(45, "ping timeout").connect(47, false), published(), nil, params(), "disconnect")
}

func TestJudgeAfreshAfterAnExpiredToken(t *testing.T) {
	stall := Fault{Kind: FaultStall, Start: at(10), End: at(40), Hit: map[int]bool{1: true}}
	tl := newTimeline().connect(0, false).events(5, 1).disconnect(45, "ping timeout")
	tl.c.Records = append(tl.c.Records, Record{T: "cerr", C: 1, TS: ms(46), Msg: "Unauthorized: Token expired"})
	tl.connect(47, false).gap(47).events(50, 3)
	judged(t, tl, published(4, 20, 49), []Fault{stall}, params())
	// Without the refusal, the same reconnection should have recovered.
	tl = newTimeline().connect(0, false).events(5, 1).disconnect(45, "ping timeout").connect(47, false).gap(47).events(50, 3)
	judged(t, tl, published(4, 20, 49), []Fault{stall}, params(), "recovery")
}

// A session the server ended at its token's deadline during a stall is not
// recoverable: the client's next connection, with a new token, is afresh
// (told by history:gap); once the stall is gone, the same is a failure.
func TestJudgeAfreshAfterAStallExpiry(t *testing.T) {
	stall := Fault{Kind: FaultStall, Start: at(10), End: at(40), Hit: map[int]bool{1: true}}
	timeline := func() *timeline {
		tl := newTimeline().connect(0, false).events(5, 1)
		tl.c.Records = append(tl.c.Records, Record{T: "expired", C: 1, TS: ms(40.5)})
		return tl.disconnect(40.6, "io server disconnect").connect(41, false).gap(41).events(50, 3)
	}
	v := judged(t, timeline(), published(4, 20, 49), []Fault{stall}, params())
	if v.StallExpiries != 1 || v.NotRecovered != 1 {
		t.Errorf("counts: %+v", v)
	}
	judged(t, timeline(), published(4, 20, 49), nil, params(), "token", "disconnect", "recovery")
}

func TestPlotIsWellFormedXML(t *testing.T) {
	var samples []Sample
	for i := range 20 {
		samples = append(samples, Sample{At: at(float64(i * 10)), Gen: i / 10, Conns: 100 + i, RSS: float64(i) * 1e6, Goroutines: 50, FDs: 60})
	}
	for _, s := range [][]Sample{samples, nil} {
		if err := xml.Unmarshal(plot(s, t0), new(struct{})); err != nil {
			t.Errorf("the plot of %d samples is not well-formed XML: %v", len(s), err)
		}
	}
}

func TestJudgeUserEvents(t *testing.T) {
	// The user's seq runs beside the organization's: interleaved, each
	// judged on its own.
	clean := newTimeline().connect(0, false).events(5, 1).notes(5.5, 1).events(6, 2).notes(7, 2, 3)
	v := judged(t, clean, withUser(published(4, 5.8), 5, 6.5, 6.9), nil, params())
	if v.EventsReceived != 5 {
		t.Errorf("received %d, want 5", v.EventsReceived)
	}

	// A notification missing in the middle, or at the end, is lost, even
	// though the organization's events all came.
	judged(t, newTimeline().connect(0, false).events(5, 1).notes(7, 1, 3), withUser(published(4), 5, 6, 6.5), nil, params(), "lost")
	judged(t, newTimeline().connect(0, false).events(5, 1).notes(7, 1), withUser(published(4), 5, 8), nil, params(), "lost")

	// Twice, or out of order.
	judged(t, newTimeline().connect(0, false).notes(7, 1, 2, 2), withUser(published(), 5, 6), nil, params(), "duplicate")
	judged(t, newTimeline().connect(0, false).notes(7, 2, 1), withUser(published(), 5, 6), nil, params(), "lost", "duplicate")

	// Another user's notification, even of the same organization.
	other := newTimeline().connect(0, false)
	other.c.Records = append(other.c.Records, Record{T: "ev", C: 1, TS: ms(5), N: userEventName(1), O: "org-1", U: "user-2", S: 1})
	judged(t, other, withUser(published(), 4), nil, params(), "tenancy", "lost")

	// Published as another event than the one received with its seq.
	renamed := newTimeline().connect(0, false)
	renamed.c.Records = append(renamed.c.Records, Record{T: "ev", C: 1, TS: ms(5), N: userEventName(2), O: "org-1", U: "user-1", S: 1})
	judged(t, renamed, withUser(published(), 4), nil, params(), "unknown")

	// Published before the first connection: may be missing, per
	// sequence; an organization event received since does not end the
	// user's excuse.
	first := newTimeline().connect(10, false).events(11, 1).notes(12, 3)
	if v := judged(t, first, withUser(published(10.5), 1, 2, 11), nil, params()); v.EventsExcused != 2 {
		t.Errorf("excused %d, want 2", v.EventsExcused)
	}

	// Missed while away, with a recovered reconnection: lost.
	recovered := newTimeline().connect(0, false).notes(5, 1).disconnect(20.1, "transport close").connect(23, true).notes(25, 3)
	judged(t, recovered, withUser(published(), 4, 21, 24), []Fault{cut(20)}, params(), "lost")

	// Missed before a fresh connection told of it by history:gap (after
	// the restart of a node that keeps its sessions in memory): excused.
	restart := Fault{Kind: FaultRestart, Start: at(20), End: at(22)}
	gap := newTimeline().connect(0, false).notes(5, 1).disconnect(20.2, "transport close").connect(24, false).gap(24.1).notes(26, 3)
	if v := judged(t, gap, withUser(published(), 4, 21, 25), []Fault{restart}, params()); v.EventsExcused != 1 {
		t.Errorf("excused %d, want 1", v.EventsExcused)
	}
	// Only notifications count toward recovery too: a client that had one
	// must recover it where sessions survive.
	p := params()
	p.RestartLosesSessions = false
	judged(t, newTimeline().connect(0, false).notes(5, 1).disconnect(20.2, "transport close").connect(24, false).gap(24),
		withUser(published(), 4), []Fault{restart}, p, "recovery")
}

func TestJudgeKill(t *testing.T) {
	p := params()
	p.RestartLosesSessions = false // several nodes: sessions are in Redis
	kill := Fault{Kind: FaultKill, Start: at(20), End: at(20.1), Hit: map[int]bool{1: true}}

	// Its connection reset, the client comes back elsewhere recovered,
	// with what was published meanwhile.
	tl := newTimeline().connect(0, false).events(5, 1).notes(5, 1).disconnect(20.5, "transport close").
		connect(22, true).events(22.1, 2).notes(22.1, 2)
	v := judged(t, tl, withUser(published(4, 21), 4, 21.5), []Fault{kill}, p)
	if v.DisconnectsBy["kill/transport close"] != 1 || v.Recovered != 1 {
		t.Errorf("counts: %+v", v)
	}
	// Whatever the client calls it (a polling request failing).
	judged(t, newTimeline().connect(0, false).events(5, 1).disconnect(21, "transport error").connect(22, true),
		published(4), []Fault{kill}, p)

	// Not recovered: a failure, even with history:gap.
	judged(t, newTimeline().connect(0, false).events(5, 1).disconnect(20.5, "transport close").connect(22, false).gap(22),
		published(4), []Fault{kill}, p, "recovery")
	// Recovered without what it missed.
	judged(t, newTimeline().connect(0, false).events(5, 1).disconnect(20.5, "transport close").connect(22, true).events(23, 3),
		published(4, 21, 22.5), []Fault{kill}, p, "lost")
	// Twice: the replay and the live delivery both.
	judged(t, newTimeline().connect(0, false).events(5, 1).disconnect(20.5, "transport close").connect(22, true).events(22.1, 2, 2),
		published(4, 21), []Fault{kill}, p, "duplicate")

	// The kill explains no disconnection noticed long after it, nor one of
	// a client on another node.
	judged(t, newTimeline().connect(0, false).disconnect(40, "transport close").connect(41, false),
		published(), []Fault{kill}, p, "disconnect")
	other := kill
	other.Hit = map[int]bool{2: true}
	judged(t, newTimeline().connect(0, false).disconnect(20.5, "transport close").connect(22, false),
		published(), []Fault{other}, p, "disconnect")
	// Nor a disconnection of a connection opened after it.
	judged(t, newTimeline().connect(0, false).disconnect(20.5, "transport close").connect(21, false).disconnect(23, "transport close").connect(24, false),
		published(), []Fault{kill}, p, "disconnect")
}

func TestJudgeAwayExpiry(t *testing.T) {
	p := params()
	p.RestartLosesSessions = false
	p.ExpiryWarning = 30 * time.Second
	refuse := Fault{Kind: FaultRefuse, Start: at(20), End: at(25), Hit: map[int]bool{1: true}}
	exp := at(60).Format(time.RFC3339)
	// Away (refused) from 20 to 45 s while its warning was due at 30 s, the
	// client comes back 15 s before its token's expiry, is not warned in
	// time, and the server ends the session at the expiry; it connects
	// again with a new token, afresh, and still gets what was published.
	tl := newTimeline().connect(0, false).events(5, 1).disconnect(20.1, "transport close").connect(45, true)
	tl.c.Records = append(tl.c.Records, Record{T: "expired", C: 1, TS: ms(60), Exp: exp})
	tl.disconnect(60.01, "io server disconnect").connect(61, false).gap(61).events(62, 2)
	v := judged(t, tl, published(4, 55), []Fault{refuse}, p)
	if v.AwayExpiries != 1 || v.DisconnectsBy["away-expiry/io server disconnect"] != 1 {
		t.Errorf("counts: %+v", v)
	}
	// The same expiry on a connection opened long enough before it to be
	// warned is the server's failure, and so is the disconnection.
	early := newTimeline().connect(0, false).events(5, 1)
	early.c.Records = append(early.c.Records, Record{T: "expired", C: 1, TS: ms(60), Exp: exp})
	early.disconnect(60.01, "io server disconnect").connect(61, false).gap(61)
	judged(t, early, published(4), nil, p, "token", "disconnect", "recovery")
}
