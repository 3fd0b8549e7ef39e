package zuorasim

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/shopspring/decimal"
)

// Volume sets how many records Generate makes and how often the awkward cases appear.
type Volume struct {
	Accounts, Invoices, Payments, Refunds, CreditMemos, DebitMemos int
	// MaxItems caps the items of one document; when it is 100 or more, about one
	// invoice in 40 (and one memo in 60) gets more than 99 items.
	MaxItems int
	// NoERPPercent of accounts have no ERPAccountId__c.
	NoERPPercent int
	// DraftPercent of invoices and memos are Draft rather than Posted.
	DraftPercent int
	// TransferredPercent of documents already have TransferredToAccounting = Yes.
	TransferredPercent int
	// BurstPercent of documents are stamped in a few shared bill-run seconds.
	BurstPercent int
	// WidePayments adds this many payments, each applied in one application
	// group to 100 to 149 small invoices it adds too (so the payment's
	// paymentApplications expand is cut off at 99). Off by default: it adds documents.
	WidePayments int
	// IgnorePercent of the documents not already transferred get
	// TransferredToAccounting = Ignore (drawn apart from the documents, so 0
	// leaves them exactly as before).
	IgnorePercent int
}

// DefaultVolume is a small tenant for the demo: 25 accounts and 175 documents.
func DefaultVolume() Volume {
	return Volume{Accounts: 25, Invoices: 80, Payments: 50, Refunds: 15, CreditMemos: 20, DebitMemos: 10,
		MaxItems: 250, NoERPPercent: 10, DraftPercent: 10, TransferredPercent: 5, BurstPercent: 40}
}

// RegisterFlags exposes every volume knob as a command-line flag, defaulting to v's values.
func (v *Volume) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&v.Accounts, "accounts", v.Accounts, "generated accounts")
	fs.IntVar(&v.Invoices, "invoices", v.Invoices, "generated invoices")
	fs.IntVar(&v.Payments, "payments", v.Payments, "generated payments")
	fs.IntVar(&v.Refunds, "refunds", v.Refunds, "generated refunds")
	fs.IntVar(&v.CreditMemos, "credit-memos", v.CreditMemos, "generated credit memos")
	fs.IntVar(&v.DebitMemos, "debit-memos", v.DebitMemos, "generated debit memos")
	fs.IntVar(&v.MaxItems, "max-items", v.MaxItems, "most items on one document (>= 100 makes some invoices exceed 99 items)")
	fs.IntVar(&v.NoERPPercent, "no-erp-percent", v.NoERPPercent, "percent of accounts without ERPAccountId__c")
	fs.IntVar(&v.DraftPercent, "draft-percent", v.DraftPercent, "percent of invoices and memos left in Draft")
	fs.IntVar(&v.TransferredPercent, "transferred-percent", v.TransferredPercent, "percent of documents already TransferredToAccounting=Yes")
	fs.IntVar(&v.BurstPercent, "burst-percent", v.BurstPercent, "percent of documents stamped in shared bill-run seconds")
	fs.IntVar(&v.WidePayments, "wide-payments", v.WidePayments, "payments applied to more than 99 invoices each (adds the invoices)")
	fs.IntVar(&v.IgnorePercent, "ignore-percent", v.IgnorePercent, "percent of documents with TransferredToAccounting=Ignore")
}

type currency struct {
	code   string
	places int32
	weight int
}

var currencies = []currency{{"USD", 2, 45}, {"EUR", 2, 20}, {"GBP", 2, 10}, {"CAD", 2, 8}, {"JPY", 0, 9}, {"KWD", 3, 8}}

var taxRates = []string{"0", "0.0725", "0.0825", "0.19", "0.2", "0.1"}

var accountNames = []string{
	"Acme Corporation", "Müller & Söhne GmbH", "株式会社サンプル商事", "Société Générale d'Été", "Ørsted Vind A/S",
	"Zoë's Café 🍰", "Ünal Tekstil A.Ş.", "Łódź Logistics Sp. z o.o.", "Ελληνικά Δίκτυα ΑΕ", "Nguyễn Trading Co.",
	"O'Brien \"Quotes\" Ltd", "Mañana Foods S.L.", "Þór Hugbúnaður ehf.", "北京云计算有限公司", "Backslash \\ Partners",
}

