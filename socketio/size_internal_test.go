package socketio

import (
	"testing"
	"unsafe"
)

// Every idle connection holds a Socket and a client: keep them within their
// size classes (docs/benchmarks.md itemizes the memory of an idle
// connection).
func TestPerConnectionStructSizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		size, max uintptr
	}{
		{"Socket", unsafe.Sizeof(Socket{}), 192},
		{"client", unsafe.Sizeof(client{}), 80},
	} {
		if c.size > c.max {
			t.Errorf("%s is %d bytes, want at most %d", c.name, c.size, c.max)
		}
	}
}
