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
	"sync/atomic"
	"time"

	"github.com/operate/realtime/internal/wsframe"
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
	c, err := w.dialWS(cl, "")
	if err != nil {
		return err
	}
	var buf []byte
	// Engine.IO open packet.
	if buf, _, err = c.ReadMessage(buf[:0]); err != nil {
		c.Close()
		return fmt.Errorf("open packet: %w", err)
	}
	if len(buf) == 0 || buf[0] != '0' {
		c.Close()
		return fmt.Errorf("open packet: %q", buf)
	}
	w.noteOpen(buf)
	if err := c.WriteText(cl.connect); err != nil {
		c.Close()
		return fmt.Errorf("CONNECT: %w", err)
	}
	if buf, err = w.awaitConnected(cl, c, buf); err != nil {
		c.Close()
		return err
	}
	return w.serveWS(cl, c, buf, connected)
}

// dialWS opens the WebSocket of cl (query: more of the URL's query, e.g.
// "&sid=…"), with the handshake's deadline set.
func (w *worker) dialWS(cl *client, query string) (*wsframe.Conn, error) {
	return w.dialWSPath(cl, "/socket.io/?EIO=4&transport=websocket"+query)
}

// dialWSPath opens a WebSocket to path (and query) on cl's target, with
// the handshake's deadline set.
func (w *worker) dialWSPath(cl *client, path string) (*wsframe.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	d := wsframe.Dialer{
		ReadBufferSize: readBufferSize,
		NetDial: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dial(ctx, cl.src, addr)
		},
	}
	c, err := d.Dial(ctx, "ws://"+cl.target+path)
	if err != nil {
		return nil, fmt.Errorf("websocket: %w", err)
	}
	_ = c.NetConn().SetDeadline(time.Now().Add(handshakeTimeout))
	return c, nil
}

// awaitConnected reads the WebSocket until the namespace's CONNECT reply,
// answering pings meanwhile.
func (w *worker) awaitConnected(cl *client, c *wsframe.Conn, buf []byte) ([]byte, error) {
	for {
		var err error
		if buf, _, err = c.ReadMessage(buf[:0]); err != nil {
			return buf, fmt.Errorf("CONNECT reply: %w", err)
		}
		switch w.handle(cl, buf) {
		case pktPing:
			_ = c.WriteText(pong)
		case pktConnectError:
			return buf, fmt.Errorf("%w: %s", errRefused, buf)
		case pktClose:
			return buf, errors.New("closed during handshake")
		case pktConnected:
			return buf, nil
		}
	}
}

