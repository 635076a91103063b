package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run the load generator's clients against the real `realtime`
// binary, built once from this tree.

var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "realtime-bench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	killAll()
	os.RemoveAll(dir)
	os.Exit(code)
}

// realtimeBinary builds ./cmd/realtime (once) and returns its path.
func realtimeBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binPath = filepath.Join(binDir, "realtime")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/operate/realtime/cmd/realtime").CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build ./cmd/realtime: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

func TestTransportShares(t *testing.T) {
	counts := map[transport]int{}
	for g := range 1000 {
		counts[transportOf(g, 10, 25)]++
	}
	if counts[transportPolling] != 100 || counts[transportUpgrade] != 250 || counts[transportWebSocket] != 650 {
		t.Fatalf("10 %% polling, 25 %% upgrade of 1000 clients: got %v", counts)
	}
	if got := transportOf(7, 0, 0); got != transportWebSocket {
		t.Fatalf("no polling, no upgrade: client 7 uses %v", got)
	}
}

// TestEveryTransportStaysConnectedPastEveryTimeout connects clients of the
// three kinds (polling then upgrade, polling only, WebSocket only) to our
// server on a short heartbeat and write timeout, idles past all of them,
// then publishes: every client stays connected and gets every event of
// its organization. An upgrade the client left unfinished would end in a
// ping timeout during the idle; a write deadline left behind by the
// upgrade would cut the connection at the first write after the idle.
func TestEveryTransportStaysConnectedPastEveryTimeout(t *testing.T) {
	const (
		clients = 100
		orgs    = 4
	)
	srv, err := startServer(serverSpec{
		kind: kindOurs, ours: realtimeBinary(t), secret: "test-secret-0123456789abcdef", apiKey: "test_key_0123456789abcdef0123",
		logDir: t.TempDir(), name: "ours", pingInterval: time.Second, pingTimeout: 2 * time.Second,
		writeTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.stop)

	w := &worker{}
	if r := w.do(Cmd{
		Op: "setup", Secret: "test-secret-0123456789abcdef", Namespace: "/events", Event: "invoice:created",
		Targets: []string{srv.addr}, Sources: []string{"127.0.0.1"}, Count: clients, Orgs: orgs,
		PollingPercent: 20, UpgradePercent: 40, TokenTTL: time.Hour,
	}); r.Err != "" {
		t.Fatal(r.Err)
	}
	t.Cleanup(func() { w.do(Cmd{Op: "quit"}) })
	c := w.do(Cmd{Op: "connect", Concurrency: 20})
	if c.Connected != clients || c.Failed != 0 {
		t.Fatalf("connected %d of %d, failed %d: %v", c.Connected, clients, c.Failed, c.Errors)
	}
	st := w.do(Cmd{Op: "stats"})
	if st.Alive != clients || st.AlivePolling != 20 || st.AliveUpgraded != 40 {
		t.Fatalf("alive %d (%d polling, %d upgraded), want 100 (20, 40)", st.Alive, st.AlivePolling, st.AliveUpgraded)
	}
	if st.PingIntervalMS != 1000 || st.PingTimeoutMS != 2000 {
		t.Fatalf("announced heartbeat %d/%d ms, want 1000/2000", st.PingIntervalMS, st.PingTimeoutMS)
	}

	// Past the heartbeat (1 + 2 s) and the write timeout (1 s), twice. A
	// shorter heartbeat (it was 0.3 + 0.7 s) lost a connection now and then
	// on a loaded two-core machine running the race detector: a polling
	// client's next GET came after the ping timeout.
	time.Sleep(6500 * time.Millisecond)
	if st := w.do(Cmd{Op: "stats"}); st.Closed != 0 || st.Alive != clients {
		t.Fatalf("after the idle: %d connections closed, %d alive", st.Closed, st.Alive)
	}

	pub := newPublisher(kindOurs, srv.addr, "test_key_0123456789abcdef0123", "invoice:created", 2)
	defer pub.close()
	all := []int{0, 1, 2, 3}
	ps := pub.run(float64(3*orgs), time.Second, all, orgs) // three events per organization
	if ps.Errors > 0 {
		t.Fatalf("%d publish errors: %s", ps.Errors, ps.FirstErr)
	}
	var want int64
	for o, k := range ps.PerOrg {
		want += k * members(clients, orgs, o)
	}
	if want != 3*clients {
		t.Fatalf("%d deliveries due, want %d", want, 3*clients)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := w.do(Cmd{Op: "stats"})
		if st.Closed != 0 {
			t.Fatalf("%d connections closed after the idle (%d of %d events delivered)", st.Closed, st.Received, want)
		}
		if st.Received == want {
			break
		}
		if st.Received > want || time.Now().After(deadline) {
			t.Fatalf("received %d events, want %d", st.Received, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReportMarksLosses(t *testing.T) {
	setup := clientSetup{UpgradePercent: 25, PingInterval: 10 * time.Second, PingTimeout: 20 * time.Second,
		WriteTimeout: 10 * time.Second, Idle: 35 * time.Second}
	results := []Result{
		{Scenario: "fanout-one-org", Server: kindNode, Rep: 1, M: map[string]float64{"after_idle_lost": 0, "after_idle_disconnects": 0, "ramp_lost": 900, "ramp_disconnects": 3}},
		{Scenario: "fanout-one-org", Server: kindOurs, Rep: 1, M: map[string]float64{"after_idle_lost": 0, "after_idle_disconnects": 0}},
		{Scenario: "fanout-one-org", Server: kindOurs, Rep: 2, M: map[string]float64{"after_idle_lost": 0, "after_idle_disconnects": 0}},
		{Scenario: "fanout-one-org", Server: kindOurs, Rep: 3, M: map[string]float64{"after_idle_lost": 7500, "after_idle_disconnects": 2500}},
		{Scenario: "burst", Server: kindOurs, Rep: 1, M: map[string]float64{"burst_lost": 0, "burst_disconnects": 0}},
		{Scenario: "storm", Server: kindOurs, Rep: 1, M: map[string]float64{"storm_per_sec": 1000}},
	}
	rep := buildReport(resultsFile{Repeat: 3, Clients: setup, Results: results})

	// One repetition of three lost events: the sum shows it, not the median.
	for _, want := range []string{
		"## 2a. Fan-out, one organization — LOST EVENTS OR DISCONNECTS (ours: 7,500 lost, 2,500 disconnects)",
		"| 2a. Fan-out, one organization | ours | 7,500 | 2,500 | 7,500 lost after the idle, 2,500 during and after the idle | – | **LOSSES** |",
		"| deliveries lost in the publication after the idle | 7,500 | 0 |  |",
		// Overload at failing steps is listed, not marked.
		"| 2a. Fan-out, one organization | node | 0 | 0 |  | 900 / 3 | ok |",
		"| 3. Bursts | ours | 0 | 0 |  | – | ok |",
		"25 % long-polling then upgrade to WebSocket",
		"the clients idle 35s after connecting",
	} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q\n%s", want, rep)
		}
	}
	if strings.Contains(rep, "## 3. Bursts — LOST") {
		t.Errorf("bursts without losses are marked\n%s", rep)
	}
	if strings.Contains(rep, "| 4. Handshake storm (every client reconnects at once) | ours |") {
		t.Errorf("the storm, which counts no losses, has a verdict\n%s", rep)
	}
	bad := unexpectedLosses(results)
	if len(bad) != 1 || !strings.HasPrefix(bad[0], "fanout-one-org/ours: 7,500 events lost, 2,500 disconnects") {
		t.Fatalf("unexpectedLosses = %q", bad)
	}
}
