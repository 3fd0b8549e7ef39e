package transform

import (
	"context"
	"fmt"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
)

// sortRowBytes is what one row of an output may cost its sort. Under a small
// memory limit DuckDB cannot sort rows as wide as the payloads all at once
// (a sort of wide rows does not spill: at 128MB it sorts 80,000 rows of
// 1.3KB, not 160,000), so an output is sorted in runs of as many rows as the
// memory limit holds at this cost, and merged a page of as many ranks at a
// time. A variable so that tests can make runs of one row.
var sortRowBytes int64 = 8192

// sortRows is how many rows one run or page of sortTable holds.
func sortRows() int { return rowsWithinLimit(sortRowBytes) }

// sortTable creates table <table>_sorted, whose insertion order (which a scan
// keeps: the transform sets preserve_insertion_order) is table's rows sorted
// by order, and returns its name. Only the keys are sorted whole: each row's
// rank k (its place in order) comes from a sort of the keys and the rowid;
// the rows are then sorted in runs of consecutive rowids by k, and the runs
// merged into the output one page of ranks at a time, each page a few rows
// of each run.
func sortTable(ctx context.Context, db *warehouse.DB, table, order string) (string, error) {
	t, out := warehouse.Ident(table), table+"_sorted"
	rows, err := db.Strings(ctx, "SELECT count(*), coalesce(max(rowid) + 1, 0) FROM "+t)
	if err != nil {
		return "", fmt.Errorf("sort %s: %w", table, err)
	}
	var n, end int
	if _, err := fmt.Sscan(rows[0][0]+" "+rows[0][1], &n, &end); err != nil {
		return "", fmt.Errorf("sort %s: %w", table, err)
	}
	per := sortRows()
	if n <= per {
		q := "CREATE TABLE " + warehouse.Ident(out) + " AS SELECT * FROM " + t + " ORDER BY " + order
		if err := db.Exec(ctx, q); err != nil {
			return "", fmt.Errorf("sort %s: %w", table, err)
		}
		return out, nil
	}
	s := runSort{db: db, table: t, rank: warehouse.Ident(table + "_rank"), runs: warehouse.Ident(table + "_runs"), out: warehouse.Ident(out)}
	if err := s.sort(ctx, order, n, end, per); err != nil {
		return "", fmt.Errorf("sort %s: %w", table, err)
	}
	return out, nil
}

// runSort is one sort of sortTable: the table, its ranks, its sorted runs
// and the output, as SQL identifiers.
type runSort struct {
	db                     *warehouse.DB
	table, rank, runs, out string
}

// sort ranks the n rows of the table (rowids below end), sorts them in runs
// of per rows and merges the runs into the output per ranks at a time.
func (s runSort) sort(ctx context.Context, order string, n, end, per int) error {
	steps := []string{
		// The keys' sort: rank k of each rowid r, stored in rowid order.
		"CREATE TABLE " + s.rank + " AS SELECT r, k FROM (SELECT rowid AS r, row_number() OVER (ORDER BY " + order + ") - 1 AS k FROM " + s.table + ") ORDER BY r",
		"CREATE TABLE " + s.runs + " AS SELECT t.*, CAST(0 AS BIGINT) AS __k FROM " + s.table + " AS t LIMIT 0",
		"CREATE TABLE " + s.out + " AS SELECT * FROM " + s.table + " LIMIT 0",
	}
	for from := 0; from < end; from += per {
		steps = append(steps, fmt.Sprintf(`INSERT INTO %[1]s SELECT t.*, rk.k FROM %[2]s AS t JOIN %[3]s AS rk ON rk.r = t.rowid
WHERE t.rowid >= %[4]d AND t.rowid < %[5]d AND rk.r >= %[4]d AND rk.r < %[5]d ORDER BY rk.k`, s.runs, s.table, s.rank, from, from+per))
	}
	for from := 0; from < n; from += per {
		steps = append(steps, fmt.Sprintf("INSERT INTO %s SELECT * EXCLUDE (__k) FROM %s WHERE __k >= %d AND __k < %d ORDER BY __k",
			s.out, s.runs, from, from+per))
	}
	steps = append(steps, "DROP TABLE "+s.runs, "DROP TABLE "+s.rank)
	for _, q := range steps {
		if err := s.db.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
