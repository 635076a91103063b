package filter

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/protocol/sio"
)

// Payload is one event's payload decoded for the filters of its payload
// type: decode it once per event, then evaluate every program against it.
// It is the activation of the programs (payload and event). A Payload is
// read-only once decoded.
type Payload struct {
	typ    *payloadType
	size   int // of the JSON payload
	event  types.String
	values []ref.Val // by field; nil when the payload lacks the field or has it with the wrong type
}

var _ interpreter.Activation = (*Payload)(nil)

// ResolveName implements interpreter.Activation.
func (p *Payload) ResolveName(name string) (any, bool) {
	switch name {
	case varPayload:
		return p, true
	case varEvent:
		return p.event, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (p *Payload) Parent() interpreter.Activation { return nil }

// decodePayload reads the catalog fields of a JSON payload object. A field
// whose JSON value does not have its declared type (possible for events
// that did not come through the gateway's validation, e.g. from an emitter
// on the same Redis) counts as absent; of a repeated field, the last
// occurrence counts, as in JavaScript's JSON.parse. raw must be valid JSON,
// as every Socket.IO packet the server handles is.
func decodePayload(t *payloadType, adapter types.Adapter, event string, raw []byte) *Payload {
	p := &Payload{typ: t, size: len(raw), event: types.String(event), values: make([]ref.Val, len(t.fields))}
	i := sio.SkipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return p
	}
	i = sio.SkipSpace(raw, i+1)
	for i < len(raw) && raw[i] == '"' {
		kEnd := sio.ValueEnd(raw, i)
		key := raw[i:kEnd]
		i = sio.SkipSpace(raw, sio.SkipSpace(raw, kEnd)+1) // past the colon
		vEnd := sio.ValueEnd(raw, i)
		if fi, ok := fieldOf(t, key); ok {
			p.values[fi] = decodeValue(&t.fields[fi], adapter, raw[i:vEnd])
		}
		i = sio.SkipSpace(raw, vEnd)
		if i < len(raw) && raw[i] == ',' {
			i = sio.SkipSpace(raw, i+1)
		}
	}
	return p
}

// fieldOf finds the field a raw (quoted) key names.
func fieldOf(t *payloadType, key []byte) (int, bool) {
	if len(key) >= 2 {
		if fi, ok := t.index[string(key[1:len(key)-1])]; ok {
			return fi, true
		}
	}
	for _, c := range key {
		if c == '\\' { // an escaped key: compare it decoded
			name, ok := sio.UnquoteString(key)
			if !ok {
				return 0, false
			}
			fi, ok := t.index[name]
			return fi, ok
		}
	}
	return 0, false
}

// decodeValue converts one JSON value to the CEL value of its field, or
// nil when the value does not have the field's type.
func decodeValue(f *events.Field, adapter types.Adapter, raw []byte) ref.Val {
	switch f.Kind {
	case events.FieldString, events.FieldEnum:
		if s, ok := sio.UnquoteString(raw); ok {
			return types.String(s)
		}
	case events.FieldNumber:
		if x, ok := number(raw); ok {
			return types.Double(x)
		}
	case events.FieldInteger:
		if x, ok := number(raw); ok && x == math.Trunc(x) && math.Abs(x) <= 1<<53-1 {
			return types.Int(int64(x))
		}
	case events.FieldBoolean:
		switch string(raw) {
		case "true":
			return types.True
		case "false":
			return types.False
		}
	case events.FieldDateTime:
		if s, ok := sio.UnquoteString(raw); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return types.Timestamp{Time: t}
			}
		}
	case events.FieldObject:
		if raw[0] == '{' {
			var m map[string]any
			if json.Unmarshal(raw, &m) == nil {
				return adapter.NativeToValue(m)
			}
		}
	case events.FieldArray:
		if raw[0] != '[' || f.Items == nil {
			return nil
		}
		var parts [][]byte
		parts, ok := sio.SplitArray(parts, raw)
		if !ok {
			return nil
		}
		elems := make([]ref.Val, len(parts))
		for i, part := range parts {
			if elems[i] = decodeValue(f.Items, adapter, part); elems[i] == nil {
				return nil // one bad element: the array is not what the catalog says
			}
		}
		return types.NewRefValList(adapter, elems)
	}
	return nil
}

// number parses a JSON number; raw starts with its first byte.
func number(raw []byte) (float64, bool) {
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, false
	}
	x, err := strconv.ParseFloat(string(raw), 64)
	return x, err == nil && !math.IsInf(x, 0)
}
