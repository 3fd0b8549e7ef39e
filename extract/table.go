package extract

import (
	"context"
	"fmt"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pqzstd"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// table streams the rows of one raw table into a Parquet object of the stage.
// Rows reach the Parquet writer batchRows at a time, and a row group is
// flushed once it holds rowGroup rows or maxRowGroupBytes, so memory stays
// flat however large the window is. The object is committed by close and
// discarded by abort.
type table[T any] struct {
	name      string
	w         *stage.Writer
	pw        *parquet.GenericWriter[T]
	buf       []T
	rowGroup  int
	groupRows int   // rows written to the row group being built
	written   int64 // the writer's size when that row group began
	snap      stage.TableSnapshot
}

// batchRows is how many rows a table hands the Parquet writer at once.
const batchRows = 512

// maxRowGroupBytes bounds the row group a table builds in memory (its
// column buffers and the compressed pages of the group) as the writer
// estimates it: about 5,600 invoice rows, 400 KB once compressed. Smaller
// groups cost the readers: DuckDB parses some 1.5 KB of metadata per column
// chunk for every scan of the file (a month-end hour's items in 256 KiB
// groups: 548 groups, 15 MB a scan, and the transform 30 MB more RSS).
const maxRowGroupBytes = 1 << 20

// openTable starts the object key of table name.
func openTable[T any](ctx context.Context, st *stage.Stage, name, key string, rowGroup int) (*table[T], error) {
	w, err := st.NewWriter(ctx, key)
	if err != nil {
		return nil, err
	}
	return &table[T]{
		name:     name,
		w:        w,
		pw:       parquet.NewGenericWriter[T](w, pqzstd.Options()...),
		buf:      make([]T, 0, min(rowGroup, batchRows)),
		rowGroup: rowGroup,
	}, nil
}

// add appends one row whose record was last updated at updated (zero when unknown).
func (t *table[T]) add(row T, updated time.Time) error {
	t.buf = append(t.buf, row)
	t.snap.Rows++
	if updated.IsZero() {
		// a quarantined record without a readable updatedDate: no bound to move
	} else if t.snap.MinUpdated == nil || updated.Before(*t.snap.MinUpdated) {
		u := updated
		t.snap.MinUpdated = &u
	}
	if !updated.IsZero() && (t.snap.MaxUpdated == nil || updated.After(*t.snap.MaxUpdated)) {
		u := updated
		t.snap.MaxUpdated = &u
	}
	if len(t.buf) < cap(t.buf) {
		return nil
	}
	return t.write(false)
}

// addAmount adds a document's header amount to its currency's sum.
func (t *table[T]) addAmount(currency *string, amount decimal.Decimal) {
	if t.snap.Amounts == nil {
		t.snap.Amounts = map[string]decimal.Decimal{}
	}
	c := ""
	if currency != nil {
		c = *currency
	}
	t.snap.Amounts[c] = t.snap.Amounts[c].Add(amount)
}

// write hands the buffered rows to the Parquet writer and flushes the row
// group when it is full, by rows or by size, or when last is set.
func (t *table[T]) write(last bool) error {
	if len(t.buf) > 0 {
		if _, err := t.pw.Write(t.buf); err != nil {
			return fmt.Errorf("write %s rows: %w", t.name, err)
		}
		t.groupRows += len(t.buf)
		clear(t.buf)
		t.buf = t.buf[:0]
	}
	full := t.groupRows >= t.rowGroup || t.pw.Size()-t.written >= maxRowGroupBytes
	if t.groupRows == 0 || !last && !full {
		return nil
	}
	if err := t.pw.Flush(); err != nil {
		return fmt.Errorf("flush %s row group: %w", t.name, err)
	}
	t.groupRows, t.written = 0, t.pw.Size()
	return nil
}

// close writes the last row group and the footer and commits the object; a
// table with no rows still gets a valid file so readers always find its
// schema. The snapshot it returns lists the object.
func (t *table[T]) close() (stage.TableSnapshot, error) {
	if err := t.write(true); err != nil {
		return stage.TableSnapshot{}, err
	}
	if err := t.pw.Close(); err != nil {
		return stage.TableSnapshot{}, fmt.Errorf("close %s parquet: %w", t.name, err)
	}
	if err := t.w.Close(); err != nil {
		return stage.TableSnapshot{}, err
	}
	snap := t.snap
	snap.Files = []stage.ObjectInfo{t.w.Info()}
	return snap, nil
}

// abort discards the object unless close committed it.
func (t *table[T]) abort() { t.w.Abort() }
