package zuorasim

import (
	"fmt"
	"math/rand/v2"

	"github.com/shopspring/decimal"
)

// The generator's AR pass: it runs after every document is made, draws from
// its own random stream and its own ids, and derives application records from
// what the documents already say (a processed payment's appliedAmount, a credit
// memo's invoice, a refund's source). Only the AR fields of docs/design.md "AR
// model" are then derived from the applications, and a document an application
// changes is last updated no earlier than that application (bump), as in
// Zuora; every other field of every document stays exactly as the document
// pass wrote it.

// arStream seeds the AR pass's random stream, apart from the documents' one.
const arStream = 0xa11ca7e5a11ca7e5

// openDoc is a posted invoice or debit memo that applications may still pay.
type openDoc struct {
	object string
	r      *record
	left   decimal.Decimal
}

func (o *openDoc) invoiceID() string {
	if o.object == objInvoices {
		return o.r.id()
	}
	return ""
}

func (o *openDoc) memoID() string {
	if o.object == objDebitMemos {
		return o.r.id()
	}
	return ""
}

func (o *openDoc) account() string {
	if o.object == objInvoices {
		return o.r.str(inv.account)
	}
	return o.r.str(dm.account)
}

// arPass holds the state of the AR pass.
type arPass struct {
	g       *gen
	r       *rand.Rand
	targets map[string][]*openDoc      // by account, in generation order
	byID    map[string]*openDoc        // the same, by document id
	avail   map[string]decimal.Decimal // what a payment or credit memo can still give, by id
	pays    map[string][]*record       // processed payments by account
	memos   map[string][]*record       // posted credit memos by account
	applied map[string]decimal.Decimal // a payment's appliedAmount as the document pass drew it
}

func (g *gen) deriveAR(seed int64) {
	t := g.t
	p := &arPass{g: g, r: rand.New(rand.NewPCG(uint64(seed), arStream)),
		targets: map[string][]*openDoc{}, byID: map[string]*openDoc{}, avail: map[string]decimal.Decimal{},
		pays: map[string][]*record{}, memos: map[string][]*record{}, applied: map[string]decimal.Decimal{}}
	for _, r := range t.tables[objInvoices].recs {
		if r.str(inv.status) == stPosted && r.dec(inv.amount).IsPositive() {
			p.addTarget(&openDoc{object: objInvoices, r: r, left: r.dec(inv.amount)})
		}
	}
	for _, r := range t.tables[objDebitMemos].recs {
		if r.str(dm.status) == stPosted && r.dec(dm.total).IsPositive() {
			p.addTarget(&openDoc{object: objDebitMemos, r: r, left: r.dec(dm.total)})
		}
	}
	for _, r := range t.tables[objPayments].recs {
		p.applied[r.id()] = r.dec(pay.applied)
		if r.str(pay.status) == stProcessed {
			p.avail[r.id()] = r.dec(pay.amount)
			a := r.str(pay.account)
			p.pays[a] = append(p.pays[a], r)
		}
	}
	for _, r := range t.tables[objCreditMemos].recs {
		if r.str(cm.status) == stPosted {
			p.avail[r.id()] = r.dec(cm.total)
			a := r.str(cm.account)
			p.memos[a] = append(p.memos[a], r)
		}
	}
	p.refunds()
	p.creditMemos()
	p.payments()
	p.cancelledPayments()
	t.recomputeAll()
}

func (p *arPass) addTarget(o *openDoc) {
	a := o.account()
	p.targets[a] = append(p.targets[a], o)
	p.byID[o.r.id()] = o
}

func (p *arPass) pct(n int) bool { return p.r.IntN(100) < n }

// when picks one second for an operation joining these records: after each
// was created and, where the range allows, at or before each was last updated,
// so that no document needs a later updatedDate; otherwise a later second, and
// bump moves the documents' updatedDate to it.
func (p *arPass) when(recs ...*record) int64 {
	lo, latest := p.g.lo, p.g.hi-1
	for _, r := range recs {
		lo = max(lo, r.created())
		latest = min(latest, r.updated())
	}
	return p.between(lo, latest)
}

// between draws a second in [lo, hi]. When hi < lo (the documents were last
// updated before the last of them was created) it draws one of the tenant's
// shared bill-run seconds at or after lo, as a payment run would stamp its
// applications and the documents they change alike, else any second from lo to
// the range's end. It draws once from the pass's stream whatever the bounds,
// so which applications the pass makes does not depend on the dates.
func (p *arPass) between(lo, hi int64) int64 {
	if hi >= lo {
		return lo + p.r.Int64N(hi-lo+1)
	}
	var runs []int64
	for _, b := range p.g.bursts {
		if b >= lo {
			runs = append(runs, b)
		}
	}
	if len(runs) > 0 {
		return runs[p.r.IntN(len(runs))]
	}
	return lo + p.r.Int64N(p.g.hi-lo)
}

