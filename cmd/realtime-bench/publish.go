package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// publisher posts events to a server's HTTP API (POST /api/v1/events/batch;
// Centrifugo's POST /api/batch, one publish command per event) over a few
// keep-alive connections.
type publisher struct {
	url        string
	key        string
	event      string
	centrifugo bool
	client     *http.Client
	conc       int
	maxBatch   int
}

func newPublisher(kind, addr, key, event string, conc int) *publisher {
	url := "http://" + addr + "/api/v1/events/batch"
	if kind == kindCentrifugo {
		url = "http://" + addr + "/api/batch"
	}
	return &publisher{
		url:        url,
		key:        key,
		event:      event,
		centrifugo: kind == kindCentrifugo,
		client: &http.Client{
			Timeout: 60 * time.Second,
			Transport: &http.Transport{
				MaxIdleConnsPerHost: conc,
				MaxConnsPerHost:     conc,
				DisableCompression:  true,
				// Below Node's keepAliveTimeout (5 s): the client must drop an
				// idle connection before the server does, or a POST sent on it
				// as Node closes it fails with a connection reset.
				IdleConnTimeout: 3 * time.Second,
			},
		},
		conc:     conc,
		maxBatch: 100,
	}
}

// pubStats describes one publishing run.
type pubStats struct {
	Events    int64         // events accepted (202)
	Requests  int64         // requests sent
	Errors    int64         // requests refused or failed
	FirstErr  string        // the first failure
	PerOrg    []int64       // events accepted per organization
	Elapsed   time.Duration // from the first scheduled event to the last answer
	ReqLat    Hist          // request round trips
	Scheduled int64         // events the schedule asked for
}

// batch is one request: events [first, first+n) of the schedule.
type batch struct {
	body []byte
	orgs []int // organization index of each event
}

// openBatch and closeBatch start and end a batch body: a JSON array of
// events, or Centrifugo's {"commands":[…]}.
func (p *publisher) openBatch(b []byte) []byte {
	if p.centrifugo {
		return append(b, `{"commands":[`...)
	}
	return append(b, '[')
}

func (p *publisher) closeBatch(b []byte) []byte {
	if p.centrifugo {
		return append(b, "]}"...)
	}
	return append(b, ']')
}

// batchBody is a whole batch request of events (seq 0, 1, …) into one
// organization, all sent at sentAt.
func (p *publisher) batchBody(org, events int, sentAt int64) []byte {
	b := p.openBatch(make([]byte, 0, 320*events))
	for k := range events {
		if k > 0 {
			b = append(b, ',')
		}
		b = p.appendEvent(b, org, int64(k), sentAt)
	}
	return p.closeBatch(b)
}

// appendEvent writes one event of the batch body. For Centrifugo the
// event, the same JSON object, is the data of a publish command into the
// organization's channel.
func (p *publisher) appendEvent(b []byte, org int, seq int64, sentAt int64) []byte {
	if p.centrifugo {
		b = append(b, `{"publish":{"channel":"`...)
		b = append(b, orgChannel(org)...)
		b = append(b, `","data":`...)
		b = p.appendBareEvent(b, org, seq, sentAt)
		return append(b, "}}"...)
	}
	return p.appendBareEvent(b, org, seq, sentAt)
}

func (p *publisher) appendBareEvent(b []byte, org int, seq int64, sentAt int64) []byte {
	b = append(b, `{"event":"`...)
	b = append(b, p.event...)
	b = append(b, `","payload":{"organizationId":"`...)
	b = append(b, Org(org)...)
	b = append(b, `","invoiceId":"inv_`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `","invoiceNumber":"INV-2026-`...)
	b = strconv.AppendInt(b, seq%1000000, 10)
	b = append(b, `","amount":1250.5,"currency":"EUR","status":"SENT","sentAt":"`...)
	b = strconv.AppendInt(b, sentAt, 10)
	b = append(b, `"}}`...)
	return b
}

// run publishes rate events per second for dur. Event k goes to organization
// orgs[k%len(orgs)] and carries sentAt = its scheduled time, so that a
// publisher falling behind (the server's API too slow) shows up as latency
// instead of hiding it.
func (p *publisher) run(rate float64, dur time.Duration, orgs []int, nOrgs int) pubStats {
	total := int64(rate * dur.Seconds())
	if total < 1 {
		total = 1
	}
	st := pubStats{PerOrg: make([]int64, nOrgs), Scheduled: total}
	queue := make(chan batch, p.conc*4)
	var (
		mu       sync.Mutex
		reqLat   shardedHist
		lastDone atomic.Int64
		wg       sync.WaitGroup
	)
	for i := range p.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range queue {
				t0 := time.Now()
				err := p.post(b.body)
				reqLat.record(i, time.Since(t0))
				mu.Lock()
				st.Requests++
				if err != nil {
					st.Errors++
					if st.FirstErr == "" {
						st.FirstErr = err.Error()
					}
				} else {
					st.Events += int64(len(b.orgs))
					for _, o := range b.orgs {
						st.PerOrg[o]++
					}
				}
				mu.Unlock()
				lastDone.Store(time.Now().UnixNano())
			}
		}()
	}
	start := time.Now()
	startNS := start.UnixNano()
	interval := time.Duration(float64(time.Second) / rate)
	var seq int64
	const tick = 5 * time.Millisecond
	for seq < total {
		due := min(total, int64(time.Since(start).Seconds()*rate)+1)
		for seq < due {
			n := min(due-seq, int64(p.maxBatch))
			b := batch{body: p.openBatch(make([]byte, 0, 320*n)), orgs: make([]int, 0, n)}
			for k := seq; k < seq+n; k++ {
				if k > seq {
					b.body = append(b.body, ',')
				}
				org := orgs[int(k%int64(len(orgs)))]
				b.body = p.appendEvent(b.body, org, k, startNS+int64(time.Duration(k)*interval))
				b.orgs = append(b.orgs, org)
			}
			b.body = p.closeBatch(b.body)
			queue <- b
			seq += n
		}
		if seq >= total {
			break
		}
		// Sleep until the next event is due, at most one tick.
		next := start.Add(time.Duration(seq) * interval)
		time.Sleep(min(tick, max(time.Until(next), 0)))
	}
	close(queue)
	wg.Wait()
	st.Elapsed = time.Duration(lastDone.Load() - startNS)
	st.ReqLat = reqLat.snapshot()
	return st
}

func (p *publisher) post(body []byte) error {
	req, err := http.NewRequest("POST", p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if p.centrifugo {
		req.Header.Set("X-API-Key", p.key)
	} else {
		req.Header.Set("Authorization", "Bearer "+p.key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if p.centrifugo {
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
		}
		return cfBatchError(b)
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

// cfBatchError is the first error among the replies of a Centrifugo batch
// response ({"replies":[{"publish":{}}, {"error":{…}}, …]}): Centrifugo
// answers 200 and reports failures per command.
func cfBatchError(body []byte) error {
	var r struct {
		Replies []struct {
			Error *cfErr `json:"error"`
		} `json:"replies"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("batch response: %w: %.200s", err, body)
	}
	bad := 0
	var first *cfErr
	for _, rp := range r.Replies {
		if rp.Error != nil {
			bad++
			if first == nil {
				first = rp.Error
			}
		}
	}
	if first != nil {
		return fmt.Errorf("%d of %d publish commands refused: %s", bad, len(r.Replies), first)
	}
	return nil
}

func (p *publisher) close() {
	p.client.CloseIdleConnections()
}