// serveWS takes over a connected WebSocket: it clears the handshake's
// deadline, counts the connection, calls connected, and reads until the
// connection ends, answering pings.
func (w *worker) serveWS(cl *client, c *wsframe.Conn, buf []byte, connected func()) error {
	nc := c.NetConn()
	_ = nc.SetDeadline(time.Time{})
	if !w.attach(cl, nc) {
		c.Close()
		return errors.New("dropped during handshake")
	}
	connected()
	defer w.detach(cl, nc)
	for {
		var err error
		if buf, _, err = c.ReadMessage(buf[:0]); err != nil {
			return nil
		}
		switch w.handle(cl, buf) {
		case pktPing:
			if c.WriteText(pong) != nil {
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

var (
	pong         = []byte("3")
	probePing    = []byte("2probe")
	probePong    = []byte("3probe")
	upgradePkt   = []byte("5")
	pollingQuery = "/socket.io/?EIO=4&transport=polling"
)

// runUpgrade is what socket.io-client does with its default options (and
// so every browser), in engine.io-client's order: the handshake over
// long-polling; the CONNECT in a POST; polling goes on while a WebSocket
// with the same sid is probed ("2probe" → "3probe"); then polling pauses
// (the GET in flight returns: the server releases it with a noop) and "5"
// on the WebSocket completes the upgrade, after which everything flows
// over the WebSocket. The polling connection is closed then, so that an
// upgraded client holds one connection, as a direct WebSocket does (a
// browser would keep it in its pool until the server's idle timeout).
func (w *worker) runUpgrade(cl *client, connected func()) error {
	p, sid, err := w.pollHandshake(cl)
	if err != nil {
		return err
	}
	defer p.c.Close()
	url := pollingQuery + "&sid=" + sid
	if _, err := p.do("POST", url, cl.connect); err != nil {
		return fmt.Errorf("polling CONNECT: %w", err)
	}

	// The polling transport keeps a GET pending until it is paused.
	var pausing atomic.Bool
	type polled struct {
		connected bool
		err       error
	}
	done := make(chan polled, 1)
	go func() {
		var res polled
		for res.err == nil && !pausing.Load() {
			body, err := p.do("GET", url, nil)
			if err != nil {
				res.err = fmt.Errorf("polling GET: %w", err)
				break
			}
			ping := false
			for pkt := range pollPackets(body) {
				switch w.handle(cl, pkt) {
				case pktPing:
					ping = true
				case pktConnected:
					res.connected = true
				case pktConnectError:
					res.err = fmt.Errorf("%w: %s", errRefused, pkt)
				case pktClose:
					res.err = errors.New("closed during handshake")
				}
			}
			if ping && res.err == nil {
				if _, err := p.do("POST", url, pong); err != nil {
					res.err = fmt.Errorf("polling pong: %w", err)
				}
			}
		}
		done <- res
	}()
	stopPolling := func() polled {
		pausing.Store(true)
		return <-done
	}
	fail := func(err error) error {
		p.c.Close() // ends a GET the server holds
		stopPolling()
		return err
	}

	c, err := w.dialWS(cl, "&sid="+sid)
	if err != nil {
		return fail(fmt.Errorf("upgrade: %w", err))
	}
	var buf []byte
	if err := c.WriteText(probePing); err != nil {
		c.Close()
		return fail(fmt.Errorf("upgrade probe: %w", err))
	}
	if buf, _, err = c.ReadMessage(buf[:0]); err != nil || !bytes.Equal(buf, probePong) {
		c.Close()
		return fail(fmt.Errorf("upgrade probe: got %q, %v", buf, err))
	}
	res := stopPolling()
	if res.err != nil {
		c.Close()
		return res.err
	}
	if err := c.WriteText(upgradePkt); err != nil {
		c.Close()
		return fmt.Errorf("upgrade packet: %w", err)
	}
	p.c.Close()
	if !res.connected {
		if buf, err = w.awaitConnected(cl, c, buf); err != nil {
			c.Close()
			return err
		}
	}
	return w.serveWS(cl, c, buf, connected)
}

// pollHandshake opens cl's polling connection and its Engine.IO session:
// the first GET, answered with the open packet.
func (w *worker) pollHandshake(cl *client) (*poller, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	c, err := dial(ctx, cl.src, cl.target)
	cancel()
	if err != nil {
		return nil, "", fmt.Errorf("polling: %w", err)
	}
	p := &poller{c: c, r: bufio.NewReaderSize(c, readBufferSize), host: cl.target}
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	body, err := p.do("GET", pollingQuery, nil)
	if err != nil || len(body) == 0 || body[0] != '0' {
		c.Close()
		return nil, "", fmt.Errorf("polling handshake: %q %v", body, err)
	}
	var open struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(body[1:], &open); err != nil || open.SID == "" {
		c.Close()
		return nil, "", fmt.Errorf("polling handshake: %q", body)
	}
	w.noteOpen(body)
	return p, open.SID, nil
}

// pollPackets yields the packets of a polling payload (separated by 0x1e).
func pollPackets(body []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(body) > 0 {
			pkt := body
			if i := bytes.IndexByte(body, 0x1e); i >= 0 {
				pkt, body = body[:i], body[i+1:]
			} else {
				body = nil
			}
			if !yield(pkt) {
				return
			}
		}
	}
}

// runPolling is a Socket.IO client over HTTP long-polling that never
// upgrades (transports: ["polling"]). It keeps one keep-alive connection and
// issues its requests one after the other: the long-poll GET, then the pong
// POST when the GET brought a ping.
func (w *worker) runPolling(cl *client, connected func()) error {
	p, sid, err := w.pollHandshake(cl)
	if err != nil {
		return err
	}
	c := p.c
	url := pollingQuery + "&sid=" + sid
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
		for pkt := range pollPackets(body) {
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
