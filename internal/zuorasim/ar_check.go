package zuorasim

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/shopspring/decimal"
)

// checkAR verifies every invariant of the AR model (docs/design.md "AR
// model") by scanning the whole tenant. It shares no code with recompute, so a
// mistake in one is caught by the other.
func checkAR(t *Tenant) []Violation {
	c := &checker{t: t,
		paid: map[string]decimal.Decimal{}, credited: map[string]decimal.Decimal{},
		refunded: map[string]decimal.Decimal{}, applied: map[string]decimal.Decimal{},
		credit: map[string]decimal.Decimal{}, refundApps: map[string][]*record{},
	}
	c.applications()
	c.invoices()
	c.debitMemos()
	c.payments()
	c.creditMemos()
	c.refunds()
	c.accounts()
	slices.SortStableFunc(c.out, func(a, b Violation) int {
		return cmp.Or(cmp.Compare(a.Object, b.Object), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Rule, b.Rule))
	})
	return c.out
}

type checker struct {
	t   *Tenant
	out []Violation
	// Sums of counting applications, by document id.
	paid, credited, refunded map[string]decimal.Decimal // to a target: by payments, credit memos; refunds of it
	applied                  map[string]decimal.Decimal // from a source payment or credit memo
	credit                   map[string]decimal.Decimal // to an account's credit balance, by account id
	refundApps               map[string][]*record       // every refund application, by refund id
	pairs                    map[pairKey][]move         // counting applications, by source and target
	groups                   map[string]groupInfo       // what each application group shares
}

func (c *checker) fail(rule, object, id, format string, args ...any) {
	c.out = append(c.out, Violation{Rule: rule, Object: object, ID: id, Detail: fmt.Sprintf(format, args...)})
}

func (c *checker) doc(object, id string) *record {
	if id == "" {
		return nil
	}
	return c.t.tables[object].byID[id]
}

// pairKey joins a source and a target (or the credit balance).
type pairKey struct{ source, target string }

type move struct {
	at     int64
	amount decimal.Decimal
	id     string
	object string
}

// groupInfo is what every application of one group must share.
type groupInfo struct {
	source string
	sign   int
	object string
}

// applications checks each application record and sums the counting ones.
func (c *checker) applications() {
	c.pairs, c.groups = map[pairKey][]move{}, map[string]groupInfo{}
	c.paymentApplications()
	c.creditMemoApplications()
	c.refundApplications()
	c.nets()
}

// application checks what every application record must hold, whatever its
// kind; false means its source is missing and nothing more can be checked.
func (c *checker) application(object string, a *record, source string, sourceRec *record, sourceAccount int, amount decimal.Decimal, group, effective int) bool {
	id := a.id()
	if sourceRec == nil {
		c.fail("application.source", object, id, "source %q does not exist", source)
		return false
	}
	if a.str(fAccountOf(object)) != sourceRec.str(sourceAccount) {
		c.fail("application.account", object, id, "accountId %s, its source's account is %s", a.str(fAccountOf(object)), sourceRec.str(sourceAccount))
	}
	if amount.IsZero() {
		c.fail("application.amount", object, id, "amount is zero")
	}
	if a.str(effective) == "" {
		c.fail("application.dates", object, id, "no effectiveDate")
	}
	if a.updated() < c.created(a) {
		c.fail("application.dates", object, id, "updatedDate before createdDate")
	}
	c.group(object, a, a.str(group), groupInfo{source: source, sign: amount.Sign(), object: object})
	return true
}

// group checks that one application group has one source and one direction.
func (c *checker) group(object string, a *record, g string, info groupInfo) {
	if g == "" {
		c.fail("application.group", object, a.id(), "no applicationGroupId")
		return
	}
	if prev, ok := c.groups[g]; ok && prev != info {
		c.fail("application.group", object, a.id(), "group %s mixes sources or directions (%+v and %+v)", g, prev, info)
	}
	c.groups[g] = info
}

// receivable returns the invoice or debit memo a payment or credit memo
// application names ("" for the account's credit balance); false when the
// target is invalid.
func (c *checker) receivable(object string, a *record, invoiceID, memoID string, account string) (string, bool) {
	if invoiceID != "" && memoID != "" {
		c.fail("application.target", object, a.id(), "both invoiceId %s and debitMemoId %s", invoiceID, memoID)
		return "", false
	}
	var tr *record
	var acct string
	switch {
	case invoiceID != "":
		if tr = c.doc(objInvoices, invoiceID); tr != nil {
			acct = tr.str(inv.account)
		}
	case memoID != "":
		if tr = c.doc(objDebitMemos, memoID); tr != nil {
			acct = tr.str(dm.account)
		}
	default:
		return "", true // the account's credit balance
	}
	if tr == nil {
		c.fail("application.target", object, a.id(), "target %s%s does not exist", invoiceID, memoID)
		return "", false
	}
	if acct != account {
		c.fail("application.account", object, a.id(), "target %s belongs to account %s, not %s", tr.id(), acct, account)
	}
	return tr.id(), true
}

