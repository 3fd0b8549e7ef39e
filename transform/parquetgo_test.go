package transform

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// The rows below are stage's row types, written with parquet-go as the
// extract and the load write them, so the test proves DuckDB reads that
// encoding exactly (DECIMAL(38,9) as 16 bytes, DATE as days, UTC-adjusted
// microsecond TIMESTAMP).

func ptr[T any](v T) *T { return &v }

func fixed(t *testing.T, s string) *[16]byte {
	t.Helper()
	f, err := money.ToFixed(decimal.RequireFromString(s))
	if err != nil {
		t.Fatal(err)
	}
	return &f
}

func days(s string) *int32 {
	d, _ := time.Parse("2006-01-02", s)
	return ptr(int32(d.Unix() / 86400))
}

func writeParquetGo[T any](t *testing.T, st *stage.Stage, key string, rows []T) stage.ObjectInfo {
	t.Helper()
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows, parquet.Compression(&parquet.Zstd)); err != nil {
		t.Fatal(err)
	}
	info, err := st.WriteBytes(context.Background(), key, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestReadsParquetGoFiles(t *testing.T) {
	ctx := context.Background()
	st, err := stage.Open(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	older := time.Date(2026, 11, 25, 22, 10, 0, 0, time.UTC)
	newer := older.Add(20 * time.Minute)
	invoice := func(updated time.Time, amount string) stage.InvoiceRow {
		return stage.InvoiceRow{
			ID: "8a8f0001", CreatedDate: &older, UpdatedDate: &updated, UpdatedDateRaw: ptr(updated.Format(time.RFC3339)),
			AccountID: ptr("acc"), AccountNumber: ptr("A1"), ERPAccountID: ptr("ERP-1"), InvoiceNumber: ptr("INV1"),
			InvoiceDate: days("2026-11-25"), Status: ptr("Posted"), Currency: ptr("USD"),
			Amount: fixed(t, amount), AmountWithoutTax: fixed(t, amount), TaxAmount: fixed(t, "0"),
			TransferredToAccounting: ptr("No"), ItemCount: ptr(int64(2)),
		}
	}
	item := func(id, amount, start string) stage.InvoiceItemRow {
		return stage.InvoiceItemRow{
			ID: id, CreatedDate: &older, UpdatedDate: &newer, InvoiceID: ptr("8a8f0001"), ChargeName: ptr("Plan " + id),
			Quantity: fixed(t, "1"), UnitPrice: fixed(t, amount), ChargeAmount: fixed(t, amount), TaxAmount: fixed(t, "0"),
			ServiceStartDate: days(start),
		}
	}
	em := stage.ExtractManifest{Window: testWindow.ID(), Start: testWindow.Start, End: testWindow.End, Tables: map[string]stage.TableSnapshot{
		"invoices": {Rows: 2, Files: []stage.ObjectInfo{writeParquetGo(t, st, stage.RawKey("invoices", testWindow, 0),
			[]stage.InvoiceRow{invoice(newer, "99999999999999999999.000000001"), invoice(older, "1")})}},
		"invoice_items": {Rows: 2, Files: []stage.ObjectInfo{writeParquetGo(t, st, stage.RawKey("invoice_items", testWindow, 0),
			[]stage.InvoiceItemRow{item("i2", "99999999999999999998.000000001", "2026-11-02"), item("i1", "1", "2026-11-01")})}},
	}}
	if err := st.WriteManifest(ctx, testWindow, em); err != nil {
		t.Fatal(err)
	}
	m := runTransform(t, st, Options{})
	docs, bodies := decodeDocs(t, read(t, st, m.Documents.Key))
	if len(docs) != 1 {
		t.Fatalf("%d documents, want 1", len(docs))
	}
	b := bodies["8a8f0001"]
	if got := string(b.Amount); got != "99999999999999999999.000000001" {
		t.Errorf("amount %s", got)
	}
	if got := b.Date; got != "2026-11-25" {
		t.Errorf("date %s", got)
	}
	if len(b.Items) != 2 || b.Items[0].ZuoraID != "i1" || string(b.Items[1].Amount) != "99999999999999999998.000000001" {
		t.Errorf("items %+v", b.Items)
	}
	want := stage.Tally{Count: 1, Amount: decimal.RequireFromString("99999999999999999999.000000001")}
	if len(m.Totals) != 1 || !m.Totals[0].Ready.Equal(want) || !m.Totals[0].Extracted.Equal(want) {
		t.Errorf("totals %+v, want one ready invoice of %s", m.Totals, want.Amount)
	}
}

func TestReadsParquetGoLedger(t *testing.T) {
	st := fixtureStage(t)
	at := time.Date(2026, 11, 25, 23, 30, 0, 0, time.UTC)
	row := func(docType, id, action, outcome string) stage.LedgerRow {
		return stage.LedgerRow{RunID: "run-9", DocType: docType, ZuoraID: id, IdempotencyKey: id, Action: action, Outcome: outcome,
			HTTPStatus: 201, Currency: "USD", Amount: *fixed(t, "1"), StartedAt: at, FinishedAt: at}
	}
	writeParquetGo(t, st, stage.LedgerKey(otherWindow, at, "run-9", 1), []stage.LedgerRow{
		row("payment", "pay-usd", "post", "duplicate"),
		row("refund", "ref-usd", "post", "rejected"),
		row("invoice", "inv-usd", "mark", "marked"),
	})
	m := runTransform(t, st, Options{})
	skipped := reasons(t, parquetNDJSON(t, st, m.Skipped))
	if skipped["pay-usd"] != "ALREADY_POSTED" {
		t.Errorf("pay-usd skipped as %q, want ALREADY_POSTED", skipped["pay-usd"])
	}
	for _, id := range []string{"ref-usd", "inv-usd"} {
		if code, ok := skipped[id]; ok {
			t.Errorf("%s skipped as %s; a rejected post or a mark row confirms nothing", id, code)
		}
	}
}
