package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Event is what the EventsService hands to the transport: the Socket.IO event Name with the
// validated, normalised Payload as its single argument, delivered to Target.
type Event struct {
	ID      string          `json:"id"`
	Name    Name            `json:"name"`
	Payload json.RawMessage `json:"payload"`
	Target  Target          `json:"target"`
}

// Emitter delivers events: an in-process Socket.IO broadcast, a Redis emitter or an HTTP
// client. Publish must not keep ev.Payload after it returns unless it copies it.
type Emitter interface {
	Publish(ctx context.Context, ev Event) error
}

// EventsService validates events against the catalog and publishes them to an Emitter. It has
// one typed method per event (EmitInvoiceCreated, ...; generated) and the untyped Emit. It is
// safe for concurrent use.
type EventsService struct {
	emitter Emitter
	now     func() time.Time
	newID   func() string
}

// ServiceOption configures NewEventsService.
type ServiceOption func(*EventsService)

// WithClock sets the clock used for timestamps the server fills in (default time.Now).
func WithClock(now func() time.Time) ServiceOption {
	return func(s *EventsService) { s.now = now }
}

// WithIDGenerator sets the event id generator. The default makes 26-character ULID-style
// ids (see NewEventID) from the service's clock.
func WithIDGenerator(newID func() string) ServiceOption {
	return func(s *EventsService) { s.newID = newID }
}

// NewEventsService returns a service publishing to e. It panics if e is nil: that is a wiring
// bug, not a runtime condition.
func NewEventsService(e Emitter, opts ...ServiceOption) *EventsService {
	if e == nil {
		panic("events: NewEventsService: nil Emitter")
	}
	s := &EventsService{emitter: e, now: time.Now}
	for _, opt := range opts {
		opt(s)
	}
	if s.newID == nil {
		now := s.now
		s.newID = func() string { return NewEventID(now()) }
	}
	return s
}

// EmitOption adjusts one call of a typed Emit<Event> method.
type EmitOption func(*emitOptions)

type emitOptions struct {
	target Target
}

// WithTarget sends the event to t instead of the event's default target. An explicit
// organisation must be the payload's organizationId.
func WithTarget(t Target) EmitOption {
	return func(o *emitOptions) { o.target = t }
}

// Emit validates and publishes an event and returns its id. payload is a json.RawMessage or
// []byte holding a JSON object, or any value that encoding/json marshals to one (such as a
// generated payload struct). The zero Target means the event's default target (see
// DefaultTarget). Invalid events are rejected with a *ValidationError before reaching the
// Emitter.
func (s *EventsService) Emit(ctx context.Context, name Name, payload any, target Target) (string, error) {
	var raw []byte
	switch p := payload.(type) {
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	default:
		var err error
		if raw, err = json.Marshal(payload); err != nil {
			return "", fmt.Errorf("events: emit %s: encode payload: %w", name, err)
		}
	}
	normalized, info, r, err := validate(string(name), raw, s.now)
	if err != nil {
		return "", err
	}
	if target, err = resolveTarget(info, target, r); err != nil {
		return "", err
	}
	ev := Event{ID: s.newID(), Name: info.Name, Payload: normalized, Target: target}
	if err := s.emitter.Publish(ctx, ev); err != nil {
		return "", fmt.Errorf("events: publish %s (id %s): %w", ev.Name, ev.ID, err)
	}
	return ev.ID, nil
}

// emit is the body of the generated typed methods: the struct goes through the same
// marshal-and-validate path as untyped payloads, so the two cannot diverge.
func (s *EventsService) emit(ctx context.Context, name Name, payload any, opts []EmitOption) (string, error) {
	var o emitOptions
	for _, opt := range opts {
		opt(&o)
	}
	return s.Emit(ctx, name, payload, o.target)
}