var charges = []struct{ name, sku, uom, code string }{
	{"Gold plan — annual", "SKU-GOLD-A", "Each", "4000-Subscriptions"},
	{"Plan Básico (mensual)", "SKU-BASIC-M", "Each", "4000-Subscriptions"},
	{"Überstunden-Support", "SKU-SUP-H", "Hour", "4200-Services"},
	{"クラウドストレージ 1TB", "SKU-STOR-TB", "TB", "4100-Usage"},
	{"API calls (per 1,000)", "SKU-API-K", "1K calls", "4100-Usage"},
	{"Données analytiques", "SKU-DATA", "GB", "4100-Usage"},
	{"Onboarding & training", "SKU-ONB", "Day", "4200-Services"},
	{"Seats", "SKU-SEAT", "Seat", "4000-Subscriptions"},
}

var comments = []string{"", "", "", "Merci beaucoup — see PO #4711", "請求書を確認してください", "Línea de crédito 😀", "Tab\tand\nnewline"}

// Generate builds a deterministic tenant: the same seed, volume and range give
// the same records. Every createdDate and updatedDate falls in [from, to), which
// must contain at least one whole second. Applications are derived from the
// documents after they are made (generate_ar.go), and the documents' AR fields
// from the applications, so the tenant passes CheckAR.
func Generate(seed int64, v Volume, from, to time.Time) *Tenant {
	lo, hi := from.Unix(), to.Unix()
	if from.Nanosecond() != 0 {
		lo++
	}
	if to.Nanosecond() != 0 {
		hi++
	}
	if hi <= lo {
		panic(fmt.Sprintf("zuorasim: generate range [%s, %s) holds no whole second", from, to))
	}
	if v.MaxItems < 1 {
		v.MaxItems = 1
	}
	g := &gen{
		r:    rand.New(rand.NewPCG(uint64(seed), 0x5a5a0f0f)),
		t:    newTenant(),
		salt: mix(uint64(seed) ^ 0x2545f4914f6cdd1d),
		lo:   lo, hi: hi, v: v,
	}
	docs := v.Invoices + v.Payments + v.Refunds + v.CreditMemos + v.DebitMemos
	for i := 0; i < max(1, docs/40); i++ {
		g.bursts = append(g.bursts, lo+g.r.Int64N(hi-lo))
	}
	g.accounts()
	if len(g.accts) == 0 {
		return g.t
	}
	g.invoices()
	g.payments()
	g.refunds()
	g.memos(objCreditMemos)
	g.memos(objDebitMemos)
	g.deriveAR(seed)
	g.widePayments(seed)
	g.ignored(seed)
	return g.t
}

type acct struct {
	id      string
	cur     currency
	taxRate decimal.Decimal
}

type gen struct {
	r      *rand.Rand
	t      *Tenant
	salt   uint64
	seq    uint64
	lo, hi int64
	bursts []int64
	v      Volume
	accts  []acct
	posted []*record // posted invoices, for memos to refer to
	user   string
}

// mix is splitmix64's finalizer, a bijection, so distinct inputs give distinct ids.
func mix(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	z ^= z >> 31
	return z
}

// newID returns a unique 32-hex-char id derived from the seed and a sequence.
func newID(salt, seq uint64) string {
	h := mix(seq ^ salt)
	return fmt.Sprintf("%016x%016x", h, mix(h^0x9e3779b97f4a7c15))
}

func (g *gen) id() string {
	g.seq++
	return newID(g.salt, g.seq)
}

func (g *gen) pct(p int) bool { return g.r.IntN(100) < p }

// stamp picks createdDate and updatedDate (Unix seconds) inside the range.
func (g *gen) stamp() (created, updated int64) {
	if g.pct(g.v.BurstPercent) {
		b := g.bursts[g.r.IntN(len(g.bursts))]
		return b, b
	}
	c := g.lo + g.r.Int64N(g.hi-g.lo)
	return c, c + g.r.Int64N(g.hi-c)
}

// money returns a random positive amount below max with the given decimal places.
func (g *gen) money(max int64, places int32) decimal.Decimal {
	unit := int64(1)
	for range places {
		unit *= 10
	}
	return decimal.New(1+g.r.Int64N(max*unit), -places)
}

// rec starts a record with the common fields set.
func (g *gen) rec(object string, created, updated int64) (*record, *schema) {
	s := schemas[object]
	r := newRecord(s)
	r.set(fID, g.id())
	r.set(fCreatedByID, g.user)
	r.set(fUpdatedByID, g.user)
	r.set(fCreatedDate, fmt.Sprint(created))
	r.set(fUpdatedDate, fmt.Sprint(updated))
	return r, s
}

func setAll(r *record, s *schema, kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		r.set(s.pos(kv[i]), kv[i+1])
	}
}

