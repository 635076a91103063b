package engineio_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/operate/realtime/engineio"
)

// Timing: the machine may be loaded, so waits for conditions are polls with
// a generous deadline, never sleeps.
const (
	waitTimeout = 10 * time.Second
	readTimeout = 10 * time.Second
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Handler

// recorder is the test Handler: it records every session's messages and
// checks the SessionHandler contract (Message calls serialized, Closed once
// and never during a Message, nothing after Closed). With echo, every
// message is sent back as it came.
type recorder struct {
	echo bool
	// onOpen, if set, runs inside Handler.Open.
	onOpen func(*engineio.Session)
	// onMessage, if set, runs inside SessionHandler.Message.
	onMessage func(r *sessionRec, data []byte, binary bool)

	opened chan *sessionRec
	mu     sync.Mutex
	byID   map[string]*sessionRec
	all    []*sessionRec
}

type message struct {
	data   string
	binary bool
}

func (m message) String() string {
	if m.binary {
		return fmt.Sprintf("bin(%x)", m.data)
	}
	return fmt.Sprintf("%q", m.data)
}

type sessionRec struct {
	h    *recorder
	sess *engineio.Session

	inMessage  atomic.Int32
	closedN    atomic.Int32
	closed     chan struct{}
	violations chan string // buffered; read at cleanup

	mu     sync.Mutex
	msgs   []message
	reason engineio.CloseReason
}

func newRecorder(echo bool) *recorder {
	return &recorder{echo: echo, opened: make(chan *sessionRec, 1024), byID: map[string]*sessionRec{}}
}

func (h *recorder) Open(s *engineio.Session) engineio.SessionHandler {
	r := &sessionRec{h: h, sess: s, closed: make(chan struct{}), violations: make(chan string, 16)}
	h.mu.Lock()
	h.byID[s.ID()] = r
	h.all = append(h.all, r)
	h.mu.Unlock()
	if h.onOpen != nil {
		h.onOpen(s)
	}
	h.opened <- r
	return r
}

func (r *sessionRec) violate(format string, args ...any) {
	select {
	case r.violations <- fmt.Sprintf(format, args...):
	default:
	}
}

func (r *sessionRec) Message(data []byte, binary bool) {
	if n := r.inMessage.Add(1); n != 1 {
		r.violate("%d concurrent Message calls", n)
	}
	if r.closedN.Load() != 0 {
		r.violate("Message(%q) after Closed", data)
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, message{string(data), binary})
	r.mu.Unlock()
	if r.h.onMessage != nil {
		r.h.onMessage(r, data, binary)
	}
	if r.h.echo {
		if binary {
			_ = r.sess.Send(engineio.NewBinaryPacket(data))
		} else {
			_ = r.sess.Send(engineio.NewPacket(4, data))
		}
	}
	r.inMessage.Add(-1)
}

func (r *sessionRec) Closed(reason engineio.CloseReason) {
	if r.inMessage.Load() != 0 {
		r.violate("Closed(%q) during a Message call", reason)
	}
	if n := r.closedN.Add(1); n != 1 {
		r.violate("Closed called %d times (now with %q)", n, reason)
		return
	}
	r.mu.Lock()
	r.reason = reason
	r.mu.Unlock()
	close(r.closed)
}

func (r *sessionRec) messages() []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]message(nil), r.msgs...)
}

