package engineio

import (
	"bufio"
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// A WebSocket handshake through net/http costs a connection's worth of
// HTTP machinery that the hijack throws away at once: a 4 KiB reader and a
// 4 KiB writer (half of the bytes a connect allocates), a cancelable
// context, the response, the per-connection state. ServeFast reads the
// first request on each accepted connection itself and, when it is a
// complete, plainly valid WebSocket handshake under the engine's path,
// calls the server's handler with the request and a writer that hands the
// connection over without any of that. Everything else (polling, the API,
// any request it is not sure about) goes to net/http with the bytes
// already read, and net/http answers it as it always would, malformed
// requests with their 4xx included.

// maxFastHead bounds the request head the fast path reads in one go; the
// handshakes of browsers and socket.io-client are 200–700 bytes.
const maxFastHead = 4096

// maxFastHeaders bounds the header lines of a fast request.
const maxFastHeaders = 64

// lingerTimeout is how long a connection answered with an error is kept
// half-closed so the client reads the answer before the reset a close
// with unread bytes would cause (net/http waits 500 ms too).
const lingerTimeout = 500 * time.Millisecond

// ServeFast serves srv on ln like srv.Serve, except that WebSocket
// handshakes to a path under path (the engine's, Server.Path) skip
// net/http's per-connection work (see above). srv.Handler sees the same
// request (method, URL, Host, headers, RemoteAddr; r.Context() is
// context.Background()) and its writer can hijack the connection or answer
// it; an answer is sent with Connection: close. srv.ReadHeaderTimeout (or
// ReadTimeout), WriteTimeout, MaxHeaderBytes and ErrorLog apply as they do
// for net/http. A server with TLSConfig, ConnState, ConnContext or
// BaseContext set, or Protocols without HTTP/1, is served by srv.Serve
// alone (its handler expects the contexts these make, or no HTTP/1). A head that does not arrive in one read goes
// to net/http, whose header timeout for it ends when the one that ran
// while ServeFast read ends. Like srv.Serve, it returns when srv is shut
// down or closed (http.ErrServerClosed) or ln fails; both close the
// connections whose first bytes it is still waiting for (Shutdown too:
// net/http would give a new connection up to 5 s).
func ServeFast(srv *http.Server, ln net.Listener, path string) error {
	if srv.TLSConfig != nil || srv.ConnState != nil || srv.ConnContext != nil || srv.BaseContext != nil ||
		(srv.Protocols != nil && !srv.Protocols.HTTP1()) || path == "" {
		return srv.Serve(ln)
	}
	f := &fastFront{
		srv:      srv,
		path:     path,
		fallback: make(chan net.Conn),
		closed:   make(chan struct{}),
		bufs:     sync.Pool{New: func() any { return new([maxFastHead]byte) }},
		sniffed:  make(map[net.Conn]struct{}),
	}
	handler := srv.Handler
	if handler == nil {
		handler = http.DefaultServeMux
	}
	f.handler = handler
	// Both listeners are the server's: Shutdown and Close close them, and
	// each Serve returns.
	fb := make(chan error, 1)
	go func() { fb <- srv.Serve(&fallbackListener{f: f, addr: ln.Addr()}) }()
	err := srv.Serve(&frontListener{Listener: ln, f: f})
	f.close()
	<-fb
	return err
}

// fastFront is ServeFast's state for one listener.
type fastFront struct {
	srv     *http.Server
	handler http.Handler
	path    string

	fallback  chan net.Conn // connections for net/http
	closed    chan struct{}
	closeOnce sync.Once

	bufs sync.Pool // *[maxFastHead]byte, held only between readable and parsed

	// The connections being sniffed are no server's: Shutdown and Close
	// neither see nor close them, so close does, lest a handshake that
	// completes afterwards reach the handler of a server shut down.
	mu      sync.Mutex
	sniffed map[net.Conn]struct{}
	done    bool
}

func (f *fastFront) close() {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		f.done = true
		for c := range f.sniffed {
			c.Close()
		}
		f.sniffed = nil
		f.mu.Unlock()
		close(f.closed)
	})
}

