package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/operate/realtime/gateway/auth"
)

// Org is the organization id of organization i.
func Org(i int) string { return fmt.Sprintf("org_%05d", i) }

// User is the user id of client g.
func User(g int) string { return "u" + strconv.Itoa(g) }

// transport is how a client connects.
type transport uint8

const (
	// transportWebSocket opens a WebSocket straight away (socket.io-client
	// with transports: ["websocket"]).
	transportWebSocket transport = iota
	// transportUpgrade does what socket.io-client does by default, and so
	// every browser: the handshake and the CONNECT over HTTP long-polling,
	// then the upgrade to WebSocket.
	transportUpgrade
	// transportPolling stays on long-polling (transports: ["polling"]).
	transportPolling
)

// transportOf is client g's transport: the first pollingPercent of every
// hundred clients poll, the next upgradePercent upgrade, the rest go
// straight to WebSocket.
func transportOf(g, pollingPercent, upgradePercent int) transport {
	switch k := g % 100; {
	case k < pollingPercent:
		return transportPolling
	case k < pollingPercent+upgradePercent:
		return transportUpgrade
	}
	return transportWebSocket
}

// client is one simulated browser.
type client struct {
	g         int // global index
	target    string
	src       net.IP
	transport transport
	token     string
	// connect is the CONNECT packet: 40<nsp>,{"token":"..."}
	connect []byte

	mu       sync.Mutex
	conn     net.Conn // nil when not connected
	alive    bool
	dropping bool
	// Recovery state (worker.recovery): the pid of the last CONNECT reply,
	// the offset of the last event received, and the pid the CONNECT in
	// flight asked to recover ("" when it did not ask).
	pid, offset, askedPID string
}

// worker holds a share of the clients, in a process of its own.
type worker struct {
	// centrifugo: the clients speak Centrifugo's protocol (Cmd.Protocol).
	centrifugo bool
	nsp        string
	nspPrefix  []byte // "/events," (empty for "/")
	eventMark  []byte // `["invoice:created"`
	clients    []*client
	readers    sync.WaitGroup
	alive      atomic.Int64
	upgraded   atomic.Int64 // live connections of transportUpgrade clients
	polling    atomic.Int64 // live connections of transportPolling clients
	received   atomic.Int64
	welcomes   atomic.Int64
	closed     atomic.Int64
	malformed  atomic.Int64
	latency    shardedHist
	// The heartbeat announced in the first open packet this worker read
	// (every client of a worker talks to servers started alike).
	announced      atomic.Bool
	pingIntervalMS atomic.Int64
	pingTimeoutMS  atomic.Int64

	// recovery: see Cmd.Recovery.
	recovery     bool
	gapMark      []byte // `["history:gap"`
	recovered    atomic.Int64
	notRecovered atomic.Int64
	gaps         atomic.Int64
}

// runWorker serves commands on stdin until "quit" or EOF.
func runWorker() error {
	w := &worker{}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	for in.Scan() {
		var c Cmd
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			return fmt.Errorf("worker: bad command: %w", err)
		}
		r := w.do(c)
		r.ID = c.ID
		if err := enc.Encode(r); err != nil {
			return err
		}
		if err := out.Flush(); err != nil {
			return err
		}
		if c.Op == "quit" {
			return nil
		}
	}
	return in.Err()
}

func (w *worker) do(c Cmd) Reply {
	switch c.Op {
	case "setup":
		if err := w.setup(c); err != nil {
			return Reply{Err: err.Error()}
		}
		return Reply{Alive: int(w.alive.Load())}
	case "connect":
		return w.connectAll(c)
	case "drop":
		w.drop()
		return w.stats()
	case "reset":
		w.received.Store(0)
		w.welcomes.Store(0)
		w.closed.Store(0)
		w.malformed.Store(0)
		w.latency.reset()
		w.recovered.Store(0)
		w.notRecovered.Store(0)
		w.gaps.Store(0)
		return w.stats()
	case "stats":
		return w.stats()
	case "quit":
		w.drop()
		return Reply{}
	}
	return Reply{Err: "unknown op " + c.Op}
}

