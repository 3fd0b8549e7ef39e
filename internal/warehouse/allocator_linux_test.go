package warehouse

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

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

// churn runs statements on db that allocate and free far more than
// keptFreed: a table of two million strings, grouped.
func churn(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	if err := db.Exec(ctx, "CREATE OR REPLACE TABLE churned AS SELECT range AS i, repeat('x', 60) || range::VARCHAR AS s FROM range(2000000)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Strings(ctx, "SELECT count(*) FROM (SELECT s, count(*) FROM churned GROUP BY s)"); err != nil {
		t.Fatal(err)
	}
}

// noJemalloc checks what a DuckDB without a jemalloc of its own gets: no
// decay set, no watch, nothing counted as kept freed. DuckDB's linux/amd64
// build brings a jemalloc, so there its absence fails.
func noJemalloc(t *testing.T) {
	t.Helper()
	if runtime.GOARCH == "amd64" {
		t.Fatal("DuckDB has no jemalloc of its own: its linux/amd64 build brings one")
	}
	db := openDB(t)
	churn(t, db)
	if n := returnFreedPages(); n != -1 {
		t.Errorf("returnFreedPages = %d without jemalloc; want -1", n)
	}
	if kept := freedKept(); kept != 0 {
		t.Errorf("%d bytes counted kept freed without jemalloc; want 0", kept)
	}
}

// TestDuckDBsAllocatorKeepsFewFreedPages: while a database is open, what
// DuckDB's allocator keeps of the memory it freed, for its next
// allocations, is given back once it is more than keptFreed, so a large
// window's transform stays near its memory limit without faulting in every
// page it allocates.
func TestDuckDBsAllocatorKeepsFewFreedPages(t *testing.T) {
	if decayMS() == -2 {
		noJemalloc(t)
		return
	}
	db := openDB(t)
	if got := decayMS(); got != keptDecay.Milliseconds() {
		t.Fatalf("decay %d ms once a database is open; want %d (the watch decides)", got, keptDecay.Milliseconds())
	}
	before := freedPages.purge.Load()
	churn(t, db)
	deadline := time.Now().Add(time.Second)
	for freedKept() > keptFreed && time.Now().Before(deadline) {
		time.Sleep(watchEvery)
	}
	if kept := freedKept(); kept > keptFreed {
		t.Errorf("DuckDB's allocator keeps %d MB freed a second after the statements; want at most %d MB", kept>>20, keptFreed>>20)
	}
	if freedPages.purge.Load() == before {
		t.Errorf("statements that freed hundreds of MB made no purge: the watch is not running")
	}
}

// TestClosingTheLastDatabaseGivesBackWhatIsKept: once no database is open,
// DuckDB's allocator keeps nothing freed (a run's load step does not carry
// the transform's pages) and no watch runs.
func TestClosingTheLastDatabaseGivesBackWhatIsKept(t *testing.T) {
	if decayMS() == -2 {
		noJemalloc(t)
		return
	}
	db, err := Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	churn(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	freedPages.mu.Lock()
	open := freedPages.open
	freedPages.mu.Unlock()
	if open != 0 {
		t.Fatalf("%d databases counted open after the only one closed", open)
	}
	if kept := freedKept(); kept > 1<<20 {
		t.Errorf("DuckDB's allocator keeps %d KB freed once no database is open; want none", kept>>10)
	}
}
