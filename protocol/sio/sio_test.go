package sio_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/operate/realtime/protocol/sio"
)

// want is an expected decoded packet; data "" means no payload.
type want struct {
	typ   sio.Type
	att   int
	nsp   string
	hasID bool
	id    uint64
	data  string
}

func packetString(p sio.Packet) string {
	data := "<nil>"
	if p.Data != nil {
		data = fmt.Sprintf("%q", p.Data)
	}
	return fmt.Sprintf("{%v att=%d nsp=%q hasID=%v id=%d data=%s}", p.Type, p.Attachments, p.Namespace, p.HasID, p.ID, data)
}

func (w want) String() string {
	data := "<nil>"
	if w.data != "" {
		data = fmt.Sprintf("%q", w.data)
	}
	return fmt.Sprintf("{%v att=%d nsp=%q hasID=%v id=%d data=%s}", w.typ, w.att, w.nsp, w.hasID, w.id, data)
}

const ph0 = `{"_placeholder":true,"num":0}`

// decodeTests are the examples of the reference note (§2.2, §2.4, §2.5,
// §2.6) and the lenient forms the conformance suite relies on.
var decodeTests = []struct {
	name string
	in   string
	want want
	// canonical is the re-encoding (AppendHeader + Data) when it differs
	// from in.
	canonical string
}{
	// §2.2 examples.
	{"connect main", `0`, want{typ: sio.Connect, nsp: "/"}, ""},
	{"connect reply admin", `0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}`, want{typ: sio.Connect, nsp: "/admin", data: `{"sid":"oSO0OpakMV_3jnilAAAA"}`}, ""},
	{"connect error", `4{"message":"Not authorized"}`, want{typ: sio.ConnectError, nsp: "/", data: `{"message":"Not authorized"}`}, ""},
	{"event", `2["foo"]`, want{typ: sio.Event, nsp: "/", data: `["foo"]`}, ""},
	{"event admin", `2/admin,["bar"]`, want{typ: sio.Event, nsp: "/admin", data: `["bar"]`}, ""},
	{"event with ack id", `212["foo"]`, want{typ: sio.Event, nsp: "/", hasID: true, id: 12, data: `["foo"]`}, ""},
	{"ack admin", `3/admin,13["bar"]`, want{typ: sio.Ack, nsp: "/admin", hasID: true, id: 13, data: `["bar"]`}, ""},
	{"binary event", `51-["baz",` + ph0 + `]`, want{typ: sio.BinaryEvent, att: 1, nsp: "/", data: `["baz",` + ph0 + `]`}, ""},
	{"binary ack", `61-15["bar",` + ph0 + `]`, want{typ: sio.BinaryAck, att: 1, nsp: "/", hasID: true, id: 15, data: `["bar",` + ph0 + `]`}, ""},
	{"disconnect", `1`, want{typ: sio.Disconnect, nsp: "/"}, ""},
	{"disconnect admin", `1/admin,`, want{typ: sio.Disconnect, nsp: "/admin"}, ""},

	// §2.5 / §2.6 forms.
	{"connect with auth", `0{"token":"x"}`, want{typ: sio.Connect, nsp: "/", data: `{"token":"x"}`}, ""},
	{"connect admin with auth", `0/admin,{"token":"x"}`, want{typ: sio.Connect, nsp: "/admin", data: `{"token":"x"}`}, ""},
	{"connect empty object", `0{}`, want{typ: sio.Connect, nsp: "/", data: `{}`}, ""},
	{"connect reply with pid", `0{"sid":"a","pid":"b"}`, want{typ: sio.Connect, nsp: "/", data: `{"sid":"a","pid":"b"}`}, ""},
	{"invalid namespace reply", `4/nope,{"message":"Invalid namespace"}`, want{typ: sio.ConnectError, nsp: "/nope", data: `{"message":"Invalid namespace"}`}, ""},
	{"connect error with data", `4{"message":"m","data":{"a":[1]}}`, want{typ: sio.ConnectError, nsp: "/", data: `{"message":"m","data":{"a":[1]}}`}, ""},
	{"connect error string", `4"Not authorized"`, want{typ: sio.ConnectError, nsp: "/", data: `"Not authorized"`}, ""},
	{"event test-suite ack", `2456["message-with-ack",1,"2",{"3":[false]}]`, want{typ: sio.Event, nsp: "/", hasID: true, id: 456, data: `["message-with-ack",1,"2",{"3":[false]}]`}, ""},
	{"ack test-suite", `3456[1,"2",{"3":[false]}]`, want{typ: sio.Ack, nsp: "/", hasID: true, id: 456, data: `[1,"2",{"3":[false]}]`}, ""},
	{"server ack id 0", `20["c-ack"]`, want{typ: sio.Event, nsp: "/", hasID: true, id: 0, data: `["c-ack"]`}, ""},
	{"binary event two attachments", `52-["message",` + ph0 + `,{"_placeholder":true,"num":1}]`, want{typ: sio.BinaryEvent, att: 2, nsp: "/", data: `["message",` + ph0 + `,{"_placeholder":true,"num":1}]`}, ""},
	{"binary event with ack", `52-789["m",` + ph0 + `]`, want{typ: sio.BinaryEvent, att: 2, nsp: "/", hasID: true, id: 789, data: `["m",` + ph0 + `]`}, ""},
	{"binary ack two", `62-789[` + ph0 + `,{"_placeholder":true,"num":1}]`, want{typ: sio.BinaryAck, att: 2, nsp: "/", hasID: true, id: 789, data: `[` + ph0 + `,{"_placeholder":true,"num":1}]`}, ""},
	{"binary event admin", `51-/admin,["a",` + ph0 + `]`, want{typ: sio.BinaryEvent, att: 1, nsp: "/admin", data: `["a",` + ph0 + `]`}, ""},
	{"binary admin with id", `61-/admin,7[` + ph0 + `]`, want{typ: sio.BinaryAck, att: 1, nsp: "/admin", hasID: true, id: 7, data: `[` + ph0 + `]`}, ""},
	{"binary max attachments", `510-["a"]`, want{typ: sio.BinaryEvent, att: 10, nsp: "/", data: `["a"]`}, ""},
	{"ack without payload", `3`, want{typ: sio.Ack, nsp: "/"}, ""},
	{"ack empty array", `31[]`, want{typ: sio.Ack, nsp: "/", hasID: true, id: 1, data: `[]`}, ""},
	{"event without payload", `2`, want{typ: sio.Event, nsp: "/"}, ""},

	// Lenient forms (§2.2 decoder rules 2–4).
	{"namespace without comma", `0/custom`, want{typ: sio.Connect, nsp: "/custom"}, `0/custom,`},
	{"disconnect namespace without comma", `1/custom`, want{typ: sio.Disconnect, nsp: "/custom"}, `1/custom,`},
	{"event namespace without comma", `2/custom`, want{typ: sio.Event, nsp: "/custom"}, `2/custom,`},
	{"explicit main namespace", `0/,{}`, want{typ: sio.Connect, nsp: "/", data: `{}`}, `0{}`},
	{"namespace swallows data without comma", `2/x["a"]`, want{typ: sio.Event, nsp: `/x["a"]`}, `2/x["a"],`},
	{"empty attachment count", `5-["a"]`, want{typ: sio.BinaryEvent, att: 0, nsp: "/", data: `["a"]`}, `50-["a"]`},
	{"zero attachments", `60-[]`, want{typ: sio.BinaryAck, att: 0, nsp: "/", data: `[]`}, ""},
	{"attachment count leading zero", `501-["a",` + ph0 + `]`, want{typ: sio.BinaryEvent, att: 1, nsp: "/", data: `["a",` + ph0 + `]`}, `51-["a",` + ph0 + `]`},
	{"numeric event name", `2[1,2]`, want{typ: sio.Event, nsp: "/", data: `[1,2]`}, ""},
	{"negative float event name", `2[-1.5e3]`, want{typ: sio.Event, nsp: "/", data: `[-1.5e3]`}, ""},
	{"numeric event name binary", `51-[7,` + ph0 + `]`, want{typ: sio.BinaryEvent, att: 1, nsp: "/", data: `[7,` + ph0 + `]`}, ""},
	{"ack id leading zeros", `2007["x"]`, want{typ: sio.Event, nsp: "/", hasID: true, id: 7, data: `["x"]`}, `27["x"]`},
	{"largest exact ack id", `29007199254740992["x"]`, want{typ: sio.Event, nsp: "/", hasID: true, id: 1 << 53, data: `["x"]`}, ""},
	{"connect with ack id", `01`, want{typ: sio.Connect, nsp: "/", hasID: true, id: 1}, ""},
	{"whitespace inside and after JSON", "2[ \"a\" , 1 ]\n", want{typ: sio.Event, nsp: "/", data: "[ \"a\" , 1 ]\n"}, ""},
	{"names close to reserved", `2["Connect"]`, want{typ: sio.Event, nsp: "/", data: `["Connect"]`}, ""},
	{"name with reserved prefix", `2["connected"]`, want{typ: sio.Event, nsp: "/", data: `["connected"]`}, ""},
	{"name escaped not reserved", `2["\u0063onnected"]`, want{typ: sio.Event, nsp: "/", data: `["\u0063onnected"]`}, ""},
	{"empty event name", `2[""]`, want{typ: sio.Event, nsp: "/", data: `[""]`}, ""},
	{"unicode event name", `2["évènement😀"]`, want{typ: sio.Event, nsp: "/", data: `["évènement😀"]`}, ""},
	{"reserved name as argument", `2["x","connect"]`, want{typ: sio.Event, nsp: "/", data: `["x","connect"]`}, ""},
	{"ack may carry anything in an array", `3["connect",null]`, want{typ: sio.Ack, nsp: "/", data: `["connect",null]`}, ""},
}

