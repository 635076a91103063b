package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/operate/realtime/engineio"
	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/admin"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/console"
	"github.com/operate/realtime/gateway/control"
	"github.com/operate/realtime/gateway/httpapi"
	"github.com/operate/realtime/gateway/metrics"
	"github.com/operate/realtime/gateway/presence"
	"github.com/operate/realtime/gateway/webhook"
	"github.com/operate/realtime/internal/logbudget"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// defaultGCPercent is the server's GOGC unless the environment sets one.
const defaultGCPercent = 50

// startupTimeout bounds the first JWKS fetch at startup.
const startupTimeout = 15 * time.Second

// serve runs the server until SIGINT or SIGTERM (or ctx ends), then shuts
// it down gracefully.
func serve(ctx context.Context, args []string, e env, stderr io.Writer) error {
	cfg, err := loadServeConfig(args, e)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	startPprof(e("REALTIME_PPROF_ADDR"), log)
	if e("GOGC") == "" {
		// The heap is mostly long-lived connection state, and broadcasts do
		// not allocate per recipient: collecting at +50% instead of +100%
		// cuts idle memory per connection by ~13% (docs/benchmarks.md) for
		// ~10% more CPU per handshake. GOGC overrides it.
		debug.SetGCPercent(defaultGCPercent)
	}
	if cfg.memoryReturn > 0 {
		mctx, stop := context.WithCancel(ctx)
		defer stop()
		go newMemoryReturner(cfg.memoryReturn, log).run(mctx)
	}

	sctx, cancel := context.WithTimeout(ctx, startupTimeout)
	cfg.auth.Logger = log
	verifier, err := auth.New(sctx, cfg.auth)
	cancel()
	if err != nil {
		return err
	}
	defer verifier.Close()

	// Several nodes share rooms over Redis when it is configured
	// (REDIS_URL or REDIS_HOST); otherwise the server is single-node. The
	// cluster never makes startup wait for Redis: it keeps retrying, and
	// /readyz says when it is connected.
	rcfg, clustered, err := redisConfigFromEnv(e)
	if err != nil {
		return fmt.Errorf("redis configuration: %w", err)
	}
	var (
		cluster *redisadapter.Cluster
		adapter socketio.AdapterFactory
	)
	if clustered {
		rcfg.Logger = log
		if cluster, err = redisadapter.New(rcfg); err != nil {
			return err
		}
		defer cluster.Close()
		adapter = cluster.Adapter
		log.Info("redis adapter", "redis", rcfg.Redacted())
	}

	engine := &engineio.Options{
		Path:         cfg.path,
		PingInterval: cfg.pingInterval,
		PingTimeout:  cfg.pingTimeout,
		WriteTimeout: cfg.writeTimeout,
		Logger:       log,
	}
	if len(cfg.corsOrigins) > 0 {
		engine.CORS = &engineio.CORS{Origins: cfg.corsOrigins, Credentials: cfg.corsCredentials}
	}
	// Connection state recovery needs sessions kept by the adapter: the
	// in-memory one and the Redis streams one do (the latter across nodes
	// and restarts, the window being the sessions' TTL and the stream's
	// MAXLEN bounding the events kept); the Redis Pub/Sub adapters (like
	// Node's) do not.
	var recovery *socketio.RecoveryOptions
	switch {
	case cfg.recoveryWindow > 0 && clustered && rcfg.Mode != redisadapter.Streams:
		log.Warn("RECOVERY_WINDOW is ignored with the Redis Pub/Sub adapters (classic, sharded): they keep no sessions, clients reconnect afresh; use REDIS_ADAPTER_MODE=streams for recovery across nodes")
	case cfg.recoveryWindow > 0 && clustered:
		recovery = &socketio.RecoveryOptions{MaxDisconnectionDuration: cfg.recoveryWindow}
		log.Info("connection state recovery across nodes (Redis streams)", "window", cfg.recoveryWindow.String(),
			"maxEvents", cluster.Config().MaxLen, "stream", cluster.Config().StreamName)
	case cfg.recoveryWindow > 0:
		recovery = &socketio.RecoveryOptions{MaxDisconnectionDuration: cfg.recoveryWindow, MaxPackets: cfg.recoveryEvents}
		log.Info("connection state recovery", "window", cfg.recoveryWindow.String(), "maxEvents", cfg.recoveryEvents)
	}
	// Token revocations are kept in Redis when there is one, so that every
	// node, including one started later, refuses a revoked token; in
	// memory otherwise.
	var revocations gateway.RevocationStore
	if clustered {
		store := control.NewRedisStore(rcfg)
		defer store.Close()
		revocations = store
	}
	// Presence and webhooks observe the gateway's connections; presence
	// changes go to the watching clients (through the gateway, which
	// exists only once they are set up) and to the webhook.
	var (
		gwRef     atomic.Pointer[gateway.Gateway]
		hooks     *webhook.Sender
		tracker   *presence.Tracker
		observers []gateway.Observer
		presenceF gateway.PresenceFunc
	)
	host, _ := os.Hostname()
	nodeName := host + "#" + strconv.Itoa(os.Getpid())
	if w := cfg.webhook; w != nil {
		wc := *w
		wc.Logger, wc.Node = log, nodeName
		if hooks, err = webhook.New(wc); err != nil {
			return err
		}
		defer func() { // on an early return; after a shutdown, a no-op
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = hooks.Close(cctx)
		}()
		observers = append(observers, hooks)
		log.Info("webhooks", "url", logbudget.Clip(redactURL(wc.URL)), "batchSize", wc.BatchSize, "queueSize", wc.QueueSize)
	}
	if cfg.presence {
		pc := presence.Config{TTL: cfg.presenceTTL, Grace: cfg.presenceGrace, Logger: log,
			OnChange: func(c gateway.PresenceChange) {
				if gw := gwRef.Load(); gw != nil && gw.PresenceWatched(c.OrganizationID) {
					pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					if err := gw.PublishPresence(pctx, c); err != nil {
						log.Debug("presence: publishing a change", "error", err)
					}
					cancel()
				}
				if hooks != nil {
					hooks.PresenceChanged(c)
				}
			}}
		if cluster != nil {
			pc.Redis, pc.KeyPrefix = cluster.Client, rcfg.KeyPrefix+"#presence#"
		}
		if tracker, err = presence.New(pc); err != nil {
			return err
		}
		defer tracker.Close() // on an early return; after a shutdown, a no-op
		observers = append(observers, tracker)
		presenceF = tracker.Presence
	}
	// Per-organization and per-user histories (ours, not Node's): they
	// need a log, in memory or in Redis streams.
	var history *gateway.HistoryOptions
	switch {
	case cfg.historySize == 0 && cfg.historyTTL == 0:
	case clustered && rcfg.Mode != redisadapter.Streams:
		log.Warn("HISTORY_SIZE and HISTORY_TTL are ignored with the Redis Pub/Sub adapters (classic, sharded): they keep no history; use REDIS_ADAPTER_MODE=streams")
	default:
		history = &gateway.HistoryOptions{Size: cfg.historySize, TTL: cfg.historyTTL}
		if recovery == nil && clustered {
			recovery = &socketio.RecoveryOptions{}
		} else if recovery == nil {
			recovery = &socketio.RecoveryOptions{MaxPackets: cfg.recoveryEvents}
		}
		size, ttl := socketio.RecoveryOptions{HistorySize: history.Size, HistoryTTL: history.TTL}.HistoryBounds()
		log.Info("per-organization and per-user event history", "size", size, "ttl", ttl.String())
	}
	gw, err := gateway.New(gateway.Config{
		Observers:                     observers,
		Presence:                      presenceF,
		Verifier:                      verifier,
		Revocations:                   revocations,
		MaxTokenLifetime:              cfg.maxTokenLifetime,
		Recovery:                      recovery,
		History:                       history,
		ClientEventRate:               cfg.requestRate,
		ClientEventBurst:              cfg.requestBurst,
		MaxConnectionsPerAddress:      cfg.maxConnsPerAddress,
		MaxConnectionsPerUser:         cfg.maxConnsPerUser,
		MaxConnectionsPerOrganization: cfg.maxConnsPerOrg,
		TrustedProxies:                cfg.trustedProxies,
		Namespace:                     cfg.namespace,
		Engine:                        engine,
		ExpiryWarning:                 cfg.expiryWarning,
		Logger:                        log,
		Adapter:                       adapter, // nil: single node, in memory
	})
	if err != nil {
		return err
	}
	gwRef.Store(gw)

	// Ready: not shutting down, and connected to Redis when clustered.
	ready := func() error {
		if err := gw.Ready(); err != nil {
			return err
		}
		if cluster != nil {
			return cluster.Ready()
		}
		return nil
	}

	var devTokens *httpapi.DevTokens
	if cfg.dev && cfg.auth.Secret != "" {
		devTokens = &httpapi.DevTokens{Secret: cfg.auth.Secret}
	} else if cfg.dev {
		log.Warn("development mode without a JWT secret: POST /dev/token is disabled (it can only sign HS256 tokens)")
	}
	api, err := httpapi.New(httpapi.Config{
		Emitter:            gw,
		History:            gw,
		APIKeys:            cfg.apiKeys,
		MaxBodyBytes:       cfg.maxBody,
		MaxBatch:           cfg.maxBatch,
		IdempotencyTTL:     cfg.idemTTL,
		IdempotencyMaxKeys: cfg.idemMaxKeys,
		PublishRate:        cfg.publishRate,
		PublishBurst:       cfg.publishBurst,
		Ready:              ready,
		Control:            control.NewAPI(gw),
		Presence:           presenceF,
		DevTokens:          devTokens,
		Logger:             log,
	})
	if err != nil {
		return err
	}
	if len(cfg.apiKeys) == 0 {
		log.Warn("no API_KEYS configured: the HTTP publish API answers 403")
	}

	// The operator's view: the Socket.IO Admin UI's namespace and
	// GET /admin/status, each on only when configured.
	var adm *admin.Admin
	if cfg.adminKey != "" || cfg.adminUI != nil {
		acfg := admin.Config{Key: cfg.adminKey, UI: cfg.adminUI, Logger: log}
		if cluster != nil {
			acfg.Redis, acfg.RequestTimeout = cluster, cluster.Config().RequestsTimeout
		}
		if adm, err = admin.New(gw, acfg); err != nil {
			return err
		}
		defer adm.Close()
		attrs := []any{"status", cfg.adminKey != "", "ui", cfg.adminUI != nil, "server", adm.ServerID()}
		if u := cfg.adminUI; u != nil {
			attrs = append(attrs, "namespace", adm.Namespace().Name(), "operations", u.Operations, "events", u.Events)
		}
		log.Info("admin", attrs...)
	}

	var root http.Handler = api
	if cfg.dev {
		// The development console at / (gateway/console), in front of the API.
		if root, err = console.New(api, cfg.apiKeys[0]); err != nil {
			return err
		}
	}
	mux := http.NewServeMux()
	mux.Handle(gw.Path(), gw)
	mux.Handle("/", root)
	if cfg.adminKey != "" {
		mux.Handle(admin.StatusPath, adm.StatusHandler())
	}
	mopts := metrics.Options{ClusterReady: clusterReady(cluster), PublishLimited: api.LimitedEvents, SessionsDropped: sessionsDropped(cluster), ControlRequests: api.ControlRequests}
	if hooks != nil {
		mopts.Webhooks = hooks.Stats
	}
	if tracker != nil {
		mopts.Presence = tracker.Stats
	}
	metricsHandler := metrics.Handler(gw, mopts)
	switch cfg.metricsAddr {
	case "":
		mux.Handle("GET /metrics", metricsHandler)
	case "off":
	default:
		stopMetrics, err := serveMetrics(cfg.metricsAddr, metricsHandler, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: min(10*time.Second, cfg.httpReadTimeout),
		ReadTimeout:       cfg.httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       cfg.httpIdleTimeout,
		MaxHeaderBytes:    cfg.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// No TCP keep-alive: Engine.IO's heartbeat already finds dead peers
	// (and keeps NAT mappings alive), and enabling it costs four
	// setsockopt calls on every accepted connection.
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if cfg.dev && isLoopbackListener(ln) {
		srv.Handler = localHostsOnly(srv.Handler)
	}
	log.Info("listening",
		"addr", ln.Addr().String(),
		"path", gw.Path(),
		"namespace", gw.Namespace().Name(),
		"dev", cfg.dev,
		"cors", cfg.corsOrigins,
		"apiKeys", len(cfg.apiKeys),
	)
	if cfg.dev {
		printDevBanner(stderr, cfg, ln.Addr(), gw)
	}

	sigCtx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	// WebSocket handshakes skip net/http's per-connection work; everything
	// else is served by srv as before (engineio.ServeFast).
	go func() { served <- engineio.ServeFast(srv, ln, gw.Path()) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-sigCtx.Done():
	}
	stop() // a second signal kills the process

	start := time.Now()
	log.Info("shutting down", "connections", gw.ConnectionCount(), "timeout", cfg.shutdownTimeout.String())
	dctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	// http.Server.Shutdown closes the listener and waits for requests in
	// flight, but neither closes nor waits for WebSockets, and waits for
	// long-polls until they end: the gateway's shutdown ends both, telling
	// each client to reconnect (elsewhere).
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Shutdown(dctx) }()
	gwErr := gw.Shutdown(dctx)
	httpErr := <-httpDone
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		httpErr = errors.Join(httpErr, err)
	}
	// Presence after the clients: this node's counts stay for the grace
	// period, while they reconnect elsewhere. The webhooks last: what
	// the disconnections queued is sent within the shutdown timeout.
	if tracker != nil {
		tracker.Close()
	}
	var hookErr error
	if hooks != nil {
		hookErr = hooks.Close(dctx)
	}
	if err := errors.Join(gwErr, httpErr, hookErr); err != nil {
		log.Error("shutdown incomplete", "error", err, "connections", gw.ConnectionCount(), "duration", time.Since(start).String())
		return err
	}
	log.Info("shutdown complete", "duration", time.Since(start).Round(time.Millisecond).String())
	return nil
}

