package sio_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/operate/realtime/protocol/sio"
)

// wireSeeds are the packets of the reference note, split where the header
// ends and the JSON payload begins.
var wireSeeds = [][2]string{
	{"0", ""},
	{"0/admin,", `{"sid":"oSO0OpakMV_3jnilAAAA"}`},
	{"4", `{"message":"Not authorized"}`},
	{"2", `["foo"]`},
	{"2/admin,", `["bar"]`},
	{"212", `["foo"]`},
	{"3/admin,13", `["bar"]`},
	{"51-", `["baz",{"_placeholder":true,"num":0}]`},
	{"61-15", `["bar",{"_placeholder":true,"num":0}]`},
	{"1", ""},
	{"1/admin,", ""},
	{"0/custom", ""},
	{"5-", `["a"]`},
	{"2", `[1,2]`},
	{"2456", `["message-with-ack",1,"2",{"3":[false]}]`},
	{"52-789", `["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`},
	{"4/nope,", `{"message":"Invalid namespace"}`},
	{"4", `"oops"`},
	{"0", `{"token":"x"}`},
	{"2", `["\u0063onnect"]`},
	{"2", `{}`},
	{"2abc", `["x"]`},
	{"2", `[]`},
	{"511-", `["echo"]`},
	{"29007199254740993", `["x"]`},
	{"1", `{}`},
	{"0", `"abc"`},
	{"0", `[1]`},
	{"7", ""},
	{"", ""},
	{"2", "[ \"a\" , {\"b\" : [1, 2.5e3, null]} ]\n"},
}

// FuzzDecode: Decode never panics; what it accepts has a payload that is
// valid JSON of the kind its type requires; the header re-encoded with
// AppendHeader followed by Data decodes to the same packet, whose encoding
// is then stable. The input comes as (header, payload) halves.
func FuzzDecode(f *testing.F) {
	for _, s := range wireSeeds {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, head, payload []byte) {
		in := append(append(make([]byte, 0, len(head)+len(payload)), head...), payload...)
		p, err := sio.Decode(in, 0)
		if err != nil {
			if !errors.Is(err, sio.ErrUnknownType) && !errors.Is(err, sio.ErrIllegalAttachments) &&
				!errors.Is(err, sio.ErrTooManyAttachments) && !errors.Is(err, sio.ErrInvalidPayload) &&
				!errors.Is(err, sio.ErrInvalidID) {
				t.Fatalf("Decode(%q): unexpected error %v", in, err)
			}
			return
		}
		checkPacket(t, in, p)

		// Round trip through the encoder.
		enc := sio.AppendHeader(nil, p.Type, p.Attachments, p.Namespace, p.HasID, p.ID)
		enc = append(enc, p.Data...)
		p2, err := sio.Decode(enc, 0)
		if err != nil {
			t.Fatalf("Decode(%q) = %s, but its re-encoding %q fails: %v", in, packetString(p), enc, err)
		}
		if packetString(p2) != packetString(p) {
			t.Fatalf("Decode(%q) = %s, but its re-encoding %q decodes as %s", in, packetString(p), enc, packetString(p2))
		}
		enc2 := append(sio.AppendHeader(nil, p2.Type, p2.Attachments, p2.Namespace, p2.HasID, p2.ID), p2.Data...)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: %q then %q", enc, enc2)
		}

		// A lower attachment limit refuses exactly the packets above it.
		if p.Attachments > 1 {
			if _, err := sio.Decode(in, 1); !errors.Is(err, sio.ErrTooManyAttachments) {
				t.Fatalf("Decode(%q, 1) with %d attachments: %v", in, p.Attachments, err)
			}
		}
	})
}

