package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/protocol/eio"
	"github.com/operate/realtime/protocol/sio"
)

// Args are the arguments of a received event or acknowledgement. Each one is
// kept as the raw JSON the client sent, so passing Args on (to Emit, to an
// Ack) reproduces them byte for byte, binary attachments included.
type Args struct {
	raw [][]byte // JSON values; binary ones are {"_placeholder":true,"num":N}
	bin [][]byte // attachments, indexed by placeholder num
}

// Len returns the number of arguments.
func (a Args) Len() int { return len(a.raw) }

// Raw returns argument i as raw JSON (a placeholder object for binary).
func (a Args) Raw(i int) json.RawMessage {
	if i < 0 || i >= len(a.raw) {
		return nil
	}
	return a.raw[i]
}

// Bytes returns argument i when it is binary.
func (a Args) Bytes(i int) ([]byte, bool) {
	if i < 0 || i >= len(a.raw) {
		return nil, false
	}
	n, ok := sio.PlaceholderNum(a.raw[i])
	if !ok || n >= len(a.bin) {
		return nil, false
	}
	return a.bin[n], true
}

// Attachments returns the binary attachments, in placeholder order.
func (a Args) Attachments() [][]byte { return a.bin }

// String returns argument i when it is a JSON string.
func (a Args) String(i int) (string, bool) {
	if i < 0 || i >= len(a.raw) {
		return "", false
	}
	return sio.UnquoteString(a.raw[i])
}

// Decode unmarshals argument i into v. A binary argument decodes into a
// *[]byte.
func (a Args) Decode(i int, v any) error {
	if i < 0 || i >= len(a.raw) {
		return fmt.Errorf("socketio: no argument %d (have %d)", i, len(a.raw))
	}
	if p, ok := v.(*[]byte); ok {
		if b, ok := a.Bytes(i); ok {
			*p = b
			return nil
		}
	}
	return json.Unmarshal(a.raw[i], v)
}

// Values returns the arguments as values to pass to Emit or Ack unchanged.
func (a Args) Values() []any { return []any{a} }

// parseArgs splits a JSON array (already validated by the decoder) into
// arguments, skipping the first skip elements (the event name).
func parseArgs(data []byte, skip int, bin [][]byte) (Args, error) {
	parts, ok := sio.SplitArray(nil, data)
	if !ok || len(parts) < skip {
		return Args{}, errors.New("socketio: payload is not an array")
	}
	return Args{raw: parts[skip:], bin: bin}, nil
}

// Packet is an encoded-once Socket.IO EVENT ready for broadcasting: the JSON
// array ["event", args...] with binary values as placeholders, and the
// attachments. Adapters carry it between nodes.
type Packet struct {
	Data        json.RawMessage
	Attachments [][]byte
	// Offset is the recovery offset appended to Data, if any.
	Offset string

	direct bool // see BroadcastOptions.Direct
	// pos is the packet's position in the adapter's recovery log (zero
	// when it is not logged); positions only grow, so a recovered socket
	// can tell a replayed packet from a later one.
	pos LogPosition
}

// Direct reports whether the packet is a direct emit to one socket
// (Socket.Emit, see BroadcastOptions.Direct), as a delivery filter sees it.
// The mark comes with the packet from the adapter: it is a hint, not a
// proof of where the packet comes from (see Namespace.SetDeliveryFilter).
func (p *Packet) Direct() bool { return p.direct }

// Event returns the packet's event name.
func (p *Packet) Event() string {
	first, ok := sio.FirstElement(p.Data)
	if !ok {
		return ""
	}
	if name, ok := sio.UnquoteString(first); ok {
		return name
	}
	return string(first)
}

// NewPacket encodes an event and its arguments. Arguments are encoded as
// JSON, except: []byte is a binary attachment, json.RawMessage is inserted
// verbatim, and Args (received arguments) are spliced in unchanged.
func NewPacket(event string, args ...any) (*Packet, error) {
	if sio.IsReserved(event) {
		return nil, fmt.Errorf("socketio: %q is a reserved event name", event)
	}
	var e argEncoder
	e.buf = make([]byte, 0, 64)
	e.buf = append(e.buf, '[')
	e.buf = sio.AppendString(e.buf, event)
	for _, a := range args {
		if err := e.arg(a); err != nil {
			return nil, err
		}
	}
	e.buf = append(e.buf, ']')
	return &Packet{Data: e.buf, Attachments: e.bin}, nil
}

