package pipeline_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// An application waits while a document it joins is staged by a window not
// loaded yet. When that window skips the document (another integration
// transferred it, or it is marked Ignore), we never post it, so waiting for
// the ERP to confirm it would be forever: the skip settles the wait, and the
// application is posted for the ERP to resolve by Zuora id (created) or
// refuse (422, recorded as an outstanding ERP_REJECTED), as for a document
// older than the stage; in the same run, as when the document is confirmed.
// Likewise an application held back because its payment was rejected is
// posted once a later version of the payment is skipped (the reject
// resolved, the ERP holds the payment from another integration).
func TestApplicationWaitingOnADocumentLaterSkippedIsPosted(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: 1, volume: arVolume(0)})
	sqlDir := arMapping(t)
	ctx := context.Background()
	w.clock.Set(tenantTo.Add(10 * time.Minute))
	if rep, err := w.arRun(ctx, tenantTo, sqlDir, ""); err != nil {
		t.Fatalf("the generated windows: %v\n%s", err, printed(rep))
	}
	h4, h5, h6, end := tenantTo, tenantTo.Add(time.Hour), tenantTo.Add(2*time.Hour), tenantTo.Add(3*time.Hour)

	// Hour 4: a draft invoice (skipped NOT_POSTED by the generated windows) is
	// posted and paid by a new payment. Early in hour 5, another integration
	// transfers the invoice (the ERP holds it from there): window 5 skips it
	// ALREADY_TRANSFERRED, the skip of a window later than the first one.
	w.clock.Set(h4.Add(15 * time.Minute))
	draft := w.usdInvoice(t, "Draft")
	if err := w.zuora.PostInvoice(draft.id); err != nil {
		t.Fatal(err)
	}
	_, paid, err := w.zuora.CreatePayment(draft.account, "2.00", zuorasim.Target{ID: draft.id, Amount: "2.00"})
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Set(h5.Add(5 * time.Minute))
	if err := w.zuora.SetTransferred(draft.id, "Yes"); err != nil {
		t.Fatal(err)
	}
	if err := w.erp.Preload(erpsim.KnownDocument{ZuoraID: draft.id, Type: "invoice", Number: draft.number, Customer: draft.customer, Currency: "USD", Amount: draft.amount}); err != nil {
		t.Fatal(err)
	}
	// Hour 5: an open invoice is paid by a payment that early in hour 6 is
	// marked Ignore, and by one of a type the mapping does not know (rejected
	// UNMAPPED_CODE) that another integration transfers after the first run.
	w.clock.Set(h5.Add(20 * time.Minute))
	open := w.usdInvoice(t, "Posted", draft.id)
	ignored, refused, err := w.zuora.CreatePayment(open.account, "1.00", zuorasim.Target{ID: open.id, Amount: "1.00"})
	if err != nil {
		t.Fatal(err)
	}
	unmapped, held, err := w.zuora.CreatePayment(open.account, "1.00", zuorasim.Target{ID: open.id, Amount: "1.00"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.zuora.SetFields(unmapped, map[string]string{"type": "Check"}); err != nil {
		t.Fatal(err)
	}
	w.clock.Set(h6.Add(5 * time.Minute))
	if err := w.zuora.SetTransferred(ignored, "Ignore"); err != nil {
		t.Fatal(err)
	}

	w.clock.Set(h6.Add(10 * time.Minute))
	rep, err := w.arRun(ctx, h6, sqlDir, "")
	if err != nil {
		t.Fatalf("the run of hours 4 and 5: %v\n%s", err, printed(rep))
	}
	app, refusedApp, heldApp := paid.IDs[0], refused.IDs[0], held.IDs[0]
	v := w.readStage(ctx, w.open(w.config(h6)).Stage())
	w4 := stage.Window{Start: h4, End: h5}.ID()
	if !slices.ContainsFunc(v.skipped[draft.id], func(r outcomeRow) bool { return r.reason == stage.ReasonNotPosted && r.window < w4 }) {
		t.Errorf("the draft invoice %s was not skipped NOT_POSTED by a generated window (skipped %v): the test does not show what it claims", draft.id, v.skipped[draft.id])
	}
	if !slices.ContainsFunc(w.erp.Applications(), func(a erpsim.Application) bool { return a.ZuoraID == app && a.Live }) {
		t.Errorf("after the first run, application %s of the invoice another integration transferred is not live in the ERP (ledger %v)", app, v.ledger[app])
	}

	w.clock.Set(h6.Add(15 * time.Minute))
	if err := w.zuora.SetTransferred(unmapped, "Yes"); err != nil {
		t.Fatal(err)
	}
	if err := w.erp.Preload(erpsim.KnownDocument{ZuoraID: unmapped, Type: "payment", Number: w.paymentNumber(t, unmapped), Customer: open.customer, Currency: "USD", Amount: decimal.RequireFromString("1")}); err != nil {
		t.Fatal(err)
	}
	w.clock.Set(end.Add(10 * time.Minute))
	if rep, err = w.arRun(ctx, end, sqlDir, ""); err != nil {
		t.Fatalf("the run of hour 6: %v\n%s", err, printed(rep))
	}
	p := w.open(w.config(end))
	v = w.readStage(ctx, p.Stage())
	for id, want := range map[string]string{draft.id: stage.ReasonAlreadyTransferred, ignored: stage.ReasonIgnoredInZuora, unmapped: stage.ReasonAlreadyTransferred} {
		if !slices.ContainsFunc(v.skipped[id], func(r outcomeRow) bool { return r.reason == want }) {
			t.Errorf("document %s was not skipped %s: skipped %v, ready in %v", id, want, v.skipped[id], v.ready[id])
		}
	}
	for _, id := range []string{app, refusedApp} {
		if !slices.ContainsFunc(v.ledger[id], func(r ledgerRow) bool { return r.outcome == stage.OutcomeWaiting }) {
			t.Errorf("application %s never waited (ledger %v): the test does not show what it claims", id, v.ledger[id])
		}
	}
	if !slices.ContainsFunc(v.ledger[heldApp], func(r ledgerRow) bool { return r.outcome == stage.OutcomeDependencyRejected }) {
		t.Errorf("application %s was never held back for its rejected payment (ledger %v): the test does not show what it claims", heldApp, v.ledger[heldApp])
	}
	if !slices.ContainsFunc(w.erp.Applications(), func(a erpsim.Application) bool { return a.ZuoraID == heldApp && a.Live }) {
		t.Errorf("application %s of the rejected payment another integration transferred is not live in the ERP (ledger %v)", heldApp, v.ledger[heldApp])
	}
	rejects, err := p.Rejects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rejects) != 1 || rejects[0].ZuoraID != refusedApp || rejects[0].ReasonCode != stage.ReasonERPRejected {
		t.Errorf("outstanding rejects %v; want only application %s of the ignored payment, ERP_REJECTED (ledger %v)", rejects, refusedApp, v.ledger[refusedApp])
	}
	st, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, wr := range st.Windows {
		if !wr.Complete {
			t.Errorf("window %s is not complete: %s", wr.Window.ID(), wr.Outcome())
		}
	}
}

