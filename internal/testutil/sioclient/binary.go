package sioclient

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Binary is binary data in an event or ack argument. The driver protocol is JSON, so binary travels as
// {"$bin":"<base64>"}; the driver turns it into a Buffer before socket.io-client sends it (as a binary
// attachment), and turns every Buffer it receives back into {"$bin":...}.
//
// Binary values may be nested anywhere in an argument (in maps, slices or struct fields). A plain
// []byte given directly as an argument of Emit, EmitWithAck or Ack is sent as Binary too; nested
// []byte values are not (encoding/json would make them base64 strings).
type Binary []byte

// Bin wraps b so that it is sent as binary data.
func Bin(b []byte) any { return Binary(b) }

// MarshalJSON encodes b as {"$bin":"<base64>"}.
func (b Binary) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"$bin": base64.StdEncoding.EncodeToString(b)})
}

// UnmarshalJSON decodes {"$bin":"<base64>"}; anything else is an error.
func (b *Binary) UnmarshalJSON(data []byte) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return fmt.Errorf("sioclient: %s is not binary data", truncate(string(data), 80))
	}
	raw, ok := obj["$bin"]
	if !ok || len(obj) != 1 {
		return fmt.Errorf("sioclient: %s is not binary data", truncate(string(data), 80))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("sioclient: $bin is not a string: %w", err)
	}
	dec, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("sioclient: $bin: %w", err)
	}
	*b = dec
	return nil
}

// AsBin decodes an argument that holds binary data ({"$bin":...}) into its bytes.
func AsBin(raw json.RawMessage) ([]byte, error) {
	var b Binary
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, err
	}
	return b, nil
}

// wireArgs prepares arguments for the driver: top-level []byte become Binary, and nil becomes an
// empty list (the driver spreads the list into socket.io-client's varargs).
func wireArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if b, ok := a.([]byte); ok {
			a = Binary(b)
		}
		out[i] = a
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
