//go:build linux

package engineio

import (
	"errors"
	"sync"
	"syscall"
)

// poller watches idle WebSocket connections for readability with one epoll
// instance of its own, so that an idle connection costs no goroutine: when
// bytes arrive, a short-lived goroutine reads and handles them until the
// socket is drained (wsConn.serveReadable) and re-arms the connection.
// Connections are registered one-shot, so at most one goroutine reads a
// connection at a time. Go's own netpoller still serves the writes.
type poller struct {
	epfd int
	wake [2]int // a pipe whose read end stops run

	mu     sync.Mutex
	conns  map[uint64]*wsConn // by registration id (id 0 is the pipe)
	nextID uint64

	done chan struct{}
}

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &poller{epfd: epfd, conns: make(map[uint64]*wsConn), done: make(chan struct{})}
	if err := syscall.Pipe2(p.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		p.closeFDs()
		return nil, err
	}
	go p.run()
	return p, nil
}

func (p *poller) closeFDs() {
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
	syscall.Close(p.epfd)
}

// eventID packs a registration id into the epoll data union.
func eventID(id uint64) syscall.EpollEvent {
	return syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(id)),
		Pad:    int32(uint32(id >> 32)),
	}
}

func (p *poller) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == 0 {
				return // close
			}
			p.mu.Lock()
			c := p.conns[id]
			p.mu.Unlock()
			if c != nil {
				go c.serveReadable()
			}
		}
	}
}

var errForgotten = errors.New("engineio: connection closed")

// arm asks for the next readability of c: it registers c the first time,
// and re-arms its one-shot registration afterwards. Readability that
// arrived meanwhile is reported at once.
func (p *poller) arm(c *wsConn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.pollForgotten {
		return errForgotten
	}
	if c.pollID != 0 {
		ev := eventID(c.pollID)
		return syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, c.fd, &ev)
	}
	p.nextID++
	id := p.nextID
	ev := eventID(id)
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		return err
	}
	c.pollID = id
	p.conns[id] = c
	return nil
}

// forget unregisters c before its descriptor is closed; arm fails
// afterwards, so a reader finishing concurrently cannot register it again.
func (p *poller) forget(c *wsConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.pollForgotten = true
	if c.pollID != 0 {
		delete(p.conns, c.pollID)
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	}
}

func (p *poller) close() {
	_, _ = syscall.Write(p.wake[1], []byte{0})
	<-p.done
	p.closeFDs()
}
