package redisadapter

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
)

// This file is the streams mode's history: reading the log on request
// (socketio.RecoveryLog.History, in streamlog.go), and, with socketio.RecoveryOptions.HistoryRooms
// (an extension of ours; Node's adapter has nothing like it), histories of
// their own for selected rooms, so that a busy room cannot trim a quiet
// one's events out of reach.
//
// With room histories, each broadcast is still appended to the namespace's
// stream exactly as @socket.io/redis-streams-adapter does (the live path,
// which Node servers read), and also, by the same Lua script, so that
// their order is the stream's, to the history streams, under the same
// entry id:
//
//   - <stream>#history#<nsp>#room#<room> for each target room when every
//     target room is selected (at most HistorySize entries, none older than
//     HistoryTTL, the key expiring HistoryTTL after its last entry; exact
//     trims, unlike the namespace stream's "~": these streams are small,
//     and their bounds are promises);
//   - <stream>#history#<nsp>#direct for a direct emit (Socket.Emit), with
//     the namespace stream's MAXLEN and the recovery window;
//   - <stream>#history#<nsp>#shared for any other (to every socket, to
//     other rooms), with MaxLen and HistoryTTL.
//
// Recovery and history requests then read those instead of the namespace
// stream, in one script (a consistent cut across them), and check that
// none of them dropped an entry after the offset (each has a companion
// key with the newest id trimmed from it). Node servers do
// not write the history streams: in a mixed cluster, keep room histories
// off.

// streamHistory configures the room histories of a streams adapter.
type streamHistory struct {
	room   func(string) bool
	size   int64
	ttl    time.Duration
	window time.Duration
	base   string // <stream>#history#<nsp>
}

func (h *streamHistory) roomKey(room string) string { return h.base + "#room#" + room }
func (h *streamHistory) sharedKey() string          { return h.base + "#shared" }
func (h *streamHistory) directKey() string          { return h.base + "#direct" }

// epochKey holds the id of the first entry the histories received since
// Redis last had none (set once, never expiring): a history key that is
// missing can be one that expired without news, or one Redis lost
// (FLUSHALL, a restart without persistence); an offset older than the
// epoch, or no epoch at all, tells the second case.
func (h *streamHistory) epochKey() string { return h.base + "#epoch" }

// historySink is a history stream an entry is also appended to, with its
// bounds.
type historySink struct {
	key    string
	maxLen int64
	ttl    time.Duration
}

// sinks returns the history streams of a broadcast.
func (a *streamsAdapter) sinks(opts *socketio.BroadcastOptions) []historySink {
	h := a.history
	if h == nil || opts.Flags.Volatile {
		return nil
	}
	if opts.Direct {
		return []historySink{{h.directKey(), a.c.cfg.MaxLen, h.window}}
	}
	rooms := uniq(opts.Rooms)
	if len(rooms) == 0 || slices.ContainsFunc(rooms, func(r string) bool { return !h.room(r) }) {
		return []historySink{{h.sharedKey(), a.c.cfg.MaxLen, h.ttl}}
	}
	out := make([]historySink, len(rooms))
	for i, r := range rooms {
		out[i] = historySink{h.roomKey(r), h.size, h.ttl}
	}
	return out
}

// addScript appends an entry to the namespace stream as Node's adapter
// does, then, under the same id, to each history stream, trimmed by count
// and age (exactly) and kept alive for its ttl. Each history stream has a
// companion key, <key>#dropped, holding the id of the newest entry trimmed
// from it (Redis 7.0's max-deleted-entry-id counts XDEL, not trims): a
// reader whose offset is older knows that it missed something. KEYS[1] is
// the namespace stream, KEYS[2] the epoch key (epochKey), then per history
// stream its key and its companion's, and last the append's key (as in
// appendScript: a repeated attempt answers the first one's id and tag); ARGV[1..5]
// the stream's MAXLEN, uid, nsp, type and data; then per history stream its
// MAXLEN, MINID and ttl (ms); last how long the append's key is kept (ms)
// and the append's tag ("": none). A history stream
// that refuses the id (its newest entry is newer: written by hand) is
// skipped rather than failing the broadcast, which the namespace stream
// already holds.
var addScript = rueidis.NewLuaScript(`
local prev = redis.call('GET', KEYS[#KEYS])
if prev then return prev end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'uid', ARGV[2], 'nsp', ARGV[3], 'type', ARGV[4], 'data', ARGV[5])
local v = id
if ARGV[#ARGV] ~= '' then v = id .. ' ' .. ARGV[#ARGV] end
redis.call('SET', KEYS[#KEYS], v, 'PX', ARGV[#ARGV - 1])
redis.call('SET', KEYS[2], id, 'NX')
for i = 0, (#KEYS - 5) / 2 do
  local k, dk = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local a = 6 + i * 3
  local ok = pcall(redis.call, 'XADD', k, id, 'uid', ARGV[2], 'nsp', ARGV[3], 'type', ARGV[4], 'data', ARGV[5])
  if ok then
    local dropped = false
    local old = redis.call('XREVRANGE', k, '(' .. ARGV[a + 1], '-', 'COUNT', 1)
    if #old > 0 then
      dropped = old[1][1]
      redis.call('XTRIM', k, 'MINID', ARGV[a + 1])
    end
    local n = redis.call('XLEN', k) - tonumber(ARGV[a])
    if n > 0 then
      old = redis.call('XRANGE', k, '-', '+', 'COUNT', n)
      dropped = old[#old][1]
      redis.call('XTRIM', k, 'MAXLEN', ARGV[a])
    end
    redis.call('PEXPIRE', k, ARGV[a + 2])
    if dropped then
      redis.call('SET', dk, dropped, 'PX', ARGV[a + 2])
    else
      redis.call('PEXPIRE', dk, ARGV[a + 2])
    end
  end
end
return v
`)

