package extract_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/extract"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// These tests run the extract against the simulator with a real tenant's
// behaviour switched on and off (issue 10).

func onOff(t *testing.T, f func(t *testing.T, on bool)) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		t.Run(name, func(t *testing.T) { f(t, on) })
	}
}

func noManifest(t *testing.T, st *stage.Stage, w stage.Window) {
	t.Helper()
	if ok, err := st.Exists(context.Background(), stage.ManifestKey("extract", w)); ok || err != nil {
		t.Fatalf("a failed window left a manifest (exists %v, err %v)", ok, err)
	}
}

// erpIDs returns, per staged invoice, the ERP account it carries ("" for none).
func erpIDs(t *testing.T, st *stage.Stage, m *stage.ExtractManifest) map[string]string {
	out := map[string]string{}
	for _, r := range readParts[stage.InvoiceRow](t, st, m, "invoices") {
		out[r.ID] = ""
		if r.ERPAccountID != nil {
			out[r.ID] = *r.ERPAccountID
		}
	}
	return out
}

func TestSimLowerCamelCustomFieldsStillCarryTheERPAccount(t *testing.T) {
	onOff(t, func(t *testing.T, on bool) {
		e := newEnv(t, generated(), zuorasim.Options{LowerCamelCustomFields: on}, nil)
		st := memStage(t)
		w := hour(22)
		m := run(t, e, st, w, extract.Options{})
		want := map[string]string{}
		accounts := map[string]string{}
		for _, a := range e.sim.Snapshot("accounts") {
			erp, _ := a["ERPAccountId__c"].(string)
			accounts[a["id"].(string)] = erp
		}
		for _, inv := range e.sim.Snapshot("invoices") {
			u := updatedOf(t, inv)
			if !u.Before(w.Start.Add(-extract.DefaultOverlap)) && u.Before(w.End) { // every status
				want[inv["id"].(string)] = accounts[inv["accountId"].(string)]
			}
		}
		got := erpIDs(t, st, m)
		withERP := 0
		for id, erp := range want {
			if got[id] != erp {
				t.Fatalf("invoice %s staged with ERP account %q, want %q", id, got[id], erp)
			}
			if erp != "" {
				withERP++
			}
		}
		if len(got) != len(want) || withERP < 10 {
			t.Fatalf("%d invoices staged (%d with an ERP account), want %d", len(got), withERP, len(want))
		}
	})
}

func TestSimERPAccountFieldIsASetting(t *testing.T) {
	onOff(t, func(t *testing.T, on bool) {
		w := hour(22)
		// The name in any case finds the field, whatever case the tenant sends.
		e := newEnv(t, generated(), zuorasim.Options{LowerCamelCustomFields: on}, nil)
		st := memStage(t)
		m := run(t, e, st, w, extract.Options{ERPAccountField: "erpaccountid__C"})
		if q := e.sim.Stats().Requests["GET /object-query/invoices"]; q == 0 {
			t.Fatal("no invoice query")
		}
		n := 0
		for _, erp := range erpIDs(t, st, m) {
			if erp != "" {
				n++
			}
		}
		if n == 0 {
			t.Fatal("no invoice carries the ERP account read through another spelling of the field")
		}

		// A name Zuora does not know stops the run before anything is
		// committed, instead of rejecting every document.
		st = memStage(t)
		_, err := extract.Run(context.Background(), e.client, st, w, extract.Options{ERPAccountField: "ErpCustomer__c"})
		var fa *extract.FieldAbsentError
		if !errors.As(err, &fa) || fa.Field != "ErpCustomer__c" || fa.Err == nil {
			t.Fatalf("a field name Zuora does not know: %v, want a FieldAbsentError naming it", err)
		}
		noManifest(t, st, w)

		// A tenant that drops an unknown fields[] name silently instead of
		// refusing it is caught by the probe: its accounts do not carry the
		// key even with their null fields.
		lax := newEnv(t, generated(), zuorasim.Options{LowerCamelCustomFields: on, IgnoreUnknownFields: true}, nil)
		_, err = extract.Run(context.Background(), lax.client, st, w, extract.Options{ERPAccountField: "ErpCustomer__c"})
		if !errors.As(err, &fa) || fa.Field != "ErpCustomer__c" || fa.Accounts == 0 || fa.Err != nil {
			t.Fatalf("a field name the tenant drops silently: %v, want a FieldAbsentError", err)
		}
		noManifest(t, st, w)
		run(t, lax, memStage(t), w, extract.Options{}) // the right name passes the probe there too

		// A first window none of whose accounts is mapped yet is staged (its
		// documents are rejected one by one by the mapping), never refused on
		// every run: the field exists, it is only empty.
		v := volume
		v.NoERPPercent = 100
		bare := newEnv(t, zuorasim.Generate(7, v, genFrom, genTo), zuorasim.Options{LowerCamelCustomFields: on}, nil)
		unmapped := memStage(t)
		m = run(t, bare, unmapped, w, extract.Options{})
		for _, erp := range erpIDs(t, unmapped, m) {
			if erp != "" {
				t.Fatalf("an unmapped tenant staged an ERP account %q", erp)
			}
		}

		// Once a window with documents is committed, the probe is not sent
		// again (the documents alone: the applications' accounts are fetched
		// by id in every window).
		run(t, e, st, w, extract.Options{})
		before := bare.sim.Stats().Requests["GET /object-query/accounts"]
		if _, err := extract.Run(context.Background(), bare.client, st, hour(21), extract.Options{DocTypes: stage.Documents()}); err != nil {
			t.Fatalf("a later window: %v", err)
		}
		if after := bare.sim.Stats().Requests["GET /object-query/accounts"]; after != before {
			t.Fatalf("%d account probes for a later window, want none", after-before)
		}
	})
}

