package warehouse

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// TestAttachStageHasTheARViews: query gets a view of each application table
// and of the accounts, over every committed window, and the documents view
// has the AR pipeline's columns even before any window wrote them.
func TestAttachStageHasTheARViews(t *testing.T) {
	ctx := context.Background()
	st, err := stage.Open(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w, err := stage.ParseWindowID("20261125T220000Z-20261125T230000Z")
	if err != nil {
		t.Fatal(err)
	}
	amount, err := money.ToFixed(decimal.RequireFromString("-12.345678901"))
	if err != nil {
		t.Fatal(err)
	}
	updated := time.Date(2026, 11, 25, 22, 5, 0, 0, time.UTC)
	write := func(table string, rows any) stage.ObjectInfo {
		var buf bytes.Buffer
		var err error
		switch r := rows.(type) {
		case []stage.PaymentApplicationRow:
			err = parquet.Write(&buf, r)
		case []stage.AccountRow:
			err = parquet.Write(&buf, r)
		}
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.WriteBytes(ctx, stage.RawKey(table, w, 0), buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	status, pay := "Processed", "p1"
	apps := write("payment_applications", []stage.PaymentApplicationRow{{ID: "pa1", UpdatedDate: &updated, ApplyAmount: &amount, Status: &status, PaymentID: &pay}})
	erp := "ERP-1"
	accts := write(stage.AccountsTable, []stage.AccountRow{{ID: "acc", UpdatedDate: &updated, ERPAccountID: &erp}})
	em := stage.ExtractManifest{Window: w.ID(), Start: w.Start, End: w.End, Tables: map[string]stage.TableSnapshot{
		"payment_applications": {Rows: 1, Files: []stage.ObjectInfo{apps}}, stage.AccountsTable: {Rows: 1, Files: []stage.ObjectInfo{accts}}}}
	if err := st.WriteManifest(ctx, w, em); err != nil {
		t.Fatal(err)
	}
	db := openDB(t)
	if err := db.AttachStage(ctx, st); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]string{
		`SELECT id || ' ' || apply_amount || ' ' || status || ' ' || payment_id || ' ' || "window" FROM payment_applications`: "pa1 -12.345678901 Processed p1 " + w.ID(),
		`SELECT id || ' ' || erp_account_id FROM accounts`:                                                                    "acc ERP-1",
		`SELECT count(*) FROM credit_memo_applications, refund_applications`:                                                  "0",
		`SELECT count(*) FROM documents WHERE event = 'apply' OR len(depends_on) > 0 OR reverses_doc_type IS NOT NULL`:        "0",
	} {
		rows, err := db.Strings(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if len(rows) != 1 || strings.Join(rows[0], " ") != want {
			t.Errorf("%s = %v, want %q", q, rows, want)
		}
	}
}
