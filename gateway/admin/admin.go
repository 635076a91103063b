package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/redisadapter"
)

// Defaults applied by New for zero-valued fields.
const (
	DefaultNamespace      = "/admin"
	DefaultUsername       = "admin"
	DefaultEventRate      = 50
	DefaultMaxSockets     = 1000
	DefaultSessionTTL     = 24 * time.Hour
	DefaultRequestTimeout = 5 * time.Second
)

// MinSecretLength is the shortest admin key or plain UI password accepted:
// shorter ones can be guessed.
const MinSecretLength = 16

// Config configures an Admin. At least one of Key and UI must be set.
type Config struct {
	// Key is the admin key: the status endpoint requires
	// "Authorization: Bearer <Key>". Empty: the status endpoint refuses
	// every request (serve it only when a key is set).
	Key string
	// UI enables the Socket.IO Admin UI's namespace. Nil: the namespace
	// refuses every connection, as an unknown one would.
	UI *UIConfig
	// ServerID names this node in the UI and the status. Empty means
	// "<hostname>#<pid>".
	ServerID string
	// Redis is the node's Redis cluster, when it has one: the status
	// reports its state.
	Redis *redisadapter.Cluster
	// RequestTimeout bounds a cluster-wide request (the sockets for the UI,
	// the nodes' status, an operation). Zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Logger receives logins, refusals (rate-limited) and operations. Nil
	// means slog.Default().
	Logger *slog.Logger
}

// UIConfig configures the Admin UI's namespace.
type UIConfig struct {
	// Namespace is the namespace the UI connects to. Zero means
	// DefaultNamespace ("/admin"), the UI's default.
	Namespace string
	// Username and Password are the UI's login. Username defaults to
	// DefaultUsername; Password is required: at least MinSecretLength
	// characters, or a bcrypt hash ("$2a$…", "$2b$…", "$2y$…") as Node's
	// instrument() takes.
	Username string
	Password string
	// Operations offers the UI's disconnect and leave-room actions; false
	// keeps the UI read-only. Emitting events and joining rooms are never
	// offered (see the package documentation).
	Operations bool
	// Events streams the events the watched sockets send and receive to
	// connected UIs, at most EventRate per second per node. Off, the UI's
	// Events page shows connections, disconnections and room changes only.
	Events    bool
	EventRate float64
	// MaxSockets bounds the sockets each node lists when a UI connects
	// (socket counts stay exact). Zero means DefaultMaxSockets.
	MaxSockets int
	// SessionTTL is how long a UI session (kept by the browser, so that a
	// reload needs no password) stays valid, on every node. Zero means
	// DefaultSessionTTL.
	SessionTTL time.Duration
}

