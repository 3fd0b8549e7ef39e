package transform

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// prepareQuarantine creates table quarantined: the window's quarantined
// documents that no good row of the window supersedes (a row a re-check
// fetched, or a later version), one per document. Their rows, if any, leave
// the header tables, so that each document is accounted for once, as MALFORMED.
func prepareQuarantine(ctx context.Context, st *stage.Stage, w stage.Window, db *warehouse.DB, em stage.ExtractManifest) error {
	var srcs []warehouse.Source
	for _, f := range em.Tables[stage.QuarantineTable].Files {
		p, err := st.LocalPath(ctx, f.Key, f.SHA256)
		if err != nil {
			return err
		}
		srcs = append(srcs, warehouse.Source{Path: p, Window: w.ID()})
	}
	if err := db.ViewParquet(ctx, "raw_quarantine", stage.QuarantineTable, srcs); err != nil {
		return err
	}
	var heads, deletes []string
	for _, dt := range stage.Streams() {
		heads = append(heads, fmt.Sprintf("SELECT %s AS doc_type, id, updated_date, rechecked_at FROM %s",
			warehouse.Literal(string(dt)), warehouse.Ident(dt.HeaderTable())))
		deletes = append(deletes, fmt.Sprintf("DELETE FROM %s WHERE id IN (SELECT zuora_id FROM quarantined WHERE doc_type = %s)",
			warehouse.Ident(dt.HeaderTable()), warehouse.Literal(string(dt))))
	}
	q := `CREATE TABLE quarantined AS
WITH heads AS (` + strings.Join(heads, "\nUNION ALL\n") + `)
SELECT q.doc_type, q.doc_key AS zuora_id, q.number, CAST(NULL AS VARCHAR) AS customer, q.currency, q.amount,
    format('{} {}: quarantined as MALFORMED (the raw record is in the quarantine table): {}',
        replace(q.doc_type, '_', ' '), coalesce(q.number, q.doc_key), q.reason) AS message
FROM raw_quarantine AS q
WHERE NOT EXISTS (
    SELECT 1 FROM heads AS h
    WHERE h.doc_type = q.doc_type AND h.id = q.doc_key
      AND (h.rechecked_at IS NOT NULL OR (q.updated_date IS NOT NULL AND h.updated_date > q.updated_date)))
QUALIFY row_number() OVER (PARTITION BY q.doc_type, q.doc_key ORDER BY q.updated_date DESC NULLS LAST, q.quarantined_at DESC) = 1;
` + strings.Join(deletes, ";\n")
	if err := db.Exec(ctx, q); err != nil {
		return fmt.Errorf("quarantined records: %w", err)
	}
	return nil
}

// prepareAcks creates table acks: every rejected document a person
// acknowledged, which the transform skips (ACKNOWLEDGED) whatever its version.
func prepareAcks(ctx context.Context, st *stage.Stage, db *warehouse.DB) error {
	acks, err := st.Acks(ctx)
	if err != nil {
		return fmt.Errorf("read acknowledgements: %w", err)
	}
	q := "CREATE TABLE acks (zuora_id VARCHAR, reason VARCHAR, acked_by VARCHAR, acked_at TIMESTAMPTZ, reason_code VARCHAR)"
	if err := db.Exec(ctx, q); err != nil {
		return err
	}
	var values []string
	for _, a := range acks {
		values = append(values, fmt.Sprintf("(%s, %s, %s, %s, %s)", warehouse.Literal(a.ZuoraID), warehouse.Literal(a.Reason),
			warehouse.Literal(a.By), warehouse.Literal(a.At.UTC().Format(time.RFC3339Nano)), warehouse.Literal(a.ReasonCode)))
	}
	for len(values) > 0 {
		n := min(len(values), 500)
		if err := db.Exec(ctx, "INSERT INTO acks VALUES "+strings.Join(values[:n], ", ")); err != nil {
			return fmt.Errorf("acknowledgements: %w", err)
		}
		values = values[n:]
	}
	return nil
}
