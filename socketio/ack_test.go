package socketio_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
)

// TestAckClientToServer: the client's ack callback receives what the
// handler passes to Event.Ack, once.
func TestAckClientToServer(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	wants := make(chan bool, 8)
	nsp.OnEvent("sum", func(s *socketio.Socket, e *socketio.Event) {
		wants <- e.WantsAck()
		var a, b int
		if e.Args.Decode(0, &a) != nil || e.Args.Decode(1, &b) != nil {
			_ = e.Ack("bad args")
			return
		}
		if err := e.Ack(a+b, "ok"); err != nil {
			t.Errorf("Ack: %v", err)
		}
		if err := e.Ack("second answer"); err != nil { // ignored: one answer per request
			t.Errorf("second Ack: %v", err)
		}
	})
	nsp.OnEvent("empty", func(s *socketio.Socket, e *socketio.Event) { _ = e.Ack() })
	pending := make(chan *socketio.Event, 1)
	nsp.OnEvent("later", func(s *socketio.Socket, e *socketio.Event) { pending <- e })

	d := startDriver(t)
	c := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly})
	c.WaitConnect()

	res, err := c.EmitWithAck(waitTimeout, "sum", 1, 2)
	if err != nil || joinRaw(res) != `[3,"ok"]` {
		t.Errorf("sum = %v, %v", res, err)
	}
	if !recv(t, wants, "sum") {
		t.Error("WantsAck() = false for an emit with a callback")
	}
	c.Emit("sum", 2, 2) // no callback: the handler's Ack sends nothing
	if recv(t, wants, "sum") {
		t.Error("WantsAck() = true for an emit without a callback")
	}
	// The next ack the client gets is for the next request, not the
	// second answer above nor an answer to the plain emit.
	if res, err := c.EmitWithAck(waitTimeout, "sum", 5, 5); err != nil || joinRaw(res) != `[10,"ok"]` {
		t.Errorf("sum again = %v, %v", res, err)
	}
	recv(t, wants, "sum")
	if res, err := c.EmitWithAck(waitTimeout, "empty"); err != nil || len(res) != 0 {
		t.Errorf("empty ack = %v, %v", res, err)
	}
	// An ack may be sent later, from another goroutine.
	done := make(chan error, 1)
	go func() {
		e := <-pending
		done <- e.Ack("late", 1)
	}()
	if res, err := c.EmitWithAck(waitTimeout, "later"); err != nil || joinRaw(res) != `["late",1]` {
		t.Errorf("later = %v, %v", res, err)
	}
	if err := recv(t, done, "late ack"); err != nil {
		t.Error(err)
	}
	// No handler: the client's callback times out.
	if _, err := c.EmitWithAck(300*time.Millisecond, "nobody"); err == nil {
		t.Error("ack for an unhandled event")
	}
}

type ackResult struct {
	args socketio.Args
	err  error
}

