package socketio_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
)

// rawStep is one action of a raw client: send a text or binary frame, or
// expect a text frame (a prefix, or an exact CONNECT reply when want is
// "40{sid}").
type rawStep struct {
	send   string
	bin    []byte
	expect string
}

func send(s string) rawStep   { return rawStep{send: s} }
func expect(s string) rawStep { return rawStep{expect: s} }

// TestGarbage: what a client sends that socket.io-client never would
// (protocol note §2.4 and the official test-suite). Packets Node refuses
// close the connection; the others are ignored or answered and the
// connection stays usable. A well-behaved client on the same server is
// never affected.
func TestGarbage(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	echoArgs(nsp, "echo")
	// Node accepts numeric event names; the name is the number's text.
	nsp.OnEvent("1", func(s *socketio.Socket, e *socketio.Event) { _ = s.Emit("numeric", e.Args) })
	discs := disconnections(nsp)

	d := startDriver(t)
	good := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly, Reconnection: ptr(false)})
	goodInfo := good.WaitConnect()
	goodAlive := func(tag string) {
		t.Helper()
		if res, err := good.EmitWithAck(waitTimeout, "echo", tag); err != nil || joinRaw(res) != `["`+tag+`"]` {
			t.Fatalf("after %s: the good client's echo: %v, %v", tag, res, err)
		}
		good.Next("echo")
	}

	const connected = "40{sid}"
	closes := []struct {
		name  string
		steps []rawStep
	}{
		{"CONNECT twice", []rawStep{send("40"), expect(connected), send("40")}},
		{"event before CONNECT", []rawStep{send(`42["echo",1]`)}},
		{"event for another namespace", []rawStep{send("40"), expect(connected), send(`42/other,["echo",1]`)}},
		{"auth is a string", []rawStep{send(`40"abc"`)}},
		{"auth is an array", []rawStep{send(`40[1]`)}},
		{"reserved event name", []rawStep{send("40"), expect(connected), send(`42["connect"]`)}},
		{"empty event", []rawStep{send("40"), expect(connected), send(`42[]`)}},
		{"event is an object", []rawStep{send("40"), expect(connected), send(`42{}`)}},
		{"garbage before the array", []rawStep{send("40"), expect(connected), send(`42abc["echo"]`)}},
		{"invalid JSON", []rawStep{send("40"), expect(connected), send(`42["echo",`)}},
		{"unknown packet type", []rawStep{send("40"), expect(connected), send(`4abc`)}},
		{"packet type 7", []rawStep{send("40"), expect(connected), send(`47`)}},
		{"too many attachments", []rawStep{send("40"), expect(connected), send(`411-["echo"]`)}},
		{"attachments without count", []rawStep{send("40"), expect(connected), send(`45["echo"]`)}},
		{"text frame while attachments are due", []rawStep{send("40"), expect(connected),
			send(`451-["echo",{"_placeholder":true,"num":0}]`), send(`42["echo",1]`)}},
		{"binary frame outside a packet", []rawStep{send("40"), expect(connected), {bin: []byte{1, 2, 3}}}},
		{"placeholder out of range", []rawStep{send("40"), expect(connected),
			send(`451-["echo",{"_placeholder":true,"num":5}]`), {bin: []byte{1}}}},
		{"event after leaving", []rawStep{send("40"), expect(connected), send("41"), send(`42["echo",1]`)}},
		{"CONNECT_ERROR from the client", []rawStep{send("40"), expect(connected), send(`44{"message":"x"}`)}},
		{"client ping", []rawStep{send("40"), expect(connected), send("2")}},
		{"unknown engine packet", []rawStep{send("40"), expect(connected), send("9")}},
		{"empty frame", []rawStep{send("40"), expect(connected), send("")}},
		{"whitespace before the packet", []rawStep{send("40"), expect(connected), send(` 42["echo"]`)}},
	}
	for _, tc := range closes {
		c := dialWS(t, ts.Addr)
		sid := runSteps(t, tc.name, c, tc.steps)
		c.expectClosed(tc.name)
		if sid != "" {
			dc := recv(t, discs, tc.name+": server-side disconnect")
			if dc.id != sid {
				t.Errorf("%s: disconnect of %s, want %s", tc.name, dc.id, sid)
			}
		}
		goodAlive(tc.name)
	}

	stays := []struct {
		name  string
		steps []rawStep
	}{
		{"unknown namespace", []rawStep{send("40/nope,"), expect(`44/nope,{"message":"Invalid namespace"}`), send("40"), expect(connected)}},
		{"unknown namespace without comma", []rawStep{send("40/nope"), expect(`44/nope,{"message":"Invalid namespace"}`), send("40"), expect(connected)}},
		{"numeric event name", []rawStep{send("40"), expect(connected), send(`42[1,2]`), expect(`42["numeric",2]`)}},
		{"unknown ack id", []rawStep{send("40"), expect(connected), send(`43999[1]`)}},
		{"ack without id", []rawStep{send("40"), expect(connected), send(`43[1]`)}},
		{"noop", []rawStep{send("40"), expect(connected), send("6")}},
		{"upgrade outside an upgrade", []rawStep{send("40"), expect(connected), send("5")}},
		{"pong without ping", []rawStep{send("40"), expect(connected), send("3")}},
		{"leave then join again", []rawStep{send("40"), expect(connected), send("41"), send("40"), expect(connected)}},
		{"whitespace in JSON", []rawStep{send("40"), expect(connected), send(`42[ "echo" , { "a" : 1 } ]`), expect(`42["echo",{ "a" : 1 }]`)}},
		{"binary event", []rawStep{send("40"), expect(connected), send(`451-["echo",{"_placeholder":true,"num":0}]`),
			{bin: []byte{7}}, expect(`451-["echo",{"_placeholder":true,"num":0}]`)}},
	}
	for _, tc := range stays {
		c := dialWS(t, ts.Addr)
		runSteps(t, tc.name, c, tc.steps)
		if tc.name == "binary event" {
			if b := c.readBinary(); string(b) != "\x07" {
				t.Errorf("%s: attachment %x", tc.name, b)
			}
		}
		// Still connected to "/": an echo comes back.
		c.send(`42["echo","still"]`)
		if got := c.read(); got != `42["echo","still"]` {
			t.Errorf("%s: echo = %q", tc.name, got)
		}
		goodAlive(tc.name)
		if tc.name == "leave then join again" {
			if dc := recv(t, discs, "disconnect"); dc.reason != socketio.ReasonClientNamespaceDisconn {
				t.Errorf("%s: %+v", tc.name, dc)
			}
		}
		noValue(t, discs, tc.name+": disconnect")
	}

	if st := good.State(); !st.Connected || st.SID != goodInfo.SID {
		t.Errorf("good client state %+v", st)
	}
}

