package engineio_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package when goroutines started by the tests outlive
// them: once every test has cleaned up (servers shut down, connections
// closed), the count must come back to what it was before, and no goroutine
// may still run code of this package, net/http or gobwas/ws.
func TestMain(m *testing.M) {
	base := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		if err := settleGoroutines(base, 15*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// leakMarkers identify goroutines the tests are responsible for.
var leakMarkers = []string{
	"github.com/operate/realtime/engineio.",
	"net/http.",
	"net/http/httptest.",
	"github.com/gobwas/ws",
}

func settleGoroutines(base int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n := runtime.NumGoroutine()
		leaked := leakedStacks()
		if n <= base && len(leaked) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("goroutine leak: %d goroutines, %d before the tests; still running:\n\n%s",
				n, base, strings.Join(leaked, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leakedStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "engineio_test.settleGoroutines") || strings.Contains(g, "engineio_test.leakedStacks") {
			continue
		}
		for _, m := range leakMarkers {
			if strings.Contains(g, m) {
				leaked = append(leaked, g)
				break
			}
		}
	}
	return leaked
}