// bump makes each record last updated at or after at: an application changes
// the AR fields of the documents it joins (the source it draws from and the
// document it pays or refunds), and Zuora stamps every record it changes. at
// is inside the tenant's range, so the updatedDate stays inside it too.
func bump(at int64, recs ...*record) {
	for _, r := range recs {
		if r.updated() < at {
			r.set(fUpdatedDate, fmt.Sprint(at))
		}
	}
}

func (p *arPass) spec(at int64, amount decimal.Decimal, group string) appSpec {
	return appSpec{id: p.g.id(), group: group, user: p.g.user, at: at, effective: date(at), amount: amount}
}

// refunds gives each processed refund of a payment or a credit memo a source
// on its account that can cover it; one that has none becomes a refund of the
// credit balance.
func (p *arPass) refunds() {
	t := p.g.t
	for _, r := range t.tables[objRefunds].recs {
		st := r.str(ref.sourceType)
		if r.str(ref.status) != stProcessed || st == "CreditBalance" {
			continue
		}
		amount, acct := r.dec(ref.amount), r.str(ref.account)
		kinds := []string{st, "Payment"}
		if st == "Payment" {
			kinds[1] = "CreditMemo"
		}
		done := false
		for _, kind := range kinds {
			src := p.refundSource(kind, acct, amount)
			if src == nil {
				continue
			}
			at := p.when(r, src)
			bump(at, r, src)
			if kind == "Payment" {
				t.addRefundApp(p.spec(at, amount, p.g.id()), r, src.id(), "")
			} else {
				t.addRefundApp(p.spec(at, amount, p.g.id()), r, "", src.id())
			}
			p.avail[src.id()] = p.avail[src.id()].Sub(amount)
			if kind != st {
				r.set(ref.sourceType, kind)
			}
			done = true
			break
		}
		if !done {
			r.set(ref.sourceType, "CreditBalance")
		}
	}
}

// refundSource picks a payment (preferring one the document pass left
// unapplied) or a credit memo of the account that can still give amount.
func (p *arPass) refundSource(kind, acct string, amount decimal.Decimal) *record {
	pool := p.memos[acct]
	if kind == "Payment" {
		pool = p.pays[acct]
	}
	var fits, preferred []*record
	for _, r := range pool {
		if p.avail[r.id()].GreaterThanOrEqual(amount) {
			fits = append(fits, r)
			if kind == "Payment" && p.applied[r.id()].IsZero() {
				preferred = append(preferred, r)
			}
		}
	}
	if len(preferred) > 0 {
		fits = preferred
	}
	if len(fits) == 0 {
		return nil
	}
	return fits[p.r.IntN(len(fits))]
}

// creditMemos applies most posted credit memos, fully or in part, to the
// invoice they were made from or to another open document of their account.
func (p *arPass) creditMemos() {
	t := p.g.t
	for _, m := range t.tables[objCreditMemos].recs {
		left := p.avail[m.id()]
		if m.str(cm.status) != stPosted || !left.IsPositive() || !p.pct(60) {
			continue
		}
		target := p.byID[m.str(cm.invoice)]
		if target == nil || !target.left.IsPositive() {
			target = p.anyOpen(m.str(cm.account))
		}
		if target == nil {
			continue
		}
		amount := decimal.Min(left, target.left)
		if p.pct(30) {
			if half := amount.Div(decimal.NewFromInt(2)).Round(placesOf(m.str(cm.currency))); half.IsPositive() {
				amount = half
			}
		}
		at := p.when(m, target.r)
		bump(at, m, target.r)
		t.addCreditMemoApp(p.spec(at, amount, p.g.id()), m, target.invoiceID(), target.memoID())
		p.avail[m.id()] = left.Sub(amount)
		target.left = target.left.Sub(amount)
	}
}

func (p *arPass) anyOpen(acct string) *openDoc {
	var open []*openDoc
	for _, o := range p.targets[acct] {
		if o.left.IsPositive() {
			open = append(open, o)
		}
	}
	if len(open) == 0 {
		return nil
	}
	return open[p.r.IntN(len(open))]
}

