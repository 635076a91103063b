package engineio_test

import (
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/operate/realtime/engineio"
)

// releasedWhenClosed waits until r's session, closed, is garbage: nothing
// of the server holds it any more (a timer left running would, until it
// fires). The recorder forgets it first.
func releasedWhenClosed(t *testing.T, r *sessionRec) {
	t.Helper()
	r.waitClosed(t)
	wp := weak.Make(r.sess)
	r.sess = nil // Closed was called: the recorder reads it no more
	waitFor(t, "the closed session to be released", func() bool {
		runtime.GC()
		return wp.Value() == nil
	})
}

// TestClosedSessionsAreReleased: the timers a session arms (the fallback
// that ends a polling session closing with packets queued whose client
// does not come back, the upgrade timeout) are stopped when it closes, so
// that a closed session is not kept for their whole duration (a minute
// here: PingInterval+PingTimeout, UpgradeTimeout), with its queue and
// request, by the thousands after a mass disconnection.
func TestClosedSessionsAreReleased(t *testing.T) {
	opts := func() *engineio.Options {
		return &engineio.Options{PingInterval: 200 * time.Millisecond, PingTimeout: time.Minute, UpgradeTimeout: time.Minute}
	}
	t.Run("polling, closed with packets queued", func(t *testing.T) {
		e := newEnv(t, opts(), newRecorder(false))
		sid, r := e.handshake()
		_ = r.sess.Send(engineio.NewPacket(4, []byte("last")))
		r.sess.Close() // delivers "last" first: the fallback timer is armed
		var got []string
		for !slices.Contains(got, "1") && len(got) < 10 {
			_, body := e.poll(sid)
			got = append(got, strings.Split(body, "\x1e")...)
		}
		if !slices.Contains(got, "4last") || !slices.Contains(got, "1") {
			t.Fatalf("GETs: %q, want the packet and the close", got)
		}
		releasedWhenClosed(t, r)
	})
	t.Run("upgraded", func(t *testing.T) {
		e := newEnv(t, opts(), newRecorder(false))
		sid, r := e.handshake()
		c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
		c.sendText("2probe")
		c.expectText("3probe")
		c.sendText("5")
		waitFor(t, "the switch to WebSocket", func() bool { return r.sess.Transport() == "websocket" })
		c.sendText("1") // the client closes
		releasedWhenClosed(t, r)
	})
}
