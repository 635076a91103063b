package socketio_test

import (
	"context"
	"errors"
	"testing"

	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/internal/testutil/wait"
	"github.com/operate/realtime/socketio"
)

// TestMiddlewareSeesHandshake: a connect middleware sees the headers, the
// query, the auth payload and the remote address, on every transport.
func TestMiddlewareSeesHandshake(t *testing.T) {
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			nsp := ts.Of("/secure")
			seen := make(chan *socketio.Handshake, 4)
			nsp.Use(func(ctx context.Context, s *socketio.Socket) error {
				if _, ok := ctx.Deadline(); !ok {
					t.Error("middleware context has no deadline (ConnectTimeout)")
				}
				if s.Connected() {
					t.Error("socket connected while its middleware runs")
				}
				seen <- s.Handshake()
				return nil
			})
			conns := connections(nsp)
			d := startDriver(t)
			c := d.Connect(ts.URL+"/secure", sioclient.Options{
				Transports:   tc.transports,
				Auth:         map[string]any{"token": "t0k3n", "n": 1},
				Query:        map[string]string{"room": "r1", "lang": "fr"},
				ExtraHeaders: map[string]string{"X-Tenant": "acme"},
			})
			c.WaitConnect()
			h := recv(t, seen, "middleware call")
			if got := h.Header.Get("X-Tenant"); got != "acme" {
				t.Errorf("header X-Tenant = %q (headers %v)", got, h.Header)
			}
			if h.Query().Get("room") != "r1" || h.Query().Get("lang") != "fr" || h.Query().Get("EIO") != "4" {
				t.Errorf("query = %v", h.Query())
			}
			if tok, ok := h.AuthString("token"); !ok || tok != "t0k3n" {
				t.Errorf("auth token = %q, %v (auth %s)", tok, ok, h.Auth)
			}
			if string(h.Auth) != `{"n":1,"token":"t0k3n"}` { // the driver sends Go maps with sorted keys
				t.Errorf("auth = %s", h.Auth)
			}
			if h.Address != "127.0.0.1" {
				t.Errorf("address = %q", h.Address)
			}
			if h.Time.IsZero() || h.URL == "" {
				t.Errorf("handshake time %v, url %q", h.Time, h.URL)
			}
			s := recv(t, conns, "connection")
			if s.Handshake() != h {
				t.Error("the connected socket has another handshake than its middleware saw")
			}
		})
	}
}

// TestMiddlewareAuthDefault: without auth the payload is {}.
func TestMiddlewareAuthDefault(t *testing.T) {
	ts := newTestServer(t, nil)
	seen := make(chan string, 1)
	ts.Of("/").Use(func(_ context.Context, s *socketio.Socket) error {
		seen <- string(s.Handshake().Auth)
		return nil
	})
	d := startDriver(t)
	d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly}).WaitConnect()
	if got := recv(t, seen, "middleware"); got != "{}" {
		t.Errorf("auth without payload = %q, want {}", got)
	}
}

// TestMiddlewareRejects: the error of a middleware reaches the client's
// connect_error with its message, and its data for a *ConnectError; the
// connection stays usable for another attempt.
func TestMiddlewareRejects(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/private")
	calls := make(chan string, 16) // which middleware ran, in order
	nsp.Use(func(_ context.Context, s *socketio.Socket) error {
		calls <- "first"
		tok, _ := s.Handshake().AuthString("token")
		switch tok {
		case "":
			return &socketio.ConnectError{Message: "not authorized", Data: map[string]any{"code": 4001, "reason": "token missing"}}
		case "plain":
			return errors.New("plain failure")
		}
		return nil
	})
	nsp.Use(func(_ context.Context, s *socketio.Socket) error {
		calls <- "second"
		s.Join("joined-by-second")
		return nil
	})
	conns := connections(nsp)
	d := startDriver(t)
	c := d.Connect(ts.URL+"/private", sioclient.Options{Manager: "m", Reconnection: ptr(false)})
	ce := c.WaitConnectError()
	if ce.Message != "not authorized" || string(ce.Data) != `{"code":4001,"reason":"token missing"}` {
		t.Errorf("connect_error = message %q data %s", ce.Message, ce.Data)
	}
	if got := recv(t, calls, "middleware"); got != "first" {
		t.Errorf("first middleware call: %q", got)
	}
	noValue(t, calls, "middleware call after a refusal")
	if nsp.SocketCount() != 0 {
		t.Errorf("a refused socket is registered")
	}

	c.SetAuth(map[string]any{"token": "plain"})
	c.Connect()
	ce = c.WaitConnectError()
	if ce.Message != "plain failure" || string(ce.Data) != "null" {
		t.Errorf("connect_error = message %q data %s, want no data", ce.Message, ce.Data)
	}
	recv(t, calls, "middleware")
	noValue(t, calls, "middleware call after a refusal")

	// The manager still serves the main namespace. socket.io-client closes
	// its engine after a connect_error when no other namespace is active,
	// and that close reaches the server asynchronously, so the count of
	// sessions settles at one rather than being one at once.
	root := d.Connect(ts.URL+"/", sioclient.Options{Manager: "m"})
	root.WaitConnect()
	wait.For(t, "one engine session", func() bool { return ts.Engine().SessionCount() == 1 })

	c.SetAuth(map[string]any{"token": "good"})
	c.Connect()
	info := c.WaitConnect()
	s := recv(t, conns, "connection")
	if s.ID() != info.SID || !s.In("joined-by-second") {
		t.Errorf("socket %s (client %s) rooms %v", s.ID(), info.SID, s.Rooms())
	}
	if a, b := recv(t, calls, "middleware"), recv(t, calls, "middleware"); a != "first" || b != "second" {
		t.Errorf("middleware calls = %s, %s; want first, second", a, b)
	}
}

