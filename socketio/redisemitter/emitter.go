// Package redisemitter publishes Socket.IO events into a Redis-backed
// cluster without running a server, like Node's @socket.io/redis-emitter
// 5.1, whose wire format it matches byte for byte (uid "emitter"): the
// servers (ours with socketio/redisadapter, Node's with
// @socket.io/redis-adapter, or both) deliver the events to their clients.
//
//	e, err := redisemitter.NewFromConfig(cfg) // cfg: the cluster's redisadapter.Config
//	defer e.Close()
//	err = e.Of("/events").To("org:42").Emit(ctx, "invoice:created", payload)
//
// It supports rooms, except, namespaces, volatile and compress flags,
// ServerSideEmit (without acknowledgement, as in Node), SocketsJoin,
// SocketsLeave and DisconnectSockets. Arguments are encoded as by
// socketio.NewPacket: []byte is binary (a Buffer for Node clients),
// json.RawMessage is inserted verbatim, anything else goes through
// encoding/json.
//
// Node's emitter only speaks to classic-mode servers (it uses PUBLISH).
// With a sharded cluster (redisadapter.Sharded) this package publishes the
// sharded adapter's ClusterMessages with SPUBLISH instead, on the channels
// the servers' subscription mode expects: an extension Node lacks.
//
// An Emitter is immutable and safe for concurrent use; the methods that
// select rooms or namespaces return new values sharing the connection.
package redisemitter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
	"github.com/operate/realtime/socketio/redisadapter"
)

// ErrUnavailable wraps failures to reach Redis.
var ErrUnavailable = redisadapter.ErrUnavailable

// Options configure an Emitter created by New.
type Options struct {
	// KeyPrefix is the channel prefix of the cluster (Node's "key").
	// Zero means "socket.io".
	KeyPrefix string
	// Sharded publishes for servers in sharded mode (SPUBLISH of
	// ClusterMessages) instead of classic mode.
	Sharded bool
	// SubscriptionMode of the sharded servers, which decides the channel
	// of a one-room broadcast. Zero means Dynamic, Node's default.
	SubscriptionMode redisadapter.SubscriptionMode
	// PublishTimeout bounds each publish. Zero means 2 s.
	PublishTimeout time.Duration
}

// Emitter publishes to one namespace ("/" unless Of chose another).
type Emitter struct {
	conn *conn
	opts Options
	nsp  string
}

// conn is the Redis client, created on first use when New was not given
// one, so that a service starts while Redis is down.
type conn struct {
	mu       sync.Mutex
	client   rueidis.Client
	option   rueidis.ClientOption
	owned    bool
	lastErr  error
	lastTry  time.Time
	retry    time.Duration
	closed   bool
	closeErr error
}

// New returns an Emitter publishing through client (owned by the caller:
// Close does not close it).
func New(client rueidis.Client, opts *Options) *Emitter {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	return &Emitter{conn: &conn{client: client}, opts: o.withDefaults(), nsp: "/"}
}

// NewFromConfig returns an Emitter for the cluster cfg describes (its
// address, credentials, TLS, key prefix, mode and subscription mode), with
// its own connection, made on first use and re-made after failures: Redis
// need not be up yet. Close closes it.
func NewFromConfig(cfg redisadapter.Config) (*Emitter, error) {
	if cfg.Addr == "" {
		return nil, errors.New("redisemitter: Config.Addr is empty")
	}
	o := Options{
		KeyPrefix:        cfg.KeyPrefix,
		Sharded:          cfg.Mode == redisadapter.Sharded,
		SubscriptionMode: cfg.SubscriptionMode,
		PublishTimeout:   cfg.PublishTimeout,
	}
	retry := cfg.MinRetryDelay
	if retry <= 0 {
		retry = 100 * time.Millisecond
	}
	return &Emitter{conn: &conn{option: cfg.ClientOption(), owned: true, retry: retry}, opts: o.withDefaults(), nsp: "/"}, nil
}

func (o Options) withDefaults() Options {
	if o.KeyPrefix == "" {
		o.KeyPrefix = "socket.io"
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 2 * time.Second
	}
	return o
}

// get returns the client, connecting if needed (at most once per retry
// delay while Redis refuses).
func (c *conn) get() (rueidis.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("redisemitter: closed")
	}
	if c.client != nil {
		return c.client, nil
	}
	if c.lastErr != nil && time.Since(c.lastTry) < c.retry {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, c.lastErr)
	}
	c.lastTry = time.Now()
	cl, err := rueidis.NewClient(c.option)
	if err != nil {
		c.lastErr = err
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	c.client, c.lastErr = cl, nil
	return cl, nil
}

// Close closes the connection NewFromConfig made; with New it does
// nothing. It is idempotent.
func (e *Emitter) Close() error {
	c := e.conn
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.closeErr
	}
	c.closed = true
	if c.owned && c.client != nil {
		c.client.Close()
	}
	return nil
}

