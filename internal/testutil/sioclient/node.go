package sioclient

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
	// startTimeout bounds how long a Node process may take to start (load modules, listen). Node can
	// be slow to start on a loaded CI machine, hence more than the default wait.
	startTimeout = 20 * time.Second
	// stopTimeout is how long a Node process gets to exit by itself once its stdin is closed before
	// it is killed.
	stopTimeout = 3 * time.Second
	// stderrTailLines is how many of the last stderr lines are kept for failure messages.
	stderrTailLines = 40
)

// RepoRoot returns the root of the module checkout: the nearest directory, walking up from the
// working directory (a package directory under go test), that contains go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("sioclient: getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("sioclient: no go.mod found above the working directory")
		}
		dir = parent
	}
}

// nodeDir returns tests/node after checking that Node.js and the npm packages are installed.
func nodeDir(t testing.TB) (nodeBin, dir string) {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("sioclient: node is not on PATH: install Node.js 20 (e.g. apt-get install nodejs, or from nodejs.org): %v", err)
	}
	dir = filepath.Join(RepoRoot(t), "tests", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io-client", "package.json")); err != nil {
		t.Fatalf("sioclient: %s/node_modules/socket.io-client is missing: run `make deps` (or `npm ci --prefix tests/node`) from the repository root", dir)
	}
	return nodeBin, dir
}

// nodeProc is a Node.js child process tied to a test: it ends when the test ends, its stderr is
// logged (t.Logf, shown with -v or on failure) and its last lines kept for failure messages.
type nodeProc struct {
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

// startNode runs `node script args...` in tests/node. readStdout consumes the process's stdout, on its
// own goroutine. The process is stopped by t.Cleanup: stdin is closed (the scripts exit when
// it does) and, if it does not exit within stopTimeout, it is killed.
func startNode(t testing.TB, label, script string, args []string, readStdout func(*nodeProc, io.Reader)) *nodeProc {
	t.Helper()
	nodeBin, dir := nodeDir(t)
	cmd := exec.Command(nodeBin, append([]string{filepath.Join(dir, script)}, args...)...)
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("sioclient: %s: stdin pipe: %v", label, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("sioclient: %s: stdout pipe: %v", label, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("sioclient: %s: stderr pipe: %v", label, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("sioclient: %s: starting node: %v", label, err)
	}
	p := &nodeProc{t: t, label: label, cmd: cmd, stdin: stdin, exited: make(chan struct{})}

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

func (p *nodeProc) readStderr(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line = strings.TrimRight(line, "\r\n"); line != "" {
			p.note("stderr: " + line)
		}
		if err != nil {
			return
		}
	}
}

// note logs a diagnostic line from a reader goroutine and keeps it for failure messages.
func (p *nodeProc) note(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tail = append(p.tail, line)
	if len(p.tail) > stderrTailLines {
		p.tail = p.tail[len(p.tail)-stderrTailLines:]
	}
	if !p.closed {
		p.t.Logf("%s: %s", p.label, line)
	}
}

// write sends one line to the process's stdin.
func (p *nodeProc) write(line []byte) error {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	_, err := p.stdin.Write(line)
	return err
}

func (p *nodeProc) stop() {
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

// diagnostics describes how the process ended (if it did) and its last stderr lines. It waits a
// little for the process to exit so that a crash's stack trace is complete.
func (p *nodeProc) diagnostics(waitExit time.Duration) string {
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

// StartNodeServer runs a Node.js server script from tests/node (for example "testserver.mjs") for the
// duration of the test and returns its base URL, "http://127.0.0.1:PORT". The script must listen on
// 127.0.0.1, print its port as the first line on stdout and exit when its stdin closes.
func StartNodeServer(t testing.TB, script string, args ...string) string {
	t.Helper()
	portc := make(chan string, 1)
	p := startNode(t, script, script, args, func(_ *nodeProc, r io.Reader) {
		// Only the first line matters; startNode discards the rest.
		line, err := bufio.NewReader(r).ReadString('\n')
		if err == nil {
			portc <- strings.TrimRight(line, "\r\n")
		}
	})
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case port := <-portc:
		if port == "" || strings.Trim(port, "0123456789") != "" {
			t.Fatalf("sioclient: %s: first stdout line is %q, want a port number", script, port)
		}
		return "http://127.0.0.1:" + port
	case <-p.exited:
		t.Fatalf("sioclient: %s did not print its port: %s", script, p.diagnostics(0))
	case <-timer.C:
		t.Fatalf("sioclient: %s did not print its port within %v: %s", script, startTimeout, p.diagnostics(0))
	}
	return ""
}
