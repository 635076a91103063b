package redisadapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
)

// classicAdapter is the adapter of one namespace in classic mode,
// wire-compatible with @socket.io/redis-adapter 8.3's RedisAdapter
// (lib/index.ts): see the protocol notes §5.2.
type classicAdapter struct {
	// Static after construction.
	c    *Cluster
	host socketio.AdapterHost
	uid  string // uid2(6), like Node's; different per namespace
	ch   rediswire.ClassicChannels

	reqs      *requests
	closeOnce sync.Once
}

var _ socketio.Adapter = (*classicAdapter)(nil)

func newClassic(c *Cluster, host socketio.AdapterHost) *classicAdapter {
	a := &classicAdapter{c: c, host: host, uid: rediswire.UID2(6), reqs: newRequests()}
	a.ch = rediswire.ClassicNames(c.cfg.KeyPrefix, host.Name(), a.uid)
	c.subscribe(kindPattern, a.ch.Pattern, a.onBroadcast)
	c.subscribe(kindChannel, a.ch.Request, a.onRequest)
	c.subscribe(kindChannel, a.ch.Response, a.onResponse)
	c.subscribe(kindChannel, a.ch.SpecificResponse, a.onResponse)
	return a
}

// Broadcast delivers p locally, then publishes it once: on the room's
// channel when exactly one room is targeted, else on the namespace's.
// Local delivery does not depend on Redis; the error says whether the
// other servers could be reached.
func (a *classicAdapter) Broadcast(ctx context.Context, p *socketio.Packet, opts *socketio.BroadcastOptions) error {
	a.host.Broadcast(p, opts)
	rooms, except := uniq(opts.Rooms), uniq(opts.Except)
	msg, err := rediswire.AppendClassicBroadcast(make([]byte, 0, 64+len(p.Data)), a.uid, a.host.Name(),
		p.Data, p.Attachments, rooms, except, wireFlags(opts.Flags), false)
	if err != nil {
		return fmt.Errorf("redisadapter: encoding broadcast: %w", err)
	}
	channel := a.ch.Broadcast
	if len(rooms) == 1 {
		channel = rediswire.RoomChannel(channel, rooms[0])
	}
	return a.c.publish(ctx, channel, msg)
}

// onBroadcast handles a message of the namespace's pattern subscription.
func (a *classicAdapter) onBroadcast(channel string, payload []byte) {
	base := a.ch.Broadcast
	if !strings.HasPrefix(channel, base) {
		return
	}
	if room := strings.TrimSuffix(channel[len(base):], "#"); room != "" && a.host.Namespace().RoomSize(room) == 0 {
		return // a room without local members: nothing to decode (Node does the same)
	}
	b, own, err := rediswire.DecodeClassicBroadcast(payload, a.uid)
	if err != nil {
		a.c.stats.decodeErrors.Add(1)
		a.c.log.decodeError(channel, err)
		return
	}
	if own || b.Nsp != a.host.Name() || len(b.Data) == 0 || b.Data[0] != '[' {
		return
	}
	a.host.Broadcast(&socketio.Packet{Data: b.Data, Attachments: b.Attachments}, &socketio.BroadcastOptions{
		Rooms: b.Rooms, Except: b.Except,
		Flags: socketio.BroadcastFlags{Volatile: b.Flags.Volatile, NoCompress: b.Flags.NoCompress},
	})
}

// BroadcastWithAck delivers p locally asking for acknowledgements, and
// publishes a BROADCAST request (msgpack, as Node sends it); every other
// server answers with its client count, then each client's ack.
func (a *classicAdapter) BroadcastWithAck(ctx context.Context, p *socketio.Packet, opts *socketio.BroadcastOptions, clients func(int), ack func(socketio.Args)) error {
	clients(a.host.BroadcastWithAck(p, opts, ack))
	id := rediswire.UID2(6)
	timeout := opts.Flags.Timeout
	if timeout <= 0 {
		timeout = defaultAckTimeout
	}
	js := make([]byte, 0, 128+len(p.Data))
	js = append(js, `{"uid":`...)
	js = rediswire.AppendJSONString(js, []byte(a.uid))
	js = append(js, `,"requestId":`...)
	js = rediswire.AppendJSONString(js, []byte(id))
	js = append(js, `,"type":7,"packet":{"type":2,"data":`...)
	js = append(js, p.Data...)
	js = append(js, `,"nsp":`...)
	js = rediswire.AppendJSONString(js, []byte(a.host.Name()))
	js = append(js, `},"opts":`...)
	f := wireFlags(opts.Flags)
	f.Timeout = timeout
	js = rediswire.AppendOptsJSON(js, uniq(opts.Rooms), uniq(opts.Except), &f)
	js = append(js, '}')
	msg, err := rediswire.EncodeMessage(js, p.Attachments, true)
	if err != nil {
		return fmt.Errorf("redisadapter: encoding broadcast: %w", err)
	}
	a.reqs.addAck(id, clients, ack, timeout)
	if err := a.c.publish(ctx, a.ch.Request, msg); err != nil {
		a.reqs.dropAck(id)
		return err
	}
	return nil
}

