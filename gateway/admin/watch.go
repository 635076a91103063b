package admin

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/operate/realtime/socketio"
)

// Watching. A node watches (observes its sockets for the UI, and sends
// its stats every statsInterval) only while it holds a lease: a node with
// a UI connected renews its own lease and every other node's (sseWatch)
// every leaseRenew; a lease lasts leaseTTL, so a node stops watching at
// most leaseTTL after the last UI of the cluster left or its node died.
// Without a lease the node does nothing for the UI: no monitor on the
// events namespace, no timer, one atomic load per connection and
// disconnection.
const (
	statsInterval = 2 * time.Second // instrument()'s
	leaseTTL      = 15 * time.Second
	leaseRenew    = 5 * time.Second
	sampleEvery   = 10 * time.Second // the status endpoint's rates
	noticeQueue   = 4096
	// maxEventBytes bounds the arguments of an event shown in the UI.
	maxEventBytes = 8 << 10
)

// timing holds the intervals above; tests shorten them.
type timing struct {
	stats, leaseTTL, leaseRenew, sample time.Duration
}

func defaultTiming() timing {
	return timing{stats: statsInterval, leaseTTL: leaseTTL, leaseRenew: leaseRenew, sample: sampleEvery}
}

// Server-side events between the nodes' admin namespaces.
const (
	sseWatch   = "admin:watch"   // (): watch for leaseTTL
	sseSockets = "admin:sockets" // () → [socket...]: the node's sockets
	sseStatus  = "admin:status"  // () → nodeReport
)

// noticeKind is what a notice tells the UI.
type noticeKind uint8

const (
	noticeConnected noticeKind = iota
	noticeDisconnected
	noticeJoined
	noticeLeft
	noticeReceived
	noticeSent
)

// notice is something that happened to a watched socket, queued by the
// observing hook (on the goroutine that saw it, which must not wait) for
// the run loop, which tells the UIs.
type notice struct {
	kind   noticeKind
	at     time.Time
	socket *socketio.Socket // connected
	id     string           // socket id, or the rooms of a broadcast
	reason string           // disconnected
	rooms  []string         // disconnected: the rooms it left; joined, left: the room
	event  string           // received
	args   socketio.Args    // received
	packet *socketio.Packet // sent
}

// queue hands a notice to the run loop, or drops it when the loop is
// behind (counted): the hooks never wait.
func (a *Admin) queue(n notice) {
	select {
	case a.notices <- n:
	default:
		a.dropped.Add(1)
	}
}

// poke wakes the run loop to reconsider its lease.
func (a *Admin) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// onWatch is another node's sseWatch: a UI is connected there.
func (a *Admin) onWatch(socketio.Args, func(args ...any)) {
	a.extendLease(time.Now())
	a.poke()
}

// extendLease makes this node watch for leaseTTL from now. The hooks start
// queueing at once; the run loop starts watching when it sees the first
// notice or the poke that follows, whichever comes first, so that nothing
// happening in between is missed.
func (a *Admin) extendLease(now time.Time) {
	until := now.Add(a.tm.leaseTTL).UnixNano()
	for {
		cur := a.leaseUntil.Load()
		if cur >= until || a.leaseUntil.CompareAndSwap(cur, until) {
			break
		}
	}
	a.watching.Store(true)
}

// The events namespace's hooks: they only queue, and only while watching.

func (a *Admin) onSocketConnected(s *socketio.Socket) {
	if a.watching.Load() {
		a.queue(notice{kind: noticeConnected, at: time.Now(), socket: s})
	}
}

func (a *Admin) onSocketDisconnecting(s *socketio.Socket, reason socketio.DisconnectReason) {
	if a.watching.Load() {
		a.queue(notice{kind: noticeDisconnected, at: time.Now(), id: s.ID(), reason: string(reason), rooms: s.Rooms()})
	}
}

// monitor is installed on the events namespace while watching. The event
// hooks exist only when the UI streams events, and spend the event budget
// before queueing anything.
func (a *Admin) monitor() *socketio.Monitor {
	m := &socketio.Monitor{
		RoomJoined: func(s *socketio.Socket, room string) {
			a.queue(notice{kind: noticeJoined, at: time.Now(), id: s.ID(), rooms: []string{room}})
		},
		RoomLeft: func(s *socketio.Socket, room string) {
			a.queue(notice{kind: noticeLeft, at: time.Now(), id: s.ID(), rooms: []string{room}})
		},
	}
	if a.ui != nil && a.uiCfg.Events {
		m.EventReceived = func(s *socketio.Socket, ev *socketio.Event) {
			if a.eventBudget.Allow() {
				a.queue(notice{kind: noticeReceived, at: time.Now(), id: s.ID(), event: ev.Name, args: ev.Args})
			}
		}
		m.EventSent = func(s *socketio.Socket, p *socketio.Packet) {
			if a.eventBudget.Allow() {
				a.queue(notice{kind: noticeSent, at: time.Now(), id: s.ID(), packet: p})
			}
		}
		m.Broadcast = func(p *socketio.Packet, opts *socketio.BroadcastOptions, reached int) {
			if reached > 0 && a.eventBudget.Allow() {
				a.queue(notice{kind: noticeSent, at: time.Now(), id: broadcastTarget(opts), packet: p})
			}
		}
	}
	return m
}

