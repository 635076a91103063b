package engineio

import (
	"net/url"
	"strings"
)

// maxPlainQuery is the length from which a query could hold more than
// ParseQuery's default limit of pairs: queryGet leaves those to it.
const maxPlainQuery = 10000

// queryGet returns what url.ParseQuery(raw).Get(key) returns, without
// building the map: every request reads two or three keys of its query,
// and the map and its slices were four allocations per handshake and per
// polling request.
func queryGet(raw, key string) string {
	if len(raw) >= maxPlainQuery {
		// Possibly more pairs than ParseQuery takes (10000 by default, or
		// GODEBUG=urlmaxqueryparams): it refuses the whole query then,
		// and its verdict must be the one every layer sees.
		v, _ := url.ParseQuery(raw)
		return v.Get(key)
	}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue // ParseQuery skips these (a ';' is an error it reports)
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			var err error
			if v, err = url.QueryUnescape(v); err != nil {
				continue
			}
		}
		return v
	}
	return ""
}
