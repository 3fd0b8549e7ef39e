package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func wantLine(t *testing.T, out outputs, docType, id, event, key string) stage.Envelope {
	t.Helper()
	e, ok := out.lines[lineKey(docType, id)]
	if !ok {
		t.Fatalf("no %s line for %s; lines %v, skipped %v, rejects %v", docType, id, out.order, out.skipped, out.rejects)
	}
	if e.Event != event || e.IdempotencyKey != key {
		t.Errorf("%s %s: event %q key %q; want %q %q", docType, id, e.Event, e.IdempotencyKey, event, key)
	}
	return e
}

func wantOutcome(t *testing.T, got map[string]outcome, docType, id, code, inMessage string) outcome {
	t.Helper()
	o, ok := got[lineKey(docType, id)]
	if !ok || o.ReasonCode != code || !strings.Contains(o.Message, inMessage) {
		t.Errorf("%s %s: %+v (present %t); want %s with %q", docType, id, o, ok, code, inMessage)
	}
	return o
}

func payloadOf(t *testing.T, e stage.Envelope, top string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(e.Payload))
	dec.UseNumber()
	var m map[string]map[string]any
	if err := dec.Decode(&m); err != nil || m[top] == nil {
		t.Fatalf("%s payload %s: %v", e.ZuoraID, e.Payload, err)
	}
	return m[top]
}

func balanced(t *testing.T, out outputs, docTypes ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range out.manifest.Totals {
		seen[r.DocType] = true
		if !r.Balanced() {
			t.Errorf("totals of %s %s do not balance: %+v", r.DocType, r.Currency, r)
		}
	}
	for _, d := range docTypes {
		if !seen[d] {
			t.Errorf("the totals have no %s row: %+v", d, out.manifest.Totals)
		}
	}
}