// moved records a counting application from source to target.
func (c *checker) moved(object string, a *record, source, target string, amount decimal.Decimal) {
	k := pairKey{source, target}
	c.pairs[k] = append(c.pairs[k], move{c.created(a), amount, a.id(), object})
}

func (c *checker) paymentApplications() {
	for _, a := range c.t.tables[objPaymentApps].recs {
		source := a.str(pa.payment)
		amount := a.dec(pa.amount)
		if !c.application(objPaymentApps, a, source, c.doc(objPayments, source), pay.account, amount, pa.group, pa.effective) {
			continue
		}
		switch st := a.str(pa.status); st {
		case "Processing", stProcessed, stCancelled:
		default:
			c.fail("application.status", objPaymentApps, a.id(), "paymentApplicationStatus %q", st)
		}
		tid, ok := c.receivable(objPaymentApps, a, a.str(pa.invoice), a.str(pa.debitMemo), a.str(pa.account))
		if !ok || !paymentAppCounts(a) {
			continue
		}
		c.counted(objPaymentApps, a, source, tid, a.str(pa.account), amount, c.paid)
	}
}

// counted records a counting application of amount from source to tid, or
// to the credit balance of account when tid is "": applied to the source,
// and to the target in into (what it is paid or credited by).
func (c *checker) counted(object string, a *record, source, tid, account string, amount decimal.Decimal, into map[string]decimal.Decimal) {
	c.applied[source] = c.applied[source].Add(amount)
	if tid == "" {
		c.credit[account] = c.credit[account].Add(amount)
	} else {
		into[tid] = into[tid].Add(amount)
	}
	c.moved(object, a, source, tid, amount)
}

func (c *checker) creditMemoApplications() {
	for _, a := range c.t.tables[objCreditMemoApps].recs {
		source := a.str(ca.memo)
		amount := a.dec(ca.amount)
		if !c.application(objCreditMemoApps, a, source, c.doc(objCreditMemos, source), cm.account, amount, ca.group, ca.effective) {
			continue
		}
		tid, ok := c.receivable(objCreditMemoApps, a, a.str(ca.invoice), a.str(ca.debitMemo), a.str(ca.account))
		if !ok {
			continue
		}
		c.counted(objCreditMemoApps, a, source, tid, a.str(ca.account), amount, c.credited)
	}
}

func (c *checker) refundApplications() {
	for _, a := range c.t.tables[objRefundApps].recs {
		source := a.str(ra.refund)
		r := c.doc(objRefunds, source)
		amount := a.dec(ra.amount)
		if !c.application(objRefundApps, a, source, r, ref.account, amount, ra.group, ra.effective) {
			continue
		}
		c.refundApps[source] = append(c.refundApps[source], a)
		tr, ok := c.refundTarget(a, r)
		if !ok {
			continue
		}
		if r.str(ref.status) == stProcessed {
			c.refunded[tr] = c.refunded[tr].Add(amount)
		}
		c.moved(objRefundApps, a, source, tr, amount)
	}
}

// refundTarget returns the payment or credit memo a refund application
// refunds; false when it is invalid.
func (c *checker) refundTarget(a, r *record) (string, bool) {
	payID, memoID := a.str(ra.payment), a.str(ra.memo)
	var tr *record
	var tacct, want string
	switch {
	case payID != "" && memoID == "":
		if tr = c.doc(objPayments, payID); tr != nil {
			tacct = tr.str(pay.account)
		}
		want = "Payment"
	case memoID != "" && payID == "":
		if tr = c.doc(objCreditMemos, memoID); tr != nil {
			tacct = tr.str(cm.account)
		}
		want = "CreditMemo"
	default:
		c.fail("application.target", objRefundApps, a.id(), "a refund application names exactly one of paymentId (%q) and creditMemoId (%q)", payID, memoID)
		return "", false
	}
	if tr == nil {
		c.fail("application.target", objRefundApps, a.id(), "target %s%s does not exist", payID, memoID)
		return "", false
	}
	if st := r.str(ref.sourceType); st != want {
		c.fail("application.target", objRefundApps, a.id(), "refund %s has sourceType %s but this application names a %s", a.str(ra.refund), st, want)
	}
	if tacct != a.str(ra.account) {
		c.fail("application.account", objRefundApps, a.id(), "target %s belongs to account %s, not %s", tr.id(), tacct, a.str(ra.account))
	}
	return tr.id(), true
}

