package socketio_test

import (
	"strings"
	"testing"

	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
)

// TestVolatileNotWritable: a volatile broadcast is dropped for a polling
// client with no GET waiting (it would have to be queued) and delivered to
// one whose GET waits; regular broadcasts are queued as always.
func TestVolatileNotWritable(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	conns := connections(nsp)
	c := dialPolling(t, ts.URL)
	c.post("40")
	if body := c.poll(); !strings.HasPrefix(body, "40{") {
		t.Fatalf("CONNECT reply %q", body)
	}
	recv(t, conns, "connection")
	sess, ok := ts.Engine().Session(c.SID)
	if !ok {
		t.Fatal("no session")
	}

	// No GET pending: not writable.
	if sess.Writable() {
		t.Fatal("session writable without a pending GET")
	}
	mustEmit(t, nsp.Volatile().Emit("v1"))
	mustEmit(t, nsp.Emit("n1"))
	mustEmit(t, nsp.Volatile().Emit("v2")) // behind n1: not writable either
	if body := c.poll(); body != `42["n1"]` {
		t.Errorf("GET = %q, want only the regular event", body)
	}

	// A GET waiting: writable, the volatile event goes out.
	got := make(chan string, 1)
	go func() {
		body, err := c.tryGet(c.base)
		if err != nil {
			body = err.Error()
		}
		got <- body
	}()
	wait.For(t, "the GET to wait", sess.Writable)
	mustEmit(t, nsp.Volatile().Emit("v3", 1))
	if body := recv(t, got, "GET"); body != `42["v3",1]` {
		t.Errorf("GET = %q, want the volatile event", body)
	}
}

// TestVolatileUnderLoad: volatile broadcasts never fail and never disturb
// regular ones, which all arrive in order, to fast and slow clients.
func TestVolatileUnderLoad(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	conns := connections(nsp)
	d := startDriver(t)
	var clients []*sioclient.Client
	for _, tr := range [][]string{wsOnly, pollingOnly, nil} {
		c := d.Connect(ts.URL+"/", sioclient.Options{Transports: tr})
		c.WaitConnect()
		recv(t, conns, "connection")
		clients = append(clients, c)
	}
	const n = 300
	for i := range n {
		if err := nsp.Volatile().Emit("v", i); err != nil {
			t.Fatalf("volatile emit: %v", err)
		}
		if err := nsp.Emit("n", i); err != nil {
			t.Fatalf("emit: %v", err)
		}
	}
	mustEmit(t, nsp.Emit("end"))
	for _, c := range clients {
		var seenN, seenV []int
		for {
			ev := c.NextAny()
			if ev.Name == "end" {
				break
			}
			if len(ev.Args) != 1 {
				t.Fatalf("%s", ev)
			}
			i := atoi(t, string(ev.Args[0]))
			switch ev.Name {
			case "n":
				seenN = append(seenN, i)
			case "v":
				seenV = append(seenV, i)
			}
		}
		for i, v := range seenN {
			if v != i {
				t.Fatalf("%s: regular event %d is %d", c.Name(), i, v)
			}
		}
		if len(seenN) != n {
			t.Errorf("%s: %d regular events, want %d", c.Name(), len(seenN), n)
		}
		for i := 1; i < len(seenV); i++ {
			if seenV[i] <= seenV[i-1] {
				t.Errorf("%s: volatile events out of order: %v", c.Name(), seenV)
				break
			}
		}
		t.Logf("%s: %d of %d volatile events delivered", c.Name(), len(seenV), n)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("%q is not a number", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}