// broadcastTarget names a broadcast's recipients where the UI shows a
// socket id: its rooms, or "*" for every socket.
func broadcastTarget(opts *socketio.BroadcastOptions) string {
	t := "*"
	if len(opts.Rooms) > 0 {
		t = strings.Join(opts.Rooms, ",")
	}
	if len(opts.Except) > 0 {
		t += " except " + strings.Join(opts.Except, ",")
	}
	return t
}

// watchState is the run loop's own.
type watchState struct {
	ticker    *time.Ticker // nil while not watching
	lastRenew time.Time
	// polling holds the local watched sockets last seen on long-polling:
	// their count is the UI's pollingClientsCount, and an upgrade is told
	// to the UI when one of them is next seen on WebSocket.
	polling map[*socketio.Socket]struct{}
	// The engine's counters at the last stats, for the UI's aggregated
	// events (per-interval deltas).
	opened, closed, packetsOut, bytesOut int64
}

// run is the Admin's loop: it holds the lease state, tells the UIs what
// the hooks queued, sends the stats, and samples the status rates.
func (a *Admin) run() {
	defer close(a.done)
	var w watchState
	sample := time.NewTicker(a.tm.sample)
	defer sample.Stop()
	for {
		var tick <-chan time.Time
		if w.ticker != nil {
			tick = w.ticker.C
		}
		select {
		case <-a.ctx.Done():
			a.stopWatching(&w)
			return
		case <-a.wake:
			a.reconsider(&w, time.Now())
		case now := <-tick:
			a.reconsider(&w, now)
			if w.ticker != nil {
				a.checkUpgrades(&w)
				a.sendStats(&w, now)
			}
		case n := <-a.notices:
			if w.ticker == nil {
				a.reconsider(&w, time.Now())
			}
			if w.ticker != nil {
				a.tell(&w, n)
			}
		case now := <-sample.C:
			a.rates.sample(now)
		}
	}
}

// reconsider renews the leases while a UI is connected here, and starts or
// stops watching as this node's lease says.
func (a *Admin) reconsider(w *watchState, now time.Time) {
	if a.localAdmins.Load() > 0 && (w.ticker == nil || now.Sub(w.lastRenew) >= a.tm.leaseRenew) {
		w.lastRenew = now
		a.extendLease(now)
		ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
		if err := a.nsp.ServerSideEmit(ctx, sseWatch); err != nil {
			a.log.Warn("admin: asking the other nodes to watch", "error", err)
		}
		cancel()
	}
	leased := now.UnixNano() < a.leaseUntil.Load()
	switch {
	case leased && w.ticker == nil:
		a.startWatching(w)
		a.sendStats(w, now)
	case !leased:
		a.stopWatching(w)
	}
}

func (a *Admin) startWatching(w *watchState) {
	w.polling = make(map[*socketio.Socket]struct{})
	for _, s := range a.events.Sockets() {
		if s.Transport() == "polling" {
			w.polling[s] = struct{}{}
		}
	}
	es := a.gw.Server().Engine().Stats()
	w.opened = es.Opened.Load()
	w.closed = w.opened - es.Sessions.Load()
	w.packetsOut, w.bytesOut = es.PacketsOut.Load(), es.BytesOut.Load()
	a.events.SetMonitor(a.monitor())
	a.watching.Store(true)
	w.ticker = time.NewTicker(a.tm.stats)
	a.log.Debug("admin: watching")
}

func (a *Admin) stopWatching(w *watchState) {
	a.watching.Store(false)
	if w.ticker == nil {
		return
	}
	a.events.SetMonitor(nil)
	w.ticker.Stop()
	w.ticker, w.polling = nil, nil
	// What was queued meanwhile is for nobody.
	for {
		select {
		case <-a.notices:
		default:
			a.log.Debug("admin: stopped watching")
			return
		}
	}
}

