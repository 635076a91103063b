package engineio_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/engineio"
)

// §1.7: the whole polling → WebSocket upgrade as engine.io-client runs it.
func TestUpgrade(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()

	// Some traffic over polling first.
	e.post(sid, "4before")
	if _, body := e.poll(sid); body != "4before" {
		t.Fatalf("GET: %q", body)
	}

	// The client keeps a GET pending while it probes.
	pending := e.pollAsync(sid)
	waitPending(t, r)
	c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	if c.header.Get("Set-Cookie") != "" {
		t.Error("cookie on an upgrade")
	}
	c.sendText("2probe")
	c.expectText("3probe")
	// The pending GET is released with a noop so the client can pause.
	if res := wait(t, pending); res.status != 200 || res.body != "6" {
		t.Fatalf("pending GET during the probe: %d %q, want the noop", res.status, res.body)
	}
	if r.sess.Transport() != "polling" {
		t.Fatal("switched before the upgrade packet")
	}

	// Packets sent before "5" wait in the queue and flow on the WebSocket.
	_ = r.sess.Send(engineio.NewPacket(4, []byte("queued1")))
	_ = r.sess.Send(engineio.NewPacket(4, []byte("queued2")), engineio.NewBinaryPacket([]byte{9}))
	c.sendText("5")
	c.expectText("4queued1")
	c.expectText("4queued2")
	if op, data := c.read(); op != 2 || len(data) != 1 || data[0] != 9 {
		t.Fatalf("got %v %x", op, data)
	}
	waitFor(t, "the switch to WebSocket", func() bool { return r.sess.Transport() == "websocket" })
	if n := e.srv.Stats().Upgrades.Load(); n != 1 {
		t.Errorf("Upgrades = %d", n)
	}

	// The session now runs on the WebSocket.
	c.sendText("4after")
	c.expectText("4after")
	if got := r.messages(); len(got) != 2 || got[0].data != "before" || got[1].data != "after" {
		t.Errorf("messages %v", got)
	}

	// Polling requests are a transport mismatch.
	resp, body := e.get("EIO=4&transport=polling&sid=" + sid)
	checkError(t, resp, body, 400, 3, "Bad request")
	resp, body = e.request(http.MethodPost, "EIO=4&transport=polling&sid="+sid, strings.NewReader("4x"), nil)
	checkError(t, resp, body, 400, 3, "Bad request")

	// A second WebSocket for the sid is closed; the first one goes on.
	c2 := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c2.expectClose(1000)
	c.sendText("4still")
	c.expectText("4still")
	if r.isClosed() {
		t.Fatal("session closed")
	}
}

// A GET that arrives while the probe is in progress is released with a
// noop within ~100 ms (Node's check interval), and each new one again.
func TestUpgradeGetDuringProbe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c.sendText("2probe")
	c.expectText("3probe")
	// (How long it is held is not checked: Node's 100 ms timer may fire
	// at once too, and the probe's wake-up may reach a GET that follows
	// the 3probe closely.)
	for range 3 {
		status, body := e.poll(sid)
		if status != 200 || body != "6" {
			t.Fatalf("GET during the probe: %d %q", status, body)
		}
	}
	// Packets still go over polling until the upgrade completes.
	_ = r.sess.Send(engineio.NewPacket(4, []byte("p")))
	if _, body := e.poll(sid); body != "4p" {
		t.Fatalf("GET: %q", body)
	}
	c.sendText("5")
	waitFor(t, "the switch", func() bool { return r.sess.Transport() == "websocket" })
	_ = r.sess.Send(engineio.NewPacket(4, []byte("w")))
	c.expectText("4w")
}

// A GET pending when the upgrade completes fails like any polling request
// after the upgrade... or is released with a noop first; either way it
// never receives packets meant for the WebSocket.
func TestUpgradePendingGetAtSwitch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c.sendText("2probe")
	c.expectText("3probe")
	pending := e.pollAsync(sid)
	c.sendText("5")
	res := wait(t, pending)
	if !(res.status == 200 && res.body == "6") && !(res.status == 400 && strings.Contains(res.body, `"code":3`)) {
		t.Fatalf("GET pending at the switch: %d %q", res.status, res.body)
	}
	_ = r.sess.Send(engineio.NewPacket(4, []byte("w")))
	c.expectText("4w")
}

// §1.7: a packet other than 2probe/5 during the probe closes the probe
// only; the session goes on polling.
func TestUpgradeBadProbe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c.sendText("4not a probe")
	c.expectClose(1000)
	if r.isClosed() {
		t.Fatal("session closed with the probe")
	}
	e.post(sid, "4polling")
	if _, body := e.poll(sid); body != "4polling" {
		t.Fatalf("GET: %q", body)
	}
	if len(r.messages()) != 1 {
		t.Fatalf("the probe's packet was delivered: %v", r.messages())
	}
	// A new probe may follow.
	c2 := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c2.sendText("2probe")
	c2.expectText("3probe")
	c2.sendText("5")
	waitFor(t, "the switch", func() bool { return r.sess.Transport() == "websocket" })
}

// A second WebSocket while one is probing is closed.
func TestUpgradeSecondProbe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c.sendText("2probe")
	c.expectText("3probe")
	c2 := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c2.expectClose(1000)
	c.sendText("5")
	waitFor(t, "the switch", func() bool { return r.sess.Transport() == "websocket" })
}

// §1.7: an upgrade not finished within UpgradeTimeout closes the probe.
func TestUpgradeTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{UpgradeTimeout: 200 * time.Millisecond}, nil)
	sid, r := e.handshake()
	c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c.sendText("2probe")
	c.expectText("3probe")
	c.expectEOF()
	if r.isClosed() {
		t.Fatal("session closed with the probe")
	}
	e.post(sid, "4x")
	if _, body := e.poll(sid); body != "4x" {
		t.Fatalf("GET: %q", body)
	}
}

// With DisableUpgrades the upgrade request is refused.
func TestUpgradeDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &engineio.Options{DisableUpgrades: true}, nil)
	sid, _ := e.handshake()
	resp, body, closed := e.rawHTTP(e.upgradeRequest("EIO=4&transport=websocket&sid=" + sid))
	if resp.StatusCode != 400 || body != "Bad request" || !closed {
		t.Fatalf("%d %q closed=%v", resp.StatusCode, body, closed)
	}
	// A plain GET with transport=websocket and a sid is a bad request too.
	resp, body = e.get("EIO=4&transport=websocket&sid=" + sid)
	checkError(t, resp, body, 400, 3, "Bad request")
}

// The session closing during a probe closes the probe.
func TestUpgradeSessionClosedDuringProbe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	sid, r := e.handshake()
	c := e.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c.sendText("2probe")
	c.expectText("3probe")
	r.sess.Close()
	c.expectEOF()
	r.waitClosed(t)
}
