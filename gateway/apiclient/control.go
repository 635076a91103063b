package apiclient

import (
	"context"
	"net/url"
	"time"
)

// Paths of the control API. The {…} segments are path-escaped ids.
const (
	PathRevocations = "/api/v1/revocations"
	// PathOrganizationDisconnect is POST /api/v1/organizations/{org}/disconnect.
	PathOrganizationDisconnect = "/api/v1/organizations/{org}/disconnect"
	// PathUserDisconnect is POST /api/v1/users/{user}/disconnect.
	PathUserDisconnect = "/api/v1/users/{user}/disconnect"
	// PathSocketDisconnect is POST /api/v1/sockets/{id}/disconnect.
	PathSocketDisconnect = "/api/v1/sockets/{id}/disconnect"
	// PathRoomLeave and PathRoomJoin make a user's sockets leave or join
	// again their organization's room.
	PathRoomLeave = "/api/v1/organizations/{org}/users/{user}/leave"
	PathRoomJoin  = "/api/v1/organizations/{org}/users/{user}/join"
)

// DisconnectRequest is the (optional) body of the disconnect endpoints.
type DisconnectRequest struct {
	// Reason is shown to the disconnected clients in the session:revoked
	// event (at most 256 bytes; longer is cut).
	Reason string `json:"reason,omitempty"`
	// OrganizationID, for a user's disconnect only, limits it to the
	// user's sockets connected under that organization.
	OrganizationID string `json:"organizationId,omitempty"`
}

// ControlResponse answers the control endpoints: what was done across the
// cluster.
type ControlResponse struct {
	// Sockets counts the sockets acted on (disconnected, or moved out of
	// or into the room) on every node that answered.
	Sockets int `json:"sockets"`
	// Nodes counts the nodes that answered, the one that took the request
	// included.
	Nodes int `json:"nodes"`
	// Complete is false when some node did not answer in time.
	Complete bool `json:"complete"`
}

// RevocationRequest is the body of POST /api/v1/revocations: either one
// token by its jti (with its exp, when known, so that the revocation is
// forgotten once the token expired), or a user's tokens issued before a
// time (default: now), within one organization or in all of them.
type RevocationRequest struct {
	TokenID   string     `json:"jti,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`

	UserID         string     `json:"userId,omitempty"`
	OrganizationID string     `json:"organizationId,omitempty"`
	IssuedBefore   *time.Time `json:"issuedBefore,omitempty"`
}

// Revocation is a revocation as the gateway keeps it.
type Revocation struct {
	TokenID        string `json:"jti,omitempty"`
	UserID         string `json:"userId,omitempty"`
	OrganizationID string `json:"organizationId,omitempty"`
	IssuedBefore   string `json:"issuedBefore,omitempty"`
	// Until is when the gateway forgets it: every token it names has
	// expired by then.
	Until string `json:"until"`
}

// RevocationResponse answers POST /api/v1/revocations (201).
type RevocationResponse struct {
	ControlResponse
	Revocation Revocation `json:"revocation"`
}

// DisconnectOrganization disconnects every socket of an organization.
func (c *Client) DisconnectOrganization(ctx context.Context, org, reason string) (ControlResponse, error) {
	var out ControlResponse
	err := c.post(ctx, "/api/v1/organizations/"+url.PathEscape(org)+"/disconnect", DisconnectRequest{Reason: reason}, "", &out)
	return out, err
}

// DisconnectUser disconnects a user's sockets; within one organization
// when org is not empty.
func (c *Client) DisconnectUser(ctx context.Context, user, org, reason string) (ControlResponse, error) {
	var out ControlResponse
	err := c.post(ctx, "/api/v1/users/"+url.PathEscape(user)+"/disconnect", DisconnectRequest{Reason: reason, OrganizationID: org}, "", &out)
	return out, err
}

// DisconnectSocket disconnects one socket, by its Socket.IO id.
func (c *Client) DisconnectSocket(ctx context.Context, id, reason string) (ControlResponse, error) {
	var out ControlResponse
	err := c.post(ctx, "/api/v1/sockets/"+url.PathEscape(id)+"/disconnect", DisconnectRequest{Reason: reason}, "", &out)
	return out, err
}

// Revoke revokes tokens (see RevocationRequest).
func (c *Client) Revoke(ctx context.Context, req RevocationRequest) (RevocationResponse, error) {
	var out RevocationResponse
	err := c.post(ctx, PathRevocations, req, "", &out)
	return out, err
}

// LeaveOrganizationRoom makes a user's sockets connected under org leave
// the organization's room (they keep receiving what is sent to the user).
func (c *Client) LeaveOrganizationRoom(ctx context.Context, org, user string) (ControlResponse, error) {
	return c.room(ctx, org, user, "leave")
}

// JoinOrganizationRoom makes them join it again.
func (c *Client) JoinOrganizationRoom(ctx context.Context, org, user string) (ControlResponse, error) {
	return c.room(ctx, org, user, "join")
}

func (c *Client) room(ctx context.Context, org, user, op string) (ControlResponse, error) {
	var out ControlResponse
	err := c.post(ctx, "/api/v1/organizations/"+url.PathEscape(org)+"/users/"+url.PathEscape(user)+"/"+op, struct{}{}, "", &out)
	return out, err
}
