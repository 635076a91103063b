// Command realtime-soak keeps a population of real users connected to the
// real `realtime` binary for minutes to hours, through the faults real
// networks have, and fails loudly if any of them is disconnected for no
// reason or misses, repeats or reorders an event (`make soak`).
//
// What it runs, all on this machine:
//
//   - the server, built from this checkout with `go build`, restarted once
//     mid-run (SIGTERM, then again on the same port), with connection state
//     recovery on (RECOVERY_WINDOW);
//   - a population of real socket.io-client 4.8 sockets in a few Node processes
//     (tests/node/soak-clients.mjs) in a browser population's mix of
//     transports: mostly socket.io-client's default (long-polling, then the
//     upgrade to WebSocket), some long-polling only, a few WebSocket only,
//     over many organizations, with short-lived tokens they refresh on
//     auth:expiring;
//   - a fault proxy (internal/faultproxy) in front of each client, through
//     which a fault is injected every minute: every connection cut, some
//     stalled past the heartbeat, new connections refused for seconds;
//   - a publisher posting catalog events of every domain to POST
//     /api/v1/events at random gaps (seconds to minutes) and in bursts, each
//     payload carrying its organization's seq, notifications to each user
//     (every client is a user of its own) carrying the user's seq, and one
//     event per organization (and a notification to a tenth of the users)
//     right after each fault, while the clients are away;
//   - a sampler reading the server's /metrics every 10 s (connections, RSS,
//     goroutines, open files).
//
// At the end the judge (Judge, a pure function) checks every client's
// timeline: each disconnection explained by a fault that hit that client
// while its connection was open (or by the restart), each reconnection
// recovered (except after the restart of a server that keeps its sessions
// in memory, where the client must be told with history:gap), every event of
// its organization received once and in order, none of another's, and no
// growth of goroutines, open files or memory once the population is
// steady. It writes a report (text and JSON) and an SVG plot, and exits 1
// when anything failed.
//
// Configuration, from the environment (`make soak` passes them through):
//
//	SOAK_DURATION      how long events and faults run (default 10m)
//	SOAK_CLIENTS       sockets (default 2000)
//	SOAK_ORGS          organizations (default SOAK_CLIENTS/20)
//	SOAK_MIX           default,polling,websocket shares in percent (default 80,15,5)
//	SOAK_FAULT_EVERY   time between faults (default 1m)
//	SOAK_TOKEN_TTL     longest token life; each is random between half and all of it (default 4m)
//	SOAK_PING_INTERVAL, SOAK_PING_TIMEOUT   the server's heartbeat (default: the server's, 25s and 20s)
//	SOAK_RESTART       restart the server mid-run (default 1)
//	SOAK_NODES         servers (default 1); with more, they run over a redis-server of their own in
//	                   REDIS_ADAPTER_MODE=streams, clients spread over them, one node restarted (its
//	                   clients reconnect to another and must recover everything) and, later, one
//	                   killed with SIGKILL (likewise, from the sessions it kept in Redis)
//	SOAK_KILL          with several nodes, kill one mid-run (default 1)
//	SOAK_STREAM_MAXLEN the nodes' REDIS_STREAM_MAXLEN (default 200000: more than a run appends)
//	SOAK_MEAN_GAP      mean time between two events of an organization (default 40s)
//	SOAK_USER_GAP      mean time between two notifications to a user (default 5m)
//	SOAK_OUT           where the report and plot go (default docs)
//	SOAK_CLIENT_PROCS  Node processes sharing the clients (default 2)
//	SOAK_SEED          random seed (default: the time)
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "realtime-soak:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	v, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "realtime-soak:", err)
		os.Exit(2)
	}
	if !v.Pass {
		os.Exit(1)
	}
}
