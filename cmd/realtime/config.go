package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/admin"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/httpapi"
	"github.com/operate/realtime/gateway/webhook"
)

// defaultRecoveryEvents bounds the events kept for connection state
// recovery when RECOVERY_MAX_EVENTS is unset.
const defaultRecoveryEvents = 100_000

// defaultPublishRate is each API key's publish budget, in events per
// second, when PUBLISH_RATE is unset: far above what the platform's
// services emit (a bank sync of thousands of transactions passes in its
// two-second burst or a few Retry-Afters), and low enough that one
// runaway publisher cannot make every organization's clients wait behind
// its fan-out.
const defaultPublishRate = 1000

// The HTTP listener's limits, against clients that hold descriptors or
// memory without using them: a request (headers and body) must arrive
// within HTTP_READ_TIMEOUT (long polls and WebSockets set their own
// deadlines and are not bound by it), a keep-alive connection may idle for
// HTTP_IDLE_TIMEOUT between requests, and request headers may take
// MAX_HEADER_BYTES (Node's http default is 16 KiB; Go's is 1 MiB).
const (
	defaultHTTPReadTimeout = 30 * time.Second
	defaultHTTPIdleTimeout = 60 * time.Second
	defaultMaxHeaderBytes  = 16 << 10
	// httpWriteTimeout bounds writing a response to a client that does not
	// read it; a long poll sets its own deadline when it answers.
	httpWriteTimeout = 30 * time.Second
)

// serveConfig is the configuration of `realtime serve`, from flags and the
// environment (flags win).
type serveConfig struct {
	addr string

	dev             bool
	secretGenerated bool // dev mode made up the JWT secret
	apiKeyGenerated bool // dev mode made up the API key

	auth            auth.Config
	apiKeys         []string
	corsOrigins     []string
	corsCredentials bool

	namespace string
	path      string
	// Engine.IO timing; 0 means engineio's default (Node's).
	pingInterval time.Duration
	pingTimeout  time.Duration
	writeTimeout time.Duration
	// The HTTP listener's limits.
	httpReadTimeout time.Duration
	httpIdleTimeout time.Duration
	maxHeaderBytes  int

	expiryWarning time.Duration
	// maxTokenLifetime bounds how long a revocation is kept
	// (TOKEN_MAX_LIFETIME).
	maxTokenLifetime time.Duration
	recoveryWindow   time.Duration // 0: connection state recovery off
	recoveryEvents   int
	historySize      int           // 0 with historyTTL 0: per-organization and per-user histories off
	historyTTL       time.Duration // 0: socketio.DefaultHistoryTTL
	requestRate      float64       // 0: the gateway's default; negative: unlimited
	requestBurst     int
	// Connection caps (0: the gateway's default; negative: none) and the
	// reverse proxies whose X-Forwarded-For is believed.
	maxConnsPerAddress, maxConnsPerUser, maxConnsPerOrg int
	trustedProxies                                      []netip.Prefix
	// metricsAddr: "" serves /metrics on the main listener, "off" not at
	// all, anything else on a listener of its own at that address.
	metricsAddr     string
	shutdownTimeout time.Duration
	maxBody         int64
	maxBatch        int
	idemTTL         time.Duration
	idemMaxKeys     int
	publishRate     float64 // events/s per API key; 0: unlimited
	publishBurst    int     // 0: httpapi's default

	// Presence (gateway/presence): on unless PRESENCE=off; ttl and grace 0
	// mean its defaults.
	presence      bool
	presenceTTL   time.Duration
	presenceGrace time.Duration
	// Webhooks (gateway/webhook): nil when WEBHOOK_URL is unset.
	webhook *webhook.Config

	// The operator's view (gateway/admin): the admin key, which enables
	// GET /admin/status, and the Socket.IO Admin UI (nil: off).
	adminKey string
	adminUI  *admin.UIConfig

	logLevel  slog.Level
	logFormat string // "json" or "text"
	// memoryReturn is how often a quiet server checks whether to give its
	// free heap back to the operating system; 0: never (off).
	memoryReturn time.Duration
}

// env reads configuration variables; os.Getenv in production, a map in
// tests.
type env func(string) string

