package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/operate/realtime/socketio"
)

// StatusPath is where realtime serve serves the status.
const StatusPath = "/admin/status"

// Bounds of the status's organization lists.
const (
	DefaultTop = 10
	MaxTop     = 1000
	// maxReportedOrgs bounds the organizations one node reports to the
	// node that answers a status request (its busiest).
	maxReportedOrgs = 10_000
)

// Status is the answer of the status endpoint: the cluster's state as the
// nodes that answered in time report it. It holds counts, names of
// organizations and nodes, and Redis's state; no user, no token, no key.
type Status struct {
	GeneratedAt string        `json:"generatedAt"`
	Node        string        `json:"node"` // the node that answered
	Cluster     ClusterStatus `json:"cluster"`
	Nodes       []NodeStatus  `json:"nodes"` // by id
	// Organizations are the busiest, by connections across the cluster
	// (?top=N of them, default DefaultTop).
	Organizations []OrganizationCount `json:"organizations"`
}

// ClusterStatus sums the nodes' figures.
type ClusterStatus struct {
	// Mode is "single" (one node, in memory) or "redis".
	Mode string `json:"mode"`
	// Nodes is how many nodes answered; Complete is false when some
	// cluster node did not answer within the request timeout (or Redis is
	// unreachable): the figures then cover those that did.
	Nodes    int  `json:"nodes"`
	Complete bool `json:"complete"`
	// Connections are the sockets of the events namespace, by transport
	// too ("websocket", "polling").
	Connections int            `json:"connections"`
	Transports  map[string]int `json:"transports"`
	// Organizations is how many organizations have a connection; it is a
	// lower bound when a node has more than 10,000 of them.
	Organizations int `json:"organizations"`
	// Rates sum the nodes' rates ("1m" and "5m").
	Rates map[string]Rates `json:"rates"`
}

// NodeStatus is one node's state.
type NodeStatus struct {
	ID             string           `json:"id"`
	Hostname       string           `json:"hostname"`
	PID            int              `json:"pid"`
	StartedAt      string           `json:"startedAt"`
	UptimeSeconds  float64          `json:"uptimeSeconds"`
	Connections    int              `json:"connections"`
	Transports     map[string]int   `json:"transports"`
	EngineSessions int64            `json:"engineSessions"` // Engine.IO connections, authenticated or not, admin UIs included
	Organizations  int              `json:"organizations"`
	AdminUIs       int              `json:"adminUIs"`
	Rates          map[string]Rates `json:"rates"`
	Redis          *RedisStatus     `json:"redis,omitempty"`
}

// RedisStatus is a node's view of its Redis cluster.
type RedisStatus struct {
	Mode  string `json:"mode"` // classic, sharded or streams
	Ready bool   `json:"ready"`
	// Error says why it is not ready (the server's address, never its
	// credentials).
	Error string `json:"error,omitempty"`
	// Counters since the node started.
	Published     uint64 `json:"published"`
	PublishErrors uint64 `json:"publishErrors"`
	Received      uint64 `json:"received"`
	Dropped       uint64 `json:"dropped"`
	Reconnects    uint64 `json:"reconnects"`
}

// OrganizationCount is an organization's connections.
type OrganizationCount struct {
	OrganizationID string `json:"organizationId"`
	Connections    int    `json:"connections"`
}

// nodeReport is what a node answers sseStatus with.
type nodeReport struct {
	Node NodeStatus     `json:"node"`
	Orgs map[string]int `json:"orgs"`
}

