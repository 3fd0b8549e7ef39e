package transform

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// BenchmarkRunLarge transforms a window of 10,000 invoices with 5 items each
// and 10,000 payments, the volume of a busy hour.
func BenchmarkRunLarge(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	st, err := stage.Open(ctx, "file://"+filepath.Join(dir, "stage"))
	if err != nil {
		b.Fatal(err)
	}
	db, err := warehouse.Open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	queries := map[string]string{
		"invoices": `SELECT 'inv-' || i AS id, TIMESTAMPTZ '2026-11-25 22:00:00+00' AS created_date,
    TIMESTAMPTZ '2026-11-25 22:00:00+00' + to_seconds(i % 3600) AS updated_date, 'raw' AS updated_date_raw,
    'acc-' || (i % 500) AS account_id, 'A' || (i % 500) AS account_number, 'ERP-' || (i % 500) AS erp_account_id,
    'INV' || lpad(CAST(i AS VARCHAR), 8, '0') AS invoice_number, DATE '2026-11-25' AS invoice_date, DATE '2026-12-25' AS due_date,
    'Posted' AS status, ['USD', 'EUR', 'GBP'][1 + i % 3] AS currency,
    CAST(5 * 12.345 AS DECIMAL(38, 9)) AS amount, CAST(5 * 12.345 AS DECIMAL(38, 9)) AS amount_without_tax,
    CAST(0 AS DECIMAL(38, 9)) AS tax_amount, CAST(0 AS DECIMAL(38, 9)) AS balance, 'No' AS transferred_to_accounting, CAST(5 AS BIGINT) AS item_count
FROM range(10000) AS r(i)`,
		"invoice_items": `SELECT 'ii-' || i || '-' || j AS id, TIMESTAMPTZ '2026-11-25 22:00:00+00' AS created_date,
    TIMESTAMPTZ '2026-11-25 22:00:00+00' AS updated_date, 'raw' AS updated_date_raw, 'inv-' || i AS invoice_id, 'acc' AS account_id,
    'Charge ' || j AS charge_name, 'C' || j AS charge_number, 'SKU' AS sku, 'Each' AS uom, CAST(1 AS DECIMAL(38, 9)) AS quantity,
    CAST(12.345 AS DECIMAL(38, 9)) AS unit_price, CAST(12.345 AS DECIMAL(38, 9)) AS charge_amount, CAST(0 AS DECIMAL(38, 9)) AS tax_amount,
    '4000' AS accounting_code, DATE '2026-11-01' + CAST(j AS INTEGER) AS service_start_date, DATE '2026-11-30' AS service_end_date
FROM range(10000) AS r(i), range(5) AS s(j)`,
		"payments": `SELECT 'pay-' || i AS id, TIMESTAMPTZ '2026-11-25 22:00:00+00' AS created_date, TIMESTAMPTZ '2026-11-25 22:30:00+00' AS updated_date,
    'raw' AS updated_date_raw, 'acc' AS account_id, 'A1' AS account_number, 'ERP-1' AS erp_account_id, 'P' || i AS payment_number,
    DATE '2026-11-25' AS effective_date, CAST(i AS DECIMAL(38, 9)) / 100 AS amount, CAST(0 AS DECIMAL(38, 9)) AS applied_amount,
    CAST(0 AS DECIMAL(38, 9)) AS unapplied_amount, 'USD' AS currency, 'Processed' AS status, 'External' AS type,
    'pm' AS payment_method_id, 'ref' AS reference_id, 'No' AS transferred_to_accounting
FROM range(10000) AS r(i)`,
	}
	em := stage.ExtractManifest{Window: testWindow.ID(), Start: testWindow.Start, End: testWindow.End, Tables: map[string]stage.TableSnapshot{}}
	for table, q := range queries {
		path := filepath.Join(dir, table+".parquet")
		if err := db.Exec(ctx, fmt.Sprintf("COPY (%s) TO %s (FORMAT parquet)", q, warehouse.Literal(path))); err != nil {
			b.Fatal(err)
		}
		em.Tables[table] = stage.TableSnapshot{Files: []stage.ObjectInfo{putFile(b, st, stage.RawKey(table, testWindow, 0), path)}}
	}
	if err := st.WriteManifest(ctx, testWindow, em); err != nil {
		b.Fatal(err)
	}
	opts := Options{Force: true, Logger: slog.New(slog.DiscardHandler)}
	for b.Loop() {
		m, err := Run(ctx, st, testWindow, opts)
		if err != nil {
			b.Fatal(err)
		}
		var ready int64
		for _, r := range m.Totals {
			ready += r.Ready.Count
		}
		if ready != 20000 {
			b.Fatalf("%d ready documents, want 20000", ready)
		}
	}
}
