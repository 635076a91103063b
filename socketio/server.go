package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/operate/realtime/engineio"
)

// Options configures a Server. The zero value is valid.
type Options struct {
	// Engine configures the Engine.IO layer (path, heartbeat, transports,
	// CORS, limits). Nil means its defaults; the path defaults to
	// "/socket.io/".
	Engine *engineio.Options
	// ConnectTimeout closes a connection that joins no namespace in time,
	// and bounds connect middlewares. Zero means 45 s.
	ConnectTimeout time.Duration
	// MaxAttachments bounds the binary attachments of one packet.
	// Zero means 10, socket.io-parser's default.
	MaxAttachments int
	// MaxRefusedConnects closes an Engine.IO connection once this many of
	// its CONNECTs were refused (connect_error), instead of letting one
	// connection ask again and again (each refusal costs a middleware run
	// and a log line). A client that is refused and retries after fixing
	// its credentials stays well below it. Zero means 5; negative, no cap.
	MaxRefusedConnects int
	// Recovery enables connection state recovery. Nil disables it.
	Recovery *RecoveryOptions
	// Adapter creates each namespace's adapter. Nil means NewMemoryAdapter.
	Adapter AdapterFactory
	// CleanupEmptyChildNamespaces removes a dynamic namespace's child when
	// its last socket leaves.
	CleanupEmptyChildNamespaces bool
	// Logger receives connection-level logs. Nil means slog.Default().
	Logger *slog.Logger
}

// Server is a Socket.IO server. It is an http.Handler for its path.
type Server struct {
	// Static after construction.
	opts   Options
	engine *engineio.Server
	log    *slog.Logger

	// refusedConnectsClosed counts connections closed for reaching
	// Options.MaxRefusedConnects.
	refusedConnectsClosed atomic.Int64

	mu       sync.RWMutex
	nsps     map[string]*Namespace
	parents  []*ParentNamespace
	shutdown bool
}

// RefusedConnectsClosed returns how many connections were closed for
// reaching Options.MaxRefusedConnects.
func (s *Server) RefusedConnectsClosed() int64 { return s.refusedConnectsClosed.Load() }

// NewServer returns a server with the main namespace "/" created.
func NewServer(opts *Options) (*Server, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 45 * time.Second
	}
	if o.MaxAttachments <= 0 {
		o.MaxAttachments = 10
	}
	if o.MaxRefusedConnects == 0 {
		o.MaxRefusedConnects = 5
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Recovery != nil {
		r := *o.Recovery
		if r.MaxDisconnectionDuration <= 0 {
			r.MaxDisconnectionDuration = 2 * time.Minute
		}
		o.Recovery = &r
	}
	s := &Server{opts: o, log: o.Logger, nsps: make(map[string]*Namespace)}
	eo := engineio.Options{}
	if o.Engine != nil {
		eo = *o.Engine
	}
	if eo.Logger == nil {
		eo.Logger = o.Logger
	}
	engine, err := engineio.NewServer(engineHandler{s}, &eo)
	if err != nil {
		return nil, err
	}
	s.engine = engine
	s.Of("/")
	return s, nil
}

// engineHandler keeps Open off the Server's API.
type engineHandler struct{ s *Server }

func (h engineHandler) Open(sess *engineio.Session) engineio.SessionHandler {
	return newClient(h.s, sess)
}

// ServeHTTP serves the Engine.IO path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Recovery returns the connection state recovery options, defaults
// resolved, and whether recovery is on. Adapters that keep sessions read
// the window from it.
func (s *Server) Recovery() (RecoveryOptions, bool) {
	if s.opts.Recovery == nil {
		return RecoveryOptions{}, false
	}
	return *s.opts.Recovery, true
}

// Engine returns the underlying Engine.IO server.
func (s *Server) Engine() *engineio.Server { return s.engine }

// Path returns the URL path the server handles.
func (s *Server) Path() string { return s.engine.Options().Path }

// Of returns the namespace with the given name, creating it if needed.
func (s *Server) Of(name string) *Namespace {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	s.mu.RLock()
	n := s.nsps[name]
	s.mu.RUnlock()
	if n != nil {
		return n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n = s.nsps[name]; n == nil {
		n = newNamespace(s, name, newHandlers(), nil)
		s.nsps[name] = n
	}
	return n
}

// Namespaces returns the existing namespaces.
func (s *Server) Namespaces() []*Namespace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Namespace, 0, len(s.nsps))
	for _, n := range s.nsps {
		out = append(out, n)
	}
	return out
}

