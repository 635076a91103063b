package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/gateway/events"
	"github.com/operate/realtime/gateway/httpapi"
)

// serverURL is where the client commands find the server: --url, else
// REALTIME_URL, else localhost on $PORT or 8080.
func serverURL(flagValue string, e env) string {
	if flagValue != "" {
		return flagValue
	}
	if u, _ := e.first("REALTIME_URL"); u != "" {
		return u
	}
	port, _ := e.first("PORT")
	if port == "" {
		port = "8080"
	}
	return "http://localhost:" + port
}

// parseInterspersed parses flags placed before and after positional
// arguments ("emit invoice:paid --org X" and "emit --org X invoice:paid").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// token prints a development token.
func token(ctx context.Context, args []string, e env, stdout io.Writer) error {
	fs := flag.NewFlagSet("realtime token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	org := fs.String("org", "", "organization id (required)")
	user := fs.String("user", "", "user id (required)")
	role := fs.String("role", "", "role claim")
	email := fs.String("email", "", "email claim")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	url := fs.String("url", "", "development server to ask when $JWT_SECRET is not set (default $REALTIME_URL, or http://localhost:$PORT)")
	rest, err := parseInterspersed(fs, args)
	switch {
	case err != nil:
		return usageError{err}
	case len(rest) > 0:
		return usageError{fmt.Errorf("unexpected argument %q", rest[0])}
	case *org == "" || *user == "":
		return usageError{errors.New("--org and --user are required")}
	case *ttl <= 0:
		return usageError{fmt.Errorf("--ttl must be positive, got %s", *ttl)}
	}
	secret, err := e.alias("JWT_SECRET", "JWT_ACCESS_SECRET")
	if err != nil {
		return err
	}
	var tok string
	if secret != "" {
		tok, err = auth.Mint(secret, auth.MintClaims{UserID: *user, OrganizationID: *org, Role: *role, Email: *email}, *ttl, time.Time{})
	} else {
		var resp apiclient.DevTokenResponse
		resp, err = apiclient.New(serverURL(*url, e), "").DevToken(ctx, apiclient.DevTokenRequest{
			OrganizationID: *org, UserID: *user, Role: *role, Email: *email, TTL: ttl.String(),
		})
		tok = resp.Token
		var ae *apiclient.APIError
		if errors.As(err, &ae) && ae.StatusCode == 404 {
			err = fmt.Errorf("%s has no /dev/token (not in development mode): set JWT_SECRET to sign the token here", serverURL(*url, e))
		}
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// emit publishes one event through the HTTP API and prints its id.
func emit(ctx context.Context, args []string, e env, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("realtime emit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	org := fs.String("org", "", "organizationId of the payload")
	user := fs.String("user", "", "userId of the payload")
	data := fs.String("data", "{}", "payload: a JSON object, @file, or - for standard input")
	targetUser := fs.String("target-user", "", "deliver to this user only")
	targetOrg := fs.String("target-org", "", "deliver to this organization (must be the payload's)")
	all := fs.Bool("all", false, "deliver to every connected client")
	url := fs.String("url", "", "server (default $REALTIME_URL, or http://localhost:$PORT)")
	apiKey := fs.String("api-key", "", "API key (default $REALTIME_API_KEY, or the first of $API_KEYS)")
	idem := fs.String("idempotency-key", "", "Idempotency-Key header, to make a retry safe")
	rest, err := parseInterspersed(fs, args)
	switch {
	case err != nil:
		return usageError{err}
	case len(rest) != 1:
		return usageError{errors.New("give exactly one EVENT, e.g. invoice:paid")}
	}
	event := rest[0]

	raw, err := readData(*data, stdin)
	if err != nil {
		return err
	}
	payload, err := buildPayload(raw, *org, *user)
	if err != nil {
		return err
	}
	req := apiclient.PublishRequest{Event: event, Payload: payload}
	if t := (events.Target{OrganizationID: *targetOrg, UserID: *targetUser, All: *all}); !t.IsZero() {
		req.Target = &t
	}

	key := *apiKey
	if key == "" {
		key, _ = e.first("REALTIME_API_KEY")
	}
	if key == "" {
		if keys := list(e("API_KEYS")); len(keys) > 0 {
			key = keys[0]
		}
	}
	if key == "" {
		return usageError{errors.New("no API key: use --api-key, or set REALTIME_API_KEY or API_KEYS")}
	}
	id, err := apiclient.New(serverURL(*url, e), key).Send(ctx, req, *idem)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, id)
	return err
}

// readData reads --data: inline JSON, @file or - (standard input).
func readData(v string, stdin io.Reader) ([]byte, error) {
	switch {
	case v == "-":
		return io.ReadAll(io.LimitReader(stdin, httpapi.DefaultMaxBodyBytes))
	case strings.HasPrefix(v, "@"):
		b, err := os.ReadFile(v[1:])
		if err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
		return b, nil
	}
	return []byte(v), nil
}

// buildPayload adds organizationId and userId from the flags to the JSON
// object raw; a flag that contradicts the payload is an error.
func buildPayload(raw []byte, org, user string) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep numbers exactly as written
	var p map[string]any
	if err := dec.Decode(&p); err != nil || p == nil {
		return nil, usageError{fmt.Errorf("--data must be a JSON object: %s", describeJSONError(err))}
	}
	if dec.More() {
		return nil, usageError{errors.New("--data has data after its JSON object")}
	}
	for field, v := range map[string]string{"organizationId": org, "userId": user} {
		if v == "" {
			continue
		}
		if cur, ok := p[field]; ok && cur != v {
			return nil, usageError{fmt.Errorf("--data has %s %v but the flag says %q", field, cur, v)}
		}
		p[field] = v
	}
	if _, ok := p["organizationId"]; !ok {
		return nil, usageError{errors.New("--org is required (or organizationId in --data)")}
	}
	return json.Marshal(p)
}

func describeJSONError(err error) string {
	if err == nil {
		return "got null"
	}
	return err.Error()
}
