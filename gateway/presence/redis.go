package presence

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/apiclient"
)

// keys names the Redis keys of presence.
type keys struct{ prefix string }

// nodes is the sorted set of nodes, scored with the Redis time (ms) until
// which each is alive.
func (k keys) nodes() string { return k.prefix + "nodes" }

// org is an organization's hash: user → {"<node>": [connections, sinceMs]}.
func (k keys) org(org string) string { return k.prefix + "org:" + org }

// nodeOrgs is the set of organizations a node wrote to, for its cleanup.
func (k keys) nodeOrgs(node string) string { return k.prefix + "node:" + node }

// luaNow is Redis's time in milliseconds, in every script: the nodes'
// clocks never matter.
const luaNow = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// heartbeatScript renews a node: KEYS[1] nodes; ARGV node, ttl (ms). It
// returns 1 when the node was alive, 0 when it was unknown or already dead
// (its counts may have been removed: the node writes them all again).
var heartbeatScript = rueidis.NewLuaScript(luaNow + `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
local known = 0
if s and tonumber(s) > now then known = 1 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return known
`)

// leaveScript shortens a node's life to ARGV[2] ms from now (a clean
// shutdown: its counts stay for the grace period).
var leaveScript = rueidis.NewLuaScript(luaNow + `
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return 1
`)

// syncScript writes one user's count on one node. KEYS[1] the org hash,
// KEYS[2] nodes, KEYS[3] the node's org set; ARGV user, node, connections
// (-1: the user is gone from the node), since (ms), org. It returns
// {before, after}: the nodes the user was present on before (dead nodes
// not yet removed included, so that their removal and a reconnection
// elsewhere do not both count) and after (live nodes only; the dead
// nodes' entries are dropped here). Exactly one node sees 0 → n (joined)
// and n → 0 (left).
//
// A node that is not in the set of nodes (removed as dead) writes nothing
// and gets {-1, -1}: it must renew (and write everything again) first, so
// that no entry outlives the removal of its node.
var syncScript = rueidis.NewLuaScript(luaNow + `
if not redis.call('ZSCORE', KEYS[2], ARGV[2]) then return {-1, -1} end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local m = {}
if raw then m = cjson.decode(raw) end
local before, after, out = 0, 0, {}
for n, v in pairs(m) do
  before = before + 1
  if n ~= ARGV[2] then
    local s = redis.call('ZSCORE', KEYS[2], n)
    if s and tonumber(s) > now then out[n] = v; after = after + 1 end
  end
end
local c = tonumber(ARGV[3])
if c >= 0 then
  out[ARGV[2]] = {c, tonumber(ARGV[4])}
  after = after + 1
  redis.call('SADD', KEYS[3], ARGV[5])
end
if after == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(out))
end
return {before, after}
`)

// cleanupScript removes up to ARGV[2] dead nodes: KEYS[1] nodes; ARGV[1]
// the key prefix. It returns {removed nodes, org, user, org, user, ...}:
// the users who were present on those nodes only. Keys other than
// KEYS[1] are derived from the prefix: presence needs one Redis endpoint,
// not a Redis Cluster.
var cleanupScript = rueidis.NewLuaScript(luaNow + `
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local res = {tostring(#dead)}
for _, node in ipairs(dead) do
  local setKey = ARGV[1] .. 'node:' .. node
  for _, org in ipairs(redis.call('SMEMBERS', setKey)) do
    local hk = ARGV[1] .. 'org:' .. org
    local all = redis.call('HGETALL', hk)
    for i = 1, #all, 2 do
      local m = cjson.decode(all[i + 1])
      if m[node] ~= nil then
        m[node] = nil
        if next(m) == nil then
          redis.call('HDEL', hk, all[i])
          table.insert(res, org)
          table.insert(res, all[i])
        else
          redis.call('HSET', hk, all[i], cjson.encode(m))
        end
      end
    end
  end
  redis.call('DEL', setKey)
  redis.call('ZREM', KEYS[1], node)
end
return res
`)

// readScript returns an organization's users on live nodes: KEYS[1] the
// org hash, KEYS[2] nodes; {user, connections, sinceMs, ...}.
var readScript = rueidis.NewLuaScriptReadOnly(luaNow + `
local alive, res = {}, {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local conns, since, n = 0, nil, 0
  for node, v in pairs(cjson.decode(all[i + 1])) do
    local a = alive[node]
    if a == nil then
      local s = redis.call('ZSCORE', KEYS[2], node)
      a = (s ~= false) and tonumber(s) > now
      alive[node] = a
    end
    if a then
      n = n + 1
      conns = conns + v[1]
      if since == nil or v[2] < since then since = v[2] end
    end
  end
  if n > 0 then
    table.insert(res, all[i])
    table.insert(res, conns)
    table.insert(res, since)
  end
end
return res
`)

