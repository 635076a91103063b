package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/internal/testutil/sioclient"
)

// These tests build the realtime binary and run it as a subprocess, as an
// operator would.

var binary string // path of the built binary, set by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "realtime-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "realtime")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building realtime:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// baseEnv is a clean environment: no configuration leaks in from the
// machine running the tests.
func baseEnv(kv ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for i := 0; i+1 < len(kv); i += 2 {
		env = append(env, kv[i]+"="+kv[i+1])
	}
	return env
}

// server is a running `realtime serve`.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	done chan struct{} // closed when the process exited
	err  error         // Wait's result, once done

	mu     sync.Mutex
	stderr bytes.Buffer
}

var (
	listening        = regexp.MustCompile(`"msg":"listening".*"addr":"([^"]+)"`)
	metricsListening = regexp.MustCompile(`"msg":"metrics","addr":"([^"]+)"`)
)

// startServer runs the binary with a JSON log on a free local port and
// waits until it listens.
func startServer(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Env = env
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.stderr.WriteString(line + "\n")
			s.mu.Unlock()
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("server output:\n%s", s.output())
		}
	})
	select {
	case a := <-addr:
		s.url = "http://" + a
	case <-s.done:
		t.Fatalf("server exited before listening: %v\n%s", s.err, s.output())
	case <-time.After(20 * time.Second):
		t.Fatalf("server not listening after 20s:\n%s", s.output())
	}
	return s
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// waitLog waits until the output contains all of want.
func (s *server) waitLog(want ...string) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := s.output()
		missing := ""
		for _, w := range want {
			if !strings.Contains(out, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("server output lacks %q:\n%s", missing, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.t.Fatalf("server still running 15s after SIGTERM:\n%s", s.output())
	}
	if s.err != nil {
		s.t.Fatalf("server exited with %v:\n%s", s.err, s.output())
	}
}

// runCLI runs a client subcommand and returns its stdout, stderr and exit
// code.
func runCLI(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errOut.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), 0
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var bannerKey = regexp.MustCompile(`API key\s+(dev_[0-9a-f]+)`)

// TestDevelopmentMode: with no configuration at all, the server starts,
// prints a development API key once, mints tokens for `realtime token`,
// publishes what `realtime emit` sends to a real socket.io-client, and
// shuts down gracefully on SIGTERM, telling its client to reconnect.
func TestDevelopmentMode(t *testing.T) {
	srv := startServer(t, baseEnv())
	// The banner's last line: the log is read line by line, and counting
	// the key before that line arrived would find it once.
	srv.waitLog("DEVELOPMENT MODE", "realtime emit invoice:created")
	m := bannerKey.FindStringSubmatch(srv.output())
	if m == nil {
		t.Fatalf("no API key in the banner:\n%s", srv.output())
	}
	key := m[1]
	if n := strings.Count(srv.output(), key); n != 2 { // the key line and the example command, once
		t.Errorf("the API key appears %d times, want it in the one banner", n)
	}
	if code, body := get(t, srv.url+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz: %d %s", code, body)
	}
	if code, body := get(t, srv.url+"/readyz"); code != http.StatusOK {
		t.Errorf("readyz: %d %s", code, body)
	}

	// realtime token: no secret here, so it asks the server's /dev/token.
	tok, stderr, code := runCLI(t, baseEnv(), "token", "--url", srv.url, "--org", "org-1", "--user", "user-1", "--ttl", "10m")
	if code != 0 {
		t.Fatalf("realtime token: exit %d: %s", code, stderr)
	}
	tok = strings.TrimSpace(tok)

	d := sioclient.Start(t)
	c := d.Connect(srv.url+"/events", sioclient.Options{Auth: map[string]any{"token": tok}, ReconnectionDelay: 100, ReconnectionDelayMax: 200})
	c.WaitConnect()
	var conn struct{ UserID, OrganizationID string }
	if err := json.Unmarshal(c.Next("connected").Args[0], &conn); err != nil || conn.UserID != "user-1" || conn.OrganizationID != "org-1" {
		t.Fatalf("connected %+v, %v", conn, err)
	}
	srv.waitLog(`"msg":"gateway: client connected"`, `"userId":"user-1"`)

	// realtime emit, flags after the event; the key from the environment.
	id, stderr, code := runCLI(t, baseEnv("REALTIME_API_KEY", key), "emit", "invoice:paid", "--url", srv.url, "--org", "org-1", "--data", `{"invoiceId":"inv-9","amount":12.5}`)
	if code != 0 || len(strings.TrimSpace(id)) != 26 {
		t.Fatalf("realtime emit: exit %d, id %q: %s", code, id, stderr)
	}
	ev := c.Next("invoice:paid")
	var p map[string]any
	if err := json.Unmarshal(ev.Args[0], &p); err != nil || p["invoiceId"] != "inv-9" || p["amount"] != 12.5 || p["organizationId"] != "org-1" {
		t.Fatalf("received %s (%v)", ev, err)
	}
	// A rejected emit says why, with the API's field path.
	_, stderr, code = runCLI(t, baseEnv("API_KEYS", key), "emit", "--url", srv.url, "--org", "org-1", "invoice:paid")
	if code != 1 || !strings.Contains(stderr, "missing_field") || !strings.Contains(stderr, "payload.invoiceId") {
		t.Fatalf("invalid emit: exit %d: %s", code, stderr)
	}
	_, stderr, code = runCLI(t, baseEnv(), "emit", "invoice:paid", "--url", srv.url, "--api-key", "wrong-key-0123456789abcdef", "--org", "org-1", "--data", `{"invoiceId":"x"}`)
	if code != 1 || !strings.Contains(stderr, "403") {
		t.Fatalf("emit with a wrong key: exit %d: %s", code, stderr)
	}
	c.NoEvent("invoice:paid", 100*time.Millisecond)

	// Metrics, on the main listener by default.
	code, body := get(t, srv.url+"/metrics")
	for _, want := range []string{"realtime_connections 1\n", `realtime_events_published_total{event="invoice:paid"} 1` + "\n", "realtime_engine_bytes_out_total "} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET /metrics: %d, lacks %q:\n%s", code, strings.TrimSpace(want), body)
		}
	}

	// Graceful shutdown: the client is told to reconnect (an Engine.IO
	// close: "transport close"), not "io server disconnect".
	srv.stop()
	if reason := c.WaitDisconnect(); reason != "transport close" {
		t.Errorf("disconnect reason %q, want \"transport close\"", reason)
	}
	if st := c.State(); !st.Active {
		t.Errorf("client state %+v: want it reconnecting", st)
	}
	c.Close() // stop its reconnection attempts
	out := srv.output()
	for _, want := range []string{`"msg":"shutting down"`, `"connections":1`, `"msg":"shutdown complete"`, `"msg":"gateway: client disconnected"`, `"reason":"server shutting down"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, tok[strings.LastIndexByte(tok, '.')+1:]) {
		t.Error("the token appears in the logs")
	}
}

// TestProductionMode: with a secret and API keys, there is no banner and no
// /dev/token; tokens signed with the secret (`realtime token` with
// JWT_SECRET) connect; a query-string token never reaches the logs.
func TestProductionMode(t *testing.T) {
	const secret = "production-secret-0123456789abcdef"
	const key = "production-key-0123456789abcdef"
	srv := startServer(t, baseEnv("JWT_SECRET", secret, "API_KEYS", key, "LOG_LEVEL", "debug", "RECOVERY_WINDOW", "1m", "METRICS_ADDR", "127.0.0.1:0",
		"PUBLISH_RATE", "0.5", "PUBLISH_BURST", "100"))
	// The metrics listener is opened, and logged, before the main one.
	m := metricsListening.FindStringSubmatch(srv.output())
	if m == nil {
		t.Fatalf("no metrics listener in the log:\n%s", srv.output())
	}
	metricsAddr := m[1]
	if strings.Contains(srv.output(), "DEVELOPMENT") {
		t.Fatalf("development banner in production:\n%s", srv.output())
	}
	resp, err := http.Post(srv.url+"/dev/token", "application/json", strings.NewReader(`{"organizationId":"o","userId":"u"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST /dev/token in production: %d", resp.StatusCode)
	}
	_, stderr, code := runCLI(t, baseEnv(), "token", "--url", srv.url, "--org", "o", "--user", "u")
	if code != 1 || !strings.Contains(stderr, "not in development mode") {
		t.Fatalf("token from a production server: exit %d: %s", code, stderr)
	}

	tok, stderr, code := runCLI(t, baseEnv("JWT_ACCESS_SECRET", secret), "token", "--org", "org-7", "--user", "user-7", "--role", "admin")
	if code != 0 {
		t.Fatalf("token: exit %d: %s", code, stderr)
	}
	tok = strings.TrimSpace(tok)
	v, err := auth.New(t.Context(), auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if cl, err := v.Verify(t.Context(), tok); err != nil || cl.Role != "admin" || cl.OrganizationID != "org-7" {
		t.Fatalf("minted token: %+v, %v", cl, err)
	}

	d := sioclient.Start(t)
	c := d.Connect(srv.url+"/events", sioclient.Options{Query: map[string]string{"token": tok}, Transports: []string{"polling"}})
	c.WaitConnect()
	c.Next("connected")
	bad := d.Connect(srv.url+"/events", sioclient.Options{Query: map[string]string{"token": tok + "x"}, Reconnection: new(false)})
	if ce := bad.WaitConnectError(); ce.Message != "Unauthorized: Invalid token" {
		t.Errorf("bad token: %+v", ce)
	}
	srv.waitLog(`"msg":"gateway: connection refused"`, `"code":"INVALID_TOKEN"`, `token=eyJhbG…`)

	// METRICS_ADDR: metrics on their own listener, not on the public one.
	if code, _ := get(t, srv.url+"/metrics"); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the main listener with METRICS_ADDR: %d, want 404", code)
	}
	if code, body := get(t, "http://"+metricsAddr+"/metrics"); code != http.StatusOK || !strings.Contains(body, `realtime_connections_refused_total{code="INVALID_TOKEN"} 1`) {
		t.Errorf("GET /metrics on METRICS_ADDR: %d:\n%s", code, body)
	}

	id, stderr, code := runCLI(t, baseEnv("API_KEYS", key), "emit", "hr:leave_approved", "--url", srv.url, "--org", "org-7", "--user", "user-7", "--target-user", "user-7")
	if code != 0 {
		t.Fatalf("emit: exit %d: %s", code, stderr)
	}
	ev := c.Next("hr:leave_approved")
	if !strings.Contains(string(ev.Args[0]), `"userId":"user-7"`) {
		t.Errorf("received %s (id %s)", ev, id)
	}

	// RECOVERY_WINDOW: a client that drops and comes back gets what it
	// missed, on the same socket.
	r := d.Connect(srv.url+"/events", sioclient.Options{Auth: map[string]any{"token": tok}, Transports: []string{"websocket"}, Reconnection: new(false)})
	sid := r.WaitConnect().SID
	r.Next("connected") // carries an offset: the client can recover from here
	srv.waitLog(`"msg":"connection state recovery","window":"1m0s"`)
	r.CloseEngine()
	r.WaitDisconnect()
	srv.waitLog(`"msg":"gateway: client disconnected","sid":"` + sid + `"`)
	if _, stderr, code := runCLI(t, baseEnv("API_KEYS", key), "emit", "invoice:paid", "--url", srv.url, "--org", "org-7", "--data", `{"invoiceId":"inv-1"}`); code != 0 {
		t.Fatalf("emit: exit %d: %s", code, stderr)
	}
	r.Connect()
	if info := r.WaitConnect(); !info.Recovered || info.SID != sid {
		t.Fatalf("reconnection %+v, want socket %s recovered", info, sid)
	}
	if ev := r.Next("invoice:paid"); !strings.Contains(string(ev.Args[0]), `"invoiceId":"inv-1"`) {
		t.Errorf("missed event %s", ev)
	}

	// PUBLISH_RATE: the key's budget of 100 events (two spent above) runs
	// out within two full batches, and the refusal says when to retry.
	items := make([]string, 100)
	for i := range items {
		items[i] = `{"event":"invoice:paid","payload":{"organizationId":"org-7","invoiceId":"inv-b"}}`
	}
	batch := "[" + strings.Join(items, ",") + "]"
	limited := false
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, srv.url+"/api/v1/events/batch", strings.NewReader(batch))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			if !strings.Contains(string(body), `"code":"rate_limited"`) || resp.Header.Get("Retry-After") == "" {
				t.Errorf("429 without its code or Retry-After: %v %s", resp.Header, body)
			}
			limited = true
			break
		}
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("batch: %d %s", resp.StatusCode, body)
		}
	}
	if !limited {
		t.Error("PUBLISH_RATE=0.5 PUBLISH_BURST=100: two batches of 100 passed")
	}
	if code, body := get(t, "http://"+metricsAddr+"/metrics"); !strings.Contains(body, "realtime_publish_events_limited_total 100\n") {
		t.Errorf("GET /metrics after a refused batch: %d:\n%s", code, body)
	}

	c.Close()
	bad.Close()
	r.Close()
	srv.stop()
	if strings.Contains(srv.output(), tok[strings.LastIndexByte(tok, '.')+1:]) {
		t.Errorf("the token appears in the logs:\n%s", srv.output())
	}
}

