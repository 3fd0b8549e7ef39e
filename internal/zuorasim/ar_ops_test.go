package zuorasim

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// arHarness is a simulator over HTTP whose every runtime operation is checked:
// the AR invariants hold after it, and exactly the records it changed carry
// the clock's time as updatedDate.
type arHarness struct {
	*harness
}

func newARHarness(t *testing.T, opts Options) *arHarness {
	t.Helper()
	h := &arHarness{newHarness(t, opts)}
	h.mustAR()
	return h
}

func (h *arHarness) mustAR() {
	h.t.Helper()
	if v := h.sim.CheckAR(); len(v) > 0 {
		h.t.Fatalf("%d AR violations, first: %s", len(v), v[0])
	}
}

// everything returns every record of the tenant by id, as Snapshot renders it.
func (h *arHarness) everything() map[string]map[string]any {
	all := map[string]map[string]any{}
	for _, o := range Objects {
		for _, r := range h.sim.Snapshot(o) {
			all[r["id"].(string)] = r
		}
	}
	return all
}

// op runs one operation a minute after the last and checks it: no violation,
// and updatedDate is the operation's time on exactly the records that changed
// (new ones included), with the rest untouched. It returns the changed ids.
func (h *arHarness) op(name string, fn func() error) map[string]bool {
	h.t.Helper()
	before := h.everything()
	h.clock.Advance(time.Minute)
	now := h.clock.Now().In(h.sim.Location()).Format(dtLayout)
	if err := fn(); err != nil {
		h.t.Fatalf("%s: %v", name, err)
	}
	h.mustAR()
	changed := map[string]bool{}
	for id, r := range h.everything() {
		old, existed := before[id]
		content := func(m map[string]any) map[string]any {
			c := maps.Clone(m)
			delete(c, "updatedDate")
			delete(c, "updatedById")
			return c
		}
		switch {
		case !existed || !reflect.DeepEqual(content(old), content(r)):
			changed[id] = true
			if r["updatedDate"] != now {
				h.t.Fatalf("%s: %s changed but its updatedDate is %v, not %s", name, id, r["updatedDate"], now)
			}
		case old["updatedDate"] != r["updatedDate"]:
			h.t.Fatalf("%s: %s did not change but its updatedDate moved to %v", name, id, r["updatedDate"])
		}
	}
	return changed
}

// refused runs an operation that must fail with an *OpError and change nothing.
func (h *arHarness) refused(name string, fn func() error) {
	h.t.Helper()
	before := h.everything()
	h.clock.Advance(time.Minute)
	err := fn()
	var oe *OpError
	if !errors.As(err, &oe) || oe.Reason == "" {
		h.t.Fatalf("%s: got %v, want an *OpError", name, err)
	}
	if after := h.everything(); !reflect.DeepEqual(before, after) {
		h.t.Fatalf("%s was refused (%v) but changed the tenant", name, err)
	}
}

func (h *arHarness) rec(object, id string) map[string]any {
	h.t.Helper()
	for _, r := range h.sim.Snapshot(object) {
		if r["id"] == id {
			return r
		}
	}
	h.t.Fatalf("no %s %s", object, id)
	return nil
}

func (h *arHarness) amount(object, id, field string) decimal.Decimal {
	h.t.Helper()
	v, ok := h.rec(object, id)[field].(json.Number)
	if !ok {
		h.t.Fatalf("%s %s has no number %s", object, id, field)
	}
	return decimal.RequireFromString(string(v))
}

func (h *arHarness) wantAmount(object, id, field, want string) {
	h.t.Helper()
	if got := h.amount(object, id, field); !got.Equal(decimal.RequireFromString(want)) {
		h.t.Fatalf("%s %s %s = %s, want %s", object, id, field, got, want)
	}
}

