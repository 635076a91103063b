package gateway

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/socketio"
)

// stats are the gateway's counters. Each is bumped once per connection,
// refusal, refresh or publish, never per delivery.
type stats struct {
	accepted         atomic.Int64
	recovered        atomic.Int64
	recoveryDeclined atomic.Int64
	expired          atomic.Int64
	refreshed        atomic.Int64
	refreshRefused   atomic.Int64
	publishFailed    atomic.Int64
	rateLimited      atomic.Int64
	published        []atomic.Int64 // by catalog index
	// Deliveries the tenancy check refused: to a socket of another
	// organization (tenancyRefused, per recipient), and broadcasts of a
	// catalog event whose payload names no organization (tenancyUnknown).
	// Both stay at zero unless a publisher or a room is wrong.
	tenancyRefused atomic.Int64
	tenancyUnknown atomic.Int64
	// filterEvaluations counts payload filter evaluations: at most one per
	// broadcast and distinct filter program, whatever the recipients.
	filterEvaluations atomic.Int64
	// Clients told of a history gap (EventHistoryGap), by reason.
	gapsUnavailable atomic.Int64
	gapsDeclined    atomic.Int64
	// History and recovery: catalog events appended to the history by
	// this node's publishes, missed events replayed to recovered sockets.
	historyAppended atomic.Int64
	eventsReplayed  atomic.Int64

	// Control operations: sockets disconnected on purpose (by code),
	// sockets moved in or out of their organization's room, failed reads
	// of the revocation store.
	sessionsRevoked      atomic.Int64
	tokensRevoked        atomic.Int64
	roomChanges          atomic.Int64
	revocationSyncFailed atomic.Int64

	mu      sync.Mutex
	refused map[auth.Code]int64
	// History requests, by source and result: rare enough for a map.
	historyRequests map[HistoryRequestKind]int64
}

// HistoryRequestKind says where a history request came from (Source:
// "client", the EventHistory event, or "api", History for the HTTP API)
// and how it was answered (Result: "ok", "invalid" a request refused as
// malformed, "gap" the position is no longer kept, "unavailable" no
// history is kept or it cannot be read now).
type HistoryRequestKind struct{ Source, Result string }

// Sources of history requests.
const (
	historyFromClient = "client"
	historyFromAPI    = "api"
)

// historyRequest counts a history request answered with err (nil: ok).
func (s *stats) historyRequest(source string, err error) {
	result := "ok"
	var re *requestError
	switch {
	case err == nil:
	case errors.As(err, &re), errors.Is(err, errInvalidHistoryQuery):
		result = "invalid"
	case errors.Is(err, events.ErrHistoryGap):
		result = "gap"
	default:
		result = "unavailable"
	}
	s.mu.Lock()
	s.historyRequests[HistoryRequestKind{source, result}]++
	s.mu.Unlock()
}

func (s *stats) revoke(code auth.Code) {
	if code == CodeTokenRevoked {
		s.tokensRevoked.Add(1)
	} else {
		s.sessionsRevoked.Add(1)
	}
}

func newStats(catalogSize int) *stats {
	return &stats{published: make([]atomic.Int64, catalogSize), refused: make(map[auth.Code]int64), historyRequests: make(map[HistoryRequestKind]int64)}
}

func (s *stats) gap(why socketio.RecoveryFailure) {
	if why == socketio.RecoveryDeclined {
		s.gapsDeclined.Add(1)
	} else {
		s.gapsUnavailable.Add(1)
	}
}

func (s *stats) refuse(code auth.Code) {
	s.mu.Lock()
	s.refused[code]++
	s.mu.Unlock()
}