// TestCommandErrors: configuration and usage mistakes exit non-zero with a
// clear message.
func TestCommandErrors(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"production without a key", baseEnv("DEV_MODE", "false"), []string{"serve"}, 1, "no JWT key is configured"},
		{"bad JWT algorithm", baseEnv("JWT_SECRET", "s", "JWT_ALGORITHMS", "RS256"), []string{}, 1, "RS256"},
		{"unknown command", baseEnv(), []string{"launch"}, 2, `unknown command "launch"`},
		{"unknown flag", baseEnv(), []string{"--verbose"}, 2, "flag provided but not defined"},
		{"token without user", baseEnv(), []string{"token", "--org", "o"}, 2, "--org and --user are required"},
		{"emit without event", baseEnv("API_KEYS", "k"), []string{"emit", "--org", "o"}, 2, "exactly one EVENT"},
		{"emit without key", baseEnv(), []string{"emit", "invoice:paid", "--org", "o"}, 2, "no API key"},
		{"emit with bad data", baseEnv("API_KEYS", "k"), []string{"emit", "invoice:paid", "--org", "o", "--data", "{"}, 2, "JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, tc.code, tc.want)
			}
		})
	}
	out, _, code := runCLI(t, baseEnv(), "help")
	if code != 0 || !strings.Contains(out, "realtime emit EVENT") {
		t.Errorf("help: exit %d: %s", code, out)
	}
}

