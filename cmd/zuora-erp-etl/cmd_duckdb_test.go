package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
)

// TestDuckDBSettingsAreChecked: a DuckDB setting it cannot use is a one-line
// error naming the flag, from a flag or from the environment (exit 2).
func TestDuckDBSettingsAreChecked(t *testing.T) {
	defer warehouse.SetLimits(warehouse.Limits{})
	environ := map[string]string{"ETL_STAGE": "file://" + t.TempDir(),
		"ZUORA_BASE_URL": "http://127.0.0.1:1", "ZUORA_CLIENT_ID": "id", "ZUORA_CLIENT_SECRET": envZuoraSecret,
		"ERP_BASE_URL": "http://127.0.0.1:1", "ERP_TOKEN": envERPToken}
	id := "20261124T000000Z-20261124T010000Z"
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--duckdb-memory-limit", "lots"}, []string{"--duckdb-memory-limit", "256MB"}},
		{[]string{"transform", "--window", id, "--duckdb-memory-limit", "256"}, []string{"--duckdb-memory-limit"}},
		{[]string{"query", "--duckdb-temp-dir", filepath.Join(t.TempDir(), "none"), "select 1"}, []string{"--duckdb-temp-dir", "existing folder"}},
		{[]string{"load", "--window", id, "--duckdb-threads", "-2"}, []string{"--duckdb-threads"}},
		{[]string{"run", "--duckdb-threads", "two"}, []string{"--duckdb-threads"}},
	} {
		code, stdout, stderr := runCLIWithin(t, 5*time.Second, environ, tc.args...)
		assertOneLineUsageError(t, tc.args, code, stdout, stderr, tc.want...)
	}
	env := map[string]string{}
	for k, v := range environ {
		env[k] = v
	}
	env["ETL_DUCKDB_MEMORY_LIMIT"] = "much"
	code, stdout, stderr := runCLIWithin(t, 5*time.Second, env, "run")
	assertOneLineUsageError(t, []string{"run", "(ETL_DUCKDB_MEMORY_LIMIT=much)"}, code, stdout, stderr, "--duckdb-memory-limit", `"much"`)
	if code, _, _ := runCLI(t, environ, "extract", "--help"); code != exitOK {
		t.Fatalf("extract --help: exit %d", code)
	}
	if _, _, help := runCLI(t, environ, "extract", "--help"); strings.Contains(help, "-duckdb-") {
		t.Errorf("extract --help lists DuckDB settings, which it does not use")
	}
}

// TestDuckDBMemoryLimitReachesTheTransform: the limit set by flag (or left at
// its default) is the one the DuckDB of a run's transform holds; a mapping
// file asks DuckDB and fails the run otherwise.
func TestDuckDBMemoryLimitReachesTheTransform(t *testing.T) {
	defer warehouse.SetLimits(warehouse.Limits{})
	for _, tc := range []struct {
		flags []string
		shows string
	}{
		{nil, "122.0 MiB"}, // the default, 128MB
		{[]string{"--duckdb-memory-limit", "100MiB", "--duckdb-temp-dir", t.TempDir(), "--duckdb-threads", "1"}, "100.0 MiB"},
	} {
		_, environ := demoEnviron(t)
		sqlDir := t.TempDir()
		probe := "SELECT CASE WHEN current_setting('memory_limit') <> '" + tc.shows + "' THEN " +
			"error('the transform runs without its memory limit: memory_limit is ' || current_setting('memory_limit')) END;\n"
		if err := os.WriteFile(filepath.Join(sqlDir, "_zz_memory_limit.sql"), []byte(probe), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"run", "--since", demo.From.Format(time.RFC3339), "--until", demo.From.Add(time.Hour).Format(time.RFC3339), "--sql-dir", sqlDir}, tc.flags...)
		code, stdout, stderr := runCLI(t, environ, args...)
		if code != exitOK && code != exitRejected {
			t.Fatalf("%v: exit %d\n%s\n%s", tc.flags, code, stdout, stderr)
		}
	}
}
