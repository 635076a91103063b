package redisadapter

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
)

// requests tracks this adapter's cluster-wide requests waiting for answers
// (fetchSockets, allRooms, serverSideEmit with ack) and its broadcasts with
// ack (by request id).
type requests struct {
	mu   sync.Mutex
	reqs map[string]*pending
	acks map[string]*ackPending
}

// pending is a request waiting for answers. Its fields are guarded by the
// requests' mutex.
type pending struct {
	kind     int // a rediswire request type
	expected int // answers that complete it
	got      int
	sockets  []*socketio.RemoteSocket
	rooms    map[string]struct{}
	answers  []socketio.Args
	done     chan struct{}
	finished bool
}

type ackPending struct {
	clients func(int)
	ack     func(socketio.Args)
	timer   *time.Timer
}

func newRequests() *requests {
	return &requests{reqs: make(map[string]*pending), acks: make(map[string]*ackPending)}
}

// add registers a request; got counts the answers already in (this
// server's own, for the classic adapter's fetchSockets and allRooms).
func (r *requests) add(id string, p *pending) {
	p.done = make(chan struct{})
	r.mu.Lock()
	r.reqs[id] = p
	r.mu.Unlock()
}

func (r *requests) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.reqs[id]
	return ok
}

// answer applies f to the request under the lock and completes it when
// enough answers came. It reports whether the request exists.
func (r *requests) answer(id string, f func(p *pending)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.reqs[id]
	if p == nil || p.finished {
		return p != nil
	}
	f(p)
	if p.got >= p.expected {
		p.finished = true
		close(p.done)
		delete(r.reqs, id)
	}
	return true
}

// wait waits for a request's answers until timeout or ctx, and forgets it.
// On timeout it returns ErrTimeout; the request keeps what came. Once wait
// returns the request is finished, so nothing writes to p any more and the
// caller reads its results without the lock.
func (r *requests) wait(ctx context.Context, id string, p *pending, timeout time.Duration, what string) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	var err error
	select {
	case <-p.done:
	case <-t.C:
		err = fmt.Errorf("%w: %s: %d of %d answers", ErrTimeout, what, p.gotLocked(&r.mu), p.expected)
	case <-ctx.Done():
		err = fmt.Errorf("%w: %s: %v", ErrTimeout, what, ctx.Err())
	}
	r.mu.Lock()
	if !p.finished {
		p.finished = true
		close(p.done)
		delete(r.reqs, id)
	}
	r.mu.Unlock()
	return err
}

func (p *pending) gotLocked(mu *sync.Mutex) int {
	mu.Lock()
	defer mu.Unlock()
	return p.got
}

// forget drops a request that could not be sent.
func (r *requests) forget(id string) {
	r.mu.Lock()
	if p := r.reqs[id]; p != nil {
		if !p.finished {
			p.finished = true
			close(p.done)
		}
		delete(r.reqs, id)
	}
	r.mu.Unlock()
}

// addAck registers a broadcast with ack for timeout.
func (r *requests) addAck(id string, clients func(int), ack func(socketio.Args), timeout time.Duration) {
	a := &ackPending{clients: clients, ack: ack}
	r.mu.Lock()
	a.timer = time.AfterFunc(timeout, func() { r.dropAck(id) })
	r.acks[id] = a
	r.mu.Unlock()
}

func (r *requests) dropAck(id string) {
	r.mu.Lock()
	a := r.acks[id]
	delete(r.acks, id)
	r.mu.Unlock()
	if a != nil {
		a.timer.Stop()
	}
}

func (r *requests) ack(id string) *ackPending {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.acks[id]
}

// close ends every waiting request (they return what they have) and
// forgets the broadcasts with ack.
func (r *requests) close() {
	r.mu.Lock()
	for id, p := range r.reqs {
		if !p.finished {
			p.finished = true
			close(p.done)
		}
		delete(r.reqs, id)
	}
	for id, a := range r.acks {
		a.timer.Stop()
		delete(r.acks, id)
	}
	r.mu.Unlock()
}

// ---------------------------------------------------------------------------
// Helpers shared by both adapters

// uniq returns s without duplicates (Node's rooms and except are Sets).
func uniq(s []string) []string {
	if len(s) < 2 {
		return s
	}
	out := make([]string, 0, len(s))
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func wireFlags(f socketio.BroadcastFlags) rediswire.Flags {
	return rediswire.Flags{Volatile: f.Volatile, NoCompress: f.NoCompress, Timeout: f.Timeout}
}

func localOpts(o *rediswire.Opts) *socketio.BroadcastOptions {
	if o == nil {
		return &socketio.BroadcastOptions{}
	}
	bo := &socketio.BroadcastOptions{Rooms: o.Rooms, Except: o.Except}
	if o.Flags != nil {
		bo.Flags = socketio.BroadcastFlags{Volatile: o.Flags.Volatile, NoCompress: o.Flags.NoCompress, Timeout: o.Flags.Timeout}
	}
	return bo
}

// argsOf builds the Args of one answer (a single JSON value, or nothing).
func argsOf(v json.RawMessage, atts [][]byte) socketio.Args {
	if len(v) == 0 {
		a, _ := socketio.NewArgs(json.RawMessage("[]"), nil)
		return a
	}
	arr := make([]byte, 0, len(v)+2)
	arr = append(append(append(arr, '['), v...), ']')
	a, err := socketio.NewArgs(arr, atts)
	if err != nil {
		a, _ = socketio.NewArgs(json.RawMessage("[]"), nil)
	}
	return a
}

// firstArg encodes the first of an ack's arguments (Node's adapters pass
// only that one on) as JSON with placeholders, and the attachments.
func firstArg(args []any) (json.RawMessage, [][]byte, error) {
	if len(args) == 0 {
		return nil, nil, nil
	}
	p, err := socketio.NewPacket("ack", args[0])
	if err != nil {
		return nil, nil, err
	}
	a, err := socketio.NewArgs(p.Data, p.Attachments)
	if err != nil {
		return nil, nil, err
	}
	return a.Raw(1), a.Attachments(), nil
}

// ackArg is firstArg for Args received from a client.
func ackArg(a socketio.Args) (json.RawMessage, [][]byte) {
	if a.Len() == 0 {
		return nil, nil
	}
	return a.Raw(0), a.Attachments()
}

// packetOf decodes the {type, data, nsp} of a request into a packet.
func packetOf(raw json.RawMessage, atts [][]byte) (*socketio.Packet, string, bool) {
	var p rediswire.Packet
	if json.Unmarshal(raw, &p) != nil || len(p.Data) == 0 || p.Data[0] != '[' {
		return nil, "", false
	}
	return &socketio.Packet{Data: p.Data, Attachments: atts}, p.Nsp, true
}
