// Package wsframe is the client side of the WebSocket protocol (RFC 6455):
// the opening handshake and the frames. It is the one WebSocket client
// codec of the module, shared by the public Go client (package client), the
// load generators (cmd/realtime-bench, internal/corebench) and the tests
// that speak raw WebSocket. The server side lives in engineio.
//
// It is small on purpose: a message is read into the caller's buffer, a
// frame is written with one Write, and a connection holds no goroutine, so
// that thousands of clients in one process cost little. There is no
// extension support (no permessage-deflate): the client never offers one.
package wsframe

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Opcode is a frame's opcode.
type Opcode byte

// The opcodes of RFC 6455.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xa
)

func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return fmt.Sprintf("opcode(%#x)", byte(op))
}

func (op Opcode) isControl() bool { return op&0x8 != 0 }

// DefaultReadBufferSize is the read buffer of a connection when the Dialer
// does not set one.
const DefaultReadBufferSize = 4 << 10

// ErrProtocol is wrapped by the errors of frames that break RFC 6455.
var ErrProtocol = errors.New("wsframe: protocol error")

// ErrTooBig is returned by ReadMessage for a message over the read limit.
var ErrTooBig = errors.New("wsframe: message too big")

// HandshakeError is a server's refusal of the opening handshake: it
// answered HTTP, but not with 101 Switching Protocols. A client may fall
// back to another transport; a network error is not a HandshakeError.
type HandshakeError struct {
	StatusCode int
	Body       string // the start of the response body
}

func (e *HandshakeError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("wsframe: handshake refused: HTTP %d", e.StatusCode)
	}
	return fmt.Sprintf("wsframe: handshake refused: HTTP %d: %s", e.StatusCode, e.Body)
}

// Dialer opens WebSocket connections. The zero value dials with a
// net.Dialer and no extra headers.
type Dialer struct {
	// NetDial opens the TCP connection (e.g. from a chosen source address).
	// Nil means a net.Dialer.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig is used for wss:// URLs. Nil means the defaults, with the
	// URL's host as the server name.
	TLSConfig *tls.Config
	// Header holds extra request headers (Authorization, Cookie, ...).
	Header http.Header
	// ReadBufferSize is the size of the connection's read buffer. Zero means
	// DefaultReadBufferSize.
	ReadBufferSize int
}

// Dial opens a WebSocket to rawURL (ws:// or wss://; http:// and https://
// are accepted as their WebSocket equivalents). ctx bounds the whole
// handshake; the connection outlives it.
func (d *Dialer) Dial(ctx context.Context, rawURL string) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("wsframe: %w", err)
	}
	secure := false
	switch u.Scheme {
	case "ws", "http":
	case "wss", "https":
		secure = true
	default:
		return nil, fmt.Errorf("wsframe: unsupported URL scheme %q", u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		if secure {
			addr = net.JoinHostPort(u.Hostname(), "443")
		} else {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	netDial := d.NetDial
	if netDial == nil {
		var nd net.Dialer
		netDial = nd.DialContext
	}
	nc, err := netDial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("wsframe: dial %s: %w", addr, err)
	}
	// The handshake obeys ctx: when it ends (deadline or cancellation), a
	// deadline in the past fails the read or write in progress.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	if secure {
		cfg := d.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			stop()
			nc.Close()
			return nil, fmt.Errorf("wsframe: TLS handshake with %s: %w", addr, err)
		}
		nc = tc
	}
	size := d.ReadBufferSize
	if size <= 0 {
		size = DefaultReadBufferSize
	}
	br := bufio.NewReaderSize(nc, size)
	err = handshake(nc, br, u, d.Header)
	if !stop() || ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return &Conn{nc: nc, br: br}, nil
}

// acceptGUID is the constant of RFC 6455 section 1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func handshake(nc net.Conn, br *bufio.Reader, u *url.URL, header http.Header) error {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])

	var b strings.Builder
	b.WriteString("GET ")
	b.WriteString(u.RequestURI())
	b.WriteString(" HTTP/1.1\r\nHost: ")
	b.WriteString(u.Host)
	b.WriteString("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ")
	b.WriteString(key)
	b.WriteString("\r\n")
	for name, values := range header {
		switch http.CanonicalHeaderKey(name) {
		case "Host", "Upgrade", "Connection", "Sec-Websocket-Version", "Sec-Websocket-Key", "Sec-Websocket-Extensions":
			continue // ours to set
		}
		for _, v := range values {
			if strings.ContainsAny(name+v, "\r\n") {
				return fmt.Errorf("wsframe: header %q holds a line break", name)
			}
			b.WriteString(name)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteString("\r\n")
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(nc, b.String()); err != nil {
		return fmt.Errorf("wsframe: sending the handshake: %w", err)
	}

	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return fmt.Errorf("wsframe: reading the handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return &HandshakeError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	sum := sha1.Sum([]byte(key + acceptGUID))
	switch {
	case !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"):
		return fmt.Errorf("%w: handshake response without Upgrade: websocket", ErrProtocol)
	case !headerHasToken(resp.Header, "Connection", "upgrade"):
		return fmt.Errorf("%w: handshake response without Connection: Upgrade", ErrProtocol)
	case resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		return fmt.Errorf("%w: wrong Sec-WebSocket-Accept", ErrProtocol)
	case resp.Header.Get("Sec-WebSocket-Extensions") != "":
		return fmt.Errorf("%w: the server chose an extension the client did not offer", ErrProtocol)
	}
	return nil
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Conn is an open client WebSocket. ReadMessage must be called from one
// goroutine at a time; writes may come from any goroutine (they are
// serialized), also while a read is in progress.
type Conn struct {
	nc net.Conn
	br *bufio.Reader

	// ReadLimit is the largest message ReadMessage accepts; zero means no
	// limit. Set it before the first read.
	ReadLimit int64

	wmu    sync.Mutex
	wbuf   []byte
	closed bool // a close frame was written
}

// NetConn returns the underlying connection, for deadlines and addresses.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection without a closing handshake.
func (c *Conn) Close() error { return c.nc.Close() }

// CloseNormal sends a close frame (1000, normal closure), when none was
// sent yet, and closes the connection.
func (c *Conn) CloseNormal() error {
	_ = c.writeClose(1000)
	return c.nc.Close()
}

// WriteText writes one masked text frame.
func (c *Conn) WriteText(p []byte) error { return c.WriteMessage(OpText, p) }

// WriteBinary writes one masked binary frame.
func (c *Conn) WriteBinary(p []byte) error { return c.WriteMessage(OpBinary, p) }

// WriteMessage writes p as one frame of opcode op, masked as a client must.
func (c *Conn) WriteMessage(op Opcode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if op == OpClose {
		c.closed = true
	}
	return c.writeLocked(op, p)
}

func (c *Conn) writeLocked(op Opcode, p []byte) error {
	c.wbuf = AppendFrame(c.wbuf[:0], op, p)
	_, err := c.nc.Write(c.wbuf)
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil // do not keep a large message's buffer for an idle connection
	}
	return err
}

func (c *Conn) writeClose(code uint16) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], code)
	return c.writeLocked(OpClose, p[:])
}

