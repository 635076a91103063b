// Package eio implements the Engine.IO v4 packet and payload encoding:
// the text form of a packet ("<type digit><data>"), the long-polling payload
// (packets joined by the record separator 0x1e, binary packets as "b" plus
// base64) and the WebSocket form (one packet per frame, a binary frame being a
// message packet without type byte).
//
// The functions here are pure and allocation-conscious: decoding returns
// slices into the input, so callers that keep data must copy it.
//
// Reference: https://github.com/socketio/engine.io-protocol (v4) and
// docs/protocol notes in this repository.
package eio

import (
	"encoding/base64"
	"errors"
	"fmt"
)

// Type is an Engine.IO packet type.
type Type byte

// Packet types of Engine.IO v4.
const (
	Open    Type = 0
	Close   Type = 1
	Ping    Type = 2
	Pong    Type = 3
	Message Type = 4
	Upgrade Type = 5
	Noop    Type = 6
)

var typeNames = [...]string{"open", "close", "ping", "pong", "message", "upgrade", "noop"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// Separator joins packets in a long-polling payload.
const Separator = 0x1e

// ErrInvalidPacket is returned for input that is not an Engine.IO packet.
// Node's parser turns such input into an "error" packet and the server closes
// the session with "parse error"; callers do the same.
var ErrInvalidPacket = errors.New("eio: invalid packet")

// Packet is a decoded packet. Data aliases the input buffer.
type Packet struct {
	Type   Type
	Data   []byte
	Binary bool // a binary message (WebSocket binary frame or "b" payload entry)
}

// DecodeText decodes the text form "<type digit><data>".
func DecodeText(b []byte) (Packet, error) {
	if len(b) == 0 || b[0] < '0' || b[0] > '6' {
		return Packet{}, ErrInvalidPacket
	}
	return Packet{Type: Type(b[0] - '0'), Data: b[1:]}, nil
}

// DecodePayload splits a long-polling payload and calls fn for each packet in
// order. Like Node's parser it stops at the first invalid packet and reports
// ErrInvalidPacket after delivering the valid ones before it. Binary packets
// ("b" + base64) are decoded into a fresh buffer; text packets alias body.
func DecodePayload(body []byte, fn func(Packet) error) error {
	for done := false; !done; {
		part := body
		if i := indexByte(body, Separator); i >= 0 {
			part, body = body[:i], body[i+1:]
		} else {
			done = true
		}
		if len(part) == 0 {
			// engine.io-parser 5.2 treats an empty record as a parse error.
			// Clients never send one; skipping it is the lenient choice and
			// loses nothing.
			continue
		}
		p, err := decodePayloadPart(part)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

func decodePayloadPart(part []byte) (Packet, error) {
	if len(part) > 0 && part[0] == 'b' {
		buf := make([]byte, base64.StdEncoding.DecodedLen(len(part)-1))
		n, err := base64.StdEncoding.Decode(buf, part[1:])
		if err != nil {
			return Packet{}, ErrInvalidPacket
		}
		return Packet{Type: Message, Data: buf[:n], Binary: true}, nil
	}
	return DecodeText(part)
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// AppendText appends the text form of a packet.
func AppendText(dst []byte, t Type, data []byte) []byte {
	dst = append(dst, '0'+byte(t))
	return append(dst, data...)
}

// AppendPayloadBinary appends a binary message in its long-polling form,
// "b" followed by standard base64.
func AppendPayloadBinary(dst []byte, data []byte) []byte {
	dst = append(dst, 'b')
	return base64.StdEncoding.AppendEncode(dst, data)
}
