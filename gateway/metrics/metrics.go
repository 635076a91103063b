// Package metrics exposes a gateway's figures in the Prometheus text
// format: its connection, authentication and publishing counters, the
// Engine.IO layer's transport counters, and the Go runtime's and the
// process's own figures.
//
// Everything is read from counters the gateway and the engine keep anyway,
// at scrape time: metrics cost nothing per delivered event.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/httpapi"
	"github.com/operate/realtime/gateway/presence"
	"github.com/operate/realtime/gateway/webhook"
)

// Options configures Handler.
type Options struct {
	// ClusterReady, when set, is exported as realtime_cluster_ready (1 when
	// it returns nil): whether this node reaches the other nodes (Redis).
	ClusterReady func() error
	// PublishLimited, when set, is exported as
	// realtime_publish_events_limited_total: events the HTTP API refused
	// because their API key was over its publish rate.
	PublishLimited func() int64
	// SessionsDropped, when set, is exported as
	// realtime_cluster_sessions_dropped_total: sessions of disconnected
	// sockets the cluster could not store in time for recovery (Redis slow
	// or down; redisadapter's Stats.SessionsDropped).
	SessionsDropped func() int64
	// ControlRequests, when set, is exported as
	// realtime_control_requests_total{operation,result}: the HTTP API's
	// control requests (httpapi.Handler.ControlRequests).
	ControlRequests func() map[httpapi.ControlRequestKind]int64
	// Webhooks, when set, is exported as realtime_webhook_*: the events
	// delivered, failed and dropped (the queue was full), the queue's
	// length, the requests and retries.
	Webhooks func() webhook.Stats
	// Presence, when set, is exported as realtime_presence_*: the changes
	// this node reported, its failed Redis rounds, the dead nodes it
	// removed.
	Presence func() presence.Stats
}

// Handler returns the /metrics handler of gw, with its own registry (no
// package-level state: several gateways in one process do not collide).
func Handler(gw *gateway.Gateway, opts Options) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&collector{gw: gw, opts: opts},
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("realtime_"+name, help, labels, nil)
}