// payments spreads each processed payment's appliedAmount (less what a refund
// took) over open documents of its account in one application group, the rest
// to the credit balance; about one payment in ten then moves part of its first
// application to another document (an unapply and an apply).
func (p *arPass) payments() {
	t := p.g.t
	for _, r := range t.tables[objPayments].recs {
		if r.str(pay.status) != stProcessed {
			continue
		}
		want := decimal.Min(p.applied[r.id()], p.avail[r.id()])
		if !want.IsPositive() {
			continue
		}
		acct := r.str(pay.account)
		var chosen []*openDoc
		remaining := want
		for _, o := range p.targets[acct] {
			if remaining.IsZero() || len(chosen) == 3 {
				break
			}
			if o.left.IsPositive() {
				chosen = append(chosen, o)
				remaining = remaining.Sub(decimal.Min(remaining, o.left))
			}
		}
		recs := []*record{r}
		for _, o := range chosen {
			recs = append(recs, o.r)
		}
		at, group := p.when(recs...), p.g.id()
		bump(at, recs...)
		remaining = want
		var first *openDoc
		var firstAmount decimal.Decimal
		for _, o := range chosen {
			amount := decimal.Min(remaining, o.left)
			t.addPaymentApp(p.spec(at, amount, group), r, o.invoiceID(), o.memoID(), acct, stProcessed)
			o.left, remaining = o.left.Sub(amount), remaining.Sub(amount)
			if first == nil {
				first, firstAmount = o, amount
			}
		}
		if remaining.IsPositive() {
			t.addPaymentApp(p.spec(at, remaining, group), r, "", "", acct, stProcessed)
		}
		p.avail[r.id()] = p.avail[r.id()].Sub(want)
		if first != nil && p.pct(10) {
			p.move(r, first, firstAmount, at)
		}
	}
}

// move unapplies part of a payment's application from one document and
// applies it to another open document of the account, in two later groups:
// the unapply after the application, the apply after it and after the other
// document was created; each bumps the documents it changes.
func (p *arPass) move(r *record, from *openDoc, applied decimal.Decimal, after int64) {
	amount := applied.Div(decimal.NewFromInt(2)).Round(placesOf(r.str(pay.currency)))
	if !amount.IsPositive() {
		return
	}
	var to *openDoc
	for _, o := range p.targets[r.str(pay.account)] {
		if o != from && o.left.GreaterThanOrEqual(amount) {
			to = o
			break
		}
	}
	if to == nil {
		return
	}
	t, acct := p.g.t, r.str(pay.account)
	at1 := after + p.r.Int64N(p.g.hi-after)
	lo2 := max(at1, to.r.created())
	at2 := lo2 + p.r.Int64N(p.g.hi-lo2)
	bump(at1, r, from.r)
	bump(at2, r, to.r)
	t.addPaymentApp(p.spec(at1, amount.Neg(), p.g.id()), r, from.invoiceID(), from.memoID(), acct, stProcessed)
	t.addPaymentApp(p.spec(at2, amount, p.g.id()), r, to.invoiceID(), to.memoID(), acct, stProcessed)
	from.left, to.left = from.left.Add(amount), to.left.Sub(amount)
}

// cancelledPayments gives half of the canceled payments the applications they
// had before they were canceled, now Cancelled: they move no balance. Each was
// created before the cancellation where its document allows (after both were
// created), and was last updated by the cancellation, as were its documents.
func (p *arPass) cancelledPayments() {
	t := p.g.t
	for _, r := range t.tables[objPayments].recs {
		if r.str(pay.status) != stCanceled || !p.pct(50) {
			continue
		}
		acct := r.str(pay.account)
		remaining := r.dec(pay.amount)
		var group string
		for _, o := range p.targets[acct] {
			if !remaining.IsPositive() {
				break
			}
			if !o.left.IsPositive() {
				continue
			}
			if group == "" {
				group = p.g.id()
			}
			amount := decimal.Min(remaining, o.left)
			lo, cancelled := max(r.created(), o.r.created()), r.updated()
			latest := cancelled
			if o.r.updated() >= lo {
				latest = min(latest, o.r.updated())
			}
			at := p.between(lo, latest)
			a := t.addPaymentApp(p.spec(at, amount, group), r, o.invoiceID(), o.memoID(), acct, stCancelled)
			a.set(fUpdatedDate, fmt.Sprint(max(at, cancelled)))
			bump(a.updated(), r, o.r)
			remaining = remaining.Sub(amount)
		}
	}
}

