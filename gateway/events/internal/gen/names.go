package main

import (
	"strings"
	"unicode"
)

// initialisms are spelled in capitals in Go names (Go style: InvoiceID, not InvoiceId).
var initialisms = map[string]string{
	"id": "ID", "ids": "IDs", "url": "URL", "ocr": "OCR", "hr": "HR", "api": "API", "http": "HTTP", "json": "JSON",
}

// goIdent turns a camelCase or snake_case word sequence into an exported Go name:
// "organizationId" -> "OrganizationID", "ocr_complete" -> "OCRComplete".
func goIdent(s string) string {
	var sb strings.Builder
	for _, w := range words(s) {
		if up, ok := initialisms[strings.ToLower(w)]; ok {
			sb.WriteString(up)
		} else {
			sb.WriteString(title(w))
		}
	}
	return sb.String()
}

// words splits at underscores and before upper-case letters.
func words(s string) []string {
	var out []string
	start := 0
	for i, r := range s {
		switch {
		case r == '_':
			out = append(out, s[start:i])
			start = i + 1
		case unicode.IsUpper(r) && i > start:
			out = append(out, s[start:i])
			start = i
		}
	}
	return append(out, s[start:])
}

func title(w string) string {
	if w == "" {
		return ""
	}
	return strings.ToUpper(w[:1]) + strings.ToLower(w[1:])
}

// goEventConst is the Go constant of an event: "bank:sync_error" -> "BankSyncError".
func goEventConst(name string) string {
	domain, rest, _ := strings.Cut(name, ":")
	return goIdent(domain) + goIdent(rest)
}

// tsDomainConst is the TypeScript const object of a domain, named like the seed's enums:
// "hr" -> "HrEvent".
func tsDomainConst(domain string) string { return title(domain) + "Event" }

// tsWebSocketMember is an event's key in the WebSocketEvent object, its whole name in capitals:
// "bank:transactions_synced" -> "BANK_TRANSACTIONS_SYNCED".
func tsWebSocketMember(name string) string {
	return strings.ToUpper(strings.Replace(name, ":", "_", 1))
}

// tsDomainPayloadAlias is the TypeScript alias of a domain's payload type under the seed's name:
// "invoice" -> "InvoiceEventPayload", "hr" -> "HrEventPayload".
func tsDomainPayloadAlias(domain string) string { return tsDomainConst(domain) + "Payload" }

// tsMember is an event's key in its domain object, as in the seed's enums:
// "bank:transactions_synced" -> "TRANSACTIONS_SYNCED".
func tsMember(name string) string {
	_, rest, _ := strings.Cut(name, ":")
	return strings.ToUpper(rest)
}

// wrap breaks text into lines of at most width bytes (longer words stay whole).
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
