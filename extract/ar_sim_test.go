package extract_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/extract"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// TestSimAccountsOfTheApplicationsAreStaged: the accounts table holds, once
// each, exactly the accounts of the window's applications, with the ERP
// customer Zuora holds, fetched by id at most 50 a query after the walks.
func TestSimAccountsOfTheApplicationsAreStaged(t *testing.T) {
	e := newEnv(t, generated(), zuorasim.Options{}, nil)
	st := memStage(t)
	w := hour(22)
	before := e.sim.Stats().Requests["GET /object-query/accounts"]
	m := run(t, e, st, w, extract.Options{})
	want := map[string]bool{}
	for _, table := range []string{"payment_applications", "credit_memo_applications", "refund_applications"} {
		for _, r := range readParts[stage.PaymentApplicationRow](t, st, m, table) { // id and account_id are read by name
			want[*r.AccountID] = true
		}
	}
	if len(want) < 5 {
		t.Fatalf("the window's applications join only %d accounts: the tenant proves nothing", len(want))
	}
	erp := map[string]string{}
	for _, a := range e.sim.Snapshot(stage.AccountsObject) {
		id, _ := a["ERPAccountId__c"].(string)
		erp[a["id"].(string)] = id
	}
	rows := readParts[stage.AccountRow](t, st, m, stage.AccountsTable)
	got := map[string]bool{}
	for _, r := range rows {
		if got[r.ID] {
			t.Errorf("account %s staged twice", r.ID)
		}
		got[r.ID] = true
		if (r.ERPAccountID == nil) != (erp[r.ID] == "") || r.ERPAccountID != nil && *r.ERPAccountID != erp[r.ID] || r.AccountNumber == nil || r.UpdatedDate == nil {
			t.Errorf("account %s staged as %+v; Zuora holds ERP id %q", r.ID, r, erp[r.ID])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d accounts staged, want the %d of the applications", len(got), len(want))
	}
	for id := range want {
		if !got[id] {
			t.Errorf("account %s of an application is not staged", id)
		}
	}
	// the probe of the account field (a first window), then one query per 50 ids
	if n := e.sim.Stats().Requests["GET /object-query/accounts"] - before; n != 1+(len(want)+extract.RecheckBatch-1)/extract.RecheckBatch {
		t.Errorf("%d account queries for %d accounts", n, len(want))
	}
	if q := m.Tables[stage.AccountsTable].Query; !slices.Equal(q["object"], []string{"accounts"}) || len(q["filter[]"]) != 1 {
		t.Errorf("the manifest records the accounts query as %v", q)
	}
}

// TestSimAPaymentAppliedToMoreThan99InvoicesIsStagedWhole: the application
// stream pages on its own (a parent's expand stops at 99), so every
// application of a payment applied to 100 or more invoices is staged, as sent.
func TestSimAPaymentAppliedToMoreThan99InvoicesIsStagedWhole(t *testing.T) {
	v := volume
	v.WidePayments = 1
	e := newEnv(t, zuorasim.Generate(7, v, genFrom, genTo), zuorasim.Options{}, nil)
	st := memStage(t)
	perPayment := map[string][]map[string]any{}
	for _, a := range e.sim.Snapshot("payment-applications") {
		perPayment[a["paymentId"].(string)] = append(perPayment[a["paymentId"].(string)], a)
	}
	var wide string
	for p, apps := range perPayment {
		if len(apps) > 99 {
			wide = p
		}
	}
	if wide == "" {
		t.Fatal("no payment is applied to more than 99 invoices")
	}
	staged := map[string]string{}
	for h := 20; h <= 22; h++ {
		m := run(t, e, st, hour(h), extract.Options{})
		for _, r := range readParts[stage.PaymentApplicationRow](t, st, m, "payment_applications") {
			if *r.PaymentID == wide {
				if _, dup := staged[r.ID]; dup {
					t.Errorf("application %s staged twice", r.ID)
				}
				staged[r.ID] = money.FromFixed(*r.ApplyAmount).String()
			}
		}
	}
	for _, a := range perPayment[wide] {
		u := updatedOf(t, a)
		if u.Before(hour(20).Start) {
			continue // before the first window: not asked for
		}
		if got, ok := staged[a["id"].(string)]; !ok || got != dec(a["applyAmount"]) {
			t.Errorf("application %s of the wide payment: staged %q (present %t), Zuora sent %v", a["id"], got, ok, a["applyAmount"])
		}
	}
	if len(staged) < 100 {
		t.Errorf("%d applications of the wide payment staged, want more than 99", len(staged))
	}
}

// TestSimATenantWithoutTheApplicationObjectsIsRefused: Zuora answers 403 for
// the application objects of a tenant without Invoice Settlement; moving an
// application kind there is refused before anything is committed, naming the
// kind to leave out, and the documents alone are staged without them.
func TestSimATenantWithoutTheApplicationObjectsIsRefused(t *testing.T) {
	e := newEnv(t, generated(), zuorasim.Options{NoInvoiceSettlement: true}, nil)
	st := memStage(t)
	w := hour(22)
	_, err := extract.Run(context.Background(), e.client, st, w, extract.Options{
		DocTypes: []stage.DocType{stage.Invoice, stage.Payment, stage.Refund, stage.PaymentApplication, stage.RefundApplication}})
	var ue *extract.UnavailableError
	if !errors.As(err, &ue) || !ue.DocType.IsApplication() || !strings.Contains(err.Error(), "leave the application kind "+string(ue.DocType)) {
		t.Fatalf("application objects on a tenant without them: %v; want an UnavailableError naming the application kind", err)
	}
	noManifest(t, st, w)
	m := run(t, e, st, w, extract.Options{DocTypes: []stage.DocType{stage.Invoice, stage.Payment, stage.Refund}})
	for _, dt := range stage.Applications() {
		if _, listed := m.Tables[dt.HeaderTable()]; listed {
			t.Errorf("%s listed though not moved", dt.HeaderTable())
		}
		if !slices.ContainsFunc(m.Warnings, func(s string) bool { return strings.HasPrefix(s, dt.HeaderTable()+": not extracted") }) {
			t.Errorf("no warning that %s was not extracted: %v", dt.HeaderTable(), m.Warnings)
		}
	}
	if _, listed := m.Tables[stage.AccountsTable]; listed {
		t.Error("accounts fetched though no application kind is moved")
	}
	if n := e.sim.Stats().Requests["GET /object-query/payment-applications"]; n != 1 {
		t.Errorf("%d queries of payment-applications; only the refused run asks", n)
	}
}

// TestSimEveryStatusIsExtracted: drafts, canceled and errored documents are
// staged beside posted ones (the default filters no status), so a status
// change after posting is seen; --status still narrows.
func TestSimEveryStatusIsExtracted(t *testing.T) {
	e := newEnv(t, generated(), zuorasim.Options{}, nil)
	st := memStage(t)
	w := hour(22)
	m := run(t, e, st, w, extract.Options{})
	statuses := map[string]bool{}
	for _, r := range readParts[stage.InvoiceRow](t, st, m, "invoices") {
		statuses[*r.Status] = true
	}
	if !statuses["Posted"] || !statuses["Draft"] {
		t.Errorf("invoice statuses staged %v; want Posted and Draft", statuses)
	}
	narrow := run(t, e, memStage(t), w, extract.Options{Statuses: map[string][]string{"invoices": {"Posted"}}})
	if got := narrow.Tables["invoices"].Query["filter[]"]; !slices.Contains(got, "status.EQ:Posted") {
		t.Errorf("a status filter is not sent: %v", got)
	}
	if _, err := extract.Run(context.Background(), e.client, memStage(t), w, extract.Options{
		Statuses: map[string][]string{"payment_applications": {"Processed"}}}); err == nil || !strings.Contains(err.Error(), "payment_applications") {
		t.Errorf("a status filter on an application table: %v; want it refused (Zuora filters applications on no status)", err)
	}
}

// TestSimRecheckOfApplications: an application rejected for its account's
// missing ERP customer is staged again (with its account) once the account is
// fixed, one still unmapped is unchanged, and one whose sign was undetermined
// is staged again at the same version, so its window decides it again.
func TestSimRecheckOfApplications(t *testing.T) {
	v := volume
	v.NoERPPercent = 40
	now := genTo.Add(time.Hour)
	e := newEnv(t, zuorasim.Generate(7, v, genFrom, genTo), zuorasim.Options{Now: func() time.Time { return now }}, nil)
	st := memStage(t)
	w := hour(22)
	m := run(t, e, st, w, extract.Options{})
	erp := map[string]string{}
	for _, a := range readParts[stage.AccountRow](t, st, m, stage.AccountsTable) {
		if a.ERPAccountID != nil {
			erp[a.ID] = *a.ERPAccountID
		}
	}
	var fixed, unmapped, unsigned stage.PaymentApplicationRow
	for _, r := range readParts[stage.PaymentApplicationRow](t, st, m, "payment_applications") {
		switch {
		case erp[*r.AccountID] == "" && fixed.ID == "":
			fixed = r
		case erp[*r.AccountID] == "" && unmapped.ID == "" && *r.AccountID != *fixed.AccountID:
			unmapped = r
		case erp[*r.AccountID] != "" && unsigned.ID == "":
			unsigned = r
		}
	}
	if fixed.ID == "" || unmapped.ID == "" || unsigned.ID == "" {
		t.Fatal("the window lacks payment applications of two unmapped accounts and of a mapped one")
	}
	if err := e.sim.SetFields(*fixed.AccountID, map[string]string{"ERPAccountId__c": "ERP-FIXED"}); err != nil {
		t.Fatal(err)
	}
	want := func(r stage.PaymentApplicationRow, reason string) extract.Wanted {
		return extract.Wanted{DocType: stage.PaymentApplication, ID: r.ID, Window: w, Updated: r.UpdatedDate,
			Account: stage.Account{ID: *r.AccountID, Number: numberOf(t, e, *r.AccountID), ERPID: erp[*r.AccountID]}, Reason: reason}
	}
	res, err := extract.Recheck(context.Background(), e.client, st, []extract.Wanted{
		want(fixed, stage.ReasonNoERPAccount), want(unmapped, stage.ReasonNoERPAccount), want(unsigned, stage.ReasonSignUndetermined)},
		extract.RecheckOptions{RunID: "run-recheck"})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]string{}
	for _, f := range res.Findings {
		outcomes[f.ID] = f.Outcome
	}
	for id, o := range map[string]string{fixed.ID: extract.Staged, unmapped.ID: extract.Unchanged, unsigned.ID: extract.Staged} {
		if outcomes[id] != o {
			t.Errorf("%s: %s; want %s", id, outcomes[id], o)
		}
	}
	if err := res.Commit(context.Background(), st, w); err != nil {
		t.Fatal(err)
	}
	after, _, err := st.ReadExtract(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	pf, af := after.Tables["payment_applications"].Files, after.Tables[stage.AccountsTable].Files
	if len(pf) != 2 || len(af) != 2 {
		t.Fatalf("payment application files %v, account files %v; want a re-check part added to each", pf, af)
	}
	rows := readParquet[stage.PaymentApplicationRow](t, st, pf[1].Key)
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ID)
		if r.RecheckedAt == nil {
			t.Errorf("re-checked application %s has no rechecked_at", r.ID)
		}
	}
	slices.Sort(ids)
	wantIDs := []string{fixed.ID, unsigned.ID}
	slices.Sort(wantIDs)
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("re-checked applications %v, want %v", ids, wantIDs)
	}
	accts := readParquet[stage.AccountRow](t, st, af[1].Key)
	found := false
	for _, a := range accts {
		if a.ID == *fixed.AccountID {
			found = a.ERPAccountID != nil && *a.ERPAccountID == "ERP-FIXED" && a.RecheckedAt != nil
		}
	}
	if !found {
		t.Errorf("the fixed account is not among the re-checked accounts %+v", accts)
	}
}

func numberOf(t *testing.T, e *env, account string) string {
	t.Helper()
	for _, a := range e.sim.Snapshot(stage.AccountsObject) {
		if a["id"] == account {
			return a["accountNumber"].(string)
		}
	}
	t.Fatalf("no account %s", account)
	return ""
}