// defaultAckTimeout keeps the acknowledgements of a broadcast asked
// without a timeout (socketio's own default for local acks).
const defaultAckTimeout = 2 * time.Minute

// AddSockets applies socketsJoin locally at once (Node applies its own
// request when it comes back from Redis; the result is the same, sooner)
// and publishes it for the other servers.
func (a *classicAdapter) AddSockets(ctx context.Context, opts *socketio.BroadcastOptions, rooms []string) error {
	a.host.AddSockets(opts, rooms)
	return a.publishRequest(ctx, rediswire.ReqRemoteJoin, opts, func(js []byte) []byte {
		return rediswire.AppendStringsJSON(append(js, `,"rooms":`...), rooms)
	})
}

// DelSockets is AddSockets for socketsLeave.
func (a *classicAdapter) DelSockets(ctx context.Context, opts *socketio.BroadcastOptions, rooms []string) error {
	a.host.DelSockets(opts, rooms)
	return a.publishRequest(ctx, rediswire.ReqRemoteLeave, opts, func(js []byte) []byte {
		return rediswire.AppendStringsJSON(append(js, `,"rooms":`...), rooms)
	})
}

// DisconnectSockets is AddSockets for disconnectSockets.
func (a *classicAdapter) DisconnectSockets(ctx context.Context, opts *socketio.BroadcastOptions, close bool) error {
	a.host.DisconnectSockets(opts, close)
	return a.publishRequest(ctx, rediswire.ReqRemoteDisconnect, opts, func(js []byte) []byte {
		return strconv.AppendBool(append(js, `,"close":`...), close)
	})
}

// publishRequest publishes {"uid","type",["requestId"],"opts",...rest}.
func (a *classicAdapter) publishRequest(ctx context.Context, typ int, opts *socketio.BroadcastOptions, rest func([]byte) []byte) error {
	js := a.requestHead(typ, "")
	js = append(js, `,"opts":`...)
	js = rediswire.AppendOptsJSON(js, uniq(opts.Rooms), uniq(opts.Except), nil)
	if rest != nil {
		js = rest(js)
	}
	js = append(js, '}')
	return a.c.publish(ctx, a.ch.Request, js)
}

// requestHead starts a request: {"uid":...,"requestId":...,"type":N
// (without the closing brace).
func (a *classicAdapter) requestHead(typ int, id string) []byte {
	js := make([]byte, 0, 128)
	js = append(js, `{"uid":`...)
	js = rediswire.AppendJSONString(js, []byte(a.uid))
	if id != "" {
		js = append(js, `,"requestId":`...)
		js = rediswire.AppendJSONString(js, []byte(id))
	}
	js = append(js, `,"type":`...)
	return strconv.AppendInt(js, int64(typ), 10)
}

// FetchSockets returns the local sockets and those of every other server
// (REMOTE_FETCH), waiting for one answer per server counted by NUMSUB. On
// error (Redis unavailable, timeout) it returns what it has with the error.
func (a *classicAdapter) FetchSockets(ctx context.Context, opts *socketio.BroadcastOptions) ([]*socketio.RemoteSocket, error) {
	local := a.host.FetchSockets(opts)
	n, err := a.ServerCount(ctx)
	if err != nil {
		return local, err
	}
	if n <= 1 {
		return local, nil
	}
	id := rediswire.UID2(6)
	p := &pending{kind: rediswire.ReqRemoteFetch, expected: n, got: 1, sockets: local}
	a.reqs.add(id, p)
	js := a.requestHead(rediswire.ReqRemoteFetch, id)
	js = append(js, `,"opts":`...)
	js = append(rediswire.AppendOptsJSON(js, uniq(opts.Rooms), uniq(opts.Except), nil), '}')
	if err := a.c.publish(ctx, a.ch.Request, js); err != nil {
		a.reqs.forget(id)
		return local, err
	}
	err = a.reqs.wait(ctx, id, p, a.c.cfg.RequestsTimeout, "fetchSockets")
	return p.sockets, err
}

