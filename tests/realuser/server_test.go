package realuser

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// jwtSecret signs the clients' tokens (auth.Mint) and is the server's JWT_SECRET.
	jwtSecret = "realuser-test-secret-0123456789abcdef"
	// apiKey is the server's one API key, for publishing.
	apiKey = "realuser_key_0123456789abcdef0123"
)

// binary is the realtime binary under test. TestMain sets it before any
// test runs; it is read-only afterwards.
var binary string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	if bin := os.Getenv("REALTIME_BINARY"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "REALTIME_BINARY:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "realuser: testing the binary", abs)
		binary = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "realuser-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "realtime")
	build := exec.Command("go", "build", "-race", "-o", binary, "github.com/operate/realtime/cmd/realtime")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building realtime:", err)
		return 1
	}
	return m.Run()
}

// server is a running `realtime serve`, stopped with SIGTERM when its test
// ends; the test fails unless it exits cleanly and without a data race.
type server struct {
	t    *testing.T
	url  string // http://127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{} // closed once the process exited and its output is read
	err  error         // the process's exit, once done is closed

	mu   sync.Mutex
	logs []string // every line of its standard error
}

var listeningLine = regexp.MustCompile(`"msg":"listening".*"addr":"([^"]+)"`)

// startServer runs the binary on a free loopback port with a clean
// environment (only what the test gives, on top of the key and secret) and
// waits until it listens.
func startServer(t *testing.T, env map[string]string) *server {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"JWT_SECRET=" + jwtSecret, "API_KEYS=" + apiKey,
		"SHUTDOWN_TIMEOUT=5s",
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", binary, err)
	}
	s := &server{t: t, cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs = append(s.logs, line)
			s.mu.Unlock()
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.stop)
	select {
	case a := <-addr:
		s.url = "http://" + a
	case <-s.done:
		t.Fatalf("server exited before listening: %v\n%s", s.err, s.output())
	case <-time.After(30 * time.Second):
		t.Fatalf("server not listening after 30s:\n%s", s.output())
	}
	return s
}

// stop sends SIGTERM and checks the exit. It runs in the test's cleanup,
// after the clients (started later, so cleaned up earlier) are gone.
func (s *server) stop() {
	t := s.t
	select {
	case <-s.done:
		t.Errorf("the server exited during the test: %v", s.err)
	default:
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("SIGTERM: %v", err)
		}
		select {
		case <-s.done:
			if s.err != nil {
				t.Errorf("the server exited with %v after SIGTERM", s.err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("the server was still running 20s after SIGTERM")
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	out := s.output()
	if strings.Contains(out, "WARNING: DATA RACE") {
		t.Errorf("the server reported a data race")
	}
	if t.Failed() {
		t.Logf("server log:\n%s", out)
	}
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.logs, "\n")
}

// logEntry is the part of a server log line the tests read.
type logEntry struct {
	Msg    string `json:"msg"`
	Reason string `json:"reason"`
	SID    string `json:"sid"`
}

// disconnects counts the server's "gateway: client disconnected" lines by
// reason.
func (s *server) disconnects() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, line := range s.logs {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "gateway: client disconnected" {
			out[e.Reason]++
		}
	}
	return out
}

// metrics scrapes /metrics: every sample, keyed by its name and labels as
// written (e.g. `realtime_token_refreshes_total{result="ok"}`).
func (s *server) metrics() map[string]float64 {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/metrics", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	// A connection of its own, closed after: the scrape must not keep a
	// descriptor open in the server between two readings of open files.
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("scraping metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("scraping metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		s.t.Fatalf("reading metrics: %v", err)
	}
	return out
}

// waitMetric waits until the metric satisfies ok, and returns its value.
func (s *server) waitMetric(name string, within time.Duration, ok func(float64) bool, want string) float64 {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := s.metrics()[name]
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("metric %s = %v after %v, want %s", name, v, within, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// resources are the server's figures that must come back to where they
// were once the clients are gone.
type resources struct {
	openFiles, goroutines float64
}

func (s *server) resources() resources {
	s.t.Helper()
	m := s.metrics()
	return resources{openFiles: m["process_open_fds"], goroutines: m["go_goroutines"]}
}

// waitReleased waits until the server has no connection and no session
// left, and its open files and goroutines are back to base.
func (s *server) waitReleased(base resources) {
	s.t.Helper()
	s.waitMetric("realtime_connections", 15*time.Second, func(v float64) bool { return v == 0 }, "0")
	s.waitMetric("realtime_engine_sessions", 15*time.Second, func(v float64) bool { return v == 0 }, "0")
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := s.resources()
		if r.openFiles <= base.openFiles && r.goroutines <= base.goroutines {
			s.t.Logf("the server released everything: %v open files and %v goroutines, %v and %v before any client connected",
				r.openFiles, r.goroutines, base.openFiles, base.goroutines)
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the server holds %v open files and %v goroutines with no client, %v and %v before any connected",
				r.openFiles, r.goroutines, base.openFiles, base.goroutines)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
