package events

import (
	"slices"
	"strings"
)

// Name is an event name: "<domain>:<event>", e.g. "invoice:created". The known names are the
// generated constants (InvoiceCreated, ...).
type Name string

// Domain returns the part of the name before the first colon ("invoice" for
// "invoice:created"), or "" when there is none.
func (n Name) Domain() string {
	domain, _, ok := strings.Cut(string(n), ":")
	if !ok {
		return ""
	}
	return domain
}

// Audience says who receives an event when the publisher gives no explicit Target.
type Audience string

const (
	// AudienceOrganization events go to the payload organisation's room.
	AudienceOrganization Audience = "organization"
	// AudienceUser events go to the payload user's room, or to the organisation's room when
	// the payload has no userId.
	AudienceUser Audience = "user"
)

// EventInfo describes one event of the catalog.
type EventInfo struct {
	Name        Name
	Domain      string
	PayloadType string // name of the generated payload struct, e.g. "InvoicePayload"
	Audience    Audience
	Description string

	payload *payloadSpec // what Validate checks; shared and read-only
}

// Events returns every event of the catalog, in catalog order (by domain, then as listed
// there). The caller owns the returned slice.
func Events() []EventInfo { return slices.Clone(eventTable[:]) }

// Lookup returns the catalog entry of the named event.
func Lookup(name Name) (EventInfo, bool) {
	i := eventIndex(string(name))
	if i < 0 {
		return EventInfo{}, false
	}
	return eventTable[i], true
}

// Domains returns the event domains ("invoice", "expense", ...) in catalog order. The caller
// owns the returned slice.
func Domains() []string { return slices.Clone(domainTable[:]) }

func knownDomain(domain string) bool { return slices.Contains(domainTable[:], domain) }
