// Package wsclient opens Socket.IO connections over a raw WebSocket for the
// load generators and benchmarks: the Engine.IO handshake and the main
// namespace's CONNECT, on a wsframe connection that the caller then reads
// with its own buffer, so that thousands of clients in one process cost
// little. The public client is package client.
package wsclient

import (
	"context"
	"fmt"
	"strings"

	"github.com/operate/realtime/internal/wsframe"
)

// ReadBufferSize is the read buffer of the connections Dial opens.
const ReadBufferSize = 32 << 10

// Dial opens a Socket.IO connection over WebSocket to addr
// (/socket.io/?EIO=4&transport=websocket&query) and joins the main
// namespace: it reads the Engine.IO open packet, sends the CONNECT, and
// waits for its reply (answering pings meanwhile).
func Dial(ctx context.Context, addr, query string) (*wsframe.Conn, error) {
	url := "ws://" + addr + "/socket.io/?EIO=4&transport=websocket"
	if query != "" {
		url += "&" + query
	}
	c, err := (&wsframe.Dialer{ReadBufferSize: ReadBufferSize}).Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	fail := func(what string, err error) (*wsframe.Conn, error) {
		c.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	p, _, err := c.ReadMessage(nil)
	if err != nil {
		return fail("open packet", err)
	}
	if len(p) == 0 || p[0] != '0' {
		return fail("open packet", fmt.Errorf("unexpected %q", p))
	}
	if err := c.WriteText([]byte("40")); err != nil {
		return fail("CONNECT", err)
	}
	for {
		if p, _, err = c.ReadMessage(p[:0]); err != nil {
			return fail("CONNECT reply", err)
		}
		switch {
		case strings.HasPrefix(string(p), "40{"):
			return c, nil
		case string(p) == "2":
			_ = c.WriteText([]byte("3"))
		case strings.HasPrefix(string(p), "44"):
			return fail("CONNECT", fmt.Errorf("refused: %s", p))
		}
	}
}