// AllRooms returns the rooms of every server (ALL_ROOMS).
func (a *classicAdapter) AllRooms(ctx context.Context) ([]string, error) {
	local := a.host.Rooms()
	n, err := a.ServerCount(ctx)
	if err != nil {
		return local, err
	}
	if n <= 1 {
		return local, nil
	}
	id := rediswire.UID2(6)
	p := &pending{kind: rediswire.ReqAllRooms, expected: n, got: 1, rooms: make(map[string]struct{}, len(local))}
	for _, r := range local {
		p.rooms[r] = struct{}{}
	}
	a.reqs.add(id, p)
	js := append(a.requestHead(rediswire.ReqAllRooms, id), '}')
	if err := a.c.publish(ctx, a.ch.Request, js); err != nil {
		a.reqs.forget(id)
		return local, err
	}
	err = a.reqs.wait(ctx, id, p, a.c.cfg.RequestsTimeout, "allRooms")
	out := make([]string, 0, len(p.rooms))
	for r := range p.rooms {
		out = append(out, r)
	}
	return out, err
}

// ServerSideEmit sends an event to the other servers' namespace.
func (a *classicAdapter) ServerSideEmit(ctx context.Context, p *socketio.Packet) error {
	msg, err := a.sseRequest("", p)
	if err != nil {
		return err
	}
	return a.c.publish(ctx, a.ch.Request, msg)
}

func (a *classicAdapter) sseRequest(id string, p *socketio.Packet) ([]byte, error) {
	js := a.requestHead(rediswire.ReqServerSideEmit, id)
	js = append(js, `,"data":`...)
	js = append(append(js, p.Data...), '}')
	// JSON like Node, or msgpack when the arguments hold binary (Node
	// decodes both; JSON would turn the bytes into {"type":"Buffer",...}).
	return rediswire.EncodeMessage(js, p.Attachments, false)
}

// ServerSideEmitWithAck sends an event to the other servers and waits for
// one answer from each (NUMSUB minus this server). On timeout it returns
// the answers received with ErrTimeout.
func (a *classicAdapter) ServerSideEmitWithAck(ctx context.Context, p *socketio.Packet) ([]socketio.Args, error) {
	n, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n-1 <= 0 {
		return nil, nil
	}
	id := rediswire.UID2(6)
	pr := &pending{kind: rediswire.ReqServerSideEmit, expected: n - 1}
	a.reqs.add(id, pr)
	msg, err := a.sseRequest(id, p)
	if err != nil {
		a.reqs.forget(id)
		return nil, err
	}
	if err := a.c.publish(ctx, a.ch.Request, msg); err != nil {
		a.reqs.forget(id)
		return nil, err
	}
	err = a.reqs.wait(ctx, id, pr, a.c.cfg.RequestsTimeout, "serverSideEmit")
	return pr.answers, err
}

// ServerCount is Node's serverCount: the subscribers of the request
// channel, one per server.
func (a *classicAdapter) ServerCount(ctx context.Context) (int, error) {
	return a.c.numSub(ctx, a.ch.Request)
}

// Close unsubscribes the namespace's channels and ends its pending
// requests.
func (a *classicAdapter) Close() error {
	a.closeOnce.Do(func() {
		a.c.unsubscribe(kindPattern, a.ch.Pattern)
		a.c.unsubscribe(kindChannel, a.ch.Request)
		a.c.unsubscribe(kindChannel, a.ch.Response)
		a.c.unsubscribe(kindChannel, a.ch.SpecificResponse)
		a.reqs.close()
	})
	return nil
}

// ---------------------------------------------------------------------------
// Requests from other servers