func date(unix int64) string { return time.Unix(unix, 0).UTC().Format(time.DateOnly) }

func (g *gen) transferred(r *record, s *schema) {
	switch {
	case g.pct(g.v.TransferredPercent):
		r.set(s.pos("transferredToAccounting"), "Yes")
	case g.pct(30):
		r.set(s.pos("transferredToAccounting"), "No")
	}
}

func (g *gen) comment(r *record, s *schema, name string) {
	if c := comments[g.r.IntN(len(comments))]; c != "" {
		r.set(s.pos(name), c)
	}
}

func (g *gen) accounts() {
	g.user = newID(g.salt, 1<<62)
	total := 0
	for _, c := range currencies {
		total += c.weight
	}
	for i := range g.v.Accounts {
		c, u := g.stamp()
		r, s := g.rec(objAccounts, c, u)
		// The first accounts take each currency once, so small tenants still have them all.
		w := g.r.IntN(total)
		cur := currencies[0]
		for _, cc := range currencies {
			if w < cc.weight {
				cur = cc
				break
			}
			w -= cc.weight
		}
		if i < len(currencies) {
			cur = currencies[i]
		}
		a := acct{id: r.id(), cur: cur, taxRate: decimal.RequireFromString(taxRates[g.r.IntN(len(taxRates))])}
		g.accts = append(g.accts, a)
		setAll(r, s,
			"accountNumber", fmt.Sprintf("A%08d", i+1),
			"name", accountNames[i%len(accountNames)]+suffix(i, len(accountNames)),
			"currency", cur.code, "status", "Active",
			"balance", "0", "creditBalance", "0", "totalInvoiceBalance", "0", "unappliedBalance", "0",
			"autoPay", fmt.Sprint(g.pct(50)), "billCycleDay", fmt.Sprint(1+g.r.IntN(28)), "batch", "Batch1",
			"billToId", g.id(), "soldToId", g.id(), "shipToId", g.id(), "defaultPaymentMethodId", g.id(),
			"paymentTerm", "Net 30", "communicationProfileId", g.id())
		if !g.pct(g.v.NoERPPercent) {
			r.set(s.pos("ERPAccountId__c"), fmt.Sprintf("ERP-%05d", 1001+i))
		}
		if g.pct(30) {
			r.set(s.pos("crmId"), fmt.Sprintf("0015e0000%07d", i))
		}
		g.t.tables[objAccounts].add(r)
	}
}

func suffix(i, n int) string {
	if i < n {
		return ""
	}
	return fmt.Sprintf(" #%d", i/n+1)
}

// owed adds a posted invoice's balance to its account and moves lastInvoiceDate.
func (g *gen) owed(a acct, balance decimal.Decimal, invoiceDate string) {
	s := schemas[objAccounts]
	r := g.t.tables[objAccounts].byID[a.id]
	for _, f := range []string{"balance", "totalInvoiceBalance"} {
		v, _ := r.get(s.pos(f))
		r.set(s.pos(f), decimal.RequireFromString(v).Add(balance).String())
	}
	if last, ok := r.get(s.pos("lastInvoiceDate")); !ok || invoiceDate > last {
		r.set(s.pos("lastInvoiceDate"), invoiceDate)
	}
}

// line is one generated item's quantities, consistent with its currency.
type line struct {
	qty, price, amount, tax decimal.Decimal
	charge                  int
}

func (g *gen) line(a acct, negative bool) line {
	var l line
	l.charge = g.r.IntN(len(charges))
	switch n := g.r.IntN(10); {
	case n < 7:
		l.qty = decimal.NewFromInt(1 + g.r.Int64N(10))
	case n < 9:
		l.qty = decimal.NewFromInt(1 + g.r.Int64N(1000))
	default:
		l.qty = decimal.New(1+g.r.Int64N(999), -2)
	}
	if g.pct(20) {
		l.price = decimal.New(1+g.r.Int64N(999_999_999), -9) // usage rates: up to 9 places
	} else {
		l.price = g.money(5000, a.cur.places)
	}
	if negative {
		l.price = l.price.Neg()
	}
	l.amount = l.qty.Mul(l.price).Round(a.cur.places)
	l.tax = l.amount.Mul(a.taxRate).Round(a.cur.places)
	return l
}

