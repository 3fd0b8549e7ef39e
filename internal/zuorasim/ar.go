package zuorasim

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// The AR model (docs/design.md "AR model"): applications are the records of
// truth, and every document's AR fields are derived from them. recompute keeps
// the fields consistent after a change; CheckAR verifies them independently.

// Positions of the fields the AR model reads and writes, resolved once.
var (
	inv = struct {
		account, status, currency, amount, balance, paid, credited, refunded, reversed, posted, postedBy, transferred, number, date int
	}{}
	dm = struct {
		account, status, currency, total, balance, posted, postedBy, invoice, transferred, number int
	}{}
	cm = struct {
		account, status, currency, total, balance, applied, refunded, reversed, posted, postedBy, invoice, sourceType, source, reasonCode, transferred, number int
	}{}
	pay = struct {
		account, status, currency, amount, applied, unapplied, refunded, cancelledOn, transferred, number int
	}{}
	ref = struct {
		account, status, currency, amount, sourceType, transferred, number int
	}{}
	acc = struct {
		balance, totalInvoiceBalance, creditBalance, currency int
	}{}
	pa = struct {
		account, payment, invoice, debitMemo, amount, effective, status, group, owner int
	}{}
	ca = struct {
		account, memo, invoice, debitMemo, amount, effective, group int
	}{}
	ra = struct {
		account, refund, payment, memo, invoice, amount, effective, group int
	}{}
	_ = resolvePositions()
)

func resolvePositions() bool {
	p := func(object, name string) int { return schemas[object].pos(name) }
	i := objInvoices
	inv.account, inv.status, inv.currency, inv.amount = p(i, "accountId"), p(i, "status"), p(i, "currency"), p(i, "amount")
	inv.balance, inv.paid, inv.credited, inv.refunded = p(i, "balance"), p(i, "paymentAmount"), p(i, "creditMemoAmount"), p(i, "refundAmount")
	inv.reversed, inv.posted, inv.postedBy, inv.transferred = p(i, "reversed"), p(i, "postedDate"), p(i, "postedBy"), p(i, "transferredToAccounting")
	inv.number, inv.date = p(i, "invoiceNumber"), p(i, "invoiceDate")
	d := objDebitMemos
	dm.account, dm.status, dm.currency, dm.total, dm.balance = p(d, "accountId"), p(d, "status"), p(d, "currency"), p(d, "totalAmount"), p(d, "balance")
	dm.posted, dm.postedBy, dm.invoice, dm.transferred, dm.number = p(d, "postedOn"), p(d, "postedById"), p(d, "invoiceId"), p(d, "transferredToAccounting"), p(d, "memoNumber")
	c := objCreditMemos
	cm.account, cm.status, cm.currency, cm.total, cm.balance = p(c, "accountId"), p(c, "status"), p(c, "currency"), p(c, "totalAmount"), p(c, "balance")
	cm.applied, cm.refunded, cm.reversed, cm.posted, cm.postedBy = p(c, "appliedAmount"), p(c, "refundAmount"), p(c, "reversed"), p(c, "postedOn"), p(c, "postedById")
	cm.invoice, cm.sourceType, cm.source, cm.reasonCode = p(c, "invoiceId"), p(c, "sourceType"), p(c, "source"), p(c, "reasonCode")
	cm.transferred, cm.number = p(c, "transferredToAccounting"), p(c, "memoNumber")
	y := objPayments
	pay.account, pay.status, pay.currency, pay.amount = p(y, "accountId"), p(y, "status"), p(y, "currency"), p(y, "amount")
	pay.applied, pay.unapplied, pay.refunded, pay.cancelledOn = p(y, "appliedAmount"), p(y, "unappliedAmount"), p(y, "refundAmount"), p(y, "cancelledOn")
	pay.transferred, pay.number = p(y, "transferredToAccounting"), p(y, "paymentNumber")
	r := objRefunds
	ref.account, ref.status, ref.currency, ref.amount, ref.sourceType = p(r, "accountId"), p(r, "status"), p(r, "currency"), p(r, "amount"), p(r, "sourceType")
	ref.transferred, ref.number = p(r, "transferredToAccounting"), p(r, "refundNumber")
	a := objAccounts
	acc.balance, acc.totalInvoiceBalance, acc.creditBalance, acc.currency = p(a, "balance"), p(a, "totalInvoiceBalance"), p(a, "creditBalance"), p(a, "currency")
	x := objPaymentApps
	pa.account, pa.payment, pa.invoice, pa.debitMemo, pa.amount = p(x, "accountId"), p(x, "paymentId"), p(x, "invoiceId"), p(x, "debitMemoId"), p(x, "applyAmount")
	pa.effective, pa.status, pa.group, pa.owner = p(x, "effectiveDate"), p(x, "paymentApplicationStatus"), p(x, "applicationGroupId"), p(x, "billingDocumentOwnerId")
	x = objCreditMemoApps
	ca.account, ca.memo, ca.invoice, ca.debitMemo, ca.amount = p(x, "accountId"), p(x, "creditMemoId"), p(x, "invoiceId"), p(x, "debitMemoId"), p(x, "amount")
	ca.effective, ca.group = p(x, "effectiveDate"), p(x, "applicationGroupId")
	x = objRefundApps
	ra.account, ra.refund, ra.payment, ra.memo, ra.invoice, ra.amount = p(x, "accountId"), p(x, "refundId"), p(x, "paymentId"), p(x, "creditMemoId"), p(x, "invoiceId"), p(x, "applyAmount")
	ra.effective, ra.group = p(x, "effectiveDate"), p(x, "applicationGroupId")
	return true
}