// touchAt touches, after page page of the first invoice walk, the record at
// position pos of that page (-1: the last), and inserts a copy of it: both move
// to now, past the window's end, which shifts an offset cursor back by two.
func touchAt(t *testing.T, e *env, page, pos int) *int {
	var mu sync.Mutex
	pages, touched := 0, 0
	e.sim.SetAfterPage(func(ev zuorasim.PageEvent) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Object != "invoices" || len(ev.IDs) < 2 {
			return
		}
		if pages++; pages != page {
			return
		}
		i := pos
		if i < 0 || i >= len(ev.IDs) {
			i = len(ev.IDs) - 1
		}
		if err := e.sim.Touch(ev.IDs[i]); err != nil {
			t.Error(err)
		}
		if _, err := e.sim.CloneDocument(ev.IDs[i]); err != nil {
			t.Error(err)
		}
		touched++
	})
	return &touched
}

func TestSimOffsetCursorsLoseNothingWhenRowsLeaveMidWalk(t *testing.T) {
	w := hour(22)
	v := volume
	v.Invoices, v.MaxItems, v.DraftPercent = 600, 130, 0
	tn := zuorasim.Generate(11, v, w.Start.Add(-extract.DefaultOverlap), w.End)
	for _, c := range []struct {
		name      string
		page, pos int
	}{{"first row of page 1", 1, 0}, {"middle of page 2", 2, 50}, {"last row of page 3", 3, -1}, {"first row of page 5", 5, 0}} {
		for _, offset := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/offset=%v", c.name, offset), func(t *testing.T) {
				opts := zuorasim.Options{Now: func() time.Time { return w.End.Add(30 * time.Minute) }}
				if offset {
					opts.OffsetCursorObjects = []string{"invoices", "invoice-items"}
				}
				e := newEnv(t, tn, opts, nil)
				want := held(t, e.sim, w.Start.Add(-extract.DefaultOverlap), w.End)
				if len(want["invoices"]) < 5*99 {
					t.Fatalf("only %d invoices in the window: too few pages", len(want["invoices"]))
				}
				touched := touchAt(t, e, c.page, c.pos)
				st := memStage(t)
				m := run(t, e, st, w, extract.Options{Now: opts.Now})
				if *touched != 1 {
					t.Fatalf("touched %d times, want once", *touched)
				}
				// Every version the window held when the walk began, once: the
				// touched record and the copy now sit past the window's end.
				assertStaged(t, st, m, want)
			})
		}
	}
}

func TestSimOffsetCursorsWithTheTouchAndInsertKnobs(t *testing.T) {
	w := hour(22)
	v := volume
	v.Invoices, v.MaxItems = 300, 130
	tn := zuorasim.Generate(12, v, w.Start.Add(-extract.DefaultOverlap), w.End)
	onOff(t, func(t *testing.T, on bool) {
		opts := zuorasim.Options{Now: func() time.Time { return w.End.Add(time.Hour) }}
		if on {
			opts.OffsetCursorObjects = []string{"invoices", "invoice-items"}
		}
		e := newEnv(t, tn, opts, nil)
		want := held(t, e.sim, w.Start.Add(-extract.DefaultOverlap), w.End)
		// Every page served, items included, touches its first record and
		// inserts a copy of its first document, all stamped past the window.
		e.sim.SetFaults(zuorasim.Faults{TouchPerPage: 1, InsertPerPage: 1, Path: "/object-query/"})
		st := memStage(t)
		m := run(t, e, st, w, extract.Options{Now: opts.Now})
		f := e.sim.Stats().Faults
		if f["touch"] < 5 || f["insert"] < 3 {
			t.Fatalf("the knobs did little: %v", f)
		}
		// Touched items keep their invoice and their place in an id walk; the
		// staged item version is the one read, so compare ids for items.
		for _, table := range []string{"invoices", "payments", "refunds", "credit_memos", "debit_memos"} {
			if got := staged(t, st, m, table); !slices.Equal(got, want[table]) {
				t.Errorf("%s: staged %d, want %d; extra %v missing %v", table, len(got), len(want[table]), first(diff(got, want[table])), first(diff(want[table], got)))
			}
		}
		for _, table := range []string{"invoice_items", "credit_memo_items", "debit_memo_items"} {
			got, exp := idsOf(staged(t, st, m, table)), idsOf(want[table])
			if !slices.Equal(got, exp) {
				t.Errorf("%s: staged %d items, want %d; extra %v missing %v", table, len(got), len(exp), first(diff(got, exp)), first(diff(exp, got)))
			}
		}
	})
}