// account returns an account with an ERP id and one of its posted invoices.
func (h *arHarness) account() (acct, invoice string) {
	h.t.Helper()
	for _, a := range h.sim.Snapshot(objAccounts) {
		if a["ERPAccountId__c"] == nil || a["currency"] != "USD" {
			continue
		}
		for _, i := range h.sim.Snapshot(objInvoices) {
			if i["accountId"] == a["id"] && i["status"] == stPosted && h.amount(objInvoices, i["id"].(string), "amount").IsPositive() {
				return a["id"].(string), i["id"].(string)
			}
		}
	}
	h.t.Fatal("no USD account with an ERP id and a posted invoice")
	return "", ""
}

// freshInvoice clones an invoice of the account into a new, wholly open one.
func (h *arHarness) freshInvoice(of string) string {
	h.t.Helper()
	var id string
	h.op("clone invoice", func() (err error) { id, err = h.sim.CloneDocument(of); return err })
	h.wantAmount(objInvoices, id, "balance", h.amount(objInvoices, id, "amount").String())
	return id
}

func (h *arHarness) appRows(object, field, id string) []map[string]any {
	var out []map[string]any
	for _, r := range h.sim.Snapshot(object) {
		if r[field] == id {
			out = append(out, r)
		}
	}
	return out
}

func TestApplyAndUnapplyPayment(t *testing.T) {
	h := newARHarness(t, Options{})
	acct, seed := h.account()
	i1, i2 := h.freshInvoice(seed), h.freshInvoice(seed)
	a1, a2 := h.amount(objInvoices, i1, "amount"), h.amount(objInvoices, i2, "amount")
	part := a2.Div(decimal.NewFromInt(4)).Round(2)
	total := a1.Add(part).Add(decimal.RequireFromString("10.00"))

	// One payment applied to two invoices in one group, 10.00 left unapplied.
	var p string
	var first Applied
	changed := h.op("create and apply payment", func() (err error) {
		p, first, err = h.sim.CreatePayment(acct, total.String(), Target{i1, a1.String()}, Target{i2, part.String()})
		return err
	})
	if len(first.IDs) != 2 || first.Group == "" {
		t.Fatalf("applied %+v, want two applications in a group", first)
	}
	for _, id := range []string{p, i1, i2, first.IDs[0], first.IDs[1], acct} {
		if !changed[id] {
			t.Errorf("%s did not change", id)
		}
	}
	h.wantAmount(objPayments, p, "appliedAmount", a1.Add(part).String())
	h.wantAmount(objPayments, p, "unappliedAmount", "10")
	h.wantAmount(objInvoices, i1, "balance", "0")
	h.wantAmount(objInvoices, i2, "balance", a2.Sub(part).String())
	h.wantAmount(objInvoices, i2, "paymentAmount", part.String())
	for _, r := range h.appRows(objPaymentApps, "paymentId", p) {
		if r["applicationGroupId"] != first.Group || r["paymentApplicationStatus"] != stProcessed || r["accountId"] != acct {
			t.Fatalf("application %v", r)
		}
	}

	// The rest is applied later, in a group of its own.
	var later Applied
	h.op("apply the rest", func() (err error) { later, err = h.sim.ApplyPayment(p, Target{i2, "10.00"}); return err })
	if later.Group == first.Group || len(later.IDs) != 1 {
		t.Fatalf("later %+v, first %+v", later, first)
	}
	h.wantAmount(objPayments, p, "unappliedAmount", "0")

	// Unapply: a new record per target, negative, in a new group.
	var un Applied
	h.op("unapply", func() (err error) { un, err = h.sim.UnapplyPayment(p, Target{i1, "5.00"}); return err })
	row := h.rec(objPaymentApps, un.IDs[0])
	if row["applyAmount"] != json.Number("-5") || row["invoiceId"] != i1 || row["paymentApplicationStatus"] != stProcessed {
		t.Fatalf("unapply row %v", row)
	}
	h.wantAmount(objInvoices, i1, "balance", "5")
	h.wantAmount(objPayments, p, "unappliedAmount", "5")

	// The account's credit balance: both targets null.
	credit := h.amount(objAccounts, acct, "creditBalance")
	h.op("apply to the credit balance", func() (err error) { _, err = h.sim.ApplyPayment(p, Target{"", "2"}); return err })
	h.wantAmount(objAccounts, acct, "creditBalance", credit.Add(decimal.NewFromInt(2)).String())
	var cb Applied
	h.op("unapply from the credit balance", func() (err error) { cb, err = h.sim.UnapplyPayment(p, Target{"", "2"}); return err })
	if r := h.rec(objPaymentApps, cb.IDs[0]); r["invoiceId"] != nil || r["debitMemoId"] != nil {
		t.Fatalf("credit balance row %v", r)
	}

	other := find(t, h.sim, objInvoices, func(r map[string]any) bool { return r["accountId"] != acct && posted(r) })["id"].(string)
	var draft map[string]any
	for _, r := range h.sim.Snapshot(objInvoices) {
		if r["accountId"] == acct && r["status"] == stDraft {
			draft = r
		}
	}
	h.refused("apply more than unapplied", func() error { _, err := h.sim.ApplyPayment(p, Target{i2, "5.01"}); return err })
	h.refused("apply more than the invoice owes", func() error { _, err := h.sim.ApplyPayment(p, Target{i1, "5.01"}); return err })
	h.refused("apply to another account", func() error { _, err := h.sim.ApplyPayment(p, Target{other, "1"}); return err })
	if draft != nil {
		h.refused("apply to a draft", func() error { _, err := h.sim.ApplyPayment(p, Target{draft["id"].(string), "1"}); return err })
	}
	h.refused("apply nothing", func() error { _, err := h.sim.ApplyPayment(p); return err })
	h.refused("apply zero", func() error { _, err := h.sim.ApplyPayment(p, Target{i1, "0"}); return err })
	h.refused("apply a negative", func() error { _, err := h.sim.ApplyPayment(p, Target{i1, "-1"}); return err })
	h.refused("apply a non-number", func() error { _, err := h.sim.ApplyPayment(p, Target{i1, "1,00"}); return err })
	h.refused("apply twice to one target in one call", func() error {
		_, err := h.sim.ApplyPayment(p, Target{i1, "1"}, Target{i1, "1"})
		return err
	})
	h.refused("unapply more than applied", func() error { _, err := h.sim.UnapplyPayment(p, Target{i1, "45000000"}); return err })
	h.refused("unapply what was never applied", func() error { _, err := h.sim.UnapplyPayment(p, Target{other, "1"}); return err })
	h.refused("apply an unknown payment", func() error { _, err := h.sim.ApplyPayment("nope", Target{i1, "1"}); return err })
	h.refused("apply a payment to a payment", func() error { _, err := h.sim.ApplyPayment(p, Target{p, "1"}); return err })
	h.refused("create a payment of nothing", func() error { _, _, err := h.sim.CreatePayment(acct, "0"); return err })
	h.refused("create a payment for no account", func() error { _, _, err := h.sim.CreatePayment("nope", "1"); return err })
}