// first returns the value of the first of names that is set, and its name.
func (e env) first(names ...string) (value, name string) {
	for _, n := range names {
		if v := strings.TrimSpace(e(n)); v != "" {
			return v, n
		}
	}
	return "", ""
}

// alias reads a variable that has a legacy spelling: both may be set only
// to the same value.
func (e env) alias(name, legacy string) (string, error) {
	v, l := strings.TrimSpace(e(name)), strings.TrimSpace(e(legacy))
	if v != "" && l != "" && v != l {
		return "", fmt.Errorf("%s and %s are both set, to different values: set only %s", name, legacy, name)
	}
	if v != "" {
		return v, nil
	}
	return l, nil
}

func (e env) duration(name string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(e(name))
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a duration (such as 30s or 5m): %w", name, v, err)
	}
	return d, nil
}

func (e env) integer(name string, def int) (int, error) {
	v := strings.TrimSpace(e(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive integer", name, v)
	}
	return n, nil
}

// rate reads a rate per second that may be "off" (returned as -1).
func (e env) rate(name, what string, def float64) (float64, error) {
	switch v := strings.TrimSpace(e(name)); v {
	case "":
		return def, nil
	case "off":
		return -1, nil
	default:
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r > 0) || math.IsInf(r, 0) {
			return 0, fmt.Errorf("%s=%q: give %s per second (such as 10 or 0.5), or off", name, v, what)
		}
		return r, nil
	}
}

func (e env) boolean(name string) (value, set bool, err error) {
	v := strings.TrimSpace(e(name))
	if v == "" {
		return false, false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, false, fmt.Errorf("%s=%q is not a boolean (true or false)", name, v)
	}
	return b, true, nil
}

