package transform

import (
	"context"
	"fmt"
	"strings"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// bucketRowBytes is what one header or item row may cost a run of its
// document's mapping file. The file runs once per bucket of the window's
// documents, as many rows to a bucket as the memory limit holds at this
// cost, so that what it holds at once (the ordered aggregate of each
// document's items, which DuckDB cannot spill) is one bucket's, whatever
// the size of the window. The invoices of a month-end hour (560,000 header
// and item rows) map under 128MB in buckets of 100,000 rows, not of 187,000.
// A variable so that tests can make buckets of one row.
var bucketRowBytes int64 = 2048

// bucketRows is how many header and item rows one bucket holds.
func bucketRows() int { return rowsWithinLimit(bucketRowBytes) }

// rowsWithinLimit is how many rows of perRow bytes the memory limit holds,
// at least one.
func rowsWithinLimit(perRow int64) int {
	return int(max(1, warehouse.CurrentLimits().MemoryBytes()/perRow))
}

// bucketed is the tables of one document type seen one bucket at a time:
// its header table by id, its item table by the id of the item's document.
type bucketed struct {
	db      *warehouse.DB
	catalog string      // the database that holds the tables the views shadow
	tables  [][2]string // each table and the column of the document's id
	n       int         // the number of buckets
}

// bucketsOf returns how the mapping of dt is split: into one bucket per
// bucketRows of its header and item rows, at least one.
func bucketsOf(ctx context.Context, db *warehouse.DB, dt stage.DocType) (*bucketed, error) {
	b := &bucketed{db: db, n: 1}
	if !dt.IsDocument() {
		return b, nil
	}
	b.tables = [][2]string{{dt.HeaderTable(), "id"}}
	if dt.ItemTable() != "" {
		b.tables = append(b.tables, [2]string{dt.ItemTable(), dt.ItemParentColumn()})
	}
	counts := make([]string, len(b.tables))
	for i, t := range b.tables {
		counts[i] = "(SELECT count(*) FROM " + warehouse.Ident(t[0]) + ")"
	}
	rows, err := db.Strings(ctx, "SELECT current_database(), "+strings.Join(counts, " + "))
	if err != nil {
		return nil, fmt.Errorf("buckets of %s: %w", dt, err)
	}
	var total int
	if _, err := fmt.Sscan(rows[0][1], &total); err != nil {
		return nil, fmt.Errorf("buckets of %s: %w", dt, err)
	}
	b.catalog = rows[0][0]
	per := bucketRows()
	b.n = max(1, (total+per-1)/per)
	return b, nil
}

// view makes the tables show only bucket i (a temporary view of each, named
// as the table, shadows it); with one bucket they show everything as they are.
func (b *bucketed) view(ctx context.Context, i int) error {
	if b.n == 1 {
		return nil
	}
	var q []string
	for _, t := range b.tables {
		q = append(q, fmt.Sprintf("CREATE OR REPLACE TEMP VIEW %s AS SELECT * FROM %s.main.%s WHERE hash(%s) %% %d = %d",
			warehouse.Ident(t[0]), warehouse.Ident(b.catalog), warehouse.Ident(t[0]), warehouse.Ident(t[1]), b.n, i))
	}
	return b.db.Exec(ctx, strings.Join(q, ";\n"))
}

// drop removes the views, so that the transform's own SQL reads whole tables.
func (b *bucketed) drop(ctx context.Context) error {
	if b.n == 1 {
		return nil
	}
	var q []string
	for _, t := range b.tables {
		q = append(q, "DROP VIEW IF EXISTS temp.main."+warehouse.Ident(t[0]))
	}
	return b.db.Exec(ctx, strings.Join(q, ";\n"))
}

// mapInBuckets runs the SELECT q of a mapping file into table mapped_<dt>,
// one bucket of dt's documents at a time.
func mapInBuckets(ctx context.Context, db *warehouse.DB, dt stage.DocType, q string) error {
	b, err := bucketsOf(ctx, db, dt)
	if err != nil {
		return err
	}
	target := warehouse.Ident("mapped_" + string(dt))
	for i := range b.n {
		if err := b.view(ctx, i); err != nil {
			return fmt.Errorf("bucket %d of %d: %w", i+1, b.n, err)
		}
		stmt := "CREATE TABLE " + target + " AS\n" + q
		if i > 0 {
			stmt = "INSERT INTO " + target + " SELECT * FROM (\n" + q + "\n)"
		}
		if err := db.Exec(ctx, stmt); err != nil { // the transform stops: the views may stay
			if b.n > 1 {
				return fmt.Errorf("bucket %d of %d: %w", i+1, b.n, err)
			}
			return err
		}
	}
	return b.drop(ctx)
}