// TestDocumentsArePostedReversedAndPostedAgain: a document's life across
// windows, each decision of "Transform outputs" for documents, against the
// ERP state the ledger of the other windows gives.
func TestDocumentsArePostedReversedAndPostedAgain(t *testing.T) {
	st := arStage(t)
	w20, w21, w22 := hourWindow(20), hourWindow(21), hourWindow(22)

	s := snapshot{}
	i1, i1item := invoice(t, "i1", "Posted", "100", "0", at(20, 10, 0))
	i2, i2item := invoice(t, "i2", "Posted", "50", "0", at(20, 11, 0))
	d1, d1item := invoice(t, "d1", "Draft", "7", "0", at(20, 12, 0))
	ig, igitem := invoice(t, "ig", "Posted", "8", "0", at(20, 13, 0))
	ig.TransferredToAccounting = ptr("Ignore")
	yes, yesitem := invoice(t, "yes", "Posted", "9", "0", at(20, 14, 0))
	yes.TransferredToAccounting = ptr("Yes")
	put(s, "invoices", i1, i2, d1, ig, yes)
	put(s, "invoice_items", i1item, i2item, d1item, igitem, yesitem)
	put(s, "payments", payment(t, "p1", "Processed", "100", "0", at(20, 20, 0)))
	c1, c1item := creditMemo(t, "c1", "Posted", "10", "0", at(20, 30, 0))
	put(s, "credit_memos", c1)
	put(s, "credit_memo_items", c1item)
	commitWindow(t, st, w20, s)
	out := transformWindow(t, st, w20, Options{})
	for _, l := range []struct{ dt, id string }{{"invoice", "i1"}, {"invoice", "i2"}, {"payment", "p1"}, {"credit_memo", "c1"}} {
		if e := wantLine(t, out, l.dt, l.id, stage.EventPost, l.id); len(e.DependsOn) != 0 || e.Reverses != nil {
			t.Errorf("a first post depends on %v, reverses %v", e.DependsOn, e.Reverses)
		}
	}
	if p := payloadOf(t, out.lines["payment p1"], "payment"); p["amount"] != json.Number("100") {
		t.Errorf("a payment is posted for its full amount: %v", p)
	}
	wantOutcome(t, out.skipped, "invoice", "d1", stage.ReasonNotPosted, "status Draft: never posted")
	wantOutcome(t, out.skipped, "invoice", "ig", stage.ReasonIgnoredInZuora, "Ignore")
	wantOutcome(t, out.skipped, "invoice", "yes", stage.ReasonAlreadyTransferred, "transferred_to_accounting = Yes")
	balanced(t, out, "invoice", "payment", "credit_memo")
	confirm(t, st, w20, out, at(21, 0, 30))

	// 21: the memo unposted, the payment cancelled, the invoice's echo of its mark.
	s = snapshot{}
	c1d, c1ditem := creditMemo(t, "c1", "Draft", "10", "0", at(21, 10, 0))
	put(s, "credit_memos", c1d)
	put(s, "credit_memo_items", c1ditem)
	put(s, "payments", payment(t, "p1", "Canceled", "100", "0", at(21, 20, 0)))
	i1echo, i1echoItem := invoice(t, "i1", "Posted", "100", "0", at(21, 5, 0))
	i1echo.TransferredToAccounting = ptr("Yes")
	put(s, "invoices", i1echo)
	put(s, "invoice_items", i1echoItem)
	commitWindow(t, st, w21, s)
	out = transformWindow(t, st, w21, Options{})
	rev := wantLine(t, out, "reversal", "c1", stage.EventReversal, "c1:reversal:20261125T211000Z")
	if rev.Reverses == nil || *rev.Reverses != (stage.Reversed{DocType: "credit_memo", IdempotencyKey: "c1"}) || rev.Endpoint != "/api/reversals" || rev.Amount != "10" {
		t.Errorf("the memo's reversal: %+v", rev)
	}
	if p := payloadOf(t, rev, "reversal"); p["doc_type"] != "credit_memo" || p["number"] != "CM-c1" || p["customer"] != "ERP-1" ||
		p["currency"] != "USD" || p["amount"] != json.Number("10") || p["reason"] != "Draft" || p["date"] != "2026-11-25" || p["zuora_id"] != "c1" {
		t.Errorf("reversal payload %v", p)
	}
	if p := payloadOf(t, wantLine(t, out, "reversal", "p1", stage.EventReversal, "p1:reversal:20261125T212000Z"), "reversal"); p["reason"] != "Canceled" {
		t.Errorf("the payment's reversal: %v", p)
	}
	wantOutcome(t, out.skipped, "invoice", "i1", stage.ReasonAlreadyPosted, "window "+w20.ID())
	balanced(t, out, "reversal", "invoice")
	confirm(t, st, w21, out, at(22, 0, 30))

	// 22: the memo posted again (edited), the second invoice edited while posted.
	s = snapshot{}
	c1p, c1pitem := creditMemo(t, "c1", "Posted", "12", "0", at(22, 10, 0))
	c1pitem.UnitPrice, c1pitem.Amount, c1pitem.AmountWithoutTax = fixed(t, "12"), fixed(t, "12"), fixed(t, "12")
	put(s, "credit_memos", c1p)
	put(s, "credit_memo_items", c1pitem)
	i2e, i2eitem := invoice(t, "i2", "Posted", "55", "0", at(22, 20, 0))
	put(s, "invoices", i2e)
	put(s, "invoice_items", i2eitem)
	commitWindow(t, st, w22, s)
	out = transformWindow(t, st, w22, Options{})
	if e := wantLine(t, out, "credit_memo", "c1", stage.EventRepost, "c1:post:20261125T221000Z"); len(e.DependsOn) != 0 || e.Amount != "12" {
		t.Errorf("the memo's repost: %+v", e)
	}
	wantLine(t, out, "reversal", "i2", stage.EventReversal, "i2:reversal:20261125T222000Z")
	wantLine(t, out, "invoice", "i2", stage.EventRepost, "i2:post:20261125T222000Z")
	if p := payloadOf(t, out.lines["reversal i2"], "reversal"); p["amount"] != json.Number("50") || !strings.Contains(p["reason"].(string), "posted again") {
		t.Errorf("the reversal of the edited invoice's old copy: %v", p)
	}
	if slices.Index(out.order, "reversal i2") > slices.Index(out.order, "invoice i2") {
		t.Errorf("the reversal of the old copy comes after the repost: %v", out.order)
	}
	balanced(t, out, "reversal", "invoice", "credit_memo")

	// A re-run gives the same bytes; the older window's version is superseded.
	again := transformWindow(t, st, w22, Options{})
	if !bytes.Equal(again.ndjson, out.ndjson) {
		t.Error("transforming the window again changed its documents")
	}
	old := transformWindow(t, st, w21, Options{})
	wantOutcome(t, old.skipped, "credit_memo", "c1", stage.ReasonSuperseded, "window "+w22.ID())
	if len(old.lines) != 1 || old.lines["reversal p1"].IdempotencyKey != "p1:reversal:20261125T212000Z" {
		t.Errorf("window 21 again: lines %v; want only the payment's reversal, under its key", old.order)
	}
}