func TestApplyAndUnapplyCreditMemo(t *testing.T) {
	h := newARHarness(t, Options{})
	m := find(t, h.sim, objCreditMemos, func(r map[string]any) bool {
		id, _ := r["invoiceId"].(string)
		return posted(r) && r["appliedAmount"] == json.Number("0") && r["refundAmount"] == json.Number("0") &&
			id != "" && posted(h.rec(objInvoices, id)) && h.amount(objInvoices, id, "amount").IsPositive()
	})
	memo, acct := m["id"].(string), m["accountId"].(string)
	// An open invoice of the memo's account: a clone of the one it was made from.
	target := h.freshInvoice(m["invoiceId"].(string))
	amount := decimal.Min(h.amount(objCreditMemos, memo, "totalAmount"), h.amount(objInvoices, target, "amount"))
	var ap Applied
	h.op("apply credit memo", func() (err error) { ap, err = h.sim.ApplyCreditMemo(memo, Target{target, amount.String()}); return err })
	h.wantAmount(objCreditMemos, memo, "appliedAmount", amount.String())
	h.wantAmount(objInvoices, target, "creditMemoAmount", amount.String())
	if r := h.rec(objCreditMemoApps, ap.IDs[0]); r["creditMemoId"] != memo || r["invoiceId"] != target {
		t.Fatalf("credit memo application %v", r)
	}
	var un Applied
	h.op("unapply credit memo", func() (err error) {
		un, err = h.sim.UnapplyCreditMemo(memo, Target{target, amount.String()})
		return err
	})
	if r := h.rec(objCreditMemoApps, un.IDs[0]); r["amount"] != json.Number(amount.Neg().String()) {
		t.Fatalf("unapply row %v", r)
	}
	h.wantAmount(objCreditMemos, memo, "balance", h.amount(objCreditMemos, memo, "totalAmount").String())
	h.wantAmount(objInvoices, target, "balance", h.amount(objInvoices, target, "amount").String())
	other := find(t, h.sim, objInvoices, func(r map[string]any) bool { return r["accountId"] != acct && posted(r) })["id"].(string)
	h.refused("apply a memo to another account's invoice", func() error {
		_, err := h.sim.ApplyCreditMemo(memo, Target{other, "1"})
		return err
	})
	h.refused("apply more than the memo holds", func() error {
		_, err := h.sim.ApplyCreditMemo(memo, Target{target, h.amount(objCreditMemos, memo, "balance").Add(decimal.New(1, -2)).String()})
		return err
	})
	draft := find(t, h.sim, objCreditMemos, func(r map[string]any) bool { return r["status"] == stDraft })["id"].(string)
	h.refused("apply a draft memo", func() error { _, err := h.sim.ApplyCreditMemo(draft, Target{target, "1"}); return err })
}