func (w *worker) setup(c Cmd) error {
	if c.Count <= 0 || len(c.Targets) == 0 || len(c.Sources) == 0 || c.Orgs <= 0 || c.Secret == "" {
		return errors.New("setup: count, targets, sources, orgs and secret are required")
	}
	if c.PollingPercent < 0 || c.UpgradePercent < 0 || c.PollingPercent+c.UpgradePercent > 100 {
		return fmt.Errorf("setup: %d %% polling + %d %% upgrade is not a share of the clients", c.PollingPercent, c.UpgradePercent)
	}
	switch c.Protocol {
	case "":
	case protoCentrifugo:
		w.centrifugo = true
	default:
		return fmt.Errorf("setup: unknown protocol %q", c.Protocol)
	}
	w.nsp = c.Namespace
	if w.nsp == "" {
		w.nsp = "/events"
	}
	if w.nsp != "/" {
		w.nspPrefix = []byte(w.nsp + ",")
	}
	w.eventMark = []byte(`["` + c.Event + `"`)
	w.recovery = c.Recovery
	w.gapMark = []byte(`["history:gap"`)
	ttl := c.TokenTTL
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	now := time.Now()
	w.clients = make([]*client, c.Count)
	for i := range w.clients {
		g := c.First + i
		claims := auth.MintClaims{
			UserID:         User(g),
			OrganizationID: Org(g % c.Orgs),
			Role:           "member",
		}
		if w.centrifugo {
			// Centrifugo subscribes the connection to these channels on
			// the server side, as the gateway joins it to org:<orgId>.
			claims.Extra = map[string]any{"channels": []string{orgChannel(g % c.Orgs)}}
		}
		tok, err := auth.Mint(c.Secret, claims, ttl, now)
		if err != nil {
			return err
		}
		src := net.ParseIP(c.Sources[g%len(c.Sources)])
		if src == nil {
			return fmt.Errorf("setup: bad source address %q", c.Sources[g%len(c.Sources)])
		}
		cl := &client{
			g:         g,
			target:    c.Targets[g%len(c.Targets)],
			src:       src,
			transport: transportOf(g, c.PollingPercent, c.UpgradePercent),
			token:     tok,
		}
		cl.connect = append(append([]byte("40"), w.nspPrefix...), `{"token":"`+tok+`"}`...)
		if w.centrifugo {
			cl.transport = transportWebSocket
			cl.connect = cfConnectCommand(tok)
		}
		w.clients[i] = cl
	}
	return nil
}

// connectAll opens connections with bounded concurrency and reports how
// long each handshake took (TCP connect to the namespace's CONNECT reply).
func (w *worker) connectAll(c Cmd) Reply {
	to := c.To
	if to <= 0 || to > len(w.clients) {
		to = len(w.clients)
	}
	conc := max(c.Concurrency, 1)
	var (
		hist      shardedHist
		connected atomic.Int64
		failed    atomic.Int64
		errMu     sync.Mutex
		errs      = map[string]int{}
		wg        sync.WaitGroup
		sem       = make(chan struct{}, conc)
	)
	start, cpu0 := time.Now(), selfCPU()
	for i := c.From; i < to; i++ {
		cl := w.clients[i]
		cl.mu.Lock()
		skip := cl.conn != nil // already connected
		if c.Target != "" {
			cl.target = c.Target
		}
		cl.mu.Unlock()
		if skip {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			t0 := time.Now()
			err := w.open(cl, func() {
				hist.record(cl.g, time.Since(t0))
				connected.Add(1)
				<-sem
				wg.Done()
			})
			if err != nil {
				failed.Add(1)
				errMu.Lock()
				msg := err.Error()
				if len(errs) < 20 || errs[msg] > 0 {
					errs[msg]++
				}
				errMu.Unlock()
				<-sem
				wg.Done()
			}
		}()
	}
	wg.Wait()
	r := Reply{
		Connected:   int(connected.Load()),
		Failed:      int(failed.Load()),
		ElapsedNS:   time.Since(start).Nanoseconds(),
		ConnectHist: hist.snapshot(),
		ConnectCPU:  (selfCPU() - cpu0).Nanoseconds(),
		Alive:       int(w.alive.Load()),
	}
	for m, n := range errs {
		r.Errors = append(r.Errors, fmt.Sprintf("%d× %s", n, m))
	}
	return r
}

// open connects cl, calls connected once the namespace accepted it, then
// reads until the connection ends. It returns an error only if the
// connection never got that far.
func (w *worker) open(cl *client, connected func()) error {
	cl.mu.Lock()
	if cl.conn != nil {
		cl.mu.Unlock()
		return errors.New("already connected")
	}
	cl.dropping = false
	if w.recovery && !w.centrifugo {
		cl.connect, cl.askedPID = connectPacket(w.nspPrefix, cl.token, cl.pid, cl.offset)
	}
	cl.mu.Unlock()
	if w.centrifugo {
		return w.runCentrifugo(cl, connected)
	}
	switch cl.transport {
	case transportPolling:
		return w.runPolling(cl, connected)
	case transportUpgrade:
		return w.runUpgrade(cl, connected)
	}
	return w.runWS(cl, connected)
}

// modeCounter is the gauge of live connections of cl's transport, if it
// has one (direct WebSockets are the rest).
func (w *worker) modeCounter(cl *client) *atomic.Int64 {
	switch cl.transport {
	case transportUpgrade:
		return &w.upgraded
	case transportPolling:
		return &w.polling
	}
	return nil
}

// noteOpen records the heartbeat of the first open packet ("0{...}") the
// worker sees; later ones are not parsed, to keep the handshake's cost
// that of a client.
func (w *worker) noteOpen(p []byte) {
	if len(p) == 0 || p[0] != '0' || !w.announced.CompareAndSwap(false, true) {
		return
	}
	var open struct {
		PingInterval int64 `json:"pingInterval"`
		PingTimeout  int64 `json:"pingTimeout"`
	}
	if json.Unmarshal(p[1:], &open) == nil {
		w.pingIntervalMS.Store(open.PingInterval)
		w.pingTimeoutMS.Store(open.PingTimeout)
	}
}

