package gateway

import (
	"testing"
	"unsafe"
)

// Every idle connection holds a session: keep it within its size class
// (docs/benchmarks.md itemizes the memory of an idle connection).
func TestSessionSize(t *testing.T) {
	if got := unsafe.Sizeof(session{}); got > 192 {
		t.Errorf("session is %d bytes, want at most 192", got)
	}
}
