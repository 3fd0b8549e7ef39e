package zuorasim

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/archeck"
)

// Runtime AR operations (docs/design.md "AR model"): each is what a Zuora
// user or API call does, runs under the tenant's lock (safe while serving),
// refuses what Zuora refuses without changing anything, keeps every invariant
// CheckAR checks, and moves the updatedDate of every record it changes (and of
// every record it creates) to the simulator's clock.

// Target is one document an application joins a payment or credit memo to.
type Target struct {
	ID     string // an invoice or debit memo id; "" is the account's credit balance
	Amount string // exact decimal, positive, in the document's currency
}

// Applied names the application records one operation created: one
// application group, one record per target, in target order.
type Applied struct {
	Group string
	IDs   []string
}

// Refunded names the refund and its refund application.
type Refunded struct {
	RefundID, ApplicationID string
}

// Reversed names the credit memo an invoice reversal created and its application.
type Reversed struct {
	MemoID  string
	Applied Applied
}

// OpError is an operation the simulated tenant refuses, as Zuora would; the
// tenant is left as it was.
type OpError struct {
	Op, ID string
	Reason string
}

func (e *OpError) Error() string { return fmt.Sprintf("%s %s: %s", e.Op, e.ID, e.Reason) }

// arWriter changes AR records of the served tenant and, at the end, derives
// the AR fields of every document it touched and stamps what changed.
type arWriter struct {
	s       *Sim
	t       *Tenant
	at      int64
	eff     string
	dirty   map[*record]string // documents whose AR fields must be derived again, by object
	touched map[*record]bool   // records changed directly
}

// arOp runs fn under the tenant's lock; fn validates everything before it
// changes anything, so an error leaves the tenant untouched.
func (s *Sim) arOp(fn func(w *arWriter) error) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version++ // any write may change what a cached sort holds
	w := &arWriter{s: s, t: s.data, at: now.Unix(), eff: now.In(s.loc).Format(time.DateOnly),
		dirty: map[*record]string{}, touched: map[*record]bool{}}
	if err := fn(w); err != nil {
		return err
	}
	w.finish()
	return nil
}

func (w *arWriter) id() string {
	w.s.seq++
	return newID(0x51a51a51a51a51a5, w.s.seq)
}

func (w *arWriter) spec(amount decimal.Decimal, group string) appSpec {
	return appSpec{id: w.id(), group: group, user: simUser, at: w.at, effective: w.eff, amount: amount}
}

func (w *arWriter) derive(object string, r *record) { w.dirty[r] = object }

func (w *arWriter) touch(r *record) { w.touched[r] = true }

// finish derives the touched documents' AR fields, then their accounts', and
// stamps every record that changed.
func (w *arWriter) finish() {
	accounts := map[string]bool{}
	for r, object := range w.dirty {
		if w.t.recompute(object, r) {
			w.touch(r)
		}
		accounts[accountOf(object, r)] = true
	}
	for r := range w.touched {
		for _, object := range []string{objInvoices, objDebitMemos, objCreditMemos, objPayments, objRefunds} {
			if w.t.tables[object].byID[r.id()] == r {
				accounts[accountOf(object, r)] = true
			}
		}
	}
	for id := range accounts {
		if a := w.t.tables[objAccounts].byID[id]; a != nil && w.t.recompute(objAccounts, a) {
			w.touch(a)
		}
	}
	for r := range w.touched {
		r.set(fUpdatedDate, fmt.Sprint(w.at))
		r.set(fUpdatedByID, simUser)
	}
}

func accountOf(object string, r *record) string {
	switch object {
	case objInvoices:
		return r.str(inv.account)
	case objDebitMemos:
		return r.str(dm.account)
	case objCreditMemos:
		return r.str(cm.account)
	case objPayments:
		return r.str(pay.account)
	case objRefunds:
		return r.str(ref.account)
	}
	return ""
}

// resolved is a validated target.
type resolved struct {
	object string // objInvoices, objDebitMemos, or "" for the credit balance
	r      *record
	amount decimal.Decimal
}

func (x resolved) invoiceID() string {
	if x.object == objInvoices {
		return x.r.id()
	}
	return ""
}

func (x resolved) memoID() string {
	if x.object == objDebitMemos {
		return x.r.id()
	}
	return ""
}

func (x resolved) key() string {
	if x.r == nil {
		return ""
	}
	return x.r.id()
}

// parseAmount reads a positive exact amount with at most the currency's places.
func parseAmount(op, id, text, currency string) (decimal.Decimal, error) {
	d, err := decimal.NewFromString(text)
	if err != nil {
		return d, &OpError{op, id, fmt.Sprintf("amount %q is not a decimal number", text)}
	}
	if !d.IsPositive() {
		return d, &OpError{op, id, fmt.Sprintf("amount %s must be positive", text)}
	}
	if places := placesOf(currency); !d.Round(places).Equal(d) {
		return d, &OpError{op, id, fmt.Sprintf("amount %s has more than the %d decimal places of %s", text, places, currency)}
	}
	return d, nil
}