var (
	connectionsDesc      = desc("connections", "Sockets connected to this node's events namespace.")
	acceptedDesc         = desc("connections_accepted_total", "Connections that passed authentication, recovered ones included.")
	recoveredDesc        = desc("connections_recovered_total", "Connections that recovered their session and the events they missed.")
	recoveryDeclinedDesc = desc("recoveries_declined_total", "Recoveries not granted because the token named another user or organization.")
	refusedDesc          = desc("connections_refused_total", "Connections refused by authentication, by connect_error code.", "code")
	tokenExpiriesDesc    = desc("token_expiries_total", "Sockets disconnected because their token expired.")
	refreshesDesc        = desc("token_refreshes_total", "auth:refresh requests, by result.", "result")
	publishedDesc        = desc("events_published_total", "Catalog events published through this node, by event.", "event")
	publishFailuresDesc  = desc("publish_failures_total", "Publish calls that failed (unknown event, no target, cluster unavailable).")
	historyGapsDesc      = desc("history_gaps_total", "Clients that asked to recover their session and could not (told with history:gap), by reason.", "reason")
	historyAppendedDesc  = desc("history_appended_total", "Catalog events published through this node that the history kept (they got an offset), by where it is kept: memory (one node) or streams (Redis).", "mode")
	recoveryAttemptsDesc = desc("recovery_attempts_total", "Connections that asked to recover their session, by result: recovered, unavailable or declined (both told with history:gap).", "result")
	eventsReplayedDesc   = desc("events_replayed_total", "Missed events replayed to recovered connections before their CONNECT reply.")
	historyRequestsDesc  = desc("history_requests_total", "History requests answered, by source (client: the history event; api: the HTTP API) and result (ok, invalid, gap, unavailable).", "source", "result")
	refusalClosesDesc    = desc("connections_closed_for_refusals_total", "Engine.IO connections closed because too many of their CONNECTs were refused.")
	rateLimitedDesc      = desc("client_requests_limited_total", "Client requests refused because their connection exceeded its request budget.")
	tenancyDesc          = desc("deliveries_refused_total", "Deliveries refused by the tenancy check, by reason: other_organization (per recipient), no_organization (per broadcast).", "reason")
	filterEvalsDesc      = desc("filter_evaluations_total", "Subscription filter evaluations: at most one per broadcast and distinct filter, however many recipients share it.")
	sessionsDesc         = desc("engine_sessions", "Open Engine.IO sessions.")
	sessionsOpenedDesc   = desc("engine_sessions_opened_total", "Engine.IO sessions opened.")
	upgradesDesc         = desc("engine_upgrades_total", "Sessions upgraded from long-polling to WebSocket.")
	slowConsumersDesc    = desc("engine_slow_consumers_total", "Sessions closed because their client did not read fast enough.")
	heartbeatsLostDesc   = desc("engine_heartbeats_lost_total", "Sessions closed because their client stopped answering pings.")
	packetsOutDesc       = desc("engine_packets_out_total", "Engine.IO packets queued to sessions.")
	writesDesc           = desc("engine_writes_total", "Socket writes (WebSocket) and poll responses; packets_out/writes is the merging factor.")
	writeStallsDesc      = desc("engine_write_stalls_total", "WebSocket flushes a client could not take at once (it reads slowly); the rest went to a blocking writer.")
	bytesOutDesc         = desc("engine_bytes_out_total", "Bytes written to clients.")
	clusterReadyDesc     = desc("cluster_ready", "1 when this node reaches the cluster (Redis), 0 otherwise.")
	publishLimitedDesc   = desc("publish_events_limited_total", "Events the HTTP API refused because their API key was over its publish rate.")
	sessionsDroppedDesc  = desc("cluster_sessions_dropped_total", "Sessions of disconnected sockets not stored for recovery: the store queue was full (Redis slow or down) or a shutdown's deadline passed.")
	controlRevokedDesc   = desc("sockets_revoked_total", "Sockets disconnected on purpose by the control API, by the code of their session:revoked: SESSION_REVOKED (an operator's disconnect), TOKEN_REVOKED (a revoked token).", "code")
	roomChangesDesc      = desc("organization_room_changes_total", "Sockets moved out of or back into their organization's room by the control API.")
	revocationsDesc      = desc("token_revocations", "Token revocations this node holds (each kept until the tokens it names have expired).")
	revocationSyncDesc   = desc("token_revocation_reads_failed_total", "Failed reads of the revocations kept in Redis.")
	controlRequestsDesc  = desc("control_requests_total", "Control API requests, by operation (disconnect, revoke, room) and result (ok, invalid, partial, failed).", "operation", "result")
	webhookEventsDesc    = desc("webhook_events_total", "Webhook events by result: delivered (2xx), failed (refused, or given up after the retries), dropped (the queue was full).", "result")
	webhookQueueDesc     = desc("webhook_queue_length", "Webhook events waiting to be sent.")
	webhookRequestsDesc  = desc("webhook_requests_total", "Webhook requests sent, retries included.")
	webhookRetriesDesc   = desc("webhook_retries_total", "Webhook requests that were retries of a failed one.")
	presenceChangesDesc  = desc("presence_changes_total", "Presence changes this node reported for the cluster, by event (presence:joined, presence:left).", "event")
	presenceErrorsDesc   = desc("presence_sync_errors_total", "Rounds of presence writes to Redis that failed (retried).")
	presenceRemovedDesc  = desc("presence_dead_nodes_removed_total", "Dead nodes whose presence counts this node removed.")
	allDescs             = []*prometheus.Desc{webhookEventsDesc, webhookQueueDesc, webhookRequestsDesc, webhookRetriesDesc, presenceChangesDesc, presenceErrorsDesc, presenceRemovedDesc, controlRevokedDesc, roomChangesDesc, revocationsDesc, revocationSyncDesc, connectionsDesc, acceptedDesc, recoveredDesc, recoveryDeclinedDesc, historyGapsDesc, historyAppendedDesc, recoveryAttemptsDesc, eventsReplayedDesc, historyRequestsDesc, refusedDesc, tokenExpiriesDesc, refreshesDesc, publishedDesc, publishFailuresDesc, rateLimitedDesc, refusalClosesDesc, tenancyDesc, filterEvalsDesc, sessionsDesc, sessionsOpenedDesc, upgradesDesc, slowConsumersDesc, heartbeatsLostDesc, packetsOutDesc, writesDesc, writeStallsDesc, bytesOutDesc}
)