// widePayments adds, per knob unit, an account's worth of small posted
// invoices (more than 99 of them, one item each) and one processed payment
// applied to all of them in one application group, so the payment's
// paymentApplications expand is cut off at the page size.
func (g *gen) widePayments(seed int64) {
	if g.v.WidePayments <= 0 {
		return
	}
	r := rand.New(rand.NewPCG(uint64(seed), arStream^0xffff))
	t := g.t
	invNum, payNum := g.v.Invoices, g.v.Payments
	for w := range g.v.WidePayments {
		a := g.accts[w%len(g.accts)]
		n := 100 + r.IntN(50)
		at := g.lo + r.Int64N(g.hi-g.lo)
		var total decimal.Decimal
		invoices := make([]*record, 0, n)
		for range n {
			invNum++
			amount := decimal.New(1+r.Int64N(500*pow10(a.cur.places)), -a.cur.places)
			total = total.Add(amount)
			ir, is := g.rec(objInvoices, at, at)
			it, its := g.rec(objInvoiceItems, at, at)
			setAll(it, its, "invoiceId", ir.id(), "accountId", a.id, "chargeAmount", money(amount), "taxAmount", "0",
				"discountAmount", "0", "balance", "0", "quantity", "1", "unitPrice", money(amount), "uOM", "Each",
				"sKU", "SKU-SEAT", "chargeName", "Seats", "chargeNumber", fmt.Sprintf("C-W%07d", invNum),
				"chargeDate", fmt.Sprint(at), "serviceStartDate", date(at), "serviceEndDate", date(at+29*86400),
				"accountingCode", "4000-Subscriptions", "processingType", "0", "sourceItemType", "SubscriptionComponent",
				"taxMode", "TaxExclusive", "excludeItemBillingFromRevenueAccounting", "false")
			setAll(ir, is, "accountId", a.id, "invoiceNumber", fmt.Sprintf("INV%08d", invNum),
				"invoiceDate", date(at), "dueDate", date(at+30*86400), "targetDate", date(at), "status", stPosted,
				"currency", a.cur.code, "amount", money(amount), "amountWithoutTax", money(amount), "taxAmount", "0",
				"taxExemptAmount", "0", "balance", money(amount), "paymentAmount", "0", "refundAmount", "0",
				"creditMemoAmount", "0", "adjustmentAmount", "0", "creditBalanceAdjustmentAmount", "0",
				"autoPay", "false", "reversed", "false", "source", "BillRun", "sourceId", "BR-WIDE",
				"sourceType", "Subscription", "taxStatus", "Complete", "paymentTerm", "Net 30",
				"postedDate", fmt.Sprint(at), "postedBy", g.user)
			t.tables[objInvoices].add(ir)
			t.tables[objInvoiceItems].add(it)
			invoices = append(invoices, ir)
		}
		payNum++
		pr, ps := g.rec(objPayments, at, at)
		setAll(pr, ps, "accountId", a.id, "paymentNumber", fmt.Sprintf("P-%08d", payNum), "effectiveDate", date(at),
			"amount", money(total), "appliedAmount", "0", "unappliedAmount", money(total), "refundAmount", "0",
			"currency", a.cur.code, "status", stProcessed, "type", "External", "gatewayState", "Settled",
			"source", "PaymentRun", "sourceName", "PR-WIDE", "paymentMethodId", g.id(), "submittedOn", fmt.Sprint(at),
			"settledOn", fmt.Sprint(at), "gateway", "Stripe")
		t.tables[objPayments].add(pr)
		group := g.id()
		for _, ir := range invoices {
			s := appSpec{id: g.id(), group: group, user: g.user, at: at, effective: date(at), amount: ir.dec(inv.amount)}
			t.addPaymentApp(s, pr, ir.id(), "", a.id, stProcessed)
		}
	}
	g.t.recomputeAll()
}

func pow10(places int32) int64 {
	n := int64(1)
	for range places {
		n *= 10
	}
	return n
}

// ignored marks IgnorePercent of the documents not already transferred
// TransferredToAccounting = Ignore.
func (g *gen) ignored(seed int64) {
	if g.v.IgnorePercent <= 0 {
		return
	}
	r := rand.New(rand.NewPCG(uint64(seed), arStream^0x1e))
	for _, o := range []string{objInvoices, objPayments, objRefunds, objCreditMemos, objDebitMemos} {
		tb := g.t.tables[o]
		pos := tb.sch.pos("transferredToAccounting")
		for _, rec := range tb.recs {
			if rec.str(pos) != "Yes" && r.IntN(100) < g.v.IgnorePercent {
				rec.set(pos, "Ignore")
			}
		}
	}
}