// Stats is a snapshot of the gateway's counters since it started.
type Stats struct {
	// Accepted counts connections that passed authentication, recovered
	// ones included; Recovered those that recovered a session, and
	// RecoveriesDeclined those whose session was not handed over because
	// the token named another identity.
	Accepted, Recovered, RecoveriesDeclined int64
	// Refused counts refused connections by the code of their
	// connect_error.
	Refused map[auth.Code]int64
	// TokenExpiries counts sockets disconnected when their token expired;
	// Refreshes and RefreshesRefused count auth:refresh answers.
	TokenExpiries, Refreshes, RefreshesRefused int64
	// Published counts events handed to the cluster by Publish, by name;
	// PublishFailures the calls that failed.
	Published       map[events.Name]int64
	PublishFailures int64
	// RateLimited counts client requests refused for exceeding the
	// connection's budget.
	RateLimited int64
	// CrossTenantRefused counts deliveries refused because the recipient
	// belongs to another organization than the event's payload;
	// NoTenantDropped counts catalog events broadcast without a readable
	// organizationId (delivered to nobody).
	CrossTenantRefused, NoTenantDropped int64
	// FilterEvaluations counts evaluations of subscription filters: at most
	// one per broadcast and distinct filter, however many recipients share
	// it.
	FilterEvaluations int64
	// HistoryGaps counts clients told that they could not recover their
	// session (EventHistoryGap), by reason.
	HistoryGaps map[socketio.RecoveryFailure]int64
	// HistoryAppended counts catalog events published through this node
	// that the history kept (they got an offset), and HistoryMode says
	// where it is kept: "memory" (one node) or "streams" (Redis, the only
	// cluster mode with a history).
	HistoryAppended int64
	HistoryMode     string
	// EventsReplayed counts the missed events replayed to recovered
	// sockets before their CONNECT reply.
	EventsReplayed int64
	// HistoryRequests counts the history requests answered, by source and
	// result.
	HistoryRequests map[HistoryRequestKind]int64
	// Revoked counts sockets disconnected by a control operation, by the
	// code of their EventSessionRevoked (SESSION_REVOKED: an operator's
	// disconnect; TOKEN_REVOKED: a revoked token).
	Revoked map[auth.Code]int64
	// RoomChanges counts sockets moved out of or back into their
	// organization's room by SetOrganizationRoom.
	RoomChanges int64
	// Revocations is the number of revocations this node holds;
	// RevocationSyncFailures counts failed reads of the RevocationStore.
	Revocations            int
	RevocationSyncFailures int64
}

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	st := g.stats
	out := Stats{
		Accepted:           st.accepted.Load(),
		Recovered:          st.recovered.Load(),
		RecoveriesDeclined: st.recoveryDeclined.Load(),
		TokenExpiries:      st.expired.Load(),
		Refreshes:          st.refreshed.Load(),
		RefreshesRefused:   st.refreshRefused.Load(),
		PublishFailures:    st.publishFailed.Load(),
		RateLimited:        st.rateLimited.Load(),
		CrossTenantRefused: st.tenancyRefused.Load(),
		NoTenantDropped:    st.tenancyUnknown.Load(),
		FilterEvaluations:  st.filterEvaluations.Load(),
		HistoryAppended:    st.historyAppended.Load(),
		HistoryMode:        g.historyMode,
		EventsReplayed:     st.eventsReplayed.Load(),
		HistoryRequests:    make(map[HistoryRequestKind]int64),
		HistoryGaps: map[socketio.RecoveryFailure]int64{
			socketio.RecoveryUnavailable: st.gapsUnavailable.Load(),
			socketio.RecoveryDeclined:    st.gapsDeclined.Load(),
		},
		Revoked: map[auth.Code]int64{
			CodeSessionRevoked: st.sessionsRevoked.Load(),
			CodeTokenRevoked:   st.tokensRevoked.Load(),
		},
		RoomChanges:            st.roomChanges.Load(),
		Revocations:            g.revoked.len(),
		RevocationSyncFailures: st.revocationSyncFailed.Load(),
		Published:              make(map[events.Name]int64, len(st.published)),
		Refused:                make(map[auth.Code]int64),
	}
	for i := range st.published {
		out.Published[g.catalog.names[i]] = st.published[i].Load()
	}
	st.mu.Lock()
	for code, n := range st.refused {
		out.Refused[code] = n
	}
	for k, n := range st.historyRequests {
		out.HistoryRequests[k] = n
	}
	st.mu.Unlock()
	return out
}
