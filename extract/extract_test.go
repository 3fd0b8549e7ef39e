package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func TestRunStagesEveryTableAndSendsTheContractQueries(t *testing.T) {
	f := newFake()
	f.account("a1", "A-1", "ERP-1")
	f.account("a2", "A-2", "ERP-2")
	f.invoice("inv1", "a1", at(22, 5, 0), line{"100.125000000", "8.010000000"}, line{"0.000000001", "0"})
	f.invoice("inv2", "a2", at(22, 59, 59), line{"50", "4.5"})
	draft := f.invoice("draft", "a1", at(22, 10, 0), line{"1", "0"})
	draft["status"] = "Draft"
	f.payment("pay1", "a1", "USD", at(22, 15, 0), "108.135000001")
	f.payment("pay2", "a2", "EUR", at(22, 16, 0), "10.5")
	f.payment("pay3", "a2", "EUR", at(22, 17, 0), "0.25")
	f.memo("credit-memos", "cm1", "a1", at(22, 20, 0), line{"10", "0.8"})
	f.memo("debit-memos", "dm1", "a2", at(22, 30, 0), line{"5", "0.4"}, line{"1.5", "0"})
	// no refunds at all: the table must still get a file with its schema
	f.application("payment-applications", "pa1", "a1", at(22, 15, 1), map[string]any{"paymentId": "pay1", "invoiceId": "inv1",
		"applyAmount": num("108.135000001"), "paymentApplicationStatus": "Processed"})
	f.application("payment-applications", "pa2", "a2", at(22, 40, 0), map[string]any{"paymentId": "pay2", "debitMemoId": "dm1",
		"applyAmount": num("-6.9"), "paymentApplicationStatus": "Processed"}) // an unapply: staged as sent
	f.application("credit-memo-applications", "ca1", "a1", at(22, 20, 1), map[string]any{"creditMemoId": "cm1", "invoiceId": "inv1",
		"amount": num("10.800000000")})

	st := newStage(t)
	m := mustRun(t, f, st, w1, Options{RunID: "r1", CodeVersion: "v1"})

	if m.Window != w1.ID() || !m.Start.Equal(w1.Start) || !m.End.Equal(w1.End) || !m.QueryFrom.Equal(at(21, 50, 0)) {
		t.Errorf("manifest window fields: %+v", m)
	}
	if m.RunID != "r1" || m.CodeVersion != "v1" || len(m.Warnings) != 0 {
		t.Errorf("run id %q, code version %q, warnings %v", m.RunID, m.CodeVersion, m.Warnings)
	}
	if len(m.Tables) != len(stagedTables())+1 {
		t.Fatalf("manifest has %d tables, want %d and the quarantine", len(m.Tables), len(stagedTables()))
	}
	if q := m.Tables[stage.QuarantineTable]; q.Rows != 0 || len(q.Files) != len(stage.Streams()) {
		t.Errorf("quarantine: %d rows in %d files; want an empty part per stream", q.Rows, len(q.Files))
	}
	for _, table := range stagedTables() {
		snap := m.Tables[table]
		if len(snap.Files) != 1 || snap.Files[0].Key != stage.RawKey(table, w1, 0) || len(snap.Files[0].SHA256) != 64 {
			t.Errorf("table %s files: %+v", table, snap.Files)
		}
		if len(snap.Query["object"]) != 1 {
			t.Errorf("table %s records no query: %v", table, snap.Query)
		}
	}

	invoices := tableRows[stage.InvoiceRow](t, st, m, "invoices")
	if got := invoiceIDs(invoices); !slices.Equal(got, []string{"draft", "inv1", "inv2"}) {
		t.Errorf("invoices %v, want the draft, inv1 and inv2 (every status)", got)
	}
	inv1 := invoices[slices.IndexFunc(invoices, func(r stage.InvoiceRow) bool { return r.ID == "inv1" })]
	if dec(inv1.Amount) != "108.135000001" || dec(inv1.TaxAmount) != "8.01" || *inv1.ItemCount != 2 ||
		*inv1.ERPAccountID != "ERP-1" || *inv1.AccountNumber != "A-1" || *inv1.AccountID != "a1" ||
		*inv1.UpdatedDateRaw != "2026-11-25T14:05:00-08:00" || !inv1.UpdatedDate.Equal(at(22, 5, 0)) ||
		*inv1.InvoiceDate != int32(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).Unix()/86400) {
		t.Errorf("inv1 row: %+v", inv1)
	}
	if got := len(tableRows[stage.InvoiceItemRow](t, st, m, "invoice_items")); got != 4 {
		t.Errorf("%d invoice items, want 4", got)
	}
	pas := tableRows[stage.PaymentApplicationRow](t, st, m, "payment_applications")
	if len(pas) != 2 || pas[0].ID != "pa1" || dec(pas[0].ApplyAmount) != "108.135000001" || *pas[0].PaymentID != "pay1" ||
		*pas[0].InvoiceID != "inv1" || pas[0].DebitMemoID != nil || *pas[0].Status != "Processed" || *pas[0].AccountID != "a1" ||
		*pas[0].ApplicationGroupID != "g-pa1" || pas[0].EffectiveDate == nil || !pas[0].UpdatedDate.Equal(at(22, 15, 1)) {
		t.Errorf("payment applications: %+v", pas)
	}
	if len(pas) == 2 && (dec(pas[1].ApplyAmount) != "-6.9" || *pas[1].DebitMemoID != "dm1") {
		t.Errorf("an unapply is staged as Zuora sent it: %+v", pas[1])
	}
	cas := tableRows[stage.CreditMemoApplicationRow](t, st, m, "credit_memo_applications")
	if len(cas) != 1 || dec(cas[0].Amount) != "10.8" || *cas[0].CreditMemoID != "cm1" || *cas[0].InvoiceID != "inv1" {
		t.Errorf("credit memo applications: %+v", cas)
	}
	accts := tableRows[stage.AccountRow](t, st, m, stage.AccountsTable)
	if len(accts) != 2 || accts[0].ID != "a1" || *accts[0].ERPAccountID != "ERP-1" || *accts[0].AccountNumber != "A-1" || accts[1].ID != "a2" {
		t.Errorf("accounts of the applications: %+v", accts)
	}
	if q := f.calls("accounts"); len(q) != 2 || !slices.Equal(q[1].Filters, []string{"id.IN:[a1,a2]"}) || q[1].Sort != "id.ASC" ||
		!slices.Contains(q[1].Fields, "ERPAccountId__c") {
		t.Errorf("accounts queries (the probe, then by id): %+v", q)
	}
	if got := ids(tableRows[stage.PaymentRow](t, st, m, "payments"), func(r stage.PaymentRow) string { return r.ID }); !slices.Equal(got, []string{"pay1", "pay2", "pay3"}) {
		t.Errorf("payments %v", got)
	}
	if got := len(tableRows[stage.RefundRow](t, st, m, "refunds")); got != 0 {
		t.Errorf("%d refunds, want an empty table", got)
	}
	if got := len(tableRows[stage.CreditMemoItemRow](t, st, m, "credit_memo_items")); got != 1 {
		t.Errorf("%d credit memo items, want 1", got)
	}
	dms := tableRows[stage.DebitMemoRow](t, st, m, "debit_memos")
	if len(dms) != 1 || dec(dms[0].TotalAmount) != "6.9" || *dms[0].ItemCount != 2 || dms[0].DueDate == nil {
		t.Errorf("debit memos: %+v", dms)
	}

	wantAmounts := map[string]map[string]string{
		"invoices":     {"USD": "163.635000001"},
		"payments":     {"USD": "108.135000001", "EUR": "10.75"},
		"credit_memos": {"USD": "10.8"},
		"debit_memos":  {"USD": "6.9"},
	}
	for table, want := range wantAmounts {
		got := m.Tables[table].Amounts
		if len(got) != len(want) {
			t.Errorf("%s amounts %v, want %v", table, got, want)
		}
		for c, a := range want {
			if !got[c].Equal(decimal.RequireFromString(a)) {
				t.Errorf("%s amount %s = %s, want %s", table, c, got[c], a)
			}
		}
	}
	inv := m.Tables["invoices"]
	if inv.Rows != 3 || !inv.MinUpdated.Equal(at(22, 5, 0)) || !inv.MaxUpdated.Equal(at(22, 59, 59)) {
		t.Errorf("invoices snapshot rows %d min %v max %v", inv.Rows, inv.MinUpdated, inv.MaxUpdated)
	}

	// What went over the wire.
	wantFilters := []string{"updateddate.GE:2026-11-25T21:50:00Z", "updateddate.LT:2026-11-25T23:00:00Z"}
	for _, dt := range stage.Streams() {
		object := dt.Object()
		calls := f.calls(object)
		if len(calls) != 2 {
			t.Fatalf("%d queries of %s, want the walk and the probe of the window's start", len(calls), object)
		}
		if p := calls[1]; !slices.Equal(p.Filters, []string{"updateddate.LT:2026-11-25T21:50:00Z"}) || p.Sort != "updateddate.DESC" || p.PageSize != 1 {
			t.Errorf("%s probe %+v", object, p)
		}
		q := calls[0]
		if !slices.Equal(q.Filters, wantFilters) || q.Sort != "updateddate.ASC" || q.PageSize != 99 {
			t.Errorf("%s query %+v; want no status filter", object, q)
		}
		if dt.IsApplication() {
			if len(q.Expand) != 0 {
				t.Errorf("%s expands %v: Zuora offers no account expand on applications", object, q.Expand)
			}
		} else if q.Expand[0] != "account" || !slices.Equal(q.ChildFields["account"], []string{"id", "accountNumber", "ERPAccountId__c"}) {
			t.Errorf("%s account expansion %v %v", object, q.Expand, q.ChildFields)
		}
		if !slices.Contains(q.Fields, "id") || !slices.Contains(q.Fields, "updateddate") || slices.Contains(q.Fields, "comments") {
			t.Errorf("%s fields %v", object, q.Fields)
		}
	}
	if q := f.calls("invoices")[0]; !slices.Equal(q.Expand, []string{"account", "invoiceitems"}) || !slices.Contains(q.ChildFields["invoiceitems"], "chargeamount") {
		t.Errorf("invoice expansion %v %v", q.Expand, q.ChildFields)
	}
	if q := f.calls("credit-memos")[0]; !slices.Equal(q.Expand, []string{"account", "creditmemoitems"}) {
		t.Errorf("credit memo expansion %v", q.Expand)
	}
	if q := f.calls("debit-memos")[0]; !slices.Equal(q.Expand, []string{"account", "debitmemoitems"}) {
		t.Errorf("debit memo expansion %v", q.Expand)
	}
	if n := len(f.calls("invoice-items")); n != 0 {
		t.Errorf("%d item endpoint queries for short item lists, want 0", n)
	}
	if got := inv.Query["filter[]"]; !slices.Equal(got, f.calls("invoices")[0].Filters) {
		t.Errorf("manifest records filters %v", got)
	}
}

