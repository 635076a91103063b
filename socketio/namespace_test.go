package socketio_test

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
)

func TestNamespacesMainAndCustom(t *testing.T) {
	ts := newTestServer(t, nil)
	main, chat := ts.Of("/"), ts.Of("chat") // the leading slash is optional
	if chat.Name() != "/chat" {
		t.Fatalf("Of(chat).Name() = %q", chat.Name())
	}
	mainConns, chatConns := connections(main), connections(chat)
	echoArgs(main, "echo")
	chat.OnEvent("echo", func(s *socketio.Socket, e *socketio.Event) { _ = e.Ack("chat", e.Args) })

	d := startDriver(t)
	cm := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly})
	cc := d.Connect(ts.URL+"/chat", sioclient.Options{Transports: wsOnly})
	im, ic := cm.WaitConnect(), cc.WaitConnect()
	sm, sc := recv(t, mainConns, "main connection"), recv(t, chatConns, "chat connection")
	if sm.ID() != im.SID || sc.ID() != ic.SID || sm.Namespace() != main || sc.Namespace() != chat {
		t.Fatalf("sockets: main %s in %s, chat %s in %s; clients %s, %s",
			sm.ID(), sm.Namespace().Name(), sc.ID(), sc.Namespace().Name(), im.SID, ic.SID)
	}
	if main.SocketCount() != 1 || chat.SocketCount() != 1 {
		t.Errorf("socket counts: / %d, /chat %d", main.SocketCount(), chat.SocketCount())
	}
	// Each namespace has its own handlers.
	if res, err := cc.EmitWithAck(waitTimeout, "echo", 1); err != nil || joinRaw(res) != `["chat",1]` {
		t.Errorf("chat echo = %v, %v", res, err)
	}
	if res, err := cm.EmitWithAck(waitTimeout, "echo", 2); err != nil || joinRaw(res) != `[2]` {
		t.Errorf("main echo = %v, %v", res, err)
	}
	// A namespace broadcast stays in its namespace.
	if err := chat.Emit("only-chat", "x"); err != nil {
		t.Fatal(err)
	}
	if err := main.Emit("only-main", "y"); err != nil {
		t.Fatal(err)
	}
	cc.Next("only-chat")
	cm.Next("only-main")
	if err := main.Emit("marker"); err != nil {
		t.Fatal(err)
	}
	if err := chat.Emit("marker"); err != nil {
		t.Fatal(err)
	}
	cm.Next("marker")
	cc.Next("marker")
	cm.NoEvent("only-chat", 0)
	cc.NoEvent("only-main", 0)
	// Socket ids are 20 characters, distinct from each other.
	if len(sm.ID()) != 20 || len(sc.ID()) != 20 || sm.ID() == sc.ID() {
		t.Errorf("socket ids %q %q", sm.ID(), sc.ID())
	}
}

// TestNamespacesMultiplexed: several namespaces over one Manager share one
// Engine.IO session and stay independent.
func TestNamespacesMultiplexed(t *testing.T) {
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			names := []string{"/", "/a", "/b"}
			conns := map[string]<-chan *socketio.Socket{}
			discs := map[string]<-chan disconnection{}
			for _, n := range names {
				nsp := ts.Of(n)
				conns[n], discs[n] = connections(nsp), disconnections(nsp)
				nsp.OnEvent("which", func(s *socketio.Socket, e *socketio.Event) { _ = e.Ack(s.Namespace().Name()) })
			}
			d := startDriver(t)
			clients := map[string]*sioclient.Client{}
			sockets := map[string]*socketio.Socket{}
			ids := map[string]bool{}
			for _, n := range names {
				clients[n] = d.Connect(ts.URL+n, sioclient.Options{Manager: "m", Transports: tc.transports})
			}
			for _, n := range names {
				info := clients[n].WaitConnect()
				sockets[n] = recv(t, conns[n], "connection to "+n)
				if sockets[n].ID() != info.SID {
					t.Errorf("%s: server id %s, client %s", n, sockets[n].ID(), info.SID)
				}
				ids[info.SID] = true
			}
			if len(ids) != 3 {
				t.Errorf("socket ids not distinct: %v", ids)
			}
			if got := ts.Engine().SessionCount(); got != 1 {
				t.Errorf("engine sessions = %d, want 1 (one Manager)", got)
			}
			for _, n := range names {
				res, err := clients[n].EmitWithAck(waitTimeout, "which")
				if err != nil || joinRaw(res) != `["`+n+`"]` {
					t.Errorf("%s: which = %v, %v", n, res, err)
				}
				if err := ts.Of(n).Emit("hello", n); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range names {
				if ev := clients[n].Next("hello"); argsOf(ev) != `["`+n+`"]` {
					t.Errorf("%s got %s", n, ev)
				}
				clients[n].NoEvent("hello", 0)
			}

			// Leaving one namespace keeps the others and the session.
			clients["/b"].Disconnect()
			if got := clients["/b"].WaitDisconnect(); got != "io client disconnect" {
				t.Errorf("client reason %q", got)
			}
			if dc := recv(t, discs["/b"], "disconnect of /b"); dc.reason != socketio.ReasonClientNamespaceDisconn || dc.id != sockets["/b"].ID() {
				t.Errorf("server-side disconnect %+v", dc)
			}
			for _, n := range []string{"/", "/a"} {
				res, err := clients[n].EmitWithAck(waitTimeout, "which")
				if err != nil || joinRaw(res) != `["`+n+`"]` {
					t.Errorf("%s after /b left: which = %v, %v", n, res, err)
				}
				noValue(t, discs[n], "disconnect of "+n)
			}
			if got := ts.Engine().SessionCount(); got != 1 {
				t.Errorf("engine sessions after /b left = %d, want 1", got)
			}
			// Rejoining /b on the same session works.
			clients["/b"].Connect()
			clients["/b"].WaitConnect()
			recv(t, conns["/b"], "reconnection to /b")
			if res, err := clients["/b"].EmitWithAck(waitTimeout, "which"); err != nil || joinRaw(res) != `["/b"]` {
				t.Errorf("/b again: %v, %v", res, err)
			}
			if got := ts.Engine().SessionCount(); got != 1 {
				t.Errorf("engine sessions after /b rejoined = %d, want 1", got)
			}
		})
	}
}