func TestRefunds(t *testing.T) {
	h := newARHarness(t, Options{})
	acct, seed := h.account()
	i := h.freshInvoice(seed)
	var p string
	h.op("create payment", func() (err error) {
		p, _, err = h.sim.CreatePayment(acct, "100.00", Target{i, "60"})
		return err
	})
	h.refused("refund more than unapplied", func() error { _, err := h.sim.RefundPayment(p, "40.01"); return err })
	var rf Refunded
	changed := h.op("refund payment", func() (err error) { rf, err = h.sim.RefundPayment(p, "25.50"); return err })
	if !changed[rf.RefundID] || !changed[rf.ApplicationID] || !changed[p] {
		t.Fatalf("refund %+v changed %v", rf, changed)
	}
	r := h.rec(objRefunds, rf.RefundID)
	if r["sourceType"] != "Payment" || r["status"] != stProcessed || r["accountId"] != acct || r["currency"] != "USD" {
		t.Fatalf("refund %v", r)
	}
	if a := h.rec(objRefundApps, rf.ApplicationID); a["paymentId"] != p || a["refundId"] != rf.RefundID || a["applyAmount"] != json.Number("25.5") {
		t.Fatalf("refund application %v", a)
	}
	h.wantAmount(objPayments, p, "refundAmount", "25.5")
	h.wantAmount(objPayments, p, "unappliedAmount", "14.5")

	h.op("cancel the refund", func() error { return h.sim.CancelRefund(rf.RefundID) })
	if h.rec(objRefunds, rf.RefundID)["status"] != stCanceled {
		t.Fatal("refund not canceled")
	}
	h.wantAmount(objPayments, p, "refundAmount", "0")
	h.wantAmount(objPayments, p, "unappliedAmount", "40")
	h.refused("cancel it again", func() error { return h.sim.CancelRefund(rf.RefundID) })
	cb := find(t, h.sim, objRefunds, func(r map[string]any) bool { return r["sourceType"] == "CreditBalance" && r["status"] == stProcessed })
	h.refused("cancel a refund of the credit balance", func() error { return h.sim.CancelRefund(cb["id"].(string)) })

	m := find(t, h.sim, objCreditMemos, func(r map[string]any) bool {
		return posted(r) && h.amount(objCreditMemos, r["id"].(string), "balance").GreaterThan(decimal.NewFromInt(1))
	})["id"].(string)
	var mr Refunded
	h.op("refund credit memo", func() (err error) { mr, err = h.sim.RefundCreditMemo(m, "1"); return err })
	if h.rec(objRefunds, mr.RefundID)["sourceType"] != "CreditMemo" || h.rec(objRefundApps, mr.ApplicationID)["creditMemoId"] != m {
		t.Fatal("credit memo refund not linked")
	}
	h.refused("refund a memo beyond its balance", func() error {
		_, err := h.sim.RefundCreditMemo(m, h.amount(objCreditMemos, m, "balance").Add(decimal.New(1, -2)).String())
		return err
	})
	h.refused("unpost a refunded memo", func() error { return h.sim.UnpostMemo(m) })
}

