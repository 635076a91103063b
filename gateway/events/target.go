package events

import (
	"encoding/json"
	"time"
)

// Target says who receives an event. OrganizationID and UserID may both be set: the event then
// goes to both rooms (each socket receives it once, as with Socket.IO's to(a).to(b)). All sends
// it to every connected socket and cannot be combined with the others. Whatever the target, the
// gateway delivers an event only to sockets of its payload's organization: a UserID reaches the
// user's sockets in that organization, All every socket of that organization.
type Target struct {
	OrganizationID string `json:"organizationId,omitempty"`
	UserID         string `json:"userId,omitempty"`
	All            bool   `json:"all,omitempty"`
}

// OrgRoom is the Socket.IO room of an organisation's sockets: "org:<id>".
func OrgRoom(organizationID string) string { return "org:" + organizationID }

// UserRoom is the Socket.IO room of a user's sockets: "user:<id>".
func UserRoom(userID string) string { return "user:" + userID }

// IsZero reports whether no recipient is set, which makes publishers use the default target.
func (t Target) IsZero() bool { return t == Target{} }

// Rooms returns the rooms the event is delivered to. It returns nil when All is set (the
// transport then broadcasts to every socket) and for the zero Target.
func (t Target) Rooms() []string {
	if t.All {
		return nil
	}
	var rooms []string
	if t.OrganizationID != "" {
		rooms = append(rooms, OrgRoom(t.OrganizationID))
	}
	if t.UserID != "" {
		rooms = append(rooms, UserRoom(t.UserID))
	}
	return rooms
}

// DefaultTarget returns where the event goes when the publisher gives no explicit target:
// organisation-audience events go to payload.organizationId; user-audience events go to
// payload.userId when set, else to the organisation. The payload must be valid for the event.
func DefaultTarget(name Name, payload json.RawMessage) (Target, error) {
	_, info, r, err := validate(string(name), payload, time.Now)
	if err != nil {
		return Target{}, err
	}
	return defaultTarget(info, r), nil
}

// routing is what target resolution needs from a payload: the raw (quoted) JSON strings of
// organizationId and userId, captured by validate on its single pass over the payload and
// decoded only when a target is built.
type routing struct {
	organizationID []byte
	userID         []byte // nil when absent
}

func (r routing) organization() string { return string(stringContent(r.organizationID)) }

func (r routing) user() string {
	if r.userID == nil {
		return ""
	}
	return string(stringContent(r.userID))
}

func defaultTarget(info EventInfo, r routing) Target {
	if user := r.user(); info.Audience == AudienceUser && user != "" {
		return Target{UserID: user}
	}
	return Target{OrganizationID: r.organization()}
}

// resolveTarget applies the default target, or checks an explicit one. An explicit
// organisation must be the payload's own: a payload is never delivered to another tenant, even
// by mistake in a publisher.
func resolveTarget(info EventInfo, explicit Target, r routing) (Target, error) {
	switch {
	case explicit.IsZero():
		return defaultTarget(info, r), nil
	case explicit.All && (explicit.OrganizationID != "" || explicit.UserID != ""):
		return Target{}, &ValidationError{
			Code:    CodeInvalidTarget,
			Message: string(info.Name) + ": target cannot combine all with organizationId or userId",
			Field:   "target",
		}
	case explicit.OrganizationID != "" && explicit.OrganizationID != r.organization():
		return Target{}, &ValidationError{
			Code: CodeInvalidTarget,
			Message: string(info.Name) + ": target organizationId " + quote(explicit.OrganizationID) +
				" differs from the payload's organizationId " + quote(r.organization()),
			Field: "target.organizationId",
		}
	}
	return explicit, nil
}
