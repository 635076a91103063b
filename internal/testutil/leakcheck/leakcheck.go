// Package leakcheck fails a test binary whose tests leave goroutines
// running: every server shut down, every connection closed, every child
// process reaped. Use it from TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Patience is how long goroutines get to finish after the tests: closing
// connections and reaping processes take a moment on a loaded machine.
const Patience = 15 * time.Second

// Main runs the tests and, when they passed, exits non-zero with the stacks
// of the goroutines still running Patience later (other than the runtime's,
// the testing package's and signal handling's).
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := wait(Patience); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutine leak: these goroutines are still running after the tests:\n\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func wait(patience time.Duration) string {
	deadline := time.Now().Add(patience)
	for {
		leaked := Goroutines()
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Goroutines returns the stacks of the goroutines other than the caller's,
// the testing package's and signal handling's.
func Goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		g = strings.TrimSpace(g)
		if i == 0 || g == "" || benign(g) {
			continue // the first stack is the caller's own
		}
		out = append(out, g)
	}
	return out
}

func benign(stack string) bool {
	for _, s := range []string{"testing.(*M).", "os/signal.signal_recv", "os/signal.loop"} {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}
