package redisadapter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
)

// clusterProto is socket.io-adapter's ClusterAdapter: the ClusterMessage
// protocol ({uid, nsp, type, data}; protocol notes §5.4) shared by the
// sharded and streams modes. It makes the cluster-wide requests
// (broadcast with ack, fetchSockets, serverSideEmit) and answers and
// applies what other servers send; each mode supplies the transport
// (clusterLink) and its own way of publishing broadcasts and room
// operations.
type clusterProto struct {
	// Static after construction.
	c    *Cluster
	host socketio.AdapterHost
	uid  string // randomBytes(8) hex, like Node's ClusterAdapter
	reqs *requests
	link clusterLink
}

// clusterLink is how a mode carries cluster messages.
type clusterLink interface {
	// publish sends a message to every server of the namespace (the
	// namespace's common channel; receivers skip their own uid).
	publish(ctx context.Context, typ int, data []byte, atts [][]byte) error
	// respond sends a response to the server whose uid is requester.
	respond(requester string, typ int, data []byte, atts [][]byte)
	// serverCount counts the servers of the namespace.
	serverCount(ctx context.Context) (int, error)
}

func newClusterProto(c *Cluster, host socketio.AdapterHost, link clusterLink) *clusterProto {
	return &clusterProto{c: c, host: host, uid: rediswire.RandomHex(8), reqs: newRequests(), link: link}
}

// encodeMessage builds a ClusterMessage: JSON, or msgpack when it carries
// binary (or always, with forceMsgpack).
func (p *clusterProto) encodeMessage(typ int, data []byte, atts [][]byte, forceMsgpack bool) ([]byte, error) {
	js := rediswire.AppendClusterMessage(make([]byte, 0, len(data)+64), typ, data, p.uid, p.host.Name())
	msg, err := rediswire.EncodeMessage(js, atts, forceMsgpack)
	if err != nil {
		return nil, fmt.Errorf("redisadapter: encoding message: %w", err)
	}
	return msg, nil
}

// logPublishError reports a response that could not be published.
func (p *clusterProto) logPublishError(err error) {
	if err != nil && !errors.Is(err, ErrClosed) {
		p.c.log.l.Debug("redisadapter: cannot publish a response", "err", err)
	}
}

// optsData writes {"opts":{rooms,except,flags:{}}<rest>}, the data of the
// room operations and of fetchSockets.
func optsData(opts *socketio.BroadcastOptions, rest func([]byte) []byte) []byte {
	data := append([]byte(nil), `{"opts":`...)
	data = rediswire.AppendOptsJSON(data, uniq(opts.Rooms), uniq(opts.Except), &rediswire.Flags{})
	data = rest(data)
	return append(data, '}')
}

func roomsData(opts *socketio.BroadcastOptions, rooms []string) []byte {
	return optsData(opts, func(b []byte) []byte { return rediswire.AppendStringsJSON(append(b, `,"rooms":`...), rooms) })
}

func closeData(opts *socketio.BroadcastOptions, close bool) []byte {
	return optsData(opts, func(b []byte) []byte { return strconv.AppendBool(append(b, `,"close":`...), close) })
}

// BroadcastWithAck delivers p locally asking for acknowledgements and
// publishes it with a request id; every other server answers with its
// client count, then each client's ack.
func (p *clusterProto) BroadcastWithAck(ctx context.Context, pkt *socketio.Packet, opts *socketio.BroadcastOptions, clients func(int), ack func(socketio.Args)) error {
	clients(p.host.BroadcastWithAck(pkt, opts, ack))
	id := rediswire.RandomHex(8)
	timeout := opts.Flags.Timeout
	if timeout <= 0 {
		timeout = defaultAckTimeout
	}
	f := wireFlags(opts.Flags)
	f.Timeout = timeout
	data := rediswire.AppendBroadcastData(nil, pkt.Data, id, uniq(opts.Rooms), uniq(opts.Except), f)
	p.reqs.addAck(id, clients, ack, timeout)
	if err := p.link.publish(ctx, rediswire.MsgBroadcast, data, pkt.Attachments); err != nil {
		p.reqs.dropAck(id)
		return err
	}
	return nil
}

