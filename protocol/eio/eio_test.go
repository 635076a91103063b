package eio_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/operate/realtime/protocol/eio"
)

// The examples are those of the protocol reference note, §1.3 and §1.4.

func TestDecodeText(t *testing.T) {
	t.Parallel()
	handshake := `{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`
	tests := []struct {
		in   string
		typ  eio.Type
		data string
	}{
		{"0" + handshake, eio.Open, handshake},
		{"1", eio.Close, ""},
		{"2", eio.Ping, ""},
		{"2probe", eio.Ping, "probe"},
		{"3", eio.Pong, ""},
		{"3probe", eio.Pong, "probe"},
		{"4hello", eio.Message, "hello"},
		{"4", eio.Message, ""},
		{`42["foo"]`, eio.Message, `2["foo"]`},
		{"4\x00\xff", eio.Message, "\x00\xff"}, // the codec does not judge the data
		{"5", eio.Upgrade, ""},
		{"6", eio.Noop, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			t.Parallel()
			in := []byte(tt.in)
			p, err := eio.DecodeText(in)
			if err != nil {
				t.Fatalf("DecodeText(%q): %v", tt.in, err)
			}
			if p.Type != tt.typ || string(p.Data) != tt.data || p.Binary {
				t.Fatalf("DecodeText(%q) = {%v %q %v}, want {%v %q false}", tt.in, p.Type, p.Data, p.Binary, tt.typ, tt.data)
			}
			if len(p.Data) > 0 && &p.Data[0] != &in[1] {
				t.Errorf("Data does not alias the input")
			}
			if got := eio.AppendText(nil, p.Type, p.Data); string(got) != tt.in {
				t.Errorf("AppendText = %q, want %q", got, tt.in)
			}
		})
	}
}

func TestDecodeTextInvalid(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "7", "8x", "9", "b", "bAQID", "x", "/", " 4", "-1", "\x1e", "\xff"} {
		t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
			t.Parallel()
			if p, err := eio.DecodeText([]byte(in)); !errors.Is(err, eio.ErrInvalidPacket) {
				t.Fatalf("DecodeText(%q) = %+v, %v; want ErrInvalidPacket", in, p, err)
			}
		})
	}
}

type decoded struct {
	typ    eio.Type
	data   string
	binary bool
}

func (d decoded) String() string { return fmt.Sprintf("{%v %q bin=%v}", d.typ, d.data, d.binary) }

func decodeAll(body []byte) ([]decoded, error) {
	var out []decoded
	err := eio.DecodePayload(body, func(p eio.Packet) error {
		out = append(out, decoded{p.Type, string(p.Data), p.Binary})
		return nil
	})
	return out, err
}

