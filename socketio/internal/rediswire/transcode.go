package rediswire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/operate/realtime/protocol/sio"
)

// BinaryMode says how msgpack bin values are written as JSON.
type BinaryMode uint8

const (
	// BinaryAsPlaceholder writes {"_placeholder":true,"num":N} and appends
	// the bytes to the attachments: a Socket.IO packet's form.
	BinaryAsPlaceholder BinaryMode = iota
	// BinaryAsBuffer writes {"type":"Buffer","data":[...]}, what
	// JSON.stringify makes of a Node Buffer: for places where Node itself
	// would have JSON (socket data of fetchSockets).
	BinaryAsBuffer
)

// AppendMsgpackAsJSON transcodes the next msgpack value of src to JSON,
// appended to dst, with bin values written as mode says (attachments
// collects them for BinaryAsPlaceholder; the slices alias src). It returns
// the rest of src.
func AppendMsgpackAsJSON(dst, src []byte, mode BinaryMode, attachments *[][]byte) (out, rest []byte, err error) {
	r := Reader{b: src}
	out, err = r.appendJSON(dst, mode, attachments, 0)
	return out, src[r.i:], err
}

// JSON reads the next value as JSON (see AppendMsgpackAsJSON).
func (r *Reader) JSON(mode BinaryMode, attachments *[][]byte) ([]byte, error) {
	return r.appendJSON(nil, mode, attachments, 0)
}

// errUndefined marks notepack's "undefined" extension, which JSON.stringify
// turns into null in arrays and drops from objects.
var errUndefined = &undefinedError{}

type undefinedError struct{}

func (*undefinedError) Error() string { return "undefined" }

func (r *Reader) appendJSON(dst []byte, mode BinaryMode, atts *[][]byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return dst, ErrTooDeep
	}
	c, err := r.u8()
	if err != nil {
		return dst, err
	}
	switch {
	case c < 0x80:
		return strconv.AppendUint(dst, uint64(c), 10), nil
	case c >= 0xe0:
		return strconv.AppendInt(dst, int64(int8(c)), 10), nil
	case c&0xf0 == 0x80:
		return r.appendMap(dst, int(c&0x0f), mode, atts, depth)
	case c&0xf0 == 0x90:
		return r.appendArray(dst, int(c&0x0f), mode, atts, depth)
	case c&0xe0 == 0xa0:
		s, err := r.take(int(c & 0x1f))
		if err != nil {
			return dst, err
		}
		return AppendJSONString(dst, s), nil
	}
	var n int
	switch c {
	case mpNil:
		return append(dst, "null"...), nil
	case mpFalse:
		return append(dst, "false"...), nil
	case mpTrue:
		return append(dst, "true"...), nil
	case mpStr8, mpStr16, mpStr32, mpBin8, mpBin16, mpBin32:
		r.i--
		s, err := r.StringBytes()
		if err != nil {
			return dst, err
		}
		if c == mpStr8 || c == mpStr16 || c == mpStr32 {
			return AppendJSONString(dst, s), nil
		}
		return appendBinaryJSON(dst, s, mode, atts), nil
	case mpFloat32, mpFloat64, mpUint8, mpUint16, mpUint32, mpUint64, mpInt8, mpInt16, mpInt32, mpInt64:
		r.i--
		return r.appendNumber(dst)
	case mpArray16, mpArray32, mpMap16, mpMap32:
		if c == mpArray16 || c == mpMap16 {
			n, err = r.u16()
		} else {
			n, err = r.u32()
		}
		if err != nil {
			return dst, err
		}
		if c == mpArray16 || c == mpArray32 {
			return r.appendArray(dst, n, mode, atts, depth)
		}
		return r.appendMap(dst, n, mode, atts, depth)
	case mpExt8, mpExt16, mpExt32:
		switch c {
		case mpExt8:
			var l byte
			l, err = r.u8()
			n = int(l)
		case mpExt16:
			n, err = r.u16()
		default:
			n, err = r.u32()
		}
		if err != nil {
			return dst, err
		}
		return r.appendExt(dst, n, mode, atts)
	case mpFixExt1:
		return r.appendExt(dst, 1, mode, atts)
	case mpFixExt2:
		return r.appendExt(dst, 2, mode, atts)
	case mpFixExt4:
		return r.appendExt(dst, 4, mode, atts)
	case mpFixExt8:
		return r.appendExt(dst, 8, mode, atts)
	case mpFixExt16:
		return r.appendExt(dst, 16, mode, atts)
	}
	return dst, ErrMalformed
}

