// Command subscriber prints the events a gateway sends to one user, one JSON
// line each, with the Go client (package client): a worked example, and a
// way to watch a server from a terminal.
//
//	TOKEN=$(go run ./cmd/realtime token --org org_demo --user user_demo)
//	go run ./examples/subscriber --url http://localhost:8080 --token "$TOKEN" --events 'invoice:*,bank:*'
//
// It reconnects by itself; the lines on standard error say when it
// connected, recovered, lost the connection or was told of a history gap.
// Stop it with Ctrl-C.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/operate/realtime/client"
	"github.com/operate/realtime/gateway/events"
)

func main() {
	url := flag.String("url", "http://localhost:8080", "the gateway's origin")
	token := flag.String("token", os.Getenv("REALTIME_TOKEN"), "the user's token (default $REALTIME_TOKEN)")
	patterns := flag.String("events", "", `comma-separated events to subscribe to ("invoice:paid", "bank:*"); empty: every event`)
	filter := flag.String("filter", "", "a filter expression sent with the subscription (servers with payload filters)")
	transport := flag.String("transport", "auto", "auto, upgrade, websocket or polling")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*url, *token, *patterns, *filter, *transport, log); err != nil {
		log.Error("subscriber", "error", err)
		os.Exit(1)
	}
}

func run(url, token, patterns, filter, transport string, log *slog.Logger) error {
	if token == "" {
		return fmt.Errorf("no token: pass --token or set REALTIME_TOKEN")
	}
	tr, ok := map[string]client.Transport{
		"auto": client.TransportAuto, "upgrade": client.TransportUpgrade,
		"websocket": client.TransportWebSocket, "polling": client.TransportPolling,
	}[transport]
	if !ok {
		return fmt.Errorf("--transport %q: want auto, upgrade, websocket or polling", transport)
	}
	c, err := client.New(client.Config{URL: url, Token: token, Transport: tr, Logger: log})
	if err != nil {
		return err
	}

	out := json.NewEncoder(os.Stdout)
	for _, e := range events.Events() {
		c.OnEvent(string(e.Name), func(p json.RawMessage) {
			_ = out.Encode(struct {
				Event   events.Name     `json:"event"`
				Payload json.RawMessage `json:"payload"`
			}{e.Name, p})
		})
	}
	c.OnConnect(func(i client.ConnectInfo) {
		log.Info("connected", "socket", i.SocketID, "recovered", i.Recovered, "transport", i.Transport)
	})
	c.OnDisconnect(func(i client.DisconnectInfo) {
		log.Warn("disconnected", "reason", i.Reason, "error", i.Err, "reconnecting", i.Reconnecting)
	})
	c.OnHistoryGap(func(g client.HistoryGap) {
		log.Warn("history gap: events may have been missed", "reason", g.Reason, "from", g.From)
	})
	c.OnError(func(err error) { log.Warn("client", "error", err) })

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.Connect(ctx); err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(closeCtx)
	}()
	if patterns != "" {
		var opts []client.SubscribeOption
		if filter != "" {
			opts = append(opts, client.WithFilter(filter))
		}
		res, err := c.Subscribe(ctx, strings.Split(patterns, ","), opts...)
		if err != nil {
			return err
		}
		log.Info("subscribed", "events", res.Subscriptions)
	}
	select {
	case <-ctx.Done():
		return nil
	case <-c.Done():
		return c.Err()
	}
}
