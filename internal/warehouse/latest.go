package warehouse

import (
	"context"
	"fmt"
	"strings"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// attachLatest creates the views that count each document once: latest_<table>
// per raw table keeps the newest version of each id across every window (the
// one re-checked last of equal versions), and extracted lists the records of
// every stream of the registry (documents and applications, whose number and
// currency are null), the newest version of each id per window (what the
// transform maps), as doc_type, id, number, currency, amount, updated_date
// and window.
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
	for _, dt := range stage.Streams() {
		number, currency := "NULL", "NULL" // an application has neither: its amount is as Zuora sent it
		if dt.IsDocument() {
			number, currency = Ident(dt.NumberColumn()), "currency"
		}
		parts = append(parts, fmt.Sprintf(`SELECT %s AS doc_type, id, CAST(%s AS VARCHAR) AS number, CAST(%s AS VARCHAR) AS currency, %s AS amount, updated_date, rechecked_at, "window" FROM %s`,
			Literal(string(dt)), number, currency, Ident(dt.AmountColumn()), Ident(dt.HeaderTable())))
	}
	q := `CREATE OR REPLACE VIEW extracted AS SELECT doc_type, id, number, currency, amount, updated_date, "window" FROM (
` + strings.Join(parts, "\nUNION ALL\n") + `)
QUALIFY row_number() OVER (PARTITION BY doc_type, "window", id ORDER BY updated_date DESC NULLS LAST, rechecked_at DESC NULLS LAST) = 1`
	if err := db.Exec(ctx, q); err != nil {
		return fmt.Errorf("view extracted: %w", err)
	}
	return nil
}
