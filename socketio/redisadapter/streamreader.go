package redisadapter

import (
	"container/heap"
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
)

// streamReader reads one stream (XREAD, one blocking connection) and hands
// each entry, in stream order, to the adapter of the entry's namespace, on
// one goroutine. Every server delivers the stream's broadcasts to its
// sockets in the same order, its own included (a broadcast is delivered
// here when the reader reaches it, not when it is published): a client's
// last offset is then always the highest it received, and a replay from it
// is exactly what it missed.
//
// The reader starts where the stream ends when it first reaches Redis
// (the id of its last entry, not "$", so that nothing added between that
// moment and the first XREAD is skipped), and after a failure it goes on
// from the last entry it handled. If that entry is gone from the stream
// when it comes back (Redis lost its data, or trimmed it during the
// outage), entries may have been missed without a trace: the local sockets
// of the stream's namespaces are disconnected, so that each client
// reconnects and learns whether its state can still be recovered (it
// cannot: its offset is gone too), instead of silently missing events.
type streamReader struct {
	// Static after construction.
	c     *Cluster
	name  string
	ready chan struct{} // closed once the reader knows where to start

	mu       sync.Mutex
	adapters map[string]*streamsAdapter // by namespace
	last     rediswire.StreamID         // the last entry handled
	waiters  waiterHeap
	err      error // the last failure; nil while reading works

	lastID string // the last entry handled, as Redis wrote it (reader goroutine only)

	// conn is the connection of the blocking XREADs: closed by Close to
	// interrupt one (rueidis does not watch the context of a blocking
	// command once it is sent).
	connMu  sync.Mutex
	conn    rueidis.DedicatedClient
	release func()
	stopped bool
}

// streamReader returns the reader of a stream, started on first use.
func (c *Cluster) streamReader(name string) *streamReader {
	c.readersMu.Lock()
	defer c.readersMu.Unlock()
	if r := c.readers[name]; r != nil {
		return r
	}
	r := &streamReader{c: c, name: name, ready: make(chan struct{}), adapters: make(map[string]*streamsAdapter)}
	c.readers[name] = r
	if !c.isClosed() {
		c.wg.Add(1)
		go r.run()
	}
	return r
}

func (r *streamReader) register(a *streamsAdapter) {
	r.mu.Lock()
	r.adapters[a.host.Name()] = a
	r.mu.Unlock()
}

func (r *streamReader) unregister(a *streamsAdapter) {
	r.mu.Lock()
	if r.adapters[a.host.Name()] == a {
		delete(r.adapters, a.host.Name())
	}
	r.mu.Unlock()
}

// health is nil while the reader reads.
func (r *streamReader) health() error {
	select {
	case <-r.ready:
	default:
		return fmt.Errorf("stream %s: not read yet", r.name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return fmt.Errorf("stream %s: %v", r.name, r.err)
	}
	return nil
}

func (r *streamReader) isReady() bool {
	select {
	case <-r.ready:
		return true
	default:
		return false
	}
}

// waitReady waits until the reader knows where the stream starts for it,
// or ctx ends.
func (r *streamReader) waitReady(ctx context.Context) error {
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: stream %s: reader not started: %v", ErrUnavailable, r.name, ctx.Err())
	case <-r.c.closed:
		return ErrClosed
	}
}

// waitFor waits until the reader has handled the entry id (so its local
// delivery is done), or timeout, or ctx ends; it reports whether it has.
func (r *streamReader) waitFor(ctx context.Context, id rediswire.StreamID, timeout time.Duration) bool {
	r.mu.Lock()
	if !r.last.Less(id) {
		r.mu.Unlock()
		return true
	}
	w := &waiter{id: id, done: make(chan struct{})}
	heap.Push(&r.waiters, w)
	r.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-w.done:
		return true
	case <-t.C:
	case <-ctx.Done():
	case <-r.c.closed:
	}
	return false
}

