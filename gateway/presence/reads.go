package presence

import (
	"context"
	"slices"
	"sync"

	"github.com/operate/realtime/gateway/apiclient"
)

// readBatcher runs at most one read of an organization's presence at a
// time on this node, shared by every request that arrived before it
// started: when the users of a large organization all ask at once (a
// deployment, a reconnection storm), Redis reads the organization once per
// round, not once per request. A request never gets a read that started
// before it arrived: a socket that starts watching and then asks must not
// get an answer older than its watch (it would miss the changes between).
type readBatcher struct {
	mu   sync.Mutex
	orgs map[string]*orgReads
}

// orgReads is the state of one organization's reads.
type orgReads struct {
	running bool
	next    []chan readResult // arrived while a read was running: the next round
}

type readResult struct {
	users []apiclient.PresenceUser
	err   error
}

// read returns the result of a read of org that started after the call,
// made with fetch (under its own timeout: one request's deadline must not
// fail the others), or ctx's error.
func (b *readBatcher) read(ctx context.Context, org string, fetch func(context.Context, string) ([]apiclient.PresenceUser, error)) ([]apiclient.PresenceUser, error) {
	ch := make(chan readResult, 1)
	b.mu.Lock()
	if b.orgs == nil {
		b.orgs = make(map[string]*orgReads)
	}
	o := b.orgs[org]
	if o == nil {
		o = &orgReads{}
		b.orgs[org] = o
	}
	o.next = append(o.next, ch)
	if !o.running {
		o.running = true
		go b.run(org, o, fetch)
	}
	b.mu.Unlock()
	select {
	case r := <-ch:
		return slices.Clone(r.users), r.err
	case <-ctx.Done():
		return nil, ctx.Err() // the round still delivers to ch, buffered
	}
}

// run reads rounds of org until no request waits.
func (b *readBatcher) run(org string, o *orgReads, fetch func(context.Context, string) ([]apiclient.PresenceUser, error)) {
	for {
		b.mu.Lock()
		waiters := o.next
		o.next = nil
		if len(waiters) == 0 {
			o.running = false
			delete(b.orgs, org)
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
		users, err := fetch(ctx, org)
		cancel()
		for _, w := range waiters {
			w <- readResult{users: users, err: err}
		}
	}
}
