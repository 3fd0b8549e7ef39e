package demo

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

// Receivables is the demo's script of AR operations: what a Zuora user does
// to receivables between two windows (docs/design.md "AR model", "Runtime
// operations"), on documents of one customer of the generated tenant that the
// ERP knows (an account with its ERP id, in USD). Its fields name what the
// operations touched.
type Receivables struct {
	Account                string
	Inv1, Inv2, Inv3, Inv4 string // the payment's two invoices, the memo's, the reversed one
	Payment                string // created by the script, applied in two steps
	Memo                   string // applied, then unapplied
	Unposted               string // a credit memo unposted, then posted again
	Refunded, Refund       string // a payment and its refund
	Canceled               string // a payment cancelled after it was posted
	Reversal               string // the credit memo reversing Inv4
}

// record is one snapshot row of the simulated tenant.
type record map[string]any

func (r record) str(f string) string { s, _ := r[f].(string); return s }

func (r record) dec(f string) decimal.Decimal {
	n, _ := r[f].(json.Number)
	d, err := decimal.NewFromString(string(n))
	if err != nil {
		return decimal.Zero
	}
	return d
}

func pick(zs *zuorasim.Sim, object string, ok func(record) bool) []record {
	var out []record
	for _, r := range zs.Snapshot(object) {
		if ok(record(r)) {
			out = append(out, record(r))
		}
	}
	return out
}

// ReceivablesStepOne is the first hour of the script: a new payment of 12.00
// applied 4.00 and 3.00 to two invoices (5.00 left unapplied), a credit memo
// applied (1.50) to a third invoice, a payment refunded (1.00), a credit memo
// unposted, and a fourth invoice reversed.
func ReceivablesStepOne(zs *zuorasim.Sim) (*Receivables, error) {
	known := map[string]bool{}
	for _, a := range zs.Snapshot("accounts") {
		if s, _ := a["ERPAccountId__c"].(string); s != "" {
			known[fmt.Sprint(a["id"])] = true
		}
	}
	byAccount := map[string][]record{}
	for _, inv := range pick(zs, "invoices", func(r record) bool {
		return r.str("currency") == "USD" && r.str("status") == "Posted" && known[r.str("accountId")] &&
			r.dec("balance").GreaterThanOrEqual(decimal.NewFromInt(20)) && r.dec("balance").Equal(r.dec("amount"))
	}) {
		byAccount[inv.str("accountId")] = append(byAccount[inv.str("accountId")], inv)
	}
	memoOf := map[string]string{}
	for _, m := range pick(zs, "credit-memos", func(r record) bool {
		return r.str("status") == "Posted" && r.dec("balance").GreaterThanOrEqual(decimal.NewFromInt(2)) && r.str("currency") == "USD"
	}) {
		memoOf[m.str("accountId")] = m.str("id")
	}
	rv := &Receivables{}
	accounts := make([]string, 0, len(byAccount))
	for a := range byAccount {
		accounts = append(accounts, a)
	}
	slices.Sort(accounts)
	for _, a := range accounts {
		if len(byAccount[a]) >= 3 && memoOf[a] != "" {
			rv.Account = a
			break
		}
	}
	if rv.Account == "" {
		return nil, fmt.Errorf("demo: the tenant has no USD customer with three open invoices and a credit memo to script receivables on")
	}
	invs := byAccount[rv.Account]
	rv.Inv1, rv.Inv2, rv.Inv3, rv.Memo = invs[0].str("id"), invs[1].str("id"), invs[2].str("id"), memoOf[rv.Account]
	var err error
	if rv.Payment, _, err = zs.CreatePayment(rv.Account, "12.00", zuorasim.Target{ID: rv.Inv1, Amount: "4.00"}, zuorasim.Target{ID: rv.Inv2, Amount: "3.00"}); err != nil {
		return nil, fmt.Errorf("demo: create a payment applied to two invoices: %w", err)
	}
	if _, err := zs.ApplyCreditMemo(rv.Memo, zuorasim.Target{ID: rv.Inv3, Amount: "1.50"}); err != nil {
		return nil, fmt.Errorf("demo: apply a credit memo: %w", err)
	}
	for _, p := range pick(zs, "payments", func(r record) bool {
		return r.str("status") == "Processed" && known[r.str("accountId")] && r.dec("unappliedAmount").GreaterThanOrEqual(decimal.NewFromInt(1)) && r.str("id") != rv.Payment
	}) {
		if r, err := zs.RefundPayment(p.str("id"), "1"); err == nil {
			rv.Refunded, rv.Refund = p.str("id"), r.RefundID
			break
		}
	}
	if rv.Refunded == "" {
		return nil, fmt.Errorf("demo: no payment of a known customer could be refunded")
	}
	for _, m := range pick(zs, "credit-memos", func(r record) bool {
		return r.str("status") == "Posted" && known[r.str("accountId")] && r.dec("balance").Equal(r.dec("totalAmount")) && r.str("id") != rv.Memo
	}) {
		if err := zs.UnpostMemo(m.str("id")); err == nil {
			rv.Unposted = m.str("id")
			break
		}
	}
	if rv.Unposted == "" {
		return nil, fmt.Errorf("demo: no credit memo of a known customer could be unposted")
	}
	var refused error
	for _, inv := range pick(zs, "invoices", func(r record) bool {
		return r.str("status") == "Posted" && known[r.str("accountId")] && r.dec("amount").IsPositive() && r.dec("balance").Equal(r.dec("amount")) &&
			r.str("id") != rv.Inv1 && r.str("id") != rv.Inv2 && r.str("id") != rv.Inv3
	}) {
		rev, err := zs.ReverseInvoice(inv.str("id"))
		if err == nil {
			rv.Inv4, rv.Reversal = inv.str("id"), rev.MemoID
			return rv, nil
		}
		refused = err // a memo was made from it, say: try the next
	}
	return nil, fmt.Errorf("demo: reverse an invoice: %w", refused)
}