// StatusHandler serves GET StatusPath: Status as JSON, to a request with
// "Authorization: Bearer <Config.Key>"; anything else is refused with 401
// and a JSON body {code, message}.
func (a *Admin) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, apiError{"method_not_allowed", r.Method + " is not allowed; use GET"})
			return
		}
		if !a.authorized(r) {
			if a.refusalLog.Allow() {
				a.log.Warn("admin: status refused: missing or wrong admin key", "address", r.RemoteAddr)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="realtime-admin"`)
			writeJSON(w, http.StatusUnauthorized, apiError{"unauthorized", `send "Authorization: Bearer <admin key>" (ADMIN_KEY)`})
			return
		}
		top := DefaultTop
		if v := r.URL.Query().Get("top"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxTop {
				writeJSON(w, http.StatusBadRequest, apiError{"invalid_parameter", "top must be an integer from 1 to " + strconv.Itoa(MaxTop)})
				return
			}
			top = n
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
		defer cancel()
		writeJSON(w, http.StatusOK, a.Status(ctx, top))
	})
}

// apiError is the body of a refusal, shaped like the HTTP API's.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (a *Admin) authorized(r *http.Request) bool {
	scheme, key, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && a.key.matches(strings.TrimSpace(key))
}

// Status gathers the state of every node that answers before ctx ends.
func (a *Admin) Status(ctx context.Context, top int) Status {
	now := time.Now()
	reports := []nodeReport{a.report(now)}
	answers, err := a.nsp.ServerSideEmitWithAck(ctx, sseStatus)
	for _, ans := range answers {
		var r nodeReport
		if ans.Decode(0, &r) == nil && r.Node.ID != "" {
			reports = append(reports, r)
		}
	}
	st := Status{
		GeneratedAt: jsTime(now),
		Node:        a.node.id,
		Cluster: ClusterStatus{
			Mode:       "single",
			Nodes:      len(reports),
			Complete:   err == nil,
			Transports: map[string]int{"websocket": 0, "polling": 0},
			Rates:      map[string]Rates{},
		},
	}
	if a.redis != nil {
		st.Cluster.Mode = "redis"
	}
	orgs := map[string]int{}
	for _, r := range reports {
		n := r.Node
		st.Nodes = append(st.Nodes, n)
		st.Cluster.Connections += n.Connections
		for t, c := range n.Transports {
			st.Cluster.Transports[t] += c
		}
		for w, nr := range n.Rates {
			st.Cluster.Rates[w] = addRates(st.Cluster.Rates[w], nr)
		}
		for org, c := range r.Orgs {
			orgs[org] += c
		}
	}
	slices.SortFunc(st.Nodes, func(x, y NodeStatus) int { return cmp.Compare(x.ID, y.ID) })
	st.Cluster.Organizations = len(orgs)
	st.Organizations = busiest(orgs, top)
	return st
}

// addRates sums two nodes' rates; the window is the shortest.
func addRates(sum, r Rates) Rates {
	if sum.WindowSeconds == 0 || r.WindowSeconds < sum.WindowSeconds {
		sum.WindowSeconds = r.WindowSeconds
	}
	sum.ConnectionsAccepted = round(sum.ConnectionsAccepted + r.ConnectionsAccepted)
	sum.ConnectionsRefused = round(sum.ConnectionsRefused + r.ConnectionsRefused)
	sum.EventsPublished = round(sum.EventsPublished + r.EventsPublished)
	sum.PacketsOut = round(sum.PacketsOut + r.PacketsOut)
	sum.BytesOut = round(sum.BytesOut + r.BytesOut)
	for name, v := range r.ByEvent {
		if sum.ByEvent == nil {
			sum.ByEvent = map[string]float64{}
		}
		sum.ByEvent[name] = round(sum.ByEvent[name] + v)
	}
	return sum
}

// busiest returns the top organizations by connections (ties by id).
func busiest(orgs map[string]int, top int) []OrganizationCount {
	out := make([]OrganizationCount, 0, len(orgs))
	for org, n := range orgs {
		out = append(out, OrganizationCount{org, n})
	}
	slices.SortFunc(out, func(x, y OrganizationCount) int {
		if c := cmp.Compare(y.Connections, x.Connections); c != 0 {
			return c
		}
		return cmp.Compare(x.OrganizationID, y.OrganizationID)
	})
	if len(out) > top {
		out = out[:top]
	}
	return out
}

// report is this node's part of the status.
func (a *Admin) report(now time.Time) nodeReport {
	transports := map[string]int{"websocket": 0, "polling": 0}
	sockets := a.events.Sockets()
	for _, s := range sockets {
		transports[s.Transport()]++
	}
	orgs := a.gw.OrganizationConnections()
	n := NodeStatus{
		ID:             a.node.id,
		Hostname:       a.node.hostname,
		PID:            a.node.pid,
		StartedAt:      jsTime(a.node.started),
		UptimeSeconds:  now.Sub(a.node.started).Seconds(),
		Connections:    len(sockets),
		Transports:     transports,
		EngineSessions: a.gw.Server().Engine().Stats().Sessions.Load(),
		Organizations:  len(orgs),
		AdminUIs:       int(a.localAdmins.Load()),
		Rates:          a.rates.rates(now),
	}
	if c := a.redis; c != nil {
		rs := c.Stats()
		n.Redis = &RedisStatus{
			Mode:          c.Config().Mode.String(),
			Ready:         true,
			Published:     rs.Published,
			PublishErrors: rs.PublishErrors,
			Received:      rs.Received,
			Dropped:       rs.Dropped,
			Reconnects:    rs.Reconnects,
		}
		if err := c.Ready(); err != nil {
			n.Redis.Ready, n.Redis.Error = false, err.Error()
		}
	}
	if len(orgs) > maxReportedOrgs {
		keep := busiest(orgs, maxReportedOrgs)
		orgs = make(map[string]int, len(keep))
		for _, o := range keep {
			orgs[o.OrganizationID] = o.Connections
		}
	}
	return nodeReport{Node: n, Orgs: orgs}
}

// onStatusRequest answers another node's sseStatus request.
func (a *Admin) onStatusRequest(_ socketio.Args, ack func(args ...any)) {
	if ack != nil {
		ack(a.report(time.Now()))
	}
}