func TestDecode(t *testing.T) {
	t.Parallel()
	for _, tt := range decodeTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := []byte(tt.in)
			p, err := sio.Decode(in, 0)
			if err != nil {
				t.Fatalf("Decode(%q): %v", tt.in, err)
			}
			w := tt.want
			if p.Type != w.typ || p.Attachments != w.att || p.Namespace != w.nsp || p.HasID != w.hasID || p.ID != w.id ||
				string(p.Data) != w.data || (w.data == "") != (p.Data == nil) {
				t.Fatalf("Decode(%q) =\n  %s, want\n  %s", tt.in, packetString(p), w)
			}
			if p.Data != nil && &p.Data[len(p.Data)-1] != &in[len(in)-1] {
				t.Errorf("Data does not alias the input")
			}
			// The header re-encodes, and the packet decodes back the same.
			enc := append(sio.AppendHeader(nil, p.Type, p.Attachments, p.Namespace, p.HasID, p.ID), p.Data...)
			canonical := tt.canonical
			if canonical == "" {
				canonical = tt.in
			}
			if string(enc) != canonical {
				t.Errorf("re-encoded as %q, want %q", enc, canonical)
			}
			p2, err := sio.Decode(enc, 0)
			if err != nil || packetString(p2) != packetString(p) {
				t.Errorf("re-encoding %q decodes as %s, %v", enc, packetString(p2), err)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		err  error
	}{
		// Rule 1: unknown type.
		{"empty", ``, sio.ErrUnknownType},
		{"type 7", `7`, sio.ErrUnknownType},
		{"type 9", `9["a"]`, sio.ErrUnknownType},
		{"letter", `a`, sio.ErrUnknownType},
		{"minus", `-1`, sio.ErrUnknownType},
		{"space first", ` 2["a"]`, sio.ErrUnknownType},
		{"engine.io message prefix", `b2["a"]`, sio.ErrUnknownType},

		// Rule 2: attachments.
		{"binary without dash", `5["a"]`, sio.ErrIllegalAttachments},
		{"binary without anything", `5`, sio.ErrIllegalAttachments},
		{"binary ack without dash", `61["a"]`, sio.ErrIllegalAttachments},
		{"letter in count", `5a-["a"]`, sio.ErrIllegalAttachments},
		{"negative count", `5-1-["a"]`, sio.ErrInvalidPayload}, // "" then id 1 then `-["a"]`
		{"namespace before count", `5/admin,1-["a"]`, sio.ErrIllegalAttachments},
		{"11 attachments", `511-["echo"]`, sio.ErrTooManyAttachments},
		{"11 attachments binary ack", `611-[]`, sio.ErrTooManyAttachments},
		{"huge count", `5999999999999999999999999-["a"]`, sio.ErrTooManyAttachments},

		// Rule 5: JSON.
		{"json garbage after event", `2abc["x"]`, sio.ErrInvalidPayload},
		{"unterminated array", `2["foo"`, sio.ErrInvalidPayload},
		{"trailing garbage", `2["a"]x`, sio.ErrInvalidPayload},
		{"two values", `2["a"]["b"]`, sio.ErrInvalidPayload},
		{"single quotes", `2['a']`, sio.ErrInvalidPayload},
		{"connect bad json", `0{"a":}`, sio.ErrInvalidPayload},
		{"control char in string", "2[\"a\x01\"]", sio.ErrInvalidPayload},

		// Rule 6: payload kind per type.
		{"event object", `2{}`, sio.ErrInvalidPayload},
		{"event string", `2"foo"`, sio.ErrInvalidPayload},
		{"event string admin", `2/admin,"x"`, sio.ErrInvalidPayload},
		{"event empty array", `2[]`, sio.ErrInvalidPayload},
		{"event empty array spaces", `2[ ]`, sio.ErrInvalidPayload},
		{"event null name", `2[null]`, sio.ErrInvalidPayload},
		{"event bool name", `2[true,1]`, sio.ErrInvalidPayload},
		{"event object name", `2[{"a":1}]`, sio.ErrInvalidPayload},
		{"event array name", `2[["a"]]`, sio.ErrInvalidPayload},
		{"binary event empty array", `51-[]`, sio.ErrInvalidPayload},
		{"binary event object", `51-{}`, sio.ErrInvalidPayload},
		{"ack object", `3{}`, sio.ErrInvalidPayload},
		{"ack string", `31"x"`, sio.ErrInvalidPayload},
		{"binary ack object", `61-1{}`, sio.ErrInvalidPayload},
		{"disconnect object", `1{}`, sio.ErrInvalidPayload},
		{"disconnect admin object", `1/admin,{}`, sio.ErrInvalidPayload},
		{"disconnect array", `1[]`, sio.ErrInvalidPayload},
		{"disconnect string", `1"x"`, sio.ErrInvalidPayload},
		{"disconnect null", `1null`, sio.ErrInvalidPayload},
		{"connect string", `0"abc"`, sio.ErrInvalidPayload},
		{"connect array", `0[1]`, sio.ErrInvalidPayload},
		{"connect empty array", `0[]`, sio.ErrInvalidPayload},
		{"connect null", `0null`, sio.ErrInvalidPayload},
		{"connect true", `0true`, sio.ErrInvalidPayload},
		{"connect admin string", `0/admin,"x"`, sio.ErrInvalidPayload},
		{"connect error array", `4[]`, sio.ErrInvalidPayload},
		{"connect error null", `4null`, sio.ErrInvalidPayload},
		{"connect error false", `4false`, sio.ErrInvalidPayload},

		// Reserved event names (socket.io-parser RESERVED_EVENTS), also
		// when spelled with JSON escapes.
		{"reserved connect", `2["connect"]`, sio.ErrInvalidPayload},
		{"reserved connect_error", `2["connect_error"]`, sio.ErrInvalidPayload},
		{"reserved disconnect", `2["disconnect"]`, sio.ErrInvalidPayload},
		{"reserved disconnecting", `2["disconnecting"]`, sio.ErrInvalidPayload},
		{"reserved newListener", `2["newListener"]`, sio.ErrInvalidPayload},
		{"reserved removeListener", `2["removeListener",1]`, sio.ErrInvalidPayload},
		{"reserved escaped c", `2["\u0063onnect"]`, sio.ErrInvalidPayload},
		{"reserved escaped underscore", `2["connect\u005ferror"]`, sio.ErrInvalidPayload},
		{"reserved escaped upper hex", `2["\u006EewListener"]`, sio.ErrInvalidPayload},
		{"reserved escaped all", `2["\u0064\u0069\u0073\u0063\u006f\u006e\u006e\u0065\u0063\u0074"]`, sio.ErrInvalidPayload},
		{"reserved escaped solidus-free", `2["newListen\u0065r"]`, sio.ErrInvalidPayload},
		{"reserved with spaces", `2[ "connect" , 1 ]`, sio.ErrInvalidPayload},
		{"reserved in namespace", `2/admin,["disconnect"]`, sio.ErrInvalidPayload},
		{"reserved with ack id", `212["newListener"]`, sio.ErrInvalidPayload},
		{"reserved binary", `51-["connect",` + ph0 + `]`, sio.ErrInvalidPayload},

		// Ack ids a JavaScript number cannot hold exactly.
		{"ack id 2^53+1", `29007199254740993["x"]`, sio.ErrInvalidID},
		{"ack id 1e20", `299999999999999999999["x"]`, sio.ErrInvalidID},
		{"ack id beyond uint64", `3184467440737095516161[]`, sio.ErrInvalidID},
		{"ack id beyond uint64 no payload", `399999999999999999999999999999`, sio.ErrInvalidID},
		{"binary ack id too big", `61-9007199254741000[` + ph0 + `]`, sio.ErrInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := sio.Decode([]byte(tt.in), 0)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Decode(%q) = %s, %v; want %v", tt.in, packetString(p), err, tt.err)
			}
		})
	}
}

