package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/operate/realtime/internal/wsframe"
	"github.com/operate/realtime/protocol/eio"
)

// Why an Engine.IO session ended, as socket.io-client names it.
const (
	reasonTransportClose  = "transport close"      // the server closed the transport
	reasonTransportError  = "transport error"      // a read, write or request failed
	reasonPingTimeout     = "ping timeout"         // the server's pings stopped
	reasonClientClose     = "io client disconnect" // Close
	reasonServerNamespace = "io server disconnect" // the server disconnected the socket
	reasonParseError      = "parse error"          // the server sent what the client cannot read
)

// openPacket is the Engine.IO handshake.
type openPacket struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int64    `json:"maxPayload"`
}

// engine is one Engine.IO session, over long-polling or WebSocket, moving
// from the first to the second when upgraded. Received packets go to
// onPacket, one at a time, in order, from whichever transport reads.
type engine struct {
	s        *settings
	httpc    *http.Client
	open     openPacket
	onPacket func(eio.Packet)

	ctx    context.Context // ends with the session: cancels polling requests
	cancel context.CancelFunc

	mu         sync.Mutex
	cond       *sync.Cond    // signals the polling writer: queue, pause, end
	ws         *wsframe.Conn // set once the session runs over WebSocket
	queue      [][]byte      // packets for the next POST
	paused     bool          // polling stops: the upgrade is being completed
	writerIdle chan struct{} // closed by the polling writer once paused and idle
	readerDone chan struct{} // closed when the polling reader stopped
	ended      bool
	reason     string
	err        error
	heartbeat  *time.Timer

	done chan struct{}  // closed when the session ended
	wg   sync.WaitGroup // the session's goroutines
}

func newEngine(s *settings, httpc *http.Client, open openPacket) *engine {
	e := &engine{s: s, httpc: httpc, open: open, done: make(chan struct{}),
		writerIdle: make(chan struct{}), readerDone: make(chan struct{})}
	e.cond = sync.NewCond(&e.mu)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e
}

// dialEngine opens an Engine.IO session: over WebSocket directly, or with
// the long-polling handshake (websocket false). The session does not read
// until start.
func dialEngine(ctx context.Context, s *settings, httpc *http.Client, websocket bool) (*engine, error) {
	if websocket {
		ws, err := s.wsDialer().Dial(ctx, s.engineURL("websocket", ""))
		if err != nil {
			return nil, fmt.Errorf("websocket: %w", err)
		}
		ws.ReadLimit = s.MaxMessageSize
		stop := context.AfterFunc(ctx, func() { ws.Close() })
		msg, op, err := ws.ReadMessage(nil)
		if !stop() {
			err = errors.Join(err, ctx.Err())
		}
		if err != nil {
			ws.Close()
			return nil, fmt.Errorf("websocket: reading the open packet: %w", err)
		}
		open, err := parseOpen(msg, op)
		if err != nil {
			ws.Close()
			return nil, fmt.Errorf("websocket: %w", err)
		}
		e := newEngine(s, httpc, open)
		e.ws = ws
		return e, nil
	}

	body, err := pollRequest(ctx, s, httpc, http.MethodGet, s.engineURL("polling", ""), nil)
	if err != nil {
		return nil, fmt.Errorf("polling handshake: %w", err)
	}
	var open openPacket
	var rest [][]byte
	err = eio.DecodePayload(body, func(p eio.Packet) error {
		if open.SID == "" {
			if p.Type != eio.Open {
				return fmt.Errorf("first packet is %v, want open", p.Type)
			}
			var err error
			open, err = parseOpen(append([]byte{'0'}, p.Data...), wsframe.OpText)
			return err
		}
		rest = append(rest, bytes.Clone(p.Data))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("polling handshake: %w", err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("polling handshake: %d packets after the open packet", len(rest))
	}
	return newEngine(s, httpc, open), nil
}

func parseOpen(msg []byte, op wsframe.Opcode) (openPacket, error) {
	var open openPacket
	if op != wsframe.OpText || len(msg) == 0 || msg[0] != '0' {
		return open, fmt.Errorf("want the open packet, got %q", clip(msg))
	}
	if err := json.Unmarshal(msg[1:], &open); err != nil {
		return open, fmt.Errorf("open packet %q: %w", clip(msg), err)
	}
	if open.SID == "" || open.PingInterval <= 0 || open.PingTimeout <= 0 {
		return open, fmt.Errorf("open packet %q: no sid or heartbeat", clip(msg))
	}
	return open, nil
}

func (s *settings) wsDialer() *wsframe.Dialer {
	return &wsframe.Dialer{NetDial: s.NetDial, TLSConfig: s.TLSConfig, Header: s.Header}
}

// start begins reading (and, on long-polling, writing) and arms the
// heartbeat.
func (e *engine) start(onPacket func(eio.Packet)) {
	e.onPacket = onPacket
	e.mu.Lock()
	e.armLocked()
	ws := e.ws
	e.mu.Unlock()
	if ws != nil {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.readWS(ws)
		}()
		return
	}
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		e.pollWriter()
	}()
	go func() {
		defer e.wg.Done()
		e.pollReader()
	}()
}