// decodeRequest decodes a message of the request or a response channel;
// a message it cannot read is counted and logged, and ok is false.
func (a *classicAdapter) decodeRequest(channel string, payload []byte) (q rediswire.Request, atts [][]byte, ok bool) {
	js, atts, err := rediswire.DecodeMessage(payload)
	if err == nil {
		err = json.Unmarshal(js, &q)
	}
	if err != nil {
		a.c.stats.decodeErrors.Add(1)
		a.c.log.decodeError(channel, err)
		return q, nil, false
	}
	return q, atts, true
}

// onRequest handles a message of the request channel (JSON, or msgpack
// for broadcasts with ack and for messages carrying binary).
func (a *classicAdapter) onRequest(channel string, payload []byte) {
	q, atts, ok := a.decodeRequest(channel, payload)
	if !ok {
		return
	}
	ctx := context.Background()
	switch q.TypeOr(-1) {
	case rediswire.ReqSockets: // legacy: the ids of the sockets in rooms
		if a.reqs.has(q.RequestID) {
			return
		}
		var rooms rediswire.Rooms
		_ = json.Unmarshal(q.Rooms, &rooms)
		ids := []string{}
		for _, s := range a.host.FetchSockets(&socketio.BroadcastOptions{Rooms: rooms}) {
			ids = append(ids, s.ID)
		}
		js := a.responseHead(q.RequestID)
		js = rediswire.AppendStringsJSON(append(js, `,"sockets":`...), ids)
		a.publishResponse(ctx, q.UID, append(js, '}'))

	case rediswire.ReqAllRooms:
		if a.reqs.has(q.RequestID) {
			return
		}
		js := a.responseHead(q.RequestID)
		js = rediswire.AppendStringsJSON(append(js, `,"rooms":`...), a.host.Rooms())
		a.publishResponse(ctx, q.UID, append(js, '}'))

	case rediswire.ReqRemoteJoin, rediswire.ReqRemoteLeave, rediswire.ReqRemoteDisconnect:
		if q.Opts == nil {
			a.legacyRemote(ctx, &q)
			return
		}
		if q.UID == a.uid {
			return // applied when sent
		}
		opts := localOpts(q.Opts)
		opts.Flags = socketio.BroadcastFlags{}
		var rooms rediswire.Rooms
		_ = json.Unmarshal(q.Rooms, &rooms)
		switch *q.Type {
		case rediswire.ReqRemoteJoin:
			a.host.AddSockets(opts, rooms)
		case rediswire.ReqRemoteLeave:
			a.host.DelSockets(opts, rooms)
		default:
			a.host.DisconnectSockets(opts, q.Close)
		}

	case rediswire.ReqRemoteFetch:
		if q.UID == a.uid || a.reqs.has(q.RequestID) {
			return
		}
		opts := localOpts(q.Opts)
		opts.Flags = socketio.BroadcastFlags{}
		js := a.responseHead(q.RequestID)
		js = append(append(js, `,"sockets":`...), socketsJSON(a.host.FetchSockets(opts))...)
		a.publishResponse(ctx, q.UID, append(js, '}'))

	case rediswire.ReqServerSideEmit:
		if q.UID == a.uid || len(q.Data) == 0 || q.Data[0] != '[' {
			return
		}
		p := &socketio.Packet{Data: q.Data, Attachments: atts}
		if q.RequestID == "" {
			a.host.ServerSideEmit(p, nil)
			return
		}
		var once sync.Once
		a.host.ServerSideEmit(p, func(args ...any) {
			once.Do(func() { a.answerServerSideEmit(q.RequestID, args) })
		})

	case rediswire.ReqBroadcast:
		if q.UID == a.uid || a.reqs.ack(q.RequestID) != nil {
			return
		}
		p, nsp, ok := packetOf(q.Packet, atts)
		if !ok || (nsp != "" && nsp != a.host.Name()) {
			return
		}
		id, requester := q.RequestID, q.UID
		n := a.host.BroadcastWithAck(p, localOpts(q.Opts), func(args socketio.Args) {
			v, vatts := ackArg(args)
			js := []byte(`{"type":9,"requestId":`)
			js = rediswire.AppendJSONString(js, []byte(id))
			if v != nil {
				js = append(append(js, `,"packet":`...), v...)
			}
			msg, err := rediswire.EncodeMessage(append(js, '}'), vatts, true)
			if err == nil {
				a.publishResponse(context.Background(), requester, msg)
			}
		})
		js := []byte(`{"type":8,"requestId":`)
		js = rediswire.AppendJSONString(js, []byte(id))
		js = strconv.AppendInt(append(js, `,"clientCount":`...), int64(n), 10)
		a.publishResponse(ctx, requester, append(js, '}'))
	}
}

