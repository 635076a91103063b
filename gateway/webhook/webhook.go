// Package webhook posts the gateway's connection and presence events to an
// HTTP endpoint of the application (the NestJS API: last seen, audit),
// signed, batched and retried, without ever making a connection or a
// delivery wait.
//
// # Requests
//
// Each request is a POST of {"events": [...]} (at most Config.BatchSize
// events, sent when the batch is full or Config.BatchWait after its first
// event) with the headers
//
//	Content-Type: application/json
//	Realtime-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>
//	Realtime-Delivery: <id of the batch, the same on every attempt>
//
// as Stripe signs its webhooks: the receiver recomputes the HMAC over the
// timestamp, a dot and the raw body, compares it in constant time, and
// refuses timestamps too far from its clock (Verify does all three), so a
// captured request cannot be replayed later. Events carry an id: a batch
// retried after a timeout may arrive twice, and a receiver de-duplicates
// on it.
//
// # Delivery
//
// A 2xx answer delivers the batch. A network error, a timeout, 408, 429 or
// a 5xx is retried with exponential backoff (MinBackoff doubling up to
// MaxBackoff, with jitter) up to MaxAttempts; any other answer (a 4xx: the
// receiver refuses it) is not. Batches go out one at a time, in order.
//
// Events wait in a queue of Config.QueueSize. Send never blocks: when the
// queue is full (the receiver is down or slow), the event is dropped and
// counted (Stats.Dropped, realtime_webhook_events_total{result="dropped"}).
// Nothing is stored on disk: a webhook is a notification, and the
// presence endpoint is the source of truth.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/internal/logbudget"
)

// Event types.
const (
	TypeSocketConnected    = "socket.connected"
	TypeSocketDisconnected = "socket.disconnected"
	TypePresenceJoined     = "presence.joined"
	TypePresenceLeft       = "presence.left"
)

// Headers of a webhook request.
const (
	SignatureHeader = "Realtime-Signature"
	DeliveryHeader  = "Realtime-Delivery"
)

// Defaults applied by New for zero-valued Config fields.
const (
	DefaultBatchSize   = 100
	DefaultBatchWait   = time.Second
	DefaultQueueSize   = 10_000
	DefaultMaxAttempts = 8
	DefaultMinBackoff  = 500 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
	DefaultTimeout     = 10 * time.Second
	// DefaultTolerance is how far from the receiver's clock Verify accepts
	// a signature's timestamp.
	DefaultTolerance = 5 * time.Minute
)

// MinSecretLength is the shortest secret accepted.
const MinSecretLength = 16