func idsOf(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k[:32]
	}
	slices.Sort(out)
	return out
}

func TestSimTenantReadingFilterTimesInItsZoneFailsTheWindow(t *testing.T) {
	for _, h := range []int{20, 22} {
		onOff(t, func(t *testing.T, on bool) {
			e := newEnv(t, generated(), zuorasim.Options{FilterTimesInTenantZone: on}, nil)
			st := memStage(t)
			w := hour(h)
			m, err := extract.Run(context.Background(), e.client, st, w, extract.Options{})
			if !on {
				if err != nil {
					t.Fatal(err)
				}
				assertStaged(t, st, m, held(t, e.sim, w.Start.Add(-extract.DefaultOverlap), w.End))
				return
			}
			var re *extract.RangeError
			if !errors.As(err, &re) || re.Outside == 0 {
				t.Fatalf("window %s on a tenant reading filter times in its zone: %v, want a RangeError", w.ID(), err)
			}
			noManifest(t, st, w)
		})
	}
}

func TestSimTenantWithoutInvoiceSettlement(t *testing.T) {
	onOff(t, func(t *testing.T, on bool) {
		e := newEnv(t, generated(), zuorasim.Options{NoInvoiceSettlement: on}, nil)
		w := hour(22)
		st := memStage(t)
		_, err := extract.Run(context.Background(), e.client, st, w, extract.Options{})
		var ue *extract.UnavailableError
		if on != errors.As(err, &ue) {
			t.Fatalf("all five types: %v", err)
		}
		if on {
			noManifest(t, st, w)
		}
		m := run(t, e, st, w, extract.Options{Force: true, DocTypes: []stage.DocType{stage.Invoice, stage.Payment, stage.Refund}})
		for _, table := range []string{"credit_memos", "credit_memo_items", "debit_memos", "debit_memo_items"} {
			if _, listed := m.Tables[table]; listed {
				t.Errorf("%s listed although memos are not moved", table)
			}
		}
		want := held(t, e.sim, w.Start.Add(-extract.DefaultOverlap), w.End)
		for _, table := range []string{"invoices", "invoice_items", "payments", "refunds"} {
			if got := staged(t, st, m, table); !slices.Equal(got, want[table]) {
				t.Errorf("%s: staged %d, want %d", table, len(got), len(want[table]))
			}
		}
		// The memo walks run concurrently and the first refusal cancels the
		// other, so between them they were refused once or twice, never retried.
		stats := e.sim.Stats().Requests
		cm, dm := stats["GET /object-query/credit-memos"], stats["GET /object-query/debit-memos"]
		if on && (cm+dm < 1 || cm > 1 || dm > 1) {
			t.Errorf("credit memos queried %d times and debit memos %d: want the refused walks, each at most once", cm, dm)
		}
	})
}

func TestSimNumbersAsDoublesReachTheStageExactly(t *testing.T) {
	w := hour(22)
	amounts := map[bool]map[string]string{}
	onOff(t, func(t *testing.T, on bool) {
		e := newEnv(t, generated(), zuorasim.Options{NumbersAsDoubles: on}, nil)
		st := memStage(t)
		m := run(t, e, st, w, extract.Options{})
		assertStaged(t, st, m, held(t, e.sim, w.Start.Add(-extract.DefaultOverlap), w.End))
		got := map[string]string{}
		for _, r := range readParts[stage.InvoiceRow](t, st, m, "invoices") {
			got[r.ID] = money.FromFixed(*r.Amount).String() + "/" + money.FromFixed(*r.TaxAmount).String() + "/" + money.FromFixed(*r.Balance).String()
		}
		for _, r := range readParts[stage.InvoiceItemRow](t, st, m, "invoice_items") {
			got[r.ID] = money.FromFixed(*r.ChargeAmount).String() + "/" + money.FromFixed(*r.Quantity).String() + "/" + money.FromFixed(*r.UnitPrice).String()
		}
		for _, r := range e.sim.Snapshot("invoices") {
			id := r["id"].(string)
			if s, ok := got[id]; ok && s != fmt.Sprintf("%s/%s/%s", dec(r["amount"]), dec(r["taxAmount"]), dec(r["balance"])) {
				t.Fatalf("invoice %s staged %s, Zuora holds %v %v %v", id, s, r["amount"], r["taxAmount"], r["balance"])
			}
		}
		amounts[on] = got
		if on && !maps.Equal(amounts[false], amounts[true]) {
			t.Fatal("the amounts staged differ with numbers written as doubles")
		}
	})
}

// dec is a simulator number as the stage prints it.
func dec(v any) string { return decimal.RequireFromString(string(v.(json.Number))).String() }