func (r *streamReader) run() {
	defer r.c.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer r.dropConn()
	go func() {
		<-r.c.closed
		cancel()
		r.connMu.Lock()
		r.stopped = true
		r.connMu.Unlock()
		r.dropConn()
	}()
	select {
	case <-r.c.clientReady:
	case <-r.c.closed:
		return
	}
	cl := *r.c.client.Load()
	b := backoff{min: r.c.cfg.MinRetryDelay, max: r.c.cfg.MaxRetryDelay}
	for {
		id, err := r.tail(ctx, cl)
		if err == nil {
			r.mu.Lock()
			r.last, r.lastID, r.err = id, id.String(), nil
			r.mu.Unlock()
			r.warm(ctx, cl, id)
			close(r.ready)
			break
		}
		if !r.failed(err, &b) {
			return
		}
	}
	b.reset()
	check := false
	for {
		if check {
			kept, err := r.holdsLast(ctx, cl)
			if err != nil {
				if !r.failed(err, &b) {
					return
				}
				continue
			}
			if !kept {
				r.gap()
			}
			check = false
		}
		entries, err := r.read(ctx, cl)
		if err != nil {
			if !r.failed(err, &b) {
				return
			}
			check = true
			continue
		}
		r.mu.Lock()
		if r.err != nil {
			r.err = nil
			r.c.log.info("redisadapter: reading the stream again", "stream", r.name)
		}
		r.mu.Unlock()
		b.reset()
		for _, e := range entries {
			r.handle(e)
		}
	}
}

// failed records a failure and waits before the next attempt; false means
// the cluster closed.
func (r *streamReader) failed(err error, b *backoff) bool {
	if r.c.isClosed() {
		return false
	}
	r.mu.Lock()
	first := r.err == nil
	r.err = err
	r.mu.Unlock()
	if first {
		r.c.log.warn("redisadapter: cannot read the stream; retrying", "stream", r.name, "err", err)
	}
	r.c.stats.streamReadErrors.Add(1)
	return r.c.sleep(b.next())
}

// commandTimeout bounds a non-blocking command of the reader.
func (r *streamReader) commandTimeout() time.Duration {
	return r.c.cfg.PublishTimeout + r.c.cfg.DialTimeout
}

// warmPage is the COUNT of each XREVRANGE of warm.
const warmPage = 1000

// warm fills the recentLog of each adapter registered now with the
// stream's broadcasts up to upTo, where the reader starts, going back as
// far as the longest recovery window (an older offset belongs to a session
// that has expired) and at most Config.MaxLen entries. Why: a node that
// has just started (a deploy, a crash, every node of the cluster
// restarted) gets a reconnection storm at once, and with an empty memory
// every recovery read the stream from its client's offset, each decoding
// the same entries again, under RequestsTimeout: on a loaded machine some
// ran out of time and their clients came back afresh (the 3-node soak of
// 2026-12-03). What is read is contiguous up to upTo (read newest first,
// a failed read keeps the newer part), and the reader delivers only what
// follows upTo, so the log stays contiguous. An adapter registered after
// this starts empty, as before.
func (r *streamReader) warm(ctx context.Context, cl rueidis.Client, upTo rediswire.StreamID) {
	if upTo == (rediswire.StreamID{}) {
		return // an empty stream
	}
	r.mu.Lock()
	var adapters []*streamsAdapter
	var window time.Duration
	for _, a := range r.adapters {
		if a.recent != nil {
			adapters = append(adapters, a)
			window = max(window, a.window)
		}
	}
	r.mu.Unlock()
	if len(adapters) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.commandTimeout())
	defer cancel()
	type warmed struct {
		a  *streamsAdapter
		id rediswire.StreamID
		p  *socketio.Packet
		d  *rediswire.ClusterData
	}
	var got []warmed // newest first
	cutoff := uint64(max(time.Now().Add(-window).UnixMilli(), 0))
	end, read := upTo.String(), int64(0)
	for read < r.c.cfg.MaxLen {
		msgs, err := cl.Do(ctx, cl.B().Xrevrange().Key(r.name).End(end).Start("-").Count(warmPage).Build()).ToArray()
		if err != nil {
			r.c.log.l.Debug("redisadapter: reading the stream's recent broadcasts into memory stopped", "stream", r.name, "read", read, "err", err)
			break
		}
		read += int64(len(msgs))
		older := true
		for i := range msgs {
			e, err := parseEntry(&msgs[i])
			if err != nil {
				continue // the reader skips it too
			}
			id, ok := rediswire.ParseStreamID(e.ID)
			if !ok {
				continue
			}
			if id.Ms < cutoff {
				older = false
				break
			}
			end = "(" + e.ID
			for _, a := range adapters {
				if p, d, ok := a.loggedBroadcast(e, id); ok {
					got = append(got, warmed{a, id, p, d})
				}
			}
		}
		if !older || len(msgs) < warmPage {
			break
		}
	}
	for i := len(got) - 1; i >= 0; i-- {
		got[i].a.recent.add(got[i].id, got[i].p, got[i].d)
	}
	r.c.stats.recentWarmed.Add(uint64(len(got)))
}

