package presence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/apiclient"
)

// Defaults applied by New for zero-valued Config fields.
const (
	DefaultTTL       = 30 * time.Second
	DefaultGrace     = 5 * time.Second
	DefaultKeyPrefix = "realtime:presence:"
)

// syncTimeout bounds one round of writes to Redis.
const syncTimeout = 5 * time.Second

// Config configures a Tracker.
type Config struct {
	// Redis returns the client of the cluster's Redis (or an error while
	// it is unreachable). Nil: presence is this process's own.
	Redis func() (rueidis.Client, error)
	// KeyPrefix prefixes the Redis keys. Zero means DefaultKeyPrefix; the
	// nodes of one cluster must share it.
	KeyPrefix string
	// Node names this node in Redis; it must be unique in the cluster.
	// Zero means "<hostname>#<pid>#<random>".
	Node string
	// TTL is how long after its last heartbeat a node's connections still
	// count: a crashed node's users disappear within it. Nodes renew every
	// TTL/3. Zero means DefaultTTL (30 s); at least 300 ms.
	TTL time.Duration
	// Grace is how long a user whose last connection dropped stays present
	// (a reconnection within it changes nothing). Zero means DefaultGrace
	// (5 s); negative means none.
	Grace time.Duration
	// OnChange receives each change of presence (gateway.EventPresenceJoined
	// or gateway.EventPresenceLeft), once for the whole cluster, on the
	// tracker's goroutine, in the order they were seen. It may block
	// briefly (a broadcast): changes wait meanwhile.
	OnChange func(gateway.PresenceChange)
	// Logger receives Redis errors (at most one line per failing round).
	// Nil means slog.Default().
	Logger *slog.Logger
}

// key names a user of an organization.
type key struct{ org, user string }

// entry is a user's presence on this node: one per connected user, so it
// is kept to 24 bytes.
type entry struct {
	conns int32
	// Memory mode: reported is set once the user was reported present
	// (joined); gone once its grace is over, until the worker reports it
	// left and deletes the entry. (A map of the users reported present
	// beside this one cost ~80 bytes per user.)
	reported, gone bool
	since          int64       // Unix milliseconds of its first connection of the current presence
	timer          *time.Timer // the grace timer, while conns == 0
}