func TestCancelPayment(t *testing.T) {
	for _, reversals := range []bool{false, true} {
		t.Run(fmt.Sprintf("CancelAddsReversals=%v", reversals), func(t *testing.T) {
			h := newARHarness(t, Options{CancelAddsReversals: reversals})
			acct, seed := h.account()
			i1, i2 := h.freshInvoice(seed), h.freshInvoice(seed)
			var p string
			h.op("create payment", func() (err error) {
				p, _, err = h.sim.CreatePayment(acct, "30", Target{i1, "10"}, Target{i2, "20"})
				return err
			})
			var rf Refunded
			h.op("refund", func() (err error) { _, err = h.sim.UnapplyPayment(p, Target{i2, "5"}); return err })
			h.op("refund", func() (err error) { rf, err = h.sim.RefundPayment(p, "5"); return err })
			h.refused("cancel a refunded payment", func() error { return h.sim.CancelPayment(p) })
			h.op("cancel the refund", func() error { return h.sim.CancelRefund(rf.RefundID) })
			rows := len(h.appRows(objPaymentApps, "paymentId", p))
			changed := h.op("cancel payment", func() error { return h.sim.CancelPayment(p) })
			pr := h.rec(objPayments, p)
			if pr["status"] != stCanceled || pr["cancelledOn"] == nil {
				t.Fatalf("payment %v", pr)
			}
			h.wantAmount(objPayments, p, "appliedAmount", "0")
			h.wantAmount(objPayments, p, "unappliedAmount", "30")
			h.wantAmount(objInvoices, i1, "balance", h.amount(objInvoices, i1, "amount").String())
			h.wantAmount(objInvoices, i2, "balance", h.amount(objInvoices, i2, "amount").String())
			apps := h.appRows(objPaymentApps, "paymentId", p)
			for _, a := range apps {
				st := a["paymentApplicationStatus"]
				if !reversals && (st != stCancelled || !changed[a["id"].(string)]) {
					t.Fatalf("application %v not Cancelled", a)
				}
				if reversals && st != stProcessed {
					t.Fatalf("application %v turned %v", a, st)
				}
			}
			if reversals && len(apps) != rows+2 {
				t.Fatalf("%d rows after the cancel, want %d (a reversal per document it still paid)", len(apps), rows+2)
			}
			if !reversals && len(apps) != rows {
				t.Fatalf("%d rows after the cancel, want %d", len(apps), rows)
			}
			h.refused("cancel twice", func() error { return h.sim.CancelPayment(p) })
			h.refused("apply a canceled payment", func() error { _, err := h.sim.ApplyPayment(p, Target{i1, "1"}); return err })
		})
	}
}

func TestCancelRefundAddsReversals(t *testing.T) {
	h := newARHarness(t, Options{CancelAddsReversals: true})
	acct, _ := h.account()
	var p string
	h.op("create payment", func() (err error) { p, _, err = h.sim.CreatePayment(acct, "50"); return err })
	var rf Refunded
	h.op("refund", func() (err error) { rf, err = h.sim.RefundPayment(p, "20"); return err })
	h.op("cancel refund", func() error { return h.sim.CancelRefund(rf.RefundID) })
	rows := h.appRows(objRefundApps, "refundId", rf.RefundID)
	if len(rows) != 2 || rows[1]["applyAmount"] != json.Number("-20") || rows[1]["applicationGroupId"] == rows[0]["applicationGroupId"] {
		t.Fatalf("refund applications after the cancel %v", rows)
	}
	h.wantAmount(objPayments, p, "unappliedAmount", "50")
}

