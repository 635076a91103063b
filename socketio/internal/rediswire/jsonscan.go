package rediswire

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/operate/realtime/protocol/sio"
)

// A small scanner over JSON that has already been validated, for the hot
// path of the sharded adapter (a broadcast is a JSON ClusterMessage):
// encoding/json would validate each nested level again and allocate a
// struct per level.

// eachField calls fn with each key (unquoted when it has no escapes) and
// raw value of a valid JSON object; it returns false if obj is not an
// object.
func eachField(obj []byte, fn func(key string, val []byte)) bool {
	i := sio.SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i = sio.SkipSpace(obj, i+1)
	for i < len(obj) && obj[i] != '}' {
		kEnd := sio.ValueEnd(obj, i)
		key := obj[i+1 : kEnd-1]
		i = sio.SkipSpace(obj, kEnd)
		i = sio.SkipSpace(obj, i+1) // the colon
		vEnd := sio.ValueEnd(obj, i)
		fn(string(key), obj[i:vEnd])
		i = sio.SkipSpace(obj, vEnd)
		if i < len(obj) && obj[i] == ',' {
			i = sio.SkipSpace(obj, i+1)
		}
	}
	return true
}

// jsonStrings reads an array of strings (numbers in their decimal form);
// null or anything else reads as none.
func jsonStrings(v []byte) []string {
	i := sio.SkipSpace(v, 0)
	if i >= len(v) || v[i] != '[' {
		return nil
	}
	i = sio.SkipSpace(v, i+1)
	var out []string
	for i < len(v) && v[i] != ']' {
		end := sio.ValueEnd(v, i)
		if s, ok := sio.UnquoteString(v[i:end]); ok {
			out = append(out, s)
		} else {
			out = append(out, string(v[i:end]))
		}
		i = sio.SkipSpace(v, end)
		if i < len(v) && v[i] == ',' {
			i = sio.SkipSpace(v, i+1)
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
		case "direct":
			f.Direct = string(val) == "true"
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
			m.UID, _ = sio.UnquoteString(val)
		case "nsp":
			m.Nsp, _ = sio.UnquoteString(val)
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
	if len(m.Data) > 0 {
		d = clusterData(m.Data)
	}
	return m, d, nil
}

// DecodeClusterData decodes the data of a ClusterMessage from JSON (a
// stream entry's data, after DecodeStreamData). It validates js once; it
// must be an object.
func DecodeClusterData(js []byte) (ClusterData, error) {
	if !json.Valid(js) {
		return ClusterData{}, ErrMalformed
	}
	i := sio.SkipSpace(js, 0)
	if i >= len(js) || js[i] != '{' {
		return ClusterData{}, ErrMalformed
	}
	return clusterData(js), nil
}

func clusterData(js []byte) (d ClusterData) {
	eachField(js, func(k string, val []byte) {
		switch k {
		case "packet":
			d.Packet = val
		case "opts":
			d.Opts = jsonOpts(val)
		case "requestId":
			if s, ok := sio.UnquoteString(val); ok {
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
	return d
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
