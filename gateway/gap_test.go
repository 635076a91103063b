package gateway_test

import (
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
)

// TestHistoryGapForAPrivateIDWithoutOffset: a client cut before its first
// event (before even `connected`) holds the private id of its session and
// no offset. Nothing says what it missed since it connected, so its session
// cannot be restored: it connects afresh and is told so, with
// history:gap from "", never silently.
func TestHistoryGapForAPrivateIDWithoutOffset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		a := e.join("org-1", "user-1", sioclient.Options{})
		first := a.State().SID
		drop(t, e, a)
		emitTo(t, e, events.InvoicePaid, "org-1", "", 1) // missed

		// socket.io-client sends {pid, offset} under the fields of its
		// auth, which win: an offset of null makes this client, which did
		// receive `connected`, send the CONNECT of one cut before it.
		a.SetAuth(map[string]any{"token": e.token("org-1", "user-1", time.Hour), "offset": nil})
		a.Connect()
		if info := a.WaitConnect(); info.Recovered || info.SID == first {
			t.Fatalf("reconnection %+v, want a new socket", info)
		}
		a.Next(gateway.EventConnected)
		if gap := historyGapOf(t, a.Next(gateway.EventHistoryGap)); gap.Reason != "unavailable" || gap.From != "" {
			t.Errorf("history:gap %+v, want reason unavailable from \"\"", gap)
		}
		expectSeqs(t, a, nil, nil) // nothing replayed
		if n := e.gw.Stats().HistoryGaps[socketio.RecoveryUnavailable]; n != 1 {
			t.Errorf("%d gaps counted, want 1", n)
		}

		// A first connection, without a private id, is told nothing.
		b := e.join("org-1", "user-2", sioclient.Options{})
		settle(t, b)
		b.NoEvent(gateway.EventHistoryGap, 0)
	})
}