// addWithHistory runs addScript, appending at most once per key (see
// appendScript), which is kept for keep (ms) with tag.
func (a *streamsAdapter) addWithHistory(ctx context.Context, cl rueidis.Client, typ int, data []byte, key, keep, tag string, sinks []historySink) (string, error) {
	keys := make([]string, 0, 3+2*len(sinks))
	keys = append(keys, a.stream, a.history.epochKey())
	args := make([]string, 0, 5+3*len(sinks))
	args = append(args, a.c.maxLen, a.uid, a.host.Name(), typeString(typ), rueidis.BinaryString(data))
	now := time.Now()
	for _, s := range sinks {
		keys = append(keys, s.key, droppedKey(s.key))
		args = append(args, strconv.FormatInt(s.maxLen, 10),
			strconv.FormatInt(now.Add(-s.ttl).UnixMilli(), 10),
			strconv.FormatInt(max(s.ttl.Milliseconds(), 1), 10))
	}
	keys, args = append(keys, key), append(args, keep, tag)
	return addScript.Exec(ctx, cl, keys, args).ToString()
}

// droppedKey is the companion key of a history stream (see addScript).
func droppedKey(stream string) string { return stream + "#dropped" }

// readScript reads history streams in one consistent cut: the epoch (KEYS[1],
// "" when missing), then for each pair of keys (a stream and its
// companion) {exists, the newest id trimmed or "", the entries after
// ARGV[1] ("-": from the oldest), at most ARGV[2]}.
var readScript = rueidis.NewLuaScript(`
local out = {redis.call('GET', KEYS[1]) or ''}
for i = 0, (#KEYS - 1) / 2 - 1 do
  local k = KEYS[2 + 2 * i]
  if redis.call('EXISTS', k) == 0 then
    out[i + 2] = {0, '', {}}
  else
    local dropped = redis.call('GET', KEYS[3 + 2 * i]) or ''
    local start = ARGV[1]
    if start ~= '-' then start = '(' .. start end
    out[i + 2] = {1, dropped, redis.call('XRANGE', k, start, '+', 'COUNT', ARGV[2])}
  end
end
return out
`)

// historySource is a history stream read for a reader.
type historySource struct {
	key string
	ttl time.Duration
}

// sources returns the history streams a reader in rooms reads: for a
// recovery the direct emits' too.
func (h *streamHistory) sources(rooms []string, recovery bool) []historySource {
	out := []historySource{{h.sharedKey(), h.ttl}}
	if recovery {
		out = append(out, historySource{h.directKey(), h.window})
	}
	for i, r := range rooms {
		if h.room(r) && !slices.Contains(rooms[:i], r) {
			out = append(out, historySource{h.roomKey(r), h.ttl})
		}
	}
	return out
}

// histEntry is an entry read from a history stream.
type histEntry struct {
	e  rediswire.StreamEntry
	id rediswire.StreamID
}

// entry parses one entry of an XRANGE answer with its id; an entry that
// does not parse is counted as a decode error and skipped (ok false).
func (a *streamsAdapter) entry(m *rueidis.RedisMessage) (h histEntry, ok bool) {
	e, err := parseEntry(m)
	if err != nil {
		a.c.stats.decodeErrors.Add(1)
		return histEntry{}, false
	}
	id, ok := rediswire.ParseStreamID(e.ID)
	return histEntry{e, id}, ok
}

