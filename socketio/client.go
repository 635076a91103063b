package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/protocol/sio"
)

// client is the Socket.IO side of one Engine.IO session: it decodes packets
// and routes them to the session's sockets, one per namespace.
type client struct {
	// Static after construction.
	srv  *Server
	conn *engineio.Session

	// Owned by the inbound dispatch, which engineio serializes: a binary
	// packet waiting for its attachments (nil between packets, which is
	// nearly always: not kept inline on every idle connection).
	pending *binaryPacket

	// refused counts the CONNECTs refused on this connection (see
	// Options.MaxRefusedConnects); middlewares may refuse on other
	// goroutines.
	refused atomic.Int32

	mu           sync.Mutex
	sockets      []*Socket // one per namespace; usually one
	connectTimer *time.Timer
	closed       bool
}

// binaryPacket is a binary packet and the attachments received so far.
type binaryPacket struct {
	p           sio.Packet
	attachments [][]byte
}

func newClient(srv *Server, conn *engineio.Session) *client {
	c := &client{srv: srv, conn: conn}
	// A client that joins no namespace in time is dropped (connectTimeout).
	c.connectTimer = time.AfterFunc(srv.opts.ConnectTimeout, func() {
		c.mu.Lock()
		idle := len(c.sockets) == 0 && !c.closed
		c.mu.Unlock()
		if idle {
			c.conn.CloseWith(engineio.ReasonForcedClose, false)
		}
	})
	return c
}

// connected stops the connect timer once a namespace is joined.
func (c *client) connected() {
	c.mu.Lock()
	t := c.connectTimer
	c.connectTimer = nil
	c.mu.Unlock()
	if t != nil {
		t.Stop()
	}
}

func (c *client) send(pkts []*engineio.Packet) error { return c.conn.Send(pkts...) }

// Message implements engineio.SessionHandler.
func (c *client) Message(data []byte, binary bool) {
	if binary {
		c.attachment(data)
		return
	}
	if c.pending != nil {
		c.fail() // a text packet while attachments are expected
		return
	}
	p, err := sio.Decode(data, c.srv.opts.MaxAttachments)
	if err != nil {
		c.fail()
		return
	}
	if p.Type.IsBinary() && p.Attachments > 0 {
		p.Data = clone(p.Data)
		c.pending = &binaryPacket{p: p, attachments: make([][]byte, 0, p.Attachments)}
		return
	}
	c.handle(&p, nil)
}

func (c *client) attachment(data []byte) {
	if c.pending == nil {
		c.fail() // binary data outside a binary packet
		return
	}
	b := c.pending
	b.attachments = append(b.attachments, clone(data))
	if len(b.attachments) < b.p.Attachments {
		return
	}
	p, bin := &b.p, b.attachments
	c.pending = nil
	if p.Data != nil && !sio.CheckPlaceholders(p.Data, len(bin)) {
		c.fail()
		return
	}
	c.handle(p, bin)
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// fail closes the connection after a packet Node's server would not accept.
// What is queued goes out first, as Node's conn.close() drains its write
// buffer: a client whose socket the server just disconnected may still
// send a few events on it, and must get the DISCONNECT before the close.
func (c *client) fail() { c.conn.CloseWith(engineio.ReasonParseError, true) }

// handle routes a complete packet (protocol §2.4). p.Data may alias the
// read buffer: whatever is kept is copied.
func (c *client) handle(p *sio.Packet, bin [][]byte) {
	switch p.Type {
	case sio.Connect:
		if c.socket(p.Namespace) != nil {
			c.fail() // CONNECT for a namespace already joined
			return
		}
		c.srv.connect(c, p.Namespace, clone(p.Data))
		return
	case sio.ConnectError:
		c.fail()
		return
	}
	s := c.socket(p.Namespace)
	if s == nil {
		c.fail() // a packet for a namespace this client has not joined
		return
	}
	switch p.Type {
	case sio.Disconnect:
		s.onClose(ReasonClientNamespaceDisconn)
	case sio.Event, sio.BinaryEvent:
		if p.Data != nil {
			s.onEvent(p, clone(p.Data), bin)
		}
	case sio.Ack, sio.BinaryAck:
		if p.Data != nil {
			s.onAck(p, clone(p.Data), bin)
		}
	}
}

func (c *client) socket(nsp string) *Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sockets {
		if s.nsp.name == nsp {
			return s
		}
	}
	return nil
}

func (c *client) addSocket(s *Socket) {
	c.mu.Lock()
	c.sockets = append(c.sockets, s)
	c.mu.Unlock()
}

func (c *client) removeSocket(s *Socket) {
	c.mu.Lock()
	for i, x := range c.sockets {
		if x == s {
			c.sockets = append(c.sockets[:i], c.sockets[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
}

// closeIfEmpty closes the connection if no socket is left on it.
func (c *client) closeIfEmpty(reason engineio.CloseReason) {
	c.mu.Lock()
	empty := len(c.sockets) == 0 && !c.closed
	c.mu.Unlock()
	if empty {
		c.conn.CloseWith(reason, false)
	}
}

// sendConnectError refuses a CONNECT with a CONNECT_ERROR packet
// {"message", "data"?}; the Engine.IO connection stays open, unless it was
// refused Options.MaxRefusedConnects times: it is then closed once the
// CONNECT_ERROR is delivered.
func (c *client) sendConnectError(nsp string, err error) {
	defer func() {
		if limit := c.srv.opts.MaxRefusedConnects; limit > 0 && int(c.refused.Add(1)) == limit {
			c.srv.refusedConnectsClosed.Add(1)
			c.conn.CloseWith(engineio.ReasonForcedClose, true)
		}
	}()
	body := struct {
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}{Message: err.Error()}
	var ce *ConnectError
	if errors.As(err, &ce) {
		body.Message, body.Data = ce.Message, ce.Data
	}
	// Encoded as JSON.stringify would: <, > and & are not escaped.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(body) != nil {
		buf.Reset()
		body.Data = nil // data that cannot be encoded is dropped, the message kept
		_ = enc.Encode(body)
	}
	data := bytes.TrimRight(buf.Bytes(), "\n")
	_ = c.send([]*engineio.Packet{engineio.BuildText(4, len(nsp)+len(data)+2, func(dst []byte) []byte {
		dst = sio.AppendHeader(dst, sio.ConnectError, 0, nsp, false, 0)
		return append(dst, data...)
	})})
}

// disconnectAll is Node's client._disconnect: every socket is told
// "server namespace disconnect", then the connection closes once that is
// delivered.
func (c *client) disconnectAll() {
	c.mu.Lock()
	sockets := append([]*Socket(nil), c.sockets...)
	c.mu.Unlock()
	for _, s := range sockets {
		_ = c.send(encodeDisconnect(s.nsp.name))
		s.onClose(ReasonServerNamespaceDisconn)
	}
	c.conn.CloseWith(engineio.ReasonForcedClose, true)
}

// Closed implements engineio.SessionHandler: the connection is gone, and
// with it every socket.
func (c *client) Closed(reason engineio.CloseReason) {
	c.mu.Lock()
	c.closed = true
	sockets := append([]*Socket(nil), c.sockets...)
	t := c.connectTimer
	c.connectTimer = nil
	c.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	r := reasonFromEngine(reason)
	for _, s := range sockets {
		s.onClose(r)
	}
}