// openTarget finds a posted invoice or debit memo of the account, or the
// credit balance for "", with what it still owes.
func (w *arWriter) openTarget(op, source, account, id string) (resolved, decimal.Decimal, error) {
	if id == "" {
		return resolved{}, decimal.Decimal{}, nil
	}
	if r := w.t.tables[objInvoices].byID[id]; r != nil {
		switch {
		case r.str(inv.account) != account:
			return resolved{}, decimal.Zero, &OpError{op, source, fmt.Sprintf("invoice %s belongs to another account", id)}
		case r.str(inv.status) != stPosted:
			return resolved{}, decimal.Zero, &OpError{op, source, fmt.Sprintf("invoice %s is %s, not Posted", id, r.str(inv.status))}
		}
		return resolved{object: objInvoices, r: r}, r.dec(inv.balance), nil
	}
	if r := w.t.tables[objDebitMemos].byID[id]; r != nil {
		switch {
		case r.str(dm.account) != account:
			return resolved{}, decimal.Zero, &OpError{op, source, fmt.Sprintf("debit memo %s belongs to another account", id)}
		case r.str(dm.status) != stPosted:
			return resolved{}, decimal.Zero, &OpError{op, source, fmt.Sprintf("debit memo %s is %s, not Posted", id, r.str(dm.status))}
		}
		return resolved{object: objDebitMemos, r: r}, r.dec(dm.balance), nil
	}
	return resolved{}, decimal.Zero, &OpError{op, source, fmt.Sprintf("%s is not an invoice or debit memo of this tenant", id)}
}

// applyTargets validates an apply: each target open on the account and owing
// at least its amount, the total within what the source still holds.
func (w *arWriter) applyTargets(op, source, account, currency string, holds decimal.Decimal, targets []Target) ([]resolved, error) {
	if len(targets) == 0 {
		return nil, &OpError{op, source, "no targets"}
	}
	seen := map[string]bool{}
	var total decimal.Decimal
	out := make([]resolved, 0, len(targets))
	for _, tg := range targets {
		if seen[tg.ID] {
			return nil, &OpError{op, source, fmt.Sprintf("target %q is named twice", tg.ID)}
		}
		seen[tg.ID] = true
		amount, err := parseAmount(op, source, tg.Amount, currency)
		if err != nil {
			return nil, err
		}
		x, owes, err := w.openTarget(op, source, account, tg.ID)
		if err != nil {
			return nil, err
		}
		if x.r != nil && amount.GreaterThan(owes) {
			return nil, &OpError{op, source, fmt.Sprintf("%s owes %s, less than %s", tg.ID, owes, amount)}
		}
		x.amount = amount
		total = total.Add(amount)
		out = append(out, x)
	}
	if total.GreaterThan(holds) {
		return nil, &OpError{op, source, fmt.Sprintf("%s to apply, but only %s is unapplied", total, holds)}
	}
	return out, nil
}

// unapplyTargets validates an unapply: each amount at most what the source's
// counting applications still apply to that target.
func (w *arWriter) unapplyTargets(op, source, currency string, apps []*record, amountAt, invoiceAt, memoAt int, counts func(*record) bool, targets []Target) ([]resolved, error) {
	if len(targets) == 0 {
		return nil, &OpError{op, source, "no targets"}
	}
	net, _ := netApplied(apps, amountAt, invoiceAt, memoAt, counts)
	seen := map[string]bool{}
	out := make([]resolved, 0, len(targets))
	for _, tg := range targets {
		if seen[tg.ID] {
			return nil, &OpError{op, source, fmt.Sprintf("target %q is named twice", tg.ID)}
		}
		seen[tg.ID] = true
		amount, err := parseAmount(op, source, tg.Amount, currency)
		if err != nil {
			return nil, err
		}
		if amount.GreaterThan(net[tg.ID]) {
			return nil, &OpError{op, source, fmt.Sprintf("only %s is applied to %s, less than %s", net[tg.ID], orCredit(tg.ID), amount)}
		}
		out = append(out, w.target(tg.ID, amount))
	}
	return out, nil
}

// netApplied sums, per target (an invoice or debit memo id, "" for the
// credit balance), what the counting applications apps apply, with the
// targets in the order the applications first name them.
func netApplied(apps []*record, amountAt, invoiceAt, memoAt int, counts func(*record) bool) (map[string]decimal.Decimal, []string) {
	net := map[string]decimal.Decimal{}
	var order []string
	for _, a := range apps {
		if !counts(a) {
			continue
		}
		k := a.str(invoiceAt) + a.str(memoAt)
		if _, ok := net[k]; !ok {
			order = append(order, k)
		}
		net[k] = net[k].Add(a.dec(amountAt))
	}
	return net, order
}