// maxSyncBatch bounds the users written in one round trip.
const maxSyncBatch = 512

// maxCleanup bounds the dead nodes removed by one script run.
const maxCleanup = 8

// roundRedis renews this node when due, removes dead nodes (reporting
// their users who left), and writes the users changed since the last
// round.
func (t *Tracker) roundRedis(base context.Context, lastBeat *time.Time) error {
	cl, err := t.redis()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(base, syncTimeout)
	defer cancel()
	if !t.registered || time.Since(*lastBeat) >= t.beat-t.beat/10 {
		known, err := heartbeatScript.Exec(ctx, cl, []string{t.keys.nodes()}, []string{t.node, ms(t.cfg.TTL)}).AsInt64()
		if err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		*lastBeat = time.Now()
		if known == 0 {
			// New, or declared dead meanwhile (its counts may be gone):
			// write every count again.
			t.mu.Lock()
			t.markAllLocked()
			t.mu.Unlock()
		}
		t.registered = true
		res, err := cleanupScript.Exec(ctx, cl, []string{t.keys.nodes()}, []string{t.keys.prefix, strconv.Itoa(maxCleanup)}).AsStrSlice()
		if err != nil {
			return fmt.Errorf("removing dead nodes: %w", err)
		}
		if len(res) > 0 {
			n, _ := strconv.Atoi(res[0])
			t.stats.nodesRemoved.Add(int64(n))
			for i := 1; i+1 < len(res); i += 2 {
				t.report(gateway.EventPresenceLeft, key{res[i], res[i+1]})
			}
		}
	}
	ks := t.takeDirty()
	if len(ks) > maxSyncBatch {
		t.restoreDirty(ks[maxSyncBatch:])
		ks = ks[:maxSyncBatch]
		select { // another round at once
		case t.wake <- struct{}{}:
		default:
		}
	}
	if len(ks) == 0 {
		return nil
	}
	execs := make([]rueidis.LuaExec, len(ks))
	t.mu.Lock()
	for i, k := range ks {
		conns, since := "-1", "0"
		if e := t.orgs[k.org][k.user]; e != nil {
			conns, since = strconv.Itoa(int(e.conns)), strconv.FormatInt(e.since, 10)
		}
		execs[i] = rueidis.LuaExec{
			Keys: []string{t.keys.org(k.org), t.keys.nodes(), t.keys.nodeOrgs(t.node)},
			Args: []string{k.user, t.node, conns, since, k.org},
		}
	}
	t.mu.Unlock()
	var failed, unregistered []key
	var firstErr error
	for i, r := range syncScript.ExecMulti(ctx, cl, execs...) {
		v, err := r.AsIntSlice()
		if err == nil && len(v) != 2 {
			err = fmt.Errorf("unexpected answer %v", v)
		}
		if err != nil {
			failed = append(failed, ks[i])
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if v[0] < 0 {
			unregistered = append(unregistered, ks[i])
			continue
		}
		switch before, after := v[0], v[1]; {
		case before == 0 && after > 0:
			t.report(gateway.EventPresenceJoined, ks[i])
		case before > 0 && after == 0:
			t.report(gateway.EventPresenceLeft, ks[i])
		}
	}
	if len(unregistered) > 0 {
		// Removed as dead meanwhile: renew (which writes everything again)
		// in the next round, at once.
		t.registered = false
		t.restoreDirty(unregistered)
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	if len(failed) > 0 {
		t.restoreDirty(failed)
		return fmt.Errorf("writing %d of %d users: %w", len(failed), len(ks), firstErr)
	}
	return nil
}

// readOrg reads an organization's users on live nodes.
func (t *Tracker) readOrg(ctx context.Context, org string) ([]apiclient.PresenceUser, error) {
	cl, err := t.redis()
	if err != nil {
		return nil, err
	}
	vals, err := readScript.Exec(ctx, cl, []string{t.keys.org(org), t.keys.nodes()}, nil).ToArray()
	if err != nil {
		return nil, err
	}
	users := make([]apiclient.PresenceUser, 0, len(vals)/3)
	for i := 0; i+2 < len(vals); i += 3 {
		user, err1 := vals[i].ToString()
		conns, err2 := vals[i+1].AsInt64()
		since, err3 := vals[i+2].AsInt64()
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("unexpected answer for user %d", i/3)
		}
		users = append(users, apiclient.PresenceUser{UserID: user, Connections: int(conns), Since: jsTime(since)})
	}
	return users, nil
}
