package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// priorKeys returns, per document (header) table, the key of every record
// version that another committed window staged with an updatedDate inside
// [from, w.End): those are the rows this window's walks would otherwise stage
// a second time, and the only ones they can meet, as a walk drops every row
// outside its range first. Under stage.QuarantineTable it keeps the records
// those windows quarantined in that range, and those without a readable
// updatedDate, which no range bounds.
func priorKeys(ctx context.Context, st *stage.Stage, w stage.Window, from time.Time) (map[string]keySet, error) {
	windows, err := st.Windows(ctx)
	if err != nil {
		return nil, fmt.Errorf("list committed windows: %w", err)
	}
	p := &priorReader{st: st, r: span{from, w.End}, keys: map[string]keySet{}}
	for _, other := range windows {
		if other.ID() == w.ID() || !other.End.After(from) || !other.Start.Before(w.End) {
			continue
		}
		if err := p.window(ctx, other); err != nil {
			return nil, err
		}
	}
	return p.keys, nil
}

// priorReader collects the keys of earlier windows that fall in r.
type priorReader struct {
	st   *stage.Stage
	r    span
	keys map[string]keySet
}

// window adds the keys of one committed window, if its extract is still there.
func (p *priorReader) window(ctx context.Context, other stage.Window) error {
	m, found, err := p.st.ReadExtract(ctx, other)
	if err != nil || !found {
		return err
	}
	for _, table := range stage.HeaderTables() { // items follow their document
		for _, f := range m.Tables[table].Files {
			if err := readKeys(ctx, p.st, f.Key, p.set(table), p.r); err != nil {
				return fmt.Errorf("read keys of window %s: %w", other.ID(), err)
			}
		}
	}
	for _, f := range m.Tables[stage.QuarantineTable].Files {
		if err := readQuarantineKeys(ctx, p.st, f.Key, p.set(stage.QuarantineTable), p.r); err != nil {
			return fmt.Errorf("read quarantine keys of window %s: %w", other.ID(), err)
		}
	}
	return nil
}

// set is the key set of table, made on first use.
func (p *priorReader) set(table string) keySet {
	if p.keys[table] == nil {
		p.keys[table] = keySet{}
	}
	return p.keys[table]
}

// readKeys adds to into the key of every row of a staged Parquet file dated in r.
func readKeys(ctx context.Context, st *stage.Stage, key string, into keySet, r span) error {
	return eachRow(ctx, st, key, func(row stage.KeyRow) {
		if row.UpdatedDate != nil && r.has(*row.UpdatedDate) {
			into[keyOf(row.ID, *row.UpdatedDate)] = struct{}{}
		}
	})
}

// readQuarantineKeys adds to into the key of every record of a staged
// quarantine part dated in r or not dated at all.
func readQuarantineKeys(ctx context.Context, st *stage.Stage, key string, into keySet, r span) error {
	return eachRow(ctx, st, key, func(row stage.QuarantineKeyRow) {
		if row.UpdatedDate == nil || r.has(*row.UpdatedDate) {
			into[quarantineKey(row.DocKey, row.UpdatedDate)] = struct{}{}
		}
	})
}

// eachRow calls f with every row of the staged Parquet file key, read as T
// (the columns T names), 1024 rows at a time.
func eachRow[T any](ctx context.Context, st *stage.Stage, key string, f func(T)) error {
	data, err := st.Read(ctx, key)
	if err != nil {
		return err
	}
	r := parquet.NewGenericReader[T](bytes.NewReader(data))
	defer r.Close()
	buf := make([]T, 1024)
	for {
		n, err := r.Read(buf)
		for _, row := range buf[:n] {
			f(row)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
	}
}