// itemCount draws how many items document i gets; every every-th document
// gets more than 99 when MaxItems allows it.
func (g *gen) itemCount(i, every, small int) int {
	n := 1 + g.r.IntN(small)
	switch {
	case g.v.MaxItems >= 100 && i%every == 3:
		n = 100 + g.r.IntN(g.v.MaxItems-99)
	case g.pct(10):
		n = 6 + g.r.IntN(35)
	}
	return min(n, g.v.MaxItems)
}

func (g *gen) invoices() {
	items := g.t.tables[objInvoiceItems]
	for i := range g.v.Invoices {
		a := g.accts[g.r.IntN(len(g.accts))]
		if i < len(g.accts) {
			a = g.accts[i] // every account gets an invoice when there are enough
		}
		c, u := g.stamp()
		r, s := g.rec(objInvoices, c, u)
		n := g.itemCount(i, 40, 5)
		negative := g.pct(1)
		subID, subNum := g.id(), fmt.Sprintf("A-S%08d", i+1)
		var without, tax decimal.Decimal
		lines := make([]*record, 0, n)
		for j := range n {
			l := g.line(a, negative || (j > 0 && g.pct(5)))
			without, tax = without.Add(l.amount), tax.Add(l.tax)
			lines = append(lines, g.invoiceItem(r, a, l, c, u, subID, subNum))
		}
		amount := without.Add(tax)
		status, balance := g.invoiceStatus(a, amount)
		setAll(r, s,
			"accountId", a.id, "invoiceNumber", fmt.Sprintf("INV%08d", i+1),
			"invoiceDate", date(c), "dueDate", date(c+30*86400), "targetDate", date(c),
			"status", status, "currency", a.cur.code,
			"amount", amount.String(), "amountWithoutTax", without.String(), "taxAmount", tax.String(),
			"taxExemptAmount", "0", "balance", balance.String(), "paymentAmount", amount.Sub(balance).String(),
			"refundAmount", "0", "creditMemoAmount", "0", "adjustmentAmount", "0", "creditBalanceAdjustmentAmount", "0",
			"autoPay", "false", "reversed", "false", "source", "BillRun", "sourceId", fmt.Sprintf("BR-%08d", 1+i/25),
			"sourceType", "Subscription", "taxStatus", "Complete", "paymentTerm", "Net 30",
			"billToContactId", g.id(), "soldToContactId", g.id(), "templateId", g.id())
		if status == "Posted" {
			setAll(r, s, "postedDate", fmt.Sprint(c), "postedBy", g.user)
			g.posted = append(g.posted, r)
			g.owed(a, balance, date(c))
		}
		if balance.IsZero() {
			for _, it := range lines {
				it.set(schemas[objInvoiceItems].pos("balance"), "0")
			}
		}
		g.comment(r, s, "comments")
		g.transferred(r, s)
		g.t.tables[objInvoices].add(r)
		for _, it := range lines {
			items.add(it)
		}
	}
}

// invoiceItem generates the item of invoice r for line l of account a.
func (g *gen) invoiceItem(r *record, a acct, l line, c, u int64, subID, subNum string) *record {
	it, is := g.rec(objInvoiceItems, c, u)
	ch := charges[l.charge]
	name, code := ch.name, ch.code
	if l.amount.IsNegative() {
		name, code = "Discount – loyalty", "4900-Discounts"
	}
	setAll(it, is,
		"invoiceId", r.id(), "accountId", a.id,
		"chargeAmount", l.amount.String(), "taxAmount", l.tax.String(), "discountAmount", "0",
		"balance", l.amount.Add(l.tax).String(), "quantity", l.qty.String(), "unitPrice", l.price.String(),
		"uOM", ch.uom, "sKU", ch.sku, "chargeName", name, "chargeNumber", fmt.Sprintf("C-%08d", int(g.seq)),
		"chargeDate", fmt.Sprint(c), "serviceStartDate", date(c), "serviceEndDate", date(c+29*86400),
		"accountingCode", code, "processingType", "0", "sourceItemType", "SubscriptionComponent",
		"subscriptionId", subID, "subscriptionNumber", subNum, "productId", g.id(),
		"productRatePlanId", g.id(), "productRatePlanChargeId", g.id(), "ratePlanId", g.id(),
		"ratePlanChargeId", g.id(), "taxCode", "STANDARD", "taxMode", "TaxExclusive",
		"excludeItemBillingFromRevenueAccounting", "false")
	return it
}

