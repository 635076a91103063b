package main

import (
	"math"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h shardedHist
	for i := 1; i <= 10000; i++ { // 1 µs … 10 ms
		h.record(i, time.Duration(i)*time.Microsecond)
	}
	s := h.snapshot()
	if s.count() != 10000 {
		t.Fatalf("count %d", s.count())
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 5}, {0.99, 9.9}, {0.001, 0.01}} {
		got := s.quantile(c.q)
		if math.Abs(got-c.want)/c.want > 0.02 {
			t.Errorf("q%.3f = %.4f ms, want %.4f ±2%%", c.q, got, c.want)
		}
	}
	if s.maxMS() != 10 {
		t.Errorf("max %.3f ms", s.maxMS())
	}
	var merged Hist
	merged.add(s)
	merged.add(s)
	if merged.count() != 20000 || merged.quantile(0.5) != s.quantile(0.5) {
		t.Errorf("merge: %d, p50 %.3f", merged.count(), merged.quantile(0.5))
	}
}

func TestBucketsAreMonotonic(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<24; us = us*9/8 + 1 {
		b := bucketOf(us)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d < %d", us, b, prev)
		}
		if mid := bucketMid(b); math.Abs(mid-float64(us)) > 0.02*float64(us)+1 {
			t.Fatalf("bucketMid(bucketOf(%d)) = %.0f", us, mid)
		}
		prev = b
	}
}

func TestShareAndMembers(t *testing.T) {
	total := 0
	for i := range 3 {
		first, count := share(10001, 3, i)
		if first != total {
			t.Fatalf("worker %d starts at %d, want %d", i, first, total)
		}
		total += count
	}
	if total != 10001 {
		t.Fatalf("shares cover %d clients", total)
	}
	var m int64
	for o := range 7 {
		m += members(100, 7, o)
	}
	if m != 100 || members(100, 7, 0) != 15 || members(100, 7, 6) != 14 {
		t.Fatalf("members: %d", m)
	}
}

func TestMedianAndRatio(t *testing.T) {
	if median([]float64{3, 1, 2}) != 2 || median([]float64{4, 1, 2, 3}) != 2.5 {
		t.Fatal("median")
	}
	if r, _ := ratio(metricInfo("rss_kb_per_conn@10000"), 5, 15); r != 3 {
		t.Fatalf("lower-is-better ratio %.2f", r)
	}
	if r, _ := ratio(metricInfo("sat_deliveries_sec"), 50, 10); r != 5 {
		t.Fatalf("higher-is-better ratio %.2f", r)
	}
}
