package zuorasim

import (
	"testing"

	"github.com/shopspring/decimal"
)

// pick returns the first record of object that satisfies pred.
func pick(t *testing.T, tn *Tenant, object string, pred func(*record) bool) *record {
	t.Helper()
	for _, r := range tn.tables[object].recs {
		if pred(r) {
			return r
		}
	}
	t.Fatalf("no %s fits", object)
	return nil
}

func applied(r *record) bool {
	return r.str(pa.invoice) != "" && paymentAppCounts(r) && r.dec(pa.amount).IsPositive()
}

// TestCheckARCatchesBrokenData breaks a consistent tenant one way at a time
// and expects CheckAR to name the rule that broke, on the record that broke it.
func TestCheckARCatchesBrokenData(t *testing.T) {
	base := Generate(11, Volume{Accounts: 40, Invoices: 400, Payments: 200, Refunds: 60, CreditMemos: 80, DebitMemos: 40,
		MaxItems: 5, DraftPercent: 10}, genFrom, genTo)
	if v := base.CheckAR(); len(v) > 0 {
		t.Fatalf("the base tenant is broken already: %v", v[0])
	}
	cent := decimal.New(1, -2)
	cases := []struct {
		name   string
		rule   string
		break_ func(t *testing.T, tn *Tenant) string // returns the id the violation must name
	}{
		{"invoice balance a cent off", "invoice.balance", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objInvoices, func(r *record) bool { return r.str(inv.status) == stPosted && r.dec(inv.balance).IsPositive() })
			r.set(inv.balance, money(r.dec(inv.balance).Sub(cent)))
			return r.id()
		}},
		{"invoice paymentAmount and balance moved together", "invoice.paymentAmount", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objInvoices, func(r *record) bool { return r.str(inv.status) == stPosted && r.dec(inv.balance).IsPositive() })
			r.set(inv.paid, money(r.dec(inv.paid).Add(cent)))
			r.set(inv.balance, money(r.dec(inv.balance).Sub(cent)))
			return r.id()
		}},
		{"payment appliedAmount", "payment.appliedAmount", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objPayments, func(r *record) bool { return r.dec(pay.applied).IsPositive() })
			r.set(pay.applied, money(r.dec(pay.applied).Sub(cent)))
			return r.id()
		}},
		{"payment unappliedAmount", "payment.unappliedAmount", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objPayments, func(r *record) bool { return r.str(pay.status) == stProcessed })
			r.set(pay.unapplied, money(r.dec(pay.unapplied).Add(cent)))
			return r.id()
		}},
		{"payment unapplied below zero", "payment.range", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objPayments, func(r *record) bool { return r.str(pay.status) == stProcessed && r.dec(pay.unapplied).IsZero() })
			a := pick(t, tn, objPaymentApps, func(a *record) bool { return a.str(pa.payment) == r.id() && applied(a) })
			a.set(pa.amount, money(a.dec(pa.amount).Add(cent)))
			r.set(pay.applied, money(r.dec(pay.applied).Add(cent)))
			r.set(pay.unapplied, money(r.dec(pay.unapplied).Sub(cent)))
			return r.id()
		}},
		{"credit memo balance", "creditMemo.balance", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objCreditMemos, func(r *record) bool { return r.str(cm.status) == stPosted })
			r.set(cm.balance, money(r.dec(cm.balance).Add(cent)))
			return r.id()
		}},
		{"credit memo appliedAmount", "creditMemo.appliedAmount", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objCreditMemos, func(r *record) bool { return r.dec(cm.applied).IsPositive() })
			r.set(cm.applied, "0")
			r.set(cm.balance, money(r.dec(cm.total).Sub(r.dec(cm.refunded))))
			return r.id()
		}},
		{"credit memo of an invoice without invoiceId", "creditMemo.source", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objCreditMemos, func(r *record) bool { return r.str(cm.sourceType) == "Invoice" })
			r.setNull(cm.invoice)
			return r.id()
		}},
		{"debit memo balance", "debitMemo.balance", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objDebitMemos, func(r *record) bool { return r.str(dm.status) == stPosted })
			r.set(dm.balance, money(r.dec(dm.balance).Sub(cent)))
			return r.id()
		}},
		{"application of a payment that does not exist", "application.source", func(t *testing.T, tn *Tenant) string {
			a := pick(t, tn, objPaymentApps, applied)
			a.set(pa.payment, "no-such-payment")
			return a.id()
		}},
		{"application to an invoice and a debit memo at once", "application.target", func(t *testing.T, tn *Tenant) string {
			a := pick(t, tn, objPaymentApps, applied)
			a.set(pa.debitMemo, tn.tables[objDebitMemos].recs[0].id())
			return a.id()
		}},
		{"application to another account's invoice", "application.account", func(t *testing.T, tn *Tenant) string {
			a := pick(t, tn, objPaymentApps, applied)
			other := pick(t, tn, objInvoices, func(r *record) bool { return r.str(inv.account) != a.str(pa.account) })
			a.set(pa.invoice, other.id())
			return a.id()
		}},
		{"application of zero", "application.amount", func(t *testing.T, tn *Tenant) string {
			a := pick(t, tn, objCreditMemoApps, func(*record) bool { return true })
			a.set(ca.amount, "0")
			return a.id()
		}},
		{"unapplied more than applied", "application.net", func(t *testing.T, tn *Tenant) string {
			a := pick(t, tn, objPaymentApps, applied)
			u := a.clone()
			u.set(fID, "over-unapply")
			u.set(pa.group, "over-unapply-group")
			u.set(pa.amount, money(a.dec(pa.amount).Add(cent).Neg()))
			tn.tables[objPaymentApps].add(u)
			return u.id()
		}},
		{"a group that applies and unapplies", "application.group", func(t *testing.T, tn *Tenant) string {
			a := pick(t, tn, objPaymentApps, applied)
			u := a.clone()
			u.set(fID, "mixed")
			u.set(pa.amount, money(a.dec(pa.amount).Neg()))
			tn.tables[objPaymentApps].add(u)
			return u.id()
		}},
		{"unknown application status", "application.status", func(t *testing.T, tn *Tenant) string {
			a := pick(t, tn, objPaymentApps, applied)
			a.set(pa.status, "Done")
			return a.id()
		}},
		{"a draft invoice with applications", "invoice.unposted", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objInvoices, func(r *record) bool { return r.dec(inv.paid).IsPositive() })
			r.set(inv.status, stDraft)
			return r.id()
		}},
		{"a reversed invoice that is still open", "invoice.reversed", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objInvoices, func(r *record) bool { return r.str(inv.status) == stPosted && r.dec(inv.balance).IsPositive() })
			r.set(inv.reversed, "true")
			return r.id()
		}},
		{"a canceled payment whose applications still count", "payment.unprocessed", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objPayments, func(r *record) bool { return r.dec(pay.applied).IsPositive() })
			r.set(pay.status, stCanceled)
			return r.id()
		}},
		{"a processed refund without its applications", "refund.applications", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objRefunds, func(r *record) bool { return r.str(ref.status) == stProcessed && r.str(ref.sourceType) == "Payment" })
			r.set(ref.amount, money(r.dec(ref.amount).Add(cent)))
			return r.id()
		}},
		{"a refund of the credit balance with an application", "refund.applications", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objRefunds, func(r *record) bool { return r.str(ref.status) != stProcessed && r.str(ref.sourceType) == "Payment" })
			r.set(ref.sourceType, "CreditBalance")
			a := pick(t, tn, objRefundApps, func(*record) bool { return true }).clone()
			a.set(fID, "credit-balance-refund-app")
			a.set(ra.refund, r.id())
			a.set(ra.account, r.str(ref.account))
			tn.tables[objRefundApps].add(a)
			return r.id()
		}},
		{"an unknown refund source type", "refund.sourceType", func(t *testing.T, tn *Tenant) string {
			r := pick(t, tn, objRefunds, func(r *record) bool { return r.str(ref.status) != stProcessed })
			r.set(ref.sourceType, "Gateway")
			return r.id()
		}},
		{"account balance", "account.balance", func(t *testing.T, tn *Tenant) string {
			r := tn.tables[objAccounts].recs[0]
			r.set(acc.balance, money(r.dec(acc.balance).Add(cent)))
			return r.id()
		}},
		{"account credit balance", "account.creditBalance", func(t *testing.T, tn *Tenant) string {
			r := tn.tables[objAccounts].recs[1]
			r.set(acc.creditBalance, money(r.dec(acc.creditBalance).Add(cent)))
			return r.id()
		}},
	}
	rules := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tn := base.clone()
			id := c.break_(t, tn)
			found := false
			var got []string
			for _, v := range tn.CheckAR() {
				got = append(got, v.String())
				if v.Rule == c.rule && v.ID == id {
					found = true
				}
			}
			if !found {
				t.Fatalf("want %s on %s, got %v", c.rule, id, got)
			}
		})
		rules[c.rule] = true
	}
	// Every rule the checker knows is shown to fire.
	for _, rule := range []string{"invoice.balance", "invoice.paymentAmount", "invoice.unposted", "invoice.reversed",
		"payment.appliedAmount", "payment.unappliedAmount", "payment.range", "payment.unprocessed",
		"creditMemo.balance", "creditMemo.appliedAmount", "creditMemo.source", "debitMemo.balance",
		"refund.applications", "refund.sourceType", "account.balance", "account.creditBalance",
		"application.source", "application.target", "application.account", "application.amount",
		"application.net", "application.group", "application.status"} {
		if !rules[rule] {
			t.Errorf("no case breaks %s", rule)
		}
	}
}