// target is amount to the invoice or debit memo id of the tenant (the credit
// balance when it is neither).
func (w *arWriter) target(id string, amount decimal.Decimal) resolved {
	x := resolved{amount: amount}
	if r := w.t.tables[objInvoices].byID[id]; r != nil {
		x.object, x.r = objInvoices, r
	} else if r := w.t.tables[objDebitMemos].byID[id]; r != nil {
		x.object, x.r = objDebitMemos, r
	}
	return x
}

func (w *arWriter) payment(op, id string) (*record, error) {
	p := w.t.tables[objPayments].byID[id]
	if p == nil {
		return nil, &OpError{op, id, "no such payment"}
	}
	if st := p.str(pay.status); st != stProcessed {
		return nil, &OpError{op, id, fmt.Sprintf("the payment is %s, not Processed", st)}
	}
	return p, nil
}

// reversalMemo reports whether m is the credit memo of an invoice reversal,
// which Zuora lets no one change.
func (w *arWriter) reversalMemo(m *record) bool {
	i := w.t.tables[objInvoices].byID[m.str(cm.invoice)]
	return i != nil && i.str(inv.reversed) == "true"
}

func (w *arWriter) creditMemo(op, id string) (*record, error) {
	m := w.t.tables[objCreditMemos].byID[id]
	if m == nil {
		return nil, &OpError{op, id, "no such credit memo"}
	}
	if st := m.str(cm.status); st != stPosted {
		return nil, &OpError{op, id, fmt.Sprintf("the credit memo is %s, not Posted", st)}
	}
	if w.reversalMemo(m) {
		return nil, &OpError{op, id, "the credit memo of an invoice reversal cannot be changed"}
	}
	return m, nil
}

func (w *arWriter) addPaymentApps(p *record, targets []resolved, sign int64) Applied {
	out := Applied{Group: w.id()}
	for _, x := range targets {
		owner := p.str(pay.account)
		a := w.t.addPaymentApp(w.spec(x.amount.Mul(decimal.NewFromInt(sign)), out.Group), p, x.invoiceID(), x.memoID(), owner, stProcessed)
		out.IDs = append(out.IDs, a.id())
		if x.r != nil {
			w.derive(x.object, x.r)
		}
	}
	w.derive(objPayments, p)
	return out
}

func (w *arWriter) addCreditMemoApps(m *record, targets []resolved, sign int64) Applied {
	out := Applied{Group: w.id()}
	for _, x := range targets {
		a := w.t.addCreditMemoApp(w.spec(x.amount.Mul(decimal.NewFromInt(sign)), out.Group), m, x.invoiceID(), x.memoID())
		out.IDs = append(out.IDs, a.id())
		if x.r != nil {
			w.derive(x.object, x.r)
		}
	}
	w.derive(objCreditMemos, m)
	return out
}

// CreatePayment records a processed external payment of amount on the
// account, effective today, and applies it to the targets (none leaves it
// wholly unapplied). It returns the payment's id.
func (s *Sim) CreatePayment(accountID, amount string, targets ...Target) (string, Applied, error) {
	var id string
	var out Applied
	err := s.arOp(func(w *arWriter) error {
		const op = "create payment"
		a := w.t.tables[objAccounts].byID[accountID]
		if a == nil {
			return &OpError{op, accountID, "no such account"}
		}
		currency := a.str(acc.currency)
		d, err := parseAmount(op, accountID, amount, currency)
		if err != nil {
			return err
		}
		var resolvedTargets []resolved
		if len(targets) > 0 {
			if resolvedTargets, err = w.applyTargets(op, accountID, accountID, currency, d, targets); err != nil {
				return err
			}
		}
		sch := schemas[objPayments]
		p := newRecord(sch)
		id = w.id()
		p.set(fID, id)
		p.set(fCreatedByID, simUser)
		p.set(fCreatedDate, fmt.Sprint(w.at))
		setAll(p, sch, "accountId", accountID, "paymentNumber", fmt.Sprintf("P-S%08d", w.s.seq), "effectiveDate", w.eff,
			"amount", money(d), "appliedAmount", "0", "unappliedAmount", money(d), "refundAmount", "0",
			"currency", currency, "status", stProcessed, "type", "External", "gatewayState", "Settled",
			"source", "API", "submittedOn", fmt.Sprint(w.at), "settledOn", fmt.Sprint(w.at))
		w.t.tables[objPayments].add(p)
		w.touch(p)
		if len(resolvedTargets) > 0 {
			out = w.addPaymentApps(p, resolvedTargets, 1)
		}
		return nil
	})
	return id, out, err
}