// emit broadcasts to every UI of the cluster.
func (a *Admin) emit(event string, args ...any) {
	p, err := socketio.NewPacket(event, args...)
	if err != nil {
		a.log.Error("admin: encoding "+event, "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
	defer cancel()
	if err := a.nsp.Except().EmitPacket(ctx, p); err != nil {
		a.log.Debug("admin: sending "+event, "error", err)
	}
}

// tell sends a notice to the UIs.
func (a *Admin) tell(w *watchState, n notice) {
	nsp := a.events.Name()
	at := jsTime(n.at)
	switch n.kind {
	case noticeConnected:
		if n.socket.Transport() == "polling" && n.socket.Connected() {
			w.polling[n.socket] = struct{}{}
		}
		a.emit(uiSocketConnected, serialize(n.socket), at)
	case noticeDisconnected:
		a.emit(uiSocketDisconnected, nsp, n.id, n.reason, at)
		for _, r := range n.rooms {
			a.emit(uiRoomLeft, nsp, r, n.id, at)
		}
	case noticeJoined:
		a.emit(uiRoomJoined, nsp, n.rooms[0], n.id, at)
	case noticeLeft:
		a.emit(uiRoomLeft, nsp, n.rooms[0], n.id, at)
	case noticeReceived:
		args := make([]json.RawMessage, 0, n.args.Len()+1)
		name, _ := json.Marshal(n.event)
		args = append(args, name)
		for i := range n.args.Len() {
			args = append(args, n.args.Raw(i))
		}
		a.emit(uiEventReceived, nsp, n.id, shownArgs(args), at)
	case noticeSent:
		a.emit(uiEventSent, nsp, n.id, shownArgs(packetArgs(n.packet)), at)
	}
}

// packetArgs splits a packet's data ([event, args...]) into its elements,
// without the recovery offset connection state recovery appends.
func packetArgs(p *socketio.Packet) []json.RawMessage {
	var args []json.RawMessage
	if json.Unmarshal(p.Data, &args) != nil {
		return []json.RawMessage{json.RawMessage(`"?"`)}
	}
	if p.Offset != "" && len(args) > 1 {
		args = args[:len(args)-1]
	}
	return args
}

// checkUpgrades tells the UIs of the polling sockets now on WebSocket.
func (a *Admin) checkUpgrades(w *watchState) {
	for s := range w.polling {
		switch {
		case !s.Connected():
			delete(w.polling, s)
		case s.Transport() != "polling":
			delete(w.polling, s)
			a.emit(uiSocketUpdated, map[string]string{"id": s.ID(), "nsp": s.Namespace().Name(), "transport": s.Transport()})
		}
	}
}

// uiServerStatsPayload is instrument()'s server_stats.
type uiServerStatsPayload struct {
	ServerID            string            `json:"serverId"`
	Hostname            string            `json:"hostname"`
	PID                 int               `json:"pid"`
	Uptime              float64           `json:"uptime"` // seconds
	ClientsCount        int64             `json:"clientsCount"`
	PollingClientsCount int               `json:"pollingClientsCount"`
	AggregatedEvents    []aggregatedEvent `json:"aggregatedEvents"`
	Namespaces          []namespaceCount  `json:"namespaces"`
}

// aggregatedEvent counts engine events of one kind in the last interval.
type aggregatedEvent struct {
	Timestamp int64  `json:"timestamp"` // unix milliseconds, whole seconds
	Type      string `json:"type"`
	Count     int64  `json:"count"`
}

type namespaceCount struct {
	Name         string `json:"name"`
	SocketsCount int    `json:"socketsCount"`
}

// sendStats sends this node's server_stats: what the engine counted since
// the last ones (connections, disconnections, packets and bytes out; the
// engine counts nothing inbound).
func (a *Admin) sendStats(w *watchState, now time.Time) {
	es := a.gw.Server().Engine().Stats()
	sessions := es.Sessions.Load()
	opened := es.Opened.Load()
	closed := opened - sessions
	packets, bytes := es.PacketsOut.Load(), es.BytesOut.Load()
	ts := now.Truncate(time.Second).UnixMilli()
	agg := []aggregatedEvent{}
	for _, e := range []aggregatedEvent{
		{ts, "rawConnection", opened - w.opened},
		{ts, "rawDisconnection", closed - w.closed},
		{ts, "packetsOut", packets - w.packetsOut},
		{ts, "bytesOut", bytes - w.bytesOut},
	} {
		if e.Count > 0 {
			agg = append(agg, e)
		}
	}
	w.opened, w.closed, w.packetsOut, w.bytesOut = opened, closed, packets, bytes
	a.emit(uiServerStats, uiServerStatsPayload{
		ServerID:            a.node.id,
		Hostname:            a.node.hostname,
		PID:                 a.node.pid,
		Uptime:              now.Sub(a.node.started).Seconds(),
		ClientsCount:        sessions,
		PollingClientsCount: len(w.polling),
		AggregatedEvents:    agg,
		Namespaces: []namespaceCount{
			{a.events.Name(), a.events.SocketCount()},
			{a.nsp.Name(), a.nsp.SocketCount()},
		},
	})
}

// jsTimeLayout formats like JavaScript's Date.prototype.toISOString(),
// which is how instrument()'s Date timestamps reach the UI.
const jsTimeLayout = "2006-01-02T15:04:05.000Z"

func jsTime(t time.Time) string { return t.UTC().Format(jsTimeLayout) }
