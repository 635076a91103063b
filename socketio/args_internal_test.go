package socketio

import (
	"encoding/json"
	"reflect"
	"testing"
)

// White-box: the renumbering of placeholders when received Args are spliced
// after binary arguments must change nothing but the numbers, whatever the
// spacing a raw client used.
func TestShiftPlaceholders(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"_placeholder":true,"num":0}`, `{"_placeholder":true,"num":2}`},
		{`{"num":1,"_placeholder":true}`, `{"_placeholder":true,"num":3}`},
		{`{"z":1,"b":{"_placeholder":true,"num":0},"a":"<>&\u00e9","f":1e-7}`,
			`{"z":1,"b":{"_placeholder":true,"num":2},"a":"<>&\u00e9","f":1e-7}`},
		{` [ 1 , { "_placeholder" : true , "num" : 1 } , "x\"}{" ] `,
			` [ 1 , {"_placeholder":true,"num":3} , "x\"}{" ] `},
		{`[[[{"k":[{"_placeholder":true,"num":0}]}]],{},[],""]`,
			`[[[{"k":[{"_placeholder":true,"num":2}]}]],{},[],""]`},
		{`{"_placeholder":false,"num":0}`, `{"_placeholder":false,"num":0}`},
		{`{"_placeholder":true,"num":"0"}`, `{"_placeholder":true,"num":"0"}`},
		{`{"_placeholder":true}`, `{"_placeholder":true}`},
		{`{"\u005fplaceholder":true,"num":0}`, `{"_placeholder":true,"num":2}`},
		{`{"_placeholder":true,"num":0,"num":1}`, `{"_placeholder":true,"num":3}`}, // the last key wins, as in JSON.parse
		{`"{\"_placeholder\":true,\"num\":0}"`, `"{\"_placeholder\":true,\"num\":0}"`},
		{`12345678901234567890`, `12345678901234567890`},
		{`null`, `null`},
	} {
		got, err := shiftPlaceholders([]byte(tc.in), 2)
		if err != nil || string(got) != tc.want {
			t.Errorf("shiftPlaceholders(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
		if !json.Valid(got) {
			t.Errorf("shiftPlaceholders(%s) = %s: invalid JSON", tc.in, got)
		}
	}
}

// TestEncodeArgsSeparators: every combination of empty and non-empty
// spliced Args yields a valid array with the right elements.
func TestEncodeArgsSeparators(t *testing.T) {
	empty := Args{}
	two := Args{raw: [][]byte{[]byte(`1`), []byte(`"a"`)}}
	for _, tc := range []struct {
		args []any
		want string
	}{
		{nil, `["ev"]`},
		{[]any{empty}, `["ev"]`},
		{[]any{empty, empty}, `["ev"]`},
		{[]any{empty, 1}, `["ev",1]`},
		{[]any{1, empty}, `["ev",1]`},
		{[]any{1, empty, &empty, 2}, `["ev",1,2]`},
		{[]any{1, (*Args)(nil), 2}, `["ev",1,2]`},
		{[]any{two, empty, two}, `["ev",1,"a",1,"a"]`},
		{[]any{[]byte{1}, empty, []byte{2}}, `["ev",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`},
	} {
		p, err := NewPacket("ev", tc.args...)
		if err != nil || string(p.Data) != tc.want {
			t.Errorf("NewPacket(%v) = %s, %v; want %s", tc.args, p.Data, err, tc.want)
		}
		data, _, err := encodeArray(tc.args)
		var want []any
		_ = json.Unmarshal([]byte(tc.want), &want)
		var got []any
		if err != nil || json.Unmarshal(data, &got) != nil || !reflect.DeepEqual(got, want[1:]) {
			t.Errorf("encodeArray(%v) = %s, %v; want the elements of %s after the name", tc.args, data, err, tc.want)
		}
	}
}
