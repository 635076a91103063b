package events_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/operate/realtime/gateway/events"
)

func TestTargetRooms(t *testing.T) {
	tests := []struct {
		target events.Target
		want   []string
	}{
		{events.Target{}, nil},
		{events.Target{OrganizationID: "o1"}, []string{"org:o1"}},
		{events.Target{UserID: "u1"}, []string{"user:u1"}},
		{events.Target{OrganizationID: "o1", UserID: "u1"}, []string{"org:o1", "user:u1"}},
		{events.Target{All: true}, nil},
	}
	for _, tt := range tests {
		if got := tt.target.Rooms(); !slices.Equal(got, tt.want) {
			t.Errorf("%+v.Rooms() = %q, want %q", tt.target, got, tt.want)
		}
	}
	if !(events.Target{}).IsZero() || (events.Target{All: true}).IsZero() {
		t.Error("IsZero")
	}
	if events.OrgRoom("a") != "org:a" || events.UserRoom("b") != "user:b" {
		t.Error("room names")
	}
}

func TestTargetJSON(t *testing.T) {
	b, err := json.Marshal(events.Target{OrganizationID: "o", UserID: "u", All: false})
	if err != nil || string(b) != `{"organizationId":"o","userId":"u"}` {
		t.Errorf("got %s, %v", b, err)
	}
	var tg events.Target
	if err := json.Unmarshal([]byte(`{"all":true}`), &tg); err != nil || !tg.All {
		t.Errorf("got %+v, %v", tg, err)
	}
}

func TestDefaultTarget(t *testing.T) {
	tests := []struct {
		name    events.Name
		payload string
		want    events.Target
	}{
		{events.InvoiceCreated, `{"organizationId":"o1","userId":"u1","invoiceId":"i"}`, events.Target{OrganizationID: "o1"}},
		{events.NotificationNew, `{"organizationId":"o1","userId":"u1","notificationId":"n","title":"t","message":"m","type":"info"}`, events.Target{UserID: "u1"}},
		{events.NotificationRead, `{"organizationId":"o1","notificationId":"n","title":"t","message":"m","type":"info"}`, events.Target{OrganizationID: "o1"}},
		{events.NotificationDeleted, `{"organizationId":"o1","userId":"","notificationId":"n","title":"t","message":"m","type":"info"}`, events.Target{OrganizationID: "o1"}},
		{events.DocumentError, `{"organizationId":"o\u00e4","documentId":"d"}`, events.Target{OrganizationID: "oä"}},
	}
	for _, tt := range tests {
		got, err := events.DefaultTarget(tt.name, json.RawMessage(tt.payload))
		if err != nil || got != tt.want {
			t.Errorf("DefaultTarget(%s) = %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}

	_, err := events.DefaultTarget(events.InvoiceCreated, json.RawMessage(`{"invoiceId":"i"}`))
	var ve *events.ValidationError
	if !errors.As(err, &ve) || ve.Field != "organizationId" {
		t.Errorf("payload without organizationId: %v", err)
	}
}
