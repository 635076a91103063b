package realuser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// published is one kind of event the tests publish: a catalog event of
// organization audience and the payload field it requires.
type published struct{ event, idField string }

// eventKinds are rotated by seq, so that the name a client receives says
// which seq it must carry.
func eventKinds() []published {
	return []published{
		{"invoice:created", "invoiceId"},
		{"expense:approved", "expenseId"},
		{"document:uploaded", "documentId"},
		{"bank:transaction_imported", ""},
	}
}

// eventName is the event the publisher sends with this seq.
func eventName(seq int) string {
	kinds := eventKinds()
	return kinds[seq%len(kinds)].event
}

// publisher publishes events through the HTTP API, as a backend service
// does, numbering each organization's events 1, 2, 3...
type publisher struct {
	t      *testing.T
	url    string
	client *http.Client
	sent   map[string]int // organization → the last seq published
}

func newPublisher(t *testing.T, srv *server) *publisher {
	p := &publisher{
		t:      t,
		url:    srv.url + "/api/v1/events",
		client: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second},
		sent:   map[string]int{},
	}
	t.Cleanup(p.client.CloseIdleConnections)
	return p
}

// publish sends n events to each organization, one request each,
// alternating organizations. A 202 means the event is queued to every
// connected recipient, in order.
func (p *publisher) publish(n int, orgs ...string) {
	p.t.Helper()
	for range n {
		for _, org := range orgs {
			p.sent[org]++
			p.post(org, p.sent[org])
		}
	}
}

func (p *publisher) post(org string, seq int) {
	p.t.Helper()
	kind := eventKinds()[seq%len(eventKinds())]
	payload := map[string]any{"organizationId": org, "seq": seq}
	if kind.idField != "" {
		payload[kind.idField] = fmt.Sprintf("%s-%d", org, seq)
	}
	body, err := json.Marshal(map[string]any{"event": kind.event, "payload": payload})
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatalf("publishing %s #%d to %s: %v", kind.event, seq, org, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		p.t.Fatalf("publishing %s #%d to %s: %s %s", kind.event, seq, org, resp.Status, answer)
	}
}