// TestInvalidNamespace: a namespace that does not exist is refused with
// "Invalid namespace" and the shared connection keeps serving the others.
func TestInvalidNamespace(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.OfPattern(regexp.MustCompile(`^/dyn-\d+$`)) // matches nothing below
	echoArgs(ts.Of("/"), "echo")
	d := startDriver(t)
	root := d.Connect(ts.URL+"/", sioclient.Options{Manager: "m"})
	root.WaitConnect()
	bad := d.Connect(ts.URL+"/nope", sioclient.Options{Manager: "m"})
	ce := bad.WaitConnectError()
	if ce.Message != "Invalid namespace" || string(ce.Data) != "null" {
		t.Errorf("connect_error = %+v, want Invalid namespace without data", ce)
	}
	bad2 := d.Connect(ts.URL+"/dyn-x", sioclient.Options{Manager: "m"})
	if ce := bad2.WaitConnectError(); ce.Message != "Invalid namespace" {
		t.Errorf("connect_error = %+v", ce)
	}
	if res, err := root.EmitWithAck(waitTimeout, "echo", "still here"); err != nil || joinRaw(res) != `["still here"]` {
		t.Errorf("echo after the refusals = %v, %v", res, err)
	}
	if st := root.State(); !st.Connected {
		t.Errorf("root state %+v", st)
	}
	if got := ts.Engine().SessionCount(); got != 1 {
		t.Errorf("engine sessions = %d, want 1", got)
	}
	for _, n := range ts.Namespaces() {
		if n.Name() != "/" {
			t.Errorf("a refused CONNECT created namespace %q", n.Name())
		}
	}
}

