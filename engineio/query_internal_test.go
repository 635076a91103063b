package engineio

import (
	"net/url"
	"strings"
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
		"EIO=4&EIO=3", "EIO=&EIO=4", "EIO=%34%", "EIO=4%", "EIO=%", "EIO=%3",
		"sid=a+b&sid=c", "sid=%2B&sid=+", "sid=%00", "sid=%ZZ&sid=ok",
		"sid;=1&sid=2", "sid=1;&sid=2", ";&sid=3", "sid=4&;",
		"=&sid", "sid", "=sid&sid=5", "%73id=6&sid=7", "s+id=8&s%20id=9",
		"EIO=4#frag", "EIO=4&transport=websocket&",
		// More '&'-separated pairs than ParseQuery's default limit (10000):
		// it refuses the whole query, so every key reads as absent.
		"EIO=4&transport=websocket&sid=x" + strings.Repeat("&", 9998),
		"EIO=4&transport=websocket&sid=x" + strings.Repeat("&", 9997),
		"EIO=4&transport=websocket" + strings.Repeat("&a=b", 10000),
	}
	keys := []string{"EIO", "transport", "sid", "a", "t", "x", "missing", "trans%70ort", "s id", "", "sid;"}
	for _, raw := range raws {
		want, _ := url.ParseQuery(raw)
		for _, k := range keys {
			if len(raw) > 100 && len(k) > 0 && k != "EIO" && k != "sid" && k != "transport" {
				continue
			}
			if got := queryGet(raw, k); got != want.Get(k) {
				t.Errorf("queryGet(%q, %q) = %q, url.ParseQuery gives %q", raw, k, got, want.Get(k))
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = queryGet("EIO=4&transport=websocket&sid=abc", "sid") }); n != 0 {
		t.Errorf("%v allocations reading a plain query", n)
	}
}