// legacyRemote answers the remoteJoin/remoteLeave/remoteDisconnect of
// adapters before 8.0 ({sid, room|close}), from the server that has the
// socket.
func (a *classicAdapter) legacyRemote(ctx context.Context, q *rediswire.Request) {
	s, ok := a.host.Namespace().Socket(q.SID)
	if !ok {
		return
	}
	var room string
	if err := json.Unmarshal(q.Room, &room); err != nil && len(q.Room) > 0 {
		room = strings.TrimSpace(string(q.Room)) // a numeric room
	}
	switch *q.Type {
	case rediswire.ReqRemoteJoin:
		s.Join(room)
	case rediswire.ReqRemoteLeave:
		s.Leave(room)
	default:
		s.Disconnect(q.Close)
	}
	a.publishResponse(ctx, q.UID, append(a.responseHead(q.RequestID), '}'))
}

func (a *classicAdapter) responseHead(id string) []byte {
	js := make([]byte, 0, 64)
	js = append(js, `{"requestId":`...)
	return rediswire.AppendJSONString(js, []byte(id))
}

// answerServerSideEmit publishes a server-side handler's answer: always on
// the common response channel, as Node does.
func (a *classicAdapter) answerServerSideEmit(id string, args []any) {
	v, atts, err := firstArg(args)
	if err != nil {
		a.c.log.l.Warn("redisadapter: cannot encode a serverSideEmit answer", "err", err)
		return
	}
	js := []byte(`{"type":6,"requestId":`)
	js = rediswire.AppendJSONString(js, []byte(id))
	if v != nil {
		js = append(append(js, `,"data":`...), v...)
	}
	msg, err := rediswire.EncodeMessage(append(js, '}'), atts, false)
	if err == nil {
		a.publishErr(context.Background(), a.ch.Response, msg)
	}
}

// publishResponse sends an answer to the requester: on the common response
// channel, or on the requester's own with PublishOnSpecificResponseChannel.
func (a *classicAdapter) publishResponse(ctx context.Context, requester string, msg []byte) {
	channel := a.ch.Response
	if a.c.cfg.PublishOnSpecificResponseChannel && requester != "" {
		channel = a.ch.Response + requester + "#"
	}
	a.publishErr(ctx, channel, msg)
}

func (a *classicAdapter) publishErr(ctx context.Context, channel string, msg []byte) {
	if err := a.c.publish(ctx, channel, msg); err != nil && !errors.Is(err, ErrClosed) {
		a.c.log.l.Debug("redisadapter: cannot publish a response", "channel", channel, "err", err)
	}
}

// onResponse handles a message of a response channel.
func (a *classicAdapter) onResponse(channel string, payload []byte) {
	q, atts, ok := a.decodeRequest(channel, payload)
	if !ok {
		return
	}
	if ack := a.reqs.ack(q.RequestID); ack != nil {
		switch q.TypeOr(-1) {
		case rediswire.ReqBroadcastClientCount:
			if q.ClientCount != nil {
				ack.clients(*q.ClientCount)
			}
		case rediswire.ReqBroadcastAck:
			ack.ack(argsOf(q.Packet, atts))
		}
		return
	}
	if q.RequestID == "" {
		return
	}
	a.reqs.answer(q.RequestID, func(p *pending) {
		switch p.kind {
		case rediswire.ReqRemoteFetch, rediswire.ReqSockets:
			p.got++
			if list, ok := parseSockets(a.host, q.Sockets, atts); ok {
				p.sockets = append(p.sockets, list...)
			}
		case rediswire.ReqAllRooms:
			p.got++
			var rooms rediswire.Rooms
			if json.Unmarshal(q.Rooms, &rooms) == nil {
				for _, r := range rooms {
					p.rooms[r] = struct{}{}
				}
			}
		case rediswire.ReqServerSideEmit:
			p.got++
			p.answers = append(p.answers, argsOf(q.Data, atts))
		}
	})
}
