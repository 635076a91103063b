package rediswire

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unsafe"
)

// The formats of @socket.io/redis-streams-adapter 0.3.1 (lib/adapter.ts,
// lib/util.ts; protocol notes §5.5): stream entries {uid, nsp, type, data}
// whose data is the ClusterMessage's data as JSON, or base64 msgpack when it
// carries binary; ids "<ms>-<seq>" that are also the recovery offsets; and
// sessions stored as base64 msgpack {sid, pid, rooms, data}.

// StreamID is a parsed stream entry id.
type StreamID struct {
	Ms, Seq uint64
}

// ParseStreamID parses "<ms>-<seq>" (Node's /^[0-9]+-[0-9]+$/, both parts
// within uint64).
func ParseStreamID(s string) (StreamID, bool) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok || !digits(ms) || !digits(seq) {
		return StreamID{}, false
	}
	m, err1 := strconv.ParseUint(ms, 10, 64)
	q, err2 := strconv.ParseUint(seq, 10, 64)
	if err1 != nil || err2 != nil {
		return StreamID{}, false
	}
	return StreamID{m, q}, true
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String formats the id as Redis does.
func (id StreamID) String() string {
	b := strconv.AppendUint(make([]byte, 0, 40), id.Ms, 10)
	b = append(b, '-')
	return string(strconv.AppendUint(b, id.Seq, 10))
}

// Next returns the smallest id after id (for an exclusive range start).
func (id StreamID) Next() StreamID {
	if id.Seq == math.MaxUint64 {
		return StreamID{id.Ms + 1, 0}
	}
	return StreamID{id.Ms, id.Seq + 1}
}

// Less reports whether id is before other.
func (id StreamID) Less(other StreamID) bool {
	return id.Ms < other.Ms || id.Ms == other.Ms && id.Seq < other.Seq
}

// StreamName is the stream of a namespace: name itself with one stream, or
// "<name>-<hashCode(nsp) % count>" with several. The hash is Java's
// String.hashCode over UTF-16 code units, in int32 (JavaScript's |0), and
// the remainder keeps the hash's sign, as JavaScript's % does (Node then
// writes to "<name>--<k>", a stream its readers never read).
func StreamName(name string, count int, nsp string) string {
	if count <= 1 {
		return name
	}
	var h int32
	for _, r := range nsp {
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			h = h*31 + r1
			h = h*31 + r2
			continue
		}
		h = h*31 + r
	}
	return name + "-" + strconv.Itoa(int(h%int32(count)))
}

// EncodeStreamData returns the data field of a stream entry: the JSON as
// it is when there is no binary (Node's JSON.stringify), else base64 of
// msgpack with the attachments as bin values.
func EncodeStreamData(js []byte, attachments [][]byte) ([]byte, error) {
	if len(attachments) == 0 {
		return js, nil
	}
	mp, err := AppendJSONAsMsgpack(make([]byte, 0, len(js)+totalLen(attachments)+16), js, attachments)
	if err != nil {
		return nil, err
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(mp)))
	base64.StdEncoding.Encode(out, mp)
	return out, nil
}

// DecodeStreamData decodes the data field of a stream entry to JSON, with
// binary values as placeholders indexing the attachments. Data starting
// with '{' is JSON, anything else base64 msgpack (as Node decides). The
// result is a JSON object (validated once).
func DecodeStreamData(data []byte) (js []byte, attachments [][]byte, err error) {
	if len(data) > 0 && data[0] == '{' {
		if !json.Valid(data) {
			return nil, nil, ErrMalformed
		}
		return data, nil, nil
	}
	return decodeStreamMsgpack(data)
}

// DecodeStreamMessage decodes the data field of a stream entry to the
// ClusterMessage's data (DecodeStreamData then DecodeClusterData, with the
// JSON validated once).
func DecodeStreamMessage(data []byte) (ClusterData, [][]byte, error) {
	js, atts, err := DecodeStreamData(data)
	if err != nil {
		return ClusterData{}, nil, err
	}
	// An object: DecodeStreamData checked the first byte, or transcoded a
	// msgpack map.
	return clusterData(js), atts, nil
}

// decodeStreamMsgpack decodes base64 msgpack data; the transcoder writes
// valid JSON.
func decodeStreamMsgpack(data []byte) (js []byte, attachments [][]byte, err error) {
	mp, err := decodeBase64(data)
	if err != nil {
		return nil, nil, err
	}
	if len(mp) == 0 || !isMsgpackMap(mp[0]) {
		return nil, nil, ErrMalformed
	}
	r := Reader{b: mp}
	js, err = r.appendJSON(make([]byte, 0, len(mp)+len(mp)/2), BinaryAsPlaceholder, &attachments, 0)
	if err != nil {
		return nil, nil, err
	}
	if r.Len() != 0 {
		return nil, nil, ErrMalformed
	}
	return js, attachments, nil
}

