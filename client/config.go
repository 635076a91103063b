package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by New for zero-valued Config fields.
const (
	DefaultNamespace  = "/events"
	DefaultPath       = "/socket.io/"
	DefaultAckTimeout = 10 * time.Second
	// DefaultMaxMessageSize bounds what the client accepts in one message:
	// a payload of the gateway is at most 1 MiB (MAX_BODY_BYTES).
	DefaultMaxMessageSize = 16 << 20
)

// Transport selects how the client reaches the server.
type Transport int

const (
	// TransportAuto opens a WebSocket; when the server (or a proxy) refuses
	// the WebSocket handshake, it falls back to long-polling, and then tries
	// the upgrade to WebSocket as socket.io-client does. The default.
	TransportAuto Transport = iota
	// TransportUpgrade starts with long-polling and then upgrades to
	// WebSocket: socket.io-client's default, and what browsers do.
	TransportUpgrade
	// TransportWebSocket uses WebSocket only (socket.io-client's
	// transports: ["websocket"]).
	TransportWebSocket
	// TransportPolling uses long-polling only, never upgrading
	// (transports: ["polling"]).
	TransportPolling
)

func (t Transport) String() string {
	switch t {
	case TransportAuto:
		return "auto"
	case TransportUpgrade:
		return "upgrade"
	case TransportWebSocket:
		return "websocket"
	case TransportPolling:
		return "polling"
	}
	return fmt.Sprintf("Transport(%d)", int(t))
}

// TokenSource returns the token to present. It is called for every
// connection attempt and on auth:expiring, so it should return a token with
// time left (refreshing it as needed); an error is retried with backoff.
type TokenSource func(ctx context.Context) (string, error)

// Backoff is the delay between reconnection attempts: Initial, multiplied by
// Multiplier after each failed attempt, at most Max, each spread by ±Jitter
// (a fraction) so that clients cut at the same moment do not come back at
// the same moment. Zero fields take the defaults: 1 s, 30 s, 2, 0.5 (those
// of socket.io-client and of the TypeScript client).
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = time.Second
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	b.Max = max(b.Max, b.Initial)
	if b.Multiplier < 1 {
		b.Multiplier = 2
	}
	if b.Jitter <= 0 || b.Jitter > 1 {
		b.Jitter = 0.5
	}
	return b
}

// delay returns the wait before attempt n (0 for the first retry); r is a
// random number in [0, 1).
func (b Backoff) delay(n int, r float64) time.Duration {
	d := float64(b.Initial)
	for range n {
		d *= b.Multiplier
		if d >= float64(b.Max) {
			d = float64(b.Max)
			break
		}
	}
	d += d * b.Jitter * (2*r - 1)
	return time.Duration(min(max(d, 0), float64(b.Max)))
}

// Config configures a Client. URL and a token (Token or TokenSource) are
// required; every other zero value is documented beside its field.
type Config struct {
	// URL is the server's origin, e.g. "https://realtime.example" (http,
	// https, ws and wss are accepted). A path in it names the namespace, as
	// with socket.io-client's io(url); its query is sent along with every
	// request.
	URL string
	// Namespace is the Socket.IO namespace. Zero means the URL's path, else
	// DefaultNamespace ("/events").
	Namespace string
	// Path is the Engine.IO path. Zero means DefaultPath ("/socket.io/").
	Path string

	// Token is presented as the CONNECT auth.token. Use TokenSource instead
	// for a connection that must outlive its token.
	Token string
	// TokenSource provides the token of each connection and of each refresh.
	// It wins over Token.
	TokenSource TokenSource
	// DisableRefresh leaves auth:expiring unanswered: the gateway then ends
	// the connection when the token expires, and the client reconnects with
	// a token from TokenSource.
	DisableRefresh bool

	// Transport selects the transports. Zero means TransportAuto.
	Transport Transport
	// Header holds extra HTTP headers for every request (WebSocket handshake
	// and long-polling requests).
	Header http.Header
	// HTTPClient carries the long-polling requests. Nil means a client of
	// its own (closed with the Client) with TLSConfig and NetDial.
	HTTPClient *http.Client
	// TLSConfig is used for https and wss URLs. Nil means the defaults.
	TLSConfig *tls.Config
	// NetDial opens TCP connections (WebSocket, and long-polling when
	// HTTPClient is nil). Nil means a net.Dialer.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Backoff spaces the reconnection attempts.
	Backoff Backoff
	// MaxAttempts is how many connection attempts in a row may fail before
	// the client gives up (Err then says why). Zero means no limit.
	MaxAttempts int
	// AckTimeout bounds the requests the client makes by itself (restoring
	// subscriptions, refreshing the token) and each attempt of a connection
	// (handshake to CONNECT reply). Zero means DefaultAckTimeout.
	AckTimeout time.Duration
	// MaxMessageSize is the largest message accepted from the server. Zero
	// means DefaultMaxMessageSize.
	MaxMessageSize int64

	// Logger receives the client's log: connections, reconnections,
	// refusals. Nil means no logging. Tokens are never logged.
	Logger *slog.Logger
}

// settings is a Config resolved by New.
type settings struct {
	Config
	base      *url.URL // scheme http or https, host, the engine path, the URL's query
	namespace string
	random    func() float64
}

func resolve(cfg Config) (*settings, error) {
	if cfg.URL == "" {
		return nil, errors.New("client: Config.URL is required")
	}
	if cfg.Token == "" && cfg.TokenSource == nil {
		return nil, errors.New("client: Config.Token or Config.TokenSource is required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("client: Config.URL: %w", err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "http"
	case "https", "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("client: Config.URL: unsupported scheme %q (want http, https, ws or wss)", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("client: Config.URL %q has no host", cfg.URL)
	}
	s := &settings{Config: cfg, random: rand.Float64}
	s.namespace = cfg.Namespace
	if s.namespace == "" {
		s.namespace = strings.TrimSuffix(u.Path, "/")
	}
	if s.namespace == "" {
		s.namespace = DefaultNamespace
	}
	if !strings.HasPrefix(s.namespace, "/") {
		s.namespace = "/" + s.namespace
	}
	path := cfg.Path
	if path == "" {
		path = DefaultPath
	}
	if !strings.HasSuffix(path, "/") {
		path += "/"
	}
	q := u.Query()
	for _, reserved := range []string{"EIO", "transport", "sid"} {
		q.Del(reserved)
	}
	s.base = &url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host, Path: path, RawQuery: q.Encode()}
	if s.AckTimeout <= 0 {
		s.AckTimeout = DefaultAckTimeout
	}
	if s.MaxMessageSize <= 0 {
		s.MaxMessageSize = DefaultMaxMessageSize
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.Backoff = s.Backoff.withDefaults()
	switch s.Transport {
	case TransportAuto, TransportUpgrade, TransportWebSocket, TransportPolling:
	default:
		return nil, fmt.Errorf("client: Config.Transport: unknown %v", s.Transport)
	}
	return s, nil
}

// engineURL returns the Engine.IO URL for a transport ("polling" or
// "websocket") and session id (empty for a handshake).
func (s *settings) engineURL(transport, sid string) string {
	u := *s.base
	q := u.Query()
	q.Set("EIO", "4")
	q.Set("transport", transport)
	if sid != "" {
		q.Set("sid", sid)
	}
	u.RawQuery = q.Encode()
	if transport == "websocket" {
		if u.Scheme == "https" {
			u.Scheme = "wss"
		} else {
			u.Scheme = "ws"
		}
	}
	return u.String()
}
