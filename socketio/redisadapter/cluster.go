package redisadapter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/rueidis"

	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
)

// Errors.
var (
	// ErrUnavailable wraps every failure to reach Redis: a broadcast that
	// could not be published, a cluster-wide request that could not be
	// sent. Local sockets were still served. An HTTP API answers 503. It
	// wraps socketio.ErrClusterUnavailable.
	ErrUnavailable = fmt.Errorf("redisadapter: redis unavailable: %w", socketio.ErrClusterUnavailable)
	// ErrOutcomeUnknown (which wraps ErrUnavailable) is the error of a
	// broadcast in Streams mode whose append Redis did not answer in time,
	// retries included: it may still land, and then reaches every node's
	// sockets, this one's included, from the stream; or never, and reach
	// none. It was not delivered to this node's sockets on the side (that
	// would repeat it when it lands).
	ErrOutcomeUnknown = fmt.Errorf("%w: %w: no answer to the append: the broadcast may yet reach every node, or none", ErrUnavailable, socketio.ErrOutcomeUnknown)
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("redisadapter: closed")
	// ErrTimeout is returned by cluster-wide requests that did not get
	// every answer within Config.RequestsTimeout (or the context's
	// deadline); the answers received so far are returned with it.
	ErrTimeout = errors.New("redisadapter: timeout reached while waiting for responses")
)

func runtimeGOMAXPROCS() int { return runtime.GOMAXPROCS(0) }

// Cluster is this server's membership in a Redis-backed Socket.IO cluster:
// one Redis client (with automatic pipelining) for publishing, one
// subscription connection shared by every namespace, the workers that
// handle received messages, and the health of it all. Its Adapter method
// is the socketio.AdapterFactory to put in socketio.Options.Adapter.
//
// A Cluster never fails because Redis is down: it keeps retrying in the
// background (exponential backoff with jitter), local sockets are served
// throughout, Ready tells whether cross-node delivery works, and
// cluster-wide operations fail with ErrUnavailable meanwhile. After a
// reconnection every subscription is restored.
//
// All methods are safe for concurrent use.
type Cluster struct {
	// Static after construction.
	cfg          Config
	log          logger
	id           string // names the probe channel
	probeChannel string
	subKind      subKind // of the probe channel and base channels: plain or sharded
	disp         *dispatcher

	client      atomic.Pointer[rueidis.Client] // nil until the first connection
	clientReady chan struct{}                  // closed when client is set
	closed      chan struct{}
	closeOnce   sync.Once
	wg          sync.WaitGroup // the connector and the subscriber

	state   atomic.Int32 // connState
	lastErr atomic.Pointer[errBox]
	pubErr  atomic.Pointer[errBox] // the last publish failed with it; nil after a success

	// Probing (the subscriber goroutine writes sent; the read loop recv).
	probeSent   atomic.Uint64
	probeSentAt atomic.Int64 // unix nanos
	probeRecv   atomic.Uint64

	// Subscriptions. The subscriber goroutine applies desired to the
	// connection; routes map a channel (or pattern) to its handler for
	// the read loop.
	subMu      sync.Mutex
	desired    map[subKey]*subEntry
	desiredVer uint64
	appliedVer uint64        // desiredVer when the connection last matched desired
	settled    chan struct{} // closed and replaced whenever appliedVer or state changes
	routesMu   sync.RWMutex
	routes     map[string]handler
	wake       chan struct{} // cap 1: desired changed

	// Streams mode: one reader per stream, started with its first
	// namespace.
	maxLen    string // Config.MaxLen, as XADD takes it
	readersMu sync.Mutex
	readers   map[string]*streamReader

	stats stats
}

type errBox struct{ err error }

type connState int32

const (
	stateConnecting connState = iota // never subscribed yet
	stateUp                          // subscribed, delivering
	stateDown                        // connection lost or refused; retrying
	stateClosed
)

type subKind uint8

const (
	kindChannel subKind = iota // SUBSCRIBE
	kindPattern                // PSUBSCRIBE
	kindShard                  // SSUBSCRIBE
)

type subKey struct {
	kind subKind
	name string
}

type subEntry struct {
	refs int
	h    handler
}

// handler handles a message received on a channel. It runs on a worker:
// messages of one channel are handled one at a time, in order.
type handler func(channel string, payload []byte)

