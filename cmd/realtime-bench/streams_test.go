package main

import (
	"bufio"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func TestParseScenariosStreams(t *testing.T) {
	got, err := parseScenarios("fanout, streams")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append([]string{"fanout"}, streamsScenarios...) {
		if !got[s] {
			t.Errorf("%q not selected by \"fanout, streams\": %v", s, got)
		}
	}
	if got["redis"] || got["idle"] {
		t.Errorf("unasked scenarios selected: %v", got)
	}
	one, err := parseScenarios("streams-recovery-kill")
	if err != nil || len(one) != 1 || !one[scenStreamsRecoveryKill] {
		t.Errorf("streams-recovery-kill alone: %v, %v", one, err)
	}
	if _, err := parseScenarios("streams-fanout-classic"); err == nil {
		t.Error("the classic reference ramp is not a scenario of its own, yet it was accepted")
	}
}

func TestParseFlagsStreams(t *testing.T) {
	c, err := parseFlags([]string{"--scenarios", "streams", "--clients", "300", "--recovery-events", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if c.streamsClients != 300 || c.recoveryEvents != 3 || !c.scenarios[scenStreamsRecovery] {
		t.Errorf("streams clients %d, recovery events %d, scenarios %v", c.streamsClients, c.recoveryEvents, c.scenarios)
	}
	if _, err := parseFlags([]string{"--scenarios", "streams", "--streams-rate", "0"}); err == nil {
		t.Error("--streams-rate 0 accepted")
	}
}

func TestParseCommandStats(t *testing.T) {
	text := "# Commandstats\r\n" +
		"cmdstat_xadd:calls=1200,usec=5400,usec_per_call=4.50,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_get:calls=30,usec=60,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_info:calls=2,usec=100,usec_per_call=50.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_client|setinfo:calls=4,usec=8,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n" +
		"not_a_stat:1\r\n"
	got := parseCommandStats(text)
	want := cmdStats{"xadd": {1200, 5400}, "get": {30, 60}, "info": {2, 100}, "client|setinfo": {4, 8}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %+v, want %+v", k, got[k], v)
		}
	}
}

func TestCommandDelta(t *testing.T) {
	before := cmdStats{"xadd": {100, 500}, "get": {10, 20}, "info": {3, 90}, "del": {5, 5}}
	after := cmdStats{"xadd": {160, 800}, "get": {10, 20}, "info": {4, 120}, "del": {5, 5}, "xrange": {7, 70}}
	d := commandDelta(before, after)
	if d.total() != 67 {
		t.Errorf("total %d, want 67 (60 xadd + 7 xrange; INFO and unchanged commands left out): %v", d.total(), d)
	}
	if _, ok := d["info"]; ok {
		t.Error("the INFO commands of the readings are counted")
	}
	if got := d.top(1); got != "xadd 60" {
		t.Errorf("top(1) = %q", got)
	}
	if got := d.top(5); got != "xadd 60, xrange 7" {
		t.Errorf("top(5) = %q", got)
	}
	if got := (cmdStats{}).top(3); got != "none" {
		t.Errorf("top of nothing = %q", got)
	}
}

func TestReadBulk(t *testing.T) {
	body := "# Commandstats\r\ncmdstat_get:calls=1,usec=2\r\n"
	in := "$" + strconv.Itoa(len(body)) + "\r\n" + body + "\r\n"
	got, err := readBulk(bufio.NewReader(strings.NewReader(in)))
	if err != nil || got != body {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := readBulk(bufio.NewReader(strings.NewReader("-ERR unknown command\r\n"))); err == nil {
		t.Error("an error reply was read as a bulk string")
	}
	if _, err := readBulk(bufio.NewReader(strings.NewReader("$40\r\nshort\r\n"))); err == nil {
		t.Error("a truncated bulk string was accepted")
	}
}

func TestLastStringArg(t *testing.T) {
	for _, c := range []struct {
		pkt  string
		want string
		ok   bool
	}{
		{`["invoice:created",{"organizationId":"org_00001","sentAt":"17"},"1733200000000-0"]`, "1733200000000-0", true},
		{`["invoice:created",{"organizationId":"org_00001","sentAt":"17"}]`, "", false},
		{`["invoice:created",{"a":"x"},"17-3"]` + "\n", "17-3", true},
		{`["e","a\"b"]`, "", false},
		{`"x"]`, "", false},
		{``, "", false},
	} {
		got, ok := lastStringArg([]byte(c.pkt))
		if got != c.want || ok != c.ok {
			t.Errorf("lastStringArg(%s) = %q, %v; want %q, %v", c.pkt, got, ok, c.want, c.ok)
		}
	}
}

func TestConnectPacket(t *testing.T) {
	pkt, asked := connectPacket([]byte("/events,"), "tok", "", "")
	if string(pkt) != `40/events,{"token":"tok"}` || asked != "" {
		t.Errorf("first connect: %s, asked %q", pkt, asked)
	}
	// A pid without an offset (no event received yet) does not ask: the
	// servers would not recover it either.
	if _, asked := connectPacket([]byte("/events,"), "tok", "p1", ""); asked != "" {
		t.Errorf("asked to recover %q without an offset", asked)
	}
	pkt, asked = connectPacket([]byte("/events,"), "tok", "p1", "17-0")
	if asked != "p1" {
		t.Errorf("asked %q, want p1", asked)
	}
	var auth map[string]string
	if err := json.Unmarshal([]byte(strings.TrimPrefix(string(pkt), "40/events,")), &auth); err != nil {
		t.Fatalf("%s: %v", pkt, err)
	}
	if auth["token"] != "tok" || auth["pid"] != "p1" || auth["offset"] != "17-0" {
		t.Errorf("auth %v", auth)
	}
}

// TestRecoveryCounting runs the worker's packet handling through a
// session's life: connected, an event with its offset, a recovered
// reconnection with a replay, then one the server could not recover
// (a new pid and history:gap).
func TestRecoveryCounting(t *testing.T) {
	w := &worker{recovery: true, nspPrefix: []byte("/events,"), eventMark: []byte(`["invoice:created"`), gapMark: []byte(`["history:gap"`)}
	cl := &client{token: "tok"}
	w.clients = []*client{cl}
	connect := func() string {
		var pkt []byte
		pkt, cl.askedPID = connectPacket(w.nspPrefix, cl.token, cl.pid, cl.offset)
		return string(pkt)
	}
	if p := connect(); strings.Contains(p, "pid") {
		t.Fatalf("first CONNECT asks to recover: %s", p)
	}
	if w.handle(cl, []byte(`40/events,{"sid":"s1","pid":"p1"}`)) != pktConnected {
		t.Fatal("CONNECT reply not recognized")
	}
	w.handle(cl, []byte(`42/events,["invoice:created",{"sentAt":"1"},"100-0"]`))
	if st := w.stats(); st.WithOffset != 1 || st.Received != 1 {
		t.Fatalf("after one event: %+v", st)
	}
	if p := connect(); !strings.Contains(p, `"pid":"p1"`) || !strings.Contains(p, `"offset":"100-0"`) {
		t.Fatalf("reconnection does not ask to recover: %s", p)
	}
	w.handle(cl, []byte(`42/events,["invoice:created",{"sentAt":"2"},"101-0"]`)) // replayed before the reply
	w.handle(cl, []byte(`40/events,{"sid":"s1","pid":"p1"}`))
	if st := w.stats(); st.Recovered != 1 || st.NotRecovered != 0 || st.Received != 2 {
		t.Fatalf("after a recovery: %+v", st)
	}
	if p := connect(); !strings.Contains(p, `"offset":"101-0"`) {
		t.Fatalf("the replayed event's offset is not the next one asked from: %s", p)
	}
	w.handle(cl, []byte(`40/events,{"sid":"s2","pid":"p2"}`))
	w.handle(cl, []byte(`42/events,["history:gap",{"reason":"expired"}]`))
	st := w.stats()
	if st.Recovered != 1 || st.NotRecovered != 1 || st.Gaps != 1 {
		t.Fatalf("after a failed recovery: %+v", st)
	}
	// A new session has no offset until its first event.
	if st.WithOffset != 0 {
		t.Errorf("the failed recovery left the old offset: %+v", st)
	}
}

// TestReportStreams: the streams scenarios get their section, their rows
// named, and ratios in the right direction (time lower is better,
// recovered clients higher).
func TestReportStreams(t *testing.T) {
	rf := resultsFile{Repeat: 1, Results: []Result{
		{Scenario: scenStreamsRecovery, Server: kindOurs, Rep: 1, M: map[string]float64{
			"clients": 2000, "recovery_s": 2, "recovered": 2000, "not_recovered": 0, "gaps": 0, "storm_redis_cmds_per_client": 4}},
		{Scenario: scenStreamsRecovery, Server: kindNode, Rep: 1, M: map[string]float64{
			"clients": 2000, "recovery_s": 8, "recovered": 1000, "not_recovered": 1000, "gaps": 0, "storm_redis_cmds_per_client": 8}},
		{Scenario: scenStreamsHistory, Server: kindOurs, Rep: 1, M: map[string]float64{"history_cpu_us_per_event": 10}},
		{Scenario: scenStreamsHistory, Server: kindNode, Rep: 1, M: map[string]float64{"history_cpu_us_per_event": 50}},
	}}
	rep := buildReport(rf)
	for _, want := range []string{
		"## " + scenarioTitles[scenStreamsRecovery],
		"## " + scenarioTitles[scenStreamsHistory],
		"| time until every client is back (reconnected, missed events replayed) (s) | 2.00 | 8.00 | 4.00× |",
		"| clients recovered (same session, missed events replayed) | 2,000 | 1,000 | 2.00× |",
		"| Redis commands per reconnecting client | 4.00 | 8.00 | 2.00× |",
		"| history's cost: streams minus classic, per event, beyond the CPU at rest (µs) | 10.0 | 50.0 | 5.00× |",
	} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
	// The recovery rows come in the order they are read: the outcome first.
	if i, j := strings.Index(rep, "time until every client is back"), strings.Index(rep, "Redis commands per reconnecting client"); i < 0 || j < i {
		t.Errorf("rows out of order (%d, %d)", i, j)
	}
}