func (r *Reader) appendNumber(dst []byte) ([]byte, error) {
	c := r.b[r.i]
	f, i, integral, err := r.Number()
	if err != nil {
		return dst, err
	}
	if c == mpUint64 {
		// Keep the exact value (JavaScript would round it above 2^53).
		return strconv.AppendUint(dst, binary.BigEndian.Uint64(r.b[r.i-8:r.i]), 10), nil
	}
	if integral && c != mpFloat32 && c != mpFloat64 {
		return strconv.AppendInt(dst, i, 10), nil
	}
	return AppendJSONNumber(dst, f), nil
}

// AppendJSONNumber writes f as JSON.stringify does (ES Number::toString;
// NaN and infinities become null).
func AppendJSONNumber(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	if f == 0 {
		return append(dst, '0') // also -0
	}
	// The encoding/json algorithm, which follows ES6's number-to-string.
	abs := math.Abs(f)
	fmt := byte('f')
	if abs < 1e-6 || abs >= 1e21 {
		fmt = 'e'
	}
	dst = strconv.AppendFloat(dst, f, fmt, -1, 64)
	if fmt == 'e' {
		// clean up e-09 to e-9
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

func (r *Reader) appendArray(dst []byte, n int, mode BinaryMode, atts *[][]byte, depth int) ([]byte, error) {
	if n > r.Len() {
		return dst, ErrTruncated
	}
	dst = append(dst, '[')
	for k := range n {
		if k > 0 {
			dst = append(dst, ',')
		}
		mark := len(dst)
		var err error
		dst, err = r.appendJSON(dst, mode, atts, depth+1)
		if err == errUndefined {
			dst = append(dst[:mark], "null"...)
		} else if err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

func (r *Reader) appendMap(dst []byte, n int, mode BinaryMode, atts *[][]byte, depth int) ([]byte, error) {
	if n > r.Len() {
		return dst, ErrTruncated
	}
	dst = append(dst, '{')
	first := true
	for range n {
		mark := len(dst)
		if !first {
			dst = append(dst, ',')
		}
		var err error
		dst, err = r.appendKey(dst, depth)
		if err != nil {
			return dst, err
		}
		dst = append(dst, ':')
		dst, err = r.appendJSON(dst, mode, atts, depth+1)
		if err == errUndefined {
			dst = dst[:mark] // JSON.stringify drops undefined properties
			continue
		}
		if err != nil {
			return dst, err
		}
		first = false
	}
	return append(dst, '}'), nil
}

// appendKey writes a map key as a JSON string: strings as they are, other
// scalars in their JSON form (as JavaScript's String(key) mostly would).
func (r *Reader) appendKey(dst []byte, depth int) ([]byte, error) {
	c, err := r.peek()
	if err != nil {
		return dst, err
	}
	if c&0xe0 == 0xa0 || c == mpStr8 || c == mpStr16 || c == mpStr32 {
		s, err := r.StringBytes()
		if err != nil {
			return dst, err
		}
		return AppendJSONString(dst, s), nil
	}
	if c&0xf0 == 0x80 || c&0xf0 == 0x90 || c == mpArray16 || c == mpArray32 || c == mpMap16 || c == mpMap32 {
		return dst, ErrMalformed
	}
	v, err := r.appendJSON(nil, BinaryAsBuffer, nil, depth+1)
	if err != nil {
		return dst, err
	}
	return AppendJSONString(dst, v), nil
}

func appendBinaryJSON(dst, b []byte, mode BinaryMode, atts *[][]byte) []byte {
	if mode == BinaryAsPlaceholder && atts != nil {
		dst = append(dst, `{"_placeholder":true,"num":`...)
		dst = strconv.AppendInt(dst, int64(len(*atts)), 10)
		*atts = append(*atts, b)
		return append(dst, '}')
	}
	return AppendBufferJSON(dst, b)
}

// AppendBufferJSON writes b as JSON.stringify writes a Node Buffer.
func AppendBufferJSON(dst, b []byte) []byte {
	dst = append(dst, `{"type":"Buffer","data":[`...)
	for i, x := range b {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendUint(dst, uint64(x), 10)
	}
	return append(dst, "]}"...)
}

// appendExt handles notepack's extensions: -1 timestamps and 0 (legacy
// ArrayBuffer, Date, undefined); any other type decodes in Node to
// [type, Buffer], written here the same way.
func (r *Reader) appendExt(dst []byte, n int, mode BinaryMode, atts *[][]byte) ([]byte, error) {
	t, err := r.u8()
	if err != nil {
		return dst, err
	}
	data, err := r.take(n)
	if err != nil {
		return dst, err
	}
	typ := int8(t)
	switch {
	case typ == -1 && (n == 4 || n == 8 || n == 12):
		var ts time.Time
		switch n {
		case 4:
			ts = time.Unix(int64(binary.BigEndian.Uint32(data)), 0)
		case 8:
			v := binary.BigEndian.Uint64(data)
			ts = time.Unix(int64(v&(1<<34-1)), int64(v>>34))
		default:
			ts = time.Unix(int64(binary.BigEndian.Uint64(data[4:])), int64(binary.BigEndian.Uint32(data)))
		}
		return appendJSDate(dst, ts), nil
	case typ == 0 && n == 1:
		return dst, errUndefined
	case typ == 0 && n == 8:
		ms := int64(binary.BigEndian.Uint64(data))
		return appendJSDate(dst, time.UnixMilli(ms)), nil
	case typ == 0:
		return appendBinaryJSON(dst, data, mode, atts), nil
	}
	dst = append(dst, '[')
	dst = strconv.AppendInt(dst, int64(typ), 10)
	dst = append(dst, ',')
	dst = appendBinaryJSON(dst, data, mode, atts)
	return append(dst, ']'), nil
}

// appendJSDate writes a date as JSON.stringify does (toISOString).
func appendJSDate(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	return append(dst, '"')
}

// AppendJSONString writes s (UTF-8; invalid bytes become U+FFFD) as a JSON
// string escaped like JSON.stringify: only '"', '\\' and control
// characters.
func AppendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, "\ufffd"...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// ---------------------------------------------------------------------------
// JSON → msgpack

// AppendJSONAsMsgpack transcodes one JSON value to msgpack, as notepack.io
// encodes the value JSON.parse would give, except that placeholder objects
// {"_placeholder":true,"num":N} with N < len(attachments) become bin values
// holding attachments[N]. Object key order is kept. Integers keep their
// exact value (JavaScript would round those above 2^53).
func AppendJSONAsMsgpack(dst, src []byte, attachments [][]byte) ([]byte, error) {
	e := jsonTranscoder{src: src, atts: attachments}
	e.i = sio.SkipSpace(src, 0)
	dst, err := e.value(dst, 0)
	if err != nil {
		return dst, err
	}
	if sio.SkipSpace(src, e.i) != len(src) {
		return dst, ErrMalformed
	}
	return dst, nil
}

type jsonTranscoder struct {
	src  []byte
	i    int
	atts [][]byte
}

func (e *jsonTranscoder) value(dst []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return dst, ErrTooDeep
	}
	if e.i >= len(e.src) {
		return dst, ErrTruncated
	}
	switch c := e.src[e.i]; {
	case c == '{':
		if len(e.atts) > 0 {
			if n, end, ok := placeholderAt(e.src, e.i); ok && n < len(e.atts) {
				e.i = end
				return AppendBinary(dst, e.atts[n]), nil
			}
		}
		return e.object(dst, depth)
	case c == '[':
		return e.array(dst, depth)
	case c == '"':
		s, err := e.str()
		if err != nil {
			return dst, err
		}
		return AppendStringBytes(dst, s), nil
	case c == 't':
		return e.literal(dst, "true", mpTrue)
	case c == 'f':
		return e.literal(dst, "false", mpFalse)
	case c == 'n':
		return e.literal(dst, "null", mpNil)
	case c == '-' || (c >= '0' && c <= '9'):
		return e.number(dst)
	}
	return dst, ErrMalformed
}

func (e *jsonTranscoder) literal(dst []byte, lit string, code byte) ([]byte, error) {
	if !bytes.HasPrefix(e.src[e.i:], []byte(lit)) {
		return dst, ErrMalformed
	}
	e.i += len(lit)
	return append(dst, code), nil
}

func (e *jsonTranscoder) number(dst []byte) ([]byte, error) {
	start := e.i
	frac := false
	for e.i < len(e.src) {
		c := e.src[e.i]
		if c >= '0' && c <= '9' || c == '-' {
			e.i++
			continue
		}
		if c == '.' || c == 'e' || c == 'E' || c == '+' {
			frac = true
			e.i++
			continue
		}
		break
	}
	lit := e.src[start:e.i]
	if !frac {
		if v, err := strconv.ParseInt(string(lit), 10, 64); err == nil {
			return AppendInt(dst, v), nil
		}
		if v, err := strconv.ParseUint(string(lit), 10, 64); err == nil {
			return AppendUint(dst, v), nil
		}
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil && !isRangeErr(err) {
		return dst, ErrMalformed
	}
	// notepack writes integral values as integers (JSON.parse("1.0") === 1).
	switch {
	case f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63:
		return AppendInt(dst, int64(f)), nil
	case f == math.Trunc(f) && f >= 0 && f < 1<<64:
		return AppendUint(dst, uint64(f)), nil
	}
	return AppendFloat64(dst, f), nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// str reads a JSON string and returns its UTF-8 bytes (aliasing the input
// when it has no escapes).
func (e *jsonTranscoder) str() ([]byte, error) {
	start := e.i + 1
	escaped := false
	for i := start; i < len(e.src); i++ {
		switch e.src[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			e.i = i + 1
			if !escaped {
				return e.src[start:i], nil
			}
			var s string
			if err := json.Unmarshal(e.src[start-1:i+1], &s); err != nil {
				return nil, ErrMalformed
			}
			return []byte(s), nil
		}
	}
	return nil, ErrTruncated
}

// containers are written with a one-byte header that is widened afterwards
// in the rare case of 16 or more elements, so that the output is the
// smallest form, as notepack writes it.
func (e *jsonTranscoder) array(dst []byte, depth int) ([]byte, error) {
	e.i = sio.SkipSpace(e.src, e.i+1)
	pos := len(dst)
	dst = append(dst, 0x90)
	n := 0
	if e.i < len(e.src) && e.src[e.i] == ']' {
		e.i++
		return dst, nil
	}
	for {
		var err error
		if dst, err = e.value(dst, depth+1); err != nil {
			return dst, err
		}
		n++
		e.i = sio.SkipSpace(e.src, e.i)
		if e.i >= len(e.src) {
			return dst, ErrTruncated
		}
		switch e.src[e.i] {
		case ',':
			e.i = sio.SkipSpace(e.src, e.i+1)
			continue
		case ']':
			e.i++
			return patchHeader(dst, pos, n, 0x90, mpArray16, mpArray32), nil
		}
		return dst, ErrMalformed
	}
}

func (e *jsonTranscoder) object(dst []byte, depth int) ([]byte, error) {
	e.i = sio.SkipSpace(e.src, e.i+1)
	pos := len(dst)
	dst = append(dst, 0x80)
	n := 0
	if e.i < len(e.src) && e.src[e.i] == '}' {
		e.i++
		return dst, nil
	}
	for {
		if e.i >= len(e.src) || e.src[e.i] != '"' {
			return dst, ErrMalformed
		}
		k, err := e.str()
		if err != nil {
			return dst, err
		}
		dst = AppendStringBytes(dst, k)
		e.i = sio.SkipSpace(e.src, e.i)
		if e.i >= len(e.src) || e.src[e.i] != ':' {
			return dst, ErrMalformed
		}
		e.i = sio.SkipSpace(e.src, e.i+1)
		if dst, err = e.value(dst, depth+1); err != nil {
			return dst, err
		}
		n++
		e.i = sio.SkipSpace(e.src, e.i)
		if e.i >= len(e.src) {
			return dst, ErrTruncated
		}
		switch e.src[e.i] {
		case ',':
			e.i = sio.SkipSpace(e.src, e.i+1)
			continue
		case '}':
			e.i++
			return patchHeader(dst, pos, n, 0x80, mpMap16, mpMap32), nil
		}
		return dst, ErrMalformed
	}
}

func patchHeader(dst []byte, pos, n int, fix, code16, code32 byte) []byte {
	if n < 16 {
		dst[pos] = fix | byte(n)
		return dst
	}
	var hdr [5]byte
	h := hdr[:3]
	if n < 0x10000 {
		hdr[0], hdr[1], hdr[2] = code16, byte(n>>8), byte(n)
	} else {
		hdr[0] = code32
		binary.BigEndian.PutUint32(hdr[1:], uint32(n))
		h = hdr[:5]
	}
	extra := len(h) - 1
	dst = append(dst, h[:extra]...) // grow
	copy(dst[pos+len(h):], dst[pos+1:len(dst)-extra])
	copy(dst[pos:], h)
	return dst
}

// placeholderAt recognises {"_placeholder":true,"num":N} (keys in either
// order, any spacing) at src[i] and returns N and the index after it.
func placeholderAt(src []byte, i int) (n, end int, ok bool) {
	j := sio.SkipSpace(src, i+1)
	seenPH, seenNum := false, false
	for k := 0; k < 2; k++ {
		switch {
		case bytes.HasPrefix(src[j:], []byte(`"_placeholder"`)):
			j = sio.SkipSpace(src, j+len(`"_placeholder"`))
			if j >= len(src) || src[j] != ':' {
				return 0, 0, false
			}
			j = sio.SkipSpace(src, j+1)
			if !bytes.HasPrefix(src[j:], []byte("true")) {
				return 0, 0, false
			}
			j += 4
			seenPH = true
		case bytes.HasPrefix(src[j:], []byte(`"num"`)):
			j = sio.SkipSpace(src, j+len(`"num"`))
			if j >= len(src) || src[j] != ':' {
				return 0, 0, false
			}
			j = sio.SkipSpace(src, j+1)
			start := j
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			if j == start || j-start > 9 {
				return 0, 0, false
			}
			v, _ := strconv.Atoi(string(src[start:j]))
			n = v
			seenNum = true
		default:
			return 0, 0, false
		}
		j = sio.SkipSpace(src, j)
		if j >= len(src) {
			return 0, 0, false
		}
		if k == 0 {
			if src[j] != ',' {
				return 0, 0, false
			}
			j = sio.SkipSpace(src, j+1)
		}
	}
	if !seenPH || !seenNum || j >= len(src) || src[j] != '}' {
		return 0, 0, false
	}
	return n, j + 1, true
}

// ReplacePlaceholders rewrites the placeholders of a JSON value with
// JSON.stringify's form of a Buffer, for messages Node sends as JSON (the
// arguments of serverSideEmit, for instance).
func ReplacePlaceholders(src []byte, attachments [][]byte) ([]byte, error) {
	if len(attachments) == 0 || !bytes.Contains(src, []byte(`"_placeholder"`)) {
		return src, nil
	}
	out := make([]byte, 0, len(src)+16*len(attachments))
	inStr := false
	last := 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inStr {
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{':
			if n, end, ok := placeholderAt(src, i); ok && n < len(attachments) {
				out = append(out, src[last:i]...)
				out = AppendBufferJSON(out, attachments[n])
				last = end
				i = end - 1
			}
		}
	}
	return append(out, src[last:]...), nil
}