// New returns a Cluster for cfg and starts connecting in the background.
// It fails only for an invalid configuration; Redis need not be up.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Cluster{
		cfg:         cfg,
		log:         logger{cfg.Logger},
		id:          rediswire.RandomHex(8),
		clientReady: make(chan struct{}),
		closed:      make(chan struct{}),
		desired:     make(map[subKey]*subEntry),
		settled:     make(chan struct{}),
		routes:      make(map[string]handler),
		wake:        make(chan struct{}, 1),
		maxLen:      strconv.FormatInt(cfg.MaxLen, 10),
		readers:     make(map[string]*streamReader),
	}
	c.probeChannel = cfg.KeyPrefix + "-probe#" + c.id + "#"
	c.subKind = kindChannel
	if cfg.Mode == Sharded {
		c.subKind = kindShard
	}
	c.disp = newDispatcher(cfg.Workers, cfg.QueueSize, c.log)
	c.subscribe(c.subKind, c.probeChannel, func(string, []byte) {}) // intercepted in onMessage
	c.wg.Add(2)
	go c.connect()
	go c.subscriber()
	return c, nil
}

// Adapter returns the adapter of a namespace: a socketio.AdapterFactory.
func (c *Cluster) Adapter(host socketio.AdapterHost) socketio.Adapter {
	switch c.cfg.Mode {
	case Sharded:
		return newSharded(c, host)
	case Streams:
		return newStreams(c, host)
	}
	return newClassic(c, host)
}

// Config returns the configuration in use, defaults resolved.
func (c *Cluster) Config() Config { return c.cfg }

// Ready reports whether cross-node delivery works: nil when the
// subscription connection is up with every subscription in place, the last
// probe came back in time and the last publish succeeded; otherwise an
// error (wrapping ErrUnavailable, or ErrClosed) saying why. It is what a
// /readyz endpoint should report.
func (c *Cluster) Ready() error {
	switch connState(c.state.Load()) {
	case stateClosed:
		return ErrClosed
	case stateConnecting:
		if e := c.lastErr.Load(); e != nil {
			return fmt.Errorf("%w: connecting to %s: %v", ErrUnavailable, c.cfg.Addr, e.err)
		}
		return fmt.Errorf("%w: connecting to %s", ErrUnavailable, c.cfg.Addr)
	case stateDown:
		if e := c.lastErr.Load(); e != nil {
			return fmt.Errorf("%w: %s: %v", ErrUnavailable, c.cfg.Addr, e.err)
		}
		return fmt.Errorf("%w: %s: connection lost", ErrUnavailable, c.cfg.Addr)
	}
	if c.probeOverdue() {
		return fmt.Errorf("%w: %s: subscription stopped delivering (probe lost); rebuilding it", ErrUnavailable, c.cfg.Addr)
	}
	if e := c.pubErr.Load(); e != nil {
		return fmt.Errorf("%w: %s: publish failing: %v", ErrUnavailable, c.cfg.Addr, e.err)
	}
	for _, r := range c.streamReaders() {
		if err := r.health(); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrUnavailable, c.cfg.Addr, err)
		}
	}
	return nil
}

func (c *Cluster) streamReaders() []*streamReader {
	c.readersMu.Lock()
	defer c.readersMu.Unlock()
	out := make([]*streamReader, 0, len(c.readers))
	for _, r := range c.readers {
		out = append(out, r)
	}
	return out
}

// WaitSubscribed waits until the cluster is ready and every subscription
// requested so far (namespaces, and rooms in sharded dynamic modes) is in
// place on the Redis connection, and in streams mode every stream is being
// read, or ctx ends. Subscriptions are made asynchronously, as in Node: a
// server that must not miss the first broadcasts of a new namespace or
// room can wait here.
func (c *Cluster) WaitSubscribed(ctx context.Context) error {
	for _, r := range c.streamReaders() {
		if err := r.waitReady(ctx); err != nil {
			return err
		}
	}
	for {
		c.subMu.Lock()
		ok := connState(c.state.Load()) == stateUp && c.appliedVer == c.desiredVer
		ch := c.settled
		c.subMu.Unlock()
		if ok {
			if err := c.Ready(); err == nil {
				return nil
			}
		}
		select {
		case <-ch:
		case <-c.closed:
			return ErrClosed
		case <-ctx.Done():
			if err := c.Ready(); err != nil {
				return fmt.Errorf("%w (%v)", ctx.Err(), err)
			}
			return ctx.Err()
		case <-time.After(c.cfg.ProbeInterval.Abs() + 10*time.Millisecond):
			// Ready may change without a settled notification (a probe
			// coming back); look again.
		}
	}
}

