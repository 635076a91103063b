package redistest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/nodeproc"
)

// Node is a Node.js script from tests/node driven over JSON lines: the
// script writes {"type":"ready",...} first, then answers each command
// {"id":N,"cmd":...} with {"type":"reply","id":N,"ok":true,"result":...}
// or {"ok":false,"error":...}; any other line is an event, queued for
// NextEvent. It exits when its stdin closes, at the end of the test.
type Node struct {
	// Ready is the script's ready message (a server reports its "port").
	Ready json.RawMessage
	// URL is http://127.0.0.1:PORT when the ready message has a port.
	URL string
	// Timeout bounds Call and NextEvent. Default 10 s.
	Timeout time.Duration

	t     testing.TB
	label string
	proc  *nodeproc.Proc

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan nodeMsg
	events  []json.RawMessage
	changed chan struct{}
	dead    chan struct{} // closed when stdout ends: no reply or event will come
}

type nodeMsg struct {
	Type   string          `json:"type"`
	ID     int64           `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
	Port   int             `json:"port"`
}

// StartNode runs `node tests/node/<script> args...` and waits for its ready
// message.
func StartNode(t testing.TB, script string, args ...string) *Node {
	t.Helper()
	n := &Node{
		Timeout: 10 * time.Second, t: t, label: script,
		pending: make(map[int64]chan nodeMsg), changed: make(chan struct{}), dead: make(chan struct{}),
	}
	ready := make(chan json.RawMessage, 1)
	n.proc = nodeproc.Start(t, script, "@socket.io/redis-adapter", script, args, func(p *nodeproc.Proc, r io.Reader) {
		n.readStdout(p, r, ready)
	})
	select {
	case r := <-ready:
		n.Ready = r
		var m nodeMsg
		if json.Unmarshal(r, &m) == nil && m.Port > 0 {
			n.URL = fmt.Sprintf("http://127.0.0.1:%d", m.Port)
		}
	case <-n.dead:
		t.Fatalf("redistest: %s exited during startup: %s", script, n.proc.Diagnostics(time.Second))
	case <-time.After(30 * time.Second):
		t.Fatalf("redistest: %s not ready within 30s: %s", script, n.proc.Diagnostics(0))
	}
	return n
}

func (n *Node) readStdout(p *nodeproc.Proc, r io.Reader, ready chan<- json.RawMessage) {
	defer close(n.dead)
	br := bufio.NewReaderSize(r, 1<<16)
	first := true
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			raw := json.RawMessage(append([]byte(nil), line...))
			var m nodeMsg
			if json.Unmarshal(raw, &m) != nil {
				p.Note("stdout (not JSON): " + string(line))
			} else if first && m.Type == "ready" {
				first = false
				ready <- raw
			} else if m.Type == "reply" {
				n.mu.Lock()
				ch := n.pending[m.ID]
				delete(n.pending, m.ID)
				n.mu.Unlock()
				if ch != nil {
					ch <- m
				}
			} else {
				n.mu.Lock()
				n.events = append(n.events, raw)
				close(n.changed)
				n.changed = make(chan struct{})
				n.mu.Unlock()
			}
		}
		if err != nil {
			return
		}
	}
}

// Call sends a command and waits for its reply.
func (n *Node) Call(cmd map[string]any) (json.RawMessage, error) {
	n.mu.Lock()
	n.nextID++
	id := n.nextID
	ch := make(chan nodeMsg, 1)
	n.pending[id] = ch
	n.mu.Unlock()
	c := make(map[string]any, len(cmd)+1)
	for k, v := range cmd {
		c[k] = v
	}
	c["id"] = id
	line, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if err := n.proc.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("%s: writing command: %w", n.label, err)
	}
	select {
	case m := <-ch:
		if !m.OK {
			return nil, errors.New(m.Error)
		}
		return m.Result, nil
	case <-n.dead:
		return nil, fmt.Errorf("%s died: %s", n.label, n.proc.Diagnostics(time.Second))
	case <-time.After(n.Timeout):
		return nil, fmt.Errorf("%s: no reply to %s within %v", n.label, line, n.Timeout)
	}
}

// MustCall is Call that fails the test on error.
func (n *Node) MustCall(cmd map[string]any) json.RawMessage {
	n.t.Helper()
	r, err := n.Call(cmd)
	if err != nil {
		n.t.Fatalf("redistest: %s: %v", n.label, err)
	}
	return r
}

// NextEvent returns the next event line matching (all if match is nil),
// waiting up to Timeout; it fails the test on timeout.
func (n *Node) NextEvent(match func(json.RawMessage) bool) json.RawMessage {
	n.t.Helper()
	deadline := time.NewTimer(n.Timeout)
	defer deadline.Stop()
	for {
		n.mu.Lock()
		for i, e := range n.events {
			if match == nil || match(e) {
				n.events = append(n.events[:i:i], n.events[i+1:]...)
				n.mu.Unlock()
				return e
			}
		}
		ch := n.changed
		n.mu.Unlock()
		select {
		case <-ch:
		case <-n.dead:
			n.t.Fatalf("redistest: %s died while waiting for an event: %s", n.label, n.proc.Diagnostics(time.Second))
		case <-deadline.C:
			n.t.Fatalf("redistest: %s: no matching event within %v", n.label, n.Timeout)
		}
	}
}

// PID returns the Node.js process id, for CPU accounting in benchmarks.
func (n *Node) PID() int { return n.proc.PID() }