// Statuses the AR model gives meaning to.
const (
	stPosted    = "Posted"
	stDraft     = "Draft"
	stProcessed = "Processed"
	stCanceled  = "Canceled"  // documents
	stCancelled = "Cancelled" // payment applications, as Zuora spells it there
)

// dec reads a number field; null reads as zero.
func (r *record) dec(i int) decimal.Decimal {
	v, ok := r.get(i)
	if !ok {
		return decimal.Zero
	}
	d, err := decimal.NewFromString(v)
	if err != nil {
		return decimal.Zero
	}
	return d
}

// str reads a text field; null reads as "".
func (r *record) str(i int) string {
	v, _ := r.get(i)
	return v
}

// setNull clears a field.
func (r *record) setNull(i int) { r.null |= 1 << uint(i) }

// money formats an amount the way the generator writes it.
func money(d decimal.Decimal) string { return d.String() }

// setAmount writes d unless the field already holds the same value, so text
// the generator wrote (e.g. "12.50") survives a recompute that agrees with it.
// It reports whether the field changed.
func (r *record) setAmount(i int, d decimal.Decimal) bool {
	if v, ok := r.get(i); ok {
		if old, err := decimal.NewFromString(v); err == nil && old.Equal(d) {
			return false
		}
	}
	r.set(i, money(d))
	return true
}

// lookupFK returns the records of a table whose field i holds v.
func (t *table) lookupFK(i int, v string) []*record {
	return t.fk[i][strings.ToLower(v)]
}

// paymentAppCounts reports whether a payment application moves balances: a
// Cancelled one does not.
func paymentAppCounts(r *record) bool { return r.str(pa.status) != stCancelled }

// refundAppCounts reports whether a refund application moves balances: only
// a Processed refund's do.
func (t *Tenant) refundAppCounts(r *record) bool {
	rf := t.tables[objRefunds].byID[r.str(ra.refund)]
	return rf != nil && rf.str(ref.status) == stProcessed
}

