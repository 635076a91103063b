package sio_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/operate/realtime/protocol/sio"
)

func quoteAll(parts [][]byte) string {
	s := make([]string, len(parts))
	for i, p := range parts {
		s[i] = string(p)
	}
	return fmt.Sprintf("%q", s)
}

func TestSplitArray(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{`[]`, []string{}},
		{` [ ] `, []string{}},
		{"[\t\n\r]", []string{}},
		{`["foo"]`, []string{`"foo"`}},
		{`[1]`, []string{`1`}},
		{`[1,2]`, []string{`1`, `2`}},
		{`["message-with-ack",1,"2",{"3":[false]}]`, []string{`"message-with-ack"`, `1`, `"2"`, `{"3":[false]}`}},
		{`[ 1 , "a" , {"b":[1,2]} , [3] , null , true , false , -1.5e3 ]`,
			[]string{`1`, `"a"`, `{"b":[1,2]}`, `[3]`, `null`, `true`, `false`, `-1.5e3`}},
		{"[1\n,\t2\r]", []string{`1`, `2`}},
		{`["a\"]",",","\\","}","[",{"k]":"v,"}]`, []string{`"a\"]"`, `","`, `"\\"`, `"}"`, `"["`, `{"k]":"v,"}`}},
		{`[[[[]]],{"a":{"b":{}}}]`, []string{`[[[]]]`, `{"a":{"b":{}}}`}},
		{`["baz",{"_placeholder":true,"num":0}]`, []string{`"baz"`, `{"_placeholder":true,"num":0}`}},
		{`["é😀","\u00e9\ud83d\ude00"]`, []string{`"é😀"`, `"\u00e9\ud83d\ude00"`}},
		{`[0,-0,1e10,1E-2,0.5]`, []string{`0`, `-0`, `1e10`, `1E-2`, `0.5`}},
		{`[{},[],""]`, []string{`{}`, `[]`, `""`}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			pre := [][]byte{[]byte("kept")}
			got, ok := sio.SplitArray(pre, []byte(tt.in))
			if !ok {
				t.Fatalf("SplitArray(%q) not ok", tt.in)
			}
			if len(got) == 0 || string(got[0]) != "kept" {
				t.Fatalf("SplitArray dropped dst")
			}
			got = got[1:]
			want := make([][]byte, len(tt.want))
			for i, w := range tt.want {
				want[i] = []byte(w)
			}
			if quoteAll(got) != quoteAll(want) {
				t.Fatalf("SplitArray(%q) = %s, want %s", tt.in, quoteAll(got), quoteAll(want))
			}
			// Cross-check with encoding/json.
			var ref []json.RawMessage
			if err := json.Unmarshal([]byte(tt.in), &ref); err != nil {
				t.Fatal(err)
			}
			if len(ref) != len(got) {
				t.Fatalf("encoding/json sees %d elements, SplitArray %d", len(ref), len(got))
			}
			for i := range ref {
				if string(ref[i]) != string(got[i]) {
					t.Errorf("element %d: %q, encoding/json %q", i, got[i], ref[i])
				}
			}
			first, ok := sio.FirstElement([]byte(tt.in))
			if len(got) == 0 {
				if ok {
					t.Errorf("FirstElement(%q) = %q on an empty array", tt.in, first)
				}
			} else if !ok || string(first) != string(got[0]) {
				t.Errorf("FirstElement(%q) = %q, %v; want %q", tt.in, first, ok, got[0])
			}
		})
	}
}

