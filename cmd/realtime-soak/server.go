package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// jwtSecret signs the clients' tokens and is the server's JWT_SECRET.
	jwtSecret = "soak-secret-0123456789abcdef0123456789"
	// apiKey is the server's one API key, for publishing.
	apiKey = "soak_key_0123456789abcdef0123456789"
)

// repoRoot finds the module's root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from the repository")
		}
		dir = parent
	}
}

// buildServer builds cmd/realtime into dir.
func buildServer(ctx context.Context, root, dir string, logw io.Writer) (string, error) {
	bin := filepath.Join(dir, "realtime")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/realtime")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the server: %w", err)
	}
	return bin, nil
}

// freePort returns a loopback port nobody listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// server is one run of the binary; the soak runs two, one after the other,
// on the same port.
type server struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu          sync.Mutex
	disconnects map[string]int // the server's "gateway: client disconnected" lines by reason
	warnings    []string       // its warning and error lines (the first ones)
}

// startServer runs bin on addr with the soak's environment, its log
// appended to logFile, and waits until it answers /readyz.
func startServer(ctx context.Context, bin, addr string, cfg config, extraEnv []string, logFile *os.File) (*server, error) {
	cmd := exec.Command(bin, "serve", "--addr", addr, "--log-format", "json")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"JWT_SECRET=" + jwtSecret, "API_KEYS=" + apiKey,
		"RECOVERY_WINDOW=" + cfg.RecoveryWindow.String(),
		"TOKEN_EXPIRY_WARNING=" + cfg.ExpiryWarning.String(),
		"PING_INTERVAL=" + cfg.PingInterval.String(),
		"PING_TIMEOUT=" + cfg.PingTimeout.String(),
		"SHUTDOWN_TIMEOUT=10s",
		// The population connects from one address.
		"MAX_CONNECTIONS_PER_ADDRESS=off", "MAX_CONNECTIONS_PER_USER=off", "MAX_CONNECTIONS_PER_ORG=off",
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	if v := os.Getenv("SOAK_PPROF_ADDR"); v != "" && !strings.Contains(strings.Join(extraEnv, " "), "REALTIME_PPROF_ADDR") {
		// For digging into a failure: the first node serves pprof there.
		cmd.Env = append(cmd.Env, "REALTIME_PPROF_ADDR="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("server stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &server{cmd: cmd, done: make(chan struct{}), disconnects: map[string]int{}}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = logFile.Write(append(line, '\n'))
			var e struct{ Level, Msg, Reason string }
			if json.Unmarshal(line, &e) != nil {
				continue
			}
			s.mu.Lock()
			switch {
			case e.Msg == "gateway: client disconnected":
				s.disconnects[e.Reason]++
			case (e.Level == "WARN" || e.Level == "ERROR") && len(s.warnings) < 20:
				s.warnings = append(s.warnings, string(line))
			}
			s.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
		s.err = cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ready(ctx, "http://"+addr+"/readyz") {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("the server exited before it was ready: %v (log: %s)", s.err, logFile.Name())
		case <-ctx.Done():
			s.stop(time.Second)
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop(time.Second)
			return nil, fmt.Errorf("the server was not ready after 30s (log: %s)", logFile.Name())
		}
	}
}

func ready(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop sends SIGTERM and waits for the exit (SIGKILL after grace); it
// returns the exit error, nil for a clean exit.
func (s *server) stop(grace time.Duration) error {
	select {
	case <-s.done:
		return s.err
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return s.err
	case <-time.After(grace):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("still running %s after SIGTERM: killed", grace)
	}
}

// kill ends the process with SIGKILL (a crash: nothing it would do on its
// way out is done) and waits for it.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

func (s *server) serverDisconnects() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.disconnects))
	for k, v := range s.disconnects {
		out[k] = v
	}
	return out
}

// scrape reads the figures the soak samples from /metrics.
func scrape(ctx context.Context, base string) (Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return Sample{}, fmt.Errorf("metrics request: %w", err)
	}
	// A connection of its own, closed after: the scrape must not hold a
	// descriptor open in the server between two readings of open files.
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Sample{}, fmt.Errorf("scraping metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Sample{}, fmt.Errorf("scraping metrics: %s", resp.Status)
	}
	var s Sample
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "realtime_connections":
			s.Conns = int(v)
		case "process_resident_memory_bytes":
			s.RSS = v
		case "go_goroutines":
			s.Goroutines = v
		case "process_open_fds":
			s.FDs = v
		}
	}
	if err := sc.Err(); err != nil {
		return Sample{}, fmt.Errorf("reading metrics: %w", err)
	}
	return s, nil
}

// startRedis runs a redis-server of the soak's own on addr (no
// persistence: the cluster's history lives as long as this process), and
// waits until it answers.
func startRedis(ctx context.Context, addr, dir string, logw io.Writer) (*exec.Cmd, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("redis address %q: %w", addr, err)
	}
	cmd := exec.Command("redis-server", "--port", port, "--bind", host, "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting redis-server (make deps installs it): %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_, werr := c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			n, rerr := c.Read(buf)
			c.Close()
			if werr == nil && rerr == nil && strings.HasPrefix(string(buf[:n]), "+PONG") {
				return cmd, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("redis-server not answering on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// redisInt sends one command to the redis-server at addr and reads its
// integer answer.
func redisInt(ctx context.Context, addr string, args ...string) (int64, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, fmt.Errorf("redis %s: %w", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return 0, fmt.Errorf("redis %s: %w", addr, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("redis %s: %w", addr, err)
	}
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, ":") {
		return 0, fmt.Errorf("redis %s: %s answered %q", addr, args[0], line)
	}
	return strconv.ParseInt(line[1:], 10, 64)
}