// TestApplicationsArePostedWithTheirFacts: an application's customer is its
// account's, its currency its source's (staged in another window), its
// target from whichever id is set; the transform's rejects; a cancelled
// payment reverses its live applications before itself.
func TestApplicationsArePostedWithTheirFacts(t *testing.T) {
	st := arStage(t)
	w20, w21, w22 := hourWindow(20), hourWindow(21), hourWindow(22)
	s := snapshot{}
	i1, i1item := invoice(t, "i1", "Posted", "100", "60", at(20, 30, 0))
	put(s, "invoices", i1)
	put(s, "invoice_items", i1item)
	put(s, "payments", payment(t, "p1", "Processed", "100", "100", at(20, 30, 0)))
	commitWindow(t, st, w20, s)
	out := transformWindow(t, st, w20, Options{})
	confirm(t, st, w20, out, at(21, 0, 30))

	s = snapshot{}
	put(s, "payment_applications",
		paymentApp(t, "pa1", "p1", "i1", "60", "Processed", "g1", at(21, 10, 0), at(21, 10, 0)),
		paymentApp(t, "pa2", "p1", "", "40", "Processed", "g1", at(21, 10, 0), at(21, 10, 0)),
		paymentApp(t, "pa-cancelled", "p1", "i1", "1", "Cancelled", "g9", at(21, 11, 0), at(21, 11, 0)))
	noERP := paymentApp(t, "pa3", "p1", "i1", "1", "Processed", "g3", at(21, 12, 0), at(21, 12, 0))
	noERP.AccountID = ptr("acc2")
	orphan := paymentApp(t, "pa4", "p-old", "i-old", "1", "Processed", "g4", at(21, 13, 0), at(21, 13, 0))
	put(s, "payment_applications", noERP, orphan)
	put(s, "accounts", account("acc", ptr("ERP-1"), at(20, 0, 0)), account("acc2", nil, at(20, 0, 0)))
	commitWindow(t, st, w21, s)
	out = transformWindow(t, st, w21, Options{})
	pa1 := wantLine(t, out, "payment_application", "pa1", stage.EventApply, "pa1")
	if !slices.Equal(pa1.DependsOn, []string{"p1", "i1"}) || pa1.Endpoint != "/api/applications" || pa1.Customer != "ERP-1" || pa1.Currency != "USD" || pa1.Number != "" {
		t.Errorf("pa1: %+v", pa1)
	}
	p := payloadOf(t, pa1, "application")
	want := map[string]any{"zuora_id": "pa1", "kind": "payment", "source_zuora_id": "p1", "target_type": "invoice", "target_zuora_id": "i1",
		"customer": "ERP-1", "currency": "USD", "amount": json.Number("60"), "date": "2026-11-25"}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("pa1 payload %s = %v, want %v", k, p[k], v)
		}
	}
	if len(p) != len(want) {
		t.Errorf("pa1 payload has other fields: %v", p)
	}
	pa2 := wantLine(t, out, "payment_application", "pa2", stage.EventApply, "pa2")
	if p := payloadOf(t, pa2, "application"); p["target_type"] != nil || p["target_zuora_id"] != nil || !slices.Equal(pa2.DependsOn, []string{"p1"}) {
		t.Errorf("an application to the credit balance: %v, depends on %v", p, pa2.DependsOn)
	}
	wantOutcome(t, out.skipped, "payment_application", "pa-cancelled", stage.ReasonNotPosted, "status Cancelled")
	wantOutcome(t, out.rejects, "payment_application", "pa3", stage.ReasonNoERPAccount, "A-acc2")
	wantOutcome(t, out.rejects, "payment_application", "pa4", stage.ReasonMissingField, "no currency")
	balanced(t, out, "payment_application")
	confirm(t, st, w21, out, at(22, 0, 30))

	// 22: the payment cancelled; its applications turn Cancelled.
	s = snapshot{}
	put(s, "payments", payment(t, "p1", "Canceled", "100", "0", at(22, 10, 0)))
	put(s, "payment_applications",
		paymentApp(t, "pa1", "p1", "i1", "60", "Cancelled", "g1", at(21, 10, 0), at(22, 10, 0)),
		paymentApp(t, "pa2", "p1", "", "40", "Cancelled", "g1", at(21, 10, 0), at(22, 10, 0)))
	put(s, "accounts", account("acc", ptr("ERP-1"), at(20, 0, 0)))
	commitWindow(t, st, w22, s)
	out = transformWindow(t, st, w22, Options{})
	r1 := wantLine(t, out, "reversal", "pa1", stage.EventReversal, "pa1:reversal:20261125T221000Z")
	if r1.Reverses == nil || r1.Reverses.DocType != "payment_application" || r1.Number != "" || r1.Amount != "60" {
		t.Errorf("the reversal of pa1: %+v", r1)
	}
	if p := payloadOf(t, r1, "reversal"); p["doc_type"] != "payment_application" || p["reason"] != "Cancelled" || p["number"] != nil {
		t.Errorf("the reversal payload of pa1: %v", p)
	}
	rp := wantLine(t, out, "reversal", "p1", stage.EventReversal, "p1:reversal:20261125T221000Z")
	if !slices.Equal(rp.DependsOn, []string{"pa1", "pa2"}) {
		t.Errorf("the payment's reversal depends on %v; want the applications this window reverses first", rp.DependsOn)
	}
	if i, j := slices.Index(out.order, "reversal pa1"), slices.Index(out.order, "reversal p1"); i > j {
		t.Errorf("reversals of applications come before those of documents: %v", out.order)
	}
	balanced(t, out, "reversal")
}