func TestSplitArrayNotArray(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{}`, `{"a":[1]}`, `"[1]"`, `1`, `null`, `true`, ` "x" `, ``, `   `} {
		if got, ok := sio.SplitArray(nil, []byte(in)); ok || len(got) != 0 {
			t.Errorf("SplitArray(%q) = %s, %v; want not ok", in, quoteAll(got), ok)
		}
		if got, ok := sio.FirstElement([]byte(in)); ok {
			t.Errorf("FirstElement(%q) = %q, true; want not ok", in, got)
		}
	}
}

func TestUnquoteString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{`"foo"`, "foo", true},
		{`""`, "", true},
		{`"\u0063onnect"`, "connect", true},
		{`"a\"b"`, `a"b`, true},
		{`"a\\b"`, `a\b`, true},
		{`"\/"`, "/", true},
		{`"\b\f\n\r\t"`, "\b\f\n\r\t", true},
		{`"é😀"`, "é😀", true},
		{`"\u00e9\ud83d\ude00"`, "é😀", true},
		{`"\ud800"`, "\ufffd", true}, // lone surrogate: what encoding/json makes of it
		{"\"\x7f\"", "\x7f", true},
		{`"<>&"`, "<>&", true},
		{"\"\xff\"", "\ufffd", true}, // invalid UTF-8 is replaced

		{`foo`, "", false},
		{`"foo`, "", false},
		{`foo"`, "", false},
		{`'foo'`, "", false},
		{`"`, "", false},
		{``, "", false},
		{` "foo"`, "", false},
		{`"foo" `, "", false},
		{`1`, "", false},
		{`null`, "", false},
		{`["foo"]`, "", false},
		{`"a\"`, "", false},
		{`"\x"`, "", false},
		{`"\u00"`, "", false},
		{"\"a\x01b\"", "", false}, // raw control characters are not JSON
		{"\"a\nb\"", "", false},
		{`"a"b"`, "", false}, // an unescaped quote ends a JSON string
		{`"a","b"`, "", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			t.Parallel()
			got, ok := sio.UnquoteString([]byte(tt.in))
			if ok != tt.ok || got != tt.want {
				t.Fatalf("UnquoteString(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			// Agreement with encoding/json on what is a JSON string.
			var ref string
			// (UnquoteString takes a bare value: no surrounding whitespace.)
			refOK := json.Unmarshal([]byte(tt.in), &ref) == nil &&
				strings.HasPrefix(tt.in, `"`) && strings.HasSuffix(tt.in, `"`)
			if refOK != ok || (ok && ref != got) {
				t.Fatalf("UnquoteString(%q) = %q, %v; encoding/json: %q, %v", tt.in, got, ok, ref, refOK)
			}
		})
	}
}

// TestAppendString checks the output against JSON.stringify's. The expected
// strings were produced by Node 20: JSON.stringify escapes only '"', '\\'
// and U+0000–U+001F (short forms \b \f \n \r \t, else \u00xx in lower
// case); it leaves DEL, non-ASCII, U+2028/U+2029 and <>& as they are.
func TestAppendString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"", `""`},
		{"foo", `"foo"`},
		{"message-with-ack", `"message-with-ack"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"/", `"/"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00", `"\u0000"`},
		{"\x01\x07\x0b\x0e\x1a", `"\u0001\u0007\u000b\u000e\u001a"`},
		{"\x1f", `"\u001f"`},
		{"\x1e", `"\u001e"`},
		{" ", `" "`},
		{"\x7f", "\"\x7f\""},
		{"é", `"é"`},
		{"日本語", `"日本語"`},
		{"😀", `"😀"`},
		{"\u2028\u2029", "\"\u2028\u2029\""},
		{"<script>&", `"<script>&"`},
		{"\ufeff", "\"\ufeff\""},
		{"a\x00é\"\n😀", `"a\u0000é\"\n😀"`},
		{"\xff", "\"\ufffd\""},                     // invalid UTF-8 becomes U+FFFD
		{"a\xc3", "\"a\ufffd\""},                   // truncated sequence
		{"\xed\xa0\x80", "\"\ufffd\ufffd\ufffd\""}, // UTF-8 encoded surrogate
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			t.Parallel()
			got := sio.AppendString([]byte("["), tt.in)
			if string(got) != "["+tt.want {
				t.Fatalf("AppendString(%q) = %q, want %q", tt.in, got[1:], tt.want)
			}
			if !json.Valid(got[1:]) {
				t.Fatalf("AppendString(%q) = %q is not valid JSON", tt.in, got[1:])
			}
			back, ok := sio.UnquoteString(got[1:])
			if !ok || (back != tt.in && !strings.ContainsRune(back, '\ufffd')) {
				t.Fatalf("UnquoteString(AppendString(%q)) = %q, %v", tt.in, back, ok)
			}
		})
	}
}

func TestPlaceholders(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 9, 10, 123} {
		got := sio.AppendPlaceholder([]byte("["), n)
		want := fmt.Sprintf(`[{"_placeholder":true,"num":%d}`, n)
		if string(got) != want {
			t.Errorf("AppendPlaceholder(%d) = %q, want %q", n, got, want)
		}
		if m, ok := sio.PlaceholderNum(got[1:]); !ok || m != n {
			t.Errorf("PlaceholderNum(AppendPlaceholder(%d)) = %d, %v", n, m, ok)
		}
	}
}

