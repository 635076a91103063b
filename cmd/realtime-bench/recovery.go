package main

import (
	"bytes"
	"encoding/json"
)

// The client side of connection state recovery (Socket.IO v5 §2.5, as
// socket.io-client 4.6+ does it): the CONNECT reply carries the session's
// private id, every event delivered with recovery on carries its offset as
// its last argument, and a reconnecting client sends both in its CONNECT's
// auth. The server answers with the same pid when it restored the session
// (the missed events are sent first), with a new one when it did not.

// connectPacket is a CONNECT to the namespace of nspPrefix ("/events,")
// with the token, and with pid and offset when the client has both. It
// returns the pid asked for ("" when the CONNECT does not ask to recover).
func connectPacket(nspPrefix []byte, token, pid, offset string) ([]byte, string) {
	auth := map[string]string{"token": token}
	asked := ""
	if pid != "" && offset != "" {
		auth["pid"], auth["offset"] = pid, offset
		asked = pid
	}
	js, _ := json.Marshal(auth) // a map of strings always encodes
	return append(append([]byte("40"), nspPrefix...), js...), asked
}

// noteConnected reads the pid of a CONNECT reply's payload
// (`{"sid":"…","pid":"…"}`), counts the outcome of a CONNECT that asked to
// recover, and keeps the pid for the next one. A fresh session's events
// start from nothing: the offset is cleared.
func (w *worker) noteConnected(cl *client, payload []byte) {
	var reply struct {
		PID string `json:"pid"`
	}
	_ = json.Unmarshal(payload, &reply)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.askedPID != "" {
		if reply.PID == cl.askedPID {
			w.recovered.Add(1)
		} else {
			w.notRecovered.Add(1)
			cl.offset = ""
		}
	}
	cl.askedPID = ""
	cl.pid = reply.PID
}

// lastStringArg returns the last element of an event packet's JSON array
// when it is a string: the offset the server appends to every event it
// delivers with recovery on (`["invoice:created",{…},"1733200000000-0"]`).
// It reads backwards from the closing bracket, so the payload is not
// parsed; offsets (stream ids, counters) hold no quote or backslash.
func lastStringArg(pkt []byte) (string, bool) {
	end := len(pkt) - 1
	for end >= 0 && (pkt[end] == ' ' || pkt[end] == '\n') {
		end--
	}
	if end < 1 || pkt[end] != ']' || pkt[end-1] != '"' {
		return "", false
	}
	closeQ := end - 1
	openQ := bytes.LastIndexByte(pkt[:closeQ], '"')
	if openQ < 1 || pkt[openQ-1] != ',' {
		return "", false
	}
	s := pkt[openQ+1 : closeQ]
	if bytes.IndexByte(s, '\\') >= 0 {
		return "", false
	}
	return string(s), true
}
