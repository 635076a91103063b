package client_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/operate/realtime/client"
	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
)

// A worker that reacts to paid invoices. The gateway here runs in process
// so that the example runs; a service would use its URL
// (https://realtime.internal) and get its tokens from the identity
// provider.
func Example() {
	gw, stop := exampleGateway()
	defer stop()

	c, err := client.New(client.Config{
		URL: gw.URL,
		// Asked on every connection and before the token expires.
		TokenSource: func(ctx context.Context) (string, error) {
			return auth.Mint(exampleSecret, auth.MintClaims{OrganizationID: "org_1", UserID: "billing-worker"}, time.Hour, time.Time{})
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	paid := make(chan events.InvoicePayload, 1)
	c.OnInvoicePaid(func(p events.InvoicePayload) { paid <- p })
	c.OnHistoryGap(func(g client.HistoryGap) {
		log.Printf("events may have been missed since %s: resynchronizing", g.From)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Subscribe(ctx, []string{"invoice:*"}); err != nil {
		log.Fatal(err)
	}

	// Somewhere else, the invoicing service publishes.
	amount := 1234.5
	svc := events.NewEventsService(gw.Gateway)
	if _, err := svc.EmitInvoicePaid(ctx, events.InvoicePayload{
		OrganizationID: "org_1", InvoiceID: "inv_42", Amount: &amount, Currency: "EUR",
	}); err != nil {
		log.Fatal(err)
	}

	p := <-paid
	fmt.Println("paid:", p.InvoiceID, *p.Amount, p.Currency)
	// Output:
	// paid: inv_42 1234.5 EUR
}

const exampleSecret = "example-secret-0123456789abcdef0123"

type exampleServer struct {
	*gateway.Gateway
	URL string
}

// exampleGateway runs a gateway on a local port.
func exampleGateway() (*exampleServer, func()) {
	v, err := auth.New(context.Background(), auth.Config{Secret: exampleSecret})
	if err != nil {
		log.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{Verifier: v, Logger: discardLogger()})
	if err != nil {
		log.Fatal(err)
	}
	hs := httptest.NewServer(gw)
	return &exampleServer{Gateway: gw, URL: hs.URL}, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		hs.Close()
		v.Close()
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
