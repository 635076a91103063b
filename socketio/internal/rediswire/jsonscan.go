package rediswire

import (
	"encoding/json"
	"strconv"
	"time"
)

// A small scanner over JSON that has already been validated, for the hot
// path of the sharded adapter (a broadcast is a JSON ClusterMessage):
// encoding/json would validate each nested level again and allocate a
// struct per level.

// valueEnd returns the index just past the JSON value starting at b[i];
// b must be valid JSON.
func valueEnd(b []byte, i int) int {
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
				i = valueEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	default:
		for i < len(b) && b[i] != ',' && b[i] != ']' && b[i] != '}' &&
			b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		return i
	}
}

// eachField calls fn with each key (unquoted when it has no escapes) and
// raw value of a valid JSON object; it returns false if obj is not an
// object.
func eachField(obj []byte, fn func(key string, val []byte)) bool {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i = skipWS(obj, i+1)
	for i < len(obj) && obj[i] != '}' {
		kEnd := valueEnd(obj, i)
		key := obj[i+1 : kEnd-1]
		i = skipWS(obj, kEnd)
		i = skipWS(obj, i+1) // the colon
		vEnd := valueEnd(obj, i)
		fn(string(key), obj[i:vEnd])
		i = skipWS(obj, vEnd)
		if i < len(obj) && obj[i] == ',' {
			i = skipWS(obj, i+1)
		}
	}
	return true
}

// jsonString unquotes a raw JSON string value ("" when it is not one).
func jsonString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	for _, c := range inner {
		if c == '\\' {
			var s string
			if json.Unmarshal(v, &s) != nil {
				return "", false
			}
			return s, true
		}
	}
	return string(inner), true
}

// jsonStrings reads an array of strings (numbers in their decimal form);
// null or anything else reads as none.
func jsonStrings(v []byte) []string {
	i := skipWS(v, 0)
	if i >= len(v) || v[i] != '[' {
		return nil
	}
	i = skipWS(v, i+1)
	var out []string
	for i < len(v) && v[i] != ']' {
		end := valueEnd(v, i)
		if s, ok := jsonString(v[i:end]); ok {
			out = append(out, s)
		} else {
			out = append(out, string(v[i:end]))
		}
		i = skipWS(v, end)
		if i < len(v) && v[i] == ',' {
			i = skipWS(v, i+1)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

func jsonFlags(v []byte) *Flags {
	f := &Flags{}
	eachField(v, func(k string, val []byte) {
		switch k {
		case "volatile":
			f.Volatile = string(val) == "true"
		case "compress":
			f.NoCompress = string(val) == "false"
		case "timeout":
			if ms, err := strconv.ParseFloat(string(val), 64); err == nil && ms > 0 && ms < 1e12 {
				f.Timeout = time.Duration(ms * float64(time.Millisecond))
			}
		}
	})
	return f
}

func jsonOpts(v []byte) *Opts {
	o := &Opts{}
	if !eachField(v, func(k string, val []byte) {
		switch k {
		case "rooms":
			o.Rooms = jsonStrings(val)
		case "except":
			o.Except = jsonStrings(val)
		case "flags":
			o.Flags = jsonFlags(val)
		}
	}) {
		return nil
	}
	return o
}

// DecodeCluster decodes a ClusterMessage and its data from JSON (a
// message DecodeMessage returned). It validates js once.
func DecodeCluster(js []byte) (m ClusterMessage, d ClusterData, err error) {
	if !json.Valid(js) {
		return m, d, ErrMalformed
	}
	m.Type = -1
	if !eachField(js, func(k string, val []byte) {
		switch k {
		case "uid":
			m.UID, _ = jsonString(val)
		case "nsp":
			m.Nsp, _ = jsonString(val)
		case "type":
			if t, err := strconv.Atoi(string(val)); err == nil {
				m.Type = t
			}
		case "data":
			m.Data = val
		}
	}) {
		return m, d, ErrMalformed
	}
	if len(m.Data) == 0 {
		return m, d, nil
	}
	eachField(m.Data, func(k string, val []byte) {
		switch k {
		case "packet":
			d.Packet = val
		case "opts":
			d.Opts = jsonOpts(val)
		case "requestId":
			if s, ok := jsonString(val); ok {
				d.RequestID = &s
			}
		case "rooms":
			d.Rooms = jsonStrings(val)
		case "close":
			d.Close = string(val) == "true"
		case "sockets":
			d.Sockets = val
		case "clientCount":
			if n, err := strconv.Atoi(string(val)); err == nil {
				d.ClientCount = &n
			}
		}
	})
	return m, d, nil
}

// PacketData returns the "data" array of a {"type":2,"data":[...]} packet
// from a validated message.
func PacketData(packet []byte) ([]byte, bool) {
	var data []byte
	if !eachField(packet, func(k string, val []byte) {
		if k == "data" {
			data = val
		}
	}) || len(data) == 0 || data[0] != '[' {
		return nil, false
	}
	return data, true
}