// FetchSockets returns the local sockets and those of every other server,
// waiting for serverCount − 1 answers. On error it returns what it has.
func (p *clusterProto) FetchSockets(ctx context.Context, opts *socketio.BroadcastOptions) ([]*socketio.RemoteSocket, error) {
	local := p.host.FetchSockets(opts)
	n, err := p.link.serverCount(ctx)
	if err != nil {
		return local, err
	}
	if n-1 <= 0 {
		return local, nil
	}
	id := rediswire.RandomHex(8)
	pr := &pending{kind: rediswire.MsgFetchSockets, expected: n - 1, sockets: local}
	p.reqs.add(id, pr)
	data := optsData(opts, func(b []byte) []byte {
		return rediswire.AppendJSONString(append(b, `,"requestId":`...), []byte(id))
	})
	if err := p.link.publish(ctx, rediswire.MsgFetchSockets, data, nil); err != nil {
		p.reqs.forget(id)
		return local, err
	}
	err = p.reqs.wait(ctx, id, pr, p.c.cfg.RequestsTimeout, "fetchSockets")
	return pr.sockets, err
}

// AllRooms: the ClusterMessage protocol has no request for the rooms of
// other servers (Node's ClusterAdapter does not implement allRooms), so
// only the local rooms are returned, with an error wrapping
// errors.ErrUnsupported.
func (p *clusterProto) AllRooms(context.Context) ([]string, error) {
	return p.host.Rooms(), fmt.Errorf("redisadapter: allRooms across servers in %s mode: %w", p.c.cfg.Mode, errors.ErrUnsupported)
}

// ServerSideEmit sends an event to the other servers' namespace.
func (p *clusterProto) ServerSideEmit(ctx context.Context, pkt *socketio.Packet) error {
	data := append(append([]byte(`{"packet":`), pkt.Data...), '}')
	return p.link.publish(ctx, rediswire.MsgServerSideEmit, data, pkt.Attachments)
}

// ServerSideEmitWithAck sends an event to the other servers and waits for
// one answer from each.
func (p *clusterProto) ServerSideEmitWithAck(ctx context.Context, pkt *socketio.Packet) ([]socketio.Args, error) {
	n, err := p.link.serverCount(ctx)
	if err != nil {
		return nil, err
	}
	if n-1 <= 0 {
		return nil, nil
	}
	id := rediswire.RandomHex(8)
	pr := &pending{kind: rediswire.MsgServerSideEmit, expected: n - 1}
	p.reqs.add(id, pr)
	data := []byte(`{"requestId":`)
	data = rediswire.AppendJSONString(data, []byte(id))
	data = append(append(append(data, `,"packet":`...), pkt.Data...), '}')
	if err := p.link.publish(ctx, rediswire.MsgServerSideEmit, data, pkt.Attachments); err != nil {
		p.reqs.forget(id)
		return nil, err
	}
	err = p.reqs.wait(ctx, id, pr, p.c.cfg.RequestsTimeout, "serverSideEmit")
	return pr.answers, err
}

// ServerCount is the number of servers of the namespace.
func (p *clusterProto) ServerCount(ctx context.Context) (int, error) {
	return p.link.serverCount(ctx)
}

// ---------------------------------------------------------------------------
// Receiving

// onMessage decodes a message of one of the namespace's channels and
// handles it, unless it is this server's own or another namespace's.
func (p *clusterProto) onMessage(channel string, payload []byte) {
	js, atts, err := rediswire.DecodeMessage(payload)
	var (
		m rediswire.ClusterMessage
		d rediswire.ClusterData
	)
	if err == nil {
		m, d, err = rediswire.DecodeCluster(js)
	}
	if err != nil {
		p.c.stats.decodeErrors.Add(1)
		p.c.log.decodeError(channel, err)
		return
	}
	if m.UID == p.uid || m.Nsp != p.host.Name() {
		return
	}
	p.handle(m.UID, m.Type, &d, atts)
}

