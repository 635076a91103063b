package engineio

import (
	"net/http/httptest"
	"testing"
	"unsafe"

	"github.com/operate/realtime/internal/testutil/sizes"
)

// Every idle WebSocket connection holds a Session and a wsConn: keep them
// within their size classes (docs/benchmarks.md itemizes the memory of an
// idle connection).
func TestPerConnectionStructSizes(t *testing.T) {
	sizes.AtMost(t,
		sizes.Limit{Name: "Session", Size: unsafe.Sizeof(Session{}), Max: 192},
		sizes.Limit{Name: "wsConn", Size: unsafe.Sizeof(wsConn{}), Max: 224},
	)
}

// Handshakes with the same URI share one string; another URI gets its own.
func TestRequestURIShared(t *testing.T) {
	s := &Server{}
	const uri = "/socket.io/?EIO=4&transport=websocket"
	a := s.requestURI(httptest.NewRequest("GET", uri, nil))
	b := s.requestURI(httptest.NewRequest("GET", uri, nil))
	if a != uri || b != uri {
		t.Fatalf("URIs %q, %q, want %q", a, b, uri)
	}
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("two handshakes with the same URI keep a string each")
	}
	other := "/socket.io/?EIO=4&transport=polling&t=abc"
	if c := s.requestURI(httptest.NewRequest("GET", other, nil)); c != other {
		t.Errorf("URI %q, want %q", c, other)
	}
}
