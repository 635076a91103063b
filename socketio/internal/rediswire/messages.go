package rediswire

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// EmitterUID is the uid @socket.io/redis-emitter puts in its messages; no
// server ever has it, so every server handles them.
const EmitterUID = "emitter"

// Classic request types (@socket.io/redis-adapter lib/index.ts RequestType).
const (
	ReqSockets              = 0 // legacy, never sent by 8.x
	ReqAllRooms             = 1
	ReqRemoteJoin           = 2
	ReqRemoteLeave          = 3
	ReqRemoteDisconnect     = 4
	ReqRemoteFetch          = 5
	ReqServerSideEmit       = 6
	ReqBroadcast            = 7
	ReqBroadcastClientCount = 8
	ReqBroadcastAck         = 9
)

// Sharded adapter message types (socket.io-adapter cluster-adapter.ts
// MessageType).
const (
	MsgInitialHeartbeat       = 1
	MsgHeartbeat              = 2
	MsgBroadcast              = 3
	MsgSocketsJoin            = 4
	MsgSocketsLeave           = 5
	MsgDisconnectSockets      = 6
	MsgFetchSockets           = 7
	MsgFetchSocketsResponse   = 8
	MsgServerSideEmit         = 9
	MsgServerSideEmitResponse = 10
	MsgBroadcastClientCount   = 11
	MsgBroadcastAck           = 12
	MsgAdapterClose           = 13

	packetTypeEvent = 2
	socketIDLen     = 20
)

// EventPacketType is the Socket.IO EVENT type carried in packet.type.
const EventPacketType = packetTypeEvent

// ---------------------------------------------------------------------------
// Channel names

// ClassicChannels are the channels of one namespace in the classic adapter.
type ClassicChannels struct {
	Broadcast        string // prefix#nsp# (+ room# for one-room broadcasts)
	Pattern          string // prefix#nsp#*
	Request          string // prefix-request#nsp#
	Response         string // prefix-response#nsp#
	SpecificResponse string // prefix-response#nsp#uid#
}

// ClassicNames returns the classic adapter's channels for a namespace.
func ClassicNames(prefix, nsp, uid string) ClassicChannels {
	b := prefix + "#" + nsp + "#"
	resp := prefix + "-response#" + nsp + "#"
	return ClassicChannels{
		Broadcast:        b,
		Pattern:          b + "*",
		Request:          prefix + "-request#" + nsp + "#",
		Response:         resp,
		SpecificResponse: resp + uid + "#",
	}
}

// RoomChannel is the channel of a one-room broadcast: base + room + "#".
func RoomChannel(base, room string) string { return base + room + "#" }

// LooksLikeSocketID is the sharded adapter's test for a private room: any
// 20-character name (sharded-adapter.ts looksLikeASocketId).
func LooksLikeSocketID(room string) bool { return len(room) == socketIDLen }

// ---------------------------------------------------------------------------
// Ids

const uidChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// UID2 returns n characters like the npm uid2 package (adapter uids and
// request ids of the classic adapter).
func UID2(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = uidChars[int(b[i])%len(uidChars)]
	}
	return string(b)
}

// RandomHex returns 2n hex characters (the sharded adapter's uids and
// request ids: randomBytes(8).toString("hex")).
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------------------------
// Options and flags

// Flags are the broadcast flags Node publishes (opts.flags). Unknown keys
// are ignored on receipt.
type Flags struct {
	Volatile   bool
	NoCompress bool          // compress: false
	Timeout    time.Duration // timeout (ms on the wire), for broadcasts with ack
	// Direct ("direct": true, ours; Node ignores it) marks a Socket.Emit
	// routed through the streams adapter for its recovery offset: the
	// delivery filter does not apply to it, live or replayed.
	Direct bool
}

