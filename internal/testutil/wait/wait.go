// Package wait is the one helper tests use to wait for state that has no
// event to wait on: poll a condition until it holds, or fail the test.
//
// The deadlines are generous on purpose: tests run with -race on a loaded
// two-core machine, and a wait only lasts that long when something is
// broken. A test that needs to know how long something took must measure
// it with a benchmark, not with a wait.
package wait

import (
	"testing"
	"time"
)

// Timeout is how long For waits.
const Timeout = 20 * time.Second

// interval is the polling period: short enough not to slow tests down,
// long enough not to compete with the code under test for the CPU.
const interval = 5 * time.Millisecond

// For polls cond until it holds, failing the test (t.Fatalf, naming what
// it waited for) after Timeout.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Within(t, Timeout, what, cond)
}

// Within polls cond until it holds, failing the test after d.
func Within(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(interval)
	}
}