// Config configures a Sender.
type Config struct {
	// URL receives the events (http or https). Required.
	URL string
	// Secret signs the requests. Required, at least MinSecretLength bytes.
	Secret string
	// BatchSize bounds the events of one request. Zero means
	// DefaultBatchSize (100).
	BatchSize int
	// BatchWait is how long a batch waits for more events after its first
	// one. Zero means DefaultBatchWait (1 s).
	BatchWait time.Duration
	// QueueSize bounds the events waiting; beyond, events are dropped.
	// Zero means DefaultQueueSize (10,000).
	QueueSize int
	// MaxAttempts bounds the attempts of one batch. Zero means
	// DefaultMaxAttempts (8: about a minute with the default backoff).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait before a retry: MinBackoff,
	// doubling after each failure, up to MaxBackoff, each with up to 20%
	// jitter. Zero means DefaultMinBackoff (500 ms) and DefaultMaxBackoff
	// (30 s).
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one request. Zero means DefaultTimeout (10 s).
	Timeout time.Duration
	// Node names this node in the events. Empty: none.
	Node string
	// Client sends the requests. Nil means a client without redirects
	// (a webhook is not followed elsewhere).
	Client *http.Client
	// Logger receives failures (within a log budget). Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Event is one webhook event.
type Event struct {
	// ID identifies the event (unique per node and start): receivers
	// de-duplicate retried batches on it.
	ID   string `json:"id"`
	Type string `json:"type"`
	// Timestamp is when it happened, as JavaScript's toISOString writes it.
	Timestamp      string `json:"timestamp"`
	OrganizationID string `json:"organizationId"`
	UserID         string `json:"userId"`
	// SocketID, Transport, Address and Recovered describe the socket of a
	// socket.* event; Reason and DurationMs its disconnection.
	SocketID   string `json:"socketId,omitempty"`
	Transport  string `json:"transport,omitempty"`
	Address    string `json:"address,omitempty"`
	Recovered  bool   `json:"recovered,omitempty"`
	Reason     string `json:"reason,omitempty"`
	DurationMs int64  `json:"durationMs,omitempty"`
	// Node is the gateway node that saw it.
	Node string `json:"node,omitempty"`
}

// Body is the JSON body of a webhook request.
type Body struct {
	Events []Event `json:"events"`
}

// Stats are a Sender's counters.
type Stats struct {
	// Queued is the number of events waiting now.
	Queued int
	// Delivered counts events the receiver acknowledged (2xx); Failed
	// those given up after MaxAttempts or refused with a 4xx; Dropped
	// those that did not fit in the queue (or came after Close).
	Delivered, Failed, Dropped int64
	// Requests counts requests sent, Retries those that were retries.
	Requests, Retries int64
}

// Sender delivers webhook events. Create it with New, stop it with Close.
// It is a gateway.Observer: connections and disconnections become
// socket.* events.
type Sender struct {
	// Static after construction.
	cfg    Config
	client *http.Client
	log    *slog.Logger
	budget *logbudget.Budget
	idBase string

	queue    chan Event
	nextID   atomic.Uint64
	closed   atomic.Bool
	draining chan struct{}
	once     sync.Once

	delivered, failed, dropped, requests, retries atomic.Int64

	ctx    context.Context // canceled when Close gives up waiting
	cancel context.CancelFunc
	done   chan struct{}
}

var _ gateway.Observer = (*Sender)(nil)

// New validates cfg and starts a Sender.
func New(cfg Config) (*Sender, error) {
	if err := CheckURL(cfg.URL); err != nil {
		return nil, err
	}
	if len(cfg.Secret) < MinSecretLength {
		return nil, fmt.Errorf("webhook: the secret is %d bytes long, need at least %d", len(cfg.Secret), MinSecretLength)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	defInt(&cfg.BatchSize, DefaultBatchSize)
	defInt(&cfg.QueueSize, DefaultQueueSize)
	defInt(&cfg.MaxAttempts, DefaultMaxAttempts)
	def(&cfg.BatchWait, DefaultBatchWait)
	def(&cfg.MinBackoff, DefaultMinBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.Timeout, DefaultTimeout)
	client := cfg.Client
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	var b [6]byte
	_, _ = crand.Read(b[:])
	s := &Sender{
		cfg:      cfg,
		client:   client,
		log:      cfg.Logger,
		budget:   logbudget.New(1, 5),
		idBase:   "evt_" + hex.EncodeToString(b[:]) + "_",
		queue:    make(chan Event, cfg.QueueSize),
		draining: make(chan struct{}),
		done:     make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run()
	return s, nil
}

// CheckURL refuses what New would refuse as a URL.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook: URL %q is not an http(s) URL", raw)
	}
	return nil
}

// Send queues an event, filling in its ID, Timestamp and Node when empty.
// It never blocks: it returns false, and counts the event as dropped, when
// the queue is full or the Sender is closed.
func (s *Sender) Send(e Event) bool {
	if s.closed.Load() {
		s.dropped.Add(1)
		return false
	}
	if e.ID == "" {
		e.ID = s.idBase + strconv.FormatUint(s.nextID.Add(1), 10)
	}
	if e.Timestamp == "" {
		e.Timestamp = jsTime(time.Now())
	}
	if e.Node == "" {
		e.Node = s.cfg.Node
	}
	select {
	case s.queue <- e:
		return true
	default:
		s.dropped.Add(1)
		return false
	}
}

// Connected implements gateway.Observer: a socket.connected event.
func (s *Sender) Connected(c gateway.Connection) {
	s.Send(Event{Type: TypeSocketConnected, OrganizationID: c.OrganizationID, UserID: c.UserID,
		SocketID: c.SocketID, Transport: c.Transport, Address: c.Address, Recovered: c.Recovered})
}

// Disconnected implements gateway.Observer: a socket.disconnected event.
func (s *Sender) Disconnected(c gateway.Connection, reason string) {
	s.Send(Event{Type: TypeSocketDisconnected, OrganizationID: c.OrganizationID, UserID: c.UserID,
		SocketID: c.SocketID, Transport: c.Transport, Address: c.Address, Reason: reason,
		DurationMs: time.Since(c.ConnectedAt).Milliseconds()})
}

// PresenceChanged sends a presence change as presence.joined or
// presence.left.
func (s *Sender) PresenceChanged(c gateway.PresenceChange) {
	typ := TypePresenceJoined
	if c.Event == gateway.EventPresenceLeft {
		typ = TypePresenceLeft
	}
	s.Send(Event{Type: typ, OrganizationID: c.OrganizationID, UserID: c.UserID, Timestamp: jsTime(c.At)})
}

// Stats returns the Sender's counters.
func (s *Sender) Stats() Stats {
	return Stats{
		Queued:    len(s.queue),
		Delivered: s.delivered.Load(),
		Failed:    s.failed.Load(),
		Dropped:   s.dropped.Load(),
		Requests:  s.requests.Load(),
		Retries:   s.retries.Load(),
	}
}

// Close stops accepting events and delivers those queued, without waiting
// for batches to fill, until ctx ends; then what is left is abandoned
// (counted as failed) and Close returns ctx's error.
func (s *Sender) Close(ctx context.Context) error {
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.draining)
	})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-s.done
		return fmt.Errorf("webhook: close: %w", ctx.Err())
	}
}