// armLocked (re)starts the heartbeat: the server pings every pingInterval
// and drops a client that does not answer within pingTimeout, so a client
// that heard nothing for their sum has lost the server.
func (e *engine) armLocked() {
	if e.ended {
		return
	}
	d := time.Duration(e.open.PingInterval+e.open.PingTimeout) * time.Millisecond
	if e.heartbeat == nil {
		e.heartbeat = time.AfterFunc(d, func() { e.end(reasonPingTimeout, errors.New("no ping from the server")) })
		return
	}
	e.heartbeat.Reset(d)
}

// transport names the transport in use.
func (e *engine) transport() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ws != nil {
		return "websocket"
	}
	return "polling"
}

// send sends one text packet (its Engine.IO type digit first).
func (e *engine) send(pkt []byte) error {
	e.mu.Lock()
	if e.ended {
		e.mu.Unlock()
		return errEngineEnded
	}
	ws := e.ws
	if ws == nil {
		e.queue = append(e.queue, pkt)
		e.cond.Signal()
		e.mu.Unlock()
		return nil
	}
	e.mu.Unlock()
	if err := ws.WriteText(pkt); err != nil {
		e.end(reasonTransportError, err)
		return fmt.Errorf("websocket: %w", err)
	}
	return nil
}

var errEngineEnded = errors.New("connection closed")

// errRetried is a long-polling request whose connection failed under it.
var errRetried = errors.New("the connection failed under the request")

// end ends the session once; the first reason is kept.
func (e *engine) end(reason string, err error) {
	e.mu.Lock()
	if e.ended {
		e.mu.Unlock()
		return
	}
	e.ended, e.reason, e.err = true, reason, err
	if e.heartbeat != nil {
		e.heartbeat.Stop()
	}
	ws := e.ws
	e.cond.Broadcast()
	e.mu.Unlock()
	e.cancel()
	if ws != nil {
		ws.Close()
	}
	close(e.done)
}

// close ends the session from the client's side: the packets given (a
// namespace disconnect) and an Engine.IO close are sent first, within ctx
// and AckTimeout.
func (e *engine) close(ctx context.Context, last []byte) {
	ctx, cancel := context.WithTimeout(ctx, e.s.AckTimeout)
	defer cancel()
	e.mu.Lock()
	ws, ended := e.ws, e.ended
	e.mu.Unlock()
	if ended {
		return
	}
	if ws != nil {
		stop := context.AfterFunc(ctx, func() { ws.Close() })
		if last != nil {
			_ = ws.WriteText(last)
		}
		_ = ws.CloseNormal()
		stop()
	} else {
		body := []byte("1")
		if last != nil {
			body = append(append(last, eio.Separator), body...)
		}
		// A request of its own: the session's requests are cancelled by end.
		_, _ = pollRequest(ctx, e.s, e.httpc, http.MethodPost, e.s.engineURL("polling", e.open.SID), body)
	}
	e.end(reasonClientClose, nil)
}

// handle processes one received Engine.IO packet.
func (e *engine) handle(p eio.Packet) {
	switch p.Type {
	case eio.Ping:
		e.mu.Lock()
		e.armLocked()
		e.mu.Unlock()
		_ = e.send([]byte("3"))
	case eio.Close:
		e.end(reasonTransportClose, errors.New("closed by the server"))
	case eio.Message:
		e.onPacket(p)
	}
	// noop, pong, upgrade and open (again) carry nothing for the client
}

func (e *engine) readWS(ws *wsframe.Conn) {
	var buf []byte
	for {
		msg, op, err := ws.ReadMessage(buf[:0])
		if err != nil {
			if errors.Is(err, io.EOF) {
				e.end(reasonTransportClose, err)
			} else {
				e.end(reasonTransportError, err)
			}
			return
		}
		var p eio.Packet
		if op == wsframe.OpBinary {
			p = eio.Packet{Type: eio.Message, Data: msg, Binary: true}
		} else if p, err = eio.DecodeText(msg); err != nil {
			e.end(reasonParseError, fmt.Errorf("websocket message %q: %w", clip(msg), err))
			return
		}
		e.handle(p)
		if e.isEnded() {
			return
		}
		buf = msg
		if cap(buf) > 64<<10 {
			buf = nil // do not keep a burst's buffer for an idle connection
		}
	}
}

func (e *engine) isEnded() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ended
}

// pollReader issues the long-polling GETs, one at a time, until the
// session ends or polling pauses for the upgrade.
func (e *engine) pollReader() {
	defer close(e.readerDone)
	url := e.s.engineURL("polling", e.open.SID)
	for {
		e.mu.Lock()
		quit := e.ended || e.paused
		e.mu.Unlock()
		if quit {
			return
		}
		body, err := pollRequest(e.ctx, e.s, e.httpc, http.MethodGet, url, nil)
		if err != nil {
			e.end(reasonTransportError, fmt.Errorf("polling GET: %w", err))
			return
		}
		err = eio.DecodePayload(body, func(p eio.Packet) error {
			e.handle(p)
			return nil
		})
		if err != nil {
			e.end(reasonParseError, fmt.Errorf("polling payload %q: %w", clip(body), err))
			return
		}
	}
}

