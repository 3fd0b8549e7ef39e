package logctx

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestContextFieldsOnEveryLine(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Handler(slog.NewJSONHandler(&buf, nil))).With("run_id", "run-1")
	ctx := With(context.Background(), "window", "w1")
	log.InfoContext(ctx, "from the context")
	log.With("window", "w1", "run_id", "run-1").InfoContext(ctx, "said twice", "run_id", "run-1")
	log.InfoContext(With(ctx, "entity", "invoices"), "nested")
	log.Info("no context")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, want := range []map[string]string{
		{"window": "w1", "run_id": "run-1"},
		{"window": "w1", "run_id": "run-1"},
		{"window": "w1", "entity": "invoices", "run_id": "run-1"},
		{"run_id": "run-1"},
	} {
		var got map[string]any
		json.Unmarshal([]byte(lines[i]), &got)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("line %d: %s = %v, want %v: %s", i, k, got[k], v, lines[i])
			}
		}
		if strings.Count(lines[i], `"run_id"`) != 1 || strings.Count(lines[i], `"window"`) > 1 {
			t.Errorf("line %d says a field twice: %s", i, lines[i])
		}
	}
}