func TestRecordsSharingOneSecondAcrossPageBoundaries(t *testing.T) {
	f := newFake()
	f.account("a1", "A-1", "ERP-1")
	var want []string
	// 250 invoices stamped in the same second by a bill run: pages of 99 end inside it.
	for i := range 250 {
		id := fmt.Sprintf("inv%03d", i)
		f.invoice(id, "a1", at(22, 55, 0), line{"1.5", "0"})
		want = append(want, id)
	}
	st := newStage(t)
	m := mustRun(t, f, st, w1, Options{})
	if got := invoiceIDs(tableRows[stage.InvoiceRow](t, st, m, "invoices")); !slices.Equal(got, want) {
		t.Fatalf("staged %d invoices, want the 250 exactly once: %v", len(got), got)
	}
	if !m.Tables["invoices"].Amounts["USD"].Equal(decimal.RequireFromString("375")) {
		t.Errorf("amount sum %v", m.Tables["invoices"].Amounts)
	}
	// The next window's overlap sees all 250 again and stages none of them.
	m2 := mustRun(t, f, st, w2, Options{})
	if got := tableRows[stage.InvoiceRow](t, st, m2, "invoices"); len(got) != 0 {
		t.Errorf("next window restaged %d invoices", len(got))
	}
}

func TestWindowEdgesCompareInstantsNotStrings(t *testing.T) {
	tests := []struct {
		name     string
		updated  time.Time
		inW1     bool
		inW2     bool
		ignoreLT bool // w1 gets a row past its end: it fails, committing nothing
	}{
		{"first second of the window", at(22, 0, 0), true, false, false},
		{"last second of the window", at(22, 59, 59), true, false, false},
		{"window end belongs to the next window", at(23, 0, 0), false, true, false},
		{"window end, Zuora ignoring LT", at(23, 0, 0), false, true, true},
		{"late in the next window, Zuora ignoring LT", at(23, 30, 0), false, true, true},
		{"in the overlap, never staged before", at(21, 55, 0), true, false, false},
		{"before the overlap", at(21, 49, 59), false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.ignoreLT = tt.ignoreLT
			f.account("a1", "A-1", "ERP-1")
			f.payment("p1", "a1", "USD", tt.updated, "1")
			st := newStage(t)
			if tt.ignoreLT {
				_, err := Run(context.Background(), f, st, w1, Options{})
				var re *RangeError
				if !errors.As(err, &re) || re.Outside != 1 || re.Table != "payments" {
					t.Fatalf("w1 with a row past its end: %v, want a RangeError counting it", err)
				}
				if ok, _ := st.Exists(context.Background(), stage.ManifestKey("extract", w1)); ok {
					t.Fatal("w1 committed although Zuora returned a row outside its range")
				}
				f.ignoreLT = false
			}
			m1 := mustRun(t, f, st, w1, Options{})
			m2 := mustRun(t, f, st, w2, Options{})
			n1 := len(tableRows[stage.PaymentRow](t, st, m1, "payments"))
			n2 := len(tableRows[stage.PaymentRow](t, st, m2, "payments"))
			if (n1 == 1) != tt.inW1 || (n2 == 1) != tt.inW2 || n1 > 1 || n2 > 1 {
				t.Errorf("updated %s (%s): staged %d times in w1, %d in w2", zt(tt.updated), tt.updated.Format(time.RFC3339), n1, n2)
			}
		})
	}
}