// nets checks that nothing is ever unapplied that was not applied first.
func (c *checker) nets() {
	for k, moves := range c.pairs {
		slices.SortStableFunc(moves, func(a, b move) int {
			return cmp.Or(cmp.Compare(a.at, b.at), -a.amount.Cmp(b.amount), cmp.Compare(a.id, b.id))
		})
		var net decimal.Decimal
		for _, m := range moves {
			if net = net.Add(m.amount); net.IsNegative() {
				c.fail("application.net", m.object, m.id, "%s has unapplied more from %s than it applied (net %s)", k.source, orCredit(k.target), net)
				break
			}
		}
	}
}

func orCredit(target string) string {
	if target == "" {
		return "the credit balance"
	}
	return target
}

func fAccountOf(object string) int {
	switch object {
	case objPaymentApps:
		return pa.account
	case objCreditMemoApps:
		return ca.account
	}
	return ra.account
}

func (c *checker) created(r *record) int64 { return r.created() }

// equal checks one derived field against the sum it must equal.
func (c *checker) equal(rule, object string, r *record, field int, want decimal.Decimal) {
	if got := r.dec(field); !got.Equal(want) {
		c.fail(rule, object, r.id(), "%s is %s, its applications say %s", schemas[object].fields[field].name, got, want)
	}
}

func (c *checker) invoices() {
	for _, r := range c.t.tables[objInvoices].recs {
		id, amount := r.id(), r.dec(inv.amount)
		paid, credited, balance := r.dec(inv.paid), r.dec(inv.credited), r.dec(inv.balance)
		c.equal("invoice.paymentAmount", objInvoices, r, inv.paid, c.paid[id])
		c.equal("invoice.creditMemoAmount", objInvoices, r, inv.credited, c.credited[id])
		c.equal("invoice.refundAmount", objInvoices, r, inv.refunded, c.refunded[id])
		if want := amount.Sub(paid).Sub(credited); !balance.Equal(want) {
			c.fail("invoice.balance", objInvoices, id, "balance %s, amount − paymentAmount − creditMemoAmount = %s", balance, want)
		}
		switch {
		case amount.IsNegative() && (!paid.IsZero() || !credited.IsZero()):
			c.fail("invoice.range", objInvoices, id, "a negative invoice has applications")
		case !amount.IsNegative() && (balance.IsNegative() || balance.GreaterThan(amount)):
			c.fail("invoice.range", objInvoices, id, "balance %s outside [0, %s]", balance, amount)
		}
		if r.str(inv.status) != stPosted && (!c.paid[id].IsZero() || !c.credited[id].IsZero()) {
			c.fail("invoice.unposted", objInvoices, id, "a %s invoice has applications netting %s", r.str(inv.status), c.paid[id].Add(c.credited[id]))
		}
		if r.str(inv.reversed) == "true" && (r.str(inv.status) != stPosted || !balance.IsZero() || !credited.Equal(amount)) {
			c.fail("invoice.reversed", objInvoices, id, "reversed, but status %s, balance %s, creditMemoAmount %s", r.str(inv.status), balance, credited)
		}
	}
}

func (c *checker) debitMemos() {
	for _, r := range c.t.tables[objDebitMemos].recs {
		id, total := r.id(), r.dec(dm.total)
		want := total.Sub(c.paid[id]).Sub(c.credited[id])
		c.equal("debitMemo.balance", objDebitMemos, r, dm.balance, want)
		if b := r.dec(dm.balance); b.IsNegative() || b.GreaterThan(total) {
			c.fail("debitMemo.range", objDebitMemos, id, "balance %s outside [0, %s]", b, total)
		}
		if r.str(dm.status) != stPosted && !want.Equal(total) {
			c.fail("debitMemo.unposted", objDebitMemos, id, "a %s debit memo has applications", r.str(dm.status))
		}
	}
}

