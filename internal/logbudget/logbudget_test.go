package logbudget_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/operate/realtime/internal/logbudget"
)

func TestBudget(t *testing.T) {
	var out bytes.Buffer
	l := slog.New(slog.NewTextHandler(&out, nil))
	b := logbudget.New(0.0001, 3) // three lines, then practically none
	for range 100 {
		b.Log(l, slog.LevelInfo, "refused")
	}
	if n := strings.Count(out.String(), "refused"); n != 3 {
		t.Fatalf("%d lines written, want 3:\n%s", n, out.String())
	}
	b = logbudget.New(1e9, 1) // refills at once: the next line tells what was dropped
	b.Log(l, slog.LevelInfo, "a")
	out.Reset()
	b.Log(l, slog.LevelDebug, "below the level") // not written, not counted
	b.Log(l, slog.LevelInfo, "b")
	if strings.Contains(out.String(), "notLogged") || !strings.Contains(out.String(), "msg=b") {
		t.Fatalf("log %q", out.String())
	}
}

func TestClip(t *testing.T) {
	if got := logbudget.Clip("short"); got != "short" {
		t.Errorf("Clip(short) = %q", got)
	}
	long := strings.Repeat("é", 1000) // 2 bytes each: the cut must not split one
	got := logbudget.Clip(long)
	if !strings.HasSuffix(got, "…(2000 bytes)") || len(got) > logbudget.MaxValue+20 || !strings.HasPrefix(got, "éé") {
		t.Errorf("Clip(long) = %.40q… (%d bytes)", got, len(got))
	}
	if strings.ContainsRune(strings.TrimSuffix(got, "…(2000 bytes)"), '\uFFFD') {
		t.Error("Clip split a character")
	}
}
