package admin

import (
	"math"
	"sync"
	"time"

	"github.com/operate/realtime/gateway"
)

// sampler keeps the last five minutes of the counters the gateway and the
// engine keep anyway, one sample every sampleEvery, so that the status can
// give rates: a few atomic loads every ten seconds, nothing per event.
type sampler struct {
	gw *gateway.Gateway

	mu      sync.Mutex
	samples []counters // oldest first, at most maxSamples
}

// maxSamples covers the longest rate window (5 min) at sampleEvery.
const maxSamples = 31

// counters are cumulative figures of one node at one instant.
type counters struct {
	at         time.Time
	accepted   int64
	refused    int64
	published  int64
	byEvent    map[string]int64
	packetsOut int64
	bytesOut   int64
}

func newSampler(gw *gateway.Gateway, now time.Time) *sampler {
	s := &sampler{gw: gw}
	s.sample(now)
	return s
}

func (s *sampler) read(now time.Time) counters {
	st := s.gw.Stats()
	es := s.gw.Server().Engine().Stats()
	c := counters{
		at:         now,
		accepted:   st.Accepted,
		byEvent:    make(map[string]int64, len(st.Published)),
		packetsOut: es.PacketsOut.Load(),
		bytesOut:   es.BytesOut.Load(),
	}
	for _, n := range st.Refused {
		c.refused += n
	}
	for name, n := range st.Published {
		c.published += n
		c.byEvent[string(name)] = n
	}
	return c
}

func (s *sampler) sample(now time.Time) {
	c := s.read(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, c)
	if len(s.samples) > maxSamples {
		s.samples = s.samples[len(s.samples)-maxSamples:]
	}
}

// Rates are a node's averages per second over a window: the most recent
// one the samples cover, up to its nominal length (a young node's windows
// are shorter; WindowSeconds says how long).
type Rates struct {
	WindowSeconds float64 `json:"windowSeconds"`
	// Connections accepted and refused by authentication or caps.
	ConnectionsAccepted float64 `json:"connectionsAccepted"`
	ConnectionsRefused  float64 `json:"connectionsRefused"`
	// Catalog events published through this node (its HTTP API or the
	// in-process service), in all and by event (events with none left
	// out).
	EventsPublished float64            `json:"eventsPublished"`
	ByEvent         map[string]float64 `json:"byEvent,omitempty"`
	// Engine.IO packets and bytes written to this node's clients: the
	// fan-out.
	PacketsOut float64 `json:"packetsOut"`
	BytesOut   float64 `json:"bytesOut"`
}

// rates returns the rates over the last minute and the last five.
func (s *sampler) rates(now time.Time) map[string]Rates {
	cur := s.read(now)
	s.mu.Lock()
	samples := append([]counters(nil), s.samples...)
	s.mu.Unlock()
	out := make(map[string]Rates, 2)
	for name, window := range map[string]time.Duration{"1m": time.Minute, "5m": 5 * time.Minute} {
		// The oldest sample within the window (the samples are never more
		// than sampleEvery apart), or the oldest of all.
		from := samples[0]
		for _, c := range samples {
			if now.Sub(c.at) <= window+time.Second {
				from = c
				break
			}
		}
		out[name] = ratesBetween(from, cur)
	}
	return out
}

func ratesBetween(from, to counters) Rates {
	secs := to.at.Sub(from.at).Seconds()
	r := Rates{WindowSeconds: round(secs)}
	if secs <= 0 {
		return r
	}
	per := func(a, b int64) float64 { return round(float64(b-a) / secs) }
	r.ConnectionsAccepted = per(from.accepted, to.accepted)
	r.ConnectionsRefused = per(from.refused, to.refused)
	r.EventsPublished = per(from.published, to.published)
	r.PacketsOut = per(from.packetsOut, to.packetsOut)
	r.BytesOut = per(from.bytesOut, to.bytesOut)
	for name, n := range to.byEvent {
		if d := n - from.byEvent[name]; d > 0 {
			if r.ByEvent == nil {
				r.ByEvent = make(map[string]float64)
			}
			r.ByEvent[name] = round(float64(d) / secs)
		}
	}
	return r
}

// round keeps three decimals: a rate is an estimate, and a reader does
// not want fifteen digits of it.
func round(x float64) float64 { return math.Round(x*1000) / 1000 }
