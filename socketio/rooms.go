package socketio

import (
	"hash/maphash"
	"sync"
)

// roomShardCount spreads rooms over independent locks, so that broadcasts
// and joins in different rooms do not contend (centrifuge uses 64 too).
const roomShardCount = 64

// roomIndex maps room names to their local members. A socket's own id room
// is not stored: it is resolved through the namespace's socket registry.
type roomIndex struct {
	seed   maphash.Seed
	shards [roomShardCount]roomShard
}

type roomShard struct {
	mu    sync.RWMutex
	rooms map[string]roomMembers
	_     [40]byte // keep shards on separate cache lines
}

// roomMembers holds a room's sockets. Most rooms of the gateway (one per
// user) have a single member, kept without a map of its own.
type roomMembers struct {
	one  *Socket
	many map[*Socket]struct{}
}

func newRoomIndex() *roomIndex {
	ri := &roomIndex{seed: maphash.MakeSeed()}
	for i := range ri.shards {
		ri.shards[i].rooms = make(map[string]roomMembers)
	}
	return ri
}

func (ri *roomIndex) shard(room string) *roomShard {
	return &ri.shards[maphash.String(ri.seed, room)%roomShardCount]
}

// add adds s to room and reports whether the room was created.
func (ri *roomIndex) add(room string, s *Socket) bool {
	sh := ri.shard(room)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	m, ok := sh.rooms[room]
	switch {
	case !ok:
		sh.rooms[room] = roomMembers{one: s}
		return true
	case m.many != nil:
		m.many[s] = struct{}{}
	case m.one != s:
		sh.rooms[room] = roomMembers{many: map[*Socket]struct{}{m.one: {}, s: {}}}
	}
	return false
}

// remove removes s from room and reports whether the room was deleted.
func (ri *roomIndex) remove(room string, s *Socket) bool {
	sh := ri.shard(room)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	m, ok := sh.rooms[room]
	if !ok {
		return false
	}
	if m.many == nil {
		if m.one != s {
			return false
		}
		delete(sh.rooms, room)
		return true
	}
	delete(m.many, s)
	if len(m.many) == 0 {
		delete(sh.rooms, room)
		return true
	}
	return false
}

// appendMembers appends room's members to dst. The shard's read lock is
// held only while copying pointers.
func (ri *roomIndex) appendMembers(dst []*Socket, room string) []*Socket {
	sh := ri.shard(room)
	sh.mu.RLock()
	m := sh.rooms[room]
	if m.one != nil {
		dst = append(dst, m.one)
	}
	for s := range m.many {
		dst = append(dst, s)
	}
	sh.mu.RUnlock()
	return dst
}

func (ri *roomIndex) size(room string) int {
	sh := ri.shard(room)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	m, ok := sh.rooms[room]
	switch {
	case !ok:
		return 0
	case m.many == nil:
		return 1
	}
	return len(m.many)
}

// names returns every room that has members.
func (ri *roomIndex) names() []string {
	var out []string
	for i := range ri.shards {
		sh := &ri.shards[i]
		sh.mu.RLock()
		for r := range sh.rooms {
			out = append(out, r)
		}
		sh.mu.RUnlock()
	}
	return out
}

// socketShardCount shards the id → socket registry of a namespace.
const socketShardCount = 16

type socketRegistry struct {
	seed   maphash.Seed
	shards [socketShardCount]socketShard
}

type socketShard struct {
	mu sync.RWMutex
	m  map[string]*Socket
	_  [40]byte
}

func newSocketRegistry() *socketRegistry {
	r := &socketRegistry{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].m = make(map[string]*Socket)
	}
	return r
}

func (r *socketRegistry) shard(id string) *socketShard {
	return &r.shards[maphash.String(r.seed, id)%socketShardCount]
}

func (r *socketRegistry) add(s *Socket) {
	sh := r.shard(s.id)
	sh.mu.Lock()
	sh.m[s.id] = s
	sh.mu.Unlock()
}

// remove forgets s, unless another socket took its id since (a recovered
// socket replacing a stale one); it reports whether s was removed.
func (r *socketRegistry) remove(s *Socket) bool {
	sh := r.shard(s.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[s.id] != s {
		return false
	}
	delete(sh.m, s.id)
	return true
}

func (r *socketRegistry) get(id string) *Socket {
	sh := r.shard(id)
	sh.mu.RLock()
	s := sh.m[id]
	sh.mu.RUnlock()
	return s
}

func (r *socketRegistry) appendAll(dst []*Socket) []*Socket {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		for _, s := range sh.m {
			dst = append(dst, s)
		}
		sh.mu.RUnlock()
	}
	return dst
}

func (r *socketRegistry) count() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
