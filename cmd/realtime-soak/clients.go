package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/internal/faultproxy"
)

// population is the Node processes holding the clients, what each client
// saw, and each client's fault proxy.
type population struct {
	cfg     config
	procs   []*nodeProc // client i runs in procs[i % len(procs)]
	proxies []*faultproxy.Proxy

	rawMu sync.Mutex
	raw   io.Writer // every report, as read

	mu        sync.Mutex
	rnd       *rand.Rand
	clients   []Client
	connected []bool
	last      []int // the last seq of its organization each client received
	lastUser  []int // the last seq of its user each client received
	ttl       []time.Time
	badLines  int
	lags      []Lag // each Node event loop's worst delay, every 10 s
	closed    bool
}

// nodeProc is one tests/node/soak-clients.mjs process.
type nodeProc struct {
	cmd   *exec.Cmd
	wmu   sync.Mutex // guards stdin
	stdin io.WriteCloser
	done  chan struct{} // closed when its output is read to the end
}

// startPopulation starts cfg.ClientProcs tests/node/soak-clients.mjs
// processes (one Node event loop for thousands of clients falls seconds
// behind while they all reconnect at once) and a proxy per client, in
// front of its home node: targets[i % len(targets)] (host:port). No client
// connects yet.
//
// Every report is also appended to raw (clients.jsonl in the work
// directory), for reading a failure's story afterwards.
func startPopulation(root string, cfg config, targets []string, stderr, raw io.Writer) (*population, error) {
	p := &population{
		raw:       raw,
		cfg:       cfg,
		rnd:       rand.New(rand.NewPCG(cfg.Seed, 2)),
		clients:   make([]Client, cfg.Clients),
		connected: make([]bool, cfg.Clients),
		last:      make([]int, cfg.Clients),
		lastUser:  make([]int, cfg.Clients),
		ttl:       make([]time.Time, cfg.Clients),
	}
	for i := range p.clients {
		p.clients[i] = Client{ID: i, Org: cfg.org(i), User: userID(i), Mode: cfg.mode(i)}
		proxy, err := faultproxy.New(targets[i%len(targets)])
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("proxy of client %d: %w", i, err)
		}
		p.proxies = append(p.proxies, proxy)
	}
	for range max(cfg.ClientProcs, 1) {
		np, err := p.startProc(root, stderr)
		if err != nil {
			p.stop()
			return nil, err
		}
		p.procs = append(p.procs, np)
	}
	return p, nil
}

func (p *population) startProc(root string, stderr io.Writer) (*nodeProc, error) {
	cmd := exec.Command("node", filepath.Join(root, "tests", "node", "soak-clients.mjs"))
	cmd.Dir = filepath.Join(root, "tests", "node")
	cmd.Stderr = stderr
	np := &nodeProc{cmd: cmd, done: make(chan struct{})}
	var err error
	if np.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("node stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("node stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting node (make deps installs what it needs): %w", err)
	}
	readyc := make(chan struct{})
	go p.read(np, stdout, readyc)
	select {
	case <-readyc:
		return np, nil
	case <-np.done:
		return nil, fmt.Errorf("soak-clients.mjs exited before it was ready: %v", cmd.Wait())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-np.done
		_ = cmd.Wait()
		return nil, fmt.Errorf("soak-clients.mjs not ready after 30s")
	}
}

// stop kills what started, after a failed start.
func (p *population) stop() {
	for _, np := range p.procs {
		_ = np.cmd.Process.Kill()
		<-np.done
		_ = np.cmd.Wait()
	}
	p.closeProxies()
}

func (p *population) closeProxies() {
	for _, x := range p.proxies {
		_ = x.Close()
	}
}

// read takes every report of one Node process.
func (p *population) read(np *nodeProc, stdout io.Reader, readyc chan struct{}) {
	defer close(np.done)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.rawMu.Lock()
		_, _ = p.raw.Write(append(sc.Bytes(), '\n'))
		p.rawMu.Unlock()
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			p.mu.Lock()
			p.badLines++
			p.mu.Unlock()
			continue
		}
		switch r.T {
		case "ready":
			close(readyc)
			continue
		case "closed":
			continue
		case "lag":
			p.mu.Lock()
			p.lags = append(p.lags, Lag{At: time.UnixMilli(r.TS), MaxMs: r.Max})
			p.mu.Unlock()
			continue
		}
		p.record(r)
	}
}

