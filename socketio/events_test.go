package socketio_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
)

// exactArgs are event arguments in the exact form JSON.stringify writes
// them (what socket.io-client sends): key order, integers without a
// fraction, shortest float forms, raw non-ASCII, <>& unescaped.
var exactArgs = []string{
	`{"z":1,"a":[1.5,"é 日本語 🎉",null,true,-0.0001,1e+21,1e-7],"m":"<>&\"\\/\n\t","n":{"deep":{"deeper":[{}],"empty":""}}}`,
	`1`,
	`1.5`,
	`-1`,
	`0`,
	`9007199254740991`,
	`"<script>alert('x') && 1 > 0</script>"`,
	"\"line\u2028separator\u2029end\"",
	`[]`,
	`{}`,
	`""`,
	`null`,
	`false`,
	`[[1,[2,[3,{"k":"v"}]]],{"_placeholder":false,"num":0}]`,
}

func rawMessages(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = json.RawMessage(s)
	}
	return out
}

// TestEventsRoundTripExact: arguments reach the handler byte for byte as
// the client wrote them, and go back (emit and ack) unchanged.
func TestEventsRoundTripExact(t *testing.T) {
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			nsp := ts.Of("/")
			received := make(chan string, 4)
			for _, ev := range []string{"echo", "ünï-ëvent 🎉"} {
				nsp.OnEvent(ev, func(s *socketio.Socket, e *socketio.Event) {
					received <- e.Name + " " + rawArgs(e.Args)
					_ = s.Emit(e.Name, e.Args)
					_ = e.Ack(e.Args)
				})
			}
			d := startDriver(t)
			c := d.Connect(ts.URL+"/", sioclient.Options{Transports: tc.transports})
			c.WaitConnect()
			want := "[" + strings.Join(exactArgs, ",") + "]"
			for _, ev := range []string{"echo", "ünï-ëvent 🎉"} {
				res, err := c.EmitWithAck(waitTimeout, ev, rawMessages(exactArgs)...)
				if err != nil {
					t.Fatalf("%s: %v", ev, err)
				}
				if got := recv(t, received, "event"); got != ev+" "+want {
					t.Errorf("server received\n%s\nwant\n%s", got, ev+" "+want)
				}
				if got := joinRaw(res); got != want {
					t.Errorf("ack\n%s\nwant\n%s", got, want)
				}
				if got := argsOf(c.Next(ev)); got != want {
					t.Errorf("echo\n%s\nwant\n%s", got, want)
				}
			}
		})
	}
}

type ordered struct {
	B int    `json:"B"`
	A string `json:"A"`
}

// TestServerEmitValues: values given to Emit reach the client as
// JSON.stringify would have written them.
func TestServerEmitValues(t *testing.T) {
	ts := newTestServer(t, nil)
	conns := connections(ts.Of("/"))
	d := startDriver(t)
	c := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly})
	c.WaitConnect()
	s := recv(t, conns, "connection")
	err := s.Emit("values",
		1, 1.5, float64(2), int64(-3), uint8(7), "<>&", ordered{1, "x"},
		map[string]any{"k": []int{1, 2}}, nil, true, json.RawMessage(`{"z":1,"a":2}`),
		"é\u2028🎉", []string{}, map[string]int{})
	if err != nil {
		t.Fatal(err)
	}
	want := `[1,1.5,2,-3,7,"<>&",{"B":1,"A":"x"},{"k":[1,2]},null,true,{"z":1,"a":2},"é` + "\u2028" + `🎉",[],{}]`
	if got := argsOf(c.Next("values")); got != want {
		t.Errorf("values\n%s\nwant\n%s", got, want)
	}
	// No arguments at all.
	if err := s.Emit("none"); err != nil {
		t.Fatal(err)
	}
	if got := c.Next("none"); len(got.Args) != 0 {
		t.Errorf("none = %s", got)
	}

	// Reserved names and unencodable values are refused, not sent.
	for _, name := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
		if err := s.Emit(name); err == nil {
			t.Errorf("Emit(%q) accepted", name)
		}
		if err := ts.Of("/").Emit(name); err == nil {
			t.Errorf("namespace Emit(%q) accepted", name)
		}
	}
	if err := s.Emit("bad", json.RawMessage(`{"unterminated"`)); err == nil {
		t.Error("invalid json.RawMessage accepted")
	}
	if err := s.Emit("bad", make(chan int)); err == nil {
		t.Error("a channel argument accepted")
	}
	if err := s.Emit("after", "ok"); err != nil {
		t.Fatal(err)
	}
	c.Next("after")
	c.NoEvent("bad", 0)
}

