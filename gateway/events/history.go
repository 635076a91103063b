package events

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// History is the contract between the event history's reader (the gateway,
// which keeps it in its recovery log or in Redis) and those who serve it
// (the HTTP API), as Emitter is for publishing.

// MaxHistoryLimit bounds the events of one history page.
const MaxHistoryLimit = 500

// DefaultHistoryLimit is the page size when none is asked.
const DefaultHistoryLimit = 100

var (
	// ErrNoHistory: no history is kept (recovery and history are off, or
	// a Redis mode without a log).
	ErrNoHistory = errors.New("events: no event history is kept")
	// ErrHistoryGap: the history no longer holds the events that followed
	// the position asked for (trimmed, expired, or the position is from
	// another server process or log): the caller must reload from its
	// source of truth and go on from a fresh position.
	ErrHistoryGap = errors.New("events: events after this position are no longer kept")
)

// HistoryQuery asks for the events of one organization after a position.
type HistoryQuery struct {
	// OrganizationID is required: only events whose payload names it are
	// returned (tenancy).
	OrganizationID string
	// UserID, if set, asks for the events addressed to this user (its
	// user room) instead of those addressed to the organization.
	UserID string
	// Since is an offset ("" is the oldest event kept).
	Since string
	// Limit bounds the events returned (1 to MaxHistoryLimit).
	Limit int
	// Events, if set, keeps only these events.
	Events []Name
}

// HistoryEvent is one event of the history.
type HistoryEvent struct {
	Event   Name            `json:"event"`
	Payload json.RawMessage `json:"payload"`
	Offset  string          `json:"offset"`
}

// HistoryPage answers a HistoryQuery.
type HistoryPage struct {
	Events []HistoryEvent `json:"events"`
	// Offset covers the page: go on from it (Since) for what follows.
	Offset string `json:"offset"`
	// More says the page stopped at its limit before the newest event.
	More bool `json:"more"`
}

// HistoryReader reads the event history.
type HistoryReader interface {
	History(ctx context.Context, q HistoryQuery) (HistoryPage, error)
}

// OffsetEmitter is an Emitter that tells where in the history an event was
// kept ("" when it was not: no history).
type OffsetEmitter interface {
	Emitter
	PublishOffset(ctx context.Context, ev Event) (offset string, err error)
}

// OnceEmitter is an OffsetEmitter that can make a publish idempotent across attempts and
// nodes, so that a publisher may retry one that failed with ErrOutcomeUnknown. PublishOnce
// publishes ev at most once per key (opaque, unique to this event of this request) while the
// key is kept (keep): when an earlier call with the key published it, nothing is published or
// delivered again and id and offset are the earlier event's; otherwise id is ev.ID.
type OnceEmitter interface {
	OffsetEmitter
	PublishOnce(ctx context.Context, ev Event, key string, keep time.Duration) (id, offset string, err error)
}
