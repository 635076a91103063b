// Package wsclient opens Socket.IO connections over a raw WebSocket for the
// load generators and benchmarks: the Engine.IO handshake and a namespace's
// CONNECT, on a wsframe connection that the caller then reads with its own
// buffer, so that thousands of clients in one process cost little. The
// public client is package client.
package wsclient

import (
	"bytes"
	"context"
	"fmt"

	"github.com/operate/realtime/internal/wsframe"
)

// ReadBufferSize is the read buffer of the connections Dial opens.
const ReadBufferSize = 32 << 10

// Options says what DialWith does beyond the main namespace's plain CONNECT.
type Options struct {
	// Query is appended to the handshake URL (without its "&").
	Query string
	// Namespace is the namespace to join; "" or "/" is the main one.
	Namespace string
	// Auth is the CONNECT packet's JSON payload (e.g. {"token":"…"}); nil
	// sends none.
	Auth []byte
	// WaitEvent, when set, makes DialWith return only once an EVENT of that
	// name has arrived after the CONNECT reply (e.g. the gateway's
	// "connected"), so that a caller timing handshakes counts all of the
	// server's work.
	WaitEvent string
}

// Dial opens a Socket.IO connection over WebSocket to addr
// (/socket.io/?EIO=4&transport=websocket&query) and joins the main
// namespace: it reads the Engine.IO open packet, sends the CONNECT, and
// waits for its reply (answering pings meanwhile).
func Dial(ctx context.Context, addr, query string) (*wsframe.Conn, error) {
	return DialWith(ctx, addr, Options{Query: query})
}

// DialWith is Dial with a namespace, a CONNECT payload and an event to wait
// for.
func DialWith(ctx context.Context, addr string, o Options) (*wsframe.Conn, error) {
	url := "ws://" + addr + "/socket.io/?EIO=4&transport=websocket"
	if o.Query != "" {
		url += "&" + o.Query
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
	// Socket.IO packets of a namespace other than "/" carry "<nsp>," after
	// their type.
	var nsp []byte
	if o.Namespace != "" && o.Namespace != "/" {
		nsp = append([]byte(o.Namespace), ',')
	}
	connect := append(append([]byte("40"), nsp...), o.Auth...)
	if err := c.WriteText(connect); err != nil {
		return fail("CONNECT", err)
	}
	connected := append(append([]byte("40"), nsp...), '{')
	refused := append([]byte("44"), nsp...)
	var event []byte
	if o.WaitEvent != "" {
		event = fmt.Appendf(append([]byte("42"), nsp...), "[%q", o.WaitEvent)
	}
	replied := false
	for {
		if p, _, err = c.ReadMessage(p[:0]); err != nil {
			return fail("CONNECT reply", err)
		}
		switch {
		case bytes.HasPrefix(p, connected):
			replied = true
		case replied && event != nil && bytes.HasPrefix(p, event):
			return c, nil
		case string(p) == "2":
			_ = c.WriteText([]byte("3"))
		case bytes.HasPrefix(p, refused):
			return fail("CONNECT", fmt.Errorf("refused: %s", p))
		}
		if replied && event == nil {
			return c, nil
		}
	}
}