// Close stops the background goroutines and closes the Redis connections.
// Adapters of namespaces still open stop delivering cross-node messages.
// It is idempotent.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.state.Store(int32(stateClosed))
		close(c.closed)
		c.wg.Wait()
		c.disp.close()
		if cl := c.client.Load(); cl != nil {
			(*cl).Close()
		}
		c.subMu.Lock()
		close(c.settled)
		c.settled = make(chan struct{})
		c.subMu.Unlock()
	})
	return nil
}

func (c *Cluster) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// sleep waits d, or returns false if the cluster closes meanwhile.
func (c *Cluster) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.closed:
		return false
	}
}

// backoff is an exponential backoff with full jitter.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }

// setState records a state change, logs transitions and wakes waiters.
func (c *Cluster) setState(s connState, err error) {
	if err != nil {
		c.lastErr.Store(&errBox{err})
	}
	old := connState(c.state.Swap(int32(s)))
	if old == stateClosed {
		c.state.Store(int32(stateClosed))
		return
	}
	if old != s {
		switch s {
		case stateUp:
			c.lastErr.Store(nil)
			c.log.info("redisadapter: connected to Redis", "addr", c.cfg.Addr, "mode", c.cfg.Mode.String())
		case stateDown:
			c.log.warn("redisadapter: Redis connection lost; local delivery continues, retrying", "addr", c.cfg.Addr, "err", err)
		}
	}
	c.subMu.Lock()
	close(c.settled)
	c.settled = make(chan struct{})
	c.subMu.Unlock()
}

// connect creates the Redis client, retrying until Redis answers once;
// rueidis reconnects by itself afterwards.
func (c *Cluster) connect() {
	defer c.wg.Done()
	b := backoff{min: c.cfg.MinRetryDelay, max: c.cfg.MaxRetryDelay}
	logged := false
	for {
		cl, err := rueidis.NewClient(c.cfg.ClientOption())
		if err == nil {
			if c.isClosed() {
				cl.Close()
				return
			}
			c.client.Store(&cl)
			close(c.clientReady)
			return
		}
		c.lastErr.Store(&errBox{err})
		if !logged {
			c.log.warn("redisadapter: cannot connect to Redis; serving local clients only, retrying", "addr", c.cfg.Addr, "err", err)
			logged = true
		}
		if connState(c.state.Load()) == stateConnecting {
			c.setState(stateDown, err)
		}
		if !c.sleep(b.next()) {
			return
		}
	}
}

// redis returns the client, or ErrUnavailable while there is none or the
// subscription connection is known to be down (a publish would most
// likely fail too, after a delay: fail fast instead).
// Client returns the cluster's Redis client, for other keys of the
// application (the gateway's presence), or an error wrapping
// ErrUnavailable while Redis is unreachable and ErrClosed once closed.
// Commands on it share the cluster's connection; never block on it (no
// BLPOP, no SUBSCRIBE).
func (c *Cluster) Client() (rueidis.Client, error) { return c.redis() }

func (c *Cluster) redis() (rueidis.Client, error) {
	switch connState(c.state.Load()) {
	case stateClosed:
		return nil, ErrClosed
	case stateDown:
		if e := c.lastErr.Load(); e != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, e.err)
		}
		return nil, ErrUnavailable
	}
	cl := c.client.Load()
	if cl == nil {
		return nil, fmt.Errorf("%w: not connected yet", ErrUnavailable)
	}
	return *cl, nil
}

// publish sends payload on channel (PUBLISH, or SPUBLISH in sharded mode).
// Concurrent publishes share pipelined round trips.
func (c *Cluster) publish(ctx context.Context, channel string, payload []byte) error {
	_, err := c.publishCount(ctx, channel, payload)
	return err
}

func (c *Cluster) publishCount(ctx context.Context, channel string, payload []byte) (int64, error) {
	cl, err := c.redis()
	if err != nil {
		c.stats.publishErrors.Add(1)
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.PublishTimeout)
	defer cancel()
	build := func() rueidis.Completed {
		if c.cfg.Mode == Sharded {
			return cl.B().Spublish().Channel(channel).Message(rueidis.BinaryString(payload)).Build()
		}
		return cl.B().Publish().Channel(channel).Message(rueidis.BinaryString(payload)).Build()
	}
	n, err := cl.Do(ctx, build()).AsInt64()
	for i := 0; i < maxConnRetries && err != nil && retryable(ctx, err); i++ {
		// An idle pipelined connection learns that Redis restarted only
		// when it is used: the command went to a dead socket, so no server
		// executed it, and rueidis redials that connection for the next
		// command. SPUBLISH may pick any of the client's connections.
		n, err = cl.Do(ctx, build()).AsInt64()
	}
	if err != nil {
		c.stats.publishErrors.Add(1)
		c.pubErr.Store(&errBox{err})
		return 0, fmt.Errorf("%w: publish: %v", ErrUnavailable, err)
	}
	c.stats.published.Add(1)
	if c.pubErr.Load() != nil {
		c.pubErr.Store(nil)
	}
	return n, nil
}