// readHistory reads the entries after since (zero and !hasSince: from the
// oldest) of the sources, in id order and once each, at most count per
// source. It fails with socketio.ErrHistoryGap when a source dropped an
// entry after since. scanned is the id up to which the result is
// complete when a source had more than count entries (zero otherwise).
func (a *streamsAdapter) readHistory(ctx context.Context, since rediswire.StreamID, hasSince bool, sources []historySource, count int) (out []histEntry, scanned rediswire.StreamID, truncated bool, err error) {
	cl, err := a.c.redis()
	if err != nil {
		return nil, rediswire.StreamID{}, false, err
	}
	keys := make([]string, 0, 1+2*len(sources))
	keys = append(keys, a.history.epochKey())
	for _, s := range sources {
		keys = append(keys, s.key, droppedKey(s.key))
	}
	start := "-"
	if hasSince {
		start = since.String()
	}
	res, err := readScript.Exec(ctx, cl, keys, []string{start, strconv.Itoa(count)}).ToArray()
	if err != nil {
		return nil, rediswire.StreamID{}, false, err
	}
	if len(res) != 1+len(sources) {
		return nil, rediswire.StreamID{}, false, fmt.Errorf("%w: history read answered %d values for %d streams", rediswire.ErrMalformed, len(res), len(sources))
	}
	if hasSince {
		// No epoch, or one after since: Redis lost what the histories held
		// at since (or they began after it).
		raw, _ := res[0].ToString()
		epoch, ok := rediswire.ParseStreamID(raw)
		if !ok || since.Less(epoch) {
			return nil, rediswire.StreamID{}, false, socketio.ErrHistoryGap
		}
	}
	res = res[1:]
	now := time.Now()
	var cut rediswire.StreamID
	for i := range res {
		key := sources[i].key
		part, err := res[i].ToArray()
		if err != nil || len(part) != 3 {
			return nil, rediswire.StreamID{}, false, fmt.Errorf("%w: history read of %s", rediswire.ErrMalformed, key)
		}
		exists, _ := part[0].AsInt64()
		dropped, _ := part[1].ToString()
		if hasSince && !covers(since, exists == 1, dropped, sources[i].ttl, now) {
			return nil, rediswire.StreamID{}, false, socketio.ErrHistoryGap
		}
		list, err := part[2].ToArray()
		if err != nil {
			return nil, rediswire.StreamID{}, false, fmt.Errorf("%w: history entries of %s", rediswire.ErrMalformed, key)
		}
		var last rediswire.StreamID
		for j := range list {
			h, ok := a.entry(&list[j])
			if !ok {
				continue
			}
			last = h.id
			out = append(out, h)
		}
		if len(list) >= count && (!truncated || last.Less(cut)) {
			cut, truncated = last, true
		}
	}
	slices.SortFunc(out, func(x, y histEntry) int {
		switch {
		case x.id.Less(y.id):
			return -1
		case y.id.Less(x.id):
			return 1
		}
		return 0
	})
	out = slices.CompactFunc(out, func(x, y histEntry) bool { return x.id == y.id })
	if truncated {
		n := 0
		for n < len(out) && !cut.Less(out[n].id) {
			n++
		}
		out = out[:n]
	}
	return out, cut, truncated, nil
}

// covers reports whether a history stream holds every entry it received
// after since: it dropped none after since (its newest trimmed entry,
// dropped, is not after since), or, gone (expired), it got no entry
// since: since is younger than its ttl, which each entry renews.
func covers(since rediswire.StreamID, exists bool, dropped string, ttl time.Duration, now time.Time) bool {
	if !exists {
		return int64(since.Ms) > now.Add(-ttl).UnixMilli()
	}
	if dropped == "" {
		return true
	}
	id, ok := rediswire.ParseStreamID(dropped)
	return ok && !since.Less(id)
}

// historyScan is the entries one read takes per stream.
func (a *streamsAdapter) historyScan() int { return socketio.MaxHistoryScan }

// readStream reads the namespace stream after since (which must still be
// in it), at most count entries.
func (a *streamsAdapter) readStream(ctx context.Context, since rediswire.StreamID, hasSince bool, count int) ([]histEntry, rediswire.StreamID, bool, error) {
	cl, err := a.c.redis()
	if err != nil {
		return nil, rediswire.StreamID{}, false, err
	}
	start := "-"
	if hasSince {
		start = since.String()
	}
	list, err := cl.Do(ctx, cl.B().Xrange().Key(a.stream).Start(start).End("+").Count(int64(count)+1).Build()).ToArray()
	if err != nil {
		return nil, rediswire.StreamID{}, false, err
	}
	out := make([]histEntry, 0, len(list))
	for i := range list {
		h, ok := a.entry(&list[i])
		if !ok {
			continue
		}
		if hasSince && i == 0 {
			if h.id != since {
				return nil, rediswire.StreamID{}, false, socketio.ErrHistoryGap
			}
			continue
		}
		out = append(out, h)
	}
	if hasSince && len(list) == 0 {
		return nil, rediswire.StreamID{}, false, socketio.ErrHistoryGap
	}
	if len(out) > count {
		out = out[:count]
		return out, out[count-1].id, true, nil
	}
	return out, rediswire.StreamID{}, false, nil
}
