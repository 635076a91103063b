package main

import "time"

// The orchestrator drives its worker processes (this binary re-executed as
// `realtime-bench worker`) with one JSON command per line on the worker's
// stdin; the worker answers each with one JSON line on stdout, in order.

// Cmd is a command to a worker.
type Cmd struct {
	ID int    `json:"id"`
	Op string `json:"op"` // setup, connect, drop, reset, stats, quit

	// setup: the worker's clients are the global indices [First, First+Count).
	// Client g connects to Targets[g%len(Targets)] from the source address
	// Sources[g%len(Sources)], as user u<g> of organization Org(g%Orgs), by
	// the transport transportOf(g, PollingPercent, UpgradePercent) gives it.
	Secret         string        `json:"secret,omitempty"`
	Namespace      string        `json:"nsp,omitempty"`
	Event          string        `json:"event,omitempty"`
	Targets        []string      `json:"targets,omitempty"`
	Sources        []string      `json:"sources,omitempty"`
	First          int           `json:"first,omitempty"`
	Count          int           `json:"count,omitempty"`
	Orgs           int           `json:"orgs,omitempty"`
	PollingPercent int           `json:"polling,omitempty"`
	UpgradePercent int           `json:"upgrade,omitempty"`
	TokenTTL       time.Duration `json:"ttl,omitempty"`
	// Protocol is what the clients speak: "" for Engine.IO v4 / Socket.IO
	// v5 (ours and Node), protoCentrifugo for Centrifugo's JSON protocol
	// over WebSocket (every client then goes straight to WebSocket:
	// Centrifugo has no long-polling transport to upgrade from).
	Protocol string `json:"protocol,omitempty"`
	// Recovery makes the clients keep what connection state recovery
	// needs: the private id of their CONNECT reply and the offset of the
	// last event received (its last argument); a client that has both
	// sends them in its next CONNECT, and the reply says whether the server
	// recovered the session (the same pid back) or not.
	Recovery bool `json:"recovery,omitempty"`

	// connect: open the connections of the clients [From, To) of this
	// worker's range (relative indices; To 0 means all) that are not
	// connected, at most Concurrency handshakes in flight.
	From        int `json:"from,omitempty"`
	To          int `json:"to,omitempty"`
	Concurrency int `json:"conc,omitempty"`
	// Target, when set, is the server those clients connect to from now
	// on (the recovery storm moves them to the surviving node).
	Target string `json:"target,omitempty"`
}

// Reply answers a Cmd.
type Reply struct {
	ID  int    `json:"id"`
	Err string `json:"err,omitempty"`

	// connect
	Connected   int      `json:"connected,omitempty"`
	Failed      int      `json:"failed,omitempty"`
	Errors      []string `json:"errors,omitempty"`
	ElapsedNS   int64    `json:"elapsedNs,omitempty"`
	ConnectHist Hist     `json:"connectHist,omitempty"`
	ConnectCPU  int64    `json:"connectCpuNs,omitempty"` // the worker's CPU time during the connect

	// stats (counters since the last reset)
	Alive int `json:"alive"`
	// AliveUpgraded and AlivePolling are the live connections that came
	// through the polling-to-WebSocket upgrade and that poll; the others
	// went straight to WebSocket.
	AliveUpgraded int `json:"aliveUpgraded,omitempty"`
	AlivePolling  int `json:"alivePolling,omitempty"`
	// PingIntervalMS and PingTimeoutMS are the heartbeat the server
	// announced in its open packet (the largest seen by the worker).
	PingIntervalMS int64 `json:"pingIntervalMs,omitempty"`
	PingTimeoutMS  int64 `json:"pingTimeoutMs,omitempty"`
	Received       int64 `json:"received,omitempty"`  // bench events
	Welcomes       int64 `json:"welcomes,omitempty"`  // "connected" events
	Closed         int64 `json:"closed,omitempty"`    // connections the server ended
	Malformed      int64 `json:"malformed,omitempty"` // frames not understood
	Latency        Hist  `json:"latency,omitempty"`   // publish → receipt of bench events
	CPUNS          int64 `json:"cpuNs,omitempty"`     // the worker's own CPU time, since start

	// Recovery (setup with Recovery): CONNECT replies to a CONNECT that
	// asked to recover, by outcome; history:gap events received; clients
	// holding both a pid and an offset (able to ask).
	Recovered    int64 `json:"recovered,omitempty"`
	NotRecovered int64 `json:"notRecovered,omitempty"`
	Gaps         int64 `json:"gaps,omitempty"`
	WithOffset   int64 `json:"withOffset,omitempty"`
}
