package main

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// defaultMemoryReturnInterval is MEMORY_RETURN_INTERVAL's default.
const defaultMemoryReturnInterval = 5 * time.Second

// memoryReturner gives the heap's free pages back to the operating system
// when the server is quiet. Go keeps the pages a burst of garbage (a
// connection storm: handshakes, token verification) left free for
// minutes, releasing them slowly, so that the RSS of a server holding idle
// connections stays well above its live heap (~1.7x here, the GC target
// included). When nothing much was allocated over an interval and at least
// an eighth of the heap's memory is unused, one debug.FreeOSMemory (a
// collection and a full scavenge, a few milliseconds per 10,000
// connections) brings the RSS down to the live heap. A busy server, which
// would only allocate those pages again, is left alone.
type memoryReturner struct {
	interval time.Duration
	log      *slog.Logger
	// free is debug.FreeOSMemory and read reads the heap's figures; tests
	// replace them.
	free func()
	read func() heapFigures

	lastAllocs      uint64 // cumulative allocations at the previous tick
	allocsAtRelease uint64 // and at the last release
}

// heapFigures are what the decision reads of the runtime, in bytes.
type heapFigures struct {
	allocs  uint64 // allocated since the process started
	objects uint64 // held by objects, live or not yet swept
	unused  uint64 // held by the heap in RSS but by no object
}

func newMemoryReturner(interval time.Duration, log *slog.Logger) *memoryReturner {
	samples := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"}, // free but not yet released
	}
	read := func() heapFigures {
		metrics.Read(samples)
		return heapFigures{
			allocs:  samples[0].Value.Uint64(),
			objects: samples[1].Value.Uint64(),
			unused:  samples[2].Value.Uint64() + samples[3].Value.Uint64(),
		}
	}
	return &memoryReturner{interval: interval, log: log, free: freeOSMemory, read: read}
}

// freeOSMemory collects twice, then returns the free heap. The first
// collection moves what sync.Pools hold (the buffers of the storm's
// handshakes: net/http's bufio readers and writers, WebSocket read buffers)
// to their victim caches, the second frees them; debug.FreeOSMemory's own
// collection alone would leave them.
func freeOSMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// run checks every interval until ctx ends.
func (m *memoryReturner) run(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	m.lastAllocs = m.read().allocs
	m.allocsAtRelease = m.lastAllocs
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.tick()
		}
	}
}

// tick releases the free memory if the last interval was quiet and enough
// of the heap is unused. It reports whether it did.
func (m *memoryReturner) tick() bool {
	f := m.read()
	heap := f.objects + f.unused // what the heap holds in RSS
	recent, sinceRelease := f.allocs-m.lastAllocs, f.allocs-m.allocsAtRelease
	m.lastAllocs = f.allocs
	// Quiet: the interval allocated under 1/32 of the heap. Worth it: an
	// eighth of the heap is unused, and as much was allocated since the
	// last release (otherwise what is unused is fragmentation, which a
	// release cannot return, and it would run on every tick).
	if recent >= heap/32 || f.unused < heap/8 || sinceRelease < heap/8 {
		return false
	}
	start := time.Now()
	m.free()
	m.allocsAtRelease = f.allocs
	m.log.Debug("memory returned to the operating system",
		"heapMB", heap>>20, "unusedMB", f.unused>>20, "took", time.Since(start).String())
	return true
}