// Tracker keeps the presence of a gateway's organizations. Create it with
// New, stop it with Close.
type Tracker struct {
	// Static after construction.
	cfg   Config
	node  string
	beat  time.Duration
	keys  keys
	log   *slog.Logger
	redis func() (rueidis.Client, error)

	mu    sync.Mutex
	orgs  map[string]map[string]*entry // org → user → entry
	dirty map[key]struct{}             // changed since the worker last wrote them
	wake  chan struct{}

	// Only the worker goroutine uses these.
	registered bool      // Redis mode: this node's counts are in Redis
	lastBeat   time.Time // Redis mode: the last heartbeat

	reads readBatcher // Redis mode: one read of an organization at a time

	stats struct {
		joined, left, syncErrors, nodesRemoved atomic.Int64
	}

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

var _ gateway.Observer = (*Tracker)(nil)

// New starts a Tracker.
func New(cfg Config) (*Tracker, error) {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < 300*time.Millisecond {
		return nil, fmt.Errorf("presence: TTL %s is too short (at least 300ms)", cfg.TTL)
	}
	switch {
	case cfg.Grace == 0:
		cfg.Grace = DefaultGrace
	case cfg.Grace < 0:
		cfg.Grace = 0
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.Node == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.Node = host + "#" + strconv.Itoa(os.Getpid()) + "#" + hex.EncodeToString(b[:])
	}
	t := &Tracker{
		cfg:   cfg,
		node:  cfg.Node,
		beat:  cfg.TTL / 3,
		keys:  keys{prefix: cfg.KeyPrefix},
		log:   cfg.Logger,
		redis: cfg.Redis,
		orgs:  make(map[string]map[string]*entry),
		dirty: make(map[key]struct{}),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	go t.run()
	return t, nil
}

// Node returns the name of this node in Redis.
func (t *Tracker) Node() string { return t.node }

// Connected implements gateway.Observer.
func (t *Tracker) Connected(c gateway.Connection) {
	t.mu.Lock()
	users := t.orgs[c.OrganizationID]
	if users == nil {
		users = make(map[string]*entry)
		t.orgs[c.OrganizationID] = users
	}
	e := users[c.UserID]
	switch {
	case e == nil:
		e = &entry{since: time.Now().UnixMilli()}
		users[c.UserID] = e
	case e.gone: // back before its left was reported: a new presence
		e.gone, e.since = false, time.Now().UnixMilli()
	}
	e.conns++
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	t.markLocked(key{c.OrganizationID, c.UserID})
	t.mu.Unlock()
}

// Disconnected implements gateway.Observer.
func (t *Tracker) Disconnected(c gateway.Connection, _ string) {
	k := key{c.OrganizationID, c.UserID}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.orgs[k.org][k.user]
	if e == nil || e.conns == 0 {
		return // not counted (cannot happen: the gateway pairs the calls)
	}
	e.conns--
	if e.conns == 0 {
		if t.cfg.Grace == 0 {
			t.removeLocked(k)
		} else {
			e.timer = time.AfterFunc(t.cfg.Grace, func() { t.graceOver(k, e) })
		}
	}
	t.markLocked(k)
}

// graceOver removes a user whose last connection dropped Grace ago, unless
// it came back.
func (t *Tracker) graceOver(k key, e *entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.orgs[k.org][k.user] != e || e.conns > 0 || e.gone {
		return
	}
	t.removeLocked(k)
	t.markLocked(k)
}

// removeLocked ends a user's presence on this node. A user reported present
// (memory mode) stays as gone until the worker has reported it left.
func (t *Tracker) removeLocked(k key) {
	users := t.orgs[k.org]
	if e := users[k.user]; e != nil && e.reported {
		e.gone = true
		return
	}
	t.deleteLocked(k)
}

func (t *Tracker) deleteLocked(k key) {
	users := t.orgs[k.org]
	delete(users, k.user)
	if len(users) == 0 {
		delete(t.orgs, k.org)
	}
}

func (t *Tracker) markLocked(k key) {
	t.dirty[k] = struct{}{}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Presence returns the presence of an organization: across the cluster
// with Redis (an error when it cannot be read), else this process's.
func (t *Tracker) Presence(ctx context.Context, org string) (apiclient.Presence, error) {
	out := apiclient.Presence{OrganizationID: org, Users: []apiclient.PresenceUser{}}
	if t.redis == nil {
		t.mu.Lock()
		for user, e := range t.orgs[org] {
			if !e.gone {
				out.Users = append(out.Users, apiclient.PresenceUser{UserID: user, Connections: int(e.conns), Since: jsTime(e.since)})
			}
		}
		t.mu.Unlock()
	} else {
		users, err := t.reads.read(ctx, org, t.readOrg)
		if err != nil {
			return apiclient.Presence{}, fmt.Errorf("presence of %s: %w", org, err)
		}
		out.Users = t.withLocal(org, users)
	}
	slices.SortFunc(out.Users, func(a, b apiclient.PresenceUser) int {
		if a.UserID < b.UserID {
			return -1
		}
		if a.UserID > b.UserID {
			return 1
		}
		return 0
	})
	return out, nil
}

// withLocal adds to users, read from Redis, the users of org connected to
// this node that the read did not list: the worker writes changes a moment
// after they happen, and a client asking right after it connected must
// still find itself. Users the read lists keep the cluster's counts.
func (t *Tracker) withLocal(org string, users []apiclient.PresenceUser) []apiclient.PresenceUser {
	t.mu.Lock()
	defer t.mu.Unlock()
	local := t.orgs[org]
	if len(local) == 0 {
		return users
	}
	listed := make(map[string]bool, len(users))
	for _, u := range users {
		listed[u.UserID] = true
	}
	for user, e := range local {
		if !listed[user] {
			users = append(users, apiclient.PresenceUser{UserID: user, Connections: int(e.conns), Since: jsTime(e.since)})
		}
	}
	return users
}

// Stats are a tracker's counters.
type Stats struct {
	// Joined and Left count the changes this node reported.
	Joined, Left int64
	// SyncErrors counts rounds of Redis writes that failed (retried).
	SyncErrors int64
	// NodesRemoved counts dead nodes whose counts this node removed.
	NodesRemoved int64
}

// Stats returns the tracker's counters.
func (t *Tracker) Stats() Stats {
	return Stats{
		Joined:       t.stats.joined.Load(),
		Left:         t.stats.left.Load(),
		SyncErrors:   t.stats.syncErrors.Load(),
		NodesRemoved: t.stats.nodesRemoved.Load(),
	}
}

// Close stops the tracker. With Redis, this node's counts then stay for
// Grace only (its clients reconnect elsewhere meanwhile, without a
// presence:left), after which another node removes them and reports who
// left. Call it after the gateway has shut down.
func (t *Tracker) Close() {
	t.once.Do(func() {
		t.cancel()
		<-t.done
		t.mu.Lock()
		for _, users := range t.orgs {
			for _, e := range users {
				if e.timer != nil {
					e.timer.Stop()
				}
			}
		}
		t.mu.Unlock()
		if t.redis == nil || !t.registered {
			return
		}
		// The last counts (the disconnections of a shutdown), then a
		// shorter life.
		ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
		defer cancel()
		if err := t.roundRedis(ctx, &t.lastBeat); err != nil {
			t.log.Warn("presence: writing the last counts", "node", t.node, "error", err)
		}
		cl, err := t.redis()
		if err != nil {
			return
		}
		if err := leaveScript.Exec(ctx, cl, []string{t.keys.nodes()}, []string{t.node, ms(t.cfg.Grace)}).Error(); err != nil {
			t.log.Warn("presence: leaving the cluster", "node", t.node, "error", err)
		}
	})
}

// abandon stops the tracker as a crash would: nothing more is written to
// Redis (tests).
func (t *Tracker) abandon() {
	t.once.Do(func() {
		t.cancel()
		<-t.done
	})
}

// run is the tracker's goroutine: it writes the changed counts, beats,
// removes dead nodes, and reports changes.
func (t *Tracker) run() {
	defer close(t.done)
	tick := time.NewTicker(t.beat)
	defer tick.Stop()
	var (
		retry   time.Duration // while Redis fails
		retryAt time.Time
		failing bool
	)
	for {
		if t.redis == nil {
			t.flushMemory()
		} else if time.Now().After(retryAt) {
			err := t.roundRedis(t.ctx, &t.lastBeat)
			switch {
			case err == nil:
				if failing {
					t.log.Info("presence: Redis reachable again", "node", t.node)
				}
				retry, failing = 0, false
			default:
				t.stats.syncErrors.Add(1)
				if !failing {
					level := slog.LevelWarn
					if !t.registered {
						level = slog.LevelInfo // starting: the cluster is still connecting
					}
					t.log.Log(t.ctx, level, "presence: writing to Redis", "node", t.node, "error", err)
				}
				failing = true
				retry = min(max(2*retry, 100*time.Millisecond), t.beat)
				retryAt = time.Now().Add(retry)
			}
		}
		var again <-chan time.Time
		if failing {
			again = time.After(time.Until(retryAt))
		}
		select {
		case <-t.ctx.Done():
			return
		case <-t.wake:
		case <-tick.C:
		case <-again:
		}
	}
}

// takeDirty returns the users changed since the last call.
func (t *Tracker) takeDirty() []key {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.dirty) == 0 {
		return nil
	}
	out := make([]key, 0, len(t.dirty))
	for k := range t.dirty {
		out = append(out, k)
	}
	clear(t.dirty)
	return out
}

// restoreDirty marks users again after a failed write.
func (t *Tracker) restoreDirty(ks []key) {
	t.mu.Lock()
	for _, k := range ks {
		t.dirty[k] = struct{}{}
	}
	t.mu.Unlock()
}

// flushMemory reports the changes of a process-local presence: a user is
// present while this node has an entry for it that is not gone.
func (t *Tracker) flushMemory() {
	for _, k := range t.takeDirty() {
		var event string
		t.mu.Lock()
		switch e := t.orgs[k.org][k.user]; {
		case e == nil:
		case e.gone:
			t.deleteLocked(k)
			event = gateway.EventPresenceLeft
		case !e.reported:
			e.reported = true
			event = gateway.EventPresenceJoined
		}
		t.mu.Unlock()
		if event != "" {
			t.report(event, k)
		}
	}
}

func (t *Tracker) report(event string, k key) {
	if event == gateway.EventPresenceJoined {
		t.stats.joined.Add(1)
	} else {
		t.stats.left.Add(1)
	}
	if t.cfg.OnChange != nil {
		t.cfg.OnChange(gateway.PresenceChange{Event: event, OrganizationID: k.org, UserID: k.user, At: time.Now()})
	}
}

// markAllLocked marks every local user, to write them all again.
func (t *Tracker) markAllLocked() {
	for org, users := range t.orgs {
		for user := range users {
			t.dirty[key{org, user}] = struct{}{}
		}
	}
}

// jsTime formats Unix milliseconds like JavaScript's toISOString.
func jsTime(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }

// ms renders a duration in milliseconds.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