func isMsgpackMap(c byte) bool { return c&0xf0 == 0x80 || c == mpMap16 || c == mpMap32 }

// decodeBase64 accepts padded and unpadded standard base64, as Node's
// Buffer.from(s, "base64") does.
func decodeBase64(s []byte) ([]byte, error) {
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(s))+2)
	n, err := base64.StdEncoding.Decode(out, s)
	if err != nil {
		n, err = base64.RawStdEncoding.Decode(out, s)
		if err != nil {
			return nil, fmt.Errorf("%w: base64: %v", ErrMalformed, err)
		}
	}
	return out[:n], nil
}

// StreamEntry is a stream entry of the adapter: the ClusterMessage's
// fields, data still encoded (see DecodeStreamData). Data aliases the
// string it was parsed from and must not be modified.
type StreamEntry struct {
	ID   string
	UID  string
	Nsp  string
	Type int // -1 when absent or not a number
	Data []byte
	// HasNsp is false for entries without an nsp field, which Node skips.
	HasNsp bool
}

// ParseStreamFields fills an entry from its field/value pairs. Unknown
// fields are ignored; a repeated field keeps its last value (as Node's
// object does). It fails only for an odd list.
func ParseStreamFields(id string, fields []string) (StreamEntry, error) {
	e := StreamEntry{ID: id, Type: -1}
	if len(fields)%2 != 0 {
		return e, ErrMalformed
	}
	for i := 0; i < len(fields); i += 2 {
		v := fields[i+1]
		switch fields[i] {
		case "uid":
			e.UID = v
		case "nsp":
			e.Nsp, e.HasNsp = v, true
		case "type":
			if t, err := strconv.Atoi(v); err == nil && t >= 0 {
				e.Type = t
			} else {
				e.Type = -1
			}
		case "data":
			// Read only: it may alias the string (the Redis client's),
			// as the Pub/Sub payloads do.
			e.Data = unsafe.Slice(unsafe.StringData(v), len(v))
			if e.Data == nil {
				e.Data = []byte{}
			}
		}
	}
	return e, nil
}

// AppendStreamFields appends the XADD field/value arguments of a message,
// in Node's order: uid, nsp, type, data (data omitted when nil).
func AppendStreamFields(dst []string, uid, nsp string, typ int, data []byte) []string {
	dst = append(dst, "uid", uid, "nsp", nsp, "type", strconv.Itoa(typ))
	if data != nil {
		dst = append(dst, "data", string(data))
	}
	return dst
}

// ---------------------------------------------------------------------------
// Sessions

// Session is a persisted session as the streams adapter stores it.
type Session struct {
	SID   string
	PID   string
	Rooms []string
	// Data is the socket's data as JSON ("null" when absent); binary
	// values are written as Node's Buffer JSON.
	Data json.RawMessage
}

// EncodeSession returns base64(msgpack({sid, pid, rooms, data})), what
// Node stores; data is JSON (nil means null).
func EncodeSession(sid, pid string, rooms []string, data []byte) (string, error) {
	if data == nil {
		data = []byte("null")
	}
	b := make([]byte, 0, 64+len(data))
	b = AppendMapHeader(b, 4)
	b = AppendString(AppendString(b, "sid"), sid)
	b = AppendString(AppendString(b, "pid"), pid)
	b = AppendStringArray(AppendString(b, "rooms"), rooms)
	b = AppendString(b, "data")
	b, err := AppendJSONAsMsgpack(b, data, nil)
	if err != nil {
		return "", fmt.Errorf("rediswire: session data: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeSession decodes a stored session. sid and pid must be non-empty
// strings; rooms, when present, an array; other keys are ignored.
func DecodeSession(s string) (Session, error) {
	var sess Session
	mp, err := decodeBase64([]byte(s))
	if err != nil {
		return sess, err
	}
	r := Reader{b: mp}
	n, err := r.MapLen()
	if err != nil {
		return sess, err
	}
	for range n {
		k, err := r.StringBytes()
		if err != nil {
			return sess, err
		}
		switch string(k) {
		case "sid":
			sess.SID, err = r.String()
		case "pid":
			sess.PID, err = r.String()
		case "rooms":
			sess.Rooms, err = r.Strings()
		case "data":
			var js []byte
			js, err = r.appendJSON(nil, BinaryAsBuffer, nil, 0)
			if err == errUndefined {
				js, err = []byte("null"), nil
			}
			sess.Data = js
		default:
			err = r.Skip()
		}
		if err != nil {
			return Session{}, err
		}
	}
	if r.Len() != 0 || sess.SID == "" || sess.PID == "" {
		return Session{}, ErrMalformed
	}
	if sess.Data == nil {
		sess.Data = json.RawMessage("null")
	}
	return sess, nil
}