// list splits a comma-separated value, dropping empty entries.
func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// loadServeConfig parses the serve flags in args and the environment.
func loadServeConfig(args []string, e env) (*serveConfig, error) {
	fs := flag.NewFlagSet("realtime serve", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder)) // errors are returned, usage printed by the caller
	addr := fs.String("addr", "", "listen address (default :$PORT, or :8080; 127.0.0.1 only in development mode)")
	var dev optBool
	fs.Var(&dev, "dev", "development mode (default: on when no JWT key is configured); --dev=false refuses to start without one")
	namespace := fs.String("namespace", "", "Socket.IO namespace (default $EVENTS_NAMESPACE, or /events)")
	path := fs.String("path", "", "Socket.IO path (default $SOCKETIO_PATH, or /socket.io/)")
	cors := fs.String("cors-origins", "", "allowed browser origins, comma-separated (default $CORS_ORIGINS)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (default $LOG_LEVEL, or info)")
	logFormat := fs.String("log-format", "", "json or text (default $LOG_FORMAT; json, or text in development mode)")
	shutdown := fs.String("shutdown-timeout", "", "how long to drain connections on SIGTERM (default $SHUTDOWN_TIMEOUT, or 30s)")
	if err := fs.Parse(args); err != nil {
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	// Flags override the variables they stand for.
	overrides := map[string]string{
		"DEV_MODE": dev.value, "EVENTS_NAMESPACE": *namespace, "SOCKETIO_PATH": *path, "CORS_ORIGINS": *cors,
		"LOG_LEVEL": *logLevel, "LOG_FORMAT": *logFormat, "SHUTDOWN_TIMEOUT": *shutdown,
	}
	get := env(func(name string) string {
		if v := overrides[name]; v != "" {
			return v
		}
		if name == "CORS_ORIGIN" && *cors != "" {
			return "" // the flag replaces both spellings
		}
		return e(name)
	})

	c := &serveConfig{}
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	// Listen address.
	switch port := strings.TrimSpace(get("PORT")); {
	case *addr != "":
		c.addr = *addr
	case port != "":
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			check(fmt.Errorf("PORT=%q is not a port number", port))
		}
		c.addr = ":" + port
	default:
		c.addr = ":8080"
	}

	// JWT verification.
	secret, err := get.alias("JWT_SECRET", "JWT_ACCESS_SECRET")
	check(err)
	c.auth.Secret = secret
	c.auth.PreviousSecret = get("JWT_PREVIOUS_SECRET")
	pemValue, pemFile := get("JWT_PUBLIC_KEY"), strings.TrimSpace(get("JWT_PUBLIC_KEY_FILE"))
	switch {
	case pemValue != "" && pemFile != "":
		check(errors.New("JWT_PUBLIC_KEY and JWT_PUBLIC_KEY_FILE are both set: set one"))
	case pemFile != "":
		b, err := os.ReadFile(pemFile)
		if err != nil {
			check(fmt.Errorf("JWT_PUBLIC_KEY_FILE: %w", err))
		}
		c.auth.PublicKeyPEM = b
	case pemValue != "":
		c.auth.PublicKeyPEM = []byte(pemValue)
	}
	c.auth.JWKSURL = strings.TrimSpace(get("JWKS_URL"))
	insecure, _, err := get.boolean("JWKS_ALLOW_INSECURE_HTTP")
	check(err)
	c.auth.AllowInsecureJWKSURL = insecure
	c.auth.Algorithms = list(get("JWT_ALGORITHMS"))
	c.auth.Issuer = strings.TrimSpace(get("JWT_ISSUER"))
	c.auth.Audience = strings.TrimSpace(get("JWT_AUDIENCE"))
	c.auth.OrganizationClaim = strings.TrimSpace(get("JWT_ORG_CLAIM"))
	// auth.Config spells "no leeway" as a negative duration, zero being its
	// default; an operator who writes JWT_LEEWAY=0 means none.
	c.auth.Leeway, err = get.duration("JWT_LEEWAY", 0)
	check(err)
	switch {
	case c.auth.Leeway < 0:
		check(fmt.Errorf("JWT_LEEWAY must not be negative, got %s (0 means no leeway)", c.auth.Leeway))
	case c.auth.Leeway == 0 && strings.TrimSpace(get("JWT_LEEWAY")) != "":
		c.auth.Leeway = -1
	}
	hasKey := c.auth.Secret != "" || len(c.auth.PublicKeyPEM) > 0 || c.auth.JWKSURL != ""

	// Development mode: explicit, or implied by the absence of any key.
	devValue, devSet, err := get.boolean("DEV_MODE")
	check(err)
	switch {
	case devSet:
		c.dev = devValue
	default:
		c.dev = !hasKey
	}
	if !c.dev && !hasKey && err == nil {
		check(errors.New("no JWT key is configured: set JWT_SECRET, JWT_PUBLIC_KEY(_FILE) or JWKS_URL, or DEV_MODE=true for development"))
	}
	c.apiKeys = list(get("API_KEYS"))
	if c.dev && *addr == "" {
		// Development mode signs tokens and publishes for whoever asks
		// (/dev/token, /dev/publish, the console): only this machine may
		// ask, unless --addr says otherwise.
		c.addr = "127.0.0.1" + c.addr
	}
	if c.dev {
		if !hasKey {
			c.auth.Secret, c.secretGenerated = randomHex(32), true
		}
		if len(c.apiKeys) == 0 {
			c.apiKeys, c.apiKeyGenerated = []string{"dev_" + randomHex(16)}, true
		}
	}
	for i, k := range c.apiKeys {
		if len(k) < httpapi.MinAPIKeyLength {
			check(fmt.Errorf("API_KEYS: key %d is %d characters long, need at least %d", i+1, len(k), httpapi.MinAPIKeyLength))
		}
	}

	// Socket.IO.
	origins, err := get.alias("CORS_ORIGINS", "CORS_ORIGIN")
	check(err)
	c.corsOrigins = list(origins)
	if len(c.corsOrigins) == 0 && c.dev {
		c.corsOrigins = []string{"*"}
	}
	c.corsCredentials, _, err = get.boolean("CORS_CREDENTIALS")
	check(err)
	c.namespace, _ = get.first("EVENTS_NAMESPACE")
	if c.namespace == "" {
		c.namespace = gateway.DefaultNamespace
	}
	c.path, _ = get.first("SOCKETIO_PATH")
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"PING_INTERVAL", &c.pingInterval}, {"PING_TIMEOUT", &c.pingTimeout}, {"WRITE_TIMEOUT", &c.writeTimeout}} {
		*d.dst, err = get.duration(d.name, 0)
		check(err)
		if *d.dst < 0 || (*d.dst > 0 && *d.dst < time.Millisecond) {
			check(fmt.Errorf("%s must be at least 1ms, got %s (unset means the default)", d.name, *d.dst))
		}
	}
	c.httpReadTimeout, err = get.duration("HTTP_READ_TIMEOUT", defaultHTTPReadTimeout)
	check(err)
	c.httpIdleTimeout, err = get.duration("HTTP_IDLE_TIMEOUT", defaultHTTPIdleTimeout)
	check(err)
	if c.httpReadTimeout <= 0 {
		check(fmt.Errorf("HTTP_READ_TIMEOUT must be positive, got %s", c.httpReadTimeout))
	}
	if c.httpIdleTimeout <= 0 {
		check(fmt.Errorf("HTTP_IDLE_TIMEOUT must be positive, got %s", c.httpIdleTimeout))
	}
	c.maxHeaderBytes, err = get.integer("MAX_HEADER_BYTES", defaultMaxHeaderBytes)
	check(err)
	if err == nil && c.maxHeaderBytes < 4096 {
		check(fmt.Errorf("MAX_HEADER_BYTES=%d is too small for a browser's request headers (at least 4096)", c.maxHeaderBytes))
	}
	c.expiryWarning, err = get.duration("TOKEN_EXPIRY_WARNING", 0)
	check(err)
	c.maxTokenLifetime, err = get.duration("TOKEN_MAX_LIFETIME", gateway.DefaultMaxTokenLifetime)
	check(err)
	if err == nil && c.maxTokenLifetime < time.Minute {
		check(fmt.Errorf("TOKEN_MAX_LIFETIME must be at least 1m, got %s", c.maxTokenLifetime))
	}
	c.recoveryWindow, err = get.duration("RECOVERY_WINDOW", 0)
	check(err)
	if c.recoveryWindow < 0 {
		check(fmt.Errorf("RECOVERY_WINDOW must not be negative, got %s (0 turns recovery off)", c.recoveryWindow))
	}
	c.recoveryEvents, err = get.integer("RECOVERY_MAX_EVENTS", defaultRecoveryEvents)
	check(err)
	c.historySize, err = get.integer("HISTORY_SIZE", 0)
	check(err)
	if c.historySize < 0 {
		check(fmt.Errorf("HISTORY_SIZE must not be negative, got %d", c.historySize))
	}
	c.historyTTL, err = get.duration("HISTORY_TTL", 0)
	check(err)
	if c.historyTTL < 0 {
		check(fmt.Errorf("HISTORY_TTL must not be negative, got %s", c.historyTTL))
	}
	c.metricsAddr, _ = get.first("METRICS_ADDR")
	c.requestRate, err = get.rate("CLIENT_REQUEST_RATE", "requests per connection", 0)
	check(err)
	c.requestBurst, err = get.integer("CLIENT_REQUEST_BURST", gateway.DefaultClientEventBurst)
	check(err)
	for _, limit := range []struct {
		name string
		dst  *int
	}{{"MAX_CONNECTIONS_PER_ADDRESS", &c.maxConnsPerAddress}, {"MAX_CONNECTIONS_PER_USER", &c.maxConnsPerUser}, {"MAX_CONNECTIONS_PER_ORG", &c.maxConnsPerOrg}} {
		switch v := strings.TrimSpace(get(limit.name)); v {
		case "":
		case "off":
			*limit.dst = -1
		default:
			*limit.dst, err = get.integer(limit.name, 0)
			if err != nil {
				check(fmt.Errorf("%w, or off", err))
			}
		}
	}
	for _, v := range list(get("TRUSTED_PROXIES")) {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				check(fmt.Errorf("TRUSTED_PROXIES: %q is neither an address nor a network (such as 10.0.0.0/8)", v))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.trustedProxies = append(c.trustedProxies, p.Masked())
	}

	// HTTP API.
	maxBody, err := get.integer("MAX_BODY_BYTES", httpapi.DefaultMaxBodyBytes)
	check(err)
	c.maxBody = int64(maxBody)
	c.maxBatch, err = get.integer("MAX_BATCH_EVENTS", httpapi.DefaultMaxBatch)
	check(err)
	c.idemTTL, err = get.duration("IDEMPOTENCY_TTL", httpapi.DefaultIdempotencyTTL)
	check(err)
	c.idemMaxKeys, err = get.integer("IDEMPOTENCY_MAX_KEYS", httpapi.DefaultIdempotencyMaxKeys)
	check(err)
	c.publishRate, err = get.rate("PUBLISH_RATE", "events per API key", defaultPublishRate)
	check(err)
	c.publishRate = max(c.publishRate, 0) // off: no limit, which httpapi spells 0
	c.publishBurst, err = get.integer("PUBLISH_BURST", 0)
	check(err)
	if c.publishRate > 0 && c.publishBurst > 0 && c.publishBurst < c.maxBatch {
		check(fmt.Errorf("PUBLISH_BURST=%d is below MAX_BATCH_EVENTS=%d: a full batch could never be published", c.publishBurst, c.maxBatch))
	}

	// Presence and webhooks.
	check(c.loadPresence(get))
	check(c.loadWebhook(get))

	// Operations: the admin key and the Socket.IO Admin UI.
	c.adminKey = strings.TrimSpace(get("ADMIN_KEY"))
	if n := len(c.adminKey); n > 0 && n < admin.MinSecretLength {
		check(fmt.Errorf("ADMIN_KEY is %d characters long, need at least %d", n, admin.MinSecretLength))
	}
	check(c.loadAdminUI(get))

	// Process.
	c.shutdownTimeout, err = get.duration("SHUTDOWN_TIMEOUT", 30*time.Second)
	check(err)
	if c.shutdownTimeout <= 0 {
		check(fmt.Errorf("SHUTDOWN_TIMEOUT must be positive, got %s", c.shutdownTimeout))
	}
	if strings.TrimSpace(get("MEMORY_RETURN_INTERVAL")) == "off" {
		c.memoryReturn = 0
	} else {
		c.memoryReturn, err = get.duration("MEMORY_RETURN_INTERVAL", defaultMemoryReturnInterval)
		check(err)
		if err == nil && c.memoryReturn < 100*time.Millisecond {
			check(fmt.Errorf("MEMORY_RETURN_INTERVAL must be at least 100ms (or off), got %s", c.memoryReturn))
		}
	}
	switch lvl := strings.ToLower(strings.TrimSpace(get("LOG_LEVEL"))); lvl {
	case "", "info":
		c.logLevel = slog.LevelInfo
	case "debug":
		c.logLevel = slog.LevelDebug
	case "warn", "warning":
		c.logLevel = slog.LevelWarn
	case "error":
		c.logLevel = slog.LevelError
	default:
		check(fmt.Errorf("LOG_LEVEL=%q: use debug, info, warn or error", lvl))
	}
	switch f := strings.ToLower(strings.TrimSpace(get("LOG_FORMAT"))); f {
	case "":
		c.logFormat = "json"
		if c.dev {
			c.logFormat = "text"
		}
	case "json", "text":
		c.logFormat = f
	default:
		check(fmt.Errorf("LOG_FORMAT=%q: use json or text", f))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// loadPresence reads PRESENCE (on, the default, or off), PRESENCE_TTL and
// PRESENCE_GRACE.
func (c *serveConfig) loadPresence(get env) error {
	switch v := strings.ToLower(strings.TrimSpace(get("PRESENCE"))); v {
	case "", "on", "true":
		c.presence = true
	case "off", "false":
		return nil
	default:
		return fmt.Errorf("PRESENCE=%q: use on or off", v)
	}
	var err error
	if c.presenceTTL, err = get.duration("PRESENCE_TTL", 0); err != nil {
		return err
	}
	if c.presenceTTL != 0 && c.presenceTTL < time.Second {
		return fmt.Errorf("PRESENCE_TTL must be at least 1s, got %s", c.presenceTTL)
	}
	if c.presenceGrace, err = get.duration("PRESENCE_GRACE", 0); err != nil {
		return err
	}
	switch {
	case c.presenceGrace < 0:
		return fmt.Errorf("PRESENCE_GRACE must not be negative, got %s (0s: none)", c.presenceGrace)
	case c.presenceGrace == 0 && strings.TrimSpace(get("PRESENCE_GRACE")) != "":
		c.presenceGrace = -1 // presence.Config spells "none" as negative
	}
	return nil
}

// loadWebhook reads WEBHOOK_URL, WEBHOOK_SECRET and the delivery settings.
func (c *serveConfig) loadWebhook(get env) error {
	u := strings.TrimSpace(get("WEBHOOK_URL"))
	secret := strings.TrimSpace(get("WEBHOOK_SECRET"))
	if u == "" {
		if secret != "" {
			return errors.New("WEBHOOK_SECRET is set without WEBHOOK_URL")
		}
		return nil
	}
	if len(secret) < webhook.MinSecretLength {
		return fmt.Errorf("WEBHOOK_URL needs WEBHOOK_SECRET, at least %d characters long (the receiver verifies the signature with it)", webhook.MinSecretLength)
	}
	w := &webhook.Config{URL: u, Secret: secret}
	var errs []error
	var err error
	w.BatchSize, err = get.integer("WEBHOOK_BATCH_SIZE", webhook.DefaultBatchSize)
	errs = append(errs, err)
	w.QueueSize, err = get.integer("WEBHOOK_QUEUE_SIZE", webhook.DefaultQueueSize)
	errs = append(errs, err)
	w.MaxAttempts, err = get.integer("WEBHOOK_MAX_ATTEMPTS", webhook.DefaultMaxAttempts)
	errs = append(errs, err)
	for _, d := range []struct {
		name string
		dst  *time.Duration
		def  time.Duration
	}{{"WEBHOOK_BATCH_WAIT", &w.BatchWait, webhook.DefaultBatchWait}, {"WEBHOOK_TIMEOUT", &w.Timeout, webhook.DefaultTimeout}} {
		*d.dst, err = get.duration(d.name, d.def)
		errs = append(errs, err)
		if err == nil && *d.dst <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", d.name, *d.dst))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := webhook.CheckURL(w.URL); err != nil {
		return fmt.Errorf("WEBHOOK_URL: %w", err)
	}
	c.webhook = w
	return nil
}

// loadAdminUI reads the Admin UI's variables: on when it has a password
// (ADMIN_UI_PASSWORD, else ADMIN_KEY) unless ADMIN_UI=off.
func (c *serveConfig) loadAdminUI(get env) error {
	username := strings.TrimSpace(get("ADMIN_UI_USERNAME"))
	password := strings.TrimSpace(get("ADMIN_UI_PASSWORD"))
	if password == "" {
		password = c.adminKey
	}
	switch v := strings.ToLower(strings.TrimSpace(get("ADMIN_UI"))); v {
	case "off", "false":
		return nil
	case "", "on", "true":
		if password == "" {
			if v != "" || username != "" {
				return errors.New("the Admin UI needs a password: set ADMIN_UI_PASSWORD or ADMIN_KEY")
			}
			return nil
		}
	default:
		return fmt.Errorf("ADMIN_UI=%q: use on or off", v)
	}
	readOnly, set, err := get.boolean("ADMIN_UI_READONLY")
	if err != nil {
		return err
	}
	events, _, err := get.boolean("ADMIN_UI_EVENTS")
	if err != nil {
		return err
	}
	c.adminUI = &admin.UIConfig{
		Username:   username,
		Password:   password,
		Operations: set && !readOnly,
		Events:     events,
	}
	return nil
}

// optBool is a boolean flag that remembers whether it was given.
type optBool struct{ value string }

func (b *optBool) String() string   { return b.value }
func (b *optBool) IsBoolFlag() bool { return true }
func (b *optBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	b.value = strconv.FormatBool(v)
	return nil
}

// usageError is a command-line mistake (exit status 2).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails: crypto/rand.Read crashes the program instead
	return hex.EncodeToString(b)
}