// appSource is what applying, unapplying and refunding need of one kind of
// source, a payment or a credit memo: how to find it, its fields, and its
// applications.
type appSource struct {
	what                             string // "payment", "credit memo": names the operation
	find                             func(w *arWriter, op, id string) (*record, error)
	account, currency, holds         int    // the source's fields; holds is what it can still apply or refund
	holdsTooLittle                   string // why a refund beyond holds is refused: holds, amount
	refundType                       string // the refund's sourceType
	apps                             string // the applications' object
	appSource, amount, invoice, memo int    // the applications' fields
	counts                           func(*record) bool
	add                              func(w *arWriter, r *record, targets []resolved, sign int64) Applied
}

// paymentSource is a processed payment as a source (a function: the field
// positions are resolved at init).
func paymentSource() appSource {
	return appSource{what: "payment", find: (*arWriter).payment,
		account: pay.account, currency: pay.currency, holds: pay.unapplied,
		holdsTooLittle: "only %s is unapplied, less than %s", refundType: "Payment",
		apps: objPaymentApps, appSource: pa.payment, amount: pa.amount, invoice: pa.invoice, memo: pa.debitMemo,
		counts: paymentAppCounts, add: (*arWriter).addPaymentApps}
}

// creditMemoSource is a posted credit memo as a source.
func creditMemoSource() appSource {
	return appSource{what: "credit memo", find: (*arWriter).creditMemo,
		account: cm.account, currency: cm.currency, holds: cm.balance,
		holdsTooLittle: "the balance is %s, less than %s", refundType: "CreditMemo",
		apps: objCreditMemoApps, appSource: ca.memo, amount: ca.amount, invoice: ca.invoice, memo: ca.debitMemo,
		counts: func(*record) bool { return true }, add: (*arWriter).addCreditMemoApps}
}

// ApplyPayment applies a processed payment's unapplied amount to invoices and
// debit memos of its account (or, with an empty id, to its credit balance) in
// one application group.
func (s *Sim) ApplyPayment(paymentID string, targets ...Target) (Applied, error) {
	return s.apply(paymentSource(), paymentID, targets)
}

// UnapplyPayment takes back what a payment applied to the targets: a new
// application record per target ("Invoice Reversal (Payment Application)"),
// negative unless Options.UnapplyPositiveAmounts, in one new group.
func (s *Sim) UnapplyPayment(paymentID string, targets ...Target) (Applied, error) {
	return s.unapply(paymentSource(), paymentID, targets)
}

// ApplyCreditMemo applies a posted credit memo's balance to invoices and
// debit memos of its account (or its credit balance) in one group.
func (s *Sim) ApplyCreditMemo(memoID string, targets ...Target) (Applied, error) {
	return s.apply(creditMemoSource(), memoID, targets)
}

// UnapplyCreditMemo takes back what a credit memo applied to the targets, a
// new record per target as UnapplyPayment does.
func (s *Sim) UnapplyCreditMemo(memoID string, targets ...Target) (Applied, error) {
	return s.unapply(creditMemoSource(), memoID, targets)
}

// apply applies what the source id still holds to the targets in one group.
func (s *Sim) apply(src appSource, id string, targets []Target) (Applied, error) {
	var out Applied
	err := s.arOp(func(w *arWriter) error {
		op := "apply " + src.what
		r, err := src.find(w, op, id)
		if err != nil {
			return err
		}
		x, err := w.applyTargets(op, id, r.str(src.account), r.str(src.currency), r.dec(src.holds), targets)
		if err != nil {
			return err
		}
		out = src.add(w, r, x, 1)
		return nil
	})
	return out, err
}

// unapply takes back what the source id applied to the targets, in one new group.
func (s *Sim) unapply(src appSource, id string, targets []Target) (Applied, error) {
	var out Applied
	err := s.arOp(func(w *arWriter) error {
		op := "unapply " + src.what
		r, err := src.find(w, op, id)
		if err != nil {
			return err
		}
		apps := w.t.tables[src.apps].lookupFK(src.appSource, id)
		x, err := w.unapplyTargets(op, id, r.str(src.currency), apps, src.amount, src.invoice, src.memo, src.counts, targets)
		if err != nil {
			return err
		}
		out = src.add(w, r, x, -1)
		return nil
	})
	return out, err
}

// newRefund records a processed external refund and its refund application.
func (w *arWriter) newRefund(source *record, account, currency, sourceType string, amount decimal.Decimal) Refunded {
	sch := schemas[objRefunds]
	r := newRecord(sch)
	r.set(fID, w.id())
	r.set(fCreatedByID, simUser)
	r.set(fCreatedDate, fmt.Sprint(w.at))
	setAll(r, sch, "accountId", account, "refundNumber", fmt.Sprintf("R-S%08d", w.s.seq), "refundDate", w.eff,
		"refundTransactionTime", fmt.Sprint(w.at), "amount", money(amount), "currency", currency, "status", stProcessed,
		"type", "External", "sourceType", sourceType, "methodType", "Other", "reasonCode", "Standard Refund")
	w.t.tables[objRefunds].add(r)
	w.touch(r)
	var a *record
	if sourceType == "Payment" {
		a = w.t.addRefundApp(w.spec(amount, w.id()), r, source.id(), "")
		w.derive(objPayments, source)
	} else {
		a = w.t.addRefundApp(w.spec(amount, w.id()), r, "", source.id())
		w.derive(objCreditMemos, source)
	}
	return Refunded{RefundID: r.id(), ApplicationID: a.id()}
}

