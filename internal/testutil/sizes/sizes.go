// Package sizes checks that the structs every idle connection holds stay
// within the sizes docs/benchmarks.md itemizes: a field added to one of them
// costs every connection, and this says so in a test rather than in the
// next benchmark run.
package sizes

import "testing"

// Limit is a struct's size (unsafe.Sizeof) and the most it may be: usually
// the top of its allocation size class.
type Limit struct {
	Name      string
	Size, Max uintptr
}

// AtMost fails t for every struct larger than its limit.
func AtMost(t testing.TB, limits ...Limit) {
	t.Helper()
	for _, l := range limits {
		if l.Size > l.Max {
			t.Errorf("%s is %d bytes, want at most %d (docs/benchmarks.md itemizes the memory of an idle connection)", l.Name, l.Size, l.Max)
		}
	}
}
