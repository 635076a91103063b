package auth

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"short", "…"},
		{"elevenchars", "…"},
		{"twelve-chars", "twelve…"},
		{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "eyJhbG…"},
		{"ééééééééééééé", "éééééé…"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"
	tests := []struct{ name, in, want string }{
		{"no query", "/socket.io/", "/socket.io/"},
		{"empty query", "/socket.io/?", "/socket.io/?"},
		{"no secret", "/socket.io/?EIO=4&transport=polling", "/socket.io/?EIO=4&transport=polling"},
		{"token in request URI", "/socket.io/?EIO=4&token=" + jwt + "&transport=websocket", "/socket.io/?EIO=4&token=eyJhbG…&transport=websocket"},
		{"access_token", "https://gw.example.com/socket.io/?access_token=" + jwt, "https://gw.example.com/socket.io/?access_token=eyJhbG…"},
		{"case-insensitive name", "/x?Token=" + jwt, "/x?Token=eyJhbG…"},
		{"escaped name", "/x?%74oken=" + jwt, "/x?%74oken=eyJhbG…"},
		{"repeated", "/x?token=" + jwt + "&token=" + jwt, "/x?token=eyJhbG…&token=eyJhbG…"},
		{"fragment kept", "/x?token=" + jwt + "#frag", "/x?token=eyJhbG…#frag"},
		{"empty value", "/x?token=&a=1", "/x?token=&a=1"},
		{"name only", "/x?token&a=1", "/x?token&a=1"},
		{"tokenish names untouched", "/x?tokens=abc&mytoken=def", "/x?tokens=abc&mytoken=def"},
		{"garbage still redacted", "%%%?token=" + jwt, "%%%?token=eyJhbG…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RedactURL(tt.in)
			if got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if strings.Contains(got, jwt) {
				t.Errorf("RedactURL leaked the token: %q", got)
			}
		})
	}
}