// testInvoice is an invoice of the tenant that a test acts on.
type testInvoice struct {
	id, account, customer, number string
	amount                        decimal.Decimal
}

// usdInvoice returns a USD invoice of the given status, of at least 2.00 (and
// for a posted one, with at least that much open), of an account with an ERP
// customer, other than the ids in not.
func (w *world) usdInvoice(t *testing.T, status string, not ...string) testInvoice {
	t.Helper()
	customers := map[string]string{}
	for _, a := range w.zuora.Snapshot("accounts") {
		customers[str(a["id"])] = str(a["ERPAccountId__c"])
	}
	two := decimal.RequireFromString("2")
	for _, r := range w.zuora.Snapshot("invoices") {
		inv := testInvoice{id: str(r["id"]), account: str(r["accountId"]), number: str(r["invoiceNumber"]), amount: dec(t, r["amount"])}
		inv.customer = customers[inv.account]
		switch {
		case str(r["status"]) != status || str(r["currency"]) != "USD" || inv.customer == "" || slices.Contains(not, inv.id):
		case inv.amount.LessThan(two) || status == "Posted" && dec(t, r["balance"]).LessThan(two):
		default:
			return inv
		}
	}
	t.Fatalf("the tenant has no %s USD invoice of at least 2.00 with an ERP customer", status)
	return testInvoice{}
}

// paymentNumber returns the number of the tenant's payment id.
func (w *world) paymentNumber(t *testing.T, id string) string {
	t.Helper()
	for _, r := range w.zuora.Snapshot("payments") {
		if str(r["id"]) == id {
			return str(r["paymentNumber"])
		}
	}
	t.Fatalf("no payment %s", id)
	return ""
}