// RefundPayment refunds part of a processed payment's unapplied amount: a
// refund (sourceType Payment) and its refund application.
func (s *Sim) RefundPayment(paymentID, amount string) (Refunded, error) {
	return s.refund(paymentSource(), paymentID, amount)
}

// RefundCreditMemo refunds part of a posted credit memo's balance: a refund
// (sourceType CreditMemo) and its refund application.
func (s *Sim) RefundCreditMemo(memoID, amount string) (Refunded, error) {
	return s.refund(creditMemoSource(), memoID, amount)
}

// refund refunds amount, at most what the source id still holds.
func (s *Sim) refund(src appSource, id, amount string) (Refunded, error) {
	var out Refunded
	err := s.arOp(func(w *arWriter) error {
		op := "refund " + src.what
		r, err := src.find(w, op, id)
		if err != nil {
			return err
		}
		d, err := parseAmount(op, id, amount, r.str(src.currency))
		if err != nil {
			return err
		}
		if d.GreaterThan(r.dec(src.holds)) {
			return &OpError{op, id, fmt.Sprintf(src.holdsTooLittle, r.dec(src.holds), d)}
		}
		out = w.newRefund(r, r.str(src.account), r.str(src.currency), src.refundType, d)
		return nil
	})
	return out, err
}

// CancelPayment cancels a processed payment: status Canceled, and what it
// applied goes back to the documents it paid. Its applications turn
// Cancelled, or with Options.CancelAddsReversals stay and get one reversing
// row per document in a new group. A payment with refunds, or with an amount
// on the credit balance, is refused.
func (s *Sim) CancelPayment(paymentID string) error {
	return s.arOp(func(w *arWriter) error {
		const op = "cancel payment"
		p, err := w.payment(op, paymentID)
		if err != nil {
			return err
		}
		if !p.dec(pay.refunded).IsZero() {
			return &OpError{op, paymentID, fmt.Sprintf("the payment has %s refunded; cancel its refunds first", p.dec(pay.refunded))}
		}
		apps := w.t.tables[objPaymentApps].lookupFK(pa.payment, paymentID)
		net, order := netApplied(apps, pa.amount, pa.invoice, pa.debitMemo, paymentAppCounts)
		if !net[""].IsZero() {
			return &OpError{op, paymentID, "an overpayment applied to the credit balance cannot be canceled"}
		}
		p.set(pay.status, stCanceled)
		p.set(pay.cancelledOn, fmt.Sprint(w.at))
		w.touch(p)
		w.derive(objPayments, p)
		if w.s.opts.CancelAddsReversals {
			w.reversePaymentApps(p, net, order)
		} else {
			w.cancelPaymentApps(apps, order)
		}
		return nil
	})
}

// cancelPaymentApps turns a canceled payment's counting applications
// Cancelled and derives the documents they paid again.
func (w *arWriter) cancelPaymentApps(apps []*record, order []string) {
	for _, a := range apps {
		if paymentAppCounts(a) {
			a.set(pa.status, stCancelled)
			w.touch(a)
		}
	}
	for _, k := range order {
		w.deriveTarget(k)
	}
}

// reversePaymentApps gives a canceled payment one reversing application per
// document it still applies to (net, in order), in a new group.
func (w *arWriter) reversePaymentApps(p *record, net map[string]decimal.Decimal, order []string) {
	var reverse []resolved
	for _, k := range order {
		if !net[k].IsZero() {
			reverse = append(reverse, w.target(k, net[k]))
		}
	}
	if len(reverse) > 0 {
		w.addPaymentApps(p, reverse, -1)
	}
}

// deriveTarget derives again the invoice or debit memo id.
func (w *arWriter) deriveTarget(id string) {
	if x := w.target(id, decimal.Decimal{}); x.r != nil {
		w.derive(x.object, x.r)
	}
}

