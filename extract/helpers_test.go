package extract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// The tenant lives at -08:00; windows are UTC.
var tenantZone = time.FixedZone("PST", -8*3600)

var (
	w1 = mustWindow("20261125T220000Z-20261125T230000Z")
	w2 = mustWindow("20261125T230000Z-20261126T000000Z")
)

func mustWindow(id string) stage.Window {
	w, err := stage.ParseWindowID(id)
	if err != nil {
		panic(err)
	}
	return w
}

// at returns the instant hh:mm:ss UTC on 2026-11-25 (hh may exceed 23).
func at(hh, mm, ss int) time.Time { return time.Date(2026, 11, 25, hh, mm, ss, 0, time.UTC) }

// zt formats t the way the tenant's Zuora does: seconds and a -08:00 offset.
func zt(t time.Time) string { return t.In(tenantZone).Format(time.RFC3339) }

func num(s string) json.Number { return json.Number(s) }

var stageSeq atomic.Int64

func newStage(t *testing.T) *stage.Stage {
	t.Helper()
	// mem:// URLs name process-wide buckets: every test gets its own.
	st, err := stage.Open(context.Background(), fmt.Sprintf("mem://extract-test-%d", stageSeq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// line is one item of a test document: a tax-exclusive amount and its tax.
type line struct{ amount, tax string }

func (f *fakeZuora) account(id, number string, erp string) {
	a := map[string]any{"id": id, "accountNumber": number, "name": "Acme " + number, "currency": "USD",
		"status": "Active", "balance": num("0.000000000")}
	if erp != "" {
		a["ERPAccountId__c"] = erp
	}
	f.add("accounts", a)
}

// invoice adds a Posted invoice whose totals are the exact sums of its lines.
func (f *fakeZuora) invoice(id, acct string, updated time.Time, lines ...line) map[string]any {
	var net, tax decimal.Decimal
	for i, l := range lines {
		a, x := decimal.RequireFromString(l.amount), decimal.RequireFromString(l.tax)
		net, tax = net.Add(a), tax.Add(x)
		f.add("invoice-items", map[string]any{
			"id": fmt.Sprintf("%s-it%03d", id, i), "invoiceId": id, "accountId": acct,
			"createdDate": zt(updated.Add(-time.Hour)), "updatedDate": zt(updated.Add(-time.Hour)),
			"chargeName": "Gold plan", "chargeNumber": fmt.Sprintf("C-%05d", i), "sKU": "SKU-1", "uOM": "Each",
			"quantity": num("1.000000000"), "unitPrice": num(l.amount), "chargeAmount": num(l.amount),
			"taxAmount": num(l.tax), "accountingCode": "4000", "serviceStartDate": "2026-11-01",
			"serviceEndDate": "2026-11-30", "processingType": "0",
		})
	}
	inv := map[string]any{
		"id": id, "accountId": acct, "invoiceNumber": "INV-" + id, "invoiceDate": "2026-11-25",
		"dueDate": "2026-12-25", "status": "Posted", "currency": "USD",
		"createdDate": zt(updated.Add(-time.Hour)), "updatedDate": zt(updated),
		"amount": num(net.Add(tax).StringFixed(9)), "amountWithoutTax": num(net.StringFixed(9)),
		"taxAmount": num(tax.StringFixed(9)), "balance": num(net.Add(tax).StringFixed(9)),
		"transferredToAccounting": "No", "autoPay": false,
	}
	f.add("invoices", inv)
	return inv
}

func (f *fakeZuora) payment(id, acct, currency string, updated time.Time, amount string) map[string]any {
	p := map[string]any{
		"id": id, "accountId": acct, "paymentNumber": "P-" + id, "effectiveDate": "2026-11-25",
		"amount": num(amount), "appliedAmount": num(amount), "unappliedAmount": num("0"), "currency": currency,
		"status": "Processed", "type": "External", "paymentMethodId": "pm1", "referenceId": "ref-" + id,
		"createdDate": zt(updated), "updatedDate": zt(updated),
	}
	f.add("payments", p)
	return p
}

// application adds one application record of object (payment-applications,
// credit-memo-applications, refund-applications), with fields as Zuora names them.
func (f *fakeZuora) application(object, id, acct string, updated time.Time, fields map[string]any) map[string]any {
	a := map[string]any{"id": id, "accountId": acct, "effectiveDate": "2026-11-25", "applicationGroupId": "g-" + id,
		"createdDate": zt(updated), "updatedDate": zt(updated)}
	for k, v := range fields {
		a[k] = v
	}
	f.add(object, a)
	return a
}

func (f *fakeZuora) refund(id, acct string, updated time.Time, amount string) map[string]any {
	r := map[string]any{
		"id": id, "accountId": acct, "refundNumber": "R-" + id, "refundDate": "2026-11-25",
		"amount": num(amount), "currency": "USD", "status": "Processed", "type": "External",
		"sourceType": "Payment", "methodType": "CreditCard", "reasonCode": "Standard Refund",
		"referenceID": "rr-" + id, "createdDate": zt(updated), "updatedDate": zt(updated),
		"transferredToAccounting": "No",
	}
	f.add("refunds", r)
	return r
}

// memo adds a Posted credit or debit memo ("credit-memos" or "debit-memos").
func (f *fakeZuora) memo(object, id, acct string, updated time.Time, lines ...line) map[string]any {
	itemObject, parentKey := "credit-memo-items", "creditMemoId"
	if object == "debit-memos" {
		itemObject, parentKey = "debit-memo-items", "debitMemoId"
	}
	var net, tax decimal.Decimal
	for i, l := range lines {
		a, x := decimal.RequireFromString(l.amount), decimal.RequireFromString(l.tax)
		net, tax = net.Add(a), tax.Add(x)
		f.add(itemObject, map[string]any{
			"id": fmt.Sprintf("%s-it%03d", id, i), parentKey: id,
			"createdDate": zt(updated), "updatedDate": zt(updated),
			"chargeName": "Gold plan", "chargeNumber": "C-1", "sku": "SKU-1", "unitOfMeasure": "Each",
			"quantity": num("1"), "unitPrice": num(l.amount), "amount": num(l.amount),
			"amountWithoutTax": num(l.amount), "taxAmount": num(l.tax), "invoiceItemId": "ii-1",
			"serviceStartDate": "2026-11-01", "serviceEndDate": "2026-11-30",
		})
	}
	m := map[string]any{
		"id": id, "accountId": acct, "invoiceId": "inv-x", "memoNumber": "M-" + id, "memoDate": "2026-11-25",
		"totalAmount": num(net.Add(tax).StringFixed(9)), "totalAmountWithoutTax": num(net.StringFixed(9)),
		"taxAmount": num(tax.StringFixed(9)), "currency": "USD", "status": "Posted", "reasonCode": "Correction",
		"createdDate": zt(updated), "updatedDate": zt(updated), "comment": "memo",
	}
	if object == "debit-memos" {
		m["dueDate"] = "2026-12-25"
	}
	f.add(object, m)
	return m
}

// readRows reads every row of the staged Parquet object at key with parquet-go.
func readRows[T any](t *testing.T, st *stage.Stage, key string) []T {
	t.Helper()
	data, err := st.Read(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	r := parquet.NewGenericReader[T](bytes.NewReader(data))
	defer r.Close()
	var out []T
	buf := make([]T, 100)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
	}
}

// tableRows reads the rows of a table of a committed manifest.
func tableRows[T any](t *testing.T, st *stage.Stage, m *stage.ExtractManifest, table string) []T {
	t.Helper()
	snap, ok := m.Tables[table]
	if !ok || len(snap.Files) != 1 {
		t.Fatalf("manifest table %s: %+v, want one file", table, snap)
	}
	rows := readRows[T](t, st, snap.Files[0].Key)
	if int64(len(rows)) != snap.Rows {
		t.Fatalf("table %s: file has %d rows, manifest says %d", table, len(rows), snap.Rows)
	}
	return rows
}

// ids returns the sorted ids of rows, duplicates kept so a test sees them.
func ids[T any](rows []T, id func(T) string) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, id(r))
	}
	slices.Sort(out)
	return out
}

func invoiceIDs(rows []stage.InvoiceRow) []string {
	return ids(rows, func(r stage.InvoiceRow) string { return r.ID })
}

func dec(f *[16]byte) string {
	if f == nil {
		return "<nil>"
	}
	return money.FromFixed(*f).String()
}

func mustRun(t *testing.T, src Source, st *stage.Stage, w stage.Window, opts Options) *stage.ExtractManifest {
	t.Helper()
	m, err := Run(context.Background(), src, st, w, opts)
	if err != nil {
		t.Fatalf("Run %s: %v", w, err)
	}
	return m
}

func manifestExists(t *testing.T, st *stage.Stage, w stage.Window) bool {
	t.Helper()
	ok, err := st.Exists(context.Background(), stage.ManifestKey("extract", w))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// stagedTables are the raw tables a run of every type stages.
func stagedTables() []string { return stage.Tables() }