// encodeArray encodes args as a JSON array (the payload of an ACK).
func encodeArray(args []any) ([]byte, [][]byte, error) {
	var e argEncoder
	e.buf = append(e.buf, '[')
	for _, a := range args {
		if err := e.arg(a); err != nil {
			return nil, nil, err
		}
	}
	e.buf = append(e.buf, ']')
	return e.buf, e.bin, nil
}

type argEncoder struct {
	buf []byte
	bin [][]byte
}

// sep appends the comma that precedes an element, unless it is the first
// of the array. Each element writes its own, so that spliced Args holding
// no argument leave no stray comma.
func (e *argEncoder) sep() {
	if e.buf[len(e.buf)-1] != '[' {
		e.buf = append(e.buf, ',')
	}
}

func (e *argEncoder) arg(a any) error {
	switch a.(type) {
	case Args, *Args:
	default:
		e.sep()
	}
	switch v := a.(type) {
	case []byte:
		e.buf = sio.AppendPlaceholder(e.buf, len(e.bin))
		e.bin = append(e.bin, v)
	case json.RawMessage:
		if !json.Valid(v) {
			return errors.New("socketio: invalid json.RawMessage argument")
		}
		e.buf = append(e.buf, v...)
	case Args:
		return e.args(v)
	case *Args:
		if v == nil {
			return nil // no arguments to splice
		}
		return e.args(*v)
	case string:
		e.buf = sio.AppendString(e.buf, v)
	default:
		// JSON.stringify does not escape <, > and &; neither do we.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("socketio: encoding argument: %w", err)
		}
		e.buf = append(e.buf, bytes.TrimRight(b.Bytes(), "\n")...)
	}
	return nil
}

// args splices received arguments. Their placeholders are renumbered when
// attachments precede them, which is the only case where bytes change.
func (e *argEncoder) args(a Args) error {
	base := len(e.bin)
	for _, raw := range a.raw {
		e.sep()
		if base == 0 || len(a.bin) == 0 {
			e.buf = append(e.buf, raw...)
			continue
		}
		shifted, err := shiftPlaceholders(raw, base)
		if err != nil {
			return err
		}
		e.buf = append(e.buf, shifted...)
	}
	e.bin = append(e.bin, a.bin...)
	return nil
}

// shiftPlaceholders adds by to the number of every placeholder object in
// raw (an object whose "_placeholder" is true and whose "num" is a number,
// as socket.io-parser recognises them). Every other byte is copied as is:
// key order, number forms and string escapes must survive, or the client
// would not get back what was sent. raw is valid JSON (it passed the
// decoder's validation).
func shiftPlaceholders(raw []byte, by int) ([]byte, error) {
	sh := shifter{src: raw, out: make([]byte, 0, len(raw)+8), by: by}
	i := sh.space(0)
	if i >= len(raw) {
		return nil, errors.New("socketio: empty argument")
	}
	i = sh.value(i)
	sh.space(i)
	return sh.out, nil
}

// shifter copies one JSON value from src to out, renumbering placeholders
// on the way, in a single pass.
type shifter struct {
	src []byte
	out []byte
	by  int
}

// space copies whitespace from i and returns the index after it.
func (sh *shifter) space(i int) int {
	for i < len(sh.src) {
		switch sh.src[i] {
		case ' ', '\t', '\n', '\r':
			sh.out = append(sh.out, sh.src[i])
			i++
		default:
			return i
		}
	}
	return i
}