func TestUnpostAndPostMemos(t *testing.T) {
	h := newARHarness(t, Options{})
	m := find(t, h.sim, objCreditMemos, func(r map[string]any) bool {
		id, _ := r["invoiceId"].(string)
		return posted(r) && r["refundAmount"] == json.Number("0") && id != "" && posted(h.rec(objInvoices, id)) &&
			h.amount(objInvoices, id, "amount").IsPositive()
	})
	memo := m["id"].(string)
	i := h.freshInvoice(m["invoiceId"].(string))
	if h.amount(objCreditMemos, memo, "appliedAmount").IsZero() {
		h.op("apply", func() (err error) { _, err = h.sim.ApplyCreditMemo(memo, Target{i, "1"}); return err })
	}
	h.refused("unpost an applied memo", func() error { return h.sim.UnpostMemo(memo) })
	h.op("unapply all", func() error {
		var targets []Target
		net := map[string]decimal.Decimal{}
		for _, a := range h.appRows(objCreditMemoApps, "creditMemoId", memo) {
			k, _ := a["invoiceId"].(string)
			if k == "" {
				k, _ = a["debitMemoId"].(string)
			}
			net[k] = net[k].Add(decimal.RequireFromString(string(a["amount"].(json.Number))))
		}
		for k, v := range net {
			if !v.IsZero() {
				targets = append(targets, Target{k, v.String()})
			}
		}
		_, err := h.sim.UnapplyCreditMemo(memo, targets...)
		return err
	})
	h.op("unpost", func() error { return h.sim.UnpostMemo(memo) })
	if r := h.rec(objCreditMemos, memo); r["status"] != stDraft || r["postedOn"] != nil {
		t.Fatalf("unposted memo %v", r)
	}
	h.refused("unpost a draft", func() error { return h.sim.UnpostMemo(memo) })
	h.refused("apply a draft", func() error { _, err := h.sim.ApplyCreditMemo(memo, Target{i, "1"}); return err })
	h.op("post again", func() error { return h.sim.PostMemo(memo) })
	if r := h.rec(objCreditMemos, memo); r["status"] != stPosted || r["postedOn"] == nil {
		t.Fatalf("posted memo %v", r)
	}
	h.refused("post a posted memo", func() error { return h.sim.PostMemo(memo) })

	d := find(t, h.sim, objDebitMemos, func(r map[string]any) bool {
		return posted(r) && r["balance"] == r["totalAmount"]
	})["id"].(string)
	h.op("unpost debit memo", func() error { return h.sim.UnpostMemo(d) })
	h.op("post debit memo", func() error { return h.sim.PostMemo(d) })
	dr := h.rec(objDebitMemos, d)
	h.op("pay the debit memo", func() (err error) {
		_, _, err = h.sim.CreatePayment(dr["accountId"].(string), "1", Target{d, "1"})
		return err
	})
	h.refused("unpost a paid debit memo", func() error { return h.sim.UnpostMemo(d) })
	h.refused("unpost an invoice as a memo", func() error { return h.sim.UnpostMemo(i) })
}

func TestUnpostAndPostInvoice(t *testing.T) {
	for _, finance := range []bool{false, true} {
		t.Run(fmt.Sprintf("ZuoraFinance=%v", finance), func(t *testing.T) {
			h := newARHarness(t, Options{ZuoraFinance: finance})
			acct, seed := h.account()
			i := h.freshInvoice(seed)
			var p string
			h.op("pay", func() (err error) { p, _, err = h.sim.CreatePayment(acct, "1", Target{i, "1"}); return err })
			h.refused("unpost a paid invoice", func() error { return h.sim.UnpostInvoice(i) })
			h.op("unapply", func() (err error) { _, err = h.sim.UnapplyPayment(p, Target{i, "1"}); return err })
			h.op("mark transferred", func() error { return h.sim.SetTransferred(i, "Yes") })
			if finance {
				h.refused("unpost a transferred invoice under Zuora Finance", func() error { return h.sim.UnpostInvoice(i) })
				h.op("mark it No again", func() error { return h.sim.SetTransferred(i, "No") })
			}
			owed := h.amount(objAccounts, acct, "balance")
			h.op("unpost", func() error { return h.sim.UnpostInvoice(i) })
			if r := h.rec(objInvoices, i); r["status"] != stDraft || r["postedDate"] != nil {
				t.Fatalf("unposted invoice %v", r)
			}
			h.wantAmount(objAccounts, acct, "balance", owed.Sub(h.amount(objInvoices, i, "amount")).String())
			h.refused("apply to the draft", func() error { _, err := h.sim.ApplyPayment(p, Target{i, "1"}); return err })
			h.op("post again", func() error { return h.sim.PostInvoice(i) })
			h.wantAmount(objAccounts, acct, "balance", owed.String())
		})
	}
}