// checkPacket checks a decoded packet against the rules of §2.2 with
// encoding/json as the judge of the payload.
func checkPacket(t *testing.T, in []byte, p sio.Packet) {
	t.Helper()
	if p.Type > sio.BinaryAck || in[0] != '0'+byte(p.Type) {
		t.Fatalf("Decode(%q): type %v", in, p.Type)
	}
	if !p.Type.IsBinary() && p.Attachments != 0 {
		t.Fatalf("Decode(%q): %d attachments on a %v", in, p.Attachments, p.Type)
	}
	if p.Attachments < 0 || p.Attachments > sio.DefaultMaxAttachments {
		t.Fatalf("Decode(%q): %d attachments", in, p.Attachments)
	}
	if !strings.HasPrefix(p.Namespace, "/") || strings.Contains(p.Namespace, ",") {
		t.Fatalf("Decode(%q): namespace %q", in, p.Namespace)
	}
	if p.ID > 1<<53 || (!p.HasID && p.ID != 0) {
		t.Fatalf("Decode(%q): id %v %d", in, p.HasID, p.ID)
	}
	if p.Data == nil {
		return
	}
	if len(p.Data) == 0 || !bytes.HasSuffix(in, p.Data) || &p.Data[len(p.Data)-1] != &in[len(in)-1] {
		t.Fatalf("Decode(%q): Data %q is not the end of the input", in, p.Data)
	}
	if !json.Valid(p.Data) {
		t.Fatalf("Decode(%q): Data %q is not valid JSON", in, p.Data)
	}
	dec := json.NewDecoder(bytes.NewReader(p.Data))
	dec.UseNumber() // numbers beyond float64 are valid JSON
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("Decode(%q): Data %q: %v", in, p.Data, err)
	}
	switch p.Type {
	case sio.Connect:
		if _, ok := v.(map[string]any); !ok {
			t.Fatalf("Decode(%q): CONNECT with %T payload", in, v)
		}
	case sio.Disconnect:
		t.Fatalf("Decode(%q): DISCONNECT with a payload", in)
	case sio.ConnectError:
		switch v.(type) {
		case map[string]any, string:
		default:
			t.Fatalf("Decode(%q): CONNECT_ERROR with %T payload", in, v)
		}
	case sio.Event, sio.BinaryEvent:
		arr, ok := v.([]any)
		if !ok || len(arr) == 0 {
			t.Fatalf("Decode(%q): EVENT payload %T %v", in, v, v)
		}
		switch name := arr[0].(type) {
		case json.Number:
		case string:
			if sio.IsReserved(name) {
				t.Fatalf("Decode(%q): reserved event name %q accepted", in, name)
			}
		default:
			t.Fatalf("Decode(%q): event name %T", in, arr[0])
		}
	case sio.Ack, sio.BinaryAck:
		if _, ok := v.([]any); !ok {
			t.Fatalf("Decode(%q): ACK with %T payload", in, v)
		}
	}
}

// jsonSeeds are valid JSON documents that exercise the scanners.
var jsonSeeds = []string{
	`[]`, ` [ ] `, `["foo"]`, `[1,2]`, `["message-with-ack",1,"2",{"3":[false]}]`,
	`["baz",{"_placeholder":true,"num":0}]`,
	`[ 1 , "a" , {"b":[1,2]} , [3] , null , true , false , -1.5e3 ]`,
	`["a\"]",",","\\","}","[",{"k]":"v,"}]`,
	`["\u0063onnect","\ud83d\ude00","é😀","\u2028"]`,
	"[\"\\b\\f\\n\\r\\t\\/\",\n\t\r1]",
	`[[[[]]],{"a":{"b":{}}}]`,
	`[{"_placeholder":true,"num":0},{"_PLACEHOLDER":true,"NUM":1},{"num":2,"_placeholder":true}]`,
	`{"a":[1]}`, `"x"`, `1`, `null`, `[0,-0,1e10,1E-2,0.5,1e400]`,
}

// FuzzJSONScanners feeds the scanners valid JSON only (their contract; the
// decoder validates every payload first). SplitArray must agree with
// encoding/json on the elements; the elements rejoined with commas must be
// the same JSON, and splitting that canonical form must give the same
// elements again. FirstElement, UnquoteString, AppendString and
// PlaceholderNum are checked on each element.
func FuzzJSONScanners(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		checkObjectMember(t, data)
		parts, ok := sio.SplitArray(nil, data)
		var ref []json.RawMessage
		isArray := json.Unmarshal(data, &ref) == nil && bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("["))
		if ok != isArray {
			t.Fatalf("SplitArray(%q) ok=%v, encoding/json array=%v", data, ok, isArray)
		}
		first, fok := sio.FirstElement(data)
		if !ok {
			if len(parts) != 0 || fok {
				t.Fatalf("not an array %q but SplitArray gave %q / FirstElement %q", data, parts, first)
			}
			return
		}
		if len(parts) != len(ref) {
			t.Fatalf("SplitArray(%q): %d elements, encoding/json %d", data, len(parts), len(ref))
		}
		for i := range parts {
			if !bytes.Equal(parts[i], ref[i]) {
				t.Fatalf("SplitArray(%q)[%d] = %q, encoding/json %q", data, i, parts[i], ref[i])
			}
			checkElement(t, parts[i])
		}
		if fok != (len(parts) > 0) || (fok && !bytes.Equal(first, parts[0])) {
			t.Fatalf("FirstElement(%q) = %q, %v; elements %q", data, first, fok, parts)
		}

		// Canonical re-split: rejoin without whitespace, split again.
		joined := append([]byte{'['}, bytes.Join(parts, []byte{','})...)
		joined = append(joined, ']')
		if !json.Valid(joined) {
			t.Fatalf("elements of %q rejoined are not JSON: %q", data, joined)
		}
		var c1, c2 bytes.Buffer
		if json.Compact(&c1, data) != nil || json.Compact(&c2, joined) != nil || !bytes.Equal(c1.Bytes(), c2.Bytes()) {
			t.Fatalf("elements of %q rejoined as %q: a different document", data, joined)
		}
		again, ok := sio.SplitArray(nil, joined)
		if !ok || len(again) != len(parts) {
			t.Fatalf("re-split of %q: %q, %v", joined, again, ok)
		}
		for i := range again {
			if !bytes.Equal(again[i], parts[i]) {
				t.Fatalf("re-split of %q: element %d %q, was %q", joined, i, again[i], parts[i])
			}
		}
	})
}