// maxConnRetries bounds the retries of a command that failed on a dead
// connection: one per connection of the client (rueidis's default
// PipelineMultiplex of 2 makes 4).
const maxConnRetries = 4

// retryable reports whether a publish failed on the connection (not with
// a Redis error, not for want of time).
func retryable(ctx context.Context, err error) bool {
	if _, isRedis := rueidis.IsRedisErr(err); isRedis || ctx.Err() != nil || errors.Is(err, rueidis.ErrClosing) {
		return false
	}
	return true
}

// numSub counts the subscribers of a channel (PUBSUB NUMSUB, or
// SHARDNUMSUB in sharded mode): Node's serverCount.
func (c *Cluster) numSub(ctx context.Context, channel string) (int, error) {
	cl, err := c.redis()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.PublishTimeout)
	defer cancel()
	build := func() rueidis.Completed {
		if c.cfg.Mode == Sharded {
			return cl.B().PubsubShardnumsub().Channel(channel).Build()
		}
		return cl.B().PubsubNumsub().Channel(channel).Build()
	}
	m, err := cl.Do(ctx, build()).AsMap() // a map in RESP3, pairs in RESP2
	for i := 0; i < maxConnRetries && err != nil && retryable(ctx, err); i++ {
		m, err = cl.Do(ctx, build()).AsMap()
	}
	if err != nil {
		return 0, fmt.Errorf("%w: pubsub numsub: %v", ErrUnavailable, err)
	}
	v := m[channel]
	n, err := v.AsInt64()
	if err != nil {
		return 0, fmt.Errorf("%w: pubsub numsub: %v", ErrUnavailable, err)
	}
	return int(n), nil
}

// ---------------------------------------------------------------------------
// Subscriptions

// subscribe adds a subscription (reference counted) and its handler; the
// subscriber goroutine applies it to the connection.
func (c *Cluster) subscribe(kind subKind, name string, h handler) {
	k := subKey{kind, name}
	c.subMu.Lock()
	e := c.desired[k]
	if e == nil {
		e = &subEntry{}
		c.desired[k] = e
		c.desiredVer++
	}
	e.refs++
	e.h = h
	c.routesMu.Lock()
	c.routes[name] = h
	c.routesMu.Unlock()
	c.subMu.Unlock()
	c.poke()
}

// unsubscribe drops a reference to a subscription.
func (c *Cluster) unsubscribe(kind subKind, name string) {
	k := subKey{kind, name}
	c.subMu.Lock()
	if e := c.desired[k]; e != nil {
		if e.refs--; e.refs <= 0 {
			delete(c.desired, k)
			c.desiredVer++
			c.routesMu.Lock()
			delete(c.routes, name)
			c.routesMu.Unlock()
		}
	}
	c.subMu.Unlock()
	c.poke()
}

func (c *Cluster) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// subscriber owns the subscription connection: it (re)connects with
// backoff, applies the desired subscriptions, probes the connection and
// rebuilds it when it stops delivering.
func (c *Cluster) subscriber() {
	defer c.wg.Done()
	select {
	case <-c.clientReady:
	case <-c.closed:
		return
	}
	cl := *c.client.Load()
	b := backoff{min: c.cfg.MinRetryDelay, max: c.cfg.MaxRetryDelay}
	first := true
	for {
		err := c.session(cl, &b, &first)
		if c.isClosed() {
			return
		}
		c.setState(stateDown, err)
		if !c.sleep(b.next()) {
			return
		}
	}
}

var (
	errProbeLost        = errors.New("probe not received: subscription silently stopped delivering")
	errSubscriptionLost = errors.New("probe published to no subscriber: subscription lost")
	errConnectionClosed = errors.New("subscription connection closed")
)

