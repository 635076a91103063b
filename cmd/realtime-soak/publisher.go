package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// kind is a catalog event of organization audience and the payload field
// it requires.
type kind struct{ event, idField string }

var kinds = [...]kind{
	{"invoice:created", "invoiceId"},
	{"expense:approved", "expenseId"},
	{"document:uploaded", "documentId"},
	{"bank:transaction_imported", ""},
}

// eventName is the event published with this seq: rotated, so that the
// name a client receives says which seq it must carry.
func eventName(seq int) string { return kinds[seq%len(kinds)].event }

// publisher posts events as a backend does, numbering each organization's
// 1, 2, 3... One organization's events are posted one after the other, so
// their order is the order of the seqs.
type publisher struct {
	url    string
	client *http.Client

	// paused is held while the server restarts: nothing is published
	// then, so that no POST is left without an answer.
	paused sync.RWMutex

	// orgs serializes each organization's publications: its seq order is
	// the order the server accepts them in.
	orgs map[string]*sync.Mutex

	mu       sync.Mutex
	pubs     map[string][]Publication
	failures int
	lastErr  string
}

func newPublisher(base string, orgs []string) *publisher {
	locks := make(map[string]*sync.Mutex, len(orgs))
	for _, org := range orgs {
		locks[org] = new(sync.Mutex)
	}
	return &publisher{
		orgs:   locks,
		url:    base + "/api/v1/events",
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second},
		pubs:   map[string][]Publication{},
	}
}

// publish posts the organization's next event, retrying (with the same
// Idempotency-Key, so never twice) until it is accepted or ctx ends.
func (p *publisher) publish(ctx context.Context, org string) error {
	p.paused.RLock()
	defer p.paused.RUnlock()
	lock := p.orgs[org]
	lock.Lock()
	defer lock.Unlock()
	p.mu.Lock()
	seq := len(p.pubs[org]) + 1
	p.mu.Unlock()
	k := kinds[seq%len(kinds)]
	payload := map[string]any{"organizationId": org, "seq": seq}
	if k.idField != "" {
		payload[k.idField] = fmt.Sprintf("%s-%d", org, seq)
	}
	body, err := json.Marshal(map[string]any{"event": k.event, "payload": payload})
	if err != nil {
		return fmt.Errorf("encoding an event: %w", err)
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		err := p.post(ctx, body, fmt.Sprintf("soak-%s-%d", org, seq))
		if err == nil {
			break
		}
		p.mu.Lock()
		p.failures++
		p.lastErr = err.Error()
		p.mu.Unlock()
		if attempt == 5 {
			return fmt.Errorf("publishing %s #%d to %s: %w", k.event, seq, org, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	p.mu.Lock()
	p.pubs[org] = append(p.pubs[org], Publication{At: start})
	p.mu.Unlock()
	return nil
}

func (p *publisher) post(ctx context.Context, body []byte, key string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("%s %s", resp.Status, answer)
	}
	return nil
}

// published returns how many events each organization was sent.
func (p *publisher) published() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.pubs))
	for org, l := range p.pubs {
		out[org] = len(l)
	}
	return out
}

func (p *publisher) snapshot() map[string][]Publication {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string][]Publication, len(p.pubs))
	for org, l := range p.pubs {
		out[org] = append([]Publication(nil), l...)
	}
	return out
}

// run publishes to each organization at random gaps (exponential, mean
// meanGap, between 1 s and 3 min), one time in ten a burst of 5 to 20
// events, until ctx ends. Organizations are served by a few workers, each
// organization by one of them.
func (p *publisher) run(ctx context.Context, orgs []string, meanGap time.Duration, seed uint64, errs chan<- error) {
	const workers = 4
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, uint64(w)+10))
			gap := func() time.Duration {
				d := time.Duration(rnd.ExpFloat64() * float64(meanGap))
				return min(max(d, time.Second), 3*time.Minute)
			}
			var mine []string
			for i, org := range orgs {
				if i%workers == w {
					mine = append(mine, org)
				}
			}
			next := make([]time.Time, len(mine))
			for i := range next {
				next[i] = time.Now().Add(gap())
			}
			for len(next) > 0 {
				first := 0
				for i := range next {
					if next[i].Before(next[first]) {
						first = i
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(next[first])):
				}
				n := 1
				if rnd.IntN(10) == 0 {
					n = 5 + rnd.IntN(16)
				}
				for range n {
					if err := p.publish(ctx, mine[first]); err != nil {
						if ctx.Err() == nil {
							select {
							case errs <- err:
							default:
							}
						}
						return
					}
				}
				next[first] = time.Now().Add(gap())
			}
		}()
	}
	wg.Wait()
}

// publishAll posts one event to every organization (after a fault: while
// the clients are away).
func (p *publisher) publishAll(ctx context.Context, orgs []string) error {
	for _, org := range orgs {
		if err := p.publish(ctx, org); err != nil {
			return err
		}
	}
	return nil
}
