package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
)

// startPprof serves net/http/pprof on addr (REALTIME_PPROF_ADDR), on a
// listener of its own, for benchmarks and profiling (cmd/realtime-bench
// --pprof). Empty addr: nothing. Never expose it: it reveals memory contents
// and lets anyone spend the server's CPU.
func startPprof(addr string, log *slog.Logger) {
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("pprof: listen", "addr", addr, "error", err)
		return
	}
	log.Warn("pprof enabled: do not expose this address", "addr", ln.Addr().String())
	go func() { _ = http.Serve(ln, mux) }()
}
