package engineio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/textproto"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/operate/realtime/protocol/eio"
)

// Handler receives new sessions.
type Handler interface {
	// Open is called once for each new session, on the goroutine serving
	// its handshake, before the session delivers any message. It returns
	// the receiver of the session's messages and close notification.
	Open(s *Session) SessionHandler
}

// SessionHandler receives one session's messages.
//
// Message calls are serialized and in order. data is only valid during the
// call: it aliases a read buffer that is reused. Closed is called exactly
// once, never concurrently with Message; after it no Message follows.
// Neither should block for long: a WebSocket session's reading waits for
// them.
type SessionHandler interface {
	Message(data []byte, binary bool)
	Closed(reason CloseReason)
}

// CloseReason says why a session ended. The values are the reasons Node's
// engine.io reports, plus ReasonSlowConsumer.
type CloseReason string

// Close reasons.
const (
	ReasonTransportClose CloseReason = "transport close"
	ReasonTransportError CloseReason = "transport error"
	ReasonPingTimeout    CloseReason = "ping timeout"
	ReasonParseError     CloseReason = "parse error"
	ReasonForcedClose    CloseReason = "forced close"
	ReasonServerShutdown CloseReason = "server shutting down"
	// ReasonSlowConsumer: the client did not read fast enough and its
	// outbound queue reached Options.MaxQueueBytes.
	ReasonSlowConsumer CloseReason = "slow consumer"
)

// Errors returned by Session.Send.
var (
	ErrSessionClosed = errors.New("engineio: session closed")
	ErrSlowConsumer  = errors.New("engineio: outbound queue full, session closed")
)

// Engine.IO error codes (protocol §1.9) and their messages.
const (
	codeUnknownTransport = 0
	codeUnknownSID       = 1
	codeBadHandshake     = 2
	codeBadRequest       = 3
	codeForbidden        = 4
	codeUnsupported      = 5
)

var errorMessages = [...]string{
	"Transport unknown",
	"Session ID unknown",
	"Bad handshake method",
	"Bad request",
	"Forbidden",
	"Unsupported protocol version",
}

// Server is an Engine.IO v4 server. It is an http.Handler for its path prefix.
// All methods are safe for concurrent use.
type Server struct {
	// Static after construction.
	opts       Options
	handler    Handler
	log        *slog.Logger
	wheel      *wheel
	flush      *flusher
	poller     *poller // nil: every WebSocket has a reader goroutine
	pingPkt    *Packet
	noopPkt    *Packet
	closePkt   *Packet
	probeReply *Packet
	openTail   []byte // the handshake JSON after the sid
	// keepHeaders: Options.KeepHeaders as a set of canonical names; nil
	// keeps every header but those of the handshake itself.
	keepHeaders map[string]bool

	idSeq atomic.Uint32
	// lastURI is the request URI of the latest handshake, shared by the
	// next ones that have the same (see requestURI).
	lastURI atomic.Pointer[string]

	stopOnce sync.Once // Shutdown may run more than once; the workers stop once

	mu       sync.RWMutex
	sessions map[string]*Session
	closing  bool
	drained  chan struct{} // closed when sessions becomes empty while closing

	stats Stats
}

// Stats are cumulative counters and gauges, read with atomic loads.
type Stats struct {
	Sessions      atomic.Int64 // open sessions
	Opened        atomic.Int64
	Upgrades      atomic.Int64
	SlowConsumers atomic.Int64
	PacketsOut    atomic.Int64 // packets queued to sessions
	Writes        atomic.Int64 // socket writes (WebSocket) or poll responses
	// WriteStalls counts WebSocket flushes the socket could not take at
	// once (a client reading slowly): the rest went to a blocking writer.
	WriteStalls    atomic.Int64
	BytesOut       atomic.Int64
	HeartbeatsLost atomic.Int64 // sessions closed by ping timeout
}

