package redisadapter

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Mode selects how servers talk over Redis, which every server of a
// cluster must share.
type Mode uint8

const (
	// Classic is @socket.io/redis-adapter's createAdapter: PUBLISH,
	// SUBSCRIBE and PSUBSCRIBE; every server receives every broadcast.
	Classic Mode = iota
	// Sharded is createShardedAdapter: Redis 7 SPUBLISH and SSUBSCRIBE,
	// with per-room channels (see SubscriptionMode).
	Sharded
	// Streams is @socket.io/redis-streams-adapter 0.3's createAdapter
	// (Redis ≥ 6.2): broadcasts and room operations go through a Redis
	// stream (XADD, read back with XREAD), requests over Pub/Sub, and
	// connection state recovery works across servers and restarts:
	// sessions are kept in Redis and missed packets are read from the
	// stream (see the package documentation).
	Streams
)

func (m Mode) String() string {
	switch m {
	case Sharded:
		return "sharded"
	case Streams:
		return "streams"
	}
	return "classic"
}

// SubscriptionMode is the sharded adapter's subscriptionMode: which rooms
// get a channel of their own, so that a server only receives the
// broadcasts of rooms it has members in.
type SubscriptionMode uint8

const (
	// Dynamic (Node's default): one channel per public room (not a socket
	// id); broadcasts to exactly one such room use it.
	Dynamic SubscriptionMode = iota
	// Static: only the namespace channel and the server's response
	// channel; every server receives every broadcast.
	Static
	// DynamicPrivate: like Dynamic, for socket-id rooms too.
	DynamicPrivate
)

func (s SubscriptionMode) String() string {
	switch s {
	case Static:
		return "static"
	case DynamicPrivate:
		return "dynamic-private"
	}
	return "dynamic"
}

// Config configures a Cluster. Only Addr is required; every other zero
// value means the default written beside it (Node's, where Node has one).
type Config struct {
	// Addr is the Redis server, host:port. Redis Cluster and Sentinel are
	// not supported; a managed Redis behind one endpoint is.
	Addr string
	// Username and Password authenticate (AUTH); both may be empty.
	Username string
	Password string
	// DB is the database number (SELECT). Pub/Sub ignores it, but it is
	// honoured for completeness.
	DB int
	// TLS, when set, connects over TLS with this configuration.
	TLS *tls.Config

	// KeyPrefix prefixes every channel: Node's "key" option (classic) and
	// "channelPrefix" (sharded, streams). Zero means "socket.io".
	KeyPrefix string
	// Mode is Classic (the zero value), Sharded or Streams.
	Mode Mode
	// SubscriptionMode applies to Sharded. Zero means Dynamic.
	SubscriptionMode SubscriptionMode

	// The options of the Streams mode, named after Node's.
	//
	// StreamName is the stream ("streamName"). Zero means "socket.io".
	StreamName string
	// StreamCount spreads namespaces over this many streams, each read by
	// its own connection ("streamCount"): a namespace's stream is
	// "<StreamName>-<hash of its name % StreamCount>". Zero means 1: one
	// stream named StreamName.
	StreamCount int
	// MaxLen bounds each stream: entries beyond it are trimmed (XADD
	// MAXLEN ~, so Redis may keep a few more). It bounds how far back a
	// client can recover: a client whose offset was trimmed reconnects
	// with recovered false. Zero means 10,000 ("maxLen").
	MaxLen int64
	// ReadCount is how many entries one XREAD returns at most
	// ("readCount"). Zero means 100.
	ReadCount int64
	// BlockTime is how long one XREAD waits for new entries
	// ("blockTimeInMs"). Zero means 5 s.
	BlockTime time.Duration
	// SessionKeyPrefix prefixes the keys of persisted sessions
	// ("sessionKeyPrefix"). Zero means "sio:session:".
	SessionKeyPrefix string
	// SessionQueueSize bounds the sessions of disconnected sockets waiting
	// to be written to Redis (streams mode with recovery); beyond it they
	// are dropped and counted (Stats.SessionsDropped). Zero means 4096.
	SessionQueueSize int
	// RequestsTimeout bounds cluster-wide requests (fetchSockets,
	// serverSideEmit with ack, allRooms). Zero means 5 s (Node's
	// requestsTimeout).
	RequestsTimeout time.Duration
	// PublishOnSpecificResponseChannel sends responses to the requester's
	// own response channel instead of the common one (classic mode; Node's
	// option of the same name). Responses to serverSideEmit always use the
	// common channel, as in Node.
	PublishOnSpecificResponseChannel bool

	// PublishTimeout bounds one publish; a broadcast that cannot reach
	// Redis in time fails with ErrUnavailable. Zero means 2 s.
	PublishTimeout time.Duration
	// DialTimeout bounds connecting to Redis. Zero means 2 s.
	DialTimeout time.Duration
	// MinRetryDelay and MaxRetryDelay bound the exponential backoff (with
	// jitter) between reconnection attempts. Zero means 100 ms and 5 s.
	MinRetryDelay time.Duration
	MaxRetryDelay time.Duration
	// ProbeInterval is how often a probe is published on the server's own
	// probe channel: when a probe does not come back within an interval,
	// the subscription is considered silently broken and is rebuilt.
	// Zero means 5 s; a negative value disables probing.
	ProbeInterval time.Duration

	// Workers is the number of goroutines that handle received messages.
	// The messages of one publishing server (and of one channel) are
	// always handled by the same worker, so their order is kept; different
	// publishers are handled in parallel. Zero means GOMAXPROCS. One gives
	// a single total order, as a Node server has.
	Workers int
	// QueueSize bounds each worker's queue of received messages. When a
	// queue is full, messages are dropped and counted (Stats.Dropped):
	// the Redis connection is never blocked. Zero means 8192.
	QueueSize int

	// Logger receives connection state changes (never per message). Nil
	// means slog.Default().
	Logger *slog.Logger

	// AdjustClientOption, when set, adjusts the rueidis options built from
	// the fields above (pipelining, buffer sizes, ...).
	AdjustClientOption func(*rueidis.ClientOption)
}