// AppendMsgpack writes the flags as a map: {} when none is set.
func (f Flags) AppendMsgpack(b []byte) []byte {
	n := 0
	if f.Volatile {
		n++
	}
	if f.NoCompress {
		n++
	}
	if f.Timeout > 0 {
		n++
	}
	if f.Direct {
		n++
	}
	b = AppendMapHeader(b, n)
	if f.Volatile {
		b = AppendBool(AppendString(b, "volatile"), true)
	}
	if f.NoCompress {
		b = AppendBool(AppendString(b, "compress"), false)
	}
	if f.Timeout > 0 {
		b = AppendInt(AppendString(b, "timeout"), f.Timeout.Milliseconds())
	}
	if f.Direct {
		b = AppendBool(AppendString(b, "direct"), true)
	}
	return b
}

// AppendJSON writes the flags as a JSON object.
func (f Flags) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	sep := false
	if f.Volatile {
		b = append(b, `"volatile":true`...)
		sep = true
	}
	if f.NoCompress {
		if sep {
			b = append(b, ',')
		}
		b = append(b, `"compress":false`...)
		sep = true
	}
	if f.Timeout > 0 {
		if sep {
			b = append(b, ',')
		}
		b = append(b, `"timeout":`...)
		b = strconv.AppendInt(b, f.Timeout.Milliseconds(), 10)
		sep = true
	}
	if f.Direct {
		if sep {
			b = append(b, ',')
		}
		b = append(b, `"direct":true`...)
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (f Flags) MarshalJSON() ([]byte, error) { return f.AppendJSON(nil), nil }

// UnmarshalJSON reads flags leniently: wrong types count as unset.
func (f *Flags) UnmarshalJSON(b []byte) error {
	*f = Flags{}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	f.Volatile = string(m["volatile"]) == "true"
	f.NoCompress = string(m["compress"]) == "false"
	f.Direct = string(m["direct"]) == "true"
	if t, ok := m["timeout"]; ok {
		var ms float64
		if json.Unmarshal(t, &ms) == nil && ms > 0 && !math.IsInf(ms, 0) && ms < 1e12 {
			f.Timeout = time.Duration(ms * float64(time.Millisecond))
		}
	}
	return nil
}

func (r *Reader) flags() (Flags, error) {
	var f Flags
	if r.IsNil() {
		r.i++
		return f, nil
	}
	n, err := r.MapLen()
	if err != nil {
		// Not a map: ignore it, as Node would ignore odd flags.
		return f, r.Skip()
	}
	for range n {
		k, err := r.StringBytes()
		if err != nil {
			return f, err
		}
		switch string(k) {
		case "volatile":
			f.Volatile, err = r.Bool()
		case "direct":
			f.Direct, err = r.Bool()
		case "compress":
			if c, _ := r.peek(); c == mpFalse {
				f.NoCompress = true
			}
			err = r.Skip()
		case "timeout":
			var ms float64
			var ok bool
			if c, _ := r.peek(); c < 0x80 || c >= 0xe0 || (c >= mpFloat32 && c <= mpInt64) {
				ms, _, ok, err = r.Number()
				_ = ok
				if err == nil && ms > 0 && ms < 1e12 {
					f.Timeout = time.Duration(ms * float64(time.Millisecond))
				}
			} else {
				err = r.Skip()
			}
		default:
			err = r.Skip()
		}
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

// Rooms is a list of room names. It reads numbers as their decimal form
// (Node allows numeric rooms) and null as empty; it writes nil as [].
type Rooms []string

// MarshalJSON implements json.Marshaler.
func (r Rooms) MarshalJSON() ([]byte, error) {
	if r == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]string(r))
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *Rooms) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
			*r = nil
			return nil
		}
		return err
	}
	out := make([]string, 0, len(raw))
	for _, v := range raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out = append(out, s)
			continue
		}
		out = append(out, string(bytes.TrimSpace(v)))
	}
	*r = out
	return nil
}

// Opts are the broadcast options of a message: {rooms, except, flags}.
type Opts struct {
	Rooms  Rooms  `json:"rooms"`
	Except Rooms  `json:"except"`
	Flags  *Flags `json:"flags,omitempty"`
}