// waitClosed waits for Closed and returns its reason.
func (r *sessionRec) waitClosed(t testing.TB) engineio.CloseReason {
	t.Helper()
	select {
	case <-r.closed:
	case <-time.After(waitTimeout):
		t.Fatalf("session %s: Closed not called", r.sess.ID())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

func (r *sessionRec) isClosed() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

// waitMessages waits until n messages have arrived and returns them.
func (r *sessionRec) waitMessages(t testing.TB, n int) []message {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d messages", n), func() bool { return len(r.messages()) >= n })
	return r.messages()
}

// next returns the next session opened.
func (h *recorder) next(t testing.TB) *sessionRec {
	t.Helper()
	select {
	case r := <-h.opened:
		return r
	case <-time.After(waitTimeout):
		t.Fatal("no session opened")
		return nil
	}
}

func (h *recorder) session(t testing.TB, sid string) *sessionRec {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.byID[sid]
	if r == nil {
		t.Fatalf("no session %q opened", sid)
	}
	return r
}

// checkContract reports every contract violation seen.
func (h *recorder) checkContract(t testing.TB) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.all {
		for len(r.violations) > 0 {
			t.Errorf("session %s: SessionHandler contract: %s", r.sess.ID(), <-r.violations)
		}
	}
}

// ---------------------------------------------------------------------------
// Server

type env struct {
	t      *testing.T
	srv    *engineio.Server
	hs     *http.Server
	h      *recorder
	base   string // http://host:port/socket.io/
	addr   string // host:port
	client *http.Client
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// newEnv starts an Engine.IO server on a real TCP listener. Unless set,
// the heartbeat is slow enough (10 s) that no ping shows up in a test that
// is not about it. configure, if given, sets up the HTTP server before it
// starts (its timeouts, say).
func newEnv(t *testing.T, opts *engineio.Options, h *recorder, configure ...func(*http.Server)) *env {
	t.Helper()
	if opts == nil {
		opts = &engineio.Options{}
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = 10 * time.Second
	}
	if opts.PingTimeout == 0 {
		opts.PingTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger
	}
	if h == nil {
		h = newRecorder(true)
	}
	srv, err := engineio.NewServer(h, opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(srv.Options().Path, srv)
	hs := &http.Server{Handler: mux, ErrorLog: log.New(io.Discard, "", 0)}
	for _, f := range configure {
		f(hs)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Served as cmd/realtime serves it: WebSocket handshakes on
	// ServeFast's path, the rest by net/http (all of it by net/http when
	// configure sets a ConnContext).
	served := make(chan error, 1)
	go func() { served <- engineio.ServeFast(hs, ln, srv.Options().Path) }()
	tr := &http.Transport{MaxIdleConnsPerHost: 32, DisableCompression: true}
	e := &env{
		t:      t,
		srv:    srv,
		hs:     hs,
		h:      h,
		base:   "http://" + ln.Addr().String() + srv.Options().Path,
		addr:   ln.Addr().String(),
		client: &http.Client{Transport: tr, Timeout: 20 * time.Second},
	}
	t.Cleanup(func() {
		// Polling sessions with packets queued wait for a GET that will
		// not come: do not wait long for them.
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeFast: %v", err)
		}
		tr.CloseIdleConnections()
		h.checkContract(t)
	})
	return e
}

// request sends an HTTP request to the Engine.IO path with the given query.
func (e *env) request(method, query string, body io.Reader, header http.Header) (*http.Response, string) {
	e.t.Helper()
	resp, b, err := e.tryRequest(method, query, body, header)
	if err != nil {
		e.t.Fatalf("%s ?%s: %v", method, query, err)
	}
	return resp, b
}

func (e *env) tryRequest(method, query string, body io.Reader, header http.Header) (*http.Response, string, error) {
	req, err := http.NewRequest(method, e.base+"?"+query, body)
	if err != nil {
		return nil, "", err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func (e *env) get(query string) (*http.Response, string) {
	e.t.Helper()
	return e.request(http.MethodGet, query, nil, nil)
}

// poll sends a long-polling GET for sid.
func (e *env) poll(sid string) (int, string) {
	e.t.Helper()
	resp, body := e.get("EIO=4&transport=polling&sid=" + sid)
	return resp.StatusCode, body
}

// post sends a long-polling POST for sid.
func (e *env) post(sid, payload string) (int, string) {
	e.t.Helper()
	resp, body := e.request(http.MethodPost, "EIO=4&transport=polling&sid="+sid, strings.NewReader(payload),
		http.Header{"Content-Type": {"text/plain;charset=UTF-8"}})
	return resp.StatusCode, body
}

// pollAsync starts a GET and returns a channel that receives its result.
type pollResult struct {
	status int
	body   string
	err    error
}

func (e *env) pollAsync(sid string) <-chan pollResult {
	ch := make(chan pollResult, 1)
	go func() {
		resp, body, err := e.tryRequest(http.MethodGet, "EIO=4&transport=polling&sid="+sid, nil, nil)
		if err != nil {
			ch <- pollResult{err: err}
			return
		}
		ch <- pollResult{status: resp.StatusCode, body: body}
	}()
	return ch
}

func wait(t testing.TB, ch <-chan pollResult) pollResult {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("poll: %v", r.err)
		}
		return r
	case <-time.After(waitTimeout):
		t.Fatal("poll did not return")
		return pollResult{}
	}
}

// handshakeRE matches the open packet exactly, key order included.
var handshakeRE = regexp.MustCompile(`^0\{"sid":"([A-Za-z0-9_-]{20})","upgrades":(\[\]|\["websocket"\]),"pingInterval":(\d+),"pingTimeout":(\d+),"maxPayload":(\d+)\}$`)

// handshake opens a polling session and returns its id and record.
func (e *env) handshake() (string, *sessionRec) {
	e.t.Helper()
	resp, body := e.get("EIO=4&transport=polling&t=" + fmt.Sprint(time.Now().UnixNano()))
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("handshake: %d %q", resp.StatusCode, body)
	}
	m := handshakeRE.FindStringSubmatch(body)
	if m == nil {
		e.t.Fatalf("handshake body %q", body)
	}
	return m[1], e.h.session(e.t, m[1])
}

// waitPending waits until a GET of the session is waiting for packets.
func waitPending(t testing.TB, r *sessionRec) {
	t.Helper()
	waitFor(t, "a pending GET", r.sess.Writable)
}

// checkError checks an Engine.IO JSON error response.
func checkError(t testing.TB, resp *http.Response, body string, status, code int, message string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d (body %q)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	want, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, message})
	if body != string(want) {
		t.Errorf("body %s, want %s", body, want)
	}
}

// ---------------------------------------------------------------------------
// Raw WebSocket client

type wsClient struct {
	t      testing.TB
	conn   net.Conn
	r      io.Reader
	hs     ws.Handshake
	header http.Header // the handshake response headers
}