// TestAckServerToClient covers Socket.EmitWithAck: answered, timed out,
// cancelled, and the client leaving while the ack is pending.
func TestAckServerToClient(t *testing.T) {
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			conns := connections(ts.Of("/"))
			d := startDriver(t)
			c := d.Connect(ts.URL+"/", sioclient.Options{Transports: tc.transports})
			c.WaitConnect()
			s := recv(t, conns, "connection")

			ask := func(ctx context.Context, args ...any) <-chan ackResult {
				ch := make(chan ackResult, 1)
				go func() {
					a, err := s.EmitWithAck(ctx, "question", args...)
					ch <- ackResult{a, err}
				}()
				return ch
			}

			// Answered, with binary in the answer.
			res := ask(context.Background(), 42, "x")
			ev := c.Next("question")
			if argsOf(ev) != `[42,"x"]` || ev.AckID == 0 {
				t.Fatalf("question = %s", ev)
			}
			c.Ack(ev, "answer", sioclient.Bin([]byte{1, 2, 3}), map[string]any{"k": 1})
			r := recv(t, res, "ack")
			if r.err != nil {
				t.Fatal(r.err)
			}
			if a, _ := r.args.String(0); a != "answer" || r.args.Len() != 3 {
				t.Errorf("ack args %s", rawArgs(r.args))
			}
			if b, ok := r.args.Bytes(1); !ok || string(b) != "\x01\x02\x03" {
				t.Errorf("ack binary = %v, %v", b, ok)
			}
			if string(r.args.Raw(2)) != `{"k":1}` {
				t.Errorf("ack object %s", r.args.Raw(2))
			}

			// Timed out; a late answer is ignored.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			res = ask(ctx)
			ev = c.Next("question")
			r = recv(t, res, "ack timeout")
			cancel()
			if !errors.Is(r.err, socketio.ErrAckTimeout) {
				t.Errorf("timed out ack: err %v, args %s", r.err, rawArgs(r.args))
			}
			c.Ack(ev, "too late")

			// Cancelled.
			ctx, cancel = context.WithCancel(context.Background())
			res = ask(ctx)
			c.Next("question")
			cancel()
			if r := recv(t, res, "cancelled ack"); !errors.Is(r.err, context.Canceled) {
				t.Errorf("cancelled ack: %v", r.err)
			}

			// Still fine afterwards.
			res = ask(context.Background(), "again")
			ev = c.Next("question")
			c.Ack(ev, "fine")
			if r := recv(t, res, "ack"); r.err != nil || rawArgs(r.args) != `["fine"]` {
				t.Errorf("ack after a timeout: %s, %v", rawArgs(r.args), r.err)
			}

			// The client leaves while an ack is pending.
			res = ask(context.Background(), "pending")
			c.Next("question")
			c.Disconnect()
			if r := recv(t, res, "ack of a disconnected client"); !errors.Is(r.err, socketio.ErrDisconnected) {
				t.Errorf("pending ack after disconnect: %v", r.err)
			}
			// And a disconnected socket refuses new ones at once.
			if _, err := s.EmitWithAck(context.Background(), "question"); !errors.Is(err, socketio.ErrNotConnected) {
				t.Errorf("EmitWithAck on a disconnected socket: %v", err)
			}
		})
	}
}

// TestAckServerToClientFunc covers Socket.EmitWithAckFunc, which may be
// used from the client's own handlers.
func TestAckServerToClientFunc(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	conns := connections(nsp)
	results := make(chan ackResult, 16)
	cb := func(a socketio.Args, err error) { results <- ackResult{a, err} }
	nsp.OnEvent("ask-me", func(s *socketio.Socket, e *socketio.Event) {
		if err := s.EmitWithAckFunc(waitTimeout, cb, "question", "from-handler"); err != nil {
			t.Errorf("EmitWithAckFunc in a handler: %v", err)
		}
	})
	d := startDriver(t)
	c := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly})
	c.WaitConnect()
	s := recv(t, conns, "connection")

	// From the client's own handler.
	c.Emit("ask-me")
	ev := c.Next("question")
	if argsOf(ev) != `["from-handler"]` {
		t.Errorf("question %s", ev)
	}
	c.Ack(ev, 1, 2)
	if r := recv(t, results, "ack"); r.err != nil || rawArgs(r.args) != `[1,2]` {
		t.Errorf("ack = %s, %v", rawArgs(r.args), r.err)
	}

	// Timeout: the callback runs once, with ErrAckTimeout; a late answer
	// does not call it again.
	if err := s.EmitWithAckFunc(200*time.Millisecond, cb, "question", "slow"); err != nil {
		t.Fatal(err)
	}
	ev = c.Next("question")
	if r := recv(t, results, "timeout"); !errors.Is(r.err, socketio.ErrAckTimeout) {
		t.Errorf("timeout: %v", r.err)
	}
	c.Ack(ev, "late")
	// Without a timeout the ack waits as long as needed.
	if err := s.EmitWithAckFunc(0, cb, "question", "no-timeout"); err != nil {
		t.Fatal(err)
	}
	ev = c.Next("question")
	c.Ack(ev, "eventually")
	if r := recv(t, results, "ack"); r.err != nil || rawArgs(r.args) != `["eventually"]` {
		t.Errorf("ack = %s, %v (a late answer to the timed-out request must not be delivered)", rawArgs(r.args), r.err)
	}

	// Disconnection while pending.
	if err := s.EmitWithAckFunc(waitTimeout, cb, "question", "pending"); err != nil {
		t.Fatal(err)
	}
	c.Next("question")
	c.Disconnect()
	if r := recv(t, results, "disconnect"); !errors.Is(r.err, socketio.ErrDisconnected) {
		t.Errorf("disconnect: %v", r.err)
	}
	if err := s.EmitWithAckFunc(waitTimeout, cb, "question"); !errors.Is(err, socketio.ErrNotConnected) {
		t.Errorf("EmitWithAckFunc on a disconnected socket: %v", err)
	}
	noValue(t, results, "extra callback")
}

