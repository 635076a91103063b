// Package nodeproc runs the Node.js scripts of tests/node as child processes
// tied to a test: the real socket.io-client driver, Node socket.io servers,
// the Redis adapter and emitter peers. A process ends with its test (its
// stdin is closed, then it is killed if it lingers); its stderr is logged
// and its last lines kept for failure messages.
package nodeproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// stopTimeout is how long a process gets to exit by itself once its
	// stdin is closed before it is killed.
	stopTimeout = 3 * time.Second
	// tailLines is how many of the last stderr lines are kept.
	tailLines = 40
)

// RepoRoot returns the root of the module checkout: the nearest directory,
// walking up from the working directory (a package directory under go
// test), that contains go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("nodeproc: getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("nodeproc: no go.mod found above the working directory")
		}
		dir = parent
	}
}

// Dir returns the node binary and tests/node, after checking that Node.js
// is installed and that tests/node/node_modules holds the package pkg.
func Dir(t testing.TB, pkg string) (nodeBin, dir string) {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("nodeproc: node is not on PATH: install Node.js 20 (e.g. apt-get install nodejs, or from nodejs.org): %v", err)
	}
	dir = filepath.Join(RepoRoot(t), "tests", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
		t.Fatalf("nodeproc: %s/node_modules/%s is missing: run `make deps` (or `npm ci --prefix tests/node`) from the repository root", dir, pkg)
	}
	return nodeBin, dir
}

// Proc is a running Node.js script.
type Proc struct {
	t     testing.TB
	label string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	writeMu sync.Mutex // serialises writes to stdin and its closing

	mu     sync.Mutex
	closed bool // set when the test's cleanup starts: no t.Logf afterwards (it would panic)
	tail   []string

	exited  chan struct{} // closed once the process has exited and its output has been read
	exitErr error         // valid after exited is closed
}

// Start runs `node tests/node/<script> args...`, failing the test unless
// tests/node/node_modules holds pkg. readStdout consumes the process's
// stdout on its own goroutine; whatever it leaves unread is discarded.
// The process is stopped by t.Cleanup.
func Start(t testing.TB, label, pkg, script string, args []string, readStdout func(*Proc, io.Reader)) *Proc {
	t.Helper()
	nodeBin, dir := Dir(t, pkg)
	cmd := exec.Command(nodeBin, append([]string{filepath.Join(dir, script)}, args...)...)
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("nodeproc: %s: stdin pipe: %v", label, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("nodeproc: %s: stdout pipe: %v", label, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("nodeproc: %s: stderr pipe: %v", label, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("nodeproc: %s: starting node: %v", label, err)
	}
	p := &Proc{t: t, label: label, cmd: cmd, stdin: stdin, exited: make(chan struct{})}

	// cmd.Wait closes the pipes, so it may only run once both readers have seen EOF.
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		readStdout(p, stdout)
		_, _ = io.Copy(io.Discard, stdout) // in case readStdout stopped early
	}()
	go func() {
		defer readers.Done()
		p.readStderr(stderr)
	}()
	go func() {
		readers.Wait()
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *Proc) readStderr(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line = strings.TrimRight(line, "\r\n"); line != "" {
			p.Note("stderr: " + line)
		}
		if err != nil {
			return
		}
	}
}

// Note logs a diagnostic line (from any goroutine, also after the test
// ended) and keeps it for Diagnostics.
func (p *Proc) Note(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tail = append(p.tail, line)
	if len(p.tail) > tailLines {
		p.tail = p.tail[len(p.tail)-tailLines:]
	}
	if !p.closed {
		p.t.Logf("%s: %s", p.label, line)
	}
}

// Write sends bytes (whole lines) to the process's stdin.
func (p *Proc) Write(line []byte) error {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	_, err := p.stdin.Write(line)
	return err
}

// Exited is closed once the process has exited and its output is read.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// PID is the process id, for CPU accounting in benchmarks.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

func (p *Proc) stop() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()

	p.writeMu.Lock()
	_ = p.stdin.Close()
	p.writeMu.Unlock()

	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Diagnostics describes how the process ended (if it did) and its last
// stderr lines. It waits up to waitExit for the process to exit, so that a
// crash's stack trace is complete.
func (p *Proc) Diagnostics(waitExit time.Duration) string {
	timer := time.NewTimer(waitExit)
	defer timer.Stop()
	var b strings.Builder
	select {
	case <-p.exited:
		var exitErr *exec.ExitError
		switch {
		case p.exitErr == nil:
			b.WriteString("node exited with status 0")
		case errors.As(p.exitErr, &exitErr):
			fmt.Fprintf(&b, "node exited: %v", exitErr)
		default:
			fmt.Fprintf(&b, "node: %v", p.exitErr)
		}
	case <-timer.C:
		b.WriteString("node is still running")
	}
	p.mu.Lock()
	tail := append([]string(nil), p.tail...)
	p.mu.Unlock()
	if len(tail) == 0 {
		b.WriteString("; nothing on stderr")
	} else {
		b.WriteString("; last stderr lines:\n\t" + strings.Join(tail, "\n\t"))
	}
	return b.String()
}
