package engineio

import (
	"encoding/binary"
	"sync"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/operate/realtime/protocol/eio"
)

// parse handles every complete frame in rbuf.
func (c *wsConn) parse() error {
	maxPayload := int64(c.srv.opts.MaxPayload)
	for {
		b := c.rbuf[c.r:c.w]
		if len(b) < 2 {
			break
		}
		fin := b[0]&0x80 != 0
		rsv := b[0] & 0x70
		op := b[0] & 0x0f
		masked := b[1]&0x80 != 0
		n := int64(b[1] & 0x7f)
		hl := 2
		switch n {
		case 126:
			hl += 2
		case 127:
			hl += 8
		}
		if masked {
			hl += 4
		}
		if len(b) < hl {
			break
		}
		switch n {
		case 126:
			n = int64(binary.BigEndian.Uint16(b[2:4]))
		case 127:
			n = int64(binary.BigEndian.Uint64(b[2:10]))
		}
		if !masked {
			return &wsError{closeProtocolError, ReasonTransportError, "unmasked client frame"}
		}
		isControl := op&0x8 != 0
		if isControl && (!fin || n > 125) {
			return &wsError{closeProtocolError, ReasonTransportError, "invalid control frame"}
		}
		compressed := rsv == 0x40 && c.deflate && (op == opText || op == opBinary)
		if rsv != 0 && !compressed {
			return &wsError{closeProtocolError, ReasonTransportError, "reserved bits set"}
		}
		if n < 0 || n+int64(len(c.msg)) > maxPayload {
			return &wsError{closeTooBig, ReasonTransportError, "message too big"}
		}
		total := hl + int(n)
		if len(b) < total {
			if total > len(c.rbuf)-c.r {
				c.grow(total)
			}
			break
		}
		var mask [4]byte
		copy(mask[:], b[hl-4:hl])
		payload := b[hl:total]
		ws.Cipher(payload, mask, 0)
		c.r += total
		if err := c.frame(op, fin, compressed, payload); err != nil {
			return err
		}
	}
	if c.r == c.w && c.rbuf != nil {
		c.releaseBuf()
	}
	return nil
}

// frame handles one unmasked frame.
func (c *wsConn) frame(op byte, fin, compressed bool, payload []byte) error {
	switch op {
	case 0x0: // continuation
		if !c.inMsg {
			return &wsError{closeProtocolError, ReasonTransportError, "unexpected continuation frame"}
		}
		c.msg = append(c.msg, payload...)
		if !fin {
			return nil
		}
		c.inMsg = false
		err := c.message(c.msgOp, c.msgDefl, c.msg)
		c.msg = nil
		return err
	case opText, opBinary:
		if c.inMsg {
			return &wsError{closeProtocolError, ReasonTransportError, "expected continuation frame"}
		}
		if fin {
			return c.message(op, compressed, payload)
		}
		c.inMsg, c.msgOp, c.msgDefl = true, op, compressed
		c.msg = append([]byte(nil), payload...)
		return nil
	case opClose:
		return errPeerClosed
	case opPing:
		return c.writeDirect(controlFrame(opPong, payload).frame)
	case opPong:
		return nil
	}
	return &wsError{closeProtocolError, ReasonTransportError, "unknown opcode"}
}

// message handles one complete WebSocket message: one Engine.IO packet.
func (c *wsConn) message(op byte, compressed bool, data []byte) error {
	if compressed {
		var err error
		if data, err = inflate(data, c.srv.opts.MaxPayload); err != nil {
			return &wsError{closeTooBig, ReasonTransportError, err.Error()}
		}
	}
	var p eio.Packet
	if op == opBinary {
		p = eio.Packet{Type: eio.Message, Data: data, Binary: true}
	} else {
		if !utf8.Valid(data) {
			return &wsError{closeInvalidData, ReasonTransportError, "invalid UTF-8 in text frame"}
		}
		var err error
		if p, err = eio.DecodeText(data); err != nil {
			return &wsError{closeNormal, ReasonParseError, "invalid packet"}
		}
	}
	if c.probing {
		return c.probePacket(p)
	}
	if p.Type != eio.Message || c.polled {
		// A polled connection is read by a short-lived goroutine already.
		c.sess.dispatch(p)
		return nil
	}
	// Handlers may run deep (decoding, application code). Running them on a
	// short-lived goroutine keeps a long-lived reader's stack at its
	// minimum (2 KiB instead of 4 KiB or more). Inbound messages are rare
	// next to deliveries, so the goroutine start is cheap where it matters.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.sess.dispatch(p)
	}()
	wg.Wait()
	return nil
}