// Of returns an Emitter for another namespace.
func (e *Emitter) Of(nsp string) *Emitter {
	if nsp == "" || nsp[0] != '/' {
		nsp = "/" + nsp
	}
	return &Emitter{conn: e.conn, opts: e.opts, nsp: nsp}
}

// Namespace returns the emitter's namespace.
func (e *Emitter) Namespace() string { return e.nsp }

func (e *Emitter) op() Operator { return Operator{e: e} }

// To selects the sockets in rooms.
func (e *Emitter) To(rooms ...string) Operator { return e.op().To(rooms...) }

// In is an alias of To.
func (e *Emitter) In(rooms ...string) Operator { return e.op().To(rooms...) }

// Except excludes the sockets in rooms.
func (e *Emitter) Except(rooms ...string) Operator { return e.op().Except(rooms...) }

// Volatile lets servers drop the event for clients not ready to take it.
func (e *Emitter) Volatile() Operator { return e.op().Volatile() }

// Compress sets whether the event may be compressed.
func (e *Emitter) Compress(on bool) Operator { return e.op().Compress(on) }

// Emit broadcasts an event to every socket of the namespace.
func (e *Emitter) Emit(ctx context.Context, event string, args ...any) error {
	return e.op().Emit(ctx, event, args...)
}

// EmitPacket broadcasts an encoded event to every socket of the namespace.
func (e *Emitter) EmitPacket(ctx context.Context, p *socketio.Packet) error {
	return e.op().EmitPacket(ctx, p)
}

// SocketsJoin makes every socket of the namespace join rooms.
func (e *Emitter) SocketsJoin(ctx context.Context, rooms ...string) error {
	return e.op().SocketsJoin(ctx, rooms...)
}

// SocketsLeave makes every socket of the namespace leave rooms.
func (e *Emitter) SocketsLeave(ctx context.Context, rooms ...string) error {
	return e.op().SocketsLeave(ctx, rooms...)
}

// DisconnectSockets disconnects every socket of the namespace.
func (e *Emitter) DisconnectSockets(ctx context.Context, close bool) error {
	return e.op().DisconnectSockets(ctx, close)
}

// ServerSideEmit sends an event to every server's namespace (their
// OnServerSideEmit handlers, or Node's io.on(event)). Acknowledgements
// are not supported, as in Node.
func (e *Emitter) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	p, err := socketio.NewPacket(event, args...)
	if err != nil {
		return err
	}
	var msg []byte
	if e.opts.Sharded {
		data := append(append([]byte(`{"packet":`), p.Data...), '}')
		msg, err = rediswire.EncodeMessage(rediswire.AppendClusterMessage(nil, rediswire.MsgServerSideEmit, data, rediswire.EmitterUID, e.nsp), p.Attachments, false)
	} else {
		js := append([]byte(`{"uid":"emitter","type":6,"data":`), p.Data...)
		msg, err = rediswire.EncodeMessage(append(js, '}'), p.Attachments, false)
	}
	if err != nil {
		return fmt.Errorf("redisemitter: %w", err)
	}
	return e.publish(ctx, e.requestChannel(), msg)
}

func (e *Emitter) broadcastChannel() string { return e.opts.KeyPrefix + "#" + e.nsp + "#" }

// requestChannel is where requests go: the request channel (classic) or
// the namespace channel (sharded).
func (e *Emitter) requestChannel() string {
	if e.opts.Sharded {
		return e.broadcastChannel()
	}
	return e.opts.KeyPrefix + "-request#" + e.nsp + "#"
}

func (e *Emitter) publish(ctx context.Context, channel string, msg []byte) error {
	cl, err := e.conn.get()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.PublishTimeout)
	defer cancel()
	build := func() rueidis.Completed {
		if e.opts.Sharded {
			return cl.B().Spublish().Channel(channel).Message(rueidis.BinaryString(msg)).Build()
		}
		return cl.B().Publish().Channel(channel).Message(rueidis.BinaryString(msg)).Build()
	}
	err = cl.Do(ctx, build()).Error()
	for i := 0; i < 4 && err != nil && connErr(ctx, err); i++ {
		// A connection that died while idle fails the first command sent
		// on it (which no server executed); rueidis redials it for the
		// next. One retry per connection of the client (4 by default).
		err = cl.Do(ctx, build()).Error()
	}
	if err != nil {
		return fmt.Errorf("%w: publish: %v", ErrUnavailable, err)
	}
	return nil
}

func connErr(ctx context.Context, err error) bool {
	_, isRedis := rueidis.IsRedisErr(err)
	return !isRedis && ctx.Err() == nil && !errors.Is(err, rueidis.ErrClosing)
}

// Operator is a selection of rooms and flags of an Emitter. It is an
// immutable value.
type Operator struct {
	e      *Emitter
	rooms  []string
	except []string
	flags  rediswire.Flags
}

