// Package sio implements the Socket.IO v5 packet encoding, behaving like
// socket.io-parser 4.2 (the default parser of socket.io 4.x), including the
// lenient parts that the official conformance suite relies on: a namespace may
// end at the end of the string ("40/custom"), an empty attachment count means
// zero, and numeric event names are accepted.
//
// Payloads stay raw JSON: the codec validates them as Node does but never
// re-encodes them, so event arguments round-trip byte for byte. Binary
// attachments are left as {"_placeholder":true,"num":N} objects in the JSON and
// carried beside it.
//
// Functions are pure; decoded slices alias the input.
package sio

import (
	"errors"
	"strconv"
)

// Type is a Socket.IO packet type.
type Type byte

// Packet types of Socket.IO v5.
const (
	Connect      Type = 0
	Disconnect   Type = 1
	Event        Type = 2
	Ack          Type = 3
	ConnectError Type = 4
	BinaryEvent  Type = 5
	BinaryAck    Type = 6
)

var typeNames = [...]string{"CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "TYPE(" + strconv.Itoa(int(t)) + ")"
}

// IsBinary reports whether packets of this type are followed by attachments.
func (t Type) IsBinary() bool { return t == BinaryEvent || t == BinaryAck }

// DefaultMaxAttachments is socket.io-parser's default limit.
const DefaultMaxAttachments = 10

// Decoding errors. Any of them makes Node's server close the connection.
var (
	ErrUnknownType        = errors.New("sio: unknown packet type")
	ErrIllegalAttachments = errors.New("sio: illegal attachments")
	ErrTooManyAttachments = errors.New("sio: too many attachments")
	ErrInvalidPayload     = errors.New("sio: invalid payload")
	ErrInvalidID          = errors.New("sio: invalid ack id")
)

// reservedEvents may not be sent by a peer (socket.io-parser RESERVED_EVENTS).
var reservedEvents = [...]string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}

// IsReserved reports whether an event name is reserved by Socket.IO.
func IsReserved(name string) bool {
	for _, r := range reservedEvents {
		if name == r {
			return true
		}
	}
	return false
}

// Packet is a decoded Socket.IO packet header plus its raw JSON payload.
type Packet struct {
	Type        Type
	Attachments int    // binary types only
	Namespace   string // "/" when absent
	HasID       bool
	ID          uint64
	Data        []byte // raw JSON, nil when absent
}

// Decode decodes the text part of a packet. For binary types the caller then
// collects Attachments binary messages before the packet is complete.
func Decode(s []byte, maxAttachments int) (Packet, error) {
	if maxAttachments <= 0 {
		maxAttachments = DefaultMaxAttachments
	}
	var p Packet
	if len(s) == 0 || s[0] < '0' || s[0] > '6' {
		return p, ErrUnknownType
	}
	p.Type = Type(s[0] - '0')
	i := 1
	if p.Type.IsBinary() {
		j := i
		for j < len(s) && s[j] != '-' {
			j++
		}
		if j == len(s) {
			return p, ErrIllegalAttachments
		}
		n := 0
		for _, c := range s[i:j] {
			if c < '0' || c > '9' {
				return p, ErrIllegalAttachments
			}
			n = n*10 + int(c-'0')
			if n > maxAttachments {
				return p, ErrTooManyAttachments
			}
		}
		p.Attachments = n
		i = j + 1
	}
	p.Namespace = "/"
	if i < len(s) && s[i] == '/' {
		j := i
		for j < len(s) && s[j] != ',' {
			j++
		}
		p.Namespace = string(s[i:j])
		i = j
		if i < len(s) {
			i++ // the comma
		}
	}
	if i < len(s) && isDigit(s[i]) {
		j := i
		var id uint64
		for j < len(s) && isDigit(s[j]) {
			d := uint64(s[j] - '0')
			if id > (1<<53-d)/10 {
				// Beyond what a JavaScript number holds exactly; such an id
				// could never be acknowledged correctly.
				return p, ErrInvalidID
			}
			id = id*10 + d
			j++
		}
		p.HasID, p.ID = true, id
		i = j
	}
	if i < len(s) {
		p.Data = s[i:]
		if !payloadValid(p.Type, p.Data) {
			return p, ErrInvalidPayload
		}
	}
	return p, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// payloadValid mirrors socket.io-parser's Decoder.isPayloadValid.
func payloadValid(t Type, data []byte) bool {
	kind, ok := jsonKind(data)
	if !ok {
		return false
	}
	switch t {
	case Connect:
		return kind == '{'
	case Disconnect:
		return false // a DISCONNECT carries no payload
	case ConnectError:
		return kind == '{' || kind == '"'
	case Event, BinaryEvent:
		if kind != '[' {
			return false
		}
		first, ok := FirstElement(data)
		if !ok {
			return false
		}
		switch k, _ := jsonKind(first); k {
		case '0':
			return true
		case '"':
			name, ok := UnquoteString(first)
			return ok && !IsReserved(name)
		}
		return false
	case Ack, BinaryAck:
		return kind == '['
	}
	return false
}

// AppendHeader appends the encoded header of a packet: type, attachment count
// for binary types, namespace unless "/", and ack id. The JSON payload follows.
func AppendHeader(dst []byte, t Type, attachments int, nsp string, hasID bool, id uint64) []byte {
	dst = append(dst, '0'+byte(t))
	if t.IsBinary() {
		dst = strconv.AppendInt(dst, int64(attachments), 10)
		dst = append(dst, '-')
	}
	if nsp != "" && nsp != "/" {
		dst = append(dst, nsp...)
		dst = append(dst, ',')
	}
	if hasID {
		dst = strconv.AppendUint(dst, id, 10)
	}
	return dst
}
