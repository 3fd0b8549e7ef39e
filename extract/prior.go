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

// priorKeys returns, per document (header) table, the (id, updatedDate) of every record
// that another committed window staged inside [from, w.End): those are the rows
// this window's overlap would otherwise stage a second time. Under
// stage.QuarantineTable it keeps the records those windows quarantined.
func priorKeys(ctx context.Context, st *stage.Stage, w stage.Window, from time.Time) (map[string]map[docKey]bool, error) {
	windows, err := st.Windows(ctx)
	if err != nil {
		return nil, fmt.Errorf("list committed windows: %w", err)
	}
	keys := map[string]map[docKey]bool{}
	for _, other := range windows {
		if other.ID() == w.ID() || !other.End.After(from) || !other.Start.Before(w.End) {
			continue
		}
		m, found, err := st.ReadExtract(ctx, other)
		if err != nil {
			return nil, err
		}
		if !found {
			continue
		}
		for _, table := range stage.HeaderTables() { // items follow their document
			for _, f := range m.Tables[table].Files {
				if keys[table] == nil {
					keys[table] = map[docKey]bool{}
				}
				if err := readKeys(ctx, st, f.Key, keys[table]); err != nil {
					return nil, fmt.Errorf("read keys of window %s: %w", other.ID(), err)
				}
			}
		}
		for _, f := range m.Tables[stage.QuarantineTable].Files {
			if keys[stage.QuarantineTable] == nil {
				keys[stage.QuarantineTable] = map[docKey]bool{}
			}
			if err := readQuarantineKeys(ctx, st, f.Key, keys[stage.QuarantineTable]); err != nil {
				return nil, fmt.Errorf("read quarantine keys of window %s: %w", other.ID(), err)
			}
		}
	}
	return keys, nil
}

// readKeys adds the (id, updated_date) of every row of a staged Parquet file to into.
func readKeys(ctx context.Context, st *stage.Stage, key string, into map[docKey]bool) error {
	data, err := st.Read(ctx, key)
	if err != nil {
		return err
	}
	r := parquet.NewGenericReader[stage.KeyRow](bytes.NewReader(data))
	defer r.Close()
	buf := make([]stage.KeyRow, 1024)
	for {
		n, err := r.Read(buf)
		for _, row := range buf[:n] {
			if row.UpdatedDate != nil {
				into[keyOf(row.ID, *row.UpdatedDate)] = true
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
	}
}

// readQuarantineKeys adds the key of every record of a staged quarantine part to into.
func readQuarantineKeys(ctx context.Context, st *stage.Stage, key string, into map[docKey]bool) error {
	data, err := st.Read(ctx, key)
	if err != nil {
		return err
	}
	rows, err := parquet.Read[stage.QuarantineKeyRow](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	for _, r := range rows {
		into[quarantineKey(r.DocKey, r.UpdatedDate)] = true
	}
	return nil
}