// TestMiddlewarePanic: a panicking middleware refuses the connection with a
// connect_error; the server goes on serving.
func TestMiddlewarePanic(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.Of("/boom").Use(func(context.Context, *socketio.Socket) error { panic("middleware bug") })
	echoArgs(ts.Of("/"), "echo")
	d := startDriver(t)
	c := d.Connect(ts.URL+"/boom", sioclient.Options{Manager: "m", Reconnection: ptr(false)})
	ce := c.WaitConnectError()
	if ce.Message == "" || ce.Message == "middleware bug" {
		t.Errorf("connect_error message %q: want a generic message, not the panic value", ce.Message)
	}
	// Same connection, other namespace.
	root := d.Connect(ts.URL+"/", sioclient.Options{Manager: "m"})
	root.WaitConnect()
	if res, err := root.EmitWithAck(waitTimeout, "echo", "alive"); err != nil || joinRaw(res) != `["alive"]` {
		t.Errorf("echo after the panic = %v, %v", res, err)
	}
	// A new connection.
	other := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly})
	other.WaitConnect()
	if res, err := other.EmitWithAck(waitTimeout, "echo", 2); err != nil || joinRaw(res) != `[2]` {
		t.Errorf("echo on a new connection = %v, %v", res, err)
	}
	// The refused namespace can be retried (and panics again).
	c.Connect()
	if ce := c.WaitConnectError(); ce.Message == "" {
		t.Errorf("second attempt: %+v", ce)
	}
}

// TestMiddlewareJoinsRooms: rooms joined in a middleware take effect when
// the socket connects, and not at all when it is refused.
func TestMiddlewareJoinsRooms(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	roomDuringMW := make(chan int, 4)
	nsp.Use(func(_ context.Context, s *socketio.Socket) error {
		room, _ := s.Handshake().AuthString("room")
		s.Join(room, "everyone")
		roomDuringMW <- nsp.RoomSize(room)
		if refuse, _ := s.Handshake().AuthString("refuse"); refuse == "yes" {
			return errors.New("refused")
		}
		return nil
	})
	conns := connections(nsp)
	d := startDriver(t)

	refused := d.Connect(ts.URL+"/", sioclient.Options{Auth: map[string]any{"room": "vip", "refuse": "yes"}, Reconnection: ptr(false)})
	refused.WaitConnectError()
	if n := recv(t, roomDuringMW, "middleware"); n != 0 {
		t.Errorf("room size while the middleware runs = %d, want 0 (joins wait for the connection)", n)
	}
	if n := nsp.RoomSize("vip"); n != 0 {
		t.Errorf("a refused socket is in room vip (size %d)", n)
	}

	vip := d.Connect(ts.URL+"/", sioclient.Options{Auth: map[string]any{"room": "vip"}, Transports: wsOnly})
	vip.WaitConnect()
	recv(t, roomDuringMW, "middleware")
	s := recv(t, conns, "connection")
	if !s.In("vip") || !s.In("everyone") || nsp.RoomSize("vip") != 1 {
		t.Errorf("after connect: rooms %v, vip size %d", s.Rooms(), nsp.RoomSize("vip"))
	}
	if rooms := s.Rooms(); len(rooms) != 3 || rooms[0] != s.ID() {
		t.Errorf("Rooms() = %v, want the id room first then vip, everyone", rooms)
	}
	plain := d.Connect(ts.URL+"/", sioclient.Options{Auth: map[string]any{"room": "plain"}, Transports: wsOnly})
	plain.WaitConnect()
	recv(t, roomDuringMW, "middleware")
	recv(t, conns, "connection")

	if err := nsp.To("vip").Emit("vip-only", 1); err != nil {
		t.Fatal(err)
	}
	if err := nsp.To("everyone").Emit("marker"); err != nil {
		t.Fatal(err)
	}
	vip.Next("vip-only")
	vip.Next("marker")
	plain.Next("marker")
	plain.NoEvent("vip-only", 0)
}

// TestRefusedConnectsCap: a connection that keeps sending CONNECTs that are
// refused is closed after MaxRefusedConnects of them, once the last
// CONNECT_ERROR is delivered; a client refused fewer times stays.
func TestRefusedConnectsCap(t *testing.T) {
	ts := newTestServer(t, &socketio.Options{MaxRefusedConnects: 3})
	ts.Of("/private").Use(func(context.Context, *socketio.Socket) error {
		return errors.New("no")
	})
	c := dialWS(t, ts.Addr)
	for i := range 3 {
		c.send("40/private,")
		if got := c.read(); got != `44/private,{"message":"no"}` {
			t.Fatalf("refusal %d: %q", i+1, got)
		}
	}
	c.expectClosed("after the third refused CONNECT")
	if n := ts.RefusedConnectsClosed(); n != 1 {
		t.Errorf("RefusedConnectsClosed = %d, want 1", n)
	}

	// Twice refused, then connected elsewhere: the connection lives.
	c = dialWS(t, ts.Addr)
	for range 2 {
		c.send("40/nowhere,")
		if got := c.read(); got != `44/nowhere,{"message":"Invalid namespace"}` {
			t.Fatalf("refusal: %q", got)
		}
	}
	c.send("40")
	connectSID(t, c.read(), "40")
	c.send("42[\"x\"]") // no handler: ignored, and the connection is still up
	if n := ts.RefusedConnectsClosed(); n != 1 {
		t.Errorf("RefusedConnectsClosed = %d, want 1", n)
	}
}
