package engineio

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"strconv"
	"strings"
	"sync"
)

// Long-polling responses are compressed as Node's engine.io does by default
// (its httpCompression option): with gzip or deflate, whichever the
// client's Accept-Encoding prefers, when the payload is at least
// HTTPCompressionThreshold bytes and one of its packets allows compression.
// Browsers always send Accept-Encoding and decode transparently; Node's
// socket.io-client sends none and so receives plain payloads. A polling
// response goes to one session, so it is compressed per response: unlike
// permessage-deflate frames it cannot be shared between recipients.

var (
	gzipWriters = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(nil, flate.DefaultCompression)
		return w
	}}
	zlibWriters = sync.Pool{New: func() any {
		w, _ := zlib.NewWriterLevel(nil, flate.DefaultCompression)
		return w
	}}
)

// Content codings a polling response may use, in the server's order of
// preference when the client likes both equally.
const (
	codingGzip    = "gzip"
	codingDeflate = "deflate"
)

// negotiateCoding picks gzip or deflate from an Accept-Encoding header, or
// "" when the client accepts neither. Like Node's `accepts`, the highest
// q-value wins, then the coding the client listed first, then gzip; an
// explicit entry beats "*", and q=0 refuses a coding.
func negotiateCoding(header string) string {
	if header == "" {
		return ""
	}
	type pref struct {
		q   float64
		pos int
		set bool
	}
	var gz, df, star pref
	for pos, item := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(item, ";")
		q, ok := parseQ(params)
		if !ok {
			continue
		}
		p := pref{q: q, pos: pos, set: true}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case codingGzip:
			gz = p
		case codingDeflate:
			df = p
		case "*":
			star = p
		}
	}
	if !gz.set {
		gz = star
	}
	if !df.set {
		df = star
	}
	switch {
	case gz.set && gz.q > 0 && (!df.set || df.q <= 0 || gz.q > df.q || (gz.q == df.q && gz.pos <= df.pos)):
		return codingGzip
	case df.set && df.q > 0:
		return codingDeflate
	}
	return ""
}

// parseQ reads the q-value among an Accept-Encoding entry's parameters
// (1 when absent); ok is false for a malformed one, which drops the entry.
func parseQ(params string) (q float64, ok bool) {
	q = 1
	for params != "" {
		var param string
		param, params, _ = strings.Cut(params, ";")
		key, value, _ := strings.Cut(param, "=")
		if !strings.EqualFold(strings.TrimSpace(key), "q") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || v < 0 || v > 1 {
			return 0, false
		}
		q = v
	}
	return q, true
}

// compressBody encodes body with the given content coding.
func compressBody(body []byte, coding string) []byte {
	var buf bytes.Buffer
	buf.Grow(len(body)/3 + 64)
	switch coding {
	case codingGzip:
		w := gzipWriters.Get().(*gzip.Writer)
		w.Reset(&buf)
		_, _ = w.Write(body) // writes to a bytes.Buffer cannot fail
		_ = w.Close()
		gzipWriters.Put(w)
	case codingDeflate:
		w := zlibWriters.Get().(*zlib.Writer)
		w.Reset(&buf)
		_, _ = w.Write(body)
		_ = w.Close()
		zlibWriters.Put(w)
	default:
		return body
	}
	return buf.Bytes()
}