// track records c as being sniffed, or reports false once f is closed.
func (f *fastFront) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return false
	}
	f.sniffed[c] = struct{}{}
	return true
}

// untrack ends c's sniffing, and reports false when f was closed (and c
// with it) meanwhile.
func (f *fastFront) untrack(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sniffed, c)
	return !f.done
}

// frontListener accepts for ServeFast: it never returns a connection to
// net/http itself, it sniffs each one on a goroutine of its own (the one
// net/http would have started) and returns only the listener's errors, so
// that srv.Serve keeps its backoff on temporary ones.
type frontListener struct {
	net.Listener
	f *fastFront
}

func (l *frontListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		go l.f.serveConn(c)
	}
}

// fallbackListener hands net/http the connections the fast path declined.
type fallbackListener struct {
	f    *fastFront
	addr net.Addr
}

func (l *fallbackListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.f.fallback:
		return c, nil
	case <-l.f.closed:
		return nil, net.ErrClosed
	}
}

func (l *fallbackListener) Close() error   { l.f.close(); return nil }
func (l *fallbackListener) Addr() net.Addr { return l.addr }

// serveConn reads the connection's first bytes and serves them as a fast
// handshake, or gives the connection to net/http.
func (f *fastFront) serveConn(c net.Conn) {
	if !f.track(c) {
		c.Close()
		return
	}
	timeout := f.srv.ReadHeaderTimeout
	if timeout <= 0 {
		timeout = f.srv.ReadTimeout
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
		_ = c.SetReadDeadline(deadline)
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		f.untrack(c)
		f.handOver(c)
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		f.untrack(c)
		f.handOver(c)
		return
	}
	// The buffer is taken once the socket is readable: a client that
	// connects and waits holds none.
	var (
		buf   *[maxFastHead]byte
		n     int
		rerr  error
		ready bool
	)
	err = raw.Read(func(fd uintptr) bool {
		buf = f.bufs.Get().(*[maxFastHead]byte)
		for {
			n, rerr = syscall.Read(int(fd), buf[:])
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			f.bufs.Put(buf)
			buf = nil
			return false
		}
		ready = true
		return true
	})
	if !f.untrack(c) {
		err = net.ErrClosed
	}
	if err != nil || !ready || rerr != nil || n <= 0 {
		// A deadline, a reset, or the client closing without a word:
		// net/http closes such connections without an answer too.
		if buf != nil {
			f.bufs.Put(buf)
		}
		c.Close()
		return
	}
	data := buf[:n]
	req, headLen, ok := f.parse(data)
	if !ok {
		head := append([]byte(nil), data...)
		f.bufs.Put(buf)
		f.handOver(&replayConn{Conn: c, head: head, deadline: deadline})
		return
	}
	var pre []byte
	if headLen < n {
		pre = append([]byte(nil), data[headLen:]...)
	}
	f.bufs.Put(buf)
	req.RemoteAddr = c.RemoteAddr().String()
	f.serve(c, req, pre)
}

// handOver gives c to net/http.
func (f *fastFront) handOver(c net.Conn) {
	select {
	case f.fallback <- c:
	case <-f.closed:
		c.Close()
	}
}

// parse returns the request data begins with when it is one the fast path
// serves: a whole head, GET, HTTP/1.1, a target under the engine's path,
// "Upgrade: websocket" and "Connection: upgrade", exactly one Host, no
// body, and nothing net/http would treat differently (see fastHeadOK).
// headLen is the head's length, the blank line included.
func (f *fastFront) parse(data []byte) (r *http.Request, headLen int, ok bool) {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, 0, false
	}
	headLen = end + 4
	if max := f.srv.MaxHeaderBytes; max > 0 && headLen > max {
		return nil, 0, false
	}
	r, ok = parseFastRequest(data[:end+2], f.path)
	return r, headLen, ok
}

