package main

import (
	"context"
	"log/slog"
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
	// free is debug.FreeOSMemory; tests count the calls.
	free func()

	samples         []metrics.Sample
	lastAllocs      uint64 // cumulative allocations at the previous tick
	allocsAtRelease uint64 // and at the last release
}

// Indexes of memoryReturner.samples.
const (
	sampleAllocs = iota
	sampleObjects
	sampleUnused
	sampleFree
)

func newMemoryReturner(interval time.Duration, log *slog.Logger) *memoryReturner {
	m := &memoryReturner{interval: interval, log: log, free: debug.FreeOSMemory}
	for _, name := range []string{
		sampleAllocs:  "/gc/heap/allocs:bytes",
		sampleObjects: "/memory/classes/heap/objects:bytes",
		sampleUnused:  "/memory/classes/heap/unused:bytes",
		sampleFree:    "/memory/classes/heap/free:bytes",
	} {
		m.samples = append(m.samples, metrics.Sample{Name: name})
	}
	return m
}

// run checks every interval until ctx ends.
func (m *memoryReturner) run(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	metrics.Read(m.samples)
	m.lastAllocs = m.samples[sampleAllocs].Value.Uint64()
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
	metrics.Read(m.samples)
	allocs := m.samples[sampleAllocs].Value.Uint64()
	objects := m.samples[sampleObjects].Value.Uint64()
	unused := m.samples[sampleUnused].Value.Uint64() + m.samples[sampleFree].Value.Uint64()
	heap := objects + unused // what the heap holds in RSS
	recent, sinceRelease := allocs-m.lastAllocs, allocs-m.allocsAtRelease
	m.lastAllocs = allocs
	// Quiet: the interval allocated under 1/32 of the heap. Worth it: an
	// eighth of the heap is unused, and as much was allocated since the
	// last release (otherwise what is unused is fragmentation, which a
	// release cannot return, and it would run on every tick).
	if recent >= heap/32 || unused < heap/8 || sinceRelease < heap/8 {
		return false
	}
	start := time.Now()
	m.free()
	m.allocsAtRelease = allocs
	m.log.Debug("memory returned to the operating system",
		"heapMB", heap>>20, "unusedMB", unused>>20, "took", time.Since(start).String())
	return true
}