// handle applies a message of another server (from is its uid).
func (p *clusterProto) handle(from string, typ int, d *rediswire.ClusterData, atts [][]byte) {
	switch typ {
	case rediswire.MsgBroadcast:
		data, ok := rediswire.PacketData(d.Packet)
		if !ok {
			return
		}
		pkt := &socketio.Packet{Data: data, Attachments: atts}
		opts := localOpts(d.Opts)
		if d.RequestID == nil {
			opts.Flags.Timeout = 0
			p.host.Broadcast(pkt, opts)
			return
		}
		id := *d.RequestID
		n := p.host.BroadcastWithAck(pkt, opts, func(args socketio.Args) {
			v, vatts := ackArg(args)
			data := rediswire.AppendJSONString([]byte(`{"requestId":`), []byte(id))
			if v != nil {
				data = append(append(data, `,"packet":`...), v...)
			}
			p.link.respond(from, rediswire.MsgBroadcastAck, append(data, '}'), vatts)
		})
		resp := rediswire.AppendJSONString([]byte(`{"requestId":`), []byte(id))
		resp = strconv.AppendInt(append(resp, `,"clientCount":`...), int64(n), 10)
		p.link.respond(from, rediswire.MsgBroadcastClientCount, append(resp, '}'), nil)

	case rediswire.MsgSocketsJoin:
		p.host.AddSockets(localOpts(d.Opts), d.Rooms)
	case rediswire.MsgSocketsLeave:
		p.host.DelSockets(localOpts(d.Opts), d.Rooms)
	case rediswire.MsgDisconnectSockets:
		p.host.DisconnectSockets(localOpts(d.Opts), d.Close)

	case rediswire.MsgFetchSockets:
		if d.RequestID == nil {
			return
		}
		data := rediswire.AppendJSONString([]byte(`{"requestId":`), []byte(*d.RequestID))
		data = append(append(data, `,"sockets":`...), socketsJSON(p.host.FetchSockets(localOpts(d.Opts)))...)
		p.link.respond(from, rediswire.MsgFetchSocketsResponse, append(data, '}'), nil)

	case rediswire.MsgServerSideEmit:
		if len(d.Packet) == 0 || d.Packet[0] != '[' {
			return
		}
		pkt := &socketio.Packet{Data: d.Packet, Attachments: atts}
		if d.RequestID == nil {
			p.host.ServerSideEmit(pkt, nil)
			return
		}
		id := *d.RequestID
		var once sync.Once
		p.host.ServerSideEmit(pkt, func(args ...any) {
			once.Do(func() {
				v, vatts, err := firstArg(args)
				if err != nil {
					p.c.log.l.Warn("redisadapter: cannot encode a serverSideEmit answer", "err", err)
					return
				}
				data := rediswire.AppendJSONString([]byte(`{"requestId":`), []byte(id))
				if v != nil {
					data = append(append(data, `,"packet":`...), v...)
				}
				p.link.respond(from, rediswire.MsgServerSideEmitResponse, append(data, '}'), vatts)
			})
		})

	case rediswire.MsgBroadcastClientCount, rediswire.MsgBroadcastAck,
		rediswire.MsgFetchSocketsResponse, rediswire.MsgServerSideEmitResponse:
		p.onResponse(typ, d, atts)
	}
}

func (p *clusterProto) onResponse(typ int, d *rediswire.ClusterData, atts [][]byte) {
	if d.RequestID == nil {
		return
	}
	id := *d.RequestID
	switch typ {
	case rediswire.MsgBroadcastClientCount:
		if ack := p.reqs.ack(id); ack != nil && d.ClientCount != nil {
			ack.clients(*d.ClientCount)
		}
	case rediswire.MsgBroadcastAck:
		if ack := p.reqs.ack(id); ack != nil {
			ack.ack(argsOf(d.Packet, atts))
		}
	case rediswire.MsgFetchSocketsResponse:
		p.reqs.answer(id, func(pr *pending) {
			pr.got++
			if list, ok := parseSockets(p.host, d.Sockets, atts); ok {
				pr.sockets = append(pr.sockets, list...)
			}
		})
	case rediswire.MsgServerSideEmitResponse:
		p.reqs.answer(id, func(pr *pending) {
			pr.got++
			pr.answers = append(pr.answers, argsOf(d.Packet, atts))
		})
	}
}
