package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
)

// localHostsOnly guards development mode's endpoints (/dev/token mints
// tokens, /dev/publish publishes with the server's API key) against DNS
// rebinding. Bound to a loopback address they look reachable only from
// this machine, but any web page the developer opens can reach them: a
// page of evil.example whose name then resolves to 127.0.0.1 calls
// http://evil.example:3000/dev/token as its own origin, so neither CORS
// nor the console's same-origin check stops it. Its requests carry its
// own name in Host, which a local client's never does: requests for /dev/
// whose Host is not localhost (or a name under it) or a loopback address
// are refused. The rest (the console page, Socket.IO, the API) needs a
// token or a key the page cannot get without /dev/.
func localHostsOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(path.Clean("/"+r.URL.Path), "/dev/") && !isLocalHost(r.Host) {
			h := w.Header()
			h.Set("Content-Type", "application/json; charset=utf-8")
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			}{"forbidden_host", "development mode answers /dev/ requests for localhost, 127.0.0.1 or [::1] only (Host header), so that a web page cannot reach it through DNS rebinding"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isLocalHost reports whether a Host header names this machine: localhost,
// a name under .localhost (RFC 6761: never resolved by DNS), or a loopback
// address, with or without a port.
func isLocalHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// isLoopbackListener reports whether ln accepts connections from this
// machine only.
func isLoopbackListener(ln net.Listener) bool {
	a, ok := ln.Addr().(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}
