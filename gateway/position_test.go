package gateway_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// TestConnectedGivesAPositionWithoutALogEntry: the connected event of a new
// socket carries the recovery log's head as its offset instead of a log
// entry of its own. Clients connecting one after another with nothing
// published meanwhile all get the offset of the last event, so a
// reconnection storm appends nothing that could trim the events being
// recovered out of a bounded log (a stream's MAXLEN); a client that
// received nothing but connected recovers from it; and connected is never
// replayed.
func TestConnectedGivesAPositionWithoutALogEntry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		watcher := e.join("org-1", "user-0", sioclient.Options{})
		emitTo(t, e, events.InvoiceCreated, "org-1", "", 1)
		head := offsetOf(t, watcher.Next(string(events.InvoiceCreated)))

		clients := make([]*sioclient.Client, 10)
		for i := range clients {
			c := e.connect(sioclient.Options{Auth: map[string]any{"token": e.token("org-1", fmt.Sprintf("user-%d", i+1), time.Hour)}})
			c.WaitConnect()
			ev := c.Next(gateway.EventConnected)
			if got := offsetOf(t, ev); got != head {
				t.Fatalf("client %d: connected carries offset %q, want the head %q (one log entry per connection?)", i, got, head)
			}
			clients[i] = c
		}

		// A client that received nothing but connected recovers from it.
		c := clients[3]
		first := c.State().SID
		drop(t, e, c)
		emitTo(t, e, events.InvoicePaid, "org-1", "", 2)
		emitTo(t, e, events.NotificationNew, "org-1", "user-4", 3)
		c.Connect()
		if info := c.WaitConnect(); !info.Recovered || info.SID != first {
			t.Fatalf("reconnection %+v, want the recovered socket %s", info, first)
		}
		// The recovered socket's connected keeps the client's offset: no
		// offset argument (it could be behind what the replay sent).
		if ev := c.Next(gateway.EventConnected); len(ev.Args) != 1 {
			t.Fatalf("recovered connected %s carries %d arguments, want the payload alone", ev, len(ev.Args))
		}
		expectSeqs(t, c, []events.Name{events.InvoicePaid, events.NotificationNew}, []int{2, 3})
		c.NoEvent(gateway.EventConnected, 0) // the first connected was not replayed

		// Once more from the offset the replay gave it.
		drop(t, e, c)
		emitTo(t, e, events.InvoiceSent, "org-1", "", 4)
		c.Connect()
		if info := c.WaitConnect(); !info.Recovered || info.SID != first {
			t.Fatalf("second reconnection %+v, want the recovered socket %s", info, first)
		}
		c.Next(gateway.EventConnected)
		expectSeqs(t, c, []events.Name{events.InvoiceSent}, []int{4})
		c.NoEvent(gateway.EventConnected, 0)
	})
}

// TestConnectedOffsetOrderedWithLiveEvents: sockets connecting while their
// organization's events flow get a connected offset ordered with the events
// around it, so a client's offset never moves back behind an event it has
// (which a later recovery would replay twice): in arrival order, the
// offsets a client sees never decrease.
func TestConnectedOffsetOrderedWithLiveEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var publishErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 1; ctx.Err() == nil; seq++ {
				if _, err := e.svc.Emit(ctx, events.InvoiceCreated, payload(t, events.InvoiceCreated, "org-1", "", seq), events.Target{}); err != nil && ctx.Err() == nil {
					publishErr = err
					return
				}
				// Fast enough to fall between a socket's joining and its
				// connected event, slow enough for the test's driver.
				time.Sleep(2 * time.Millisecond)
			}
		}()
		clients := make([]*sioclient.Client, 12)
		for i := range clients {
			clients[i] = e.connect(sioclient.Options{Auth: map[string]any{"token": e.token("org-1", fmt.Sprintf("user-%d", i), time.Hour)}})
			clients[i].WaitConnect()
		}
		time.Sleep(100 * time.Millisecond)
		cancel()
		wg.Wait()
		if publishErr != nil {
			t.Fatal(publishErr)
		}
		for i, c := range clients {
			settle(t, c)
			var last logPos
			var prev string
			sawConnected, n := false, 0
			for _, m := range c.Drain() {
				if m.Type != "event" {
					continue
				}
				ev := m.Event
				if ev.Name != gateway.EventConnected && ev.Name != string(events.InvoiceCreated) {
					continue
				}
				off := offsetOf(t, ev)
				pos := parseLogPos(t, off)
				if pos.less(last) {
					t.Fatalf("client %d: %s at offset %s arrived after offset %s", i, ev.Name, off, prev)
				}
				last, prev = pos, off
				sawConnected = sawConnected || ev.Name == gateway.EventConnected
				n++
			}
			if !sawConnected || n < 2 {
				t.Fatalf("client %d: saw connected %v and %d events with offsets", i, sawConnected, n)
			}
		}
	})
}

// logPos is an offset of either log, comparable: the memory log's
// "<epoch>.<seq base 36>" or a stream id "<ms>-<seq>".
type logPos struct{ major, minor uint64 }

func (p logPos) less(q logPos) bool {
	return p.major < q.major || p.major == q.major && p.minor < q.minor
}

func parseLogPos(t *testing.T, off string) logPos {
	t.Helper()
	if _, seq, ok := strings.Cut(off, "."); ok {
		n, err := strconv.ParseUint(seq, 36, 64)
		if err != nil {
			t.Fatalf("offset %q: %v", off, err)
		}
		return logPos{minor: n}
	}
	ms, seq, ok := strings.Cut(off, "-")
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("offset %q is neither a memory log's nor a stream id", off)
	}
	return logPos{a, b}
}

// TestConnectedPositionOnAFreshNode: a node that has just started over a
// stream that other nodes wrote, and has delivered nothing yet, gives new
// sockets the last entry its reader handled (the stream's tail) rather
// than one appended entry each — a node restarting into a reconnection
// storm appends nothing — and a client recovers from it.
func TestConnectedPositionOnAFreshNode(t *testing.T) {
	r := redistest.Start(t)
	node := func() socketio.AdapterFactory { return streamsCluster(t, redisadapter.Config{Addr: r.Addr}).Adapter }
	recovery := &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}
	first := newEnv(t, envOptions{recovery: recovery, adapter: node()})
	watcher := first.join("org-1", "user-0", sioclient.Options{})
	emitTo(t, first, events.InvoiceCreated, "org-1", "", 1)
	tail := offsetOf(t, watcher.Next(string(events.InvoiceCreated)))

	fresh := newEnv(t, envOptions{recovery: recovery, adapter: node()})
	fresh.redis = r
	clients := make([]*sioclient.Client, 5)
	for i := range clients {
		c := fresh.connect(sioclient.Options{Auth: map[string]any{"token": fresh.token("org-1", fmt.Sprintf("user-%d", i+1), time.Hour)}})
		c.WaitConnect()
		if got := offsetOf(t, c.Next(gateway.EventConnected)); got != tail {
			t.Fatalf("client %d on the fresh node: connected carries %q, want the stream's tail %q", i, got, tail)
		}
		clients[i] = c
	}

	c := clients[0]
	sid := c.State().SID
	drop(t, fresh, c)
	emitTo(t, first, events.InvoicePaid, "org-1", "", 2)
	c.Connect()
	if info := c.WaitConnect(); !info.Recovered || info.SID != sid {
		t.Fatalf("reconnection %+v, want the recovered socket %s", info, sid)
	}
	c.Next(gateway.EventConnected)
	expectSeqs(t, c, []events.Name{events.InvoicePaid}, []int{2})
}
