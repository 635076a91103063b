package events

import (
	"bytes"
	"encoding/json"
)

// A tiny scanner over JSON that has already passed json.Valid. It finds the members of the
// payload object and the elements of array fields as sub-slices, without decoding them, so
// that validation does not build a map of the payload for every published event.

// iterator walks an object's members (nextMember) or an array's elements (nextElement).
// data[pos] must be the opening '{' or '['.
type iterator struct {
	data       []byte
	pos        int    // at the opening bracket, a ',' or (when done) the closing bracket
	key        []byte // current member's key, quoted and undecoded
	start, end int    // current value is data[start:end]
	count      int    // members or elements seen
}

func (it *iterator) nextMember() bool {
	d := it.data
	if d[it.pos] == '}' {
		return false
	}
	i := skipSpace(d, it.pos+1)
	if d[i] == '}' { // empty object
		it.pos = i
		return false
	}
	keyEnd := skipString(d, i)
	it.key = d[i:keyEnd]
	i = skipSpace(d, skipSpace(d, keyEnd)+1) // past ':'
	it.start, it.end = i, skipValue(d, i)
	it.pos = skipSpace(d, it.end)
	it.count++
	return true
}

func (it *iterator) nextElement() bool {
	d := it.data
	if d[it.pos] == ']' {
		return false
	}
	i := skipSpace(d, it.pos+1)
	if d[i] == ']' { // empty array
		it.pos = i
		return false
	}
	it.start, it.end = i, skipValue(d, i)
	it.pos = skipSpace(d, it.end)
	it.count++
	return true
}

func skipSpace(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string that starts at d[i] == '"'.
func skipString(d []byte, i int) int {
	for i++; i < len(d); i++ {
		switch d[i] {
		case '\\':
			i++ // the escaped byte cannot end the string
		case '"':
			return i + 1
		}
	}
	return len(d)
}

// skipValue returns the index just past the value that starts at d[i].
func skipValue(d []byte, i int) int {
	switch d[i] {
	case '"':
		return skipString(d, i)
	case '{', '[':
		depth := 0
		for i < len(d) {
			switch d[i] {
			case '"':
				i = skipString(d, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(d)
	default: // number, true, false, null
		for i < len(d) {
			switch d[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// stringContent returns the text of a quoted JSON string. Only strings with escapes are
// decoded (and allocate).
func stringContent(quoted []byte) []byte {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return inner // unreachable: the payload passed json.Valid
	}
	return []byte(s)
}