// collector reads the counters at scrape time.
type collector struct {
	gw   *gateway.Gateway
	opts Options
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
	if c.opts.ClusterReady != nil {
		ch <- clusterReadyDesc
	}
	if c.opts.PublishLimited != nil {
		ch <- publishLimitedDesc
	}
	if c.opts.SessionsDropped != nil {
		ch <- sessionsDroppedDesc
	}
	if c.opts.ControlRequests != nil {
		ch <- controlRequestsDesc
	}
	if c.opts.Presence != nil {
		ch <- presenceChangesDesc
		ch <- presenceErrorsDesc
		ch <- presenceRemovedDesc
	}
	if c.opts.Webhooks != nil {
		ch <- webhookEventsDesc
		ch <- webhookQueueDesc
		ch <- webhookRequestsDesc
		ch <- webhookRetriesDesc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}

	st := c.gw.Stats()
	gauge(connectionsDesc, float64(c.gw.ConnectionCount()))
	counter(acceptedDesc, st.Accepted)
	counter(recoveredDesc, st.Recovered)
	counter(recoveryDeclinedDesc, st.RecoveriesDeclined)
	for why, n := range st.HistoryGaps {
		counter(historyGapsDesc, n, string(why))
	}
	counter(historyAppendedDesc, st.HistoryAppended, st.HistoryMode)
	counter(recoveryAttemptsDesc, st.Recovered, "recovered")
	for why, n := range st.HistoryGaps {
		counter(recoveryAttemptsDesc, n, string(why))
	}
	counter(eventsReplayedDesc, st.EventsReplayed)
	// Every series, zeros included, so that rates exist before the first
	// request of a kind.
	for _, source := range []string{"client", "api"} {
		for _, result := range []string{"ok", "invalid", "gap", "unavailable"} {
			counter(historyRequestsDesc, st.HistoryRequests[gateway.HistoryRequestKind{Source: source, Result: result}], source, result)
		}
	}
	for code, n := range st.Refused {
		counter(refusedDesc, n, string(code))
	}
	counter(tokenExpiriesDesc, st.TokenExpiries)
	counter(refreshesDesc, st.Refreshes, "ok")
	counter(refreshesDesc, st.RefreshesRefused, "refused")
	for name, n := range st.Published {
		counter(publishedDesc, n, string(name))
	}
	counter(publishFailuresDesc, st.PublishFailures)
	counter(rateLimitedDesc, st.RateLimited)
	counter(refusalClosesDesc, c.gw.Server().RefusedConnectsClosed())
	counter(tenancyDesc, st.CrossTenantRefused, "other_organization")
	counter(tenancyDesc, st.NoTenantDropped, "no_organization")
	counter(filterEvalsDesc, st.FilterEvaluations)
	for code, n := range st.Revoked {
		counter(controlRevokedDesc, n, string(code))
	}
	counter(roomChangesDesc, st.RoomChanges)
	gauge(revocationsDesc, float64(st.Revocations))
	counter(revocationSyncDesc, st.RevocationSyncFailures)
	if c.opts.ControlRequests != nil {
		for k, n := range c.opts.ControlRequests() {
			counter(controlRequestsDesc, n, k.Operation, k.Result)
		}
	}

	es := c.gw.Server().Engine().Stats()
	gauge(sessionsDesc, float64(es.Sessions.Load()))
	counter(sessionsOpenedDesc, es.Opened.Load())
	counter(upgradesDesc, es.Upgrades.Load())
	counter(slowConsumersDesc, es.SlowConsumers.Load())
	counter(heartbeatsLostDesc, es.HeartbeatsLost.Load())
	counter(packetsOutDesc, es.PacketsOut.Load())
	counter(writesDesc, es.Writes.Load())
	counter(writeStallsDesc, es.WriteStalls.Load())
	counter(bytesOutDesc, es.BytesOut.Load())

	if c.opts.ClusterReady != nil {
		ready := 0.0
		if c.opts.ClusterReady() == nil {
			ready = 1
		}
		gauge(clusterReadyDesc, ready)
	}
	if c.opts.PublishLimited != nil {
		counter(publishLimitedDesc, c.opts.PublishLimited())
	}
	if c.opts.SessionsDropped != nil {
		counter(sessionsDroppedDesc, c.opts.SessionsDropped())
	}
	if c.opts.Presence != nil {
		p := c.opts.Presence()
		counter(presenceChangesDesc, p.Joined, "presence:joined")
		counter(presenceChangesDesc, p.Left, "presence:left")
		counter(presenceErrorsDesc, p.SyncErrors)
		counter(presenceRemovedDesc, p.NodesRemoved)
	}
	if c.opts.Webhooks != nil {
		w := c.opts.Webhooks()
		counter(webhookEventsDesc, w.Delivered, "delivered")
		counter(webhookEventsDesc, w.Failed, "failed")
		counter(webhookEventsDesc, w.Dropped, "dropped")
		gauge(webhookQueueDesc, float64(w.Queued))
		counter(webhookRequestsDesc, w.Requests)
		counter(webhookRetriesDesc, w.Retries)
	}
}
