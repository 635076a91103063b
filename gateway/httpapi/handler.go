package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/internal/logbudget"
)

// Defaults applied by New for zero-valued Config fields.
const (
	DefaultMaxBodyBytes       = 1 << 20
	DefaultMaxBatch           = 100
	DefaultIdempotencyTTL     = 24 * time.Hour
	DefaultIdempotencyMaxKeys = 10_000
	DefaultPublishTimeout     = 10 * time.Second
)

// Config configures a Handler. Emitter is required.
type Config struct {
	// Emitter delivers the published events: the gateway itself in the
	// realtime server.
	Emitter events.Emitter
	// APIKeys are the keys accepted on the publish endpoints, each at least
	// MinAPIKeyLength characters. Empty disables publishing (403).
	APIKeys []string
	// MaxBodyBytes bounds a request body. Zero means DefaultMaxBodyBytes
	// (1 MiB).
	MaxBodyBytes int64
	// MaxBatch bounds the events of one batch. Zero means DefaultMaxBatch
	// (100).
	MaxBatch int
	// IdempotencyTTL is how long an answer is kept for replays. Zero means
	// DefaultIdempotencyTTL (24 h).
	IdempotencyTTL time.Duration
	// IdempotencyMaxKeys bounds the number of answers kept. Zero means
	// DefaultIdempotencyMaxKeys (10,000).
	IdempotencyMaxKeys int
	// PublishTimeout bounds handing one request's events to the Emitter.
	// Zero means DefaultPublishTimeout (10 s).
	PublishTimeout time.Duration
	// PublishRate is how many events per second each API key may publish
	// on average (a batch counts its events); a request beyond is refused
	// whole with 429 and a Retry-After, and publishes nothing. Zero means
	// no limit.
	PublishRate float64
	// PublishBurst is how many events a key may publish at once, at least
	// MaxBatch so that a full batch can pass. Zero means the larger of
	// MaxBatch and two seconds of PublishRate.
	PublishBurst int
	// History serves GET PathOrganizationEvents and PathUserEvents (the
	// gateway). Nil: they answer 501 history_unavailable.
	History events.HistoryReader
	// Ready reports whether the server is ready to serve (GET /readyz).
	// Nil means always ready.
	Ready func() error
	// Presence, when set, serves GET /api/v1/organizations/{org}/presence
	// (API key): who is online in an organization, across the cluster.
	Presence func(ctx context.Context, organizationID string) (apiclient.Presence, error)
	// DevTokens, when set, enables POST /dev/token. Set it in development
	// mode only: anyone who can reach it can connect as anyone.
	DevTokens *DevTokens
	// Control, when set, serves the control API (disconnects, revocations,
	// organization rooms) to the same API keys as publishing. Nil: those
	// routes answer 404 control_disabled.
	Control Controller
	// Logger receives errors and authentication failures, and one debug line
	// per request. Nil means slog.Default().
	Logger *slog.Logger
}

// Handler serves the HTTP API. Create it with New.
type Handler struct {
	// Static after construction.
	emitter        events.Emitter
	history        events.HistoryReader
	keys           keyring
	maxBody        int64
	maxBatch       int
	publishTimeout time.Duration
	ready          func() error
	dev            *DevTokens
	presence       func(context.Context, string) (apiclient.Presence, error)
	log            *slog.Logger
	refusalLog     *logbudget.Budget // refused requests, which anyone can send
	idem           *idemCache
	onceKeep       time.Duration // how long the cluster remembers an idempotent publish (MaxOnceKeep)
	mux            *http.ServeMux
	control        Controller
	controlStats   controlStats

	limited atomic.Int64 // events refused for their key's publish rate
}

// LimitedEvents returns how many events were refused because their API key
// was over its publish rate.
func (h *Handler) LimitedEvents() int64 { return h.limited.Load() }

// New validates cfg and builds a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Emitter == nil {
		return nil, errors.New("httpapi: Config.Emitter is required")
	}
	maxBatch := cfg.MaxBatch
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	budget, err := publishBudget(cfg.PublishRate, cfg.PublishBurst, maxBatch)
	if err != nil {
		return nil, err
	}
	keys, err := newKeyring(cfg.APIKeys, budget)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		emitter:        cfg.Emitter,
		history:        cfg.History,
		keys:           keys,
		maxBody:        cfg.MaxBodyBytes,
		maxBatch:       maxBatch,
		publishTimeout: cfg.PublishTimeout,
		ready:          cfg.Ready,
		dev:            cfg.DevTokens,
		control:        cfg.Control,
		presence:       cfg.Presence,
		log:            cfg.Logger,
		refusalLog:     logbudget.New(logbudget.DefaultRate, logbudget.DefaultBurst),
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.publishTimeout <= 0 {
		h.publishTimeout = DefaultPublishTimeout
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	ttl, maxKeys := cfg.IdempotencyTTL, cfg.IdempotencyMaxKeys
	if ttl <= 0 {
		ttl = DefaultIdempotencyTTL
	}
	if maxKeys <= 0 {
		maxKeys = DefaultIdempotencyMaxKeys
	}
	h.idem = newIdemCache(ttl, maxKeys, time.Now)
	h.onceKeep = min(ttl, MaxOnceKeep)
	if h.dev != nil {
		if err := h.dev.check(); err != nil {
			return nil, err
		}
	}
	h.routes()
	return h, nil
}

