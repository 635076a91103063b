package sio

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// jsonKind validates data as one JSON value and returns its kind: '{', '[',
// '"', '0' (number), 't', 'f' or 'n'. It is the gate every peer-supplied
// payload passes before the scanners below, which assume valid JSON.
func jsonKind(data []byte) (byte, bool) {
	if !json.Valid(data) {
		return 0, false
	}
	c := data[SkipSpace(data, 0)]
	switch {
	case c == '-' || (c >= '0' && c <= '9'):
		return '0', true
	default:
		return c, true
	}
}

// SkipSpace returns the index of the first non-whitespace byte of b at or
// after i.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// ValueEnd returns the index just past the JSON value starting at b[i].
// b must be valid JSON: the scanners of this package and of the Redis wire
// formats trust input that a decoder has validated once.
func ValueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		i++
		for b[i] != '"' {
			if b[i] == '\\' {
				i++
			}
			i++
		}
		return i + 1
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = ValueEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	default: // number, true, false, null
		for i < len(b) && b[i] != ',' && b[i] != ']' && b[i] != '}' &&
			b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		return i
	}
}

// FirstElement returns the first element of a valid JSON array.
func FirstElement(arr []byte) ([]byte, bool) {
	i := SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return nil, false
	}
	i = SkipSpace(arr, i+1)
	if arr[i] == ']' {
		return nil, false
	}
	return arr[i:ValueEnd(arr, i)], true
}

// SplitArray appends the elements of a JSON array to dst, as slices of arr.
// arr must have passed validation (Decode does it for every payload).
func SplitArray(dst [][]byte, arr []byte) ([][]byte, bool) {
	i := SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return dst, false
	}
	i = SkipSpace(arr, i+1)
	if arr[i] == ']' {
		return dst, true
	}
	for {
		end := ValueEnd(arr, i)
		dst = append(dst, arr[i:end])
		i = SkipSpace(arr, end)
		if arr[i] == ']' {
			return dst, true
		}
		i = SkipSpace(arr, i+1) // the comma
	}
}

// ObjectMember returns the value of the member named key of a valid JSON
// object, and how many times the key occurs (keys are compared after
// unescaping; 0 when absent or when obj is not an object). A key that
// occurs more than once is ambiguous: JavaScript's JSON.parse keeps the
// last, Go's decoder merges; callers that route on the value must refuse it.
func ObjectMember(obj []byte, key string) (value []byte, count int) {
	i := SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil, 0
	}
	i = SkipSpace(obj, i+1)
	for i < len(obj) && obj[i] == '"' {
		kEnd := ValueEnd(obj, i)
		name := obj[i:kEnd]
		i = SkipSpace(obj, SkipSpace(obj, kEnd)+1) // past the colon
		vEnd := ValueEnd(obj, i)
		if keyEquals(name, key) {
			value = obj[i:vEnd]
			count++
		}
		i = SkipSpace(obj, vEnd)
		if i < len(obj) && obj[i] == ',' {
			i = SkipSpace(obj, i+1)
		}
	}
	return value, count
}

// keyEquals reports whether the JSON string raw decodes to key. A key with
// escapes or non-ASCII bytes is decoded first: invalid UTF-8 decodes to
// U+FFFD, as in encoding/json and in JavaScript.
func keyEquals(raw []byte, key string) bool {
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' || c >= 0x80 {
			s, ok := UnquoteString(raw)
			return ok && s == key
		}
	}
	return string(inner) == key
}

// UnquoteString decodes a JSON string without allocating when it holds no
// escapes (the common case for event names).
func UnquoteString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	simple := true
	for _, c := range inner {
		// A bare '"' inside means raw is not one JSON string ("a"b"); let
		// encoding/json reject it rather than return the bytes as is.
		if c == '\\' || c == '"' || c < 0x20 {
			simple = false
			break
		}
	}
	if simple && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// AppendString appends s as a JSON string, as JSON.stringify writes it.
func AppendString(dst []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			simple = false
			break
		}
	}
	if simple {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	return appendStringSlow(dst, s)
}

// appendStringSlow escapes like JSON.stringify: only '"', '\\' and control
// characters, with the short escapes where they exist; non-ASCII is written
// as UTF-8 (Go's json package would also escape <, > and &, which would break
// byte-exact round trips with Node). Lone surrogates cannot occur in a Go
// string; invalid UTF-8 becomes U+FFFD.
func appendStringSlow(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for _, r := range s {
		switch {
		case r == '"':
			dst = append(dst, '\\', '"')
		case r == '\\':
			dst = append(dst, '\\', '\\')
		case r == '\b':
			dst = append(dst, '\\', 'b')
		case r == '\f':
			dst = append(dst, '\\', 'f')
		case r == '\n':
			dst = append(dst, '\\', 'n')
		case r == '\r':
			dst = append(dst, '\\', 'r')
		case r == '\t':
			dst = append(dst, '\\', 't')
		case r < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigit(byte(r)>>4), hexDigit(byte(r)&0xf))
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	return append(dst, '"')
}

func hexDigit(b byte) byte { return "0123456789abcdef"[b] }

// Placeholder is the JSON that stands for attachment n.
func AppendPlaceholder(dst []byte, n int) []byte {
	dst = append(dst, `{"_placeholder":true,"num":`...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '}')
}

// CheckPlaceholders verifies, as socket.io-parser's reconstructPacket does,
// that every placeholder in data refers to one of n attachments. It only runs
// on binary packets, so it may decode the payload generically.
func CheckPlaceholders(data []byte, n int) bool {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return false
	}
	return placeholdersValid(v, n)
}

func placeholdersValid(v any, n int) bool {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if !placeholdersValid(e, n) {
				return false
			}
		}
	case map[string]any:
		if ph, _ := x["_placeholder"].(bool); ph {
			num, ok := x["num"].(float64)
			return ok && num >= 0 && num < float64(n) && num == float64(int(num))
		}
		for _, e := range x {
			if !placeholdersValid(e, n) {
				return false
			}
		}
	}
	return true
}

// PlaceholderNum returns N when raw is exactly a placeholder object
// {"_placeholder":true,"num":N} (in any key order or spacing).
func PlaceholderNum(raw []byte) (int, bool) {
	i := SkipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return 0, false
	}
	// A map, not a struct: encoding/json matches struct fields without
	// regard to case, while socket.io-parser tests data._placeholder and
	// data.num exactly ({"_PLACEHOLDER":true,"NUM":0} is plain data).
	var ph map[string]any
	if err := json.Unmarshal(raw, &ph); err != nil {
		return 0, false
	}
	isPH, _ := ph["_placeholder"].(bool)
	n, ok := ph["num"].(float64)
	if !isPH || !ok || n < 0 || n != float64(int(n)) {
		return 0, false
	}
	return int(n), true
}