func TestReverseInvoice(t *testing.T) {
	for _, sourceType := range []string{"", "Standalone"} {
		t.Run("ReversalMemoSourceType="+sourceType, func(t *testing.T) {
			h := newARHarness(t, Options{ReversalMemoSourceType: sourceType})
			acct, seed := h.account()
			i := h.freshInvoice(seed)
			var rv Reversed
			changed := h.op("reverse", func() (err error) { rv, err = h.sim.ReverseInvoice(i); return err })
			r := h.rec(objInvoices, i)
			if r["status"] != stPosted || r["reversed"] != true || !changed[i] || !changed[rv.MemoID] {
				t.Fatalf("reversed invoice %v", r)
			}
			h.wantAmount(objInvoices, i, "balance", "0")
			m := h.rec(objCreditMemos, rv.MemoID)
			want := sourceType
			if want == "" {
				want = "Invoice"
			}
			if m["sourceType"] != want || m["reasonCode"] != "Invoice reversal" || m["invoiceId"] != i || m["status"] != stPosted ||
				m["accountId"] != acct || m["totalAmount"] != r["amount"] || m["balance"] != json.Number("0") {
				t.Fatalf("reversal memo %v", m)
			}
			items := h.appRows(objCreditMemoItems, "creditMemoId", rv.MemoID)
			if len(items) != len(h.appRows(objInvoiceItems, "invoiceId", i)) || len(items) == 0 {
				t.Fatalf("%d memo items for the invoice's items", len(items))
			}
			if a := h.rec(objCreditMemoApps, rv.Applied.IDs[0]); a["invoiceId"] != i || a["amount"] != r["amount"] {
				t.Fatalf("reversal application %v", a)
			}
			h.refused("reverse twice", func() error { _, err := h.sim.ReverseInvoice(i); return err })
			h.refused("unpost a reversed invoice", func() error { return h.sim.UnpostInvoice(i) })
			h.refused("unpost the reversal memo", func() error { return h.sim.UnpostMemo(rv.MemoID) })
			h.refused("unapply the reversal memo", func() error {
				_, err := h.sim.UnapplyCreditMemo(rv.MemoID, Target{i, "1"})
				return err
			})
			paid := h.freshInvoice(seed)
			h.op("pay", func() (err error) { _, _, err = h.sim.CreatePayment(acct, "1", Target{paid, "1"}); return err })
			h.refused("reverse a paid invoice", func() error { _, err := h.sim.ReverseInvoice(paid); return err })
			withMemo := find(t, h.sim, objCreditMemos, func(r map[string]any) bool {
				return r["invoiceId"] != nil && r["status"] != stCanceled && r["sourceType"] != "Standalone"
			})
			h.refused("reverse an invoice with a memo made from it", func() error {
				_, err := h.sim.ReverseInvoice(withMemo["invoiceId"].(string))
				return err
			})
			draft := find(t, h.sim, objInvoices, func(r map[string]any) bool { return r["status"] == stDraft })
			h.refused("reverse a draft", func() error { _, err := h.sim.ReverseInvoice(draft["id"].(string)); return err })
		})
	}
}

