package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gobwas/ws"

	"github.com/operate/realtime/internal/wsclient"
)

const handshakeTimeout = 30 * time.Second

// readBufferSize is each connection's read buffer: large enough that a
// burst of merged frames is read with few system calls.
const readBufferSize = 8 << 10

var errRefused = errors.New("connect_error")

// runWS is a Socket.IO client over WebSocket (EIO=4&transport=websocket,
// no polling first: what socket.io-client does with transports:
// ["websocket"]).
func (w *worker) runWS(cl *client, connected func()) error {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	d := ws.Dialer{
		Timeout:        handshakeTimeout,
		ReadBufferSize: readBufferSize,
		NetDial: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dial(ctx, cl.src, addr)
		},
	}
	c, br, _, err := d.Dial(ctx, "ws://"+cl.target+"/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		return fmt.Errorf("websocket: %w", err)
	}
	r := br
	if r == nil {
		r = bufio.NewReaderSize(c, readBufferSize)
	}
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	var buf []byte
	// Engine.IO open packet.
	if buf, err = wsclient.ReadMessage(r, buf[:0]); err != nil {
		c.Close()
		return fmt.Errorf("open packet: %w", err)
	}
	if len(buf) == 0 || buf[0] != '0' {
		c.Close()
		return fmt.Errorf("open packet: %q", buf)
	}
	if err := wsclient.WriteText(c, cl.connect); err != nil {
		c.Close()
		return fmt.Errorf("CONNECT: %w", err)
	}
	for {
		if buf, err = wsclient.ReadMessage(r, buf[:0]); err != nil {
			c.Close()
			return fmt.Errorf("CONNECT reply: %w", err)
		}
		switch w.handle(cl, buf) {
		case pktPing:
			_ = wsclient.WriteText(c, pong)
			continue
		case pktConnectError:
			c.Close()
			return fmt.Errorf("%w: %s", errRefused, buf)
		case pktClose:
			c.Close()
			return errors.New("closed during handshake")
		case pktConnected:
		default:
			continue
		}
		break
	}
	_ = c.SetDeadline(time.Time{})
	if !w.attach(cl, c) {
		c.Close()
		return errors.New("dropped during handshake")
	}
	connected()
	defer w.detach(cl, c)
	for {
		if buf, err = wsclient.ReadMessage(r, buf[:0]); err != nil {
			return nil
		}
		switch w.handle(cl, buf) {
		case pktPing:
			if wsclient.WriteText(c, pong) != nil {
				return nil
			}
		case pktClose:
			return nil
		}
		if cap(buf) > 64<<10 {
			buf = nil // do not keep a burst's buffer for an idle connection
		}
	}
}

var pong = []byte("3")

// runPolling is a Socket.IO client over HTTP long-polling that never
// upgrades (transports: ["polling"]). It keeps one keep-alive connection and
// issues its requests one after the other: the long-poll GET, then the pong
// POST when the GET brought a ping.
func (w *worker) runPolling(cl *client, connected func()) error {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	c, err := dial(ctx, cl.src, cl.target)
	cancel()
	if err != nil {
		return fmt.Errorf("polling: %w", err)
	}
	p := &poller{c: c, r: bufio.NewReaderSize(c, readBufferSize), host: cl.target}
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	base := "/socket.io/?EIO=4&transport=polling"
	body, err := p.do("GET", base, nil)
	if err != nil || len(body) == 0 || body[0] != '0' {
		c.Close()
		return fmt.Errorf("polling handshake: %q %v", body, err)
	}
	var open struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(body[1:], &open); err != nil || open.SID == "" {
		c.Close()
		return fmt.Errorf("polling handshake: %q", body)
	}
	url := base + "&sid=" + open.SID
	if _, err := p.do("POST", url, cl.connect); err != nil {
		c.Close()
		return fmt.Errorf("polling CONNECT: %w", err)
	}
	attached := false
	defer func() {
		if attached {
			w.detach(cl, c)
		} else {
			c.Close()
		}
	}()
	for {
		body, err := p.do("GET", url, nil)
		if err != nil {
			if !attached {
				return fmt.Errorf("polling GET: %w", err)
			}
			return nil
		}
		ping := false
		for len(body) > 0 {
			pkt := body
			if i := bytes.IndexByte(body, 0x1e); i >= 0 {
				pkt, body = body[:i], body[i+1:]
			} else {
				body = nil
			}
			switch w.handle(cl, pkt) {
			case pktPing:
				ping = true
			case pktClose:
				if !attached {
					return errors.New("closed during handshake")
				}
				return nil
			case pktConnectError:
				return fmt.Errorf("%w: %s", errRefused, pkt)
			case pktConnected:
				if !attached {
					_ = c.SetDeadline(time.Time{})
					if !w.attach(cl, c) {
						return errors.New("dropped during handshake")
					}
					attached = true
					connected()
				}
			}
		}
		if ping {
			if _, err := p.do("POST", url, pong); err != nil {
				return nil
			}
		}
	}
}

type poller struct {
	c    net.Conn
	r    *bufio.Reader
	host string
	req  []byte
}

// do sends one request and returns the response body (status 200 only).
func (p *poller) do(method, url string, body []byte) ([]byte, error) {
	p.req = append(p.req[:0], method...)
	p.req = append(p.req, ' ')
	p.req = append(p.req, url...)
	p.req = append(p.req, " HTTP/1.1\r\nHost: "...)
	p.req = append(p.req, p.host...)
	p.req = append(p.req, "\r\nAccept: */*\r\n"...)
	if method == "POST" {
		p.req = append(p.req, "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: "...)
		p.req = strconv.AppendInt(p.req, int64(len(body)), 10)
		p.req = append(p.req, "\r\n"...)
	}
	p.req = append(p.req, "\r\n"...)
	p.req = append(p.req, body...)
	if _, err := p.c.Write(p.req); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(p.r, nil)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d %s", method, resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, nil
}