// NewServer returns a server that hands new sessions to h.
func NewServer(h Handler, opts *Options) (*Server, error) {
	o := opts.withDefaults()
	if o.DisablePolling && o.DisableWebSocket {
		return nil, errors.New("engineio: both transports disabled")
	}
	if h == nil {
		return nil, errors.New("engineio: nil handler")
	}
	s := &Server{
		opts:       o,
		handler:    h,
		log:        o.Logger,
		sessions:   make(map[string]*Session),
		pingPkt:    NewPacket(2, nil),
		noopPkt:    NewPacket(6, nil),
		closePkt:   NewPacket(1, nil),
		probeReply: NewPacket(eio.Pong, []byte("probe")),
	}
	if o.KeepHeaders != nil {
		s.keepHeaders = make(map[string]bool, len(o.KeepHeaders))
		for _, h := range o.KeepHeaders {
			s.keepHeaders[textproto.CanonicalMIMEHeaderKey(h)] = true
		}
	}
	s.openTail = []byte(`,"pingInterval":` + strconv.FormatInt(o.PingInterval.Milliseconds(), 10) +
		`,"pingTimeout":` + strconv.FormatInt(o.PingTimeout.Milliseconds(), 10) +
		`,"maxPayload":` + strconv.Itoa(o.MaxPayload) + `}`)
	tick := min(o.PingInterval, o.PingTimeout) / 10
	tick = max(5*time.Millisecond, min(tick, 250*time.Millisecond))
	s.wheel = newWheel(tick, max(o.PingInterval, o.PingTimeout))
	s.flush = newFlusher(s)
	if !o.readerGoroutines {
		if p, err := newPoller(); err != nil {
			o.Logger.Warn("engineio: no epoll poller, one reader goroutine per WebSocket", "error", err)
		} else {
			s.poller = p
		}
	}
	return s, nil
}

// Options returns the effective options (defaults resolved).
func (s *Server) Options() Options { return s.opts }

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// SessionCount returns the number of open sessions.
func (s *Server) SessionCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.sessions)
}

// Session returns the open session with the given id.
func (s *Server) Session(id string) (*Session, bool) {
	s.mu.RLock()
	sess, ok := s.sessions[id]
	s.mu.RUnlock()
	return sess, ok
}

// Shutdown closes every session with ReasonServerShutdown and waits until
// they are gone or ctx ends. New handshakes are refused from the start.
// It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		s.drained = make(chan struct{})
		if len(s.sessions) == 0 {
			close(s.drained)
		}
	}
	drained := s.drained
	all := make([]*Session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.closeWith(ReasonServerShutdown, true)
	}
	// A polling client that has vanished never comes back for what its
	// session still has to deliver (at least the close packet): without
	// this, one such client holds the whole shutdown until ctx ends.
	giveUp := time.AfterFunc(shutdownPollGrace, func() {
		for _, sess := range all {
			sess.abandonIdlePoll()
		}
	})
	defer giveUp.Stop()
	select {
	case <-drained:
	case <-ctx.Done():
		// Graceful closes did not finish: cut what is left.
		s.mu.RLock()
		left := len(s.sessions)
		s.mu.RUnlock()
		for _, sess := range all {
			sess.closeWith(ReasonServerShutdown, false)
		}
		s.stopWorkers()
		return errors.Join(ctx.Err(), errors.New("engineio: "+strconv.Itoa(left)+" sessions still open at shutdown deadline"))
	}
	s.stopWorkers()
	return nil
}

// shutdownPollGrace is how long Shutdown waits for a polling client's next
// GET. A client that is polling sends it as soon as it has read the
// previous answer: a round trip, not seconds.
const shutdownPollGrace = 2 * time.Second

func (s *Server) stopWorkers() {
	s.stopOnce.Do(func() {
		s.wheel.close()
		s.flush.close()
		if s.poller != nil {
			s.poller.close()
		}
	})
}

func (s *Server) remove(sess *Session) {
	s.mu.Lock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
		s.stats.Sessions.Add(-1)
		if s.closing && len(s.sessions) == 0 {
			close(s.drained)
		}
	}
	s.mu.Unlock()
}

// ServeHTTP serves Engine.IO requests under the server's path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.CORS != nil && s.opts.CORS.apply(w, r) {
		return
	}
	if _, fast := w.(*fastWriter); !fast {
		// ServeFast's goroutines start shallow and the handshake fits in
		// their first stack; net/http's are deep already when they get here.
		growStack()
	}
	q := r.URL.RawQuery
	transport := queryGet(q, "transport")
	isUpgrade := headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
	// The checks and their order follow Node's Server.verify and handshake.
	if !s.transportEnabled(transport) {
		s.abort(w, isUpgrade, codeUnknownTransport, "")
		return
	}
	if sid := queryGet(q, "sid"); sid != "" {
		s.serveSession(w, r, sid, transport, isUpgrade)
		return
	}
	if r.Method != http.MethodGet {
		s.abort(w, isUpgrade, codeBadHandshake, "")
		return
	}
	if transport == "websocket" && !isUpgrade {
		s.abort(w, false, codeBadRequest, "")
		return
	}
	if s.opts.AllowRequest != nil {
		if err := s.opts.AllowRequest(r); err != nil {
			s.abort(w, isUpgrade, codeForbidden, err.Error())
			return
		}
	}
	if queryGet(q, "EIO") != "4" {
		s.abort(w, isUpgrade, codeUnsupported, "")
		return
	}
	s.handshake(w, r, transport)
}

func (s *Server) transportEnabled(t string) bool {
	switch t {
	case "polling":
		return !s.opts.DisablePolling
	case "websocket":
		return !s.opts.DisableWebSocket
	}
	return false
}

