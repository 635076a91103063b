package leakcheck

import (
	"strings"
	"testing"
	"time"
)

//go:noinline
func parkedHere(started, stop chan struct{}) {
	close(started)
	<-stop
}

// TestGoroutines: a goroutine left running is reported with its stack, and
// no longer once it ended; the caller's own goroutine never is.
func TestGoroutines(t *testing.T) {
	started, stop := make(chan struct{}), make(chan struct{})
	go parkedHere(started, stop)
	<-started
	found := func() bool {
		for _, g := range Goroutines() {
			if strings.Contains(g, "leakcheck.parkedHere") {
				return true
			}
			if strings.Contains(g, "leakcheck.TestGoroutines(") {
				t.Fatalf("the caller's goroutine is reported:\n%s", g)
			}
		}
		return false
	}
	if !found() {
		t.Fatal("a running goroutine is not reported")
	}
	close(stop)
	if leaked := wait(5 * time.Second); strings.Contains(leaked, "parkedHere") {
		t.Fatalf("an ended goroutine is still reported:\n%s", leaked)
	}
	if found() {
		t.Fatal("an ended goroutine is still reported")
	}
}
