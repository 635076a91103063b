package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/protocol/eio"
	"github.com/operate/realtime/protocol/sio"
)

// conn is one Socket.IO connection to the namespace, on one Engine.IO
// session.
type conn struct {
	c      *Client
	e      *engine
	askPID string // the session this connection asked to recover

	// Set by the reader at the CONNECT reply, read-only afterwards.
	sid, pid  string
	recovered bool

	result chan error    // the CONNECT outcome: nil or a *ConnectError
	ready  chan struct{} // closed once the subscriptions are restored

	mu               sync.Mutex
	connected        bool
	early            []received // events that came before the CONNECT reply
	nextID           uint64
	acks             map[uint64]chan []byte
	expired          bool // auth:expired came
	serverDisconnect bool // the server disconnected the namespace
	binary           *binaryPacket
}

type received struct {
	name string
	args [][]byte
}

// binaryPacket collects the attachments of a binary packet.
type binaryPacket struct {
	pkt     sio.Packet
	missing int
}

func newConn(c *Client, e *engine, askPID string) *conn {
	return &conn{c: c, e: e, askPID: askPID, result: make(chan error, 1), ready: make(chan struct{}),
		acks: make(map[uint64]chan []byte)}
}

// connectAuth is the CONNECT payload, in socket.io-client's order: the
// session to recover first, then the auth object.
type connectAuth struct {
	PID    string `json:"pid,omitempty"`
	Offset string `json:"offset,omitempty"`
	Token  string `json:"token"`
}

// handshake sends the namespace CONNECT and waits for its reply.
func (cn *conn) handshake(ctx context.Context, token, pid, offset string) error {
	payload, err := json.Marshal(connectAuth{PID: pid, Offset: offset, Token: token})
	if err != nil {
		return err
	}
	pkt := sio.AppendHeader([]byte{'4'}, sio.Connect, 0, cn.c.s.namespace, false, 0)
	if err := cn.e.send(append(pkt, payload...)); err != nil {
		return fmt.Errorf("sending CONNECT: %w", err)
	}
	select {
	case err := <-cn.result:
		return err
	case <-cn.e.done:
		return fmt.Errorf("connection lost before the CONNECT reply: %s: %w", cn.e.reason, cn.e.err)
	case <-ctx.Done():
		return fmt.Errorf("waiting for the CONNECT reply: %w", context.Cause(ctx))
	}
}

// wait blocks until the connection ended (or ctx), and returns why once
// everything it received is queued for the handlers.
func (cn *conn) wait(ctx context.Context) DisconnectInfo {
	select {
	case <-cn.e.done:
	case <-ctx.Done():
		cn.e.end(reasonClientClose, nil)
	}
	cn.e.wg.Wait()
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.serverDisconnect {
		return DisconnectInfo{Reason: reasonServerNamespace}
	}
	return DisconnectInfo{Reason: cn.e.reason, Err: cn.e.err}
}

// close disconnects from the namespace and closes the session.
func (cn *conn) close(ctx context.Context) {
	pkt := sio.AppendHeader([]byte{'4'}, sio.Disconnect, 0, cn.c.s.namespace, false, 0)
	cn.e.close(ctx, pkt)
}

func (cn *conn) tokenExpired() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.expired
}

// request emits event with arg and an acknowledgement id, and returns the
// first argument of the answer.
func (cn *conn) request(ctx context.Context, event string, arg any) (json.RawMessage, error) {
	data, err := json.Marshal([]any{event, arg})
	if err != nil {
		return nil, fmt.Errorf("client: encoding %s: %w", event, err)
	}
	ch := make(chan []byte, 1)
	cn.mu.Lock()
	id := cn.nextID
	cn.nextID++
	cn.acks[id] = ch
	cn.mu.Unlock()
	drop := func() {
		cn.mu.Lock()
		delete(cn.acks, id)
		cn.mu.Unlock()
	}
	pkt := sio.AppendHeader([]byte{'4'}, sio.Event, 0, cn.c.s.namespace, true, id)
	if err := cn.e.send(append(pkt, data...)); err != nil {
		drop()
		return nil, errConnLost
	}
	select {
	case args := <-ch:
		first, ok := sio.FirstElement(args)
		if !ok {
			return nil, fmt.Errorf("client: %s: empty acknowledgement", event)
		}
		return bytes.Clone(first), nil
	case <-cn.e.done:
		drop()
		return nil, errConnLost
	case <-ctx.Done():
		drop()
		return nil, context.Cause(ctx)
	}
}

// onPacket handles one Engine.IO message, on the engine's reader.
func (cn *conn) onPacket(p eio.Packet) {
	if p.Binary {
		cn.onAttachment()
		return
	}
	pkt, err := sio.Decode(p.Data, sio.DefaultMaxAttachments)
	if err != nil {
		cn.e.end(reasonParseError, fmt.Errorf("packet %q: %w", clip(p.Data), err))
		return
	}
	if pkt.Namespace != cn.c.s.namespace {
		return
	}
	if pkt.Type.IsBinary() && pkt.Attachments > 0 {
		cn.mu.Lock()
		cn.binary = &binaryPacket{pkt: pkt, missing: pkt.Attachments}
		cn.mu.Unlock()
		return
	}
	cn.onSocketPacket(pkt)
}