// Admin is the operator's view of one gateway node: the Admin UI's
// namespace and the status endpoint. Create it with New, stop it with
// Close.
type Admin struct {
	// Static after construction.
	gw      *gateway.Gateway
	events  *socketio.Namespace // the watched namespace
	nsp     *socketio.Namespace // the admin namespace
	node    nodeInfo
	key     secret // zero: no status endpoint
	ui      *uiAuth
	uiCfg   UIConfig
	redis   *redisadapter.Cluster
	timeout time.Duration
	tm      timing
	log     *slog.Logger
	// refusalLog bounds the log lines of refused logins and status
	// requests, which anyone can cause.
	refusalLog *rate.Limiter

	// Watching: see watch.go.
	watching    atomic.Bool  // a lease is active on this node
	leaseUntil  atomic.Int64 // unix nanoseconds
	localAdmins atomic.Int32 // UI sockets connected to this node
	wake        chan struct{}
	notices     chan notice
	dropped     atomic.Int64 // notices dropped because the queue was full
	eventBudget *rate.Limiter

	rates *sampler

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// nodeInfo names this node.
type nodeInfo struct {
	id       string
	hostname string
	pid      int
	started  time.Time
}

// New attaches an Admin to gw: it creates the admin namespace on gw's
// server and observes gw's namespace.
func New(gw *gateway.Gateway, cfg Config) (*Admin, error) {
	return newAdmin(gw, cfg, defaultTiming())
}

func newAdmin(gw *gateway.Gateway, cfg Config, tm timing) (*Admin, error) {
	if gw == nil {
		return nil, errors.New("admin: a gateway is required")
	}
	if cfg.Key == "" && cfg.UI == nil {
		return nil, errors.New("admin: neither a key nor a UI is configured")
	}
	if cfg.Key != "" && len(cfg.Key) < MinSecretLength {
		return nil, fmt.Errorf("admin: the admin key is %d characters long, need at least %d", len(cfg.Key), MinSecretLength)
	}
	host, _ := os.Hostname()
	a := &Admin{
		gw:         gw,
		events:     gw.Namespace(),
		node:       nodeInfo{id: cfg.ServerID, hostname: host, pid: os.Getpid(), started: time.Now()},
		redis:      cfg.Redis,
		timeout:    cfg.RequestTimeout,
		tm:         tm,
		log:        cfg.Logger,
		refusalLog: rate.NewLimiter(1, 5),
		wake:       make(chan struct{}, 1),
		notices:    make(chan notice, noticeQueue),
		done:       make(chan struct{}),
	}
	if a.node.id == "" {
		a.node.id = host + "#" + strconv.Itoa(a.node.pid)
	}
	if a.timeout <= 0 {
		a.timeout = DefaultRequestTimeout
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if cfg.Key != "" {
		a.key = newSecret(cfg.Key)
	}
	name := DefaultNamespace
	if cfg.UI != nil {
		u := *cfg.UI
		if u.Namespace == "" {
			u.Namespace = DefaultNamespace
		}
		if !strings.HasPrefix(u.Namespace, "/") {
			u.Namespace = "/" + u.Namespace
		}
		if u.Username == "" {
			u.Username = DefaultUsername
		}
		if u.EventRate <= 0 {
			u.EventRate = DefaultEventRate
		}
		if u.MaxSockets <= 0 {
			u.MaxSockets = DefaultMaxSockets
		}
		if u.SessionTTL <= 0 {
			u.SessionTTL = DefaultSessionTTL
		}
		auth, err := newUIAuth(u.Username, u.Password, u.SessionTTL)
		if err != nil {
			return nil, err
		}
		a.ui, a.uiCfg, name = auth, u, u.Namespace
		a.eventBudget = rate.NewLimiter(rate.Limit(u.EventRate), max(1, int(2*u.EventRate)))
	}
	if name == a.events.Name() || name == "/" {
		return nil, fmt.Errorf("admin: the admin namespace %q must differ from the events namespace and from \"/\"", name)
	}
	a.nsp = gw.Server().Of(name)
	a.rates = newSampler(gw, time.Now())
	a.ctx, a.cancel = context.WithCancel(context.Background())

	a.nsp.Use(a.authenticate)
	a.nsp.OnConnection(a.onAdminConnection)
	a.nsp.OnDisconnect(a.onAdminDisconnect)
	if a.ui != nil && a.uiCfg.Operations {
		a.nsp.OnEvent(uiDisconnect, a.onDisconnectRequest)
		a.nsp.OnEvent(uiLeave, a.onLeaveRequest)
	}
	a.nsp.OnServerSideEmit(sseWatch, a.onWatch)
	a.nsp.OnServerSideEmit(sseSockets, a.onSocketsRequest)
	a.nsp.OnServerSideEmit(sseStatus, a.onStatusRequest)
	a.events.OnConnection(a.onSocketConnected)
	a.events.OnDisconnecting(a.onSocketDisconnecting)

	go a.run()
	return a, nil
}

// Namespace returns the admin namespace.
func (a *Admin) Namespace() *socketio.Namespace { return a.nsp }

// ServerID returns the name of this node in the UI and the status.
func (a *Admin) ServerID() string { return a.node.id }

// Close stops watching and the background work. The admin namespace stays
// (a Socket.IO server cannot drop a namespace) but does nothing more; the
// server's Shutdown disconnects its sockets.
func (a *Admin) Close() {
	a.once.Do(func() {
		a.cancel()
		<-a.done
	})
}