// runSteps plays steps and returns the socket id of the last CONNECT reply.
func runSteps(t *testing.T, name string, c *rawWS, steps []rawStep) (sid string) {
	t.Helper()
	for _, st := range steps {
		switch {
		case st.bin != nil:
			c.sendBinary(st.bin)
		case st.expect == "40{sid}":
			sid = connectSID(t, c.read(), "40")
		case st.expect != "":
			if got := c.read(); got != st.expect {
				t.Fatalf("%s: got %q, want %q", name, got, st.expect)
			}
		default:
			c.send(st.send)
		}
	}
	return sid
}

// TestRawServerEncoding: what the server writes for Go values, byte for
// byte (socket.io-client would hide differences like 1.0 vs 1 or \u003c).
func TestRawServerEncoding(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	conns := connections(nsp)
	nsp.OnEvent("ask", func(s *socketio.Socket, e *socketio.Event) {
		_ = e.Ack(1, 1.5, float64(2), "<>&", ordered{1, "x"}, []byte{1})
	})
	c := dialWS(t, ts.Addr)
	c.send("40")
	connectSID(t, c.read(), "40")
	s := recv(t, conns, "connection")
	mustEmit(t, s.Emit("typed", 1, 1.5, float64(2), int64(-3), "<>&\u2028é", ordered{1, "x"}, json.RawMessage(`{"z":1, "a":2}`), nil))
	if got := c.read(); got != `42["typed",1,1.5,2,-3,"<>&`+"\u2028"+`é",{"B":1,"A":"x"},{"z":1, "a":2},null]` {
		t.Errorf("typed = %q", got)
	}
	c.send(`427["ask"]`)
	if got := c.read(); got != `461-7[1,1.5,2,"<>&",{"B":1,"A":"x"},{"_placeholder":true,"num":0}]` {
		t.Errorf("ack = %q", got)
	}
	if b := c.readBinary(); string(b) != "\x01" {
		t.Errorf("ack attachment %x", b)
	}
	// Namespaced packets carry the namespace.
	ts.Of("/ns")
	c.send("40/ns,")
	connectSID(t, strings.Replace(c.read(), "40/ns,", "40", 1), "40")
	mustEmit(t, ts.Of("/ns").Emit("hi", []byte{2}))
	if got := c.read(); got != `451-/ns,["hi",{"_placeholder":true,"num":0}]` {
		t.Errorf("namespaced binary event = %q", got)
	}
	c.readBinary()
	if sid := s.ID(); len(sid) != 20 {
		t.Errorf("socket id %q", sid)
	}
}
