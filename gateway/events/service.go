package events

import (
	"context"
	"encoding/json"
	"errors"
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

// NewEvent validates an event against the catalog and returns it ready for an Emitter, exactly
// as EventsService.Emit publishes it: the payload normalised (a missing timestamp set to now,
// date-times in the toISOString format), the target resolved (the zero Target means the
// event's default target, see DefaultTarget; an explicit organisation must be the payload's
// own) and a new id (NewEventID(now)). Errors are *ValidationError. The Event's Payload may be
// payload itself when nothing needed normalising.
//
// It is the validation step of publishing without a service around it: a publisher that
// validates a whole request before publishing any of it (the HTTP API's batches) calls it per
// event, then hands the events to its Emitter.
func NewEvent(name Name, payload json.RawMessage, target Target, now time.Time) (Event, error) {
	return newEvent(name, payload, target, func() time.Time { return now }, nil)
}

// newEvent is NewEvent with a clock (read only when the payload has no timestamp, or for the
// default id) and an id generator (nil: NewEventID), called only for a valid event so that a
// deterministic generator in tests is not advanced by rejected ones.
func newEvent(name Name, payload []byte, target Target, now func() time.Time, newID func() string) (Event, error) {
	normalized, info, r, err := validate(string(name), payload, now)
	if err != nil {
		return Event{}, err
	}
	if target, err = resolveTarget(info, target, r); err != nil {
		return Event{}, err
	}
	var id string
	if newID != nil {
		id = newID()
	} else {
		id = NewEventID(now())
	}
	return Event{ID: id, Name: info.Name, Payload: normalized, Target: target}, nil
}

// Emitter delivers events: an in-process Socket.IO broadcast, a Redis emitter or an HTTP
// client. Publish must not keep ev.Payload after it returns unless it copies it.
type Emitter interface {
	Publish(ctx context.Context, ev Event) error
}

// ErrClusterUnavailable is wrapped by the error of an Emitter that delivered an event to some
// of its recipients only: a gateway clustered over Redis that cannot reach Redis still
// delivers to its own node's clients, and says so with an error that wraps this one.
// Publishers tell it from a failure with errors.Is: retrying may repeat the event for the
// clients that got it.
var ErrClusterUnavailable = errors.New("events: cluster unavailable")

// ErrOutcomeUnknown is wrapped by the error of an Emitter that cannot tell whether an event was
// published: clustered over Redis Streams, Redis did not answer the append in time. The event
// reaches every recipient or none (no node delivered it on the side). Retrying may publish it
// twice, unless both attempts go through OnceEmitter.PublishOnce with the same key; not
// retrying may lose it: the publisher decides.
var ErrOutcomeUnknown = errors.New("events: publish outcome unknown")

// EventsService validates events against the catalog and publishes them to an Emitter. It has
// one typed method per event (EmitInvoiceCreated, ...; generated) and the untyped Emit. It is
// safe for concurrent use.
type EventsService struct {
	emitter Emitter
	now     func() time.Time
	newID   func() string // nil: NewEventID(now())
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
	ev, err := newEvent(name, raw, target, s.now, s.newID)
	if err != nil {
		return "", err
	}
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