// invoiceStatus draws an invoice's status and, for a posted one, how much of
// amount is still owed: some are paid in full, some in half.
func (g *gen) invoiceStatus(a acct, amount decimal.Decimal) (string, decimal.Decimal) {
	status := "Posted"
	if g.pct(g.v.DraftPercent) {
		status = "Draft"
	}
	balance := amount
	if status == "Posted" && !amount.IsNegative() {
		switch k := g.r.IntN(10); {
		case k < 3:
			balance = decimal.Zero
		case k < 4:
			balance = amount.Div(decimal.NewFromInt(2)).Round(a.cur.places)
		}
	}
	return status, balance
}

func (g *gen) payments() {
	for i := range g.v.Payments {
		a := g.accts[g.r.IntN(len(g.accts))]
		c, u := g.stamp()
		r, s := g.rec(objPayments, c, u)
		amount := g.money(10000, a.cur.places)
		status, gw := "Processed", "Settled"
		switch k := g.r.IntN(100); {
		case k < 8:
			status, gw = "Error", "Failed"
		case k < 15:
			status, gw = "Canceled", "NotSubmitted"
		}
		applied := amount
		if g.pct(20) || status != "Processed" {
			applied = decimal.Zero
		}
		typ := "Electronic"
		if g.pct(30) {
			typ = "External"
		}
		setAll(r, s,
			"accountId", a.id, "paymentNumber", fmt.Sprintf("P-%08d", i+1), "effectiveDate", date(c),
			"amount", amount.String(), "appliedAmount", applied.String(), "unappliedAmount", amount.Sub(applied).String(),
			"refundAmount", "0", "currency", a.cur.code, "status", status, "type", typ, "gatewayState", gw,
			"referenceId", fmt.Sprintf("ch_%x", mix(uint64(i)+g.salt)), "source", "PaymentRun", "sourceName", "PR-00000001",
			"paymentMethodId", g.id(), "paymentMethodSnapshotId", g.id(), "submittedOn", fmt.Sprint(c), "gateway", "Stripe")
		switch status {
		case "Processed":
			r.set(s.pos("settledOn"), fmt.Sprint(u))
		case "Canceled":
			r.set(s.pos("cancelledOn"), fmt.Sprint(u))
		}
		g.comment(r, s, "comment")
		g.transferred(r, s)
		g.t.tables[objPayments].add(r)
	}
}

func (g *gen) refunds() {
	sources := []string{"Payment", "Payment", "Payment", "CreditBalance", "CreditMemo"}
	methods := []string{"CreditCard", "ACH", "Check", "BankTransfer", "Other"}
	for i := range g.v.Refunds {
		a := g.accts[g.r.IntN(len(g.accts))]
		c, u := g.stamp()
		r, s := g.rec(objRefunds, c, u)
		status := "Processed"
		switch k := g.r.IntN(100); {
		case k < 5:
			status = "Error"
		case k < 10:
			status = "Canceled"
		}
		typ := "External"
		if g.pct(60) {
			typ = "Electronic"
		}
		setAll(r, s,
			"accountId", a.id, "refundNumber", fmt.Sprintf("R-%08d", i+1), "refundDate", date(c),
			"refundTransactionTime", fmt.Sprint(c), "amount", g.money(2000, a.cur.places).String(),
			"currency", a.cur.code, "status", status, "type", typ,
			"sourceType", sources[g.r.IntN(len(sources))], "methodType", methods[g.r.IntN(len(methods))],
			"referenceID", fmt.Sprintf("re_%x", mix(uint64(i)^g.salt)), "reasonCode", "Standard Refund",
			"paymentMethodId", g.id())
		g.comment(r, s, "comment")
		g.transferred(r, s)
		g.t.tables[objRefunds].add(r)
	}
}

// memos generates credit or debit memos, most of them against a posted invoice.
func (g *gen) memos(object string) {
	k := memoKind{object: object, credit: object == objCreditMemos,
		count: g.v.DebitMemos, itemObj: objDebitMemoItems, prefix: "DM", parentField: "debitMemoId"}
	if k.credit {
		k.count, k.itemObj, k.prefix, k.parentField = g.v.CreditMemos, objCreditMemoItems, "CM", "creditMemoId"
	}
	items := g.t.tables[k.itemObj]
	invItems := g.t.tables[objInvoiceItems].fk[schemas[objInvoiceItems].pos("invoiceId")]
	for i := range k.count {
		a, invoiceID := g.memoTarget()
		c, u := g.stamp()
		r, s := g.rec(object, c, u)
		n := g.itemCount(i, 60, 4)
		var without, tax decimal.Decimal
		lines := make([]*record, 0, n)
		for range n {
			l := g.line(a, false)
			without, tax = without.Add(l.amount), tax.Add(l.tax)
			lines = append(lines, g.memoItem(k, r, a, l, c, u, invItems[invoiceID]))
		}
		g.memoHeader(k, r, s, a, i, c, invoiceID, without, tax)
		g.t.tables[object].add(r)
		for _, it := range lines {
			items.add(it)
		}
	}
}

