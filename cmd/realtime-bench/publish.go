package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// publisher posts events to a server's HTTP API (POST /api/v1/events/batch)
// over a few keep-alive connections.
type publisher struct {
	url      string
	key      string
	event    string
	client   *http.Client
	conc     int
	maxBatch int
}

func newPublisher(addr, key, event string, conc int) *publisher {
	return &publisher{
		url:   "http://" + addr + "/api/v1/events/batch",
		key:   key,
		event: event,
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

// appendEvent writes one event of the batch body.
func (p *publisher) appendEvent(b []byte, org int, seq int64, sentAt int64) []byte {
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
			b := batch{body: make([]byte, 0, 256*n), orgs: make([]int, 0, n)}
			b.body = append(b.body, '[')
			for k := seq; k < seq+n; k++ {
				if k > seq {
					b.body = append(b.body, ',')
				}
				org := orgs[int(k%int64(len(orgs)))]
				b.body = p.appendEvent(b.body, org, k, startNS+int64(time.Duration(k)*interval))
				b.orgs = append(b.orgs, org)
			}
			b.body = append(b.body, ']')
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
	req.Header.Set("Authorization", "Bearer "+p.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

func (p *publisher) close() {
	p.client.CloseIdleConnections()
}
