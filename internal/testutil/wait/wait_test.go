package wait_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/wait"
)

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	var calls atomic.Int32
	wait.For(t, "the third call", func() bool { return calls.Add(1) == 3 })
	if n := calls.Load(); n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}

// fakeT records a failure instead of ending the test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	panic(f) // Fatalf must not return
}

func TestWithinFailsAfterTheDeadline(t *testing.T) {
	ft := &fakeT{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil && r != ft {
				panic(r)
			}
		}()
		wait.Within(ft, 50*time.Millisecond, "never", func() bool { return false })
	}()
	if want := "timed out after 50ms waiting for never"; ft.failed != want {
		t.Fatalf("failure %q, want %q", ft.failed, want)
	}
}