// ---------------------------------------------------------------------------
// Classic broadcast envelope: msgpack [uid, packet, opts]

// Broadcast is a decoded broadcast (classic envelope, or the packet and
// options of a broadcast request or cluster message).
type Broadcast struct {
	UID         string
	Nsp         string // packet.nsp, "/" when absent
	Data        []byte // the JSON array ["event", ...args], binary as placeholders
	Attachments [][]byte
	HasID       bool // packet.id present (a packet with an ack id; not expected)
	Rooms       []string
	Except      []string
	Flags       Flags
}

// AppendClassicBroadcast writes the classic adapter's broadcast message:
// msgpack [uid, {type:2, data, nsp}, {rooms, except, flags}]. With
// emitterOrder the options are written in @socket.io/redis-emitter's key
// order (rooms, flags, except).
func AppendClassicBroadcast(dst []byte, uid, nsp string, data []byte, atts [][]byte, rooms, except []string, f Flags, emitterOrder bool) ([]byte, error) {
	dst = AppendArrayHeader(dst, 3)
	dst = AppendString(dst, uid)
	dst = AppendMapHeader(dst, 3)
	dst = AppendInt(AppendString(dst, "type"), packetTypeEvent)
	dst = AppendString(dst, "data")
	var err error
	if dst, err = AppendJSONAsMsgpack(dst, data, atts); err != nil {
		return dst, err
	}
	dst = AppendString(AppendString(dst, "nsp"), nsp)
	dst = AppendMapHeader(dst, 3)
	dst = AppendStringArray(AppendString(dst, "rooms"), rooms)
	if emitterOrder {
		dst = f.AppendMsgpack(AppendString(dst, "flags"))
		dst = AppendStringArray(AppendString(dst, "except"), except)
	} else {
		dst = AppendStringArray(AppendString(dst, "except"), except)
		dst = f.AppendMsgpack(AppendString(dst, "flags"))
	}
	return dst, nil
}

// DecodeClassicBroadcast decodes a classic broadcast message. When its uid
// is skipUID it stops early and reports skipped (a server ignores its own
// broadcasts).
func DecodeClassicBroadcast(src []byte, skipUID string) (b Broadcast, skipped bool, err error) {
	r := Reader{b: src}
	n, err := r.ArrayLen()
	if err != nil {
		return b, false, err
	}
	if n < 2 {
		return b, false, ErrMalformed
	}
	if r.IsNil() {
		r.i++
	} else {
		uid, err := r.StringBytes()
		if err != nil {
			return b, false, err
		}
		if skipUID != "" && string(uid) == skipUID {
			return b, true, nil
		}
		b.UID = string(uid)
	}
	if err := r.packet(&b); err != nil {
		return b, false, err
	}
	if n >= 3 {
		if err := r.opts(&b); err != nil {
			return b, false, err
		}
	}
	return b, false, nil
}

// packet reads {type, data, nsp, id} into b.
func (r *Reader) packet(b *Broadcast) error {
	n, err := r.MapLen()
	if err != nil {
		return err
	}
	for range n {
		k, err := r.StringBytes()
		if err != nil {
			return err
		}
		switch string(k) {
		case "data":
			b.Data, err = r.appendJSON(nil, BinaryAsPlaceholder, &b.Attachments, 0)
		case "nsp":
			if r.IsNil() {
				err = r.Skip()
			} else {
				b.Nsp, err = r.String()
			}
		case "id":
			b.HasID = !r.IsNil()
			err = r.Skip()
		default:
			err = r.Skip()
		}
		if err != nil {
			return err
		}
	}
	if b.Nsp == "" {
		b.Nsp = "/"
	}
	return nil
}