// dialWS opens a WebSocket to the Engine.IO path with the given query.
func (e *env) dialWS(query string, configure ...func(*ws.Dialer)) *wsClient {
	e.t.Helper()
	c, err := e.tryDialWS(query, configure...)
	if err != nil {
		e.t.Fatalf("dial ?%s: %v", query, err)
	}
	return c
}

func (e *env) tryDialWS(query string, configure ...func(*ws.Dialer)) (*wsClient, error) {
	header := http.Header{}
	d := ws.Dialer{
		Timeout: readTimeout,
		OnHeader: func(key, value []byte) error {
			header.Add(string(key), string(value))
			return nil
		},
	}
	for _, f := range configure {
		f(&d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	conn, br, hs, err := d.Dial(ctx, "ws://"+e.addr+e.srv.Options().Path+"?"+query)
	if err != nil {
		return nil, err
	}
	c := &wsClient{t: e.t, conn: conn, r: conn, hs: hs, header: header}
	if br != nil {
		c.r = io.MultiReader(br, conn)
	}
	e.t.Cleanup(func() { conn.Close() })
	return c, nil
}

// openWS opens a WebSocket-only session and returns the client, the sid and
// the session record.
func (e *env) openWS() (*wsClient, string, *sessionRec) {
	e.t.Helper()
	c := e.dialWS("EIO=4&transport=websocket")
	m := handshakeRE.FindStringSubmatch(c.expectPrefix("0"))
	if m == nil {
		e.t.Fatalf("bad open packet")
	}
	return c, m[1], e.h.session(e.t, m[1])
}

// send writes one masked message frame.
func (c *wsClient) send(op ws.OpCode, data []byte) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(readTimeout))
	if err := wsutil.WriteClientMessage(c.conn, op, data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *wsClient) sendText(s string) { c.t.Helper(); c.send(ws.OpText, []byte(s)) }

// writeFrame writes a frame as given (the caller masks it or not).
func (c *wsClient) writeFrame(f ws.Frame) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(readTimeout))
	if err := ws.WriteFrame(c.conn, f); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

// maskedFrame builds a client frame.
func maskedFrame(op ws.OpCode, fin bool, payload []byte) ws.Frame {
	return ws.MaskFrameInPlace(ws.NewFrame(op, fin, append([]byte(nil), payload...)))
}

// readFrame reads the next frame, whatever it is.
func (c *wsClient) readFrame() (ws.Frame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(readTimeout))
	return ws.ReadFrame(c.r)
}

// read returns the next data message (text or binary). Control frames are
// returned too, so that tests see pongs and close frames.
func (c *wsClient) read() (ws.OpCode, []byte) {
	c.t.Helper()
	f, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if !f.Header.Fin {
		c.t.Fatalf("server sent a fragmented frame")
	}
	return f.Header.OpCode, f.Payload
}

// expectText reads a text frame and checks it.
func (c *wsClient) expectText(want string) {
	c.t.Helper()
	op, data := c.read()
	if op != ws.OpText || string(data) != want {
		c.t.Fatalf("got %v %q, want text %q", op, data, want)
	}
}

// expectPrefix reads a text frame that must start with prefix.
func (c *wsClient) expectPrefix(prefix string) string {
	c.t.Helper()
	op, data := c.read()
	if op != ws.OpText || !strings.HasPrefix(string(data), prefix) {
		c.t.Fatalf("got %v %q, want text starting with %q", op, data, prefix)
	}
	return string(data)
}

// expectClose reads frames until a close frame and checks its code, then
// expects the connection to end. Text frames before it (pings) are skipped.
func (c *wsClient) expectClose(code ws.StatusCode) {
	c.t.Helper()
	for {
		f, err := c.readFrame()
		if err != nil {
			c.t.Fatalf("waiting for close %d: %v", code, err)
		}
		if f.Header.OpCode != ws.OpClose {
			continue
		}
		got, _ := ws.ParseCloseFrameData(f.Payload)
		if got != code {
			c.t.Fatalf("close code %d, want %d", got, code)
		}
		c.expectEOF()
		return
	}
}

// expectEOF expects the server to end the connection (frames before the
// end are skipped).
func (c *wsClient) expectEOF() {
	c.t.Helper()
	for {
		_, err := c.readFrame()
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("connection still open: %v", err)
		}
		return
	}
}

// rawHTTP sends a raw request on a new TCP connection and returns the
// response, and whether the server then closed the connection.
func (e *env) rawHTTP(req string) (*http.Response, string, bool) {
	e.t.Helper()
	conn, err := net.DialTimeout("tcp", e.addr, readTimeout)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(readTimeout))
	if _, err := io.WriteString(conn, req); err != nil {
		e.t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	_, err = br.ReadByte()
	return resp, string(body), errors.Is(err, io.EOF)
}

// upgradeRequest is a WebSocket handshake request for the Engine.IO path.
func (e *env) upgradeRequest(query string) string {
	return "GET " + e.srv.Options().Path + "?" + query + " HTTP/1.1\r\n" +
		"Host: " + e.addr + "\r\n" +
		"Connection: Upgrade\r\n" +
		"Upgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
}
