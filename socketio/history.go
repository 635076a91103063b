package socketio

import (
	"context"
	"errors"
	"time"
)

// This file is the history API: reading the namespace's recovery log on
// request (not only when a client recovers; RecoveryLog.History), and
// learning the offset a broadcast was logged at (LoggedBroadcaster).

// Defaults of the per-room history (RecoveryOptions.HistoryRooms).
const (
	DefaultHistorySize = 1000
	DefaultHistoryTTL  = 7 * 24 * time.Hour
	// MaxHistoryScan bounds the log entries one History call examines;
	// past it the page ends early (More), and the caller goes on from
	// its Through.
	MaxHistoryScan = 10_000
)

var (
	// ErrNoHistory: the namespace's adapter keeps no log (recovery is off,
	// or a Redis Pub/Sub mode).
	ErrNoHistory = errors.New("socketio: no event history is kept")
	// ErrHistoryGap: the log no longer holds what followed the position
	// asked for (trimmed, expired, another process's or namespace's
	// offset, or Redis lost its data): what it returns would have a hole.
	ErrHistoryGap = errors.New("socketio: events after this position are no longer kept")
)

// HistoryQuery asks for the logged broadcasts after a position.
type HistoryQuery struct {
	// Since is an offset (as clients receive them); "" means from the
	// oldest packet kept.
	Since string
	// Rooms are the rooms of the reader: a packet is returned when a
	// socket in them would have received it (one of its rooms targeted,
	// or all; none excluded), as recovery replays them. Volatile packets
	// are never logged; direct emits (Socket.Emit) reach only the socket
	// id's room.
	Rooms []string
	// Limit bounds the packets returned (at least 1).
	Limit int
	// Keep, if set, further selects packets (called outside the log's
	// locks, in log order); rejected packets do not count against Limit.
	Keep func(*Packet) bool
}

// HistoryPage is the answer to a HistoryQuery.
type HistoryPage struct {
	// Packets are in log order, each with its Offset.
	Packets []*Packet
	// Through is the offset up to which the page covers the log: every
	// packet after Since and up to Through that the query selects is in
	// Packets. The next page starts from it (Since = Through).
	Through string
	// More says the page stopped at Limit (or at MaxHistoryScan) before
	// the end of the log.
	More bool
}

// History reads the namespace's log of broadcasts (see HistoryQuery); it
// fails with ErrNoHistory when the adapter keeps none.
func (n *Namespace) History(ctx context.Context, q HistoryQuery) (HistoryPage, error) {
	if n.log == nil {
		return HistoryPage{}, ErrNoHistory
	}
	if q.Limit <= 0 {
		q.Limit = 1
	}
	return n.log.History(ctx, q)
}

// EmitPacketLogged broadcasts p as EmitPacket does and returns the offset
// it was logged at, "" when it was not (no recovery log, a volatile
// packet, a Local broadcast over a shared log).
func (b BroadcastOperator) EmitPacketLogged(ctx context.Context, p *Packet) (string, error) {
	if b.opts.Flags.Local {
		return b.nsp.emitLocal(ctx, p, &b.opts)
	}
	h, ok := b.nsp.adapter.(LoggedBroadcaster)
	if !ok || b.opts.Flags.Volatile || b.nsp.log == nil {
		return "", b.nsp.adapter.Broadcast(ctx, p, &b.opts)
	}
	return h.BroadcastLogged(ctx, p, &b.opts)
}

// Page applies q's Keep and Limit to candidates (the packets of the log
// after q.Since that q.Rooms select, in log order, each with its Offset),
// for recovery logs implementing History. truncated says the candidates stop
// before the end of the log, at the offset scanned; tail is the log's end
// when they do not.
func (q HistoryQuery) Page(candidates []*Packet, truncated bool, scanned, tail string) HistoryPage {
	page := HistoryPage{Through: tail}
	for i, p := range candidates {
		if q.Keep != nil && !q.Keep(p) {
			continue
		}
		page.Packets = append(page.Packets, p)
		if len(page.Packets) == q.Limit {
			if i < len(candidates)-1 || truncated {
				page.Through, page.More = p.Offset, true
				return page
			}
			break
		}
	}
	if truncated {
		page.Through, page.More = scanned, true
	}
	return page
}
