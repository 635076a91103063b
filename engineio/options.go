package engineio

import (
	"log/slog"
	"net/http"
	"time"
)

// Options configures a Server. The zero value is valid: every zero field
// means the default written beside it, which is also Node's engine.io default.
type Options struct {
	// Path is the URL path prefix served, with a trailing slash.
	// Zero means "/socket.io/".
	Path string

	// PingInterval is the delay between server pings. Zero means 25 s.
	PingInterval time.Duration
	// PingTimeout is how long the client has to answer a ping with a pong.
	// Zero means 20 s.
	PingTimeout time.Duration
	// UpgradeTimeout bounds a polling-to-WebSocket upgrade. Zero means 10 s.
	UpgradeTimeout time.Duration

	// MaxPayload is the largest message (WebSocket) or POST body (polling)
	// accepted, in bytes; it is announced to clients as "maxPayload".
	// Zero means 1,000,000 (Node's maxHttpBufferSize).
	MaxPayload int

	// DisablePolling and DisableWebSocket remove a transport. Disabling both
	// is an error at construction.
	DisablePolling   bool
	DisableWebSocket bool
	// DisableUpgrades stops polling sessions from upgrading to WebSocket.
	DisableUpgrades bool

	// MaxQueueBytes bounds each session's outbound queue. A session whose
	// queue would grow past it is closed with ReasonSlowConsumer instead of
	// holding more memory. Zero means 1 MiB.
	MaxQueueBytes int
	// WriteTimeout bounds one blocking WebSocket write to a client that is
	// not reading. Zero means 10 s.
	WriteTimeout time.Duration

	// PerMessageDeflate enables the WebSocket permessage-deflate extension
	// for messages of at least DeflateThreshold bytes (zero means 1024).
	// Off by default, as in Node: it costs CPU and memory per message.
	PerMessageDeflate bool
	DeflateThreshold  int

	// Long-polling responses of at least HTTPCompressionThreshold bytes
	// (zero means 1024) are compressed with gzip or deflate when the client
	// accepts it, as Node does by default; DisableHTTPCompression turns
	// that off (to save CPU behind a proxy that compresses, say).
	DisableHTTPCompression   bool
	HTTPCompressionThreshold int

	// CORS, when set, adds CORS headers to every response and answers
	// preflight requests. Nil sends no CORS headers (same-origin only).
	CORS *CORS

	// Cookie, when set, sends a cookie holding the session id on the
	// handshake response, for load balancers with cookie-based stickiness.
	Cookie *Cookie

	// KeepHeaders names the handshake headers a session keeps for as long
	// as it lives (Session.Request, and through it Socket.IO handshakes):
	// a long-lived connection should hold what its application reads, not
	// whatever its client sent. Nil keeps every header except those that
	// only served the handshake itself (Connection, Sec-WebSocket-*, ...).
	KeepHeaders []string

	// AllowRequest, when set, is called for each handshake; a non-nil error
	// refuses it with HTTP 403 and the error text (Engine.IO code 4).
	AllowRequest func(r *http.Request) error

	// Logger receives connection-level logs (never per message).
	// Nil means slog.Default().
	Logger *slog.Logger

	// readerGoroutines reads every WebSocket on a goroutine of its own, as
	// where epoll is unavailable; set by tests so Linux covers that path.
	readerGoroutines bool
}

// Cookie configures the sticky-session cookie. Zero fields mean Node's
// defaults: name "io", path "/", HttpOnly, SameSite=Lax.
type Cookie struct {
	Name        string
	Path        string
	NotHTTPOnly bool
	SameSite    http.SameSite
	Secure      bool
	MaxAge      time.Duration
}

func (o *Options) withDefaults() Options {
	c := Options{}
	if o != nil {
		c = *o
	}
	if c.Path == "" {
		c.Path = "/socket.io/"
	}
	if c.Path[len(c.Path)-1] != '/' {
		c.Path += "/"
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 20 * time.Second
	}
	if c.UpgradeTimeout <= 0 {
		c.UpgradeTimeout = 10 * time.Second
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = 1_000_000
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = 1 << 20
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.DeflateThreshold <= 0 {
		c.DeflateThreshold = 1024
	}
	if c.HTTPCompressionThreshold <= 0 {
		c.HTTPCompressionThreshold = 1024
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c *Cookie) cookie(id string) *http.Cookie {
	ck := &http.Cookie{Name: "io", Value: id, Path: "/", HttpOnly: !c.NotHTTPOnly, SameSite: http.SameSiteLaxMode, Secure: c.Secure}
	if c.Name != "" {
		ck.Name = c.Name
	}
	if c.Path != "" {
		ck.Path = c.Path
	}
	if c.SameSite != 0 {
		ck.SameSite = c.SameSite
	}
	if c.MaxAge > 0 {
		ck.MaxAge = int(c.MaxAge / time.Second)
	}
	return ck
}