// To adds rooms to the selection (sockets in any of them).
func (o Operator) To(rooms ...string) Operator {
	o.rooms = appendUniq(o.rooms, rooms)
	return o
}

// In is an alias of To.
func (o Operator) In(rooms ...string) Operator { return o.To(rooms...) }

// Except excludes the sockets in rooms.
func (o Operator) Except(rooms ...string) Operator {
	o.except = appendUniq(o.except, rooms)
	return o
}

// Volatile lets servers drop the event for clients not ready to take it.
func (o Operator) Volatile() Operator {
	o.flags.Volatile = true
	return o
}

// Compress sets whether the event may be compressed.
func (o Operator) Compress(on bool) Operator {
	o.flags.NoCompress = !on
	return o
}

func appendUniq(dst, add []string) []string {
	out := make([]string, len(dst), len(dst)+len(add))
	copy(out, dst)
	for _, r := range add {
		dup := false
		for _, x := range out {
			if x == r {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, r)
		}
	}
	return out
}

// Emit broadcasts an event to the selected sockets. Reserved event names
// (connect, disconnect, ...) are refused.
func (o Operator) Emit(ctx context.Context, event string, args ...any) error {
	p, err := socketio.NewPacket(event, args...)
	if err != nil {
		return err
	}
	return o.EmitPacket(ctx, p)
}

// EmitPacket broadcasts an encoded event (socketio.NewPacket).
func (o Operator) EmitPacket(ctx context.Context, p *socketio.Packet) error {
	e := o.e
	channel := e.broadcastChannel()
	var (
		msg []byte
		err error
	)
	if e.opts.Sharded {
		data := rediswire.AppendBroadcastData(make([]byte, 0, len(p.Data)+96), p.Data, "", o.rooms, o.except, o.flags)
		msg, err = rediswire.EncodeMessage(rediswire.AppendClusterMessage(nil, rediswire.MsgBroadcast, data, rediswire.EmitterUID, e.nsp), p.Attachments, false)
		if len(o.rooms) == 1 {
			r := o.rooms[0]
			if (e.opts.SubscriptionMode == redisadapter.Dynamic && !rediswire.LooksLikeSocketID(r)) || e.opts.SubscriptionMode == redisadapter.DynamicPrivate {
				channel = rediswire.RoomChannel(channel, r)
			}
		}
	} else {
		msg, err = rediswire.AppendClassicBroadcast(make([]byte, 0, len(p.Data)+64), rediswire.EmitterUID, e.nsp, p.Data, p.Attachments, o.rooms, o.except, o.flags, true)
		if len(o.rooms) == 1 {
			channel = rediswire.RoomChannel(channel, o.rooms[0])
		}
	}
	if err != nil {
		return fmt.Errorf("redisemitter: %w", err)
	}
	return e.publish(ctx, channel, msg)
}

// SocketsJoin makes the selected sockets join rooms.
func (o Operator) SocketsJoin(ctx context.Context, rooms ...string) error {
	return o.request(ctx, rediswire.ReqRemoteJoin, rediswire.MsgSocketsJoin, func(b []byte) []byte {
		return rediswire.AppendStringsJSON(append(b, `,"rooms":`...), rooms)
	})
}

// SocketsLeave makes the selected sockets leave rooms.
func (o Operator) SocketsLeave(ctx context.Context, rooms ...string) error {
	return o.request(ctx, rediswire.ReqRemoteLeave, rediswire.MsgSocketsLeave, func(b []byte) []byte {
		return rediswire.AppendStringsJSON(append(b, `,"rooms":`...), rooms)
	})
}

// DisconnectSockets disconnects the selected sockets; with close, their
// whole connection.
func (o Operator) DisconnectSockets(ctx context.Context, close bool) error {
	return o.request(ctx, rediswire.ReqRemoteDisconnect, rediswire.MsgDisconnectSockets, func(b []byte) []byte {
		return strconv.AppendBool(append(b, `,"close":`...), close)
	})
}

// request publishes a join/leave/disconnect: classic
// {"type":N,"opts":{rooms,except},...} without uid (as Node's emitter), or
// the sharded ClusterMessage.
func (o Operator) request(ctx context.Context, classicType, shardedType int, rest func([]byte) []byte) error {
	e := o.e
	if e.opts.Sharded {
		data := append([]byte(nil), `{"opts":`...)
		data = rediswire.AppendOptsJSON(data, o.rooms, o.except, &rediswire.Flags{})
		data = append(rest(data), '}')
		return e.publish(ctx, e.requestChannel(), rediswire.AppendClusterMessage(nil, shardedType, data, rediswire.EmitterUID, e.nsp))
	}
	js := append([]byte(`{"type":`), strconv.Itoa(classicType)...)
	js = append(js, `,"opts":`...)
	js = rediswire.AppendOptsJSON(js, o.rooms, o.except, nil)
	js = append(rest(js), '}')
	return e.publish(ctx, e.requestChannel(), js)
}
