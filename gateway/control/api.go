package control

import (
	"context"
	"errors"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/gateway/httpapi"
)

// API is the gateway as the HTTP API's Controller.
type API struct{ gw *gateway.Gateway }

var _ httpapi.Controller = API{}

// NewAPI returns gw's control operations for httpapi.Config.Control.
func NewAPI(gw *gateway.Gateway) API { return API{gw: gw} }

// Disconnect implements httpapi.Controller.
func (a API) Disconnect(ctx context.Context, sel httpapi.ControlSelector, reason string) (httpapi.ControlResponse, error) {
	res, err := a.gw.Disconnect(ctx, gateway.Selector{SocketID: sel.SocketID, UserID: sel.UserID, OrganizationID: sel.OrganizationID}, reason)
	return response(res), requestError(err)
}

// Revoke implements httpapi.Controller.
func (a API) Revoke(ctx context.Context, req httpapi.RevocationRequest) (httpapi.RevocationResponse, error) {
	r := gateway.Revocation{TokenID: req.TokenID, UserID: req.UserID, OrganizationID: req.OrganizationID}
	if req.IssuedBefore != nil {
		r.IssuedBefore = *req.IssuedBefore
	}
	var tokenExp time.Time
	if req.ExpiresAt != nil {
		tokenExp = *req.ExpiresAt
	}
	res, r, err := a.gw.Revoke(ctx, r, tokenExp)
	out := httpapi.RevocationResponse{ControlResponse: response(res), Revocation: apiclient.Revocation{
		TokenID: r.TokenID, UserID: r.UserID, OrganizationID: r.OrganizationID,
		IssuedBefore: jsTime(r.IssuedBefore), Until: jsTime(r.Until),
	}}
	return out, requestError(err)
}

// SetOrganizationRoom implements httpapi.Controller.
func (a API) SetOrganizationRoom(ctx context.Context, org, user string, join bool) (httpapi.ControlResponse, error) {
	res, err := a.gw.SetOrganizationRoom(ctx, org, user, join)
	return response(res), requestError(err)
}

func response(r gateway.ControlResult) httpapi.ControlResponse {
	return httpapi.ControlResponse{Sockets: r.Sockets, Nodes: r.Nodes, Complete: r.Complete}
}

// requestError turns the gateway's validation errors into the API's 400s.
func requestError(err error) error {
	switch {
	case errors.Is(err, gateway.ErrInvalidSelector):
		return &httpapi.ControlRequestError{Code: apiclient.CodeInvalidSelector, Message: err.Error()}
	case errors.Is(err, gateway.ErrInvalidRevocation):
		return &httpapi.ControlRequestError{Code: apiclient.CodeInvalidRevocation, Message: err.Error()}
	}
	return err
}

// jsTime formats like JavaScript's toISOString; "" for the zero time.
func jsTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