func TestRecordInsertedBehindTheCursorIsPickedUpByTheNextWindowOnce(t *testing.T) {
	f := newFake()
	f.account("a1", "A-1", "ERP-1")
	var all []string
	for i := range 200 {
		id := fmt.Sprintf("inv%03d", i)
		f.invoice(id, "a1", at(22, 0, 0).Add(time.Duration(i)*17*time.Second), line{"2", "0.1"})
		all = append(all, id)
	}
	for i := range 5 {
		id := fmt.Sprintf("next%d", i)
		f.invoice(id, "a1", at(23, 10+i, 0), line{"3", "0"})
		all = append(all, id)
	}
	// After w1's walk has handed out its second page (up to 22:56), a record
	// becomes visible with an updatedDate the walk has already passed.
	f.onPage = func(q zuora.Query, n int) {
		if q.Object == "invoices" && n == 2 && strings.HasSuffix(q.Filters[1], "23:00:00Z") {
			f.invoice("late", "a1", at(22, 51, 30), line{"7", "0"})
		}
	}
	st := newStage(t)
	m1 := mustRun(t, f, st, w1, Options{})
	got1 := invoiceIDs(tableRows[stage.InvoiceRow](t, st, m1, "invoices"))
	if slices.Contains(got1, "late") || len(got1) != 200 {
		t.Fatalf("w1 staged %d invoices (late included: %v), want the 200 walked", len(got1), slices.Contains(got1, "late"))
	}
	m2 := mustRun(t, f, st, w2, Options{})
	got2 := invoiceIDs(tableRows[stage.InvoiceRow](t, st, m2, "invoices"))
	if want := []string{"late", "next0", "next1", "next2", "next3", "next4"}; !slices.Equal(got2, want) {
		t.Errorf("w2 staged %v, want %v", got2, want)
	}
	union := slices.Sorted(slices.Values(append(got1, got2...)))
	all = append(all, "late")
	slices.Sort(all)
	if !slices.Equal(union, all) {
		t.Errorf("w1+w2 staged %d records, want every one of %d exactly once", len(union), len(all))
	}
	items2 := tableRows[stage.InvoiceItemRow](t, st, m2, "invoice_items")
	if len(items2) != 6 {
		t.Errorf("w2 staged %d items, want 6 (its own invoices' only)", len(items2))
	}
	// Re-extracting w2 with Force stages the same set again, no more.
	m2b := mustRun(t, f, st, w2, Options{Force: true})
	if got := invoiceIDs(tableRows[stage.InvoiceRow](t, st, m2b, "invoices")); !slices.Equal(got, got2) {
		t.Errorf("forced re-run of w2 staged %v, want %v", got, got2)
	}
}

