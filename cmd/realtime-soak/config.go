package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// config is one soak's parameters.
type config struct {
	Duration       time.Duration
	Clients        int
	Orgs           int
	Mix            [3]int // percent default, polling, websocket
	FaultEvery     time.Duration
	TokenTTL       time.Duration
	ExpiryWarning  time.Duration
	PingInterval   time.Duration
	PingTimeout    time.Duration
	RecoveryWindow time.Duration
	Restart        bool
	Out            string
	Seed           uint64
	// MeanGap is the mean time between two publications to one
	// organization; Quiet the time at the end without faults, for
	// everyone to come back.
	MeanGap time.Duration
	Quiet   time.Duration
	// UserGap is the mean time between two notifications to one user.
	UserGap time.Duration
	// Binary, when set, is the server to run instead of building one.
	Binary string
	// RampPerSecond is how many clients connect per second at the start.
	RampPerSecond int
	// ClientProcs is how many Node processes share the clients.
	ClientProcs int
	// Nodes is how many servers run; more than one run over a redis-server
	// of their own in REDIS_ADAPTER_MODE=streams.
	Nodes int
	// Kill: with several nodes, one is killed (SIGKILL) mid-run besides
	// the restart.
	Kill bool
	// StreamMaxLen is the nodes' REDIS_STREAM_MAXLEN: above what a run
	// appends, so that no client's history is trimmed.
	StreamMaxLen int
}

// configFromEnv reads the SOAK_* variables (see the package doc).
func configFromEnv(get func(string) string) (config, error) {
	c := config{
		Duration:       10 * time.Minute,
		Clients:        2000,
		Mix:            [3]int{80, 15, 5},
		FaultEvery:     time.Minute,
		TokenTTL:       4 * time.Minute,
		ExpiryWarning:  30 * time.Second,
		PingInterval:   25 * time.Second,
		PingTimeout:    20 * time.Second,
		RecoveryWindow: 2 * time.Minute,
		Restart:        true,
		Out:            "docs",
		Seed:           uint64(time.Now().UnixNano()),
		MeanGap:        40 * time.Second,
		UserGap:        5 * time.Minute,
		Kill:           true,
		StreamMaxLen:   200_000,
		RampPerSecond:  100,
		Nodes:          1,
		ClientProcs:    2,
		Binary:         get("SOAK_BINARY"),
	}
	var errs []string
	dur := func(name string, into *time.Duration) {
		if s := strings.TrimSpace(get(name)); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Sprintf("%s=%q: want a positive duration such as 10m", name, s))
				return
			}
			*into = d
		}
	}
	num := func(name string, into *int) {
		if s := strings.TrimSpace(get(name)); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				errs = append(errs, fmt.Sprintf("%s=%q: want a positive number", name, s))
				return
			}
			*into = n
		}
	}
	dur("SOAK_DURATION", &c.Duration)
	num("SOAK_CLIENTS", &c.Clients)
	c.Orgs = max(c.Clients/20, 1)
	num("SOAK_ORGS", &c.Orgs)
	dur("SOAK_FAULT_EVERY", &c.FaultEvery)
	dur("SOAK_TOKEN_TTL", &c.TokenTTL)
	dur("SOAK_PING_INTERVAL", &c.PingInterval)
	dur("SOAK_PING_TIMEOUT", &c.PingTimeout)
	dur("SOAK_MEAN_GAP", &c.MeanGap)
	dur("SOAK_USER_GAP", &c.UserGap)
	num("SOAK_STREAM_MAXLEN", &c.StreamMaxLen)
	num("SOAK_NODES", &c.Nodes)
	num("SOAK_CLIENT_PROCS", &c.ClientProcs)
	if c.Nodes > 5 {
		errs = append(errs, fmt.Sprintf("SOAK_NODES=%d: at most 5", c.Nodes))
	}
	if s := strings.TrimSpace(get("SOAK_MIX")); s != "" {
		parts := strings.Split(s, ",")
		total := 0
		if len(parts) != 3 {
			errs = append(errs, fmt.Sprintf("SOAK_MIX=%q: want three percentages: default,polling,websocket", s))
		} else {
			for i, p := range parts {
				n, err := strconv.Atoi(strings.TrimSpace(p))
				if err != nil || n < 0 {
					errs = append(errs, fmt.Sprintf("SOAK_MIX=%q: %q is not a percentage", s, p))
				}
				c.Mix[i] = n
				total += n
			}
			if total != 100 {
				errs = append(errs, fmt.Sprintf("SOAK_MIX=%q: the shares add up to %d, want 100", s, total))
			}
		}
	}
	if s := strings.TrimSpace(get("SOAK_RESTART")); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			errs = append(errs, fmt.Sprintf("SOAK_RESTART=%q: want 0 or 1", s))
		}
		c.Restart = b
	}
	if s := strings.TrimSpace(get("SOAK_KILL")); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			errs = append(errs, fmt.Sprintf("SOAK_KILL=%q: want 0 or 1", s))
		}
		c.Kill = b
	}
	if s := strings.TrimSpace(get("SOAK_OUT")); s != "" {
		c.Out = s
	}
	if s := strings.TrimSpace(get("SOAK_SEED")); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Sprintf("SOAK_SEED=%q: want a number", s))
		}
		c.Seed = n
	}
	if c.Clients > 6000 {
		// Each client holds up to three descriptors in this process (its
		// proxy's listener and both ends of a connection), and more while
		// reconnecting: stay well under the 19,500 a process may open.
		errs = append(errs, fmt.Sprintf("SOAK_CLIENTS=%d: at most 6000 on one machine", c.Clients))
	}
	// The end leaves every fault time to be noticed and repaired: the
	// longest stall (1.5 heartbeats), its noticing (one more) and the
	// client's back-off.
	c.Quiet = max(c.heartbeat()*5/2+10*time.Second, 25*time.Second)
	dur("SOAK_QUIET", &c.Quiet)
	if len(errs) > 0 {
		return c, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return c, nil
}

// heartbeat is how long a client may take to notice a silent connection.
func (c config) heartbeat() time.Duration { return c.PingInterval + c.PingTimeout }

// org returns the organization of client i.
func (c config) org(i int) string { return fmt.Sprintf("org-%d", i%c.Orgs+1) }

// mode returns the transport mode of client i: the mix spread evenly over
// the population and over each organization's clients.
func (c config) mode(i int) string {
	p := (i*37 + (i/c.Orgs)*53) % 100 // visits every percentage, in the population and in an organization
	switch {
	case p < c.Mix[0]:
		return "default"
	case p < c.Mix[0]+c.Mix[1]:
		return "polling"
	default:
		return "websocket"
	}
}