func TestPlaceholderNum(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		n  int
		ok bool
	}{
		{`{"_placeholder":true,"num":0}`, 0, true},
		{`{"_placeholder":true,"num":3}`, 3, true},
		{` { "num" : 3 , "_placeholder" : true } `, 3, true},
		{`{"_placeholder":true,"num":1e1}`, 10, true},
		{`{"_placeholder":true,"num":2.0}`, 2, true},
		// socket.io-parser treats any object whose _placeholder is true as
		// a placeholder, whatever else it holds.
		{`{"_placeholder":true,"num":1,"extra":"x"}`, 1, true},

		{`{"_placeholder":true,"num":1.5}`, 0, false},
		{`{"_placeholder":true,"num":-1}`, 0, false},
		{`{"_placeholder":true,"num":"0"}`, 0, false},
		{`{"_placeholder":true,"num":null}`, 0, false},
		{`{"_placeholder":true}`, 0, false},
		{`{"_placeholder":false,"num":0}`, 0, false},
		{`{"_placeholder":"true","num":0}`, 0, false},
		{`{"_placeholder":1,"num":0}`, 0, false},
		{`{"num":0}`, 0, false},
		{`{}`, 0, false},
		{`[{"_placeholder":true,"num":0}]`, 0, false},
		{`"x"`, 0, false},
		{`0`, 0, false},
		{`null`, 0, false},
		{``, 0, false},
		{`{"_placeholder":true,"num":0`, 0, false},
		// Keys are case-sensitive in JavaScript: data._placeholder is
		// undefined for these objects, so they are plain data.
		{`{"_PLACEHOLDER":true,"NUM":0}`, 0, false},
		{`{"_Placeholder":true,"num":0}`, 0, false},
		{`{"_placeholder":true,"Num":0}`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			n, ok := sio.PlaceholderNum([]byte(tt.in))
			if ok != tt.ok || (ok && n != tt.n) {
				t.Fatalf("PlaceholderNum(%q) = %d, %v; want %d, %v", tt.in, n, ok, tt.n, tt.ok)
			}
		})
	}
}

func TestCheckPlaceholders(t *testing.T) {
	t.Parallel()
	const p0, p1 = `{"_placeholder":true,"num":0}`, `{"_placeholder":true,"num":1}`
	tests := []struct {
		data string
		n    int
		ok   bool
	}{
		{`["baz",` + p0 + `]`, 1, true},
		{`["message",` + p0 + `,` + p1 + `]`, 2, true},
		{`["message",` + p0 + `,` + p1 + `]`, 1, false},
		{`["baz",` + p1 + `]`, 1, false},
		{`["a",{"x":[1,{"y":` + p1 + `}]}]`, 2, true},
		{`["a",{"x":[1,{"y":` + p1 + `}]}]`, 1, false},
		{`["a",1,"b",{"c":null}]`, 0, true},
		{`["a"]`, 3, true}, // unused attachments are not checked (as in Node)
		{`["a",{"_placeholder":true,"num":-1}]`, 1, false},
		{`["a",{"_placeholder":true,"num":0.5}]`, 1, false},
		{`["a",{"_placeholder":true,"num":"0"}]`, 1, false},
		{`["a",{"_placeholder":true}]`, 1, false},
		{`["a",{"_placeholder":false,"num":7}]`, 1, true},
		{`["a",{"_placeholder":"yes","num":7}]`, 1, true},
		{`["a",{"_PLACEHOLDER":true,"num":7}]`, 1, true}, // not a placeholder
		{`["a",{"_placeholder":true,"num":0,"x":1}]`, 1, true},
		{`[` + p0 + `]`, 1, true},
		{`{"k":` + p0 + `}`, 1, true},
		{`["a",`, 1, false},
		{``, 0, false},
	}
	for _, tt := range tests {
		if got := sio.CheckPlaceholders([]byte(tt.data), tt.n); got != tt.ok {
			t.Errorf("CheckPlaceholders(%q, %d) = %v, want %v", tt.data, tt.n, got, tt.ok)
		}
	}
}

func TestObjectMember(t *testing.T) {
	for _, tc := range []struct {
		obj, key, want string
		count          int
	}{
		{`{"organizationId":"org_1","x":1}`, "organizationId", `"org_1"`, 1},
		{` { "a" : [1,{"organizationId":"no"}] , "organizationId" : "yes" } `, "organizationId", `"yes"`, 1},
		{`{"organizationId":"a","organizationId":"b"}`, "organizationId", `"b"`, 2},
		{`{"organ\u0069zationId":"escaped"}`, "organizationId", `"escaped"`, 1},
		{`{"x":{"organizationId":"nested"}}`, "organizationId", ``, 0},
		{`{}`, "organizationId", ``, 0},
		{`["organizationId","x"]`, "organizationId", ``, 0},
		{`"organizationId"`, "organizationId", ``, 0},
	} {
		got, n := sio.ObjectMember([]byte(tc.obj), tc.key)
		if string(got) != tc.want || n != tc.count {
			t.Errorf("ObjectMember(%s, %q) = %q, %d; want %q, %d", tc.obj, tc.key, got, n, tc.want, tc.count)
		}
	}
}