// OfFunc declares dynamic namespaces: a CONNECT to a namespace that does not
// exist creates it when match accepts its name and CONNECT payload. The
// handlers registered on the returned ParentNamespace apply to every child.
// Parents are tried in the order declared.
func (s *Server) OfFunc(match func(name string, auth json.RawMessage) bool) *ParentNamespace {
	p := &ParentNamespace{handlers: newHandlers(), server: s, match: match, children: make(map[string]*Namespace)}
	s.mu.Lock()
	s.parents = append(s.parents, p)
	s.mu.Unlock()
	return p
}

// OfPattern declares dynamic namespaces whose names match re.
func (s *Server) OfPattern(re *regexp.Regexp) *ParentNamespace {
	return s.OfFunc(func(name string, _ json.RawMessage) bool { return re.MatchString(name) })
}

// connect handles a client's CONNECT to a namespace.
func (s *Server) connect(c *client, name string, auth []byte) {
	s.mu.RLock()
	n := s.nsps[name]
	parents := s.parents
	s.mu.RUnlock()
	if n == nil {
		for _, p := range parents {
			if p.match(name, auth) {
				n = p.child(name)
				break
			}
		}
	}
	if n == nil {
		c.sendConnectError(name, errors.New("Invalid namespace"))
		return
	}
	n.connect(c, auth)
}

func (s *Server) removeChild(n *Namespace) {
	s.mu.Lock()
	if s.nsps[n.name] == n {
		delete(s.nsps, n.name)
	}
	s.mu.Unlock()
	n.parent.removeChild(n)
	if n.keeper != nil {
		// This may run on the engine's heartbeat goroutine (the last
		// socket's close): the keeper is not waited for, it stops after
		// its current write.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n.keeper.close(ctx)
	}
	_ = n.adapter.Close()
}

// Shutdown disconnects every client with "server shutting down" (a
// reason that makes clients reconnect, to another server if there is one),
// delivering what is queued, and waits until they are gone or ctx ends.
// The sessions a recovery log still has to store (SessionFlusher) are flushed
// within ctx too, and the adapters are closed last.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	s.mu.Unlock()
	// The keepers stop first: the disconnections below store each session
	// for the recovery window, and a keeper's round must not overwrite one.
	for _, n := range s.Namespaces() {
		if n.keeper != nil {
			n.keeper.close(ctx)
		}
	}
	err := s.engine.Shutdown(ctx)
	for _, n := range s.Namespaces() {
		if f, ok := n.log.(SessionFlusher); ok {
			if ferr := f.FlushSessions(ctx); ferr != nil {
				err = errors.Join(err, ferr)
			}
		}
	}
	for _, n := range s.Namespaces() {
		if cerr := n.adapter.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	return err
}

// ParentNamespace is the template of dynamic namespaces (see OfFunc).
type ParentNamespace struct {
	*handlers
	server *Server
	match  func(name string, auth json.RawMessage) bool

	mu       sync.Mutex
	children map[string]*Namespace
}

func (p *ParentNamespace) child(name string) *Namespace {
	s := p.server
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nsps[name]; n != nil {
		return n
	}
	n := newNamespace(s, name, p.handlers, p)
	s.nsps[name] = n
	p.mu.Lock()
	p.children[name] = n
	p.mu.Unlock()
	return n
}

func (p *ParentNamespace) removeChild(n *Namespace) {
	p.mu.Lock()
	if p.children[n.name] == n {
		delete(p.children, n.name)
	}
	p.mu.Unlock()
}

// Children returns the namespaces created from this parent.
func (p *ParentNamespace) Children() []*Namespace {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Namespace, 0, len(p.children))
	for _, n := range p.children {
		out = append(out, n)
	}
	return out
}

// Emit broadcasts an event to every child namespace.
func (p *ParentNamespace) Emit(event string, args ...any) error {
	var errs []error
	for _, n := range p.Children() {
		errs = append(errs, n.Emit(event, args...))
	}
	return errors.Join(errs...)
}