func newLogger(cfg *serveConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	if cfg.logFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// printDevBanner tells a developer, once, how to use a development server.
// It prints the generated API key: development mode has nothing to protect.
func printDevBanner(w io.Writer, cfg *serveConfig, addr net.Addr, gw *gateway.Gateway) {
	port := "8080"
	if tcp, ok := addr.(*net.TCPAddr); ok {
		port = fmt.Sprint(tcp.Port)
	}
	base := "http://localhost:" + port
	why := "DEV_MODE is set"
	if cfg.secretGenerated {
		why = "no JWT_SECRET, JWT_PUBLIC_KEY or JWKS_URL is set"
	}
	key := cfg.apiKeys[0]
	fmt.Fprintf(w, `
  realtime: DEVELOPMENT MODE (%s)
  Not for production: POST /dev/token mints a token for anyone who can reach this port.

  Console    %s/   (open it in a browser: pick an organization and a user, watch events live)
  Socket.IO  io(%q, { auth: { token } })   (path %s)
  API key    %s%s
  Token      realtime token --url %s --org org_demo --user user_demo
  Publish    REALTIME_API_KEY=%s realtime emit invoice:created --url %s --org org_demo --data '{"invoiceId":"inv_1"}'

`, why, base, base+gw.Namespace().Name(), gw.Path(), key, generatedNote(cfg.apiKeyGenerated), base, key, base)
}

func generatedNote(generated bool) string {
	if generated {
		return "   (generated; set API_KEYS to choose it)"
	}
	return ""
}

// clusterReady is the metrics' view of the Redis cluster; nil when the node
// runs alone.
func clusterReady(c *redisadapter.Cluster) func() error {
	if c == nil {
		return nil
	}
	return c.Ready
}

// sessionsDropped is the metrics' view of the sessions the cluster could
// not store; nil when the node runs alone.
func sessionsDropped(c *redisadapter.Cluster) func() int64 {
	if c == nil {
		return nil
	}
	return func() int64 { return int64(c.Stats().SessionsDropped) }
}

// serveMetrics serves /metrics on a listener of its own (METRICS_ADDR), so
// that it can stay on an internal network; the returned function stops it.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on METRICS_ADDR %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("metrics", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// redactURL drops a URL's credentials and query (where tokens hide) for
// the logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
