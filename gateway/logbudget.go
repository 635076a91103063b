package gateway

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// Refusals are logged within a budget: anyone can make the gateway refuse
// connections, and a log line per refusal would let them write the log as
// fast as they can send CONNECTs. Each refusal is counted in the metrics
// regardless; the log gets a sample of them, and says how many it left out.
const (
	refusalLogRate  = 5  // lines per second, on average
	refusalLogBurst = 20 // lines at once
	// maxLoggedValue bounds a client-chosen value (a URL, an error that
	// quotes input) in a log line.
	maxLoggedValue = 512
)

// logBudget rate-limits a kind of log line and counts what it drops.
type logBudget struct {
	limiter *rate.Limiter
	mu      sync.Mutex
	dropped int64
}

func newLogBudget() *logBudget {
	return &logBudget{limiter: rate.NewLimiter(refusalLogRate, refusalLogBurst)}
}

// log writes the line if the budget allows, with the number of lines left
// out since the last one written.
func (b *logBudget) log(l *slog.Logger, level slog.Level, msg string, args ...any) {
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

// clip shortens a client-chosen value for a log line.
func clip(s string) string {
	if len(s) <= maxLoggedValue {
		return s
	}
	cut := maxLoggedValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