// TestBroadcastWithAck: one answer per client reached; on timeout, the
// answers so far and ErrAckTimeout.
func TestBroadcastWithAck(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	conns := connections(nsp)
	d := startDriver(t)
	sockets := map[string]*socketio.Socket{}
	clients := map[string]*sioclient.Client{}
	for _, n := range []string{"A", "B", "C"} {
		o := sioclient.Options{Name: n, AutoAck: []any{n}}
		if n == "B" {
			o.Transports = pollingOnly
		} else {
			o.Transports = wsOnly
		}
		clients[n] = d.Connect(ts.URL+"/", o)
		clients[n].WaitConnect()
		sockets[n] = recv(t, conns, "connection")
	}
	sockets["A"].Join("ab")
	sockets["B"].Join("ab")

	answers := func(list []socketio.Args) []string {
		var out []string
		for _, a := range list {
			out = append(out, rawArgs(a))
		}
		slices.Sort(out)
		return out
	}

	got, err := nsp.Timeout(waitTimeout).EmitWithAck(context.Background(), "poll", 1)
	if err != nil || !slices.Equal(answers(got), []string{`["A"]`, `["B"]`, `["C"]`}) {
		t.Errorf("everyone: %v, %v", answers(got), err)
	}
	for _, n := range []string{"A", "B", "C"} {
		if ev := clients[n].Next("poll"); argsOf(ev) != `[1]` {
			t.Errorf("%s: %s", n, ev)
		}
	}
	got, err = nsp.To("ab").Timeout(waitTimeout).EmitWithAck(context.Background(), "poll", 2)
	if err != nil || !slices.Equal(answers(got), []string{`["A"]`, `["B"]`}) {
		t.Errorf("room ab: %v, %v", answers(got), err)
	}
	// The sender's own broadcast excludes it; a context deadline works
	// like Timeout.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	got, err = sockets["C"].Broadcast().EmitWithAck(ctx, "poll", 3)
	cancel()
	if err != nil || !slices.Equal(answers(got), []string{`["A"]`, `["B"]`}) {
		t.Errorf("broadcast from C: %v, %v", answers(got), err)
	}
	// No recipient: no answer, no error, no wait.
	start := time.Now()
	got, err = nsp.To("empty-room").Timeout(waitTimeout).EmitWithAck(context.Background(), "poll", 4)
	if err != nil || len(got) != 0 || time.Since(start) > waitTimeout/2 {
		t.Errorf("empty room: %v, %v after %v", answers(got), err, time.Since(start))
	}

	// A client that never answers: partial answers and ErrAckTimeout.
	mute := d.Connect(ts.URL+"/", sioclient.Options{Name: "mute", Transports: wsOnly})
	mute.WaitConnect()
	recv(t, conns, "connection")
	got, err = nsp.Timeout(2*time.Second).EmitWithAck(context.Background(), "poll", 5) // long enough for A, B, C on a loaded machine
	if !errors.Is(err, socketio.ErrAckTimeout) || !slices.Equal(answers(got), []string{`["A"]`, `["B"]`, `["C"]`}) {
		t.Errorf("with a mute client: %v, %v", answers(got), err)
	}
	ev := mute.Next("poll")
	if ev.AckID == 0 {
		t.Errorf("mute client was not asked for an ack: %s", ev)
	}
	mute.Ack(ev, "too late") // ignored
	// Except, with the mute client gone.
	mute.Close()
	wait.For(t, "the mute client's disconnection", func() bool { return nsp.SocketCount() == 3 })
	got, err = nsp.Except("ab").Timeout(waitTimeout).EmitWithAck(context.Background(), "poll", 6)
	if err != nil || !slices.Equal(answers(got), []string{`["C"]`}) {
		t.Errorf("except ab: %v, %v", answers(got), err)
	}
}
