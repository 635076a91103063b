package main

import (
	"context"
	"io"
	"log/slog"
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

const mib = 1 << 20

func quietReturner() *memoryReturner {
	return newMemoryReturner(time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// The decision, on scripted heap figures: release after a burst once the
// process is quiet, once; never while busy, nor for fragmentation alone.
func TestMemoryReturnerDecisions(t *testing.T) {
	m := quietReturner()
	var calls int
	m.free = func() { calls++ }
	var f heapFigures
	m.read = func() heapFigures { return f }
	for _, step := range []struct {
		name                    string
		allocs, objects, unused uint64
		want                    bool
	}{
		{"during a burst", 100 * mib, 40 * mib, 60 * mib, false},
		{"quiet after the burst", 100*mib + mib/2, 40 * mib, 60 * mib, true},
		{"quiet, only fragmentation left", 101 * mib, 40 * mib, 8 * mib, false},
		{"still quiet", 101*mib + mib/2, 40 * mib, 8 * mib, false},
		{"busy", 121 * mib, 40 * mib, 30 * mib, false},
		{"quiet after busy", 121*mib + mib/8, 40 * mib, 30 * mib, true},
		{"busy again", 141 * mib, 40 * mib, 2 * mib, false},
		{"quiet, little unused", 141*mib + mib/8, 40 * mib, 2 * mib, false},
	} {
		f = heapFigures{allocs: step.allocs, objects: step.objects, unused: step.unused}
		if got := m.tick(); got != step.want {
			t.Fatalf("%s: released %v, want %v", step.name, got, step.want)
		}
	}
	if calls != 2 {
		t.Errorf("FreeOSMemory called %d times, want 2", calls)
	}
}

// run reads the runtime's figures, releases on its own ticker, and stops
// when its context ends.
func TestMemoryReturnerRunsUntilCancelled(t *testing.T) {
	m := newMemoryReturner(10*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var calls, reads atomic.Int32
	m.free = func() { calls.Add(1) }
	m.read = func() heapFigures {
		// A burst of 100 MiB before the first tick, then nothing.
		if reads.Add(1) == 1 {
			return heapFigures{objects: 40 * mib, unused: 60 * mib}
		}
		return heapFigures{allocs: 100 * mib, objects: 40 * mib, unused: 60 * mib}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.run(ctx); close(done) }()
	wait.For(t, "memory returned after a burst", func() bool { return calls.Load() == 1 })
	cancel()
	wait.For(t, "run returned after its context ended", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
	if calls.Load() != 1 {
		t.Errorf("FreeOSMemory called %d times, want 1", calls.Load())
	}
}

// The production reader sees the runtime's allocations.
func TestHeapFiguresAreTheRuntimes(t *testing.T) {
	m := quietReturner()
	before := m.read()
	keep := make([][]byte, 0, 64)
	for range 64 {
		keep = append(keep, make([]byte, 64<<10))
	}
	after := m.read()
	if before.objects == 0 || after.allocs < before.allocs+4*mib {
		t.Errorf("heap figures %+v then %+v after allocating 4 MiB", before, after)
	}
	_ = keep[63][0]
}