func (p *population) record(r Record) {
	p.mu.Lock()
	if r.C < 0 || r.C >= len(p.clients) {
		p.badLines++
		p.mu.Unlock()
		return
	}
	c := &p.clients[r.C]
	c.Records = append(c.Records, r)
	refresh := false
	switch r.T {
	case "connect":
		p.connected[r.C] = true
	case "disconnect":
		p.connected[r.C] = false
	case "ev":
		switch {
		case isUserEvent(r.N):
			if r.U == c.User && r.S > p.lastUser[r.C] {
				p.lastUser[r.C] = r.S
			}
		case r.O == c.Org && r.S > p.last[r.C]:
			p.last[r.C] = r.S
		}
	case "expiring":
		refresh = true
	case "expired":
		// Too late to refresh (the client was away when it was warned):
		// the server ends the connection; an application connects again
		// with a new token.
		refresh = !p.closed
	case "refreshed":
		// The ack did not come (the connection dropped meanwhile): an
		// application tries again.
		refresh = !r.OK && (strings.Contains(r.Err, "timed out") || strings.Contains(r.Err, "disconnected")) && !p.closed
	case "cerr":
		// A client that was away while its token expired comes back with
		// it: give it a new one, as an application would.
		refresh = strings.Contains(strings.ToLower(r.Msg), "expired") && !p.closed
	}
	p.mu.Unlock()
	if refresh {
		if r.T == "refreshed" {
			time.Sleep(10 * time.Millisecond) // not in a tight loop with a client that cannot answer
		}
		tok, err := p.mint(r.C)
		if err != nil {
			fmt.Fprintf(os.Stderr, "realtime-soak: refreshing the token of client %d: %v\n", r.C, err)
			return
		}
		// Not on the reading goroutine: Node writes its stdout
		// synchronously, and waits for us to read it while we would wait
		// for it to read its stdin.
		go func() {
			if err := p.send(r.C, map[string]any{"cmd": "refresh", "c": r.C, "token": tok}); err != nil {
				fmt.Fprintf(os.Stderr, "realtime-soak: refreshing the token of client %d: %v\n", r.C, err)
			}
		}()
	}
}

// mint returns a fresh token for client i, living between half and all
// of the configured TTL.
func (p *population) mint(i int) (string, error) {
	p.mu.Lock()
	ttl := p.cfg.TokenTTL/2 + time.Duration(p.rnd.Int64N(int64(p.cfg.TokenTTL/2)+1))
	now := time.Now()
	p.ttl[i] = now.Add(ttl)
	c := p.clients[i]
	p.mu.Unlock()
	tok, err := auth.Mint(jwtSecret, auth.MintClaims{UserID: c.User, OrganizationID: c.Org}, ttl, now)
	if err != nil {
		return "", fmt.Errorf("minting a token: %w", err)
	}
	return tok, nil
}

// send sends a command to the process of client i.
func (p *population) send(i int, cmd any) error {
	return p.procs[i%len(p.procs)].send(cmd)
}

func (np *nodeProc) send(cmd any) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("encoding a command: %w", err)
	}
	np.wmu.Lock()
	defer np.wmu.Unlock()
	if _, err := np.stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing to soak-clients.mjs: %w", err)
	}
	return nil
}

// connect connects client i through its proxy.
func (p *population) connect(i int) error {
	tok, err := p.mint(i)
	if err != nil {
		return err
	}
	var transports []string
	switch p.clients[i].Mode {
	case "polling":
		transports = []string{"polling"}
	case "websocket":
		transports = []string{"websocket"}
	}
	return p.send(i, map[string]any{
		"cmd": "connect", "c": i, "token": tok, "transports": transports,
		"url": "http://" + p.proxies[i].Addr() + "/events",
	})
}

// counts returns how many clients are connected, and how many have
// received at least want[org] of their organization's events and
// want[user] of their user's.
func (p *population) counts(want map[string]int) (connected, caughtUp int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, c := range p.clients {
		if p.connected[i] {
			connected++
		}
		if p.last[i] >= want[c.Org] && p.lastUser[i] >= want[c.User] {
			caughtUp++
		}
	}
	return connected, caughtUp
}

// close disconnects every client, waits for the Node process, closes the
// proxies and returns what the clients saw.
func (p *population) close() []Client {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for _, np := range p.procs {
		_ = np.send(map[string]any{"cmd": "close"})
		_ = np.stdin.Close()
	}
	for _, np := range p.procs {
		select {
		case <-np.done:
		case <-time.After(30 * time.Second):
			_ = np.cmd.Process.Kill()
			<-np.done
		}
		_ = np.cmd.Wait()
	}
	p.closeProxies()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.clients
}

// Lag is the Node process's event loop delay over 10 s.
type Lag struct {
	At    time.Time `json:"at"`
	MaxMs int64     `json:"maxMs"`
}

func (p *population) lagReadings() []Lag {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Lag(nil), p.lags...)
}