// CancelRefund cancels a processed refund: status Canceled, and its amount
// goes back to the payment or credit memo it came from. Its refund
// applications stay as they were, or with Options.CancelAddsReversals get a
// reversing row each in a new group. A refund of the credit balance is refused.
func (s *Sim) CancelRefund(refundID string) error {
	return s.arOp(func(w *arWriter) error {
		const op = "cancel refund"
		r := w.t.tables[objRefunds].byID[refundID]
		switch {
		case r == nil:
			return &OpError{op, refundID, "no such refund"}
		case r.str(ref.status) != stProcessed:
			return &OpError{op, refundID, fmt.Sprintf("the refund is %s, not Processed", r.str(ref.status))}
		case r.str(ref.sourceType) == "CreditBalance":
			return &OpError{op, refundID, "a refund applied to the credit balance cannot be canceled"}
		}
		r.set(ref.status, stCanceled)
		w.touch(r)
		apps := w.t.tables[objRefundApps].lookupFK(ra.refund, refundID)
		group := ""
		for _, a := range apps {
			if p := w.t.tables[objPayments].byID[a.str(ra.payment)]; p != nil {
				w.derive(objPayments, p)
			}
			if m := w.t.tables[objCreditMemos].byID[a.str(ra.memo)]; m != nil {
				w.derive(objCreditMemos, m)
			}
		}
		if w.s.opts.CancelAddsReversals {
			for _, a := range apps {
				if group == "" {
					group = w.id()
				}
				w.t.addRefundApp(w.spec(a.dec(ra.amount).Neg(), group), r, a.str(ra.payment), a.str(ra.memo))
			}
		}
		return nil
	})
}

// UnpostMemo takes a posted credit or debit memo back to Draft. Zuora refuses
// a credit memo that is applied or refunded and a debit memo anything was
// applied to; the credit memo of an invoice reversal cannot be changed.
func (s *Sim) UnpostMemo(memoID string) error {
	return s.arOp(func(w *arWriter) error {
		const op = "unpost memo"
		if m := w.t.tables[objCreditMemos].byID[memoID]; m != nil {
			switch {
			case m.str(cm.status) != stPosted:
				return &OpError{op, memoID, fmt.Sprintf("the credit memo is %s, not Posted", m.str(cm.status))}
			case !m.dec(cm.applied).IsZero() || !m.dec(cm.refunded).IsZero():
				return &OpError{op, memoID, "a credit memo that is applied or refunded cannot be unposted"}
			case w.reversalMemo(m):
				return &OpError{op, memoID, "the credit memo of an invoice reversal cannot be changed"}
			}
			m.set(cm.status, stDraft)
			m.setNull(cm.posted)
			m.setNull(cm.postedBy)
			w.touch(m)
			return nil
		}
		if d := w.t.tables[objDebitMemos].byID[memoID]; d != nil {
			switch {
			case d.str(dm.status) != stPosted:
				return &OpError{op, memoID, fmt.Sprintf("the debit memo is %s, not Posted", d.str(dm.status))}
			case !d.dec(dm.balance).Equal(d.dec(dm.total)):
				return &OpError{op, memoID, "a debit memo something is applied to cannot be unposted"}
			}
			d.set(dm.status, stDraft)
			d.setNull(dm.posted)
			d.setNull(dm.postedBy)
			w.touch(d)
			return nil
		}
		return &OpError{op, memoID, "no such credit or debit memo"}
	})
}

// PostMemo posts a draft credit or debit memo.
func (s *Sim) PostMemo(memoID string) error {
	return s.arOp(func(w *arWriter) error {
		const op = "post memo"
		m, status, posted, postedBy := w.t.tables[objCreditMemos].byID[memoID], cm.status, cm.posted, cm.postedBy
		if m == nil {
			m, status, posted, postedBy = w.t.tables[objDebitMemos].byID[memoID], dm.status, dm.posted, dm.postedBy
		}
		if m == nil {
			return &OpError{op, memoID, "no such credit or debit memo"}
		}
		if st := m.str(status); st != stDraft {
			return &OpError{op, memoID, fmt.Sprintf("the memo is %s, not Draft", st)}
		}
		m.set(status, stPosted)
		m.set(posted, fmt.Sprint(w.at))
		m.set(postedBy, simUser)
		w.touch(m)
		return nil
	})
}

// UnpostInvoice takes a posted invoice back to Draft. Zuora refuses an
// invoice with payments or credit memos applied and a reversed one; with
// Options.ZuoraFinance also one whose TransferredToAccounting is Yes.
func (s *Sim) UnpostInvoice(invoiceID string) error {
	return s.arOp(func(w *arWriter) error {
		const op = "unpost invoice"
		i := w.t.tables[objInvoices].byID[invoiceID]
		switch {
		case i == nil:
			return &OpError{op, invoiceID, "no such invoice"}
		case i.str(inv.status) != stPosted:
			return &OpError{op, invoiceID, fmt.Sprintf("the invoice is %s, not Posted", i.str(inv.status))}
		case i.str(inv.reversed) == "true":
			return &OpError{op, invoiceID, "a reversed invoice cannot be changed"}
		case !i.dec(inv.paid).IsZero() || !i.dec(inv.credited).IsZero():
			return &OpError{op, invoiceID, "an invoice with payments or credit memos applied cannot be unposted"}
		case w.s.opts.ZuoraFinance && i.str(inv.transferred) == "Yes":
			return &OpError{op, invoiceID, "The Invoice has been transferred to accounting and cannot be unposted."}
		}
		i.set(inv.status, stDraft)
		i.setNull(inv.posted)
		i.setNull(inv.postedBy)
		w.touch(i)
		w.derive(objInvoices, i)
		return nil
	})
}