// TestEventsInOrder: events both ways keep their order under load.
func TestEventsInOrder(t *testing.T) {
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			nsp := ts.Of("/")
			got := make(chan int, 1000)
			nsp.OnEvent("n", func(s *socketio.Socket, e *socketio.Event) {
				var i int
				if err := e.Args.Decode(0, &i); err != nil {
					t.Errorf("decode %s: %v", e.Args.Raw(0), err)
				}
				got <- i
				_ = s.Emit("n", i)
			})
			d := startDriver(t)
			c := d.Connect(ts.URL+"/", sioclient.Options{Transports: tc.transports})
			c.WaitConnect()
			const n = 200
			for i := range n {
				c.Emit("n", i)
			}
			for i := range n {
				if v := recv(t, got, "event"); v != i {
					t.Fatalf("server got %d at position %d", v, i)
				}
				if ev := c.Next("n"); argsOf(ev) != "["+itoa(i)+"]" {
					t.Fatalf("client got %s at position %d", ev, i)
				}
			}
		})
	}
}

// TestCatchAllHandler: OnAnyEvent receives events without a handler of
// their own.
func TestCatchAllHandler(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	nsp.OnEvent("known", func(s *socketio.Socket, e *socketio.Event) { _ = e.Ack("known") })
	nsp.OnAnyEvent(func(s *socketio.Socket, e *socketio.Event) { _ = e.Ack("any:"+e.Name, e.Args) })
	d := startDriver(t)
	c := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly})
	c.WaitConnect()
	if res, err := c.EmitWithAck(waitTimeout, "known", 1); err != nil || joinRaw(res) != `["known"]` {
		t.Errorf("known = %v, %v", res, err)
	}
	if res, err := c.EmitWithAck(waitTimeout, "other", 1, "x"); err != nil || joinRaw(res) != `["any:other",1,"x"]` {
		t.Errorf("other = %v, %v", res, err)
	}
}

// TestSpliceEmptyArgs: an event received without arguments can be passed on
// (Emit, Ack) alone or among other arguments.
func TestSpliceEmptyArgs(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	nsp.OnEvent("echo", func(s *socketio.Socket, e *socketio.Event) {
		for _, err := range []error{
			s.Emit("alone", e.Args),
			s.Emit("first", e.Args, 1),
			s.Emit("last", 1, e.Args),
			s.Emit("middle", 1, e.Args, 2),
			s.Emit("twice", e.Args, e.Args),
			s.Emit("bin", []byte{1}, e.Args, []byte{2}),
			e.Ack(e.Args, "x", e.Args),
		} {
			if err != nil {
				t.Errorf("emit: %v", err)
			}
		}
	})
	d := startDriver(t)
	c := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly})
	c.WaitConnect()
	res, err := c.EmitWithAck(waitTimeout, "echo")
	if err != nil || joinRaw(res) != `["x"]` {
		t.Errorf("ack = %v, %v", res, err)
	}
	for _, want := range []struct{ ev, args string }{
		{"alone", `[]`}, {"first", `[1]`}, {"last", `[1]`}, {"middle", `[1,2]`}, {"twice", `[]`},
		{"bin", `[{"$bin":"AQ=="},{"$bin":"Ag=="}]`},
	} {
		if got := argsOf(c.Next(want.ev)); got != want.args {
			t.Errorf("%s = %s, want %s", want.ev, got, want.args)
		}
	}
	if st := c.State(); !st.Connected {
		t.Errorf("client state %+v", st)
	}
}
