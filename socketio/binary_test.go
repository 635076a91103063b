package socketio_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio"
)

// nestedBin is an object argument with a binary value among other keys,
// in an order that is not alphabetical.
type nestedBin struct {
	Z   int                `json:"z"`
	Bin sioclient.Binary   `json:"bin"`
	A   string             `json:"a"`
	F   float64            `json:"f"`
	L   []sioclient.Binary `json:"l"`
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestBinary(t *testing.T) {
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			A := []byte{0, 1, 2, 0xfe, 0xff}
			B := bytes.Repeat([]byte("binary\x00"), 3000) // > 16 KiB, several frames' worth
			C := []byte{}                                 // empty buffers are attachments too
			D := []byte("d")
			X, Y := []byte{0xaa}, []byte{0xbb, 0xcc}

			ts := newTestServer(t, nil)
			nsp := ts.Of("/")
			conns := connections(nsp)
			type seen struct {
				raw  string
				bin0 []byte
				ok0  bool
				ok1  bool
				atts [][]byte
				dec  []byte
			}
			got := make(chan seen, 4)
			nsp.OnEvent("mix", func(s *socketio.Socket, e *socketio.Event) {
				v := seen{raw: rawArgs(e.Args), atts: e.Args.Attachments()}
				v.bin0, v.ok0 = e.Args.Bytes(0)
				_, v.ok1 = e.Args.Bytes(1)
				_ = e.Args.Decode(0, &v.dec)
				got <- v
				// A []byte before the spliced Args: their placeholders are
				// renumbered after it.
				_ = s.Emit("mix-back", X, e.Args, Y)
				_ = e.Ack(X, e.Args)
			})
			d := startDriver(t)
			c := d.Connect(ts.URL+"/", sioclient.Options{Transports: tc.transports})
			c.WaitConnect()
			s := recv(t, conns, "connection")

			obj := nestedBin{Z: 1, Bin: B, A: "<>&", F: 1e-7, L: []sioclient.Binary{C, D}}
			res, err := c.EmitWithAck(waitTimeout, "mix", A, obj, "text", 1.5)
			if err != nil {
				t.Fatal(err)
			}

			// Server side: placeholders in the raw JSON, attachments beside.
			v := recv(t, got, "mix")
			wantRaw := `[{"_placeholder":true,"num":0},` +
				`{"z":1,"bin":{"_placeholder":true,"num":1},"a":"<>&","f":1e-7,"l":[{"_placeholder":true,"num":2},{"_placeholder":true,"num":3}]},` +
				`"text",1.5]`
			if v.raw != wantRaw {
				t.Errorf("server args\n%s\nwant\n%s", v.raw, wantRaw)
			}
			if !v.ok0 || !bytes.Equal(v.bin0, A) || !bytes.Equal(v.dec, A) {
				t.Errorf("Bytes(0) = %x, %v; Decode = %x", v.bin0, v.ok0, v.dec)
			}
			if v.ok1 {
				t.Error("Bytes(1) is true for an object argument")
			}
			if len(v.atts) != 4 || !bytes.Equal(v.atts[0], A) || !bytes.Equal(v.atts[1], B) ||
				len(v.atts[2]) != 0 || !bytes.Equal(v.atts[3], D) {
				t.Errorf("attachments: %d", len(v.atts))
			}

			// Client side: the same values, at the same places, with the
			// object's keys in their order.
			bin := func(b []byte) string { return `{"$bin":"` + b64(b) + `"}` }
			wantObj := `{"z":1,"bin":` + bin(B) + `,"a":"<>&","f":1e-7,"l":[` + bin(C) + `,` + bin(D) + `]}`
			wantBack := `[` + bin(X) + `,` + bin(A) + `,` + wantObj + `,"text",1.5,` + bin(Y) + `]`
			short := strings.NewReplacer(b64(B), "<B>").Replace // readable failures
			if got := argsOf(c.Next("mix-back")); got != wantBack {
				t.Errorf("mix-back\n%s\nwant\n%s", short(got), short(wantBack))
			}
			wantAck := `[` + bin(X) + `,` + bin(A) + `,` + wantObj + `,"text",1.5]`
			if got := joinRaw(res); got != wantAck {
				t.Errorf("ack\n%s\nwant\n%s", short(got), short(wantAck))
			}

			// []byte arguments of the server arrive as Buffers.
			if err := s.Emit("from-server", []byte{9, 8, 7}, "x", []byte{}, B); err != nil {
				t.Fatal(err)
			}
			if got := argsOf(c.Next("from-server")); got != `[`+bin([]byte{9, 8, 7})+`,"x",`+bin(nil)+`,`+bin(B)+`]` {
				t.Errorf("from-server = %s", short(got))
			}
			if err := nsp.Emit("broadcast-bin", "y", []byte{1}); err != nil {
				t.Fatal(err)
			}
			if got := argsOf(c.Next("broadcast-bin")); got != `["y",`+bin([]byte{1})+`]` {
				t.Errorf("broadcast-bin = %s", got)
			}

			// Binary answers to the server's ack requests.
			done := make(chan ackResult, 1)
			go func() {
				a, err := s.EmitWithAck(context.Background(), "need-bin", []byte{5})
				done <- ackResult{a, err}
			}()
			ev := c.Next("need-bin")
			if argsOf(ev) != `[`+bin([]byte{5})+`]` {
				t.Errorf("need-bin = %s", ev)
			}
			c.Ack(ev, sioclient.Bin(B), "after")
			r := recv(t, done, "binary ack")
			if b, ok := r.args.Bytes(0); r.err != nil || !ok || !bytes.Equal(b, B) {
				t.Errorf("binary ack: %v, %v", ok, r.err)
			}
			if a, _ := r.args.String(1); a != "after" {
				t.Errorf("binary ack second arg %s", r.args.Raw(1))
			}
		})
	}
}

// TestBinarySpliceRenumbering: spliced Args after several binary values and
// after other spliced Args keep every attachment at its place.
func TestBinarySpliceRenumbering(t *testing.T) {
	ts := newTestServer(t, nil)
	nsp := ts.Of("/")
	var first socketio.Args
	gotFirst := make(chan struct{}, 1)
	nsp.OnEvent("first", func(s *socketio.Socket, e *socketio.Event) {
		first = e.Args
		gotFirst <- struct{}{}
	})
	nsp.OnEvent("second", func(s *socketio.Socket, e *socketio.Event) {
		<-gotFirst
		// Two spliced Args, each with attachments, and []byte around them.
		_ = s.Emit("combined", []byte{1}, first, []byte{2}, e.Args)
	})
	d := startDriver(t)
	c := d.Connect(ts.URL+"/", sioclient.Options{Transports: wsOnly})
	c.WaitConnect()
	c.Emit("first", sioclient.Bin([]byte{10}), map[string]any{"k": sioclient.Bin([]byte{11})})
	c.Emit("second", []any{sioclient.Bin([]byte{20}), "s"}, sioclient.Bin([]byte{21}))
	bin := func(b ...byte) string { return `{"$bin":"` + b64(b) + `"}` }
	want := `[` + bin(1) + `,` + bin(10) + `,{"k":` + bin(11) + `},` + bin(2) + `,[` + bin(20) + `,"s"],` + bin(21) + `]`
	if got := argsOf(c.Next("combined")); got != want {
		t.Errorf("combined\n%s\nwant\n%s", got, want)
	}
}
