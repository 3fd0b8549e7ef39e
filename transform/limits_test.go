package transform

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
)

// TestTheTransformRunsWithinItsMemoryLimit: the DuckDB the transform opens
// holds no more memory than the warehouse's limit, and spills to a folder of
// its own. The mapping itself asks DuckDB: a file of the SQL folder raises an
// error unless memory_limit is the one set.
func TestTheTransformRunsWithinItsMemoryLimit(t *testing.T) {
	defer func() {
		if err := warehouse.SetLimits(warehouse.Limits{}); err != nil {
			t.Fatal(err)
		}
	}()
	for _, tc := range []struct {
		limit, shows string
	}{
		{"", "953.6 MiB"}, // the default, 1GB
		{"128MiB", "128.0 MiB"},
	} {
		if err := warehouse.SetLimits(warehouse.Limits{MemoryLimit: tc.limit}); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		probe := "SELECT CASE WHEN current_setting('memory_limit') <> '" + tc.shows + "' THEN " +
			"error('the transform runs without its memory limit: memory_limit is ' || current_setting('memory_limit')) END;\n"
		if err := os.WriteFile(filepath.Join(dir, "_zz_memory_limit.sql"), []byte(probe), 0o644); err != nil {
			t.Fatal(err)
		}
		st := fixtureStage(t)
		m, err := Run(context.Background(), st, testWindow, Options{RunID: "limits", SQLDir: dir})
		if err != nil {
			t.Fatalf("limit %q: %v", tc.limit, err)
		}
		if len(m.Totals) == 0 || !strings.HasPrefix(m.Documents.Key, "ready/") {
			t.Fatalf("limit %q: the transform committed nothing: %+v", tc.limit, m)
		}
	}
}
