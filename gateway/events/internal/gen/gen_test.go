package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Paths from this directory (go test runs in the package directory).
const (
	catalogPath = "../../catalog.json"
	goPath      = "../../events_gen.go"
	schemaPath  = "../../schema.json"
	tsPath      = "../../../../clients/js/src/generated/events.ts"
	clientPath  = "../../../../client/events_gen.go"
	clientTest  = "../../../../client/events_gen_test.go"
)

// TestGeneratedFilesAreFresh regenerates into a temporary directory and compares with the
// checked-in files, so that a catalog change without `go generate` fails CI.
func TestGeneratedFilesAreFresh(t *testing.T) {
	dir := t.TempDir()
	out := outputs{
		goFile:         filepath.Join(dir, "events_gen.go"),
		schemaFile:     filepath.Join(dir, "schema.json"),
		tsFile:         filepath.Join(dir, "events.ts"),
		clientFile:     filepath.Join(dir, "client_events_gen.go"),
		clientTestFile: filepath.Join(dir, "client_events_gen_test.go"),
	}
	if err := run(catalogPath, out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ fresh, checkedIn string }{
		{out.goFile, goPath}, {out.schemaFile, schemaPath}, {out.tsFile, tsPath},
		{out.clientFile, clientPath}, {out.clientTestFile, clientTest},
	} {
		want, err := os.ReadFile(f.fresh)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f.checkedIn)
		if err != nil {
			t.Errorf("%s: %v: run go generate ./gateway/events", f.checkedIn, err)
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s: generated code is stale: run go generate ./gateway/events", f.checkedIn)
		}
	}
}

func TestGeneratedHeaders(t *testing.T) {
	for _, path := range []string{goPath, tsPath, clientPath, clientTest} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(data), "\n")
		if !strings.HasPrefix(first, "// Code generated ") || !strings.HasSuffix(first, " DO NOT EDIT.") {
			t.Errorf("%s: first line %q is not a generated-code header", path, first)
		}
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	data, err := os.ReadFile(catalogPath)
	if err != nil {
		t.Fatal(err)
	}
	var prev generated
	for i := range 3 {
		c, err := parseCatalog(data)
		if err != nil {
			t.Fatal(err)
		}
		g, err := generate(c)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && (!bytes.Equal(g.goSrc, prev.goSrc) || !bytes.Equal(g.schema, prev.schema) || !bytes.Equal(g.ts, prev.ts) ||
			!bytes.Equal(g.client, prev.client) || !bytes.Equal(g.clientTest, prev.clientTest)) {
			t.Fatal("two runs generated different output")
		}
		prev = g
	}
}

func TestCatalogChecks(t *testing.T) {
	valid, err := os.ReadFile(catalogPath)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, old, new, wantErr string
	}{
		{"unknown key", `"audience": "user",`, `"audience": "user", "audiense": "user",`, "unknown field"},
		{"bad audience", `"audience": "user"`, `"audience": "admins"`, "audience must be organization or user"},
		{"domain mismatch", `"name": "invoice:paid", "domain": "invoice"`, `"name": "invoice:paid", "domain": "expense"`, "must be the name's prefix"},
		{"duplicate event", `"name": "invoice:paid"`, `"name": "invoice:created"`, "duplicate"},
		{"unknown payload", `"payload": "TaxPayload"`, `"payload": "TaksPayload"`, `unknown payload type "TaksPayload"`},
		{"unknown type", `"name": "amount", "type": "number"`, `"name": "amount", "type": "money"`, `unknown type "money"`},
		{"unknown enum", `"enum": "NotificationType"`, `"enum": "Severity"`, `unknown enum "Severity"`},
		{"bad event name", `"name": "invoice:paid"`, `"name": "Invoice:Paid"`, "name must match"},
		{"seed alias taken", `"name": "TaxPayload"`, `"name": "TaxEventPayload"`, "identifier TaxEventPayload is already used by domain tax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := strings.Replace(string(valid), tt.old, tt.new, 1)
			if data == string(valid) {
				t.Fatalf("test edit %q not found in the catalog", tt.old)
			}
			_, err := parseCatalog([]byte(data))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
