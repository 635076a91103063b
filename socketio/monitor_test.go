package socketio_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
)

// monitorLog records what a Monitor saw, one line per call.
type monitorLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *monitorLog) add(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *monitorLog) has(line string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.lines, line)
}

func (l *monitorLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

func (l *monitorLog) monitor() *socketio.Monitor {
	return &socketio.Monitor{
		EventReceived: func(s *socketio.Socket, ev *socketio.Event) {
			l.add("received %s %s%s", s.ID(), ev.Name, rawArgs(ev.Args))
		},
		EventSent:  func(s *socketio.Socket, p *socketio.Packet) { l.add("sent %s %s", s.ID(), p.Data) },
		RoomJoined: func(s *socketio.Socket, room string) { l.add("joined %s %s", s.ID(), room) },
		RoomLeft:   func(s *socketio.Socket, room string) { l.add("left %s %s", s.ID(), room) },
		Broadcast: func(p *socketio.Packet, opts *socketio.BroadcastOptions, reached int) {
			l.add("broadcast %v %s reached %d", opts.Rooms, p.Data, reached)
		},
	}
}

// TestMonitor: a monitor sees the events received and sent, broadcasts once
// each with the number reached, and room changes of connected sockets only;
// without it the namespace reports nothing.
func TestMonitor(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	nsp.Use(func(_ context.Context, s *socketio.Socket) error {
		s.Join("from-middleware")
		return nil
	})
	nsp.OnEvent("join", func(s *socketio.Socket, e *socketio.Event) {
		r, _ := e.Args.String(0)
		s.Join(r)
		_ = e.Ack()
	})
	nsp.OnEvent("leave", func(s *socketio.Socket, e *socketio.Event) {
		r, _ := e.Args.String(0)
		s.Leave(r)
		_ = e.Ack()
	})
	var log monitorLog
	nsp.SetMonitor(log.monitor())
	conns := connections(nsp)

	d := startDriver(t)
	a := d.Connect(ts.URL+"/", sioclient.Options{Name: "a"})
	a.WaitConnect()
	sa := recv(t, conns, "connection of a")
	b := d.Connect(ts.URL+"/", sioclient.Options{Name: "b"})
	b.WaitConnect()
	sb := recv(t, conns, "connection of b")

	if _, err := a.EmitWithAck(waitTimeout, "join", "room-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.EmitWithAck(waitTimeout, "leave", "room-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.EmitWithAck(waitTimeout, "leave", "not-a-member"); err != nil {
		t.Fatal(err)
	}
	if err := sb.Emit("hello", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	b.Next("hello")
	if err := nsp.To("from-middleware").Emit("news", "x"); err != nil {
		t.Fatal(err)
	}
	a.Next("news")
	b.Next("news")

	got := log.take()
	want := []string{
		fmt.Sprintf(`received %s join["room-1"]`, sa.ID()),
		fmt.Sprintf(`joined %s room-1`, sa.ID()),
		fmt.Sprintf(`received %s leave["room-1"]`, sa.ID()),
		fmt.Sprintf(`left %s room-1`, sa.ID()),
		fmt.Sprintf(`received %s leave["not-a-member"]`, sa.ID()),
		fmt.Sprintf(`sent %s ["hello",{"n":1}]`, sb.ID()),
		`broadcast [from-middleware] ["news","x"] reached 2`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("monitor saw:\n%q\nwant:\n%q", got, want)
	}

	// Removed: nothing more is reported.
	nsp.SetMonitor(nil)
	if _, err := a.EmitWithAck(waitTimeout, "join", "room-2"); err != nil {
		t.Fatal(err)
	}
	if err := nsp.Emit("news", "y"); err != nil {
		t.Fatal(err)
	}
	a.Next("news")
	if got := log.take(); len(got) != 0 {
		t.Fatalf("monitor removed, still saw %q", got)
	}
}

// TestMonitorBroadcastWithAckAndRecovery: broadcasts with ack are reported
// like others; with recovery on, Socket.Emit (routed through the adapter)
// is reported once, as sent to its socket.
func TestMonitorBroadcastWithAckAndRecovery(t *testing.T) {
	ts := newTestServer(t, &socketio.Options{Recovery: &socketio.RecoveryOptions{}})
	nsp := ts.Of("/")
	var log monitorLog
	nsp.SetMonitor(log.monitor())
	conns := connections(nsp)
	d := startDriver(t)
	c := d.Connect(ts.URL+"/", sioclient.Options{AutoAck: []any{"ok"}})
	c.WaitConnect()
	s := recv(t, conns, "connection")

	if err := s.Emit("direct", 1); err != nil {
		t.Fatal(err)
	}
	c.Next("direct")
	answers, err := nsp.EmitWithAck(context.Background(), "ask")
	if err != nil || len(answers) != 1 {
		t.Fatalf("EmitWithAck: %d answers, %v", len(answers), err)
	}
	got := log.take()
	want := []string{
		fmt.Sprintf(`sent %s ["direct",1]`, s.ID()),
		`broadcast [] ["ask"] reached 1`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("monitor saw:\n%q\nwant:\n%q", got, want)
	}
}

// TestConnectionID: the sockets of one client's namespaces share their
// connection's id; other clients' differ.
func TestConnectionID(t *testing.T) {
	ts := newTestServer(t, nil)
	root := connections(ts.Of("/"))
	other := connections(ts.Of("/other"))
	d := startDriver(t)
	d.Connect(ts.URL+"/", sioclient.Options{Manager: "m"}).WaitConnect()
	d.Connect(ts.URL+"/other", sioclient.Options{Manager: "m"}).WaitConnect()
	d.Connect(ts.URL+"/", sioclient.Options{}).WaitConnect()
	s1, s2, s3 := recv(t, root, "root 1"), recv(t, other, "other"), recv(t, root, "root 2")
	if s1.ConnectionID() == "" || s1.ConnectionID() != s2.ConnectionID() {
		t.Fatalf("one client's sockets: connection ids %q and %q", s1.ConnectionID(), s2.ConnectionID())
	}
	if s3.ConnectionID() == s1.ConnectionID() {
		t.Fatalf("two clients share connection id %q", s1.ConnectionID())
	}
}