// pollWriter POSTs the queued packets, all of them in one request, one
// request at a time.
func (e *engine) pollWriter() {
	url := e.s.engineURL("polling", e.open.SID)
	for {
		e.mu.Lock()
		for !e.ended && (e.paused || len(e.queue) == 0) {
			if e.paused {
				select {
				case <-e.writerIdle:
				default:
					close(e.writerIdle)
				}
			}
			e.cond.Wait()
		}
		if e.ended {
			e.mu.Unlock()
			return
		}
		batch := e.queue
		e.queue = nil
		e.mu.Unlock()
		if _, err := pollRequest(e.ctx, e.s, e.httpc, http.MethodPost, url, bytes.Join(batch, []byte{eio.Separator})); err != nil {
			e.end(reasonTransportError, fmt.Errorf("polling POST: %w", err))
			return
		}
	}
}

// upgrade moves a long-polling session to WebSocket as engine.io-client
// does: a WebSocket on the same session is probed (2probe, 3probe); polling
// pauses (the GET in flight returns, the server releases it with a noop,
// and the POST in flight finishes); "5" completes the upgrade, and the
// packets queued meanwhile follow on the WebSocket. When anything fails
// before "5", the session simply stays on long-polling.
func (e *engine) upgrade() bool {
	if !slices.Contains(e.open.Upgrades, "websocket") {
		return false
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.s.AckTimeout)
	defer cancel()
	ws, err := e.s.wsDialer().Dial(ctx, e.s.engineURL("websocket", e.open.SID))
	if err != nil {
		e.s.Logger.Debug("client: upgrade to websocket failed, staying on polling", "error", err)
		return false
	}
	ws.ReadLimit = e.s.MaxMessageSize
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	fail := func(what string, err error) bool {
		ws.Close()
		e.s.Logger.Debug("client: upgrade to websocket failed, staying on polling", "step", what, "error", err)
		return false
	}
	if err := ws.WriteText([]byte("2probe")); err != nil {
		return fail("probe", err)
	}
	msg, _, err := ws.ReadMessage(nil)
	if err != nil || string(msg) != "3probe" {
		return fail("probe answer", fmt.Errorf("%q, %v", clip(msg), err))
	}

	e.mu.Lock()
	e.paused = true
	e.cond.Broadcast()
	e.mu.Unlock()
	for _, ch := range []<-chan struct{}{e.readerDone, e.writerIdle} {
		select {
		case <-ch:
		case <-e.done:
			ws.Close()
			return false
		case <-ctx.Done():
			// Polling cannot resume cleanly once paused: the server may
			// already consider the upgrade under way.
			ws.Close()
			e.end(reasonTransportError, errors.New("upgrade: polling did not pause"))
			return false
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended {
		ws.Close()
		return false
	}
	if err := ws.WriteText([]byte("5")); err != nil {
		ws.Close()
		e.endLocked(reasonTransportError, fmt.Errorf("upgrade: %w", err))
		return false
	}
	for _, p := range e.queue {
		if err := ws.WriteText(p); err != nil {
			ws.Close()
			e.endLocked(reasonTransportError, fmt.Errorf("upgrade: %w", err))
			return false
		}
	}
	e.queue = nil
	e.ws = ws
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.readWS(ws)
	}()
	return true
}

// endLocked is end for a caller holding e.mu.
func (e *engine) endLocked(reason string, err error) {
	e.mu.Unlock()
	e.end(reason, err)
	e.mu.Lock()
}

// pollRequest sends one long-polling request and returns the body of its
// 200 answer.
//
// A request is sent on one connection only. net/http would send a GET again
// on a new connection when the one it reused failed before the answer's
// first byte; but the server may have written that answer, packets
// included, before the connection was cut, and a second GET would then
// silently skip them. A connection lost under a request is a transport
// error, as for socket.io-client, after which the client reconnects and
// recovers the packets by their offsets.
func pollRequest(ctx context.Context, s *settings, httpc *http.Client, method, url string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	conns := 0
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) {
			if conns++; conns > 1 {
				cancel(errRetried)
			}
		},
	})
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range s.Header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := httpc.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errRetried) {
			return nil, cause
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, s.MaxMessageSize+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > s.MaxMessageSize {
		return nil, fmt.Errorf("%s: response over %d bytes", method, s.MaxMessageSize)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d: %s", method, resp.StatusCode, strings.TrimSpace(string(clip(b))))
	}
	return b, nil
}

// clip shortens what goes into error messages.
func clip(b []byte) []byte {
	if len(b) > 200 {
		return append(b[:200:200], "…"...)
	}
	return b
}
