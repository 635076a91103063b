package client_test

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/operate/realtime/client"
)

// The client against the real `realtime` binary, built from this checkout
// (with -race, so that the server's races fail the test too).

const binaryAPIKey = "binary_key_0123456789abcdef0123"

// realtimeBinary builds cmd/realtime into the test's directory.
func realtimeBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "realtime")
	out, err := exec.Command("go", "build", "-race", "-o", bin, "github.com/operate/realtime/cmd/realtime").CombinedOutput()
	if err != nil {
		t.Fatalf("building cmd/realtime: %v\n%s", err, out)
	}
	return bin
}

// binaryServer is a running `realtime serve`.
type binaryServer struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	done chan struct{}
	err  error
	http *http.Client // for publishing

	mu   sync.Mutex
	logs []string
}

var listeningLine = regexp.MustCompile(`"msg":"listening".*"addr":"([^"]+)"`)

func startBinary(t *testing.T, bin, addr string, env ...string) *binaryServer {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", addr, "--log-format", "json")
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"JWT_SECRET=" + testSecret, "API_KEYS=" + binaryAPIKey, "SHUTDOWN_TIMEOUT=5s",
	}, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &binaryServer{t: t, cmd: cmd, done: make(chan struct{}), http: &http.Client{Transport: &http.Transport{}}}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.logs = append(s.logs, sc.Text())
			s.mu.Unlock()
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				listening <- m[1]
			}
		}
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.stop() })
	select {
	case s.addr = <-listening:
	case <-s.done:
		t.Fatalf("realtime exited before listening: %v\n%s", s.err, s.output())
	case <-time.After(waitTimeout):
		t.Fatalf("realtime not listening after %v:\n%s", waitTimeout, s.output())
	}
	return s
}

func (s *binaryServer) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.logs, "\n")
}

// stop sends SIGTERM and expects a clean exit, without a data race.
func (s *binaryServer) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.http.CloseIdleConnections()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(waitTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		s.t.Errorf("realtime did not exit within %v of SIGTERM", waitTimeout)
	}
	if s.err != nil || strings.Contains(s.output(), "DATA RACE") {
		s.t.Errorf("realtime exited with %v:\n%s", s.err, s.output())
	}
}

func (s *binaryServer) publishSeq(t *testing.T, org string, seq int) {
	t.Helper()
	body := `{"event":"invoice:paid","payload":{"organizationId":"` + org + `","invoiceId":"inv_` + strconv.Itoa(seq) + `","seq":` + strconv.Itoa(seq) + `}}`
	req, err := http.NewRequest(http.MethodPost, "http://"+s.addr+"/api/v1/events", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+binaryAPIKey)
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish %d: HTTP %d", seq, resp.StatusCode)
	}
}

// TestBinary runs a client on socket.io-client's default transports (polling,
// then the upgrade) against `realtime serve` through a fault proxy, with
// tokens that expire every 3 s: cuts are recovered with nothing missing,
// the tokens are refreshed, and a restart of the server is told as a
// history gap, after which the subscriptions are back.
func TestBinary(t *testing.T) {
	env := []string{"RECOVERY_WINDOW=1m", "PING_INTERVAL=1s", "PING_TIMEOUT=1s", "JWT_LEEWAY=0s", "TOKEN_EXPIRY_WARNING=1s"}
	bin := realtimeBinary(t)
	first := startBinary(t, bin, "127.0.0.1:0", env...)
	p := newProxy(t, first.addr)
	src := &tokenSource{t: t, org: "org_bin", user: "u1", ttl: 3 * time.Second}
	c := newClient(t, client.Config{URL: "http://" + p.Addr(), TokenSource: src.get, Transport: client.TransportUpgrade})
	r := record(c, "invoice:paid", "expense:created", "connected", "auth:expiring")
	connect(t, c)
	r.waitFor(t, "the connected event", func(r *recorder) bool { return len(r.events["connected"]) == 1 })
	waitTransport(t, c, "websocket")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := c.Subscribe(ctx, []string{"invoice:*"}); err != nil {
		t.Fatal(err)
	}

	n := 0
	for round := range 3 {
		for range 20 {
			n++
			first.publishSeq(t, "org_bin", n)
		}
		r.waitFor(t, "the events before the cut", func(r *recorder) bool { return len(r.events["invoice:paid"]) == n })
		cutUntilDisconnected(t, p, r, round+1)
		for range 20 {
			n++
			first.publishSeq(t, "org_bin", n)
		}
		r.waitFor(t, "a recovered reconnection", func(r *recorder) bool {
			return len(r.connects) == round+2 && r.connects[round+1].Recovered
		})
	}
	r.waitFor(t, "every event, and two refreshes", func(r *recorder) bool {
		return len(r.events["invoice:paid"]) >= n && len(r.events["auth:expiring"]) >= 2
	})
	if seqs := r.seqs(t, "invoice:paid"); !consecutive(seqs, 1, n) {
		t.Fatalf("received %d events, not 1..%d once each in order: %v", len(seqs), n, seqs)
	}

	// A restart: the new process knows nothing of the session.
	first.stop()
	second := startBinary(t, bin, "127.0.0.1:0", env...)
	p.SetTarget(second.addr)
	r.waitFor(t, "the history gap", func(r *recorder) bool { return len(r.gaps) == 1 })
	waitConnected(t, c)
	waitTransport(t, c, "websocket")
	expense := `{"event":"expense:created","payload":{"organizationId":"org_bin","expenseId":"e1"}}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+second.addr+"/api/v1/events", strings.NewReader(expense))
	req.Header.Set("Authorization", "Bearer "+binaryAPIKey)
	if resp, err := second.http.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish expense:created: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	second.publishSeq(t, "org_bin", n+1)
	r.waitFor(t, "the event after the restart", func(r *recorder) bool { return len(r.events["invoice:paid"]) == n+1 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gaps[0].Reason != "unavailable" || r.connects[len(r.connects)-1].Recovered {
		t.Errorf("gap %+v, last connection %+v", r.gaps[0], r.connects[len(r.connects)-1])
	}
	if len(r.events["expense:created"]) != 0 {
		t.Error("expense:created delivered after the restart: the subscription was not restored")
	}
	if slices.Contains(r.log, "disconnect io server disconnect") {
		t.Errorf("a token expired: %q", r.log)
	}
	for _, err := range r.errs { // failed attempts while the server restarted are expected
		if !strings.Contains(err.Error(), "connection attempt") {
			t.Errorf("error reported: %v", err)
		}
	}
}

func waitConnected(t *testing.T, c *client.Client) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !c.Connected() {
		if time.Now().After(deadline) {
			t.Fatalf("not connected after %v", waitTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
