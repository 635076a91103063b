package engineio

import (
	"encoding/binary"
	"sync"

	"github.com/operate/realtime/protocol/eio"
)

// Packet is an encoded Engine.IO packet ready to be written. It is immutable
// once built, so one Packet is shared by every session a broadcast reaches:
// the WebSocket frame is built once, and each session's queue only holds a
// pointer to it.
type Packet struct {
	// frame is a complete server-to-client WebSocket frame (unmasked): the
	// header then the payload. The payload, frame[off:], is also the packet's
	// long-polling text form for text packets.
	frame      []byte
	off        int
	binary     bool
	noCompress bool

	// pollOnce guards polling, the "b"+base64 form of a binary packet, built
	// on first use because most binary packets only ever go to WebSockets.
	pollOnce sync.Once
	polling  []byte

	// deflate caches the permessage-deflate frame (see compress.go).
	deflateOnce sync.Once
	deflated    []byte
}

// maxFrameHeader is the largest server frame header: 2 bytes plus an 8-byte
// extended length (servers never mask).
const maxFrameHeader = 10

const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// NewPacket builds a text packet of the given type: "<type><data>".
func NewPacket(t eio.Type, data []byte) *Packet {
	return BuildText(t, len(data), func(dst []byte) []byte { return append(dst, data...) })
}

// BuildText builds a text packet whose data is appended by fill, with one
// allocation when sizeHint is large enough. The frame header is written into
// reserved space in front of the payload once its length is known, so the
// encoded bytes are never copied.
func BuildText(t eio.Type, sizeHint int, fill func(dst []byte) []byte) *Packet {
	buf := make([]byte, maxFrameHeader, maxFrameHeader+1+sizeHint)
	buf = append(buf, '0'+byte(t))
	buf = fill(buf)
	return finishFrame(buf, opText, false)
}

// NewBinaryPacket builds a binary message packet (a WebSocket binary frame
// holding data; "b"+base64 over long-polling). data is copied.
func NewBinaryPacket(data []byte) *Packet {
	buf := make([]byte, maxFrameHeader, maxFrameHeader+len(data))
	buf = append(buf, data...)
	return finishFrame(buf, opBinary, true)
}

// finishFrame writes the frame header right-aligned in the reserved space.
func finishFrame(buf []byte, op byte, bin bool) *Packet {
	n := len(buf) - maxFrameHeader
	h := headerSize(n)
	off := maxFrameHeader - h
	putHeader(buf[off:maxFrameHeader], op, n)
	return &Packet{frame: buf[off:], off: h, binary: bin}
}

func headerSize(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	default:
		return 10
	}
}

// putHeader writes a FIN frame header for a payload of n bytes into h, which
// is exactly headerSize(n) long. See RFC 6455 section 5.2.
func putHeader(h []byte, op byte, n int) {
	h[0] = 0x80 | op
	switch len(h) {
	case 2:
		h[1] = byte(n)
	case 4:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
}

// controlFrame builds a WebSocket control frame (ping, pong, close).
func controlFrame(op byte, payload []byte) *Packet {
	buf := make([]byte, 0, 2+len(payload))
	buf = append(buf, 0x80|op, byte(len(payload)))
	buf = append(buf, payload...)
	return &Packet{frame: buf, off: 2, binary: true}
}

// SetNoCompress excludes the packet from permessage-deflate, and from the
// HTTP compression of a polling response unless another packet of that
// response allows it (as Node decides). Call it before sending the packet.
func (p *Packet) SetNoCompress() { p.noCompress = true }

// Binary reports whether p is a binary message.
func (p *Packet) Binary() bool { return p.binary }

// Data returns the packet's Engine.IO encoding: "<type><data>" for a text
// packet, the raw bytes for a binary message.
func (p *Packet) Data() []byte { return p.frame[p.off:] }

// Len is the number of bytes the packet occupies in a session queue.
func (p *Packet) Len() int { return len(p.frame) }

// appendPolling appends the packet's long-polling form.
func (p *Packet) appendPolling(dst []byte) []byte {
	if !p.binary {
		return append(dst, p.frame[p.off:]...)
	}
	p.pollOnce.Do(func() { p.polling = eio.AppendPayloadBinary(nil, p.frame[p.off:]) })
	return append(dst, p.polling...)
}

// pollingLen is the size of the packet's long-polling form.
func (p *Packet) pollingLen() int {
	n := len(p.frame) - p.off
	if p.binary {
		return 1 + (n+2)/3*4
	}
	return n
}