// session runs one subscription connection until it fails.
func (c *Cluster) session(cl rueidis.Client, b *backoff, first *bool) error {
	dc, release := cl.Dedicate()
	wait := dc.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: c.onMessage})
	defer func() {
		dc.Close()
		release()
		// The hooks are not called anymore once wait is closed; bound the
		// wait in case the connection is wedged.
		select {
		case <-wait:
		case <-time.After(5 * time.Second):
		}
	}()
	actual := make(map[subKey]struct{})
	if err := c.reconcile(dc, actual); err != nil {
		return err
	}
	// A probe published before this connection subscribed may be lost:
	// start probing afresh.
	c.probeRecv.Store(c.probeSent.Load())
	if !*first {
		c.stats.reconnects.Add(1)
	}
	*first = false
	c.setState(stateUp, nil)
	b.reset()

	var tick <-chan time.Time
	if c.cfg.ProbeInterval > 0 {
		t := time.NewTicker(c.cfg.ProbeInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case err, ok := <-wait:
			if !ok || err == nil {
				err = errConnectionClosed
			}
			return err
		case <-c.wake:
			if err := c.reconcile(dc, actual); err != nil {
				return err
			}
		case <-tick:
			if err := c.probe(cl); err != nil {
				c.stats.probeFailures.Add(1)
				c.log.warn("redisadapter: rebuilding the subscription connection", "addr", c.cfg.Addr, "reason", err)
				return err
			}
		case <-c.closed:
			return ErrClosed
		}
	}
}

// subscribeBatch bounds the channels of one (UN)SUBSCRIBE command.
const subscribeBatch = 256

// reconcile makes the connection's subscriptions match the desired set.
func (c *Cluster) reconcile(dc rueidis.DedicatedClient, actual map[subKey]struct{}) error {
	c.subMu.Lock()
	ver := c.desiredVer
	var add, del [3][]string
	for k := range c.desired {
		if _, ok := actual[k]; !ok {
			add[k.kind] = append(add[k.kind], k.name)
		}
	}
	for k := range actual {
		if _, ok := c.desired[k]; !ok {
			del[k.kind] = append(del[k.kind], k.name)
		}
	}
	c.subMu.Unlock()

	var cmds rueidis.Commands
	for kind := range add {
		for names := range chunks(add[kind]) {
			switch subKind(kind) {
			case kindChannel:
				cmds = append(cmds, dc.B().Subscribe().Channel(names...).Build())
			case kindPattern:
				cmds = append(cmds, dc.B().Psubscribe().Pattern(names...).Build())
			case kindShard:
				cmds = append(cmds, dc.B().Ssubscribe().Channel(names...).Build())
			}
		}
		for names := range chunks(del[kind]) {
			switch subKind(kind) {
			case kindChannel:
				cmds = append(cmds, dc.B().Unsubscribe().Channel(names...).Build())
			case kindPattern:
				cmds = append(cmds, dc.B().Punsubscribe().Pattern(names...).Build())
			case kindShard:
				cmds = append(cmds, dc.B().Sunsubscribe().Channel(names...).Build())
			}
		}
	}
	if len(cmds) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.PublishTimeout+c.cfg.DialTimeout)
		defer cancel()
		for _, r := range dc.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return fmt.Errorf("subscribe: %w", err)
			}
		}
	}
	for kind := range add {
		for _, n := range add[kind] {
			actual[subKey{subKind(kind), n}] = struct{}{}
		}
		for _, n := range del[kind] {
			delete(actual, subKey{subKind(kind), n})
		}
	}
	c.subMu.Lock()
	if c.appliedVer != ver {
		c.appliedVer = ver
		close(c.settled)
		c.settled = make(chan struct{})
	}
	c.subMu.Unlock()
	return nil
}

// chunks yields names in batches of at most subscribeBatch.
func chunks(names []string) func(yield func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(names) > 0 {
			n := min(len(names), subscribeBatch)
			if !yield(names[:n]) {
				return
			}
			names = names[n:]
		}
	}
}

// probe checks that the last probe came back, then publishes the next one
// on the cluster's own probe channel (through the publishing client, so
// that the whole path is exercised).
func (c *Cluster) probe(cl rueidis.Client) error {
	if c.probeOverdue() {
		return errProbeLost
	}
	if c.probeSent.Load() > c.probeRecv.Load() {
		return nil // in flight, not yet overdue
	}
	seq := c.probeSent.Load() + 1
	c.probeSentAt.Store(time.Now().UnixNano())
	c.probeSent.Store(seq)
	n, err := c.publishCount(context.Background(), c.probeChannel, []byte(strconv.FormatUint(seq, 10)))
	if err != nil {
		// Not the subscription's fault; Ready reports the publish error
		// and the connection's own error channel reports a dead link.
		c.probeRecv.Store(seq)
		return nil
	}
	if n == 0 {
		return errSubscriptionLost
	}
	return nil
}

