package extract_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/zuora-erp-etl/zuora-erp-etl/extract"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// TestSimRecheckStagesOnlyWhatChangedAtTheSameVersion: fetched again by id, a
// document whose account was fixed is staged in its window (header and every
// item, stamped rechecked_at) once committed; one with nothing new, one edited
// since (a newer version) and one Zuora no longer returns are only reported.
func TestSimRecheckStagesOnlyWhatChangedAtTheSameVersion(t *testing.T) {
	now := genTo.Add(time.Hour)
	e := newEnv(t, generated(), zuorasim.Options{Now: func() time.Time { return now }}, nil)
	st := memStage(t)
	w := hour(22)
	m := run(t, e, st, w, extract.Options{})
	invoices := readParquet[stage.InvoiceRow](t, st, m.Tables["invoices"].Files[0].Key)
	items := readParquet[stage.InvoiceItemRow](t, st, m.Tables["invoice_items"].Files[0].Key)
	itemsOf := map[string]int{}
	for _, it := range items {
		itemsOf[*it.InvoiceID]++
	}
	var fixed, same, edited stage.InvoiceRow
	for _, r := range invoices {
		switch {
		case r.ERPAccountID == nil && fixed.ID == "" && itemsOf[r.ID] > 0:
			fixed = r
		case r.ERPAccountID != nil && same.ID == "":
			same = r
		case r.ERPAccountID != nil && edited.ID == "" && *r.AccountID != *same.AccountID:
			edited = r
		}
	}
	if fixed.ID == "" || same.ID == "" || edited.ID == "" {
		t.Fatal("the window lacks an invoice without ERP id, or two with one")
	}
	if err := e.sim.SetFields(*fixed.AccountID, map[string]string{"ERPAccountId__c": "ERP-FIXED"}); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.Touch(edited.ID); err != nil {
		t.Fatal(err)
	}
	want := func(r stage.InvoiceRow) extract.Wanted {
		a := stage.Account{ID: *r.AccountID, Number: *r.AccountNumber}
		if r.ERPAccountID != nil {
			a.ERPID = *r.ERPAccountID
		}
		return extract.Wanted{DocType: stage.Invoice, ID: r.ID, Window: w, Updated: r.UpdatedDate, Account: a}
	}
	gone := want(same)
	gone.ID = "ffffffffffffffffffffffffffffffff"
	res, err := extract.Recheck(context.Background(), e.client, st, []extract.Wanted{want(fixed), want(same), want(edited), gone},
		extract.RecheckOptions{RunID: "run-recheck"})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]string{}
	for _, f := range res.Findings {
		outcomes[f.ID] = f.Outcome
	}
	for id, o := range map[string]string{fixed.ID: extract.Staged, same.ID: extract.Unchanged, edited.ID: extract.Newer, gone.ID: extract.NotFound} {
		if outcomes[id] != o {
			t.Errorf("%s: %s; want %s", id, outcomes[id], o)
		}
	}
	if got := res.Windows(); len(got) != 1 || got[0].ID() != w.ID() {
		t.Fatalf("windows to commit %v; want %s", got, w.ID())
	}
	before, _, err := st.ReadExtract(context.Background(), w)
	if err != nil || len(before.Tables["invoices"].Files) != 1 {
		t.Fatalf("the re-check changed the snapshot before its commit: %v %+v", err, before.Tables["invoices"])
	}
	if err := res.Commit(context.Background(), st, w); err != nil {
		t.Fatal(err)
	}
	after, _, err := st.ReadExtract(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Rechecks) != 1 || after.Rechecks[0].RunID != "run-recheck" || !slices.Equal(after.Rechecks[0].Documents, []string{fixed.ID}) {
		t.Errorf("rechecks %+v; want run-recheck with %s", after.Rechecks, fixed.ID)
	}
	hf, itf := after.Tables["invoices"].Files, after.Tables["invoice_items"].Files
	if len(hf) != 2 || len(itf) != 2 || !strings.HasSuffix(hf[1].Key, "/recheck-run-recheck.parquet") {
		t.Fatalf("invoices files %v, items files %v; want the re-check part added to each", hf, itf)
	}
	rows := readParquet[stage.InvoiceRow](t, st, hf[1].Key)
	if len(rows) != 1 || rows[0].ID != fixed.ID || rows[0].ERPAccountID == nil || *rows[0].ERPAccountID != "ERP-FIXED" ||
		rows[0].RecheckedAt == nil || !rows[0].UpdatedDate.Equal(*fixed.UpdatedDate) {
		t.Fatalf("re-checked invoice rows %+v; want %s at its version with ERP-FIXED and rechecked_at", rows, fixed.ID)
	}
	irows := readParquet[stage.InvoiceItemRow](t, st, itf[1].Key)
	if len(irows) != itemsOf[fixed.ID] {
		t.Errorf("%d re-checked items; the invoice has %d", len(irows), itemsOf[fixed.ID])
	}
	for _, it := range irows {
		if *it.InvoiceID != fixed.ID || it.RecheckedAt == nil {
			t.Errorf("re-checked item %+v", it)
		}
	}
}

// readParquet reads every row of one staged Parquet object.
func readParquet[T any](t *testing.T, st *stage.Stage, key string) []T {
	t.Helper()
	data, err := st.Read(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parquet.Read[T](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return rows
}
