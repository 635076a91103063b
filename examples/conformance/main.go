// Command conformance runs the reference servers that the official
// Engine.IO and Socket.IO conformance suites expect on :3000:
//
//   - an Engine.IO echo server at /engine.io/ (socketio/engine.io-protocol,
//     folder test-suite);
//   - a Socket.IO server at /socket.io/ (socketio/socket.io-protocol, folder
//     test-suite).
//
// See docs/conformance.md for how to run the suites against it.
package main

import (
	"flag"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/operate/realtime/engineio"
)

func main() {
	addr := flag.String("addr", ":3000", "listen address (dual-stack by default: the suites use localhost)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	cors := &engineio.CORS{Origins: []string{"*"}}
	eio, err := engineio.NewServer(echo{}, &engineio.Options{
		Path:         "/engine.io/",
		PingInterval: 300 * time.Millisecond,
		PingTimeout:  200 * time.Millisecond,
		MaxPayload:   1_000_000,
		CORS:         cors,
		Logger:       logger,
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", eio)
	mux.Handle("/socket.io/", newSocketIOServer(cors, logger))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	logger.Warn("conformance servers listening", "addr", ln.Addr().String())
	log.Fatal(http.Serve(ln, mux))
}

// echo sends every message back unchanged: text stays text, binary stays
// binary.
type echo struct{}

func (echo) Open(s *engineio.Session) engineio.SessionHandler { return &echoSession{s} }

type echoSession struct{ s *engineio.Session }

func (e *echoSession) Message(data []byte, binary bool) {
	if binary {
		_ = e.s.Send(engineio.NewBinaryPacket(data))
		return
	}
	_ = e.s.Send(engineio.NewPacket(4, data))
}

func (e *echoSession) Closed(engineio.CloseReason) {}
