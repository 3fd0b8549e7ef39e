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
	if got := setting(db, "memory_limit"); got != "122.0 MiB" {
		t.Errorf("default memory_limit %s, want 128MB (122.0 MiB)", got)
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
	// The tables are in a file of the spill folder, which Close removes.
	rows, err = db.Strings(ctx, "SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || filepath.Dir(rows[0][0]) != spill {
		t.Fatalf("the database's file %v, want one in %s", rows, spill)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spill); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the spill folder %s is still there after Close (%v)", spill, err)
	}
}

// TestTablesAreWrittenInRowGroupsSizedToTheLimit: a table of rows as wide
// as payloads, five times the memory limit, is made in row groups of the
// limit's worth of 4KB rows, each of which DuckDB builds in memory before
// it writes it to the database's file.
func TestTablesAreWrittenInRowGroupsSizedToTheLimit(t *testing.T) {
	defer SetLimits(Limits{})
	if err := SetLimits(Limits{MemoryLimit: "48MiB", Threads: 1}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db := openDB(t)
	const wide = "CREATE TABLE wide AS SELECT i, repeat(md5(i::VARCHAR), 40) AS payload FROM range(200000) t(i)"
	if err := db.Exec(ctx, wide); err != nil {
		t.Fatalf("a table of 256MB under a 48MiB limit: %v", err)
	}
	rows, err := db.Strings(ctx, "SELECT (SELECT count(*) FROM wide), (SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('wide'))")
	if err != nil {
		t.Fatal(err)
	}
	if rows[0][0] != "200000" {
		t.Fatalf("the table holds %s rows, want 200000", rows[0][0])
	}
	per := rowGroupRows(CurrentLimits())
	if want := strconv.FormatInt((200000+per-1)/per, 10); per != 12288 || rows[0][1] != want {
		t.Errorf("%s row groups, want %s of %d rows (12288 under 48MiB)", rows[0][1], want, per)
	}
	// Under a large limit the row groups are DuckDB's largest, which it takes.
	if err := SetLimits(Limits{MemoryLimit: "4GB"}); err != nil {
		t.Fatal(err)
	}
	if per := rowGroupRows(CurrentLimits()); per != 122880 {
		t.Errorf("row groups of %d rows under 4GB, want 122880", per)
	}
	openDB(t)
}

// TestDuckDBsAllocatorReturnsWhatItFrees: once a database is open, DuckDB's
// allocator (its own jemalloc on Linux) has the decay the watch over what it
// keeps freed relies on, in every arena (TestDuckDBsAllocatorKeepsFewFreedPages).
// Elsewhere a DuckDB without jemalloc opens all the same (-1: nothing set).
func TestDuckDBsAllocatorReturnsWhatItFrees(t *testing.T) {
	openDB(t)
	n := returnFreedPages() // what Open set, once per process
	switch {
	case runtime.GOOS == "linux" && runtime.GOARCH == "amd64" && n < 1:
		t.Fatalf("Open set the decay of %d of jemalloc's arenas, want every one (at least one): DuckDB's linux/amd64 build brings its own jemalloc", n)
	case n == 0 || n < -1:
		t.Fatalf("returnFreedPages = %d: want the arenas set, or -1 without jemalloc", n)
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

// TestMemoryBytes: the limit in bytes is what DuckDB reads the size as, so
// that work sized to it fits.
func TestMemoryBytes(t *testing.T) {
	for _, tc := range []struct {
		limit string
		want  int64
	}{
		{"", 128_000_000}, // the default
		{"256MB", 256_000_000}, {"1GB", 1_000_000_000}, {"512MiB", 512 << 20},
		{"1.5GB", 1_500_000_000}, {"300 mb", 300_000_000}, {"64kib", 64 << 10}, {"lots", 0},
	} {
		if got := (Limits{MemoryLimit: tc.limit}).MemoryBytes(); got != tc.want {
			t.Errorf("%q: %d bytes, want %d", tc.limit, got, tc.want)
		}
	}
}