// TestHTTPLimits: the listener does not let a client hold a descriptor or
// memory for nothing: an idle keep-alive connection and a request whose
// body never comes are closed, oversized headers are refused; long polls,
// which wait longer than the read timeout on purpose, are not affected.
func TestHTTPLimits(t *testing.T) {
	t.Parallel()
	const key = "limits-key-0123456789abcdef"
	s := startServer(t, baseEnv("JWT_SECRET", secret, "API_KEYS", key,
		"HTTP_READ_TIMEOUT", "1s", "HTTP_IDLE_TIMEOUT", "1s", "MAX_HEADER_BYTES", "8192", "PING_INTERVAL", "3s"))
	addr := strings.TrimPrefix(s.url, "http://")

	// closedWithin sends req on a new connection, reads whatever comes, and
	// reports how long the server took to close the connection.
	closedWithin := func(req string) (time.Duration, string) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		got, err := io.ReadAll(conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after 20s (request %.40q)", req)
		}
		return time.Since(start), string(got)
	}

	t.Run("idle keep-alive", func(t *testing.T) {
		d, got := closedWithin("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 200") {
			t.Fatalf("response %.60q", got)
		}
		if d < time.Second {
			t.Errorf("closed after %v, before the 1s idle timeout", d)
		}
	})
	t.Run("body that never comes", func(t *testing.T) {
		d, _ := closedWithin("POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key +
			"\r\nContent-Type: application/json\r\nContent-Length: 900000\r\n\r\n{\"event\":")
		if d < time.Second {
			t.Errorf("closed after %v, before the 1s read timeout", d)
		}
	})
	t.Run("oversized headers", func(t *testing.T) {
		_, got := closedWithin("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20000) + "\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 431") {
			t.Fatalf("response %.60q, want 431", got)
		}
	})
	t.Run("long poll", func(t *testing.T) {
		resp, err := http.Get(s.url + "/socket.io/?EIO=4&transport=polling")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var open struct{ SID string }
		if err := json.Unmarshal(bytes.TrimPrefix(body, []byte("0")), &open); err != nil || open.SID == "" {
			t.Fatalf("handshake %q: %v", body, err)
		}
		start := time.Now()
		resp, err = http.Get(s.url + "/socket.io/?EIO=4&transport=polling&sid=" + open.SID)
		if err != nil {
			t.Fatalf("long poll: %v", err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "2" || time.Since(start) < 2*time.Second {
			t.Fatalf("long poll: %d %q after %v, want the ping after about 3s", resp.StatusCode, body, time.Since(start))
		}
	})
}
