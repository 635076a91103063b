package events_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/operate/realtime/gateway/events"
)

// FuzzValidate checks the hand-rolled scanner against encoding/json: whatever Validate
// accepts must decode to a payload with the catalog's types.
func FuzzValidate(f *testing.F) {
	for _, seed := range []string{
		`{"organizationId":"o","transactionIds":["a","b"],"transactionCount":2,"timestamp":"2025-01-31T10:30:00+01:00"}`,
		` { "organizationId" : "o\u0041" , "x" : [ {"}":"]"} , "\"" ] , "confidence" : -1.5e-3 } `,
		`{"organizationId":"o","autoApproved":true,"error":null}`,
		`{"organization\u0049d":"o","accountId":"a"}`,
		`[]`, `{}`, `{"organizationId":""}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := events.Validate(string(events.BankTransactionsSynced), data)
		if err != nil {
			return
		}
		// A map, not a struct: encoding/json matches struct fields case-insensitively, while
		// browsers (and Validate) treat keys case-sensitively.
		var p map[string]any
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatalf("accepted %q but the output %q does not decode: %v", data, out, err)
		}
		if org, _ := p["organizationId"].(string); org == "" {
			t.Fatalf("accepted %q without organizationId", data)
		}
		if ts, _ := p["timestamp"].(string); !jsISO.MatchString(ts) {
			t.Fatalf("accepted %q: timestamp in output %q", data, out)
		}
		if c, ok := p["transactionCount"]; ok {
			if n, isNum := c.(float64); !isNum || n != math.Trunc(n) {
				t.Fatalf("accepted transactionCount %v in %q", c, data)
			}
		}
		if ids, ok := p["transactionIds"]; ok {
			list, isList := ids.([]any)
			for _, id := range list {
				if _, isString := id.(string); !isString {
					isList = false
				}
			}
			if !isList {
				t.Fatalf("accepted transactionIds %v in %q", ids, data)
			}
		}
		if a, ok := p["autoApproved"]; ok {
			if _, isBool := a.(bool); !isBool {
				t.Fatalf("accepted autoApproved %v in %q", a, data)
			}
		}
	})
}
