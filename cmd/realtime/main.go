// Command realtime is the Operate events gateway: a Socket.IO server that
// pushes business events (invoice:paid, bank:sync_error, ...) to browsers,
// authenticated with the Operate JWT, and an HTTP API through which other
// services publish them.
//
//	realtime [serve] [flags]      run the server (the default)
//	realtime token --org X --user Y [--ttl 1h]
//	realtime emit EVENT --org X --data JSON
//
// Configuration comes from flags and environment variables (docs/gateway.md
// lists them). With none at all the server starts in development mode on
// 127.0.0.1:8080 with a generated secret and API key, so that `go run
// ./cmd/realtime` just works.
//
// This package only wires: the gateway is package gateway, the HTTP API
// package gateway/httpapi, JWT verification package gateway/auth.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `realtime: the Operate events gateway (Socket.IO + HTTP publish API)

Usage:
  realtime [serve] [flags]    run the server (default); flags: --addr, --dev, --namespace, --path,
                              --cors-origins, --log-level, --log-format, --shutdown-timeout
  realtime token --org ORG --user USER [--ttl 1h] [--role R] [--email E] [--url URL]
                              print a development token: signed with $JWT_SECRET if set, else
                              obtained from a development server's POST /dev/token
  realtime emit EVENT --org ORG [--user USER] [--data JSON|@file|-] [--target-user U] [--all]
                [--url URL] [--api-key KEY] [--idempotency-key K]
                              publish one event through the HTTP API and print its id
  realtime help

Configuration: flags, then environment variables (PORT, JWT_SECRET, API_KEYS, CORS_ORIGINS,
LOG_LEVEL, ...; see docs/gateway.md). Without any JWT key the server runs in development mode.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// run executes a command line and returns the exit status: 0, 1 for a
// failure, 2 for a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, env(getenv), stderr)
	case "token":
		err = token(ctx, args, env(getenv), stdout)
	case "emit":
		err = emit(ctx, args, env(getenv), stdin, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = usageError{fmt.Errorf("unknown command %q", cmd)}
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "realtime %s: %v\n", cmd, err)
	if errors.As(err, new(usageError)) {
		fmt.Fprint(stderr, "\n"+usage)
		return 2
	}
	return 1
}
