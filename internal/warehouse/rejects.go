package warehouse

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// outstandingColumns are the columns of the rejects view: reject_history's,
// plus the version that was rejected, when the reject was seen, and the ERP's
// HTTP status for a document the ERP refused (ERP_REJECTED).
const outstandingColumns = `"window" VARCHAR, doc_type VARCHAR, zuora_id VARCHAR, number VARCHAR, customer VARCHAR,
    currency VARCHAR, amount DECIMAL(38,9), reason_code VARCHAR, message VARCHAR, updated_date TIMESTAMPTZ,
    first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ, last_checked TIMESTAMPTZ, check_note VARCHAR, erp_status INTEGER`

// attachOutstanding creates view rejects: the outstanding rejects of every
// window, acknowledged ones left out. A stage whose index no run has built
// yet shows every window's rejects, with no first and last seen.
func (db *DB) attachOutstanding(ctx context.Context, st *stage.Stage) error {
	idx, found, err := st.ReadRejectIndex(ctx)
	if err != nil {
		return err
	}
	if !found {
		return db.Exec(ctx, `CREATE OR REPLACE VIEW rejects AS
SELECT "window", doc_type, zuora_id, number, customer, currency, amount, reason_code, message,
    CAST(NULL AS TIMESTAMPTZ) AS updated_date, CAST(NULL AS TIMESTAMPTZ) AS first_seen, CAST(NULL AS TIMESTAMPTZ) AS last_seen,
    CAST(NULL AS TIMESTAMPTZ) AS last_checked, CAST(NULL AS VARCHAR) AS check_note, CAST(NULL AS INTEGER) AS erp_status
FROM reject_history`)
	}
	acks, err := st.Acks(ctx)
	if err != nil {
		return err
	}
	if err := db.Exec(ctx, "CREATE OR REPLACE TABLE outstanding_rejects ("+outstandingColumns+")"); err != nil {
		return err
	}
	var values []string
	flush := func() error {
		if len(values) == 0 {
			return nil
		}
		err := db.Exec(ctx, "INSERT INTO outstanding_rejects VALUES "+strings.Join(values, ",\n"))
		values = values[:0]
		return err
	}
	for _, r := range idx.Rejects {
		if _, acked := acks[r.ZuoraID]; acked {
			continue
		}
		amount := "NULL"
		if r.Amount != nil {
			amount = "CAST(" + Literal(r.Amount.String()) + " AS DECIMAL(38,9))"
		}
		status := "NULL"
		if r.ERPStatus != 0 {
			status = strconv.Itoa(r.ERPStatus)
		}
		values = append(values, fmt.Sprintf("(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
			Literal(r.Window), Literal(r.DocType), Literal(r.ZuoraID), nullable(r.Number), nullable(r.Customer),
			nullable(r.Currency), amount, Literal(r.ReasonCode), Literal(r.Message), instant(r.Updated),
			instant(&r.FirstSeen), instant(&r.LastSeen), instant(r.Checked), nullable(r.Note), status))
		if len(values) == 500 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return db.Exec(ctx, `CREATE OR REPLACE VIEW rejects AS SELECT * FROM outstanding_rejects ORDER BY "window", doc_type, number, zuora_id`)
}

func nullable(s string) string {
	if s == "" {
		return "NULL"
	}
	return Literal(s)
}

func instant(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "NULL"
	}
	return "CAST(" + Literal(t.UTC().Format(time.RFC3339Nano)) + " AS TIMESTAMPTZ)"
}