// value copies the value starting at src[i] and returns the index after it.
func (sh *shifter) value(i int) int {
	switch sh.src[i] {
	case '{':
		return sh.object(i)
	case '[':
		sh.out = append(sh.out, '[')
		i = sh.space(i + 1)
		for sh.src[i] != ']' {
			i = sh.space(sh.value(i))
			if sh.src[i] == ',' {
				sh.out = append(sh.out, ',')
				i = sh.space(i + 1)
			}
		}
		sh.out = append(sh.out, ']')
		return i + 1
	case '"':
		end := jsonStringEnd(sh.src, i)
		sh.out = append(sh.out, sh.src[i:end]...)
		return end
	}
	end := i
	for end < len(sh.src) {
		c := sh.src[end]
		if c == ',' || c == ']' || c == '}' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			break
		}
		end++
	}
	sh.out = append(sh.out, sh.src[i:end]...)
	return end
}

// object copies the object at src[i]; a placeholder is replaced by its
// renumbered form.
func (sh *shifter) object(i int) int {
	start := len(sh.out)
	sh.out = append(sh.out, '{')
	i = sh.space(i + 1)
	placeholder := false
	var num []byte
	for sh.src[i] != '}' {
		keyEnd := jsonStringEnd(sh.src, i)
		key := sh.src[i:keyEnd]
		sh.out = append(sh.out, key...)
		i = sh.space(keyEnd)
		sh.out = append(sh.out, ':') // src[i] is the colon
		i = sh.space(i + 1)
		v := i
		i = sh.value(i)
		switch name, _ := sio.UnquoteString(key); name {
		case "_placeholder":
			placeholder = string(sh.src[v:i]) == "true"
		case "num":
			num = sh.src[v:i]
		}
		i = sh.space(i)
		if sh.src[i] == ',' {
			sh.out = append(sh.out, ',')
			i = sh.space(i + 1)
		}
	}
	sh.out = append(sh.out, '}')
	if placeholder && num != nil {
		if n, err := strconv.ParseFloat(string(num), 64); err == nil {
			sh.out = sio.AppendPlaceholder(sh.out[:start], int(n)+sh.by)
		}
	}
	return i + 1
}

// jsonStringEnd returns the index just past the JSON string at b[i].
func jsonStringEnd(b []byte, i int) int {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// withOffset returns a copy of p whose data has offset appended as the last
// argument: how connection state recovery tells clients their position.
func (p *Packet) withOffset(offset string, pos LogPosition) *Packet {
	d := make([]byte, 0, len(p.Data)+len(offset)+3)
	d = append(d, p.Data[:len(p.Data)-1]...)
	d = append(d, ',')
	d = sio.AppendString(d, offset)
	d = append(d, ']')
	return &Packet{Data: d, Attachments: p.Attachments, Offset: offset, pos: pos}
}

// Logged returns a copy of p as an adapter's recovery log gives it out:
// offset appended to its data as the last argument (where the client reads
// its position), pos its place in the log, and direct set when it was
// emitted to one socket (Socket.Emit, see BroadcastOptions.Direct; the
// delivery filter sees it as Packet.Direct). Adapters that keep a log of their own (the
// Redis streams adapter) build the packets they deliver and replay with
// it; p.Data must be a JSON array.
func (p *Packet) Logged(offset string, pos LogPosition, direct bool) *Packet {
	q := p.withOffset(offset, pos)
	q.direct = direct
	return q
}

// encode builds the Engine.IO packets of a Socket.IO packet of type t
// (Event or Ack; binary types follow from the attachments): the text packet
// and one binary packet per attachment. The result is shared by every
// recipient.
func encode(t sio.Type, nsp string, hasID bool, id uint64, data []byte, bin [][]byte) []*engineio.Packet {
	if len(bin) > 0 {
		switch t {
		case sio.Event:
			t = sio.BinaryEvent
		case sio.Ack:
			t = sio.BinaryAck
		}
	}
	text := engineio.BuildText(eio.Message, 24+len(nsp)+len(data), func(dst []byte) []byte {
		dst = sio.AppendHeader(dst, t, len(bin), nsp, hasID, id)
		return append(dst, data...)
	})
	if len(bin) == 0 {
		return []*engineio.Packet{text}
	}
	out := make([]*engineio.Packet, 0, 1+len(bin))
	out = append(out, text)
	for _, b := range bin {
		out = append(out, engineio.NewBinaryPacket(b))
	}
	return out
}