// StepTwo is the second hour: the payment's last 5.00 applied to its first
// invoice, the credit memo unapplied, a payment posted long ago cancelled, and
// the unposted memo posted again.
func (rv *Receivables) StepTwo(zs *zuorasim.Sim) error {
	if _, err := zs.ApplyPayment(rv.Payment, zuorasim.Target{ID: rv.Inv1, Amount: "5.00"}); err != nil {
		return fmt.Errorf("demo: apply the rest of the payment: %w", err)
	}
	if _, err := zs.UnapplyCreditMemo(rv.Memo, zuorasim.Target{ID: rv.Inv3, Amount: "1.50"}); err != nil {
		return fmt.Errorf("demo: unapply the credit memo: %w", err)
	}
	known := map[string]bool{}
	for _, a := range zs.Snapshot("accounts") {
		if s, _ := a["ERPAccountId__c"].(string); s != "" {
			known[fmt.Sprint(a["id"])] = true
		}
	}
	for _, p := range pick(zs, "payments", func(r record) bool {
		return r.str("status") == "Processed" && known[r.str("accountId")] && r.dec("appliedAmount").IsPositive() && r.dec("refundAmount").IsZero() &&
			r.str("id") != rv.Payment && r.str("id") != rv.Refunded && r.str("currency") != "KWD"
	}) {
		if err := zs.CancelPayment(p.str("id")); err == nil {
			rv.Canceled = p.str("id")
			break
		}
	}
	if rv.Canceled == "" {
		return fmt.Errorf("demo: no applied payment of a known customer could be cancelled")
	}
	if err := zs.PostMemo(rv.Unposted); err != nil {
		return fmt.Errorf("demo: post the memo again: %w", err)
	}
	return nil
}

// StepOneWords and StepTwoWords say what each step did, for the demo's output.
func (rv *Receivables) StepOneWords() []string {
	return []string{
		fmt.Sprintf("payment %s of 12.00 applied 4.00 to invoice %s and 3.00 to invoice %s (5.00 left unapplied)", rv.Payment, rv.Inv1, rv.Inv2),
		fmt.Sprintf("credit memo %s applied 1.50 to invoice %s", rv.Memo, rv.Inv3),
		fmt.Sprintf("payment %s refunded 1.00 (refund %s)", rv.Refunded, rv.Refund),
		fmt.Sprintf("credit memo %s unposted (back to Draft)", rv.Unposted),
		fmt.Sprintf("invoice %s reversed by credit memo %s", rv.Inv4, rv.Reversal),
	}
}

func (rv *Receivables) StepTwoWords() []string {
	return []string{
		fmt.Sprintf("payment %s: its last 5.00 applied to invoice %s", rv.Payment, rv.Inv1),
		fmt.Sprintf("credit memo %s unapplied from invoice %s", rv.Memo, rv.Inv3),
		fmt.Sprintf("payment %s cancelled after it was posted", rv.Canceled),
		fmt.Sprintf("credit memo %s posted again", rv.Unposted),
	}
}