// recompute derives the AR fields of one document (or account) from its
// applications and reports whether anything changed.
func (t *Tenant) recompute(object string, r *record) bool {
	s := arSums{t: t, id: r.id()}
	f := amounts{r: r}
	switch object {
	case objInvoices:
		paid, credited := s.paid(pa.invoice), s.credited(ca.invoice)
		f.set(inv.paid, paid)
		f.set(inv.credited, credited)
		f.set(inv.refunded, s.refunded(ra.invoice))
		f.set(inv.balance, r.dec(inv.amount).Sub(paid).Sub(credited))
	case objDebitMemos:
		f.set(dm.balance, r.dec(dm.total).Sub(s.paid(pa.debitMemo)).Sub(s.credited(ca.debitMemo)))
	case objPayments:
		applied, refunded := s.paid(pa.payment), s.refunded(ra.payment)
		f.set(pay.applied, applied)
		f.set(pay.refunded, refunded)
		f.set(pay.unapplied, r.dec(pay.amount).Sub(applied).Sub(refunded))
	case objCreditMemos:
		applied, refunded := s.credited(ca.memo), s.refunded(ra.memo)
		f.set(cm.applied, applied)
		f.set(cm.refunded, refunded)
		f.set(cm.balance, r.dec(cm.total).Sub(applied).Sub(refunded))
	case objAccounts:
		owed := s.owed()
		f.set(acc.balance, owed)
		f.set(acc.totalInvoiceBalance, owed)
		f.set(acc.creditBalance, s.creditBalance())
	}
	return f.changed
}

// amounts writes derived amounts into r, noting whether any changed.
type amounts struct {
	r       *record
	changed bool
}

func (f *amounts) set(i int, d decimal.Decimal) {
	if f.r.setAmount(i, d) {
		f.changed = true
	}
}

// arSums sums the counting applications that name the record id.
type arSums struct {
	t  *Tenant
	id string
}

// paid sums the payment applications whose field names id.
func (s arSums) paid(field int) (sum decimal.Decimal) {
	for _, a := range s.t.tables[objPaymentApps].lookupFK(field, s.id) {
		if paymentAppCounts(a) {
			sum = sum.Add(a.dec(pa.amount))
		}
	}
	return sum
}

// credited sums the credit memo applications whose field names id.
func (s arSums) credited(field int) (sum decimal.Decimal) {
	for _, a := range s.t.tables[objCreditMemoApps].lookupFK(field, s.id) {
		sum = sum.Add(a.dec(ca.amount))
	}
	return sum
}

// refunded sums the refund applications whose field names id.
func (s arSums) refunded(field int) (sum decimal.Decimal) {
	for _, a := range s.t.tables[objRefundApps].lookupFK(field, s.id) {
		if s.t.refundAppCounts(a) {
			sum = sum.Add(a.dec(ra.amount))
		}
	}
	return sum
}

// owed sums the balances of the posted invoices of the account id.
func (s arSums) owed() (sum decimal.Decimal) {
	for _, i := range s.t.tables[objInvoices].lookupFK(inv.account, s.id) {
		if i.str(inv.status) == stPosted {
			sum = sum.Add(i.dec(inv.balance))
		}
	}
	return sum
}

// creditBalance sums what payments and credit memos applied to the credit
// balance of the account id.
func (s arSums) creditBalance() (sum decimal.Decimal) {
	for _, a := range s.t.tables[objPaymentApps].lookupFK(pa.account, s.id) {
		if paymentAppCounts(a) && a.str(pa.invoice) == "" && a.str(pa.debitMemo) == "" {
			sum = sum.Add(a.dec(pa.amount))
		}
	}
	for _, a := range s.t.tables[objCreditMemoApps].lookupFK(ca.account, s.id) {
		if a.str(ca.invoice) == "" && a.str(ca.debitMemo) == "" {
			sum = sum.Add(a.dec(ca.amount))
		}
	}
	return sum
}

// recomputeAll derives the AR fields of every document and account.
func (t *Tenant) recomputeAll() {
	for _, o := range []string{objInvoices, objDebitMemos, objPayments, objCreditMemos, objAccounts} {
		for _, r := range t.tables[o].recs {
			t.recompute(o, r)
		}
	}
}