func TestDecodePayload(t *testing.T) {
	t.Parallel()
	msg := func(s string) decoded { return decoded{eio.Message, s, false} }
	bin := func(s string) decoded { return decoded{eio.Message, s, true} }
	tests := []struct {
		name string
		in   string
		want []decoded
		err  bool
	}{
		{"reference batch", "4hello\x1e2\x1e4world", []decoded{msg("hello"), {eio.Ping, "", false}, msg("world")}, false},
		{"binary base64", "bAQIDBA==", []decoded{bin("\x01\x02\x03\x04")}, false},
		{"binary socket.io event", "451-[\"bin-back\",{\"_placeholder\":true,\"num\":0},\"x\"]\x1ebAQID",
			[]decoded{msg(`51-["bin-back",{"_placeholder":true,"num":0},"x"]`), bin("\x01\x02\x03")}, false},
		{"test-suite batch", "4test1\x1e4test2\x1e4test3", []decoded{msg("test1"), msg("test2"), msg("test3")}, false},
		{"single packet", "4hello", []decoded{msg("hello")}, false},
		{"close", "1", []decoded{{eio.Close, "", false}}, false},
		{"pong and message", "3\x1e4x", []decoded{{eio.Pong, "", false}, msg("x")}, false},
		{"empty binary", "b", []decoded{bin("")}, false},
		{"binary unpadded length 1", "bAA==", []decoded{bin("\x00")}, false},
		{"empty body", "", nil, false},
		// Empty records carry nothing; they are skipped (see the report: Node's
		// engine.io-parser 5.2.3 turns them into a parse error).
		{"empty records", "4a\x1e\x1e4b\x1e", []decoded{msg("a"), msg("b")}, false},
		// Decoding stops at the first invalid packet, after delivering the
		// valid ones before it.
		{"invalid type stops", "4a\x1e7x\x1e4b", []decoded{msg("a")}, true},
		{"invalid first", "x\x1e4a", nil, true},
		{"invalid base64", "4a\x1eb!!!\x1e4b", []decoded{msg("a")}, true},
		{"base64 bad padding", "bAQI", nil, true},
		{"base64 url alphabet", "b-_8=", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeAll([]byte(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("DecodePayload(%q) error = %v, want error %v", tt.in, err, tt.err)
			}
			if err != nil && !errors.Is(err, eio.ErrInvalidPacket) {
				t.Fatalf("DecodePayload(%q) error = %v, want ErrInvalidPacket", tt.in, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("DecodePayload(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDecodePayloadAliasesText(t *testing.T) {
	t.Parallel()
	body := []byte("4hello\x1ebAQID\x1e4world")
	var ps []eio.Packet
	if err := eio.DecodePayload(body, func(p eio.Packet) error { ps = append(ps, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 {
		t.Fatalf("got %d packets", len(ps))
	}
	if &ps[0].Data[0] != &body[1] || &ps[2].Data[0] != &body[14] {
		t.Errorf("text packet data does not alias the body")
	}
	// Binary data is decoded into a fresh buffer: overwriting the body
	// leaves it alone.
	for i := range body {
		body[i] = 'z'
	}
	if string(ps[1].Data) != "\x01\x02\x03" {
		t.Errorf("binary packet data aliases the body: %q", ps[1].Data)
	}
}

func TestDecodePayloadCallbackError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	n := 0
	err := eio.DecodePayload([]byte("4a\x1e4b\x1e4c"), func(p eio.Packet) error {
		n++
		if string(p.Data) == "b" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("err = %v after %d packets, want the callback's error after 2", err, n)
	}
}

func TestAppendPayloadBinary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data []byte
		want string
	}{
		{[]byte{1, 2, 3, 4}, "bAQIDBA=="},
		{[]byte{1, 2, 3}, "bAQID"},
		{nil, "b"},
		{[]byte{0xfb, 0xff}, "b+/8="}, // standard alphabet, padded
	}
	for _, tt := range tests {
		got := eio.AppendPayloadBinary([]byte("x"), tt.data)
		if string(got) != "x"+tt.want {
			t.Errorf("AppendPayloadBinary(%v) = %q, want %q", tt.data, got, "x"+tt.want)
		}
		back, err := decodeAll(got[1:])
		if err != nil || len(back) != 1 || !back[0].binary || back[0].data != string(tt.data) {
			t.Errorf("round trip of %v: %v, %v", tt.data, back, err)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	// A payload built the way the server builds a GET response decodes back
	// to the same packets.
	var body []byte
	in := []decoded{
		{eio.Open, `{"sid":"x"}`, false},
		{eio.Message, `2["a"]`, false},
		{eio.Message, "\x00\x01\xfe\xff", true},
		{eio.Ping, "", false},
		{eio.Noop, "", false},
		{eio.Message, "", true},
	}
	for i, d := range in {
		if i > 0 {
			body = append(body, eio.Separator)
		}
		if d.binary {
			body = eio.AppendPayloadBinary(body, []byte(d.data))
		} else {
			body = eio.AppendText(body, d.typ, []byte(d.data))
		}
	}
	got, err := decodeAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(in) {
		t.Fatalf("round trip: got %v, want %v", got, in)
	}
}

func TestTypeString(t *testing.T) {
	t.Parallel()
	want := []string{"open", "close", "ping", "pong", "message", "upgrade", "noop", "type(7)"}
	for i, w := range want {
		if got := eio.Type(i).String(); got != w {
			t.Errorf("Type(%d).String() = %q, want %q", i, got, w)
		}
	}
	if eio.Separator != 0x1e {
		t.Errorf("Separator = %#x", eio.Separator)
	}
}

func TestAppendTextKeepsPrefix(t *testing.T) {
	t.Parallel()
	got := eio.AppendText([]byte("4a\x1e"), eio.Message, []byte("b"))
	if !bytes.Equal(got, []byte("4a\x1e4b")) {
		t.Fatalf("AppendText = %q", got)
	}
}

// TestDecodePayloadBoundedAllocation: decoding a big binary record costs
// about 3/4 of its base64 length and no more (no copy of the body, no
// growth). Not parallel, since it reads the process-wide allocation counter.
func TestDecodePayloadBoundedAllocation(t *testing.T) {
	raw := bytes.Repeat([]byte{0xa5, 0x5a, 0x00}, 1<<18) // 768 KiB
	body := eio.AppendPayloadBinary(nil, raw)            // 1 MiB of base64
	body = append(body, eio.Separator)
	body = eio.AppendPayloadBinary(body, raw)
	var n int
	fn := func(p eio.Packet) error { n += len(p.Data); return nil }
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := eio.DecodePayload(body, fn); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n != 2*len(raw) {
		t.Fatalf("decoded %d bytes, want %d", n, 2*len(raw))
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	if limit := uint64(3*len(body)/4 + 64<<10); allocated > limit {
		t.Fatalf("decoding %d bytes of payload allocated %d bytes (limit %d)", len(body), allocated, limit)
	}
}