// PostInvoice posts a draft invoice.
func (s *Sim) PostInvoice(invoiceID string) error {
	return s.arOp(func(w *arWriter) error {
		const op = "post invoice"
		i := w.t.tables[objInvoices].byID[invoiceID]
		if i == nil {
			return &OpError{op, invoiceID, "no such invoice"}
		}
		if st := i.str(inv.status); st != stDraft {
			return &OpError{op, invoiceID, fmt.Sprintf("the invoice is %s, not Draft", st)}
		}
		i.set(inv.status, stPosted)
		i.set(inv.posted, fmt.Sprint(w.at))
		i.set(inv.postedBy, simUser)
		w.touch(i)
		w.derive(objInvoices, i)
		return nil
	})
}

// ReverseInvoice reverses a posted invoice as Zuora's PUT /v1/invoices/{key}/reverse
// does: a credit memo mirroring its items (reasonCode "Invoice reversal",
// sourceType Options.ReversalMemoSourceType or Invoice) is created, posted and
// applied to it at once; the invoice stays Posted with reversed = true and
// balance 0. Refused, as Zuora documents, for an invoice not Posted, negative,
// with payments or credit memos applied, with memos made from it, or reversed.
func (s *Sim) ReverseInvoice(invoiceID string) (Reversed, error) {
	var out Reversed
	err := s.arOp(func(w *arWriter) error {
		const op = "reverse invoice"
		i := w.t.tables[objInvoices].byID[invoiceID]
		switch {
		case i == nil:
			return &OpError{op, invoiceID, "no such invoice"}
		case i.str(inv.status) != stPosted:
			return &OpError{op, invoiceID, fmt.Sprintf("the invoice is %s, not Posted", i.str(inv.status))}
		case i.str(inv.reversed) == "true":
			return &OpError{op, invoiceID, "the invoice is reversed already"}
		case !i.dec(inv.amount).IsPositive():
			return &OpError{op, invoiceID, "an invoice whose amount is not positive cannot be reversed here"}
		case !i.dec(inv.paid).IsZero() || !i.dec(inv.credited).IsZero():
			return &OpError{op, invoiceID, "payments and credit memos are applied to the invoice"}
		}
		for _, o := range []string{objCreditMemos, objDebitMemos} {
			tb := w.t.tables[o]
			for _, m := range tb.recs {
				if m.str(tb.sch.pos("invoiceId")) == invoiceID && m.str(tb.sch.pos("status")) != stCanceled {
					return &OpError{op, invoiceID, fmt.Sprintf("%s %s made from the invoice is not canceled", o, m.id())}
				}
			}
		}
		m := w.newReversalMemo(i)
		i.set(inv.reversed, "true")
		w.touch(i)
		out.MemoID = m.id()
		out.Applied = w.addCreditMemoApps(m, []resolved{{object: objInvoices, r: i, amount: i.dec(inv.amount)}}, 1)
		return nil
	})
	return out, err
}