// publishBudget returns what makes each API key's limiter: nil limiters
// when rate is zero.
func publishBudget(perSecond float64, burst, maxBatch int) (func() *rate.Limiter, error) {
	switch {
	case perSecond == 0:
		return func() *rate.Limiter { return nil }, nil
	case !(perSecond > 0) || math.IsInf(perSecond, 0):
		return nil, fmt.Errorf("httpapi: PublishRate must be a positive number of events per second, or zero for no limit; got %v", perSecond)
	case burst == 0:
		burst = max(maxBatch, int(min(math.Ceil(2*perSecond), 1<<30))) // no overflow for absurd rates
	case burst < maxBatch:
		return nil, fmt.Errorf("httpapi: PublishBurst (%d) is below MaxBatch (%d): a full batch could never be published", burst, maxBatch)
	}
	return func() *rate.Limiter { return rate.NewLimiter(rate.Limit(perSecond), burst) }, nil
}

func (h *Handler) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST "+PathEvents, h.serveEvents)
	m.HandleFunc("POST "+PathBatch, h.serveBatch)
	m.HandleFunc("GET "+PathSchema, h.serveSchema)
	m.HandleFunc("GET "+PathOrganizationEvents, h.serveHistory)
	m.HandleFunc("GET "+PathUserEvents, h.serveHistory)
	m.HandleFunc("GET /healthz", h.serveHealth)
	m.HandleFunc("GET /readyz", h.serveReady)
	allowed := map[string]string{PathEvents: "POST", PathBatch: "POST", PathSchema: "GET, HEAD", "/healthz": "GET, HEAD", "/readyz": "GET, HEAD",
		PathOrganizationEvents: "GET, HEAD", PathUserEvents: "GET, HEAD"}
	h.controlRoutes(m, allowed)
	if h.presence != nil {
		m.HandleFunc("GET "+apiclient.PathPresence, h.servePresence)
		allowed[apiclient.PathPresence] = "GET, HEAD"
	}
	if h.dev != nil {
		m.HandleFunc("POST "+PathDevToken, h.serveDevToken)
		allowed[PathDevToken] = "POST"
	}
	for path, methods := range allowed {
		m.HandleFunc(path, methodNotAllowed(methods))
	}
	m.HandleFunc("/", notFound)
	h.mux = m
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func methodNotAllowed(methods string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", methods)
		writeError(w, newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed,
			fmt.Sprintf("%s %s is not allowed; use %s", r.Method, r.URL.Path, methods), ""))
	}
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, newError(http.StatusNotFound, CodeNotFound, "no such endpoint: "+r.URL.Path, ""))
}

func (h *Handler) serveHealth(w http.ResponseWriter, _ *http.Request) {
	writeResponse(w, jsonResponse(http.StatusOK, map[string]string{"status": "ok"}))
}

// serveReady answers whether the server is ready. Why it is not (a Redis
// address and dial error, say) is for operators: the reason is given only
// to a request carrying an API key, so that a public load balancer check
// shows nothing of the internals.
func (h *Handler) serveReady(w http.ResponseWriter, r *http.Request) {
	if h.ready != nil {
		if err := h.ready(); err != nil {
			body := map[string]string{"status": "unavailable"}
			if _, denied := h.authenticate(r); denied == nil {
				body["reason"] = err.Error()
			}
			writeResponse(w, jsonResponse(http.StatusServiceUnavailable, body))
			return
		}
	}
	writeResponse(w, jsonResponse(http.StatusOK, map[string]string{"status": "ready"}))
}

func (h *Handler) serveSchema(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/schema+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(events.Schema())
}

// readBody reads the whole body, at most maxBody bytes.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	tooLarge := newError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge,
		fmt.Sprintf("request body is larger than %d bytes", h.maxBody), "")
	if r.ContentLength > h.maxBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, badRequest(CodeInvalidJSON, "reading the request body: "+err.Error(), "")
	}
	return body, nil
}
