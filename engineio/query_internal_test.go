package engineio

import (
	"net/url"
	"testing"
)

// TestQueryGetLikeParseQuery: queryGet reads every key as
// url.ParseQuery(raw).Get does, escapes, repeats and malformed pairs
// included.
func TestQueryGetLikeParseQuery(t *testing.T) {
	raws := []string{
		"",
		"EIO=4&transport=websocket",
		"EIO=4&transport=polling&sid=abc-_123",
		"transport=websocket&transport=polling",
		"transport=web%73ocket&EIO=%34",
		"trans%70ort=websocket",
		"a=b+c&sid=x%2By&EIO=4+",
		"EIO=4;transport=websocket",
		"EIO=4&x=1;2&transport=polling",
		"EIO=%zz&EIO=4",
		"%zz=1&transport=polling",
		"EIO&transport=&sid",
		"&&EIO=4&&",
		"EIO==4&transport=a=b",
		"t=%E2%82%AC&transport=%E2%82%AC",
	}
	keys := []string{"EIO", "transport", "sid", "a", "t", "x", "missing", "trans%70ort"}
	for _, raw := range raws {
		want, _ := url.ParseQuery(raw)
		for _, k := range keys {
			if got := queryGet(raw, k); got != want.Get(k) {
				t.Errorf("queryGet(%q, %q) = %q, url.ParseQuery gives %q", raw, k, got, want.Get(k))
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = queryGet("EIO=4&transport=websocket&sid=abc", "sid") }); n != 0 {
		t.Errorf("%v allocations reading a plain query", n)
	}
}
