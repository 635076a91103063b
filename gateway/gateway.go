package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/filter"
	"github.com/operate/realtime/internal/logbudget"
	"github.com/operate/realtime/socketio"
)

// Control events exchanged with clients, beside the catalog's business
// events. Their names and payloads are part of the wire contract with the
// web client.
const (
	// EventConnected (server → client) follows a successful connection:
	// {message, userId, organizationId, expiresAt?}. With recovery on it
	// is never replayed; to a new socket it carries the recovery log's
	// head as its offset (socketio.Socket.EmitPositioned), so a client
	// that receives nothing else still recovers from there, and a
	// reconnection storm adds nothing to the log.
	EventConnected = "connected"
	// EventAuthExpiring (server → client) warns that the token expires soon:
	// {message, expiresAt}. Answer with EventAuthRefresh. It and
	// EventAuthExpired, about one connection's token, carry no recovery
	// offset and are never replayed to a recovered connection.
	EventAuthExpiring = "auth:expiring"
	// EventAuthExpired (server → client) says the token expired; the socket
	// is disconnected right after it: {message, code: "TOKEN_EXPIRED",
	// expiresAt}.
	EventAuthExpired = "auth:expired"
	// EventAuthRefresh (client → server) replaces the socket's token:
	// {token}, acknowledged {ok: true, expiresAt} or {ok: false, error, code}.
	EventAuthRefresh = "auth:refresh"
	// EventSubscribe (client → server) {events: [...], filter?: "<CEL>"},
	// acknowledged {success: true, subscribedTo, filter?, subscriptions} or
	// {success: false, error, code}.
	EventSubscribe = "subscribe"
	// EventUnsubscribe (client → server) {events: [...]}, acknowledged
	// {success: true, unsubscribedFrom, subscriptions} or {success: false, error, code}.
	EventUnsubscribe = "unsubscribe"
	// EventHistory (client → server) {since?, limit?, events?} reads the
	// history of the caller's organization and user: acknowledged
	// {success: true, events: [{event, payload, offset}], offset, more} or
	// {success: false, error, code}.
	EventHistory = "history"
	// EventHistoryGap (server → client), right after EventConnected, says
	// that the client asked to recover its session and could not: events
	// may have been missed since the offset it gave, and it should reload
	// what it shows from the source of truth. {message, reason, from}:
	// reason "unavailable" (the session expired, or the events missed are
	// no longer kept: a restart, a trimmed log; or the client gave its
	// session id without an offset, cut before its first event: from is
	// then "") or "declined" (the token names another user or
	// organization than the session's).
	EventHistoryGap = "history:gap"
)

// HistoryGapMessage is the message of the EventHistoryGap payload.
const HistoryGapMessage = "Some events since the last connection could not be recovered: reload the data shown"

// keptHeaders are the handshake headers a connection keeps when
// Config.Engine does not say otherwise (engineio.Options.KeepHeaders): the
// token (until authentication: a connected socket drops it), the proxies'
// forwarded address, and what identifies the client to an operator.
func keptHeaders() []string {
	return []string{"Authorization", "X-Forwarded-For", "User-Agent", "Origin"}
}

// ConnectedMessage is the message of the EventConnected payload, as the
// NestJS gateway sent it.
const ConnectedMessage = "Successfully connected to real-time updates"

// Defaults applied by New for zero-valued Config fields.
const (
	DefaultNamespace     = "/events"
	DefaultExpiryWarning = time.Minute
	DefaultAuthTimeout   = 10 * time.Second
	DefaultMaxPatterns   = 100
)