func (r *Reader) opts(b *Broadcast) error {
	if r.IsNil() {
		r.i++
		return nil
	}
	n, err := r.MapLen()
	if err != nil {
		return err
	}
	for range n {
		k, err := r.StringBytes()
		if err != nil {
			return err
		}
		switch string(k) {
		case "rooms":
			b.Rooms, err = r.Strings()
		case "except":
			b.Except, err = r.Strings()
		case "flags":
			b.Flags, err = r.flags()
		default:
			err = r.Skip()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// JSON or msgpack messages

// IsJSON reports whether a message is JSON: Node checks the first byte for
// '{' (0x7b), which no msgpack map starts with.
func IsJSON(payload []byte) bool { return len(payload) > 0 && payload[0] == '{' }

// DecodeMessage returns a request or response as JSON: JSON messages as
// they are (checked for validity), msgpack ones transcoded with binary as
// placeholders indexing attachments.
func DecodeMessage(payload []byte) (js []byte, attachments [][]byte, err error) {
	if IsJSON(payload) {
		if !json.Valid(payload) {
			return nil, nil, ErrMalformed
		}
		return payload, nil, nil
	}
	r := Reader{b: payload}
	js, err = r.appendJSON(make([]byte, 0, len(payload)+len(payload)/2), BinaryAsPlaceholder, &attachments, 0)
	if err != nil {
		return nil, nil, err
	}
	return js, attachments, nil
}

// EncodeMessage returns a message built as JSON (binary as placeholders):
// as JSON when it carries no binary, like Node, else as msgpack with the
// attachments as bin values (Node decodes both). forceMsgpack is for the
// messages Node always sends as msgpack (broadcast with ack and its acks).
func EncodeMessage(js []byte, attachments [][]byte, forceMsgpack bool) ([]byte, error) {
	if len(attachments) == 0 && !forceMsgpack {
		return js, nil
	}
	return AppendJSONAsMsgpack(make([]byte, 0, len(js)+totalLen(attachments)+16), js, attachments)
}

func totalLen(atts [][]byte) int {
	n := 0
	for _, a := range atts {
		n += len(a)
	}
	return n
}

// Packet is a Socket.IO packet inside a JSON message: {type, data, nsp}.
type Packet struct {
	Type int             `json:"type"`
	Data json.RawMessage `json:"data"`
	Nsp  string          `json:"nsp,omitempty"`
	ID   *json.Number    `json:"id,omitempty"`
}

// Request is any classic request or response, decoded from JSON (or
// msgpack transcoded to JSON). Fields absent from a type are zero.
type Request struct {
	UID         string          `json:"uid"`
	RequestID   string          `json:"requestId"`
	Type        *int            `json:"type"`
	Opts        *Opts           `json:"opts"`
	Rooms       json.RawMessage `json:"rooms"` // []string, or the ALL_ROOMS response
	SID         string          `json:"sid"`
	Room        json.RawMessage `json:"room"`
	Close       bool            `json:"close"`
	Data        json.RawMessage `json:"data"`
	Packet      json.RawMessage `json:"packet"`
	Sockets     json.RawMessage `json:"sockets"`
	ClientCount *int            `json:"clientCount"`
}

// TypeOr returns the request type, or def when absent.
func (q *Request) TypeOr(def int) int {
	if q.Type == nil {
		return def
	}
	return *q.Type
}

// ---------------------------------------------------------------------------
// Sharded adapter: ClusterMessage {uid, nsp, type, data}

// ClusterMessage is a message of the sharded adapter.
type ClusterMessage struct {
	UID  string          `json:"uid"`
	Nsp  string          `json:"nsp"`
	Type int             `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
}

// ClusterData is the union of the data shapes of cluster messages.
type ClusterData struct {
	Packet      json.RawMessage `json:"packet"`
	Opts        *Opts           `json:"opts"`
	RequestID   *string         `json:"requestId"`
	Rooms       Rooms           `json:"rooms"`
	Close       bool            `json:"close"`
	Sockets     json.RawMessage `json:"sockets"`
	ClientCount *int            `json:"clientCount"`
}

// AppendClusterMessage writes {"type":t,"data":data,"uid":uid,"nsp":nsp}
// (Node's key order); data is JSON or nil.
func AppendClusterMessage(dst []byte, t int, data []byte, uid, nsp string) []byte {
	dst = append(dst, `{"type":`...)
	dst = strconv.AppendInt(dst, int64(t), 10)
	if data != nil {
		dst = append(dst, `,"data":`...)
		dst = append(dst, data...)
	}
	dst = append(dst, `,"uid":`...)
	dst = AppendJSONString(dst, []byte(uid))
	dst = append(dst, `,"nsp":`...)
	dst = AppendJSONString(dst, []byte(nsp))
	return append(dst, '}')
}

// AppendBroadcastData writes the data of a broadcast cluster message:
// {"packet":{"type":2,"data":...},"requestId":...,"opts":{...}}.
func AppendBroadcastData(dst, data []byte, requestID string, rooms, except []string, f Flags) []byte {
	dst = append(dst, `{"packet":{"type":2,"data":`...)
	dst = append(dst, data...)
	dst = append(dst, '}')
	if requestID != "" {
		dst = append(dst, `,"requestId":`...)
		dst = AppendJSONString(dst, []byte(requestID))
	}
	dst = append(dst, `,"opts":`...)
	dst = AppendOptsJSON(dst, rooms, except, &f)
	return append(dst, '}')
}

// AppendOptsJSON writes {"rooms":[...],"except":[...]} and, with f, "flags".
func AppendOptsJSON(dst []byte, rooms, except []string, f *Flags) []byte {
	dst = append(dst, `{"rooms":`...)
	dst = appendStringsJSON(dst, rooms)
	dst = append(dst, `,"except":`...)
	dst = appendStringsJSON(dst, except)
	if f != nil {
		dst = append(dst, `,"flags":`...)
		dst = f.AppendJSON(dst)
	}
	return append(dst, '}')
}

func appendStringsJSON(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, []byte(s))
	}
	return append(dst, ']')
}

// AppendStringsJSON writes a JSON array of strings.
func AppendStringsJSON(dst []byte, ss []string) []byte { return appendStringsJSON(dst, ss) }

// PublisherUID finds the uid of the server that published a message
// without decoding it, for ordering: a classic broadcast's first element,
// a JSON request's leading "uid" (how Node writes them), a cluster
// message's top-level "uid" (after "data", where Node writes it), or the
// "uid" key of a msgpack map. It returns nil when there is none (the
// emitter's socketsJoin, responses) or the message is malformed; the
// result aliases payload.
func PublisherUID(payload []byte) []byte {
	if len(payload) == 0 {
		return nil
	}
	if payload[0] == '{' {
		const lead = `{"uid":"`
		if bytes.HasPrefix(payload, []byte(lead)) {
			return jsonStringAt(payload, len(lead))
		}
		const mid = `,"uid":"`
		if i := bytes.LastIndex(payload, []byte(mid)); i >= 0 {
			return jsonStringAt(payload, i+len(mid))
		}
		return nil
	}
	r := Reader{b: payload}
	c := payload[0]
	if c&0xf0 == 0x90 || c == mpArray16 || c == mpArray32 {
		if n, err := r.ArrayLen(); err != nil || n == 0 {
			return nil
		}
		uid, err := r.StringBytes()
		if err != nil {
			return nil
		}
		return uid
	}
	n, err := r.MapLen()
	if err != nil {
		return nil
	}
	for range n {
		k, err := r.StringBytes()
		if err != nil {
			return nil
		}
		if string(k) == "uid" {
			uid, err := r.StringBytes()
			if err != nil {
				return nil
			}
			return uid
		}
		if r.Skip() != nil {
			return nil
		}
	}
	return nil
}

// jsonStringAt returns the bytes of a JSON string whose content starts at
// b[i], up to the closing quote (uids have no escapes; one with an escape
// is returned raw, which is fine for ordering).
func jsonStringAt(b []byte, i int) []byte {
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return b[i:j]
		}
	}
	return nil
}