func TestDecodeMaxAttachments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in  string
		max int
		err error
	}{
		{`52-["a"]`, 2, nil},
		{`53-["a"]`, 2, sio.ErrTooManyAttachments},
		{`510-["a"]`, 0, nil}, // 0 means the default, 10
		{`511-["a"]`, -1, sio.ErrTooManyAttachments},
		{`5100-["a"]`, 100, nil},
		{`5101-["a"]`, 100, sio.ErrTooManyAttachments},
	}
	for _, tt := range tests {
		if _, err := sio.Decode([]byte(tt.in), tt.max); !errors.Is(err, tt.err) {
			t.Errorf("Decode(%q, %d) error = %v, want %v", tt.in, tt.max, err, tt.err)
		}
	}
	if sio.DefaultMaxAttachments != 10 {
		t.Errorf("DefaultMaxAttachments = %d, want socket.io-parser's 10", sio.DefaultMaxAttachments)
	}
}

func TestAppendHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ   sio.Type
		att   int
		nsp   string
		hasID bool
		id    uint64
		want  string
	}{
		{sio.Connect, 0, "/", false, 0, "0"},
		{sio.Connect, 0, "", false, 0, "0"},
		{sio.Connect, 0, "/admin", false, 0, "0/admin,"},
		{sio.Disconnect, 0, "/admin", false, 0, "1/admin,"},
		{sio.Event, 0, "/", true, 12, "212"},
		{sio.Event, 0, "/", true, 0, "20"},
		{sio.Ack, 0, "/admin", true, 13, "3/admin,13"},
		{sio.ConnectError, 0, "/nope", false, 0, "4/nope,"},
		{sio.BinaryEvent, 1, "/", false, 0, "51-"},
		{sio.BinaryEvent, 0, "/", false, 0, "50-"},
		{sio.BinaryAck, 1, "/", true, 15, "61-15"},
		{sio.BinaryAck, 10, "/admin", true, 1 << 53, "610-/admin,9007199254740992"},
		{sio.Event, 3, "/", false, 0, "2"}, // attachments only for binary types
	}
	for _, tt := range tests {
		got := sio.AppendHeader([]byte("4"), tt.typ, tt.att, tt.nsp, tt.hasID, tt.id)
		if string(got) != "4"+tt.want {
			t.Errorf("AppendHeader(%v,%d,%q,%v,%d) = %q, want %q", tt.typ, tt.att, tt.nsp, tt.hasID, tt.id, got, "4"+tt.want)
		}
	}
}

func TestTypes(t *testing.T) {
	t.Parallel()
	names := []string{"CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK", "TYPE(7)"}
	for i, n := range names {
		typ := sio.Type(i)
		if typ.String() != n {
			t.Errorf("Type(%d).String() = %q, want %q", i, typ.String(), n)
		}
		if typ.IsBinary() != (typ == sio.BinaryEvent || typ == sio.BinaryAck) {
			t.Errorf("Type(%d).IsBinary() = %v", i, typ.IsBinary())
		}
	}
}

func TestIsReserved(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
		if !sio.IsReserved(name) {
			t.Errorf("IsReserved(%q) = false", name)
		}
	}
	for _, name := range []string{"", "Connect", "connect ", "newlistener", "message", "error", "ping", "connection"} {
		if sio.IsReserved(name) {
			t.Errorf("IsReserved(%q) = true", name)
		}
	}
}
