package socketio_test

import (
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
)

// TestRecoveryWithoutOffset: a client that received no event before it
// was cut holds its session's private id and no offset, and sends only the
// id. Nothing says what it missed since it connected, so the session is
// not restored, and the new socket says why (NotRecovered: unavailable,
// from no offset), as for any failed recovery.
func TestRecoveryWithoutOffset(t *testing.T) {
	ts := newTestServer(t, &socketio.Options{Recovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}})
	nsp := ts.Of("/")
	conns, discs := connections(nsp), disconnections(nsp)
	d := startDriver(t)
	c := d.Connect(ts.URL+"/", fastReconnect(sioclient.Options{Transports: wsOnly}))
	first := c.WaitConnect()
	s := recv(t, conns, "connection")
	if off, why := s.NotRecovered(); off != "" || why != "" {
		t.Errorf("first connection: NotRecovered %q, %q", off, why)
	}

	c.CloseEngine() // before any event: the client has no offset
	if dc := recv(t, discs, "server-side disconnect"); dc.id != first.SID || dc.reason != socketio.ReasonTransportClose {
		t.Errorf("server-side disconnect %+v", dc)
	}
	mustEmit(t, nsp.Emit("missed", 1))
	again := c.WaitConnect()
	if again.Recovered || again.SID == first.SID {
		t.Fatalf("reconnection %+v, want a new socket", again)
	}
	s = recv(t, conns, "second connection")
	if off, why := s.NotRecovered(); off != "" || why != socketio.RecoveryUnavailable {
		t.Errorf("reconnection without an offset: NotRecovered %q, %q, want \"\", %q", off, why, socketio.RecoveryUnavailable)
	}
	c.NoEvent("missed", 0)
}
