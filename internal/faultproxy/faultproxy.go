// Package faultproxy is a TCP proxy that puts between clients and a server
// the faults real users live through: every connection cut at once (a
// network switch, a NAT or proxy restart), a connection that goes silent
// without closing (a laptop lid, a Wi-Fi dead zone), and a server that
// cannot be reached for a while (refused connections during an outage).
//
// It forwards bytes as they come, in both directions, and knows nothing of
// the protocol on top. Tests and the soak run it in process.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards the connections accepted on Addr to a target address.
// All methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target atomic.Pointer[string]

	refuseUntil atomic.Int64 // unix nanoseconds; new connections are reset until then

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup

	stats Stats
}

// Stats are the proxy's counters.
type Stats struct {
	Accepted atomic.Int64 // connections forwarded to the target
	Refused  atomic.Int64 // connections reset because of Refuse, or because the target did not answer
	Cut      atomic.Int64 // connections reset by Cut
	Stalled  atomic.Int64 // connections stalled by Stall
}

// conn is one forwarded connection.
type conn struct {
	client, server net.Conn

	mu      sync.Mutex
	flowing chan struct{} // closed while bytes flow; replaced by an open one while stalled
	ended   int           // pipes whose source ended while the connection was stalled
	done    chan struct{} // closed by teardown
	once    sync.Once
}

// New listens on a free loopback port and forwards to target.
func New(target string) (*Proxy, error) { return Listen("127.0.0.1:0", target) }

// Listen listens on addr and forwards to target.
func Listen(addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen on %s: %w", addr, err)
	}
	p := &Proxy{ln: ln, conns: make(map[*conn]struct{})}
	p.target.Store(&target)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget changes where new connections go; open ones stay where they are.
func (p *Proxy) SetTarget(target string) { p.target.Store(&target) }

// Stats returns the proxy's counters.
func (p *Proxy) Stats() *Stats { return &p.stats }

// Conns returns the number of open forwarded connections.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Cut resets every open connection on both sides, as a network that drops
// all its flows does; it returns how many it cut.
func (p *Proxy) Cut() int {
	all := p.snapshot()
	for _, c := range all {
		c.reset()
	}
	p.stats.Cut.Add(int64(len(all)))
	return len(all)
}

// Refuse resets every new connection for d (the connections already open
// are left alone), as a server that cannot be reached would.
func (p *Proxy) Refuse(d time.Duration) {
	p.refuseUntil.Store(time.Now().Add(d).UnixNano())
}

// Stall makes up to n open connections, chosen at random, go silent: bytes
// stop flowing both ways and neither end hears of the other's close, but
// the connections stay open, as through a network that went dead. After d
// the survivors flow again (what was held is delivered late), and a
// connection one end closed meanwhile is closed at the other. It returns
// how many it stalled.
func (p *Proxy) Stall(n int, d time.Duration) int {
	all := p.snapshot()
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	all = all[:min(n, len(all))]
	for _, c := range all {
		c.stall()
		time.AfterFunc(d, c.resume)
	}
	p.stats.Stalled.Add(int64(len(all)))
	return len(all)
}

// Close stops accepting, resets every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range p.snapshot() {
		c.reset()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) snapshot() []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	all := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		all = append(all, c)
	}
	return all
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond) // EMFILE and the like: try again
			continue
		}
		if time.Now().UnixNano() < p.refuseUntil.Load() {
			resetConn(client)
			p.stats.Refused.Add(1)
			continue
		}
		p.wg.Add(1)
		go p.forward(client)
	}
}

func (p *Proxy) forward(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", *p.target.Load(), 5*time.Second)
	if err != nil {
		// The server is down (a restart): the client sees its connection
		// reset, as it would see it refused.
		resetConn(client)
		p.stats.Refused.Add(1)
		return
	}
	c := &conn{client: client, server: server, flowing: make(chan struct{}), done: make(chan struct{})}
	close(c.flowing)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.reset()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	p.stats.Accepted.Add(1)

	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() { defer pipes.Done(); c.pipe(server, client) }()
	go func() { defer pipes.Done(); c.pipe(client, server) }()
	pipes.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// pipe copies src to dst until either ends. While the connection is
// stalled, what was read waits, and so does the news of src's end.
func (c *conn) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !c.waitFlowing(false) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				c.teardown(false)
				return
			}
		}
		if err != nil {
			// A reset on one side is passed on as a reset; an orderly end
			// as an orderly end.
			if c.waitFlowing(true) {
				c.teardown(!errors.Is(err, io.EOF))
			}
			return
		}
	}
}

// waitFlowing waits until bytes may flow, and reports false when the
// connection was torn down meanwhile. ended says the caller's source has
// ended: when both sources end during a stall, nobody is left to hear of
// it, and the connection is torn down.
func (c *conn) waitFlowing(ended bool) bool {
	c.mu.Lock()
	flowing := c.flowing
	if ended {
		c.ended++
		if c.ended == 2 {
			c.mu.Unlock()
			c.teardown(false)
			return false
		}
	}
	c.mu.Unlock()
	select {
	case <-flowing:
		return true
	case <-c.done:
		return false
	}
}

func (c *conn) stall() {
	c.mu.Lock()
	select {
	case <-c.flowing:
		c.flowing = make(chan struct{})
	default: // already stalled
	}
	c.mu.Unlock()
}

func (c *conn) resume() {
	c.mu.Lock()
	select {
	case <-c.flowing:
	default:
		close(c.flowing)
	}
	c.mu.Unlock()
}

func (c *conn) reset() { c.teardown(true) }

// teardown closes both sides, with a reset (RST) when abrupt.
func (c *conn) teardown(abrupt bool) {
	c.once.Do(func() {
		close(c.done)
		if abrupt {
			resetConn(c.client)
			resetConn(c.server)
			return
		}
		c.client.Close()
		c.server.Close()
	})
}

// resetConn closes c with a TCP reset rather than an orderly close.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}