func TestSetTransferred(t *testing.T) {
	h := newARHarness(t, Options{})
	_, i := h.account()
	for _, v := range []string{"Processing", "Yes", "No", "Error", "Ignore"} {
		h.op("set "+v, func() error { return h.sim.SetTransferred(i, v) })
		if got := h.sim.Transferred(i); got != v {
			t.Fatalf("Transferred = %q after setting %q", got, v)
		}
	}
	h.op("set null", func() error { return h.sim.SetTransferred(i, "") })
	if h.rec(objInvoices, i)["transferredToAccounting"] != nil {
		t.Fatal("not null")
	}
	h.refused("set a value Zuora does not have", func() error { return h.sim.SetTransferred(i, "yes") })
	a := h.sim.Snapshot(objPaymentApps)[0]["id"].(string)
	h.refused("set it on an application", func() error { return h.sim.SetTransferred(a, "Yes") })
}

// TestUnapplyPositiveAmounts: with the switch, an unapply row reads as
// positive over HTTP and in Snapshot, and the balances still move down.
func TestUnapplyPositiveAmounts(t *testing.T) {
	h := newARHarness(t, Options{UnapplyPositiveAmounts: true})
	acct, seed := h.account()
	i := h.freshInvoice(seed)
	var p string
	var ap, un Applied
	h.op("pay", func() (err error) { p, ap, err = h.sim.CreatePayment(acct, "9", Target{i, "9"}); return err })
	h.op("unapply", func() (err error) { un, err = h.sim.UnapplyPayment(p, Target{i, "4"}); return err })
	if r := h.rec(objPaymentApps, un.IDs[0]); r["applyAmount"] != json.Number("4") {
		t.Fatalf("Snapshot unapply row %v", r)
	}
	page := h.list("/object-query/payment-applications", q("filter[]", "paymentid.EQ:"+p, "sort[]", "updateddate.ASC"))
	if len(page.Data) != 2 || page.Data[0]["id"] != ap.IDs[0] || page.Data[1]["applyAmount"] != json.Number("4") {
		t.Fatalf("served %v", page.Data)
	}
	h.wantAmount(objPayments, p, "appliedAmount", "5")
	h.wantAmount(objInvoices, i, "balance", h.amount(objInvoices, i, "amount").Sub(decimal.NewFromInt(5)).String())
	if page.Data[1]["applicationGroupId"] == page.Data[0]["applicationGroupId"] {
		t.Fatal("the unapply shares the apply's group")
	}
}

// TestCloneKeepsAROpen: a cloned document (and the InsertPerPage fault) is a
// new, wholly open document: the tenant stays consistent.
func TestCloneKeepsAROpen(t *testing.T) {
	h := newARHarness(t, Options{})
	for _, o := range []string{objInvoices, objPayments, objRefunds, objCreditMemos, objDebitMemos} {
		src := find(t, h.sim, o, func(r map[string]any) bool { return true })["id"].(string)
		h.op("clone "+o, func() error { _, err := h.sim.CloneDocument(src); return err })
	}
}

// TestAROperationsWhileServing runs operations while pages are being walked:
// nothing races (go test -race) and the tenant ends consistent.
func TestAROperationsWhileServing(t *testing.T) {
	h := newARHarness(t, Options{})
	acct, seed := h.account()
	var invoices []string
	for range 5 {
		invoices = append(invoices, h.freshInvoice(seed))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, o := range []string{objPaymentApps, objPayments, objInvoices} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, _ := h.get("/object-query/"+o, url.Values{"pageSize": {"99"}, "expand[]": {expandFor(o)}})
				if resp.StatusCode != 200 {
					t.Errorf("%s: %d", o, resp.StatusCode)
					return
				}
			}
		}()
	}
	for n := range 30 {
		i := invoices[n%len(invoices)]
		p, _, err := h.sim.CreatePayment(acct, "2", Target{i, "1"})
		if err == nil {
			_, err = h.sim.UnapplyPayment(p, Target{i, "1"})
		}
		if err == nil && n%3 == 0 {
			err = h.sim.CancelPayment(p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	h.mustAR()
}

func expandFor(o string) string {
	switch o {
	case objPaymentApps:
		return "payment"
	case objPayments:
		return "paymentapplications"
	}
	return "account"
}