// Config configures a Gateway. Verifier is required; every other zero value
// is documented beside its field.
type Config struct {
	// Verifier checks the connection tokens. Required.
	Verifier *auth.Verifier
	// Namespace is the Socket.IO namespace clients connect to. Zero means
	// DefaultNamespace ("/events").
	Namespace string
	// Engine configures the Engine.IO layer: path (default "/socket.io/"),
	// CORS, heartbeat, limits. Nil means its defaults, except that a
	// connection keeps only the headers the gateway reads or an operator
	// wants to see (Authorization until authenticated, X-Forwarded-For,
	// User-Agent, Origin) unless KeepHeaders is set.
	Engine *engineio.Options
	// Adapter creates the namespace's adapter. Nil means the in-memory,
	// single-node adapter; a cluster adapter (Redis) plugs in here.
	Adapter socketio.AdapterFactory
	// ExpiryWarning is how long before its token stops being valid a socket
	// is sent EventAuthExpiring; it is capped at half the remaining validity
	// so that short-lived tokens are warned halfway. Zero means
	// DefaultExpiryWarning (1 min); negative disables the warning.
	ExpiryWarning time.Duration
	// AuthTimeout bounds the verification of one token (only a JWKS refresh
	// can make it wait). Zero means DefaultAuthTimeout (10 s).
	AuthTimeout time.Duration
	// MaxPatterns bounds the entries of one subscribe or unsubscribe
	// request. Zero means DefaultMaxPatterns (100).
	MaxPatterns int
	// History keeps each organization's and each user's events in a
	// history of their own, bounded by History.Size events and History.TTL
	// (an extension of ours, not Node's): a busy organization cannot evict
	// a quiet one's events from what recovery and history requests read,
	// and a user's events wait for them while they are offline (their
	// inbox). It needs the log of Recovery, which it turns on (with its
	// defaults) when nil. Nil: one log for the namespace, bounded by
	// Recovery's MaxPackets and window.
	History *HistoryOptions
	// Recovery enables connection state recovery: a client that reconnects
	// within Recovery.MaxDisconnectionDuration gets the events it missed,
	// in order and once each, and keeps its subscriptions. Its token is
	// verified again (RunMiddlewares is always on) and must name the same
	// user and organization, or the client connects afresh without the old
	// session. Recovery needs an adapter that keeps sessions: the in-memory
	// one does; the Redis Pub/Sub adapters do not (as Node's), so with them
	// clients always connect afresh. Nil disables it.
	Recovery *socketio.RecoveryOptions
	// ClientEventRate is how many requests (subscribe, unsubscribe,
	// auth:refresh, anything else) one connection may send per second on
	// average, and ClientEventBurst how many at once. Beyond, requests are
	// refused with code rate_limited (RATE_LIMITED for auth:refresh), and a
	// client that keeps sending anyway is disconnected. Zero means
	// DefaultClientEventRate (10/s) and DefaultClientEventBurst (30);
	// a negative rate disables the limit.
	ClientEventRate  float64
	ClientEventBurst int
	// MaxConnectionsPerAddress, MaxConnectionsPerUser and
	// MaxConnectionsPerOrganization cap the sockets connected at once from
	// one client address (an IPv6 client's /64), for one user (of one
	// organization) and for one organization; a connection beyond is
	// refused with connect_error code TOO_MANY_CONNECTIONS. Zero means
	// DefaultMaxConnectionsPer* (1,000, 100, 20,000); negative removes the
	// cap.
	MaxConnectionsPerAddress      int
	MaxConnectionsPerUser         int
	MaxConnectionsPerOrganization int
	// TrustedProxies are the networks of the reverse proxies in front of
	// the gateway: for a connection from one of them, the client address
	// is taken from X-Forwarded-For (its last address that is not a trusted
	// proxy). Empty: the TCP peer is the client, and X-Forwarded-For is
	// ignored (anyone can write it).
	TrustedProxies []netip.Prefix
	// Revocations keeps token revocations beyond this node (Redis: package
	// gateway/control), so that every node, including one that starts
	// later or missed a notification, refuses a revoked token. Nil keeps
	// them in memory only: the nodes running when a revocation is made
	// learn it through the adapter, a node started later does not.
	Revocations RevocationStore
	// RevocationSync is how often the revocations are read back from
	// Revocations: the longest a node that missed a notification goes on
	// accepting a revoked token. Zero means DefaultRevocationSync (10 s).
	RevocationSync time.Duration
	// MaxTokenLifetime is the longest lifetime (exp - iat) of the tokens
	// accepted: a revocation is kept that long plus the leeway, then
	// forgotten (every token it names has expired). Zero means
	// DefaultMaxTokenLifetime (24 h).
	MaxTokenLifetime time.Duration
	// Observers are told of every socket that connects and disconnects
	// (a presence tracker, webhooks); see Observer.
	Observers []Observer
	// Presence answers the client event EventPresence with the presence
	// of the socket's organization, across the cluster. Nil: presence is
	// off, and EventPresence is refused as an unsupported event.
	Presence PresenceFunc
	// Logger receives connection-level logs (connections, refusals,
	// expiries; never tokens, never one line per event). Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Gateway is the Operate events gateway. It is an http.Handler for its
// Socket.IO path and an events.Emitter. Create it with New.
type Gateway struct {
	// Static after construction.
	srv         *socketio.Server
	nsp         *socketio.Namespace
	verifier    *auth.Verifier
	log         *slog.Logger
	catalog     catalogIndex
	filters     *filter.Compiler
	warning     time.Duration
	expiries    expiryQueue // every session's token expiry, on one timer
	authTimeout time.Duration
	maxPatterns int

	eventRate  rate.Limit
	eventBurst int

	caps           *connectionCaps
	trustedProxies []netip.Prefix

	// Control operations (control.go): the nodes' control namespace, this
	// node's revocations and where they are kept.
	control     *socketio.Namespace
	revoked     *revocations
	revStore    RevocationStore
	maxLifetime time.Duration
	stopSync    context.CancelFunc // nil without a store
	revLoaded   atomic.Bool        // the store was read once
	syncDone    chan struct{}
	observers   []Observer
	presence    PresenceFunc
	// singleNode: the in-memory adapter, every socket is in this process.
	singleNode bool

	closing atomic.Bool
	stats   *stats
	// historyMode is where the history is kept, for the metrics: "memory"
	// with the in-memory adapter, "streams" with a cluster adapter (of the
	// Redis modes, only streams keeps one, and only it gives offsets).
	historyMode string
	// refusalLog is the log budget of refused connections and declined
	// recoveries, which clients can cause at will.
	refusalLog *logbudget.Budget
}

var _ events.Emitter = (*Gateway)(nil)

// New builds a gateway and its Socket.IO server.
func New(cfg Config) (*Gateway, error) {
	if cfg.Verifier == nil {
		return nil, errors.New("gateway: Config.Verifier is required")
	}
	name := cfg.Namespace
	if name == "" {
		name = DefaultNamespace
	}
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	g := &Gateway{
		verifier:       cfg.Verifier,
		log:            cfg.Logger,
		catalog:        newCatalogIndex(),
		refusalLog:     logbudget.New(logbudget.DefaultRate, logbudget.DefaultBurst),
		caps:           newConnectionCaps(cfg.MaxConnectionsPerAddress, cfg.MaxConnectionsPerUser, cfg.MaxConnectionsPerOrganization),
		trustedProxies: cfg.TrustedProxies,
		warning:        cfg.ExpiryWarning,
		authTimeout:    cfg.AuthTimeout,
		maxPatterns:    cfg.MaxPatterns,
		revoked:        newRevocations(),
		revStore:       cfg.Revocations,
		maxLifetime:    cfg.MaxTokenLifetime,
		observers:      slices.Clone(cfg.Observers),
		presence:       cfg.Presence,
		singleNode:     cfg.Adapter == nil,
	}
	g.expiries.fire = g.fire
	if g.maxLifetime <= 0 {
		g.maxLifetime = DefaultMaxTokenLifetime
	}
	g.stats = newStats(len(g.catalog.names))
	g.historyMode = "memory"
	if cfg.Adapter != nil {
		g.historyMode = "streams"
	}
	filters, err := filter.NewCompiler(filter.Config{})
	if err != nil {
		return nil, fmt.Errorf("gateway: subscription filters: %w", err)
	}
	g.filters = filters
	switch {
	case cfg.ClientEventRate < 0:
		g.eventRate = rate.Inf
	case cfg.ClientEventRate == 0:
		g.eventRate = DefaultClientEventRate
	default:
		g.eventRate = rate.Limit(cfg.ClientEventRate)
	}
	g.eventBurst = cfg.ClientEventBurst
	if g.eventBurst <= 0 {
		g.eventBurst = DefaultClientEventBurst
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.warning == 0 {
		g.warning = DefaultExpiryWarning
	}
	if g.authTimeout <= 0 {
		g.authTimeout = DefaultAuthTimeout
	}
	if g.maxPatterns <= 0 {
		g.maxPatterns = DefaultMaxPatterns
	}
	var recovery *socketio.RecoveryOptions
	if cfg.Recovery != nil || cfg.History != nil {
		var r socketio.RecoveryOptions
		if cfg.Recovery != nil {
			r = *cfg.Recovery
		}
		r.RunMiddlewares = true // a recovered session is only as good as the token presented now
		if h := cfg.History; h != nil {
			r.HistoryRooms, r.HistorySize, r.HistoryTTL = tenantRoom, h.Size, h.TTL
		}
		recovery = &r
	}
	engine := engineio.Options{}
	if cfg.Engine != nil {
		engine = *cfg.Engine
	}
	if engine.KeepHeaders == nil {
		// What the gateway reads of a connection's headers, and what an
		// operator wants to see of it; not whatever else the client sent.
		engine.KeepHeaders = keptHeaders()
	}
	srv, err := socketio.NewServer(&socketio.Options{Engine: &engine, Adapter: cfg.Adapter, Recovery: recovery, Logger: g.log})
	if err != nil {
		return nil, fmt.Errorf("gateway: socket.io server: %w", err)
	}
	g.srv = srv

	// NewServer always creates "/"; unknown namespaces are refused by the
	// server itself, "/" must be refused here, with the same message.
	if name != "/" {
		srv.Of("/").Use(refuseNamespace)
	}
	nsp := srv.Of(name)
	g.nsp = nsp
	nsp.Use(g.authenticate)
	nsp.SetDeliveryFilter(g.deliveryFilter)
	nsp.OnConnection(g.onConnection)
	nsp.OnDisconnect(g.onDisconnect)
	nsp.OnEvent(EventSubscribe, g.rateLimited(g.onSubscribe, subscribeRateLimited))
	nsp.OnEvent(EventUnsubscribe, g.rateLimited(g.onUnsubscribe, subscribeRateLimited))
	nsp.OnEvent(EventAuthRefresh, g.rateLimited(g.onRefresh, refreshRateLimited))
	nsp.OnEvent(EventHistory, g.rateLimited(g.onHistory, subscribeRateLimited))
	if g.presence != nil {
		nsp.OnEvent(EventPresence, g.rateLimited(g.onPresence, subscribeRateLimited))
	}
	nsp.OnAnyEvent(g.rateLimited(g.onUnsupported, subscribeRateLimited))
	g.setupControl()
	if g.revStore != nil {
		every := cfg.RevocationSync
		if every <= 0 {
			every = DefaultRevocationSync
		}
		ctx, cancel := context.WithCancel(context.Background())
		g.stopSync, g.syncDone = cancel, make(chan struct{})
		go g.syncRevocations(ctx, g.revStore, every)
	}
	return g, nil
}

// refuseNamespace answers what Socket.IO servers answer for a namespace
// that does not exist.
func refuseNamespace(context.Context, *socketio.Socket) error {
	return &socketio.ConnectError{Message: "Invalid namespace"}
}

// ServeHTTP serves the Socket.IO path (Path).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.srv.ServeHTTP(w, r) }

// Path returns the URL path of the Socket.IO endpoint, e.g. "/socket.io/".
func (g *Gateway) Path() string { return g.srv.Path() }

// Namespace returns the gateway's namespace.
func (g *Gateway) Namespace() *socketio.Namespace { return g.nsp }

// Server returns the underlying Socket.IO server.
func (g *Gateway) Server() *socketio.Server { return g.srv }

// ConnectionCount returns the number of sockets connected to this node.
func (g *Gateway) ConnectionCount() int { return g.nsp.SocketCount() }

// Ready reports whether the gateway accepts connections: nil until Shutdown
// is called, once the revocations were read from Config.Revocations (when
// set).
func (g *Gateway) Ready() error {
	if g.closing.Load() {
		return errors.New("gateway: shutting down")
	}
	if g.revStore != nil && !g.revLoaded.Load() {
		// A load balancer keeps clients away until the node knows the
		// revocations made before it started.
		return errors.New("gateway: revocations not read yet")
	}
	return nil
}

// Shutdown stops accepting connections and disconnects every client with
// "server shutting down" (socket.io-client sees "transport close" and
// reconnects, to another node behind a load balancer), delivering what is
// already queued, and waits until they are gone or ctx ends. It is safe to
// call more than once.
func (g *Gateway) Shutdown(ctx context.Context) error {
	if g.closing.CompareAndSwap(false, true) && g.stopSync != nil {
		g.stopSync()
		<-g.syncDone
	}
	err := g.srv.Shutdown(ctx)
	g.expiries.stop()
	if err != nil {
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	return nil
}
