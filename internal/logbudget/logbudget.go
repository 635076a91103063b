// Package logbudget rate-limits a kind of log line that clients can cause
// at will (refused connections, refused API requests): a line per refusal
// would let anyone write the log as fast as they can send requests. Each
// refusal should still be counted in the metrics; the log gets a sample of
// them and says how many it left out.
package logbudget

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// Default budget: lines per second on average, and at once.
const (
	DefaultRate  = 5
	DefaultBurst = 20
)

// MaxValue bounds a client-chosen value (a URL, an error that quotes
// input) in a log line: see Clip.
const MaxValue = 512

// Budget rate-limits one kind of log line and counts what it drops. Safe
// for concurrent use.
type Budget struct {
	limiter *rate.Limiter
	mu      sync.Mutex
	dropped int64
}

// New returns a budget of perSecond lines on average and burst at once.
func New(perSecond float64, burst int) *Budget {
	return &Budget{limiter: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// Log writes the line if the budget allows, with the number of lines left
// out since the last one written ("notLogged").
func (b *Budget) Log(l *slog.Logger, level slog.Level, msg string, args ...any) {
	if !l.Enabled(context.Background(), level) {
		return
	}
	b.mu.Lock()
	if !b.limiter.Allow() {
		b.dropped++
		b.mu.Unlock()
		return
	}
	dropped := b.dropped
	b.dropped = 0
	b.mu.Unlock()
	if dropped > 0 {
		args = append(args, "notLogged", dropped)
	}
	l.Log(context.Background(), level, msg, args...)
}

// Clip shortens a client-chosen value for a log line to MaxValue bytes,
// on a character boundary, saying how long it was.
func Clip(s string) string {
	if len(s) <= MaxValue {
		return s
	}
	cut := MaxValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
