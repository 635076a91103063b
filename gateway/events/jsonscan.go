package events

import (
	"bytes"
	"encoding/json"

	"github.com/operate/realtime/protocol/sio"
)

// Validation walks the payload with protocol/sio's scanner (the one JSON scanner of the
// module, over JSON that has already passed json.Valid): it finds the members of the payload
// object and the elements of array fields as sub-slices, without decoding them, so that
// validation does not build a map of the payload for every published event.

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
	i := sio.SkipSpace(d, it.pos+1)
	if d[i] == '}' { // empty object
		it.pos = i
		return false
	}
	keyEnd := sio.ValueEnd(d, i)
	it.key = d[i:keyEnd]
	i = sio.SkipSpace(d, sio.SkipSpace(d, keyEnd)+1) // past ':'
	it.start, it.end = i, sio.ValueEnd(d, i)
	it.pos = sio.SkipSpace(d, it.end)
	it.count++
	return true
}

func (it *iterator) nextElement() bool {
	d := it.data
	if d[it.pos] == ']' {
		return false
	}
	i := sio.SkipSpace(d, it.pos+1)
	if d[i] == ']' { // empty array
		it.pos = i
		return false
	}
	it.start, it.end = i, sio.ValueEnd(d, i)
	it.pos = sio.SkipSpace(d, it.end)
	it.count++
	return true
}

// stringContent returns the text of a quoted JSON string. Only strings with escapes are
// decoded (and allocate). Unlike sio.UnquoteString it returns the bytes of an unescaped
// string as they are, invalid UTF-8 included, which validation then reports as such.
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