// attach records cl's live connection; detach is called by its reader on
// exit.
func (w *worker) attach(cl *client, c net.Conn) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.dropping {
		return false
	}
	cl.conn, cl.alive = c, true
	w.alive.Add(1)
	if m := w.modeCounter(cl); m != nil {
		m.Add(1)
	}
	w.readers.Add(1)
	return true
}

func (w *worker) detach(cl *client, c net.Conn) {
	cl.mu.Lock()
	if cl.conn == c {
		cl.conn, cl.alive = nil, false
		w.alive.Add(-1)
		if m := w.modeCounter(cl); m != nil {
			m.Add(-1)
		}
		if !cl.dropping {
			w.closed.Add(1)
		}
	}
	cl.mu.Unlock()
	c.Close()
	w.readers.Done()
}

// drop closes every connection and waits for the readers to finish.
func (w *worker) drop() {
	for _, cl := range w.clients {
		cl.mu.Lock()
		cl.dropping = true
		if cl.conn != nil {
			cl.conn.Close()
		}
		cl.mu.Unlock()
	}
	w.readers.Wait()
}

func (w *worker) stats() Reply {
	var withOffset int64
	if w.recovery {
		for _, cl := range w.clients {
			cl.mu.Lock()
			if cl.pid != "" && cl.offset != "" {
				withOffset++
			}
			cl.mu.Unlock()
		}
	}
	return Reply{
		Recovered:      w.recovered.Load(),
		NotRecovered:   w.notRecovered.Load(),
		Gaps:           w.gaps.Load(),
		WithOffset:     withOffset,
		Alive:          int(w.alive.Load()),
		AliveUpgraded:  int(w.upgraded.Load()),
		AlivePolling:   int(w.polling.Load()),
		PingIntervalMS: w.pingIntervalMS.Load(),
		PingTimeoutMS:  w.pingTimeoutMS.Load(),
		Received:       w.received.Load(),
		Welcomes:       w.welcomes.Load(),
		Closed:         w.closed.Load(),
		Malformed:      w.malformed.Load(),
		Latency:        w.latency.snapshot(),
		CPUNS:          selfCPU().Nanoseconds(),
	}
}

// dial opens a TCP connection from cl's source address. The port is chosen
// at connect time (IP_BIND_ADDRESS_NO_PORT), so that the 28k ephemeral ports
// are per (source, destination) pair rather than per source address.
func dial(ctx context.Context, src net.IP, addr string) (net.Conn, error) {
	d := net.Dialer{
		LocalAddr: &net.TCPAddr{IP: src},
		Timeout:   30 * time.Second,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	return d.DialContext(ctx, "tcp", addr)
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h).
const ipBindAddressNoPort = 24

// Packet handling, common to both transports.

type pktKind uint8

const (
	pktOther pktKind = iota
	pktPing
	pktConnected    // the namespace's CONNECT reply
	pktConnectError // the namespace refused us
	pktClose
)

var (
	sentAtMark = []byte(`"sentAt":"`)
	welcome    = []byte(`["connected"`)
)

// handle processes one Engine.IO packet (text).
func (w *worker) handle(cl *client, p []byte) pktKind {
	if len(p) == 0 {
		w.malformed.Add(1)
		return pktOther
	}
	switch p[0] {
	case '2':
		return pktPing
	case '1':
		return pktClose
	case '4':
	default:
		return pktOther
	}
	if len(p) < 2 {
		w.malformed.Add(1)
		return pktOther
	}
	t, rest := p[1], p[2:]
	if !bytes.HasPrefix(rest, w.nspPrefix) {
		return pktOther
	}
	rest = rest[len(w.nspPrefix):]
	switch t {
	case '0':
		if w.recovery {
			w.noteConnected(cl, rest)
		}
		return pktConnected
	case '4':
		return pktConnectError
	case '2':
		switch {
		case bytes.HasPrefix(rest, w.eventMark):
			w.received.Add(1)
			if w.recovery {
				if off, ok := lastStringArg(rest); ok {
					cl.mu.Lock()
					cl.offset = off
					cl.mu.Unlock()
				}
			}
			if i := bytes.Index(rest, sentAtMark); i >= 0 {
				if sent, ok := parseNanos(rest[i+len(sentAtMark):]); ok {
					w.latency.record(cl.g, time.Duration(time.Now().UnixNano()-sent))
				}
			}
		case bytes.HasPrefix(rest, welcome):
			w.welcomes.Add(1)
		case w.recovery && bytes.HasPrefix(rest, w.gapMark):
			w.gaps.Add(1)
		}
	}
	return pktOther
}

// parseNanos reads the decimal digits at the start of b.
func parseNanos(b []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	return n, i > 0
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