// memoKind is what differs between generating credit and debit memos.
type memoKind struct {
	object, itemObj, prefix, parentField string
	credit                               bool
	count                                int
}

// memoTarget draws a memo's account and, most of the time, the posted
// invoice it is made from (its account then).
func (g *gen) memoTarget() (acct, string) {
	a := g.accts[g.r.IntN(len(g.accts))]
	invoiceID := ""
	if len(g.posted) > 0 && g.pct(80) {
		inv := g.posted[g.r.IntN(len(g.posted))]
		invoiceID = inv.id()
		accID, _ := inv.get(schemas[objInvoices].pos("accountId"))
		for _, x := range g.accts {
			if x.id == accID {
				a = x
			}
		}
	}
	return a, invoiceID
}

// memoItem generates the item of memo r for line l, from one of the
// invoice's items invItems when it has any.
func (g *gen) memoItem(k memoKind, r *record, a acct, l line, c, u int64, invItems []*record) *record {
	it, is := g.rec(k.itemObj, c, u)
	ch := charges[l.charge]
	setAll(it, is,
		k.parentField, r.id(), "amount", l.amount.String(), "amountWithoutTax", l.amount.String(),
		"taxAmount", l.tax.String(), "quantity", l.qty.String(), "unitPrice", l.price.String(),
		"unitOfMeasure", ch.uom, "sku", ch.sku, "chargeName", ch.name,
		"chargeNumber", fmt.Sprintf("C-%08d", int(g.seq)), "chargeDate", fmt.Sprint(c),
		"serviceStartDate", date(c), "serviceEndDate", date(c+29*86400), "sourceItemType", "SubscriptionComponent",
		"subscriptionId", g.id(), "subscriptionNumber", fmt.Sprintf("A-S%08d", 1+g.r.IntN(max(1, g.v.Invoices))),
		"ratePlanChargeId", g.id(), "accountingCode", ch.code, "excludeItemBillingFromRevenueAccounting", "false")
	if k.credit {
		setAll(it, is, "unappliedAmount", l.amount.Add(l.tax).String(), "appliedToOthersAmount", "0", "taxMode", "TaxExclusive")
	} else {
		it.set(is.pos("balance"), l.amount.Add(l.tax).String())
	}
	if len(invItems) > 0 {
		src := invItems[g.r.IntN(len(invItems))].id()
		it.set(is.pos("invoiceItemId"), src)
		it.set(is.pos("sourceItemType"), "InvoiceDetail")
		if k.credit {
			setAll(it, is, "creditFromItemId", src, "creditFromItemSource", "InvoiceItem")
		}
	}
	return it
}

// memoHeader fills memo r, number i of its kind, from its items' totals.
func (g *gen) memoHeader(k memoKind, r *record, s *schema, a acct, i int, c int64, invoiceID string, without, tax decimal.Decimal) {
	total := without.Add(tax)
	status := "Posted"
	if g.pct(g.v.DraftPercent) {
		status = "Draft"
	}
	setAll(r, s,
		"accountId", a.id, "memoNumber", fmt.Sprintf("%s%08d", k.prefix, i+1), "memoDate", date(c),
		"totalAmount", total.String(), "totalAmountWithoutTax", without.String(), "taxAmount", tax.String(),
		"totalTaxExemptAmount", "0", "discountAmount", "0", "balance", total.String(),
		"currency", a.cur.code, "status", status, "source", "API", "sourceType", "Standalone")
	if invoiceID != "" {
		setAll(r, s, "invoiceId", invoiceID, "sourceType", "Invoice", "source", "AdhocFromInvoice")
	}
	if status == "Posted" {
		setAll(r, s, "postedOn", fmt.Sprint(c), "postedById", g.user)
	}
	if k.credit {
		setAll(r, s, "appliedAmount", "0", "refundAmount", "0", "reasonCode", "Correcting invoice error",
			"reversed", "false", "revenueImpacting", "Yes")
		g.comment(r, s, "comment")
	} else {
		setAll(r, s, "dueDate", date(c+30*86400), "autoPay", "false", "paymentTerm", "Net 30", "reasonCode", "Charge Dispute")
		g.comment(r, s, "comments")
	}
	g.transferred(r, s)
}