func (c *checker) payments() {
	for _, r := range c.t.tables[objPayments].recs {
		id, amount := r.id(), r.dec(pay.amount)
		applied, refunded, unapplied := r.dec(pay.applied), r.dec(pay.refunded), r.dec(pay.unapplied)
		c.equal("payment.appliedAmount", objPayments, r, pay.applied, c.applied[id])
		c.equal("payment.refundAmount", objPayments, r, pay.refunded, c.refunded[id])
		if want := amount.Sub(applied).Sub(refunded); !unapplied.Equal(want) {
			c.fail("payment.unappliedAmount", objPayments, id, "unappliedAmount %s, amount − appliedAmount − refundAmount = %s", unapplied, want)
		}
		if unapplied.IsNegative() || unapplied.GreaterThan(amount) || applied.IsNegative() || refunded.IsNegative() {
			c.fail("payment.range", objPayments, id, "applied %s, refunded %s, unapplied %s of %s", applied, refunded, unapplied, amount)
		}
		if r.str(pay.status) != stProcessed && (!c.applied[id].IsZero() || !c.refunded[id].IsZero()) {
			c.fail("payment.unprocessed", objPayments, id, "a %s payment has applications netting %s", r.str(pay.status), c.applied[id].Add(c.refunded[id]))
		}
	}
}

func (c *checker) creditMemos() {
	for _, r := range c.t.tables[objCreditMemos].recs {
		id, total := r.id(), r.dec(cm.total)
		applied, refunded, balance := r.dec(cm.applied), r.dec(cm.refunded), r.dec(cm.balance)
		c.equal("creditMemo.appliedAmount", objCreditMemos, r, cm.applied, c.applied[id])
		c.equal("creditMemo.refundAmount", objCreditMemos, r, cm.refunded, c.refunded[id])
		if want := total.Sub(applied).Sub(refunded); !balance.Equal(want) {
			c.fail("creditMemo.balance", objCreditMemos, id, "balance %s, totalAmount − appliedAmount − refundAmount = %s", balance, want)
		}
		if balance.IsNegative() || balance.GreaterThan(total) {
			c.fail("creditMemo.range", objCreditMemos, id, "balance %s outside [0, %s]", balance, total)
		}
		if r.str(cm.status) != stPosted && (!c.applied[id].IsZero() || !c.refunded[id].IsZero()) {
			c.fail("creditMemo.unposted", objCreditMemos, id, "a %s credit memo has applications", r.str(cm.status))
		}
		invoiceID := r.str(cm.invoice)
		if r.str(cm.sourceType) == "Invoice" && invoiceID == "" {
			c.fail("creditMemo.source", objCreditMemos, id, "sourceType Invoice without invoiceId")
		}
		if invoiceID != "" {
			if i := c.doc(objInvoices, invoiceID); i == nil {
				c.fail("creditMemo.source", objCreditMemos, id, "invoiceId %s does not exist", invoiceID)
			} else if i.str(inv.account) != r.str(cm.account) {
				c.fail("creditMemo.source", objCreditMemos, id, "invoice %s belongs to another account", invoiceID)
			}
		}
		if r.str(cm.reversed) == "true" && !balance.IsZero() {
			c.fail("creditMemo.reversed", objCreditMemos, id, "reversed with balance %s", balance)
		}
	}
}

func (c *checker) refunds() {
	for _, r := range c.t.tables[objRefunds].recs {
		id, amount, st := r.id(), r.dec(ref.amount), r.str(ref.sourceType)
		var sum decimal.Decimal
		for _, a := range c.refundApps[id] {
			sum = sum.Add(a.dec(ra.amount))
		}
		switch st {
		case "Payment", "CreditMemo":
		case "CreditBalance":
			if len(c.refundApps[id]) > 0 {
				c.fail("refund.applications", objRefunds, id, "a refund of the credit balance has applications")
			}
			continue
		default:
			c.fail("refund.sourceType", objRefunds, id, "sourceType %q", st)
			continue
		}
		switch {
		case r.str(ref.status) == stProcessed && !sum.Equal(amount):
			c.fail("refund.applications", objRefunds, id, "a processed refund of %s has applications of %s", amount, sum)
		case r.str(ref.status) != stProcessed && !sum.IsZero() && !sum.Equal(amount):
			c.fail("refund.applications", objRefunds, id, "a %s refund of %s has applications of %s", r.str(ref.status), amount, sum)
		}
	}
}

func (c *checker) accounts() {
	owed := map[string]decimal.Decimal{}
	for _, r := range c.t.tables[objInvoices].recs {
		if r.str(inv.status) == stPosted {
			a := r.str(inv.account)
			owed[a] = owed[a].Add(r.dec(inv.balance))
		}
	}
	for _, r := range c.t.tables[objAccounts].recs {
		id := r.id()
		c.equal("account.balance", objAccounts, r, acc.balance, owed[id])
		c.equal("account.balance", objAccounts, r, acc.totalInvoiceBalance, owed[id])
		c.equal("account.creditBalance", objAccounts, r, acc.creditBalance, c.credit[id])
	}
}
