package redisadapter

import (
	"slices"
	"sync"

	"github.com/operate/realtime/socketio"
	"github.com/operate/realtime/socketio/internal/rediswire"
)

// recentLog keeps the latest replayable broadcasts of a namespace as its
// stream's reader delivered them here, so that recoveries read what they
// missed from memory instead of from the stream.
//
// Why: a replay from the stream reads every entry after the client's
// offset (all organizations' broadcasts share the namespace's stream) and
// decodes each, for each client. When a node restarts, its clients all
// recover at once on the others: N clients × the stream's tail. On a loaded
// 2-core box, 200 clients each reading 5,000 entries did not finish within
// RequestsTimeout, and every one of them came back with history:gap
// (2,000 clients × 1,000 entries likewise), where Node, which has no
// deadline, recovered them after 28 s. Served from here, a storm costs one
// filter pass per client over packets decoded once, and Redis only the
// session read.
//
// The log is contiguous: it holds every replayable broadcast of the
// namespace after its first entry (broadcasts with an ack and volatile
// ones are never replayed, so they are not kept), up to the last one the
// reader delivered. A replay from an offset that is in the log is then
// exactly the entries after it; later entries are delivered live to the
// recovering socket, which is registered, buffering, before the log is
// read (add runs before the live delivery: an entry missing from the read
// is delivered after it). An offset that is not in the log (older than
// this server, or than its first entry; or a gap in the reader) is read
// from the stream as before.
type recentLog struct {
	mu      sync.Mutex
	entries []recentEntry // in stream order
	bytes   int
	// maxEntries and maxBytes bound the log; the oldest entries go first.
	maxEntries int
	maxBytes   int
}

// recentEntry is one broadcast: its packet, as delivered (with its
// offset), and its targets.
type recentEntry struct {
	id            rediswire.StreamID
	pkt           *socketio.Packet
	hasOpts       bool
	rooms, except []string
	size          int
}

// recentMaxBytes bounds a namespace's log of recent broadcasts (their
// payloads), besides Config.MaxLen entries.
const recentMaxBytes = 32 << 20

func newRecentLog(maxEntries, maxBytes int) *recentLog {
	return &recentLog{maxEntries: max(maxEntries, 1), maxBytes: maxBytes}
}

// add appends a broadcast delivered by the reader, in stream order.
func (l *recentLog) add(id rediswire.StreamID, pkt *socketio.Packet, d *rediswire.ClusterData) {
	e := recentEntry{id: id, pkt: pkt, size: len(pkt.Data) + 64}
	for _, a := range pkt.Attachments {
		e.size += len(a)
	}
	if d.Opts != nil {
		e.hasOpts, e.rooms, e.except = true, d.Opts.Rooms, d.Opts.Except
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.entries); n > 0 && !l.entries[n-1].id.Less(id) {
		// Out of order (cannot happen with one reader): the log would no
		// longer be contiguous.
		l.resetLocked()
	}
	l.entries = append(l.entries, e)
	l.bytes += e.size
	drop := 0
	for len(l.entries)-drop > l.maxEntries || (l.bytes > l.maxBytes && len(l.entries)-drop > 1) {
		l.bytes -= l.entries[drop].size
		drop++
	}
	// Reslicing keeps the array's dropped front until the next append
	// that outgrows it, which copies only the live entries.
	l.entries = l.entries[drop:]
}

// reset forgets everything: the reader lost entries (see streamReader.gap).
func (l *recentLog) reset() {
	l.mu.Lock()
	l.resetLocked()
	l.mu.Unlock()
}

func (l *recentLog) resetLocked() {
	l.entries, l.bytes = nil, 0
}

// since returns the packets after from that a socket in rooms would have
// received, when from is in the log; ok false sends the caller to the
// stream.
func (l *recentLog) since(from rediswire.StreamID, rooms []string) (missed []*socketio.Packet, ok bool) {
	l.mu.Lock()
	i, found := slices.BinarySearchFunc(l.entries, from, func(e recentEntry, id rediswire.StreamID) int {
		switch {
		case e.id.Less(id):
			return -1
		case id.Less(e.id):
			return 1
		}
		return 0
	})
	if !found {
		l.mu.Unlock()
		return nil, false
	}
	tail := l.entries[i+1:]
	// The entries are immutable and the log only appends or makes a new
	// array: reading the tail outside the lock is safe.
	tail = tail[:len(tail):len(tail)]
	l.mu.Unlock()
	for _, e := range tail {
		if !e.hasOpts || socketio.ReplayedTo(rooms, e.rooms, e.except) {
			missed = append(missed, e.pkt)
		}
	}
	return missed, true
}
