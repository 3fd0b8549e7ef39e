package warehouse

import (
	"context"
	"fmt"
	"strings"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// attachLatest creates the views that count each document once: latest_<table>
// per raw table keeps the newest version of each id across every window (the
// one re-checked last of equal versions), and extracted lists the documents of
// every document type and application kind of the registry, the newest
// version of each id per window (what the transform maps), as doc_type, id,
// number, currency, amount, updated_date and window.
func (db *DB) attachLatest(ctx context.Context) error {
	for _, t := range stage.Tables() {
		q := fmt.Sprintf(`CREATE OR REPLACE VIEW %s AS SELECT * FROM %s
QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_date DESC NULLS LAST, rechecked_at DESC NULLS LAST, "window" DESC) = 1`,
			Ident("latest_"+t), Ident(t))
		if err := db.Exec(ctx, q); err != nil {
			return fmt.Errorf("view latest_%s: %w", t, err)
		}
	}
	var parts []string
	for _, dt := range stage.Documents() {
		parts = append(parts, fmt.Sprintf(`SELECT %s AS doc_type, id, %s AS number, currency, %s AS amount, updated_date, rechecked_at, "window" FROM %s`,
			Literal(string(dt)), Ident(dt.NumberColumn()), Ident(dt.AmountColumn()), Ident(dt.HeaderTable())))
	}
	// Applications have no number, and their raw tables no currency: that of
	// the window's line of it (ready, rejected or skipped), with the amount
	// the transform counts it by (signed; as sent where it has no line).
	for _, dt := range stage.Applications() {
		parts = append(parts, fmt.Sprintf(`SELECT %[1]s AS doc_type, a.id, CAST(NULL AS VARCHAR) AS number,
    coalesce((SELECT any_value(d.currency) FROM documents AS d WHERE d.doc_type = %[1]s AND d.zuora_id = a.id AND d."window" = a."window"),
        (SELECT any_value(r.currency) FROM reject_history AS r WHERE r.doc_type = %[1]s AND r.zuora_id = a.id AND r."window" = a."window"),
        (SELECT any_value(k.currency) FROM skipped AS k WHERE k.doc_type = %[1]s AND k.zuora_id = a.id AND k."window" = a."window")) AS currency,
    coalesce((SELECT any_value(d.amount) FROM documents AS d WHERE d.doc_type = %[1]s AND d.zuora_id = a.id AND d."window" = a."window"),
        (SELECT any_value(r.amount) FROM reject_history AS r WHERE r.doc_type = %[1]s AND r.zuora_id = a.id AND r."window" = a."window"),
        (SELECT any_value(k.amount) FROM skipped AS k WHERE k.doc_type = %[1]s AND k.zuora_id = a.id AND k."window" = a."window"),
        a.%[2]s) AS amount, a.updated_date, a.rechecked_at, a."window" FROM %[3]s AS a`,
			Literal(string(dt)), Ident(dt.AmountColumn()), Ident(dt.HeaderTable())))
	}
	q := `CREATE OR REPLACE VIEW extracted AS SELECT doc_type, id, number, currency, amount, updated_date, "window" FROM (
` + strings.Join(parts, "\nUNION ALL\n") + `)
QUALIFY row_number() OVER (PARTITION BY doc_type, "window", id ORDER BY updated_date DESC NULLS LAST, rechecked_at DESC NULLS LAST) = 1`
	if err := db.Exec(ctx, q); err != nil {
		return fmt.Errorf("view extracted: %w", err)
	}
	return nil
}
