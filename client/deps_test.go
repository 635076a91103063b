package client_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImportsNoServerPackage: a service that imports the client must not
// pull in the server (engineio, socketio, the gateway, JWT or Redis
// libraries): besides the standard library it may use the wire codecs, the
// client-side WebSocket codec and the event catalog, nothing else.
func TestImportsNoServerPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/operate/realtime/client").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{
		"github.com/operate/realtime/client",
		"github.com/operate/realtime/gateway/events",
		"github.com/operate/realtime/internal/wsframe",
		"github.com/operate/realtime/protocol/eio",
		"github.com/operate/realtime/protocol/sio",
	}
	for _, pkg := range strings.Fields(string(out)) {
		if !slices.Contains(allowed, pkg) {
			t.Errorf("the client depends on %s", pkg)
		}
	}
}