func TestDynamicNamespacesPattern(t *testing.T) {
	ts := newTestServer(t, nil)
	parent := ts.OfPattern(regexp.MustCompile(`^/dyn-\d+$`))
	var mwCalls atomic.Int32
	parent.Use(func(_ context.Context, s *socketio.Socket) error {
		mwCalls.Add(1)
		s.SetData(s.Namespace().Name())
		return nil
	})
	conns := connections(parent)
	parent.OnEvent("where", func(s *socketio.Socket, e *socketio.Event) {
		_ = e.Ack(s.Namespace().Name(), s.Data())
	})

	d := startDriver(t)
	c1 := d.Connect(ts.URL+"/dyn-1", sioclient.Options{Manager: "m"})
	c2 := d.Connect(ts.URL+"/dyn-22", sioclient.Options{Manager: "m"})
	c1.WaitConnect()
	c2.WaitConnect()
	s1, s2 := recv(t, conns, "connection"), recv(t, conns, "connection")
	got := []string{s1.Namespace().Name(), s2.Namespace().Name()}
	slices.Sort(got)
	if !slices.Equal(got, []string{"/dyn-1", "/dyn-22"}) {
		t.Fatalf("children connected: %v", got)
	}
	if mwCalls.Load() != 2 {
		t.Errorf("parent middleware ran %d times, want 2", mwCalls.Load())
	}
	for _, tc := range []struct {
		c    *sioclient.Client
		want string
	}{{c1, `["/dyn-1","/dyn-1"]`}, {c2, `["/dyn-22","/dyn-22"]`}} {
		if res, err := tc.c.EmitWithAck(waitTimeout, "where"); err != nil || joinRaw(res) != tc.want {
			t.Errorf("where = %v, %v; want %s", res, err, tc.want)
		}
	}
	children := parent.Children()
	if len(children) != 2 {
		t.Fatalf("Children() = %d namespaces", len(children))
	}
	// A child is a regular namespace afterwards.
	child := ts.Of("/dyn-1")
	if !slices.Contains(children, child) || child.SocketCount() != 1 {
		t.Errorf("Of(/dyn-1) is not the child (sockets %d)", child.SocketCount())
	}
	// Handlers registered on the parent later apply to existing children.
	parent.OnEvent("late", func(s *socketio.Socket, e *socketio.Event) { _ = e.Ack("late:" + s.Namespace().Name()) })
	if res, err := c2.EmitWithAck(waitTimeout, "late"); err != nil || joinRaw(res) != `["late:/dyn-22"]` {
		t.Errorf("late handler = %v, %v", res, err)
	}
	// The parent broadcasts to every child.
	if err := parent.Emit("to-all-children", 7); err != nil {
		t.Fatal(err)
	}
	c1.Next("to-all-children")
	c2.Next("to-all-children")
	// A child broadcast stays in the child.
	if err := child.Emit("only-1"); err != nil {
		t.Fatal(err)
	}
	if err := parent.Emit("marker"); err != nil {
		t.Fatal(err)
	}
	c1.Next("only-1")
	c2.Next("marker")
	c2.NoEvent("only-1", 0)
}

func TestDynamicNamespacesFunc(t *testing.T) {
	ts := newTestServer(t, &socketio.Options{CleanupEmptyChildNamespaces: true})
	parent := ts.OfFunc(func(name string, auth json.RawMessage) bool {
		var a struct {
			Tenant string `json:"tenant"`
		}
		_ = json.Unmarshal(auth, &a)
		return strings.HasPrefix(name, "/tenant-") && a.Tenant == strings.TrimPrefix(name, "/tenant-")
	})
	conns := connections(parent)
	discs := disconnections(parent)
	parent.OnEvent("who", func(s *socketio.Socket, e *socketio.Event) {
		tenant, _ := s.Handshake().AuthString("tenant")
		_ = e.Ack(tenant)
	})
	d := startDriver(t)
	bad := d.Connect(ts.URL+"/tenant-acme", sioclient.Options{Auth: map[string]any{"tenant": "other"}, Reconnection: ptr(false)})
	if ce := bad.WaitConnectError(); ce.Message != "Invalid namespace" {
		t.Errorf("mismatched auth: %+v", ce)
	}
	if n := len(parent.Children()); n != 0 {
		t.Errorf("a refused CONNECT created %d children", n)
	}
	good := d.Connect(ts.URL+"/tenant-acme", sioclient.Options{Auth: map[string]any{"tenant": "acme"}})
	good.WaitConnect()
	s := recv(t, conns, "connection")
	if s.Namespace().Name() != "/tenant-acme" {
		t.Errorf("namespace %q", s.Namespace().Name())
	}
	if res, err := good.EmitWithAck(waitTimeout, "who"); err != nil || joinRaw(res) != `["acme"]` {
		t.Errorf("who = %v, %v", res, err)
	}
	if n := len(parent.Children()); n != 1 {
		t.Errorf("children = %d", n)
	}
	// With CleanupEmptyChildNamespaces the child goes with its last socket.
	good.Disconnect()
	recv(t, discs, "disconnect")
	if n := len(parent.Children()); n != 0 {
		t.Errorf("children after the last socket left = %d, want 0", n)
	}
	for _, n := range ts.Namespaces() {
		if n.Name() == "/tenant-acme" {
			t.Error("the empty child is still a namespace of the server")
		}
	}
	// And it is created again on demand.
	again := d.Connect(ts.URL+"/tenant-acme", sioclient.Options{Auth: map[string]any{"tenant": "acme"}})
	again.WaitConnect()
	recv(t, conns, "connection")
	if res, err := again.EmitWithAck(waitTimeout, "who"); err != nil || joinRaw(res) != `["acme"]` {
		t.Errorf("who after re-creation = %v, %v", res, err)
	}
}