// parseFastRequest parses head (the request line and header lines, each
// ending in CRLF, without the blank line) into the request net/http would
// make of it, or reports false when it is not a WebSocket handshake under
// path or holds anything outside the strict subset this parser accepts.
func parseFastRequest(head []byte, path string) (*http.Request, bool) {
	line, rest, ok := bytes.Cut(head, []byte("\r\n"))
	if !ok || len(line) <= len("GET  HTTP/1.1") || !bytes.HasPrefix(line, []byte("GET ")) || !bytes.HasSuffix(line, []byte(" HTTP/1.1")) {
		return nil, false
	}
	target := line[len("GET ") : len(line)-len(" HTTP/1.1")]
	if len(target) < len(path) || string(target[:len(path)]) != path || !validTarget(target) {
		return nil, false
	}
	// Count the lines first, so the values share one slice as in
	// net/textproto.
	lines := bytes.Count(rest, []byte("\r\n"))
	if lines == 0 || lines > maxFastHeaders {
		return nil, false
	}
	h := make(http.Header, lines)
	values := make([]string, lines)
	var host string
	hosts, upgrade, connection := 0, false, false
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 || !validFieldName(l[:colon]) {
			return nil, false
		}
		v := trimOWS(l[colon+1:])
		if !validFieldValue(v) {
			return nil, false
		}
		var canon [64]byte
		if colon > len(canon) {
			return nil, false
		}
		name := canonicalName(canon[:colon], l[:colon])
		switch name {
		case "Host":
			hosts++
			host = string(v)
			continue // net/http moves it out of the map
		case "Content-Length", "Transfer-Encoding", "Expect", "Trailer":
			// A body, or semantics net/http implements: its business.
			return nil, false
		case "Upgrade":
			upgrade = upgrade || tokenListHas(v, "websocket")
		case "Connection":
			connection = connection || tokenListHas(v, "upgrade")
		}
		if vv := h[name]; vv == nil {
			vv, values = values[:1:1], values[1:]
			vv[0] = string(v)
			h[name] = vv
		} else {
			h[name] = append(vv, string(v))
		}
	}
	if hosts != 1 || !validHost(host) || !upgrade || !connection {
		return nil, false
	}
	// RFC 7234 §5.4, as net/http reads it.
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" && h["Cache-Control"] == nil {
		h["Cache-Control"] = []string{"no-cache"}
	}
	uri := string(target)
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, false
	}
	return &http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
		Host:       host,
		RequestURI: uri,
	}, true
}

// commonNames are the canonical header names of the usual handshakes,
// interned so that the map's keys cost nothing.
var commonNames = func() map[string]string {
	m := make(map[string]string)
	for _, n := range []string{
		"Host", "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions",
		"Sec-Websocket-Protocol", "Origin", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language",
		"Cache-Control", "Pragma", "Cookie", "Authorization", "X-Forwarded-For", "X-Forwarded-Proto",
		"X-Real-Ip", "Content-Length", "Transfer-Encoding", "Expect", "Trailer",
	} {
		m[n] = n
	}
	return m
}()

// canonicalName returns name in canonical form (textproto's: the first
// letter and each one after a hyphen upper case, the rest lower case),
// using dst (len(name) bytes) as scratch.
func canonicalName(dst, name []byte) string {
	upper := true
	for i, c := range name {
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst[i] = c
		upper = c == '-'
	}
	if s, ok := commonNames[string(dst)]; ok {
		return s
	}
	return textproto.CanonicalMIMEHeaderKey(string(dst))
}

// validFieldName: RFC 9110's token, as httpguts.ValidHeaderFieldName.
func validFieldName(b []byte) bool {
	for _, c := range b {
		if !isTokenChar(c) {
			return false
		}
	}
	return len(b) > 0
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c < 0x80 && bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}

// validFieldValue is stricter than net/http: visible ASCII, spaces and
// tabs only; anything else goes to net/http, which decides.
func validFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t') || c > 0x7e {
			return false
		}
	}
	return true
}

// validTarget: an origin-form target of visible ASCII, as net/http reads
// it (no fragment, which url.ParseRequestURI would keep in the path).
func validTarget(b []byte) bool {
	if len(b) == 0 || b[0] != '/' {
		return false
	}
	for _, c := range b {
		if c <= 0x20 || c > 0x7e || c == '#' {
			return false
		}
	}
	return true
}