// TestPositiveUnappliesAreSignedPerGroup: with unapply amounts positive,
// each group's direction comes from the documents it joins; one the staged
// versions cannot settle is rejected SIGN_UNDETERMINED, and is settled when
// the window is transformed again with the next window's versions staged
// (what the re-check's staging again brings about).
func TestPositiveUnappliesAreSignedPerGroup(t *testing.T) {
	for _, convention := range []string{UnapplyNegative, UnapplyPositive} {
		t.Run(convention, func(t *testing.T) {
			st := arStage(t)
			w20, w21, w22 := hourWindow(20), hourWindow(21), hourWindow(22)
			unapply, second := "20", "5"
			if convention == UnapplyNegative {
				unapply = "-20"
			}
			opts := Options{UnapplyAmounts: convention}
			s := snapshot{}
			i1, i1item := invoice(t, "i1", "Posted", "100", "60", at(20, 40, 0))
			put(s, "invoices", i1)
			put(s, "invoice_items", i1item)
			put(s, "payments", payment(t, "p1", "Processed", "100", "100", at(20, 40, 0)))
			put(s, "payment_applications",
				paymentApp(t, "pa1", "p1", "i1", "60", "Processed", "g1", at(20, 40, 0), at(20, 40, 0)),
				paymentApp(t, "pa2", "p1", "", "40", "Processed", "g1", at(20, 40, 0), at(20, 40, 0)))
			put(s, "accounts", account("acc", ptr("ERP-1"), at(20, 0, 0)))
			commitWindow(t, st, w20, s)
			out := transformWindow(t, st, w20, opts)
			if e := wantLine(t, out, "payment_application", "pa1", stage.EventApply, "pa1"); e.Amount != "60" {
				t.Errorf("a first apply: %s", e.Amount)
			}
			confirm(t, st, w20, out, at(21, 0, 30))

			// 21: 20 unapplied from the invoice (the parents show it), then 5
			// applied after the parents' last staged versions.
			s = snapshot{}
			i1b, i1bitem := invoice(t, "i1", "Posted", "100", "40", at(21, 40, 0))
			put(s, "invoices", i1b)
			put(s, "invoice_items", i1bitem)
			put(s, "payments", payment(t, "p1", "Processed", "100", "80", at(21, 40, 0)))
			put(s, "payment_applications",
				paymentApp(t, "pa5", "p1", "i1", unapply, "Processed", "g5", at(21, 30, 0), at(21, 30, 0)),
				paymentApp(t, "pa6", "p1", "i1", second, "Processed", "g6", at(21, 50, 0), at(21, 50, 0)))
			put(s, "accounts", account("acc", ptr("ERP-1"), at(20, 0, 0)))
			commitWindow(t, st, w21, s)
			out = transformWindow(t, st, w21, opts)
			if e := wantLine(t, out, "payment_application", "pa5", stage.EventApply, "pa5"); e.Amount != "-20" ||
				payloadOf(t, e, "application")["amount"] != json.Number("-20") {
				t.Errorf("the unapply is posted as %s, payload %s; want -20", e.Amount, e.Payload)
			}
			if convention == UnapplyNegative {
				wantLine(t, out, "payment_application", "pa6", stage.EventApply, "pa6")
				return
			}
			o := wantOutcome(t, out.rejects, "payment_application", "pa6", stage.ReasonSignUndetermined, "group g6")
			if o.Amount != "5" {
				t.Errorf("an undetermined application is counted as sent: %s", o.Amount)
			}
			balanced(t, out, "payment_application")

			// 22 stages the payment and invoice as pa6 left them: window 21 settles it.
			s = snapshot{}
			i1c, i1citem := invoice(t, "i1", "Posted", "100", "45", at(22, 5, 0))
			put(s, "invoices", i1c)
			put(s, "invoice_items", i1citem)
			put(s, "payments", payment(t, "p1", "Processed", "100", "85", at(22, 5, 0)))
			commitWindow(t, st, w22, s)
			out = transformWindow(t, st, w21, opts)
			if e := wantLine(t, out, "payment_application", "pa6", stage.EventApply, "pa6"); e.Amount != "5" {
				t.Errorf("pa6 settled as %s, want 5", e.Amount)
			}
			wantLine(t, out, "payment_application", "pa5", stage.EventApply, "pa5")
		})
	}
}

func TestUnapplyAmountsIsChecked(t *testing.T) {
	st := arStage(t)
	commitWindow(t, st, hourWindow(20), snapshot{})
	_, err := Run(t.Context(), st, hourWindow(20), Options{UnapplyAmounts: "signed"})
	var ue *UnapplyError
	if !errors.As(err, &ue) || ue.Value != "signed" {
		t.Fatalf("an unknown convention: %v; want an UnapplyError", err)
	}
	for _, v := range []string{"", UnapplyNegative, UnapplyPositive} {
		if _, err := ParseUnapplyAmounts(v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
}