func (c *Cluster) probeOverdue() bool {
	sent := c.probeSent.Load()
	if sent == 0 || c.probeRecv.Load() >= sent || c.cfg.ProbeInterval <= 0 {
		return false
	}
	return time.Since(time.Unix(0, c.probeSentAt.Load())) > c.cfg.ProbeInterval
}

// onMessage runs on the connection's read loop: it must never block. It
// routes the message to a worker (chosen by channel, which keeps each
// channel's order) or drops it when that worker's queue is full.
func (c *Cluster) onMessage(m rueidis.PubSubMessage) {
	if m.Channel == c.probeChannel {
		if seq, err := strconv.ParseUint(m.Message, 10, 64); err == nil {
			for {
				old := c.probeRecv.Load()
				if seq <= old || c.probeRecv.CompareAndSwap(old, seq) {
					break
				}
			}
		}
		return
	}
	key := m.Channel
	if m.Pattern != "" {
		key = m.Pattern
	}
	c.routesMu.RLock()
	h := c.routes[key]
	c.routesMu.RUnlock()
	if h == nil {
		return
	}
	// The payload is only read (attachments are copied into frames), so it
	// may alias the string rueidis allocated for it.
	payload := unsafe.Slice(unsafe.StringData(m.Message), len(m.Message))
	if c.disp.enqueue(job{h: h, channel: m.Channel, payload: payload}) {
		c.stats.received.Add(1)
	} else {
		c.stats.dropped.Add(1)
		c.log.dropped()
	}
}

// ---------------------------------------------------------------------------
// Stats

// Stats are counters since New.
type Stats struct {
	Published     uint64 // messages published
	PublishErrors uint64 // publishes that failed (Redis unreachable, timeout)
	Received      uint64 // messages received and handed to a worker
	Dropped       uint64 // messages dropped because a worker's queue was full
	DecodeErrors  uint64 // messages that could not be decoded
	Reconnects    uint64 // subscription connections re-established
	ProbeFailures uint64 // subscriptions rebuilt because a probe failed

	// Streams mode.
	StreamEntries    uint64 // stream entries read
	StreamReadErrors uint64 // failed stream reads (each retried)
	StreamGaps       uint64 // times the last entry read was gone from the stream after a failure (local sockets disconnected)
	SessionErrors    uint64 // sessions that could not be stored, dropped or restored for want of Redis
	SessionsDropped  uint64 // disconnected sockets' sessions never written: the queue was full (Redis slow or down), or a shutdown's deadline passed first
	// ReplaysFromMemory are recoveries whose missed broadcasts were read
	// from the recent broadcasts this server delivered (recentLog), not
	// from the stream.
	ReplaysFromMemory uint64
	// RecentWarmed are the broadcasts read from the stream into that
	// memory when the stream's reader started (see streamReader.warm).
	RecentWarmed uint64
}

type stats struct {
	published, publishErrors, received, dropped, decodeErrors, reconnects, probeFailures atomic.Uint64
	streamEntries, streamReadErrors, streamGaps, sessionErrors, sessionsDropped          atomic.Uint64
	replaysFromMemory, recentWarmed                                                      atomic.Uint64
}

// Stats returns the counters.
func (c *Cluster) Stats() Stats {
	return Stats{
		Published:     c.stats.published.Load(),
		PublishErrors: c.stats.publishErrors.Load(),
		Received:      c.stats.received.Load(),
		Dropped:       c.stats.dropped.Load(),
		DecodeErrors:  c.stats.decodeErrors.Load(),
		Reconnects:    c.stats.reconnects.Load(),
		ProbeFailures: c.stats.probeFailures.Load(),

		StreamEntries:    c.stats.streamEntries.Load(),
		StreamReadErrors: c.stats.streamReadErrors.Load(),
		StreamGaps:       c.stats.streamGaps.Load(),
		SessionErrors:    c.stats.sessionErrors.Load(),
		SessionsDropped:  c.stats.sessionsDropped.Load(),

		ReplaysFromMemory: c.stats.replaysFromMemory.Load(),
		RecentWarmed:      c.stats.recentWarmed.Load(),
	}
}