// validHost is stricter than httpguts.ValidHostHeader: a host name or
// address with an optional port, or a bracketed IPv6 address.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_':
		default:
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// tokenListHas reports whether the comma-separated list v holds token,
// case-insensitively (as headerHasToken).
func tokenListHas(v []byte, token string) bool {
	for len(v) > 0 {
		var item []byte
		item, v, _ = bytes.Cut(v, []byte(","))
		if bytes.EqualFold(trimOWS(item), []byte(token)) {
			return true
		}
	}
	return false
}

// serve runs the handler for a fast request and completes the exchange
// when it does not hijack the connection.
func (f *fastFront) serve(c net.Conn, r *http.Request, pre []byte) {
	w := &fastWriter{conn: c, pre: pre}
	defer func() {
		if err := recover(); err != nil {
			// Logged before the close, as net/http does: whoever sees
			// the connection end can find why.
			if err != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				f.logf("http: panic serving %v: %v\n%s", r.RemoteAddr, err, buf)
			}
			if !w.hijacked {
				c.Close()
			}
		}
	}()
	f.handler.ServeHTTP(w, r)
	if !w.hijacked {
		f.answer(w)
	}
}

// logf logs where net/http would: ErrorLog, or the standard logger.
func (f *fastFront) logf(format string, args ...any) {
	if l := f.srv.ErrorLog; l != nil {
		l.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// answer writes what the handler wrote, closes the connection for
// writing, and waits for the client to read it.
func (f *fastFront) answer(w *fastWriter) {
	c := w.conn
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if d := f.srv.WriteTimeout; d > 0 {
		_ = c.SetWriteDeadline(time.Now().Add(d))
	}
	resp := &http.Response{
		StatusCode:    w.status,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		ContentLength: int64(len(w.body)),
		Body:          io.NopCloser(bytes.NewReader(w.body)),
		Close:         true,
	}
	if resp.Header == nil {
		resp.Header = make(http.Header)
	}
	if resp.Header.Get("Date") == "" {
		resp.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	bw := bufio.NewWriterSize(c, 512)
	if err := resp.Write(bw); err != nil || bw.Flush() != nil {
		c.Close()
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.Copy(io.Discard, c)
	}
	c.Close()
}

// fastWriter is the http.ResponseWriter of a fast request: it keeps an
// answer until the handler returns, or gives the connection away.
type fastWriter struct {
	conn     net.Conn
	pre      []byte // what the client sent after the head
	header   http.Header
	status   int
	body     []byte
	hijacked bool
}

func (w *fastWriter) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *fastWriter) WriteHeader(code int) {
	if w.status == 0 && !w.hijacked && code >= 200 {
		w.status = code
	}
}

func (w *fastWriter) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// Hijack gives the connection away as net/http does: any read deadline
// cleared, what the client sent after the head in the reader's buffer.
func (w *fastWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, pre, err := w.take()
	if err != nil {
		return nil, nil, err
	}
	var src io.Reader = c
	if len(pre) > 0 {
		src = io.MultiReader(bytes.NewReader(pre), c)
	}
	br := bufio.NewReaderSize(src, max(len(pre), 16))
	if len(pre) > 0 {
		_, _ = br.Peek(len(pre))
	}
	return c, bufio.NewReadWriter(br, bufio.NewWriterSize(c, 512)), nil
}

// take is Hijack for this package's handshake, which needs no buffers.
func (w *fastWriter) take() (net.Conn, []byte, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	w.hijacked = true
	_ = w.conn.SetDeadline(time.Time{})
	return w.conn, w.pre, nil
}

// replayConn is a connection whose first bytes were already read.
type replayConn struct {
	net.Conn
	head []byte

	// deadline is the header timeout that ran while the bytes were read:
	// net/http's first read deadline (its header timeout for the first
	// request) is held to it, so that a head trickled in over the sniff
	// and net/http's read gets ReadHeaderTimeout once, not twice.
	deadline time.Time
	held     bool
}

func (c *replayConn) SetReadDeadline(t time.Time) error {
	if !c.held {
		c.held = true
		if !c.deadline.IsZero() && (t.IsZero() || t.After(c.deadline)) {
			t = c.deadline
		}
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite keeps net/http's graceful close of refused requests.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
