package redistest

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to a Redis server. It can make the
// subscription connections existing at a given moment silently stop
// delivering (the server's bytes are read and discarded, the connection
// stays open): the failure mode that only a probe detects.
type Proxy struct {
	Addr   string // 127.0.0.1:PORT to connect to
	target string
	ln     net.Listener

	mu    sync.Mutex
	conns map[*proxyConn]struct{}
	wg    sync.WaitGroup
}

type proxyConn struct {
	client, server net.Conn
	subscriber     atomic.Bool // has sent a (P|S)SUBSCRIBE
	blackholed     atomic.Bool
}

// NewProxy listens on a free port and forwards to target until the test
// ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: make(map[*proxyConn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		pc := &proxyConn{client: c, server: s}
		p.mu.Lock()
		p.conns[pc] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipeUp(pc)
		go p.pipeDown(pc)
	}
}

var subscribeCmd = []byte("SUBSCRIBE")

// pipeUp copies client → server, noting subscription commands.
func (p *Proxy) pipeUp(pc *proxyConn) {
	defer p.wg.Done()
	defer p.drop(pc)
	buf := make([]byte, 32<<10)
	for {
		n, err := pc.client.Read(buf)
		if n > 0 {
			if bytes.Contains(bytes.ToUpper(buf[:n]), subscribeCmd) {
				pc.subscriber.Store(true)
			}
			if _, werr := pc.server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pipeDown copies server → client, or discards when blackholed.
func (p *Proxy) pipeDown(pc *proxyConn) {
	defer p.wg.Done()
	defer p.drop(pc)
	buf := make([]byte, 32<<10)
	for {
		n, err := pc.server.Read(buf)
		if n > 0 && !pc.blackholed.Load() {
			if _, werr := pc.client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) drop(pc *proxyConn) {
	pc.client.Close()
	pc.server.Close()
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

// BlackholeSubscribers makes every subscription connection open now stop
// delivering anything, without closing it; later connections are not
// affected. It returns how many connections it affected.
func (p *Proxy) BlackholeSubscribers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for pc := range p.conns {
		if pc.subscriber.Load() {
			pc.blackholed.Store(true)
			n++
		}
	}
	return n
}

// Close stops the proxy and its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for pc := range p.conns {
		pc.client.Close()
		pc.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