// AppendFrame appends a final, masked client frame holding p, with a
// random masking key.
func AppendFrame(dst []byte, op Opcode, p []byte) []byte {
	var key [4]byte
	_, _ = rand.Read(key[:])
	dst = append(dst, 0x80|byte(op))
	switch n := len(p); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, p...)
	Mask(dst[start:], key)
	return dst
}

// Mask XORs b with the masking key (RFC 6455 section 5.3), in place;
// applying it twice restores b.
func Mask(b []byte, key [4]byte) {
	k32 := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k32)<<32 | uint64(k32)
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= key[i&3]
	}
}

// ReadMessage appends the payload of the next data message (its fragments
// joined) to dst and returns it with its opcode, OpText or OpBinary. Pings
// are answered and pongs skipped meanwhile; a close frame is answered and
// returned as io.EOF.
func (c *Conn) ReadMessage(dst []byte) ([]byte, Opcode, error) {
	var (
		msgOp Opcode // the opcode of the message being assembled; 0 before its first frame
		start = len(dst)
	)
	for {
		var h [10]byte
		if _, err := io.ReadFull(c.br, h[:2]); err != nil {
			return dst, 0, err
		}
		fin, op := h[0]&0x80 != 0, Opcode(h[0]&0x0f)
		if h[0]&0x70 != 0 {
			return dst, 0, fmt.Errorf("%w: reserved bits set", ErrProtocol)
		}
		if h[1]&0x80 != 0 {
			return dst, 0, fmt.Errorf("%w: masked server frame", ErrProtocol)
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, h[2:4]); err != nil {
				return dst, 0, err
			}
			n = uint64(binary.BigEndian.Uint16(h[2:4]))
		case 127:
			if _, err := io.ReadFull(c.br, h[2:10]); err != nil {
				return dst, 0, err
			}
			n = binary.BigEndian.Uint64(h[2:10])
			if n > 1<<62 {
				return dst, 0, fmt.Errorf("%w: frame length %d", ErrProtocol, n)
			}
		}
		if op.isControl() {
			if !fin || n > 125 {
				return dst, 0, fmt.Errorf("%w: fragmented or long control frame", ErrProtocol)
			}
			var p [125]byte
			if _, err := io.ReadFull(c.br, p[:n]); err != nil {
				return dst, 0, err
			}
			switch op {
			case OpPing:
				c.wmu.Lock()
				err := c.writeLocked(OpPong, p[:n])
				c.wmu.Unlock()
				if err != nil {
					return dst, 0, err
				}
			case OpClose:
				_ = c.writeClose(1000)
				return dst, 0, io.EOF
			case OpPong:
			default:
				return dst, 0, fmt.Errorf("%w: unknown opcode %v", ErrProtocol, op)
			}
			continue
		}
		switch {
		case op == OpContinuation && msgOp == 0:
			return dst, 0, fmt.Errorf("%w: continuation frame without a message", ErrProtocol)
		case op != OpContinuation && msgOp != 0:
			return dst, 0, fmt.Errorf("%w: new message inside a fragmented one", ErrProtocol)
		case op != OpContinuation && op != OpText && op != OpBinary:
			return dst, 0, fmt.Errorf("%w: unknown opcode %v", ErrProtocol, op)
		case op != OpContinuation:
			msgOp = op
		}
		if c.ReadLimit > 0 && uint64(len(dst)-start)+n > uint64(c.ReadLimit) {
			return dst, 0, ErrTooBig
		}
		dst = grow(dst, int(n))
		if _, err := io.ReadFull(c.br, dst[len(dst)-int(n):]); err != nil {
			return dst, 0, err
		}
		if fin {
			return dst, msgOp, nil
		}
	}
}

// grow extends b by n bytes, reusing its capacity when it can.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	return append(b, make([]byte, n)...)
}