// onAttachment counts a binary attachment. The gateway sends none: the
// client keeps the packet's JSON, placeholders and all, and drops the bytes.
func (cn *conn) onAttachment() {
	cn.mu.Lock()
	b := cn.binary
	if b != nil {
		b.missing--
		if b.missing == 0 {
			cn.binary = nil
		}
	}
	cn.mu.Unlock()
	if b == nil {
		cn.e.end(reasonParseError, errors.New("unexpected binary message"))
	} else if b.missing == 0 {
		cn.onSocketPacket(b.pkt)
	}
}

func (cn *conn) onSocketPacket(pkt sio.Packet) {
	switch pkt.Type {
	case sio.Connect:
		var reply struct {
			SID string `json:"sid"`
			PID string `json:"pid"`
		}
		if err := json.Unmarshal(pkt.Data, &reply); err != nil || reply.SID == "" {
			cn.e.end(reasonParseError, fmt.Errorf("CONNECT reply %q", clip(pkt.Data)))
			return
		}
		cn.onConnected(reply.SID, reply.PID)
	case sio.ConnectError:
		cn.result <- connectError(pkt.Data)
	case sio.Event, sio.BinaryEvent:
		args, ok := sio.SplitArray(nil, pkt.Data)
		if !ok || len(args) == 0 {
			return
		}
		name, ok := sio.UnquoteString(args[0])
		if !ok {
			name = string(args[0]) // a numeric event name
		}
		cn.mu.Lock()
		if !cn.connected {
			// Recovered events come before the CONNECT reply;
			// socket.io-client holds them until it is connected too.
			cn.early = append(cn.early, received{name: name, args: cloneAll(args[1:])})
			cn.mu.Unlock()
			return
		}
		cn.mu.Unlock()
		cn.deliver(name, args[1:])
	case sio.Ack, sio.BinaryAck:
		cn.mu.Lock()
		ch := cn.acks[pkt.ID]
		delete(cn.acks, pkt.ID)
		cn.mu.Unlock()
		if ch != nil {
			ch <- bytes.Clone(pkt.Data)
		}
	case sio.Disconnect:
		cn.mu.Lock()
		cn.serverDisconnect = true
		cn.mu.Unlock()
		// The engine session would stay open for other namespaces; this
		// client has one.
		cn.e.wg.Add(1)
		go func() {
			defer cn.e.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), cn.c.s.AckTimeout)
			defer cancel()
			cn.e.close(ctx, nil)
		}()
	}
}

// onConnected takes the CONNECT reply: the connection becomes the client's
// current one, OnConnect is queued, then the events that came before.
func (cn *conn) onConnected(sid, pid string) {
	c := cn.c
	cn.sid, cn.pid = sid, pid
	cn.recovered = cn.askPID != "" && pid == cn.askPID
	c.mu.Lock()
	c.pid, c.recovered = pid, cn.recovered
	if !cn.recovered {
		c.offset = ""
	}
	c.mu.Unlock()
	if cn.recovered || c.subs.empty() {
		close(cn.ready) // nothing to restore
	}
	c.setConn(cn)
	c.disp.push(keyConnect, ConnectInfo{SocketID: sid, Recovered: cn.recovered, Transport: cn.e.transport()})
	cn.mu.Lock()
	cn.connected = true
	early := cn.early
	cn.early = nil
	cn.mu.Unlock()
	for _, r := range early {
		cn.deliver(r.name, r.args)
	}
	cn.result <- nil
}

// deliver takes an event's arguments: the recovery offset off the end, the
// client's own events handled, the first argument queued for the handlers.
func (cn *conn) deliver(name string, args [][]byte) {
	c := cn.c
	if cn.pid != "" && len(args) > 0 {
		// With recovery on, every event carries its offset as one more,
		// last, argument (socket.io-client keeps the last string argument).
		if off, ok := sio.UnquoteString(args[len(args)-1]); ok {
			c.mu.Lock()
			c.offset = off
			c.mu.Unlock()
			args = args[:len(args)-1]
		}
	}
	var payload json.RawMessage
	if len(args) > 0 {
		payload = bytes.Clone(args[0])
	}
	switch name {
	case eventAuthExpiring:
		c.onExpiring(cn)
	case eventAuthExpired:
		cn.mu.Lock()
		cn.expired = true
		cn.mu.Unlock()
	}
	if !cn.isReady() && !c.subs.admits(events.Name(name)) {
		return // sent before the subscriptions were restored
	}
	c.disp.push(name, payload)
}

func (cn *conn) isReady() bool {
	select {
	case <-cn.ready:
		return true
	default:
		return false
	}
}

// connectError reads a CONNECT_ERROR: {message, data: {code}}, or a string.
func connectError(data []byte) *ConnectError {
	var e struct {
		Message string `json:"message"`
		Data    struct {
			Code string `json:"code"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &e); err != nil {
		var msg string
		if json.Unmarshal(data, &msg) == nil {
			return &ConnectError{Message: msg}
		}
		return &ConnectError{Message: string(clip(data))}
	}
	if e.Data.Code == "" && e.Message == "Invalid namespace" {
		e.Data.Code = CodeInvalidNamespace
	}
	return &ConnectError{Message: e.Message, Code: e.Data.Code}
}

func cloneAll(args [][]byte) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = bytes.Clone(a)
	}
	return out
}