// handled returns the last entry the reader handled (delivered), 0-0
// before it started or while the stream is empty.
func (r *streamReader) handled() rediswire.StreamID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// tail returns the id of the stream's last entry, 0-0 when it is empty.
func (r *streamReader) tail(ctx context.Context, cl rueidis.Client) (rediswire.StreamID, error) {
	ctx, cancel := context.WithTimeout(ctx, r.commandTimeout())
	defer cancel()
	msg, err := cl.Do(ctx, cl.B().Xrevrange().Key(r.name).End("+").Start("-").Count(1).Build()).ToArray()
	if err != nil {
		return rediswire.StreamID{}, err
	}
	if len(msg) == 0 {
		return rediswire.StreamID{}, nil
	}
	e, err := parseEntry(&msg[0])
	if err != nil {
		return rediswire.StreamID{}, err
	}
	id, ok := rediswire.ParseStreamID(e.ID)
	if !ok {
		return rediswire.StreamID{}, fmt.Errorf("stream %s: entry id %q", r.name, e.ID)
	}
	return id, nil
}

// holdsLast reports whether the last entry handled is still in the stream.
func (r *streamReader) holdsLast(ctx context.Context, cl rueidis.Client) (bool, error) {
	if r.lastID == "0-0" {
		return true, nil // the stream was empty: nothing to lose
	}
	ctx, cancel := context.WithTimeout(ctx, r.commandTimeout())
	defer cancel()
	msg, err := cl.Do(ctx, cl.B().Xrange().Key(r.name).Start(r.lastID).End(r.lastID).Build()).ToArray()
	if err != nil {
		return false, err
	}
	return len(msg) > 0, nil
}

// dedicated returns the connection for XREAD, dedicating one if needed.
func (r *streamReader) dedicated(cl rueidis.Client) (rueidis.DedicatedClient, error) {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if r.stopped {
		return nil, ErrClosed
	}
	if r.conn == nil {
		r.conn, r.release = cl.Dedicate()
	}
	return r.conn, nil
}

// dropConn closes the XREAD connection (a failed one, or at Close).
func (r *streamReader) dropConn() {
	r.connMu.Lock()
	dc, release := r.conn, r.release
	r.conn, r.release = nil, nil
	r.connMu.Unlock()
	if dc != nil {
		dc.Close()
		release()
	}
}