func TestCrashHalfwayThenRerunStagesTheSameSnapshot(t *testing.T) {
	build := func() *fakeZuora {
		f := newFake()
		f.account("a1", "A-1", "ERP-1")
		f.account("a2", "A-2", "")
		for i := range 300 {
			acct := []string{"a1", "a2"}[i%2]
			f.invoice(fmt.Sprintf("inv%03d", i), acct, at(22, 0, 0).Add(time.Duration(i)*11*time.Second), line{"10.000000001", "1"})
			f.payment(fmt.Sprintf("pay%03d", i), acct, "USD", at(22, 1, 0).Add(time.Duration(i)*11*time.Second), "5.5")
		}
		f.memo("credit-memos", "cm1", "a1", at(22, 30, 0), line{"1", "0"})
		return f
	}
	// The reference: one clean run in its own stage.
	clean := newStage(t)
	want := mustRun(t, build(), clean, w1, Options{RowGroupRows: 64})

	f := build()
	st := newStage(t)
	ctx, cancel := context.WithCancel(context.Background())
	f.onPage = func(q zuora.Query, n int) {
		if q.Object == "invoices" && n == 2 {
			cancel() // the process dies halfway through the window
		}
	}
	if _, err := Run(ctx, f, st, w1, Options{RowGroupRows: 64}); !errors.Is(err, context.Canceled) {
		t.Fatalf("crashed run returned %v, want context.Canceled", err)
	}
	if manifestExists(t, st, w1) {
		t.Fatal("a crashed run left a manifest")
	}
	f.onPage = nil
	got := mustRun(t, f, st, w1, Options{RowGroupRows: 64})

	for _, table := range stagedTables() {
		g, w := got.Tables[table], want.Tables[table]
		if g.Rows != w.Rows || g.Files[0].SHA256 != w.Files[0].SHA256 || g.Files[0].Key != w.Files[0].Key {
			t.Errorf("%s after the re-run: %d rows %s, clean run: %d rows %s", table, g.Rows, g.Files[0].SHA256, w.Rows, w.Files[0].SHA256)
		}
	}
	if n := len(tableRows[stage.InvoiceRow](t, st, got, "invoices")); n != 300 {
		t.Errorf("%d invoices after the re-run, want 300", n)
	}
	// Rows were flushed in row groups of RowGroupRows while the pages arrived.
	data, err := st.Read(context.Background(), got.Tables["invoices"].Files[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pf.RowGroups()); n != 5 {
		t.Errorf("invoices file has %d row groups, want 5 (300 rows in groups of 64)", n)
	}
	if codec := pf.Metadata().RowGroups[0].Columns[0].MetaData.Codec.String(); codec != "ZSTD" {
		t.Errorf("invoices compressed with %s, want ZSTD", codec)
	}
	raw, err := st.List(context.Background(), "raw/")
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != len(stagedTables())+len(stage.Streams()) {
		t.Errorf("stage holds %d raw objects, want one part per table and a quarantine part per stream: %v", len(raw), raw)
	}
}

func TestDocumentWithMoreItemsThanAPageIsCompleted(t *testing.T) {
	f := newFake()
	f.account("a1", "A-1", "ERP-1")
	var lines []line
	for i := range 250 {
		lines = append(lines, line{fmt.Sprintf("%d.000000001", i), "0.01"})
	}
	f.invoice("big", "a1", at(22, 10, 0), lines...)
	f.invoice("small", "a1", at(22, 11, 0), lines[:98]...)
	f.invoice("exact", "a1", at(22, 12, 0), lines[:99]...)
	f.memo("credit-memos", "bigcm", "a1", at(22, 13, 0), lines[:120]...)
	f.memo("debit-memos", "bigdm", "a1", at(22, 14, 0), lines[:100]...)
	st := newStage(t)
	m := mustRun(t, f, st, w1, Options{})
	if len(m.Warnings) != 0 {
		t.Errorf("warnings: %v", m.Warnings)
	}

	count := map[string]int{}
	for _, it := range tableRows[stage.InvoiceItemRow](t, st, m, "invoice_items") {
		count[*it.InvoiceID]++
	}
	if count["big"] != 250 || count["small"] != 98 || count["exact"] != 99 {
		t.Errorf("items per invoice %v, want big 250 small 98 exact 99", count)
	}
	for _, inv := range tableRows[stage.InvoiceRow](t, st, m, "invoices") {
		if int(*inv.ItemCount) != count[inv.ID] {
			t.Errorf("%s item_count %d, staged %d", inv.ID, *inv.ItemCount, count[inv.ID])
		}
	}
	ids := ids(tableRows[stage.InvoiceItemRow](t, st, m, "invoice_items"), func(r stage.InvoiceItemRow) string { return r.ID })
	if len(slices.Compact(ids)) != 250+98+99 {
		t.Errorf("duplicate item ids staged")
	}
	if n := len(tableRows[stage.CreditMemoItemRow](t, st, m, "credit_memo_items")); n != 120 {
		t.Errorf("%d credit memo items, want 120", n)
	}
	if n := len(tableRows[stage.DebitMemoItemRow](t, st, m, "debit_memo_items")); n != 100 {
		t.Errorf("%d debit memo items, want 100", n)
	}

	// Only the cut-off lists were completed, through the item endpoints.
	var completed []string
	for _, q := range f.calls("") {
		if strings.HasSuffix(q.Object, "-items") {
			completed = append(completed, q.Object+"?"+strings.Join(q.Filters, "&"))
			if q.PageSize != 99 {
				t.Errorf("item query page size %d", q.PageSize)
			}
		}
	}
	slices.Sort(completed)
	want := []string{"credit-memo-items?creditmemoid.EQ:bigcm", "debit-memo-items?debitmemoid.EQ:bigdm",
		"invoice-items?invoiceid.EQ:big", "invoice-items?invoiceid.EQ:exact"}
	if !slices.Equal(completed, want) {
		t.Errorf("item endpoint queries %v, want %v", completed, want)
	}
}

func TestHeaderTotalDifferentFromItemsIsAWarning(t *testing.T) {
	f := newFake()
	f.account("a1", "A-1", "ERP-1")
	inv := f.invoice("inv1", "a1", at(22, 10, 0), line{"10", "1"})
	inv["amount"] = num("11.01")
	f.invoice("inv2", "a1", at(22, 11, 0), line{"10", "1"})
	cm := f.memo("credit-memos", "cm1", "a1", at(22, 12, 0), line{"5", "0"})
	cm["totalAmount"] = num("6")
	st := newStage(t)
	m := mustRun(t, f, st, w1, Options{})
	want := []string{
		"invoices inv1: amount 11.01 differs from the sum of its 1 items 11",
		"credit_memos cm1: totalAmount 6 differs from the sum of its 1 items 5",
	}
	if !slices.Equal(m.Warnings, want) {
		t.Errorf("warnings %q, want %q", m.Warnings, want)
	}
	if n := len(tableRows[stage.InvoiceRow](t, st, m, "invoices")); n != 2 {
		t.Errorf("%d invoices staged, want both (the transform rejects the mismatch)", n)
	}
}

func TestDocumentWithoutERPAccountIDIsStagedWithNull(t *testing.T) {
	f := newFake()
	f.account("a1", "A-1", "")
	f.account("a2", "A-2", "ERP-2")
	f.invoice("inv1", "a1", at(22, 10, 0), line{"1", "0"})
	f.invoice("inv2", "a2", at(22, 11, 0), line{"1", "0"})
	f.refund("ref1", "a1", at(22, 12, 0), "1")
	f.invoice("orphan", "gone", at(22, 13, 0), line{"1", "0"}) // no account record at all
	st := newStage(t)
	m := mustRun(t, f, st, w1, Options{})
	got := map[string]string{}
	for _, r := range tableRows[stage.InvoiceRow](t, st, m, "invoices") {
		got[r.ID] = fmt.Sprint(deref(r.ERPAccountID), "/", deref(r.AccountNumber), "/", deref(r.AccountID))
	}
	want := map[string]string{"inv1": "<nil>/A-1/a1", "inv2": "ERP-2/A-2/a2", "orphan": "<nil>/<nil>/gone"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("invoices erp/number/account %v, want %v", got, want)
	}
	refunds := tableRows[stage.RefundRow](t, st, m, "refunds")
	if len(refunds) != 1 || refunds[0].ERPAccountID != nil || *refunds[0].ReferenceID != "rr-ref1" {
		t.Errorf("refunds %+v", refunds)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestUnknownFieldsAndNullsDoNotBreakExtraction(t *testing.T) {
	f := newFake()
	f.ignoreFields = true // Zuora sends fields nobody asked for
	f.account("a1", "A-1", "ERP-1")
	inv := f.invoice("inv1", "a1", at(22, 10, 0), line{"1", "0"})
	inv["newField"] = map[string]any{"nested": []any{1, "x", nil}}
	inv["Region__c"] = "EMEA"
	inv["dueDate"] = nil     // omitted, as includeNullFields=false does
	delete(inv, "balance")   // missing optional field
	inv["status"] = "posted" // EQ is case-insensitive
	f.objects["invoice-items"][0]["processingType"] = num("0")
	delete(f.objects["invoice-items"][0], "accountId") // taken from the invoice instead
	st := newStage(t)
	m := mustRun(t, f, st, w1, Options{})
	items := tableRows[stage.InvoiceItemRow](t, st, m, "invoice_items")
	if len(items) != 1 || deref(items[0].AccountID) != "a1" || deref(items[0].InvoiceID) != "inv1" || deref(items[0].SKU) != "SKU-1" {
		t.Errorf("invoice items %+v", items)
	}
	rows := tableRows[stage.InvoiceRow](t, st, m, "invoices")
	if len(rows) != 1 || rows[0].DueDate != nil || rows[0].Balance != nil || dec(rows[0].Amount) != "1" {
		t.Errorf("invoices %+v", rows)
	}
}

func TestCommittedWindowIsNotExtractedAgainUnlessForced(t *testing.T) {
	f := newFake()
	f.account("a1", "A-1", "ERP-1")
	f.invoice("inv1", "a1", at(22, 10, 0), line{"1", "0"})
	st := newStage(t)
	first := mustRun(t, f, st, w1, Options{RunID: "r1"})
	calls := len(f.calls(""))

	f.invoice("inv2", "a1", at(22, 20, 0), line{"1", "0"})
	again := mustRun(t, f, st, w1, Options{RunID: "r2"})
	if len(f.calls("")) != calls {
		t.Errorf("a committed window called Zuora %d more times", len(f.calls(""))-calls)
	}
	if again.RunID != "r1" || !again.CommittedAt.Equal(first.CommittedAt) {
		t.Errorf("got manifest of run %q, want the committed one of r1", again.RunID)
	}
	forced := mustRun(t, f, st, w1, Options{RunID: "r3", Force: true})
	if forced.RunID != "r3" || forced.Tables["invoices"].Rows != 2 {
		t.Errorf("forced run %q staged %d invoices, want r3 and 2", forced.RunID, forced.Tables["invoices"].Rows)
	}
	// The same window given in the tenant's zone is the same window: a forced
	// run does not mistake its own earlier snapshot for another window's.
	local := stage.Window{Start: w1.Start.In(tenantZone), End: w1.End.In(tenantZone)}
	forced = mustRun(t, f, st, local, Options{RunID: "r4", Force: true})
	if forced.Window != w1.ID() || forced.Tables["invoices"].Rows != 2 {
		t.Errorf("forced run in -08:00: window %s, %d invoices, want %s and 2", forced.Window, forced.Tables["invoices"].Rows, w1.ID())
	}
	stored, found, err := st.ReadExtract(context.Background(), w1)
	if !found || err != nil || stored.RunID != "r4" {
		t.Errorf("stored manifest run %q found %v err %v", stored.RunID, found, err)
	}
	// A forced re-run that fails rewrites parts the old manifest described, so
	// it must leave no manifest at all rather than a stale one.
	ctx, cancel := context.WithCancel(context.Background())
	f.onPage = func(zuora.Query, int) { cancel() }
	f.invoice("inv3", "a1", at(22, 30, 0), line{"1", "0"})
	for i := range pageSize + 1 {
		f.payment(fmt.Sprintf("p%03d", i), "a1", "USD", at(22, 31, 0), "1")
	}
	if _, err := Run(ctx, f, st, w1, Options{Force: true}); err == nil {
		t.Fatal("forced run cancelled halfway succeeded")
	}
	if manifestExists(t, st, w1) {
		t.Error("a failed forced run left the old manifest in place")
	}
}

func TestStatusesOption(t *testing.T) {
	f := newFake()
	f.account("a1", "A-1", "ERP-1")
	f.payment("p1", "a1", "USD", at(22, 10, 0), "1")
	f.payment("p2", "a1", "USD", at(22, 11, 0), "1")["status"] = "Posted"
	f.payment("p3", "a1", "USD", at(22, 12, 0), "1")["status"] = "Error"
	draft := f.invoice("inv1", "a1", at(22, 10, 0), line{"1", "0"})
	draft["status"] = "Draft"
	st := newStage(t)
	m := mustRun(t, f, st, w1, Options{Statuses: map[string][]string{"payments": {"Processed", "Posted"}, "invoices": {}}})
	if got := ids(tableRows[stage.PaymentRow](t, st, m, "payments"), func(r stage.PaymentRow) string { return r.ID }); !slices.Equal(got, []string{"p1", "p2"}) {
		t.Errorf("payments %v, want p1 p2", got)
	}
	if n := m.Tables["invoices"].Rows; n != 1 {
		t.Errorf("%d invoices, want the draft (no status filter)", n)
	}
	if got := f.calls("payments")[0].Filters[2]; got != "status.IN:[Processed,Posted]" {
		t.Errorf("payments status filter %q", got)
	}
	if got := f.calls("invoices")[0].Filters; len(got) != 2 {
		t.Errorf("invoice filters %v, want no status filter", got)
	}
}

func TestOptionsValidation(t *testing.T) {
	st := newStage(t)
	if _, err := Run(context.Background(), newFake(), st, w1, Options{Overlap: -time.Minute}); err == nil {
		t.Error("negative overlap accepted")
	}
	if _, err := Run(context.Background(), newFake(), st, w1, Options{Statuses: map[string][]string{"invoice": {"Posted"}}}); err == nil || !strings.Contains(err.Error(), `"invoice"`) {
		t.Errorf("statuses for an unknown table: %v", err)
	}
	if _, err := Run(context.Background(), newFake(), st, stage.Window{Start: w1.End, End: w1.Start}, Options{}); err == nil {
		t.Error("empty window accepted")
	}
	m := mustRun(t, newFake(), st, w1, Options{Overlap: 30 * time.Minute})
	if !m.QueryFrom.Equal(at(21, 30, 0)) {
		t.Errorf("query from %v with a 30m overlap", m.QueryFrom)
	}
}

func TestDocumentTypesAreWalkedConcurrentlyWithinTheBound(t *testing.T) {
	for _, limit := range []int{1, 3, 5} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			f := newFake()
			f.account("a1", "A-1", "ERP-1")
			f.invoice("inv1", "a1", at(22, 10, 0), line{"1", "0"})
			// Each walk waits (briefly) until the bound has been reached once, so
			// that overlap is certain when it is allowed.
			f.onStart = func(zuora.Query) {
				deadline := time.Now().Add(300 * time.Millisecond)
				for time.Now().Before(deadline) {
					f.mu.Lock()
					n := f.maxInflight
					f.mu.Unlock()
					if n >= limit {
						return
					}
					time.Sleep(time.Millisecond)
				}
			}
			st := newStage(t)
			mustRun(t, f, st, w1, Options{Concurrency: limit})
			if f.maxInflight != limit {
				t.Errorf("at most %d walks at once with Concurrency %d, want exactly %d", f.maxInflight, limit, limit)
			}
		})
	}
}

