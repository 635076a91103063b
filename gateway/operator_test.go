package gateway_test

import (
	"maps"
	"testing"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
)

// TestOrganizationConnectionsAndAddress: the per-organization counts follow
// connections and disconnections, and each socket knows its client address.
func TestOrganizationConnectionsAndAddress(t *testing.T) {
	e := newEnv(t, envOptions{})
	a1 := e.join("org_a", "u1", sioclient.Options{})
	e.join("org_a", "u2", sioclient.Options{})
	e.join("org_b", "u3", sioclient.Options{})
	want := map[string]int{"org_a": 2, "org_b": 1}
	wait.For(t, "three counted connections", func() bool { return maps.Equal(e.gw.OrganizationConnections(), want) })

	for _, s := range e.gw.Namespace().Sockets() {
		if addr, ok := gateway.ClientAddressOf(s); !ok || addr != "127.0.0.1" {
			t.Errorf("socket %s: address %q, %t", s.ID(), addr, ok)
		}
	}
	if _, ok := gateway.ClientAddressOf(&socketio.Socket{}); ok {
		t.Error("ClientAddressOf accepted a socket without a gateway session")
	}

	a1.Close()
	want = map[string]int{"org_a": 1, "org_b": 1}
	wait.For(t, "one organization's connection gone", func() bool { return maps.Equal(e.gw.OrganizationConnections(), want) })
}