// checkElement checks the helpers on one valid JSON value.
func checkElement(t *testing.T, raw []byte) {
	t.Helper()
	s, ok := sio.UnquoteString(raw)
	var ref string
	isString := raw[0] == '"'
	if isString && json.Unmarshal(raw, &ref) != nil {
		t.Fatalf("element %q: encoding/json cannot read it", raw)
	}
	if ok != isString || (ok && s != ref) {
		t.Fatalf("UnquoteString(%q) = %q, %v; encoding/json %q, %v", raw, s, ok, ref, isString)
	}
	if ok {
		// AppendString writes what JSON.stringify would; reading it back
		// gives the string (encoding/json already replaced invalid UTF-8).
		enc := sio.AppendString(nil, s)
		back, ok := sio.UnquoteString(enc)
		if !json.Valid(enc) || !ok || back != s {
			t.Fatalf("AppendString(%q) = %q reads back as %q, %v", s, enc, back, ok)
		}
		if utf8.ValidString(s) {
			for i := 0; i < len(enc); i++ {
				// Only control characters are \u-escaped.
				if enc[i] == '\\' && enc[i+1] == 'u' && !bytes.HasPrefix(enc[i:], []byte(`\u00`)) {
					t.Fatalf("AppendString(%q) = %q escapes beyond control characters", s, enc)
				}
				if enc[i] == '\\' {
					i++
				}
			}
		}
	}
	// PlaceholderNum agrees with the case-sensitive reading of Node.
	n, pok := sio.PlaceholderNum(raw)
	var m map[string]any
	want := false
	wantN := 0
	if json.Unmarshal(raw, &m) == nil {
		if b, _ := m["_placeholder"].(bool); b {
			if f, isNum := m["num"].(float64); isNum && f >= 0 && f == float64(int(f)) {
				want, wantN = true, int(f)
			}
		}
	}
	if pok != want || (pok && n != wantN) {
		t.Fatalf("PlaceholderNum(%q) = %d, %v; want %d, %v", raw, n, pok, wantN, want)
	}
}

// checkObjectMember holds ObjectMember to encoding/json: for every key of an
// object, the member it finds once is the one encoding/json decodes, and a
// key it counts more than once is one encoding/json saw more than once.
func checkObjectMember(t *testing.T, data []byte) {
	var members map[string]json.RawMessage
	isObject := json.Unmarshal(data, &members) == nil && bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{"))
	if !isObject {
		if _, n := sio.ObjectMember(data, "a"); n != 0 {
			t.Fatalf("ObjectMember(%q) found a member of a non-object", data)
		}
		return
	}
	for key, want := range members {
		got, n := sio.ObjectMember(data, key)
		if n == 0 {
			t.Fatalf("ObjectMember(%q, %q): not found", data, key)
		}
		var g, w any
		if n == 1 && (json.Unmarshal(got, &g) != nil || json.Unmarshal(want, &w) != nil || !reflect.DeepEqual(g, w)) {
			t.Fatalf("ObjectMember(%q, %q) = %q, encoding/json %q", data, key, got, want)
		}
	}
	if _, n := sio.ObjectMember(data, "\x00absent\x00"); n != 0 {
		t.Fatalf("ObjectMember(%q) found an absent key", data)
	}
}
