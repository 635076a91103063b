package socketio

import (
	"context"
	"slices"
	"sync"
	"time"
)

// BroadcastOperator selects recipients and flags for a broadcast. It is an
// immutable value: each method returns a modified copy.
type BroadcastOperator struct {
	nsp  *Namespace
	opts BroadcastOptions
}

// To adds rooms to the target (sockets in any of them are selected).
func (b BroadcastOperator) To(rooms ...string) BroadcastOperator {
	b.opts.Rooms = append(slices.Clip(b.opts.Rooms), rooms...)
	return b
}

// In is an alias of To.
func (b BroadcastOperator) In(rooms ...string) BroadcastOperator { return b.To(rooms...) }

// Except excludes the sockets in rooms.
func (b BroadcastOperator) Except(rooms ...string) BroadcastOperator {
	b.opts.Except = append(slices.Clip(b.opts.Except), rooms...)
	return b
}

// Local restricts the broadcast to this server.
func (b BroadcastOperator) Local() BroadcastOperator {
	b.opts.Flags.Local = true
	return b
}

// Volatile lets the packet be dropped for clients not ready to take it.
func (b BroadcastOperator) Volatile() BroadcastOperator {
	b.opts.Flags.Volatile = true
	return b
}

// Compress sets whether permessage-deflate may compress the packet.
func (b BroadcastOperator) Compress(on bool) BroadcastOperator {
	b.opts.Flags.NoCompress = !on
	return b
}

// Timeout sets how long EmitWithAck waits for acknowledgements.
func (b BroadcastOperator) Timeout(d time.Duration) BroadcastOperator {
	b.opts.Flags.Timeout = d
	return b
}

// Once makes the broadcast idempotent across attempts and servers (see
// Once): o's Tag is updated by the broadcast.
func (b BroadcastOperator) Once(o *Once) BroadcastOperator {
	b.opts.Once = o
	return b
}

// Options returns the selection and flags.
func (b BroadcastOperator) Options() BroadcastOptions { return b.opts }

// clusterOps are the adapter operations an operator uses, so that the
// Local flag can substitute this server's own (localAdapter): an adapter
// never sees an operation with the Local flag.
type clusterOps interface {
	BroadcastWithAck(ctx context.Context, p *Packet, opts *BroadcastOptions, clients func(n int), ack func(Args)) error
	AddSockets(ctx context.Context, opts *BroadcastOptions, rooms []string) error
	DelSockets(ctx context.Context, opts *BroadcastOptions, rooms []string) error
	DisconnectSockets(ctx context.Context, opts *BroadcastOptions, close bool) error
	FetchSockets(ctx context.Context, opts *BroadcastOptions) ([]*RemoteSocket, error)
	ServerCount(ctx context.Context) (int, error)
}

func (b BroadcastOperator) adapterOrLocal() clusterOps {
	if b.opts.Flags.Local {
		return localAdapter{b.nsp}
	}
	return b.nsp.adapter
}

// Emit broadcasts an event. The packet is encoded once for all recipients.
func (b BroadcastOperator) Emit(event string, args ...any) error {
	p, err := NewPacket(event, args...)
	if err != nil {
		return err
	}
	return b.EmitPacket(context.Background(), p)
}

// EmitPacket broadcasts an already encoded packet.
func (b BroadcastOperator) EmitPacket(ctx context.Context, p *Packet) error {
	if b.opts.Flags.Local {
		_, err := b.nsp.emitLocal(ctx, p, &b.opts)
		return err
	}
	return b.nsp.adapter.Broadcast(ctx, p, &b.opts)
}

// emitLocal is a broadcast with the Local flag, which never reaches the
// adapter (the one place Local is handled: adapters need not know it): it
// goes to this server's sockets through the host's path. A recovery log of
// this server's own (not Shared: the memory adapter's) logs it like any
// other broadcast, as Node's in-memory adapter gives local broadcasts an
// offset; a shared log does not, since appending to it publishes to every
// server, as Node's cluster adapters give local broadcasts none.
func (n *Namespace) emitLocal(ctx context.Context, p *Packet, opts *BroadcastOptions) (string, error) {
	if n.log != nil && !opts.Flags.Volatile && !n.log.Shared() {
		return n.log.Append(ctx, p, opts)
	}
	n.localBroadcast(p, opts)
	return "", nil
}

