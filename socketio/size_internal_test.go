package socketio

import (
	"testing"
	"unsafe"

	"github.com/operate/realtime/internal/testutil/sizes"
)

// Every idle connection holds a Socket and a client: keep them within their
// size classes (docs/benchmarks.md itemizes the memory of an idle
// connection).
func TestPerConnectionStructSizes(t *testing.T) {
	sizes.AtMost(t,
		sizes.Limit{Name: "Socket", Size: unsafe.Sizeof(Socket{}), Max: 192},
		sizes.Limit{Name: "client", Size: unsafe.Sizeof(client{}), Max: 80},
	)
}