// Violation is one broken AR invariant: which rule, on which record, and how.
type Violation struct {
	Rule   string // e.g. "invoice.balance"; see docs/design.md "AR model"
	Object string // object path, e.g. "invoices"
	ID     string
	Detail string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s %s %s: %s", v.Rule, v.Object, v.ID, v.Detail)
}

// CheckAR verifies every AR invariant of the generated tenant.
func (t *Tenant) CheckAR() []Violation { return checkAR(t) }

// appSpec is what every new application record carries.
type appSpec struct {
	id, group, user string
	at              int64  // createdDate and updatedDate, Unix seconds
	effective       string // effectiveDate, YYYY-MM-DD
	amount          decimal.Decimal
}

func (t *Tenant) newApp(object string, s appSpec, account string) *record {
	sch := schemas[object]
	r := newRecord(sch)
	r.set(fID, s.id)
	r.set(fCreatedByID, s.user)
	r.set(fUpdatedByID, s.user)
	r.set(fCreatedDate, fmt.Sprint(s.at))
	r.set(fUpdatedDate, fmt.Sprint(s.at))
	r.set(sch.pos("accountId"), account)
	r.set(sch.pos("effectiveDate"), s.effective)
	r.set(sch.pos("applicationGroupId"), s.group)
	return r
}

// addPaymentApp records a payment application to an invoice, a debit memo,
// or (both empty) the account's credit balance.
func (t *Tenant) addPaymentApp(s appSpec, p *record, invoiceID, memoID, owner, status string) *record {
	a := t.newApp(objPaymentApps, s, p.str(pay.account))
	a.set(pa.payment, p.id())
	if invoiceID != "" {
		a.set(pa.invoice, invoiceID)
	}
	if memoID != "" {
		a.set(pa.debitMemo, memoID)
	}
	a.set(pa.owner, owner)
	a.set(pa.amount, money(s.amount))
	a.set(pa.status, status)
	t.tables[objPaymentApps].add(a)
	return a
}

// addCreditMemoApp records a credit memo application to an invoice, a debit
// memo, or (both empty) the account's credit balance.
func (t *Tenant) addCreditMemoApp(s appSpec, m *record, invoiceID, memoID string) *record {
	a := t.newApp(objCreditMemoApps, s, m.str(cm.account))
	a.set(ca.memo, m.id())
	if invoiceID != "" {
		a.set(ca.invoice, invoiceID)
	}
	if memoID != "" {
		a.set(ca.debitMemo, memoID)
	}
	a.set(ca.amount, money(s.amount))
	t.tables[objCreditMemoApps].add(a)
	return a
}

// addRefundApp records what a refund took from a payment or a credit memo.
func (t *Tenant) addRefundApp(s appSpec, r *record, paymentID, memoID string) *record {
	a := t.newApp(objRefundApps, s, r.str(ref.account))
	a.set(ra.refund, r.id())
	if paymentID != "" {
		a.set(ra.payment, paymentID)
	}
	if memoID != "" {
		a.set(ra.memo, memoID)
	}
	a.set(ra.amount, money(s.amount))
	t.tables[objRefundApps].add(a)
	return a
}

// placesOf returns the decimal places of a generated currency (2 when unknown).
func placesOf(code string) int32 {
	for _, c := range currencies {
		if c.code == code {
			return c.places
		}
	}
	return 2
}

// openAsNew gives a copied document the AR fields of one nothing was ever
// applied to, and its account the balance that follows (stamped now when it
// moves).
func (t *Tenant) openAsNew(object string, r *record, now string) {
	switch object {
	case objInvoices:
		r.set(inv.reversed, "false")
	case objCreditMemos:
		r.set(cm.reversed, "false")
	case objRefunds:
		if st := r.str(ref.sourceType); st == "Payment" || st == "CreditMemo" {
			r.set(ref.sourceType, "CreditBalance")
		}
		return
	case objPayments, objDebitMemos:
	default:
		return
	}
	t.recompute(object, r)
	if a := t.tables[objAccounts].byID[accountOf(object, r)]; a != nil && t.recompute(objAccounts, a) {
		a.set(fUpdatedDate, now)
	}
}