// abort answers a refused request: a JSON error for HTTP requests, and for
// WebSocket upgrade requests the plain-text 400 Node writes before it drops
// the socket.
func (s *Server) abort(w http.ResponseWriter, upgrade bool, code int, message string) {
	if message == "" {
		message = errorMessages[code]
	}
	if upgrade {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(message))
		return
	}
	status := http.StatusBadRequest
	if code == codeForbidden {
		status = http.StatusForbidden
	}
	body := make([]byte, 0, 48+len(message))
	body = append(body, `{"code":`...)
	body = strconv.AppendInt(body, int64(code), 10)
	body = append(body, `,"message":`...)
	body = strconv.AppendQuote(body, message)
	body = append(body, '}')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) serveSession(w http.ResponseWriter, r *http.Request, sid, transport string, isUpgrade bool) {
	sess, ok := s.Session(sid)
	if ok && sess.expired() {
		// Past its pong deadline the session is dead, even if the wheel has
		// not reaped it yet.
		sess.closeWith(ReasonPingTimeout, false)
		ok = false
	}
	if ok && sess.lingering() && (transport != "polling" || r.Method != http.MethodGet) {
		ok = false
	}
	if !ok {
		s.abort(w, isUpgrade, codeUnknownSID, "")
		return
	}
	if transport == "websocket" {
		if !isUpgrade {
			s.abort(w, false, codeBadRequest, "")
			return
		}
		sess.serveUpgrade(w, r)
		return
	}
	if sess.isWebSocket() {
		s.abort(w, false, codeBadRequest, "")
		return
	}
	switch r.Method {
	case http.MethodGet:
		sess.servePollGet(w, r)
	case http.MethodPost:
		sess.servePollPost(w, r)
	default:
		w.WriteHeader(http.StatusInternalServerError)
	}
}

// requestURI returns r's URI for the session to keep. WebSocket clients
// mostly connect with the same URI ("/socket.io/?EIO=4&transport=websocket"):
// one string is then shared by their sessions instead of ~48 bytes each.
func (s *Server) requestURI(r *http.Request) string {
	if last := s.lastURI.Load(); last != nil && *last == r.RequestURI {
		return *last
	}
	uri := r.URL.RequestURI()
	if uri == r.RequestURI {
		s.lastURI.Store(&uri)
	}
	return uri
}

func (s *Server) handshake(w http.ResponseWriter, r *http.Request, transport string) {
	id, err := s.newID()
	if err != nil {
		s.abort(w, transport == "websocket", codeBadRequest, "")
		return
	}
	sess := newSession(s, id, newRequest(r, s.keepHeaders, s.requestURI(r)))
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"code":3,"message":"Server shutting down"}`))
		return
	}
	s.sessions[id] = sess
	s.mu.Unlock()
	s.stats.Sessions.Add(1)
	s.stats.Opened.Add(1)

	upgrades := `["websocket"]`
	if transport == "websocket" || s.opts.DisableUpgrades || s.opts.DisableWebSocket {
		upgrades = `[]`
	}
	open := make([]byte, 0, 64+len(s.openTail))
	open = append(open, `{"sid":"`...)
	open = append(open, id...)
	open = append(open, `","upgrades":`...)
	open = append(open, upgrades...)
	open = append(open, s.openTail...)
	_ = sess.Send(NewPacket(0, open))
	sess.setHandler(s.handler.Open(sess))

	s.wheel.schedule(sess, s.wheel.now()+s.opts.PingInterval)

	if s.opts.Cookie != nil {
		http.SetCookie(w, s.opts.Cookie.cookie(id))
	}
	if transport == "websocket" {
		sess.serveWebSocketHandshake(w, r)
	} else {
		sess.servePollGet(w, r)
	}
}

// newID returns a 20-character id like Node's base64id: 12 random bytes and
// a 3-byte sequence number, base64 with '-' and '_' (15 bytes, no padding).
// The length matters: Node's sharded Redis adapter recognises socket-id
// rooms by it.
func (s *Server) newID() (string, error) {
	var b [15]byte
	if _, err := rand.Read(b[:12]); err != nil {
		return "", err
	}
	n := s.idSeq.Add(1)
	b[12], b[13], b[14] = byte(n>>16), byte(n>>8), byte(n)
	return base64.URLEncoding.EncodeToString(b[:]), nil
}

// NewID returns a fresh 20-character id, for callers that need ids of the
// same shape (Socket.IO socket ids and private session ids).
func (s *Server) NewID() string {
	id, err := s.newID()
	if err != nil {
		// crypto/rand does not fail on supported platforms (Go 1.24+ panics
		// inside Read instead); keep the signature simple for callers.
		panic(err)
	}
	return id
}
