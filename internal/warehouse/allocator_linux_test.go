package warehouse

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
)

// wideRow is a row of 24 short text columns.
type wideRow struct {
	C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17, C18, C19, C20, C21, C22, C23 string
}

// manyRowGroups writes a Parquet file of n row groups of 10 rows each, as the
// extract writes a large window's table in row groups of 256KB: what DuckDB
// reads of it before a scan (its metadata, every column chunk's) grows with n.
func manyRowGroups(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "many-row-groups.parquet")
	testutil.RowGroups(t, path, n, func(g int) []wideRow {
		rows := make([]wideRow, 10)
		for i := range rows {
			s := fmt.Sprintf("value-%d-%d", g, i)
			rows[i] = wideRow{s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}
		}
		return rows
	})
	return path
}

// rssBytes is the process's resident memory.
func rssBytes(t *testing.T) int64 { return testutil.ProcStatusKB(t, "VmRSS") << 10 }

// TestAStatementLeavesNoFreedHeapResident: what DuckDB allocates outside its
// buffer pool with the C library's malloc (a Parquet file's metadata, some
// 1.5KB per column chunk, read again by every statement that scans the file)
// is back with the system once the statement ends, not kept by malloc as free
// memory for the rest of the process.
func TestAStatementLeavesNoFreedHeapResident(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	path := manyRowGroups(t, 600)
	scan := "SELECT count(*) FROM read_parquet(" + Literal(path) + ")"
	file := "read_parquet(" + Literal(path) + ")"
	read := "CREATE TABLE copied AS SELECT C0 FROM " + file + " WHERE C0 NOT IN (SELECT C0 FROM " + file + " GROUP BY C0 HAVING count(*) > 1) AND C1 LIKE '%999' UNION ALL SELECT C0 FROM " + file + " WHERE C1 IS NULL"
	if err := db.Exec(ctx, "CREATE TABLE counted AS "+scan); err != nil { // once, for what stays (DuckDB's caches, the catalog)
		t.Fatal(err)
	}
	before := rssBytes(t)
	if err := db.Exec(ctx, read); err != nil {
		t.Fatal(err)
	}
	if grown := rssBytes(t) - before; grown > 16<<20 {
		t.Errorf("the process holds %d MB more after a statement that read the metadata of %s three times at once, want what it freed returned (under 16 MB more)", grown>>20, filepath.Base(path))
	}
}

// TestALargeInputReturnsFreedPagesAtOnce: DuckDB's allocator keeps what it
// frees for smallDecay while the databases read small windows, and gives it
// back at once from the first database that views largeInput of Parquet, so
// that a large window's transform stays within its memory limit.
func TestALargeInputReturnsFreedPagesAtOnce(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	jemalloc := decayMS() != -2
	if !jemalloc && runtime.GOARCH == "amd64" {
		t.Fatal("DuckDB has no jemalloc of its own: its linux/amd64 build brings one")
	}
	path := manyRowGroups(t, 10)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	eagerBefore := decayMS() == 0 // another test viewed a large input first
	if got := decayMS(); jemalloc && got != smallDecay.Milliseconds() && !eagerBefore {
		t.Fatalf("decay %d ms after Open; want %d, or 0 after a large input", got, smallDecay.Milliseconds())
	}
	defer func(l int64) { largeInput = l }(largeInput)
	largeInput = 2*fi.Size() + 1 // this file is small; twice it and one byte is large
	if err := db.ViewParquet(ctx, "small", "t", []Source{{Path: path, Window: "w"}}); err != nil {
		t.Fatal(err)
	}
	if decayMS() == 0 && !eagerBefore {
		t.Fatal("a small input set the decay to 0")
	}
	if err := db.ViewParquet(ctx, "small_again", "t", []Source{{Path: path, Window: "w"}, {Path: path, Window: "w"}}); err != nil {
		t.Fatal(err)
	}
	if got, want := decayMS(), map[bool]int64{true: 0, false: -2}[jemalloc]; got != want {
		t.Fatalf("decay %d ms after the database viewed %d bytes; want %d from %d", got, 3*fi.Size(), want, largeInput)
	}
}
