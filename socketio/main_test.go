package socketio_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain checks, after the tests passed, that they left no goroutine
// behind: every server is shut down, every connection closed, every Node
// process reaped. Goroutines take a moment to finish, so the check retries
// for a while before it fails.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitForLeaks(15 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutine leak: these goroutines are still running after the tests:\n\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// waitForLeaks returns the stacks of unexpected goroutines, or "" once there
// are none.
func waitForLeaks(patience time.Duration) string {
	deadline := time.Now().Add(patience)
	for {
		leaked := interestingGoroutines()
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// interestingGoroutines lists the goroutines other than this one and the
// runtime's and testing package's own.
func interestingGoroutines() []string {
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
	for _, g := range strings.Split(string(buf), "\n\n") {
		g = strings.TrimSpace(g)
		if g == "" || benignGoroutine(g) {
			continue
		}
		out = append(out, g)
	}
	return out
}

func benignGoroutine(stack string) bool {
	for _, s := range []string{
		"socketio_test.TestMain", // this goroutine
		"testing.(*M).",          // the test binary's main
		"os/signal.signal_recv",  // signal.Notify's loop, if anything used it
		"os/signal.loop",
	} {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}