// EmitWithAck broadcasts an event asking every recipient for an
// acknowledgement, and returns their answers, one per client. It returns
// when every client reached has answered, or with ErrAckTimeout and the
// answers received so far when the timeout (Timeout, or ctx) expires.
func (b BroadcastOperator) EmitWithAck(ctx context.Context, event string, args ...any) ([]Args, error) {
	p, err := NewPacket(event, args...)
	if err != nil {
		return nil, err
	}
	if b.opts.Flags.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.Flags.Timeout)
		defer cancel()
	} else if dl, ok := ctx.Deadline(); ok {
		b.opts.Flags.Timeout = time.Until(dl)
	}
	c := &ackCollector{done: make(chan struct{}), expectedServers: -1}
	a := b.adapterOrLocal()
	if err := a.BroadcastWithAck(ctx, p, &b.opts, c.clients, c.ack); err != nil {
		return nil, err
	}
	servers, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	c.setServers(servers)
	select {
	case <-c.done:
		return c.result(), nil
	case <-ctx.Done():
		return c.result(), ErrAckTimeout
	}
}

// ackCollector completes a broadcast with ack as Node's operator does:
// when every server reported its client count and as many answers came.
type ackCollector struct {
	mu              sync.Mutex
	expectedServers int
	servers         int
	clientsExpected int
	responses       []Args
	done            chan struct{}
	finished        bool
}

func (c *ackCollector) clients(n int) {
	c.mu.Lock()
	c.servers++
	c.clientsExpected += n
	c.checkLocked()
	c.mu.Unlock()
}

func (c *ackCollector) ack(a Args) {
	c.mu.Lock()
	if !c.finished {
		c.responses = append(c.responses, a)
	}
	c.checkLocked()
	c.mu.Unlock()
}

func (c *ackCollector) setServers(n int) {
	c.mu.Lock()
	c.expectedServers = n
	c.checkLocked()
	c.mu.Unlock()
}

func (c *ackCollector) checkLocked() {
	if !c.finished && c.expectedServers == c.servers && len(c.responses) == c.clientsExpected {
		c.finished = true
		close(c.done)
	}
}

func (c *ackCollector) result() []Args {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finished = true
	return slices.Clone(c.responses)
}

// FetchSockets describes the selected sockets.
func (b BroadcastOperator) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	return b.adapterOrLocal().FetchSockets(ctx, &b.opts)
}

// SocketsJoin makes the selected sockets join rooms.
func (b BroadcastOperator) SocketsJoin(ctx context.Context, rooms ...string) error {
	return b.adapterOrLocal().AddSockets(ctx, &b.opts, rooms)
}

// SocketsLeave makes the selected sockets leave rooms.
func (b BroadcastOperator) SocketsLeave(ctx context.Context, rooms ...string) error {
	return b.adapterOrLocal().DelSockets(ctx, &b.opts, rooms)
}

// DisconnectSockets disconnects the selected sockets.
func (b BroadcastOperator) DisconnectSockets(ctx context.Context, close bool) error {
	return b.adapterOrLocal().DisconnectSockets(ctx, &b.opts, close)
}

// localAdapter applies operations to this server only (the Local flag).
type localAdapter struct{ nsp *Namespace }

func (l localAdapter) BroadcastWithAck(_ context.Context, p *Packet, o *BroadcastOptions, clients func(int), ack func(Args)) error {
	clients(l.nsp.localBroadcastWithAck(p, o, ack))
	return nil
}

func (l localAdapter) AddSockets(_ context.Context, o *BroadcastOptions, rooms []string) error {
	l.nsp.localAddSockets(o, rooms)
	return nil
}

func (l localAdapter) DelSockets(_ context.Context, o *BroadcastOptions, rooms []string) error {
	l.nsp.localDelSockets(o, rooms)
	return nil
}

func (l localAdapter) DisconnectSockets(_ context.Context, o *BroadcastOptions, close bool) error {
	l.nsp.localDisconnectSockets(o, close)
	return nil
}

func (l localAdapter) FetchSockets(_ context.Context, o *BroadcastOptions) ([]*RemoteSocket, error) {
	return l.nsp.localFetchSockets(o), nil
}

func (l localAdapter) ServerCount(context.Context) (int, error) { return 1, nil }
