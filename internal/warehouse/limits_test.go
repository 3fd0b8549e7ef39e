package warehouse

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestOpenAppliesTheLimits: every database Open makes has the memory limit,
// the threads and a spill folder of its own under TempDir, removed at Close.
func TestOpenAppliesTheLimits(t *testing.T) {
	defer SetLimits(Limits{})
	ctx := context.Background()
	setting := func(db *DB, name string) string {
		t.Helper()
		rows, err := db.Strings(ctx, "SELECT current_setting("+Literal(name)+")::VARCHAR")
		if err != nil {
			t.Fatal(err)
		}
		return rows[0][0]
	}

	db := openDB(t)
	if got := setting(db, "memory_limit"); got != "953.6 MiB" {
		t.Errorf("default memory_limit %s, want 1GB (953.6 MiB)", got)
	}
	if got, want := setting(db, "threads"), runtime.GOMAXPROCS(0); got != strconv.Itoa(want) {
		t.Errorf("default threads %s, want GOMAXPROCS %d", got, want)
	}
	if got := setting(db, "temp_directory"); !strings.HasPrefix(got, os.TempDir()) {
		t.Errorf("default temp_directory %s, want a folder under %s", got, os.TempDir())
	}

	base := t.TempDir()
	if err := SetLimits(Limits{MemoryLimit: "64MiB", TempDir: base, Threads: 1}); err != nil {
		t.Fatal(err)
	}
	db = openDB(t)
	if got := setting(db, "memory_limit"); got != "64.0 MiB" {
		t.Errorf("memory_limit %s, want 64.0 MiB", got)
	}
	if got := setting(db, "threads"); got != "1" {
		t.Errorf("threads %s, want 1", got)
	}
	spill := setting(db, "temp_directory")
	if filepath.Dir(spill) != base {
		t.Fatalf("temp_directory %s, want a folder of its own in %s", spill, base)
	}
	// A sort of more than the limit holds (some 95 MB of strings) spills
	// instead of failing.
	const sortQuery = "SELECT max(n) FROM (SELECT row_number() OVER (ORDER BY s) AS n FROM (SELECT md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS s FROM range(1000000) t(i)))"
	rows, err := db.Strings(ctx, sortQuery)
	if err != nil {
		t.Fatalf("a query larger than the limit: %v", err)
	}
	if rows[0][0] != "1000000" {
		t.Fatalf("the sort counted %s rows, want 1000000", rows[0][0])
	}
	// Without a spill folder the same query does not fit: the limit holds.
	bare := openDB(t)
	if err := bare.Exec(ctx, "SET temp_directory = ''"); err != nil {
		t.Fatal(err)
	}
	if _, err := bare.Strings(ctx, sortQuery); err == nil || !strings.Contains(err.Error(), "Out of Memory") {
		t.Fatalf("the sort without a spill folder: %v, want DuckDB out of memory", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spill); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the spill folder %s is still there after Close (%v)", spill, err)
	}
}

// TestLimitsRefused: a setting DuckDB cannot take is refused by name.
func TestLimitsRefused(t *testing.T) {
	defer SetLimits(Limits{})
	for _, l := range []Limits{{MemoryLimit: "lots"}, {MemoryLimit: "256"}, {TempDir: filepath.Join(t.TempDir(), "none")}, {Threads: -1}} {
		var le *LimitError
		if err := SetLimits(l); !errors.As(err, &le) {
			t.Errorf("%+v: %v, want a *LimitError", l, err)
		}
	}
	for _, ok := range []string{"256MB", "1GB", "512MiB", "1.5GB", "300 mb"} {
		if err := SetLimits(Limits{MemoryLimit: ok}); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