// run is the Sender's goroutine: it collects batches and delivers them,
// one at a time.
func (s *Sender) run() {
	defer close(s.done)
	defer s.cancel()
	batch := make([]Event, 0, s.cfg.BatchSize)
	for {
		batch = batch[:0]
		select {
		case e := <-s.queue:
			batch = append(batch, e)
		case <-s.draining:
			select {
			case e := <-s.queue:
				batch = append(batch, e)
			default:
				return // closed, and nothing left
			}
		}
		s.fill(&batch)
		if s.ctx.Err() != nil {
			s.failed.Add(int64(len(batch) + len(s.queue)))
			return
		}
		s.deliver(batch)
	}
}

// fill adds events to batch until it is full or BatchWait has passed (at
// once, when closing).
func (s *Sender) fill(batch *[]Event) {
	timer := time.NewTimer(s.cfg.BatchWait)
	defer timer.Stop()
	wait := timer.C
	for len(*batch) < s.cfg.BatchSize {
		select {
		case e := <-s.queue:
			*batch = append(*batch, e)
		case <-wait:
			return
		case <-s.draining:
			// Closing: take what is queued now, wait no more.
			select {
			case e := <-s.queue:
				*batch = append(*batch, e)
			default:
				return
			}
		case <-s.ctx.Done():
			return
		}
	}
}

// errPermanent marks an answer that a retry would not change.
var errPermanent = errors.New("refused by the receiver")

// deliver posts one batch, retrying.
func (s *Sender) deliver(batch []Event) {
	body, err := json.Marshal(Body{Events: batch})
	if err != nil { // our own types: cannot happen
		s.failed.Add(int64(len(batch)))
		return
	}
	delivery := batch[0].ID
	backoff := s.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			s.retries.Add(1)
		}
		err := s.post(body, delivery)
		if err == nil {
			s.delivered.Add(int64(len(batch)))
			return
		}
		if errors.Is(err, errPermanent) || attempt >= s.cfg.MaxAttempts || s.ctx.Err() != nil {
			s.failed.Add(int64(len(batch)))
			s.budget.Log(s.log, slog.LevelWarn, "webhook: batch not delivered", "events", len(batch), "delivery", delivery,
				"attempts", attempt, "error", err)
			return
		}
		s.budget.Log(s.log, slog.LevelInfo, "webhook: delivery failed, retrying", "delivery", delivery, "attempt", attempt,
			"retryIn", backoff.String(), "error", err)
		wait := backoff + time.Duration(rand.Int64N(int64(backoff)/5+1))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// post sends one attempt, signed now.
func (s *Sender) post(body []byte, delivery string) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "operate-realtime-webhook/1")
	req.Header.Set(SignatureHeader, Sign(s.cfg.Secret, time.Now(), body))
	req.Header.Set(DeliveryHeader, delivery)
	s.requests.Add(1)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
		return fmt.Errorf("answered %d", c)
	default:
		return fmt.Errorf("%w: answered %d", errPermanent, c)
	}
}

// Sign returns the signature header of body sent at t: "t=<unix
// seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify.
var (
	ErrMalformedSignature = errors.New("webhook: malformed signature header")
	ErrBadSignature       = errors.New("webhook: signature does not match")
	ErrStaleSignature     = errors.New("webhook: signature timestamp outside the tolerance")
)

// Verify checks a request's signature header against its raw body, as a
// receiver must: some v1 signature matches (compared in constant time)
// and its timestamp is within tolerance of now (zero tolerance means
// DefaultTolerance).
func Verify(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrMalformedSignature
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil {
				return ErrMalformedSignature
			}
			sigs = append(sigs, b)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrMalformedSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStaleSignature
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrBadSignature
}

// jsTime formats like JavaScript's toISOString.
func jsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
