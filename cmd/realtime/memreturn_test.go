package main

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/wait"
)

func TestMemoryReturnInterval(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{{"", defaultMemoryReturnInterval}, {"off", 0}, {"30s", 30 * time.Second}} {
		c, err := loadServeConfig(nil, mapEnv("MEMORY_RETURN_INTERVAL", tc.value))
		if err != nil {
			t.Fatalf("MEMORY_RETURN_INTERVAL=%q: %v", tc.value, err)
		}
		if c.memoryReturn != tc.want {
			t.Errorf("MEMORY_RETURN_INTERVAL=%q: %s, want %s", tc.value, c.memoryReturn, tc.want)
		}
	}
}

// garbage allocates n bytes that are dead once it returns.
func garbage(n int) int {
	sum := 0
	for range n >> 16 {
		b := make([]byte, 64<<10)
		sum += len(b)
	}
	return sum
}

// The free heap a burst left behind is returned once the process is quiet,
// once: with nothing allocated since, the next ticks leave it alone.
func TestMemoryReturnerReleasesAfterABurstOnce(t *testing.T) {
	m := newMemoryReturner(time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var calls atomic.Int32
	m.free = func() { calls.Add(1); debug.FreeOSMemory() }
	runtime.GC()
	debug.FreeOSMemory()
	// Ticks are driven by hand: run only reads the starting point.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m.run(ctx)

	// A burst that keeps a live heap (so that the thresholds are met by the
	// burst, not by an empty heap) and leaves 64 MiB of garbage.
	live := make([][]byte, 0, 256)
	for range 256 {
		live = append(live, make([]byte, 16<<10))
	}
	garbage(64 << 20)
	runtime.GC() // the burst's pages are now free, not yet released
	// The tick right after the burst sees it as recent: not quiet.
	if m.tick() {
		t.Fatal("released during the burst")
	}
	if !m.tick() {
		t.Fatal("a quiet tick after the burst did not release")
	}
	if calls.Load() != 1 {
		t.Fatalf("FreeOSMemory called %d times, want 1", calls.Load())
	}
	for range 3 {
		if m.tick() {
			t.Fatal("released again with nothing allocated since")
		}
	}
	runtime.KeepAlive(live)
}

// run stops when its context ends, and releases on its own ticker.
func TestMemoryReturnerRunsUntilCancelled(t *testing.T) {
	m := newMemoryReturner(20*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var calls atomic.Int32
	m.free = func() { calls.Add(1); debug.FreeOSMemory() }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.run(ctx); close(done) }()
	live := make([][]byte, 0, 256)
	for range 256 {
		live = append(live, make([]byte, 16<<10))
	}
	garbage(64 << 20)
	runtime.GC()
	wait.For(t, "memory returned after a burst", func() bool { return calls.Load() >= 1 })
	cancel()
	wait.For(t, "run returned after its context ended", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
	runtime.KeepAlive(live)
}