// read waits for the entries after the last one handled.
func (r *streamReader) read(ctx context.Context, cl rueidis.Client) ([]rediswire.StreamEntry, error) {
	cfg := &r.c.cfg
	dc, err := r.dedicated(cl)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.BlockTime+r.commandTimeout())
	defer cancel()
	cmd := dc.B().Xread().Count(cfg.ReadCount).Block(cfg.BlockTime.Milliseconds()).Streams().Key(r.name).Id(r.lastID).Build()
	res, err := dc.Do(ctx, cmd).AsMap() // a map in RESP3, pairs in RESP2
	if rueidis.IsRedisNil(err) {
		return nil, nil // nothing new within BlockTime
	}
	if err != nil {
		r.dropConn()
		return nil, err
	}
	reply, ok := res[r.name]
	if !ok {
		return nil, nil
	}
	list, err := reply.ToArray()
	if err != nil {
		return nil, fmt.Errorf("stream %s: XREAD reply: %w", r.name, err)
	}
	out := make([]rediswire.StreamEntry, 0, len(list))
	for i := range list {
		e, err := parseEntry(&list[i])
		if err != nil {
			r.c.stats.decodeErrors.Add(1)
			r.c.log.decodeError(r.name, err)
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// parseEntry reads [id, [field, value, ...]].
func parseEntry(m *rueidis.RedisMessage) (rediswire.StreamEntry, error) {
	parts, err := m.ToArray()
	if err != nil || len(parts) != 2 {
		return rediswire.StreamEntry{}, fmt.Errorf("%w: stream entry", rediswire.ErrMalformed)
	}
	id, err := parts[0].ToString()
	if err != nil {
		return rediswire.StreamEntry{}, fmt.Errorf("%w: stream entry id", rediswire.ErrMalformed)
	}
	var fields []string
	if !parts[1].IsNil() {
		if fields, err = parts[1].AsStrSlice(); err != nil {
			return rediswire.StreamEntry{ID: id}, fmt.Errorf("%w: stream entry fields", rediswire.ErrMalformed)
		}
	}
	return rediswire.ParseStreamFields(id, fields)
}

// handle delivers one entry and wakes those waiting for it.
func (r *streamReader) handle(e rediswire.StreamEntry) {
	id, ok := rediswire.ParseStreamID(e.ID)
	if !ok {
		r.c.stats.decodeErrors.Add(1)
		r.c.log.decodeError(r.name, fmt.Errorf("%w: entry id %q", rediswire.ErrMalformed, e.ID))
		return
	}
	r.lastID = e.ID
	r.c.stats.streamEntries.Add(1)
	if e.HasNsp {
		r.mu.Lock()
		a := r.adapters[e.Nsp]
		r.mu.Unlock()
		if a != nil {
			r.safely(a, e, id)
		}
	}
	r.mu.Lock()
	r.last = id
	for len(r.waiters) > 0 && !id.Less(r.waiters[0].id) {
		close(heap.Pop(&r.waiters).(*waiter).done)
	}
	r.mu.Unlock()
}

// safely runs an adapter's handling of an entry; a panic (in a delivery
// filter, say) is logged instead of stopping the reader.
func (r *streamReader) safely(a *streamsAdapter, e rediswire.StreamEntry, id rediswire.StreamID) {
	defer func() {
		if p := recover(); p != nil {
			r.c.log.l.Error("redisadapter: panic handling a stream entry", "stream", r.name, "id", e.ID, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	a.onEntry(e, id)
}

// gap handles entries lost while the reader could not read: the connection
// of every local socket of the stream's namespaces is dropped, so that the
// client reconnects and tries to recover from its offset, which fails if
// what followed it is gone (recovered false: the client knows to reload);
// meanwhile the socket gets no entry read after the gap, which would move
// its offset past it.
func (r *streamReader) gap() {
	r.c.stats.streamGaps.Add(1)
	r.mu.Lock()
	adapters := make([]*streamsAdapter, 0, len(r.adapters))
	for _, a := range r.adapters {
		adapters = append(adapters, a)
	}
	r.mu.Unlock()
	total := 0
	for _, a := range adapters {
		if a.recent != nil {
			a.recent.reset()
		}
		a.head.forget()
		sockets := a.host.Namespace().Sockets()
		if len(sockets) == 0 {
			continue
		}
		total += len(sockets)
		ids := make([]string, len(sockets))
		for i, s := range sockets {
			ids[i] = s.ID()
		}
		a.fenced.Store(&ids)
		go func() {
			// Disconnect handlers may broadcast, which waits for this
			// reader: they run here, off the reader's goroutine.
			for _, s := range sockets {
				s.DropConnection()
			}
			a.fenced.Store(nil)
		}()
	}
	r.c.log.warn("redisadapter: entries were lost from the stream while it could not be read (Redis lost data, or trimmed past this server); dropping the connections of the local sockets so that their clients resynchronise",
		"stream", r.name, "lastRead", r.lastID, "sockets", total)
}

// waiter is a broadcast waiting for its local delivery.
type waiter struct {
	id   rediswire.StreamID
	done chan struct{}
}

// waiterHeap orders waiters by entry id, smallest first.
type waiterHeap []*waiter

func (h waiterHeap) Len() int           { return len(h) }
func (h waiterHeap) Less(i, j int) bool { return h[i].id.Less(h[j].id) }
func (h waiterHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *waiterHeap) Push(x any)        { *h = append(*h, x.(*waiter)) }
func (h *waiterHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return w
}

// fence is the list of socket ids excluded from deliveries while a gap's
// disconnections run (nil otherwise).
type fence = atomic.Pointer[[]string]

// logPosition converts a stream id to a recovery log position.
func logPosition(id rediswire.StreamID) socketio.LogPosition {
	return socketio.LogPosition{Major: id.Ms, Minor: id.Seq}
}
