// Package redistest runs what Redis tests need: a private redis-server on
// a free port in a temporary directory (Start), which a test can kill and
// restart on the same port; a TCP proxy that can make subscription
// connections silently stop delivering (NewProxy); and Node.js processes
// from tests/node driven over JSON lines (StartNode), such as a socket.io
// server with @socket.io/redis-adapter or @socket.io/redis-emitter.
//
// Every process is tied to the test that started it and ends with it.
// Waits are bounded and polled, never slept.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long redis-server may take to accept connections.
const startTimeout = 15 * time.Second

// Server is a redis-server process owned by a test.
type Server struct {
	// Static after Start.
	Port int
	Addr string // 127.0.0.1:PORT
	t    testing.TB
	bin  string
	dir  string

	mu   sync.Mutex
	proc *exec.Cmd
	done chan struct{} // closed when proc has exited
	out  *lockedBuffer
}

// Binary returns the path of redis-server, or fails the test with what to
// install.
func Binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("redistest: redis-server not found: install Redis 7 (e.g. `apt-get install redis-server`, or `brew install redis`) so that redis-server is on PATH")
	return ""
}

// Start runs redis-server on a free port of 127.0.0.1, without persistence,
// and waits until it answers PING. It is killed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir()}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s.Port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Kill)
			return s
		}
		s.Kill() // e.g. the port was taken meanwhile: try another
	}
	t.Fatalf("redistest: cannot start redis-server: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start launches the process on s.Port and waits for PING.
func (s *Server) start() error {
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.Port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--protected-mode", "no",
		"--loglevel", "warning",
	)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.proc, s.done, s.out = cmd, done, out
	s.mu.Unlock()
	deadline := time.Now().Add(startTimeout)
	for {
		if _, err := s.Do("PING"); err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited: %s", strings.TrimSpace(out.String()))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server not answering on %s within %v: %s", s.Addr, startTimeout, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// URL returns redis://127.0.0.1:PORT.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Kill stops redis-server abruptly (SIGKILL), as a crash would, and waits
// until it is gone. It does nothing if it is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	proc, done := s.proc, s.done
	s.proc = nil
	s.mu.Unlock()
	if proc == nil {
		return
	}
	_ = proc.Process.Kill()
	<-done
}

// Restart starts redis-server again on the same port, after Kill (data
// and subscriptions are gone, as after a crash).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		s.Kill()
		if time.Now().After(deadline) {
			s.t.Fatalf("redistest: restarting redis-server on %s: %v", s.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Running reports whether the process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// Do sends one command on a fresh connection and returns the reply in a
// simple text form: a status or bulk string as is, an integer in decimal,
// an array as its elements separated by spaces.
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write(b.Bytes()); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(c))
}

func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, _ := strconv.Atoi(line[1:])
		parts := make([]string, 0, max(n, 0))
		for range n {
			p, err := readReply(r)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, " "), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// NumSub returns the number of subscribers of a channel (PUBSUB NUMSUB),
// or of a shard channel with sharded set (PUBSUB SHARDNUMSUB).
func (s *Server) NumSub(channel string, sharded bool) (int, error) {
	sub := "NUMSUB"
	if sharded {
		sub = "SHARDNUMSUB"
	}
	r, err := s.Do("PUBSUB", sub, channel)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(r)
	if len(f) == 0 {
		return 0, fmt.Errorf("PUBSUB %s: %q", sub, r)
	}
	return strconv.Atoi(f[len(f)-1])
}

// WaitNumSub polls until channel has want subscribers, or fails the test.
func (s *Server) WaitNumSub(t testing.TB, channel string, sharded bool, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, err := s.NumSub(channel, sharded)
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: %s has %d subscribers (%v), want %d", channel, n, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Message is a message received by a Subscription.
type Message struct {
	Pattern string
	Channel string
	Payload []byte
}

// Subscription is a raw PSUBSCRIBE or SSUBSCRIBE connection that records
// what is published, byte for byte.
type Subscription struct {
	conn net.Conn
	msgs chan Message
	done chan struct{}
}

// PSubscribe subscribes to a pattern ("*" for everything) until the test
// ends. It returns once Redis has confirmed the subscription.
func (s *Server) PSubscribe(t testing.TB, pattern string) *Subscription {
	return s.subscribe(t, "PSUBSCRIBE", pattern)
}

// SSubscribe subscribes to shard channels.
func (s *Server) SSubscribe(t testing.TB, channels ...string) *Subscription {
	return s.subscribe(t, "SSUBSCRIBE", channels...)
}

func (s *Server) subscribe(t testing.TB, cmd string, names ...string) *Subscription {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatalf("redistest: subscribe: %v", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n$%d\r\n%s\r\n", len(names)+1, len(cmd), cmd)
	for _, n := range names {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(n), n)
	}
	if _, err := c.Write(b.Bytes()); err != nil {
		t.Fatalf("redistest: subscribe: %v", err)
	}
	sub := &Subscription{conn: c, msgs: make(chan Message, 1024), done: make(chan struct{})}
	r := bufio.NewReader(c)
	for range names {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := readArray(r); err != nil {
			t.Fatalf("redistest: subscribe confirmation: %v", err)
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	go func() {
		defer close(sub.done)
		defer close(sub.msgs)
		for {
			parts, err := readArray(r)
			if err != nil {
				return
			}
			var m Message
			switch {
			case len(parts) == 4 && string(parts[0]) == "pmessage":
				m = Message{Pattern: string(parts[1]), Channel: string(parts[2]), Payload: parts[3]}
			case len(parts) == 3 && (string(parts[0]) == "message" || string(parts[0]) == "smessage"):
				m = Message{Channel: string(parts[1]), Payload: parts[2]}
			default:
				continue
			}
			sub.msgs <- m
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-sub.done
	})
	return sub
}

// Next returns the next message, or fails the test after timeout.
func (sub *Subscription) Next(t testing.TB, timeout time.Duration) Message {
	t.Helper()
	select {
	case m, ok := <-sub.msgs:
		if !ok {
			t.Fatal("redistest: subscription closed")
		}
		return m
	case <-time.After(timeout):
		t.Fatalf("redistest: no message within %v", timeout)
	}
	return Message{}
}

// readArray reads a RESP array of bulk strings (or integers) as raw bytes.
func readArray(r *bufio.Reader) ([][]byte, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if len(line) == 0 || (line[0] != '*' && line[0] != '>') {
		return nil, fmt.Errorf("not an array: %q", line)
	}
	n, _ := strconv.Atoi(line[1:])
	out := make([][]byte, 0, max(n, 0))
	for range n {
		l, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		l = strings.TrimRight(l, "\r\n")
		switch {
		case strings.HasPrefix(l, "$"):
			size, _ := strconv.Atoi(l[1:])
			buf := make([]byte, size+2)
			if _, err := io.ReadFull(r, buf); err != nil {
				return nil, err
			}
			out = append(out, buf[:size])
		case strings.HasPrefix(l, ":"):
			out = append(out, []byte(l[1:]))
		default:
			return nil, fmt.Errorf("unexpected element %q", l)
		}
	}
	return out, nil
}

// PID returns the process id of redis-server (0 when not running), for
// CPU accounting in benchmarks.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.Process.Pid
}