// withDefaults returns a copy with every zero value resolved.
func (c Config) withDefaults() Config {
	if c.KeyPrefix == "" {
		c.KeyPrefix = "socket.io"
	}
	if c.StreamName == "" {
		c.StreamName = "socket.io"
	}
	if c.StreamCount <= 0 {
		c.StreamCount = 1
	}
	if c.MaxLen <= 0 {
		c.MaxLen = 10_000
	}
	if c.ReadCount <= 0 {
		c.ReadCount = 100
	}
	if c.BlockTime <= 0 {
		c.BlockTime = 5 * time.Second
	}
	if c.SessionKeyPrefix == "" {
		c.SessionKeyPrefix = "sio:session:"
	}
	if c.SessionQueueSize <= 0 {
		c.SessionQueueSize = 4096
	}
	if c.RequestsTimeout <= 0 {
		c.RequestsTimeout = 5 * time.Second
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 2 * time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 2 * time.Second
	}
	if c.MinRetryDelay <= 0 {
		c.MinRetryDelay = 100 * time.Millisecond
	}
	if c.MaxRetryDelay <= 0 {
		c.MaxRetryDelay = 5 * time.Second
	}
	if c.MaxRetryDelay < c.MinRetryDelay {
		c.MaxRetryDelay = c.MinRetryDelay
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = 5 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = max(1, runtimeGOMAXPROCS())
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 8192
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports what is wrong with c, if anything; New calls it, and a
// program that builds c from its own settings can call it to refuse them
// at startup with the name of what is wrong.
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("redisadapter: Config.Addr is empty")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("redisadapter: Config.Addr %q: %w", c.Addr, err)
	}
	if c.Mode > Streams {
		return fmt.Errorf("redisadapter: unknown mode %d", c.Mode)
	}
	if c.SubscriptionMode > DynamicPrivate {
		return fmt.Errorf("redisadapter: unknown subscription mode %d", c.SubscriptionMode)
	}
	if c.DB < 0 {
		return fmt.Errorf("redisadapter: negative database %d", c.DB)
	}
	if c.StreamCount < 0 || c.MaxLen < 0 || c.ReadCount < 0 || c.BlockTime < 0 {
		return errors.New("redisadapter: negative stream option")
	}
	return nil
}

// ClientOption returns the rueidis options for this configuration, for
// other clients of the same Redis (a redisemitter.Emitter, for example).
func (c Config) ClientOption() rueidis.ClientOption {
	c = c.withDefaults()
	o := rueidis.ClientOption{
		InitAddress:       []string{c.Addr},
		Username:          c.Username,
		Password:          c.Password,
		SelectDB:          c.DB,
		TLSConfig:         c.TLS,
		ForceSingleClient: true,
		DisableCache:      true,
		Dialer:            net.Dialer{Timeout: c.DialTimeout, KeepAlive: time.Second},
		// Detect a dead peer within a few seconds even while writing.
		ConnWriteTimeout: 5 * time.Second,
	}
	if c.AdjustClientOption != nil {
		c.AdjustClientOption(&o)
	}
	return o
}

// Redacted describes the configuration for logs, without secrets.
func (c Config) Redacted() string {
	c = c.withDefaults()
	var b strings.Builder
	fmt.Fprintf(&b, "addr=%s mode=%s", c.Addr, c.Mode)
	switch c.Mode {
	case Sharded:
		fmt.Fprintf(&b, " subscription=%s", c.SubscriptionMode)
	case Streams:
		fmt.Fprintf(&b, " stream=%s streams=%d maxlen=%d sessions=%s", c.StreamName, c.StreamCount, c.MaxLen, c.SessionKeyPrefix)
	}
	fmt.Fprintf(&b, " prefix=%s db=%d tls=%t", c.KeyPrefix, c.DB, c.TLS != nil)
	if c.Username != "" {
		fmt.Fprintf(&b, " user=%s", c.Username)
	}
	if c.Password != "" {
		b.WriteString(" password=set")
	}
	return b.String()
}