// newReversalMemo creates the posted credit memo of an invoice reversal, its
// items mirroring the invoice's.
func (w *arWriter) newReversalMemo(i *record) *record {
	sch, isch := schemas[objCreditMemos], schemas[objInvoices]
	m := newRecord(sch)
	m.set(fID, w.id())
	m.set(fCreatedByID, simUser)
	m.set(fCreatedDate, fmt.Sprint(w.at))
	sourceType := w.s.opts.ReversalMemoSourceType
	if sourceType == "" {
		sourceType = "Invoice"
	}
	get := func(name string) string { return i.str(isch.pos(name)) }
	setAll(m, sch, "accountId", get("accountId"), "invoiceId", i.id(), "memoNumber", fmt.Sprintf("CMR%08d", w.s.seq),
		"memoDate", w.eff, "totalAmount", get("amount"), "totalAmountWithoutTax", get("amountWithoutTax"),
		"taxAmount", get("taxAmount"), "totalTaxExemptAmount", "0", "discountAmount", "0", "balance", get("amount"),
		"appliedAmount", "0", "refundAmount", "0", "currency", get("currency"), "status", stPosted,
		"postedOn", fmt.Sprint(w.at), "postedById", simUser, "reasonCode", "Invoice reversal",
		"source", "AdhocFromInvoice", "sourceType", sourceType, "reversed", "false", "revenueImpacting", "Yes")
	w.t.tables[objCreditMemos].add(m)
	w.touch(m)
	items, ms := w.t.tables[objInvoiceItems], schemas[objCreditMemoItems]
	is := items.sch
	for _, it := range items.lookupFK(is.pos("invoiceId"), i.id()) {
		g := func(name string) string { return it.str(is.pos(name)) }
		c := newRecord(ms)
		c.set(fID, w.id())
		c.set(fCreatedByID, simUser)
		c.set(fCreatedDate, fmt.Sprint(w.at))
		c.set(fUpdatedByID, simUser)
		c.set(fUpdatedDate, fmt.Sprint(w.at))
		total := it.dec(is.pos("chargeAmount")).Add(it.dec(is.pos("taxAmount")))
		setAll(c, ms, "creditMemoId", m.id(), "amount", g("chargeAmount"), "amountWithoutTax", g("chargeAmount"),
			"taxAmount", g("taxAmount"), "unappliedAmount", "0", "appliedToOthersAmount", money(total),
			"quantity", g("quantity"), "unitPrice", g("unitPrice"), "unitOfMeasure", g("uOM"), "sku", g("sKU"),
			"chargeName", g("chargeName"), "chargeNumber", g("chargeNumber"), "chargeDate", g("chargeDate"),
			"serviceStartDate", g("serviceStartDate"), "serviceEndDate", g("serviceEndDate"),
			"invoiceItemId", it.id(), "creditFromItemId", it.id(), "creditFromItemSource", "InvoiceItem",
			"sourceItemType", "InvoiceDetail", "subscriptionId", g("subscriptionId"), "subscriptionNumber", g("subscriptionNumber"),
			"ratePlanChargeId", g("ratePlanChargeId"), "taxMode", g("taxMode"), "accountingCode", g("accountingCode"),
			"excludeItemBillingFromRevenueAccounting", "false")
		for k := range ms.fields {
			if v, ok := c.get(k); ok && v == "" {
				c.setNull(k)
			}
		}
		w.t.tables[objCreditMemoItems].add(c)
	}
	return m
}

// transferredValues are the values TransferredToAccounting takes; null reads as No.
var transferredValues = map[string]bool{"Processing": true, "Yes": true, "No": true, "Error": true, "Ignore": true}

// SetTransferred sets a document's TransferredToAccounting as a user would
// ("" makes it null, which reads as No); a value outside the field's enum is refused.
func (s *Sim) SetTransferred(id, value string) error {
	return s.arOp(func(w *arWriter) error {
		const op = "set TransferredToAccounting"
		if value != "" && !transferredValues[value] {
			return &OpError{op, id, fmt.Sprintf("%q is not one of Processing, Yes, No, Error, Ignore", value)}
		}
		for _, o := range []string{objInvoices, objPayments, objRefunds, objCreditMemos, objDebitMemos} {
			tb := w.t.tables[o]
			r := tb.byID[id]
			if r == nil {
				continue
			}
			p := tb.sch.pos("transferredToAccounting")
			if value == "" {
				r.setNull(p)
			} else {
				r.set(p, value)
			}
			w.touch(r)
			return nil
		}
		return &OpError{op, id, "no such document"}
	})
}

// CheckAR verifies every AR invariant of the tenant as it is now.
func (s *Sim) CheckAR() []Violation {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return checkAR(s.data)
}

// ARDocuments lists every document with the open balance its own fields give
// (invoice and memo balance, payment unappliedAmount; a refund's amount less
// its counting refund applications), for the AR-parity oracle.
func (s *Sim) ARDocuments() []archeck.ZuoraDoc {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.data
	var out []archeck.ZuoraDoc
	add := func(object, docType string, number, account, currency, status int, open func(*record) decimal.Decimal) {
		for _, r := range t.tables[object].recs {
			out = append(out, archeck.ZuoraDoc{ZuoraID: r.id(), DocType: docType, Number: r.str(number),
				Account: r.str(account), Currency: r.str(currency), Status: r.str(status), Open: open(r)})
		}
	}
	add(objInvoices, "invoice", inv.number, inv.account, inv.currency, inv.status, func(r *record) decimal.Decimal { return r.dec(inv.balance) })
	add(objDebitMemos, "debit_memo", dm.number, dm.account, dm.currency, dm.status, func(r *record) decimal.Decimal { return r.dec(dm.balance) })
	add(objCreditMemos, "credit_memo", cm.number, cm.account, cm.currency, cm.status, func(r *record) decimal.Decimal { return r.dec(cm.balance) })
	add(objPayments, "payment", pay.number, pay.account, pay.currency, pay.status, func(r *record) decimal.Decimal { return r.dec(pay.unapplied) })
	add(objRefunds, "refund", ref.number, ref.account, ref.currency, ref.status, func(r *record) decimal.Decimal {
		open := r.dec(ref.amount)
		for _, a := range t.tables[objRefundApps].lookupFK(ra.refund, r.id()) {
			if t.refundAppCounts(a) {
				open = open.Sub(a.dec(ra.amount))
			}
		}
		return open
	})
	return out
}