func TestRecordUpdatedDuringTheWalkIsStagedInBothVersions(t *testing.T) {
	f := newFake()
	f.account("a1", "A-1", "ERP-1")
	var first map[string]any
	for i := range 150 {
		inv := f.invoice(fmt.Sprintf("inv%03d", i), "a1", at(22, 0, 0).Add(time.Duration(i)*10*time.Second), line{"1", "0"})
		if i == 10 {
			first = inv
		}
	}
	// After page 1 (already handed out inv010), inv010 is updated: with
	// updateddate.ASC it reappears later in the same walk with its new stamp.
	f.onPage = func(q zuora.Query, n int) {
		if q.Object == "invoices" && n == 1 {
			f.mu.Lock()
			first["updatedDate"] = zt(at(22, 45, 0))
			first["balance"] = num("0")
			f.mu.Unlock()
		}
	}
	st := newStage(t)
	m := mustRun(t, f, st, w1, Options{})
	var versions []string
	for _, r := range tableRows[stage.InvoiceRow](t, st, m, "invoices") {
		if r.ID == "inv010" {
			versions = append(versions, r.UpdatedDate.Format(time.TimeOnly)+" balance "+dec(r.Balance))
		}
	}
	want := []string{"22:01:40 balance 1", "22:45:00 balance 0"}
	if !slices.Equal(versions, want) {
		t.Errorf("inv010 staged as %v, want both versions %v (the transform keeps the latest)", versions, want)
	}
	if n := m.Tables["invoices"].Rows; n != 151 {
		t.Errorf("%d invoice rows, want 150 + 1 later version", n)
	}
}
