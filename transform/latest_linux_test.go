package transform

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// itemsInRowGroups writes n row groups of 10 invoice items each, as the
// extract writes a large window's items (a row group per 256KB), every id
// of the first row group staged twice; DuckDB parses the metadata of all
// the file's column chunks for each scan of it, some 1.5KB a chunk.
func itemsInRowGroups(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "invoice_items.parquet")
	at := time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)
	testutil.RowGroups(t, path, n, func(g int) []stage.InvoiceItemRow {
		rows := make([]stage.InvoiceItemRow, 10)
		for i := range rows {
			id := fmt.Sprintf("item-%d-%d", g, i)
			if g == n-1 {
				id = fmt.Sprintf("item-0-%d", i) // a later version of an id staged already
			}
			u := at.Add(time.Duration(g) * time.Second)
			rows[i] = stage.InvoiceItemRow{ID: id, UpdatedDate: &u, InvoiceID: ptr("inv-" + id), ChargeName: ptr("charge " + id)}
		}
		return rows
	})
	return path
}

// TestLatestVersionsReadTheRawFileOnceAtATime: keeping the latest version of
// each id scans the window's file three times (the ids staged twice, the
// others, the ranked ones), one statement a scan, so that the metadata of a
// large window's file is in memory once at a time, not three times at once.
func TestLatestVersionsReadTheRawFileOnceAtATime(t *testing.T) {
	ctx := context.Background()
	db, err := warehouse.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Exec(ctx, "SET threads = 1; SET preserve_insertion_order = true"); err != nil { // as prepare sets them
		t.Fatal(err)
	}
	const groups = 600
	path := itemsInRowGroups(t, groups)
	if err := db.ViewParquet(ctx, "raw_invoice_items", "invoice_items", []warehouse.Source{{Path: path, Window: "w"}}); err != nil {
		t.Fatal(err)
	}
	peak := func(q string) int64 {
		runtime.GC()
		debug.FreeOSMemory()
		before := testutil.ProcStatusKB(t, "VmRSS")
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil { // VmHWM := VmRSS
			t.Fatal(err)
		}
		if err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
		return testutil.ProcStatusKB(t, "VmHWM") - before
	}
	// What one scan of every column holds (the file's metadata, a row group's
	// columns), once DuckDB's first-time work is done.
	peak(`CREATE TABLE scanned AS SELECT * EXCLUDE ("window") FROM raw_invoice_items`)
	one := peak(`CREATE OR REPLACE TABLE scanned AS SELECT * EXCLUDE ("window") FROM raw_invoice_items`)
	var latest int64
	for _, q := range latestSQL("invoice_items") {
		latest = max(latest, peak(q))
	}
	t.Logf("one scan: %d MB above the RSS before, the latest versions: %d MB", one>>10, latest>>10)
	if latest > one+one/2 {
		t.Errorf("the latest versions of %d row groups of items held %d MB at their peak, one scan %d MB: want them no more than one scan's and a half", groups, latest>>10, one>>10)
	}
	rows, err := db.Strings(ctx, `SELECT count(*), count(DISTINCT id), max(updated_date) FILTER (WHERE id = 'item-0-3') = max(updated_date) FROM invoice_items`)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa((groups - 1) * 10); rows[0][0] != want || rows[0][1] != want || rows[0][2] != "true" {
		t.Errorf("latest versions: %v rows, distinct ids, the later version kept; want %s, %s, true", rows[0], want, want)
	}
}
