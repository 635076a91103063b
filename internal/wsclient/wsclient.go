// Package wsclient is the client side of Socket.IO over a raw WebSocket,
// as the load generators and benchmarks need it: frames read into the
// caller's buffer and written without a library's per-message machinery,
// so that thousands of clients in one process cost little.
package wsclient

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/gobwas/ws"
)

// Dial opens a Socket.IO connection over WebSocket to addr
// (/socket.io/?EIO=4&transport=websocket&query) and joins the main
// namespace: it reads the Engine.IO open packet, sends the CONNECT, and
// waits for its reply (answering pings meanwhile).
func Dial(ctx context.Context, addr, query string) (net.Conn, *bufio.Reader, error) {
	url := "ws://" + addr + "/socket.io/?EIO=4&transport=websocket"
	if query != "" {
		url += "&" + query
	}
	c, br, _, err := ws.Dial(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	if br == nil {
		br = bufio.NewReaderSize(c, 32<<10)
	}
	fail := func(what string, err error) (net.Conn, *bufio.Reader, error) {
		c.Close()
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	p, err := ReadMessage(br, nil)
	if err != nil {
		return fail("open packet", err)
	}
	if len(p) == 0 || p[0] != '0' {
		return fail("open packet", fmt.Errorf("unexpected %q", p))
	}
	if err := WriteText(c, []byte("40")); err != nil {
		return fail("CONNECT", err)
	}
	for {
		if p, err = ReadMessage(br, p[:0]); err != nil {
			return fail("CONNECT reply", err)
		}
		switch {
		case strings.HasPrefix(string(p), "40{"):
			return c, br, nil
		case string(p) == "2":
			_ = WriteText(c, []byte("3"))
		case strings.HasPrefix(string(p), "44"):
			return fail("CONNECT", fmt.Errorf("refused: %s", p))
		}
	}
}

// WriteText writes a masked text frame, as a client must.
func WriteText(c net.Conn, p []byte) error {
	return ws.WriteFrame(c, ws.MaskFrame(ws.NewTextFrame(p)))
}

// ReadMessage appends the payload of the next data message to dst. Server
// frames are not masked; control frames other than close are skipped, a
// close frame is io.EOF.
func ReadMessage(r *bufio.Reader, dst []byte) ([]byte, error) {
	for {
		var h [10]byte
		if _, err := io.ReadFull(r, h[:2]); err != nil {
			return dst, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		n := int(h[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(r, h[2:4]); err != nil {
				return dst, err
			}
			n = int(binary.BigEndian.Uint16(h[2:4]))
		case 127:
			if _, err := io.ReadFull(r, h[2:10]); err != nil {
				return dst, err
			}
			n = int(binary.BigEndian.Uint64(h[2:10]))
		}
		if h[1]&0x80 != 0 {
			return dst, errors.New("wsclient: masked server frame")
		}
		if op >= 8 { // control frame
			if _, err := r.Discard(n); err != nil {
				return dst, err
			}
			if op == 8 {
				return dst, io.EOF
			}
			continue
		}
		start := len(dst)
		dst = append(dst, make([]byte, n)...)
		if _, err := io.ReadFull(r, dst[start:]); err != nil {
			return dst, err
		}
		if fin {
			return dst, nil
		}
	}
}
