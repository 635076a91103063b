package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// kind is a catalog event and the payload fields it requires beyond
// organizationId (and userId for a notification).
type kind struct {
	event  string
	fields []string
}

// orgKinds are catalog events of organization audience, two of each of the
// catalog's eight organization domains, published in turn to an
// organization: the name a client receives says which seq it must carry.
var orgKinds = [...]kind{
	{"invoice:created", []string{"invoiceId"}},
	{"expense:approved", []string{"expenseId"}},
	{"bank:transaction_imported", nil},
	{"document:uploaded", []string{"documentId"}},
	{"hr:leave_requested", nil},
	{"tax:return_submitted", nil},
	{"integration:sync_completed", []string{"integrationName"}},
	{"automation:classification_complete", []string{"entityType", "entityId", "feature", "action"}},
	{"invoice:paid", []string{"invoiceId"}},
	{"expense:rejected", []string{"expenseId"}},
	{"bank:sync_error", nil},
	{"document:ocr_complete", []string{"documentId"}},
	{"hr:employee_added", nil},
	{"tax:filing_due_reminder", nil},
	{"integration:connection_lost", []string{"integrationName"}},
	{"automation:review_required", []string{"entityType", "entityId", "feature", "action"}},
}

// userKinds are the catalog's user-audience events (the notification
// domain), published in turn to one user: delivered to that user only.
var userKinds = [...]kind{
	{"notification:new", []string{"notificationId", "title", "message"}},
	{"notification:read", []string{"notificationId", "title", "message"}},
	{"notification:deleted", []string{"notificationId", "title", "message"}},
}

// eventName is the organization event published with this seq.
func eventName(seq int) string { return orgKinds[seq%len(orgKinds)].event }

// userEventName is the user event published with this seq.
func userEventName(seq int) string { return userKinds[seq%len(userKinds)].event }

// isUserEvent says whether an event is addressed to a user (its seq is
// the user's, not the organization's).
func isUserEvent(name string) bool { return strings.HasPrefix(name, "notification:") }

// userID is the user of client i (each client is a user of its own).
func userID(i int) string { return "user-" + strconv.Itoa(i) }

// publisher posts events as a backend does, numbering each organization's
// and each user's 1, 2, 3... One organization's (one user's) events are
// posted one after the other, so their order is the order of the seqs.
type publisher struct {
	url    string
	client *http.Client

	// paused is held while the server restarts: nothing is published
	// then, so that no POST is left without an answer.
	paused sync.RWMutex

	// locks serialize each organization's and each user's publications:
	// its seq order is the order the server accepts them in.
	locks map[string]*sync.Mutex
	// orgOf is the organization of each user.
	orgOf map[string]string

	mu       sync.Mutex
	pubs     map[string][]Publication // by organization or user id
	failures int
	lastErr  string
}

// newPublisher publishes to orgs and to users (user id → organization).
func newPublisher(base string, orgs []string, users map[string]string) *publisher {
	locks := make(map[string]*sync.Mutex, len(orgs)+len(users))
	for _, org := range orgs {
		locks[org] = new(sync.Mutex)
	}
	for u := range users {
		locks[u] = new(sync.Mutex)
	}
	return &publisher{
		locks:  locks,
		orgOf:  users,
		url:    base + "/api/v1/events",
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second},
		pubs:   map[string][]Publication{},
	}
}

// body returns the request of the seq-th event of key (an organization, or
// a user with its organization).
func (p *publisher) body(key string, seq int) (string, []byte, error) {
	org, user := key, ""
	k := orgKinds[seq%len(orgKinds)]
	if o, ok := p.orgOf[key]; ok {
		org, user = o, key
		k = userKinds[seq%len(userKinds)]
	}
	payload := map[string]any{"organizationId": org, "seq": seq}
	if user != "" {
		payload["userId"] = user
		payload["type"] = "info"
	}
	for _, f := range k.fields {
		payload[f] = fmt.Sprintf("%s-%s-%d", f, key, seq)
	}
	b, err := json.Marshal(map[string]any{"event": k.event, "payload": payload})
	if err != nil {
		return "", nil, fmt.Errorf("encoding an event: %w", err)
	}
	return k.event, b, nil
}

// publish posts the next event of key (an organization or a user),
// retrying (with the same Idempotency-Key) until it is accepted or ctx
// ends.
func (p *publisher) publish(ctx context.Context, key string) error {
	p.paused.RLock()
	defer p.paused.RUnlock()
	lock := p.locks[key]
	lock.Lock()
	defer lock.Unlock()
	p.mu.Lock()
	seq := len(p.pubs[key]) + 1
	p.mu.Unlock()
	name, body, err := p.body(key, seq)
	if err != nil {
		return err
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		err := p.post(ctx, body, fmt.Sprintf("soak-%s-%d", key, seq))
		if err == nil {
			break
		}
		p.mu.Lock()
		p.failures++
		p.lastErr = err.Error()
		p.mu.Unlock()
		if attempt == 5 {
			return fmt.Errorf("publishing %s #%d to %s: %w", name, seq, key, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	p.mu.Lock()
	p.pubs[key] = append(p.pubs[key], Publication{At: start})
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

// published returns how many events each organization and each user
// was sent.
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
// events, and to each user at random gaps (exponential, mean userGap),
// until ctx ends. Organizations are served by a few workers, each
// organization by one of them; users likewise.
func (p *publisher) run(ctx context.Context, orgs, users []string, meanGap, userGap time.Duration, seed uint64, errs chan<- error) {
	const workers = 4
	var wg sync.WaitGroup
	report := func(err error) {
		if ctx.Err() == nil {
			select {
			case errs <- err:
			default:
			}
		}
	}
	for w := range workers {
		wg.Add(2)
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
						report(err)
						return
					}
				}
				next[first] = time.Now().Add(gap())
			}
		}()
		go func() {
			defer wg.Done()
			// Each user's gaps are exponential: together, this worker's
			// users are a Poisson process of rate len(mine)/userGap, each
			// event to one of them at random.
			rnd := rand.New(rand.NewPCG(seed, uint64(w)+100))
			var mine []string
			for i, u := range users {
				if i%workers == w {
					mine = append(mine, u)
				}
			}
			if len(mine) == 0 || userGap <= 0 {
				return
			}
			mean := float64(userGap) / float64(len(mine))
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Duration(rnd.ExpFloat64() * mean)):
				}
				if err := p.publish(ctx, mine[rnd.IntN(len(mine))]); err != nil {
					report(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// publishAll posts one event to each of keys (organizations or users: after
// a fault, while the clients are away; at the end), a few at a time.
func (p *publisher) publishAll(ctx context.Context, keys []string) error {
	const parallel = 8
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan string)
	)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				if err := p.publish(ctx, k); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	wg.Wait()
	return first
}
