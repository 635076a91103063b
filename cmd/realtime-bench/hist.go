package main

import (
	"math/bits"
	"sort"
	"sync/atomic"
	"time"
)

// A histogram of durations in microseconds, log-linear: exact below 128 µs,
// then 64 buckets per power of two (at most 1.6 % error), up to ~2^40 µs.
// It is safe for concurrent use: recorders spread over shards to keep
// atomic increments off each other's cache lines.

const (
	histLinear  = 128
	histSub     = 64
	histBuckets = histLinear + 40*histSub
	histShards  = 16
)

func bucketOf(us uint64) int {
	if us < histLinear {
		return int(us)
	}
	e := bits.Len64(us) - 7 // us>>e is in [64, 128)
	i := histLinear + (e-1)*histSub + int(us>>e) - histSub
	if i >= histBuckets {
		i = histBuckets - 1
	}
	return i
}

// bucketMid returns a representative value (µs) of bucket i.
func bucketMid(i int) float64 {
	if i < histLinear {
		return float64(i)
	}
	k := i - histLinear
	e := k/histSub + 1
	m := uint64(k%histSub + histSub)
	lo := m << e
	return float64(lo) + float64(uint64(1)<<e)/2
}

type shardedHist struct {
	shards [histShards]struct {
		b   [histBuckets]atomic.Uint64
		max atomic.Uint64
		_   [64]byte
	}
}

func (h *shardedHist) record(shard int, d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	s := &h.shards[shard%histShards]
	s.b[bucketOf(us)].Add(1)
	for {
		m := s.max.Load()
		if us <= m || s.max.CompareAndSwap(m, us) {
			break
		}
	}
}

func (h *shardedHist) reset() {
	for i := range h.shards {
		s := &h.shards[i]
		for j := range s.b {
			s.b[j].Store(0)
		}
		s.max.Store(0)
	}
}

// snapshot returns the merged histogram in its sparse wire form.
func (h *shardedHist) snapshot() Hist {
	out := Hist{Counts: map[int]uint64{}}
	for i := range h.shards {
		s := &h.shards[i]
		for j := range s.b {
			if n := s.b[j].Load(); n > 0 {
				out.Counts[j] += n
			}
		}
		out.MaxUS = max(out.MaxUS, s.max.Load())
	}
	return out
}

// Hist is a histogram as exchanged between processes: bucket → count.
type Hist struct {
	Counts map[int]uint64 `json:"c,omitempty"`
	MaxUS  uint64         `json:"max,omitempty"`
}

func (h *Hist) add(o Hist) {
	if h.Counts == nil {
		h.Counts = map[int]uint64{}
	}
	for k, v := range o.Counts {
		h.Counts[k] += v
	}
	h.MaxUS = max(h.MaxUS, o.MaxUS)
}

func (h Hist) count() uint64 {
	var n uint64
	for _, v := range h.Counts {
		n += v
	}
	return n
}

// quantile returns the q-quantile in milliseconds (0 for an empty histogram).
func (h Hist) quantile(q float64) float64 {
	n := h.count()
	if n == 0 {
		return 0
	}
	keys := make([]int, 0, len(h.Counts))
	for k := range h.Counts {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	rank := uint64(q*float64(n-1)) + 1
	var seen uint64
	for _, k := range keys {
		seen += h.Counts[k]
		if seen >= rank {
			return min(bucketMid(k), float64(h.MaxUS)) / 1000
		}
	}
	return float64(h.MaxUS) / 1000
}

func (h Hist) maxMS() float64 { return float64(h.MaxUS) / 1000 }
