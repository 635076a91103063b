package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/operate/realtime/gateway/events"
)

// Client publishes events to a gateway's HTTP API. It implements
// events.Emitter, so a Go service that runs outside the gateway process
// uses the same typed EventsService as one inside it (see the package doc).
type Client struct {
	// BaseURL is the gateway's URL, e.g. "http://localhost:8080".
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <APIKey>".
	APIKey string
	// HTTPClient sends the requests. Nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Retries is how many times Publish retries after a network error, a
	// 5xx answer, or a 429 (not before its Retry-After), with the same
	// Idempotency-Key, so a retry never publishes twice. That includes 503
	// publish_outcome_unknown: the gateway publishes an event with an
	// Idempotency-Key at most once across attempts and nodes, for
	// httpapi.MaxOnceKeep (10 minutes), so a retry answers the first
	// attempt's id if that one landed after all; without a key (an Event
	// with no ID) it is not retried. A 503 cluster_unavailable is not
	// retried: the event reached the clients of the node that answered,
	// and only there (no stream holds it), so a retry would deliver it to
	// them again. Zero means 2; negative means none.
	Retries int
}

// New returns a Client for baseURL authenticated with apiKey.
func New(baseURL, apiKey string) *Client {
	return &Client{BaseURL: baseURL, APIKey: apiKey}
}

var _ events.Emitter = (*Client)(nil)

// APIError is an error answer of the HTTP API: its status, its body (Code,
// Message, Field, IDs) and, with 429, how long to wait.
type APIError struct {
	StatusCode int
	// RetryAfter is how long the gateway asked to wait before retrying
	// (its Retry-After header, with 429); zero without one.
	RetryAfter time.Duration
	ErrorBody
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("apiclient: %d %s: %s", e.StatusCode, e.Code, e.Message)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// Publish implements events.Emitter: it posts ev (already validated and
// targeted by an EventsService) with ev.ID as its Idempotency-Key, retrying
// as configured (see Retries). The gateway assigns its own id to the event
// it delivers.
func (c *Client) Publish(ctx context.Context, ev events.Event) error {
	target := ev.Target
	req := PublishRequest{Event: string(ev.Name), Payload: ev.Payload, Target: &target}
	retries := c.Retries
	if retries == 0 {
		retries = 2
	}
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		_, err := c.Send(ctx, req, ev.ID)
		if err == nil || attempt >= retries || !retryable(err, ev.ID != "") {
			return err
		}
		wait := backoff
		var ae *APIError
		if errors.As(err, &ae) {
			wait = max(wait, ae.RetryAfter)
		}
		select {
		case <-time.After(wait):
			backoff *= 2
		case <-ctx.Done():
			return fmt.Errorf("apiclient: publish %s: %w (after %v)", ev.Name, ctx.Err(), err)
		}
	}
}

// retryable says whether a publish that failed with err is tried again;
// idempotent: it carries an Idempotency-Key.
func retryable(err error, idempotent bool) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		switch ae.Code {
		case CodeClusterUnavailable:
			return false // delivered to one node's clients: the caller decides (ae.IDs)
		case CodeOutcomeUnknown:
			return idempotent // the gateway appends it at most once per key
		}
		return ae.StatusCode >= 500 || ae.StatusCode == http.StatusTooManyRequests
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// Send posts one event and returns its id. idempotencyKey may be empty.
func (c *Client) Send(ctx context.Context, req PublishRequest, idempotencyKey string) (string, error) {
	var out PublishResponse
	if err := c.post(ctx, PathEvents, req, idempotencyKey, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// SendBatch posts events as one batch and returns their ids, in order.
// idempotencyKey may be empty.
func (c *Client) SendBatch(ctx context.Context, reqs []PublishRequest, idempotencyKey string) ([]string, error) {
	var out BatchResponse
	if err := c.post(ctx, PathBatch, reqs, idempotencyKey, &out); err != nil {
		return nil, err
	}
	return out.IDs, nil
}

// DevToken asks a gateway in development mode for a token (POST /dev/token).
func (c *Client) DevToken(ctx context.Context, req DevTokenRequest) (DevTokenResponse, error) {
	var out DevTokenResponse
	err := c.post(ctx, PathDevToken, req, "", &out)
	return out, err
}

// Presence returns who is online in an organization, across the cluster
// (GET /api/v1/organizations/{org}/presence).
func (c *Client) Presence(ctx context.Context, org string) (Presence, error) {
	var out Presence
	err := c.do(ctx, http.MethodGet, PresencePath(org), nil, "", &out)
	return out, err
}

var _ events.HistoryReader = (*Client)(nil)

// History reads the event history (GET PathOrganizationEvents, or
// PathUserEvents when q.UserID is set): the Client is an
// events.HistoryReader. A position the history no longer holds is an
// *APIError with Code CodeHistoryGap that also matches events.ErrHistoryGap.
func (c *Client) History(ctx context.Context, q events.HistoryQuery) (events.HistoryPage, error) {
	path := "/api/v1/organizations/" + url.PathEscape(q.OrganizationID) + "/events"
	v := url.Values{}
	if q.UserID != "" {
		path = "/api/v1/users/" + url.PathEscape(q.UserID) + "/events"
		v.Set("organizationId", q.OrganizationID)
	}
	if q.Since != "" {
		v.Set("since", q.Since)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if len(q.Events) > 0 {
		names := make([]string, len(q.Events))
		for i, n := range q.Events {
			names[i] = string(n)
		}
		v.Set("events", strings.Join(names, ","))
	}
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out events.HistoryPage
	err := c.do(ctx, http.MethodGet, path, nil, "", &out)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == CodeHistoryGap {
		return events.HistoryPage{}, fmt.Errorf("%w: %w", events.ErrHistoryGap, err)
	}
	return out, err
}

func (c *Client) post(ctx context.Context, path string, body any, idempotencyKey string, out any) error {
	return c.do(ctx, http.MethodPost, path, body, idempotencyKey, out)
}

// do sends one request (a body only when body is not nil) and decodes the
// answer into out.
func (c *Client) do(ctx context.Context, method, path string, body any, idempotencyKey string, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("apiclient: encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	url := strings.TrimRight(c.BaseURL, "/") + path
	r, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("apiclient: %w", err)
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if c.APIKey != "" {
		r.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	if idempotencyKey != "" {
		r.Header.Set("Idempotency-Key", idempotencyKey)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(r)
	if err != nil {
		return fmt.Errorf("apiclient: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("apiclient: %s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{StatusCode: resp.StatusCode}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			ae.RetryAfter = time.Duration(secs) * time.Second
		}
		if json.Unmarshal(data, &ae.ErrorBody) != nil || ae.Code == "" {
			ae.Code, ae.Message = "http_"+fmt.Sprint(resp.StatusCode), strings.TrimSpace(string(data))
		}
		return ae
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("apiclient: %s %s: decoding the answer %q: %w", method, path, data, err)
	}
	return nil
}
