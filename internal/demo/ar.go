package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/archeck"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
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

// mapped are the currencies of the tenant that the default mapping maps
// (sql/currencies.csv): the demo's tenant has KWD documents, rejected on
// purpose, which the script leaves alone. Its new payment is in USD.
var mapped = map[string]bool{"USD": true, "EUR": true, "GBP": true, "CAD": true, "JPY": true}

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
	known := knownAccounts(zs)
	rv, err := chooseCustomer(zs, known)
	if err != nil {
		return nil, err
	}
	if rv.Payment, _, err = zs.CreatePayment(rv.Account, "12.00", zuorasim.Target{ID: rv.Inv1, Amount: "4.00"}, zuorasim.Target{ID: rv.Inv2, Amount: "3.00"}); err != nil {
		return nil, fmt.Errorf("demo: create a payment applied to two invoices: %w", err)
	}
	if _, err := zs.ApplyCreditMemo(rv.Memo, zuorasim.Target{ID: rv.Inv3, Amount: "1.50"}); err != nil {
		return nil, fmt.Errorf("demo: apply a credit memo: %w", err)
	}
	refundable := pick(zs, "payments", func(r record) bool {
		return r.str("status") == "Processed" && known[r.str("accountId")] && mapped[r.str("currency")] &&
			r.dec("unappliedAmount").GreaterThanOrEqual(decimal.NewFromInt(1)) && r.str("id") != rv.Payment
	})
	if ok, _ := tryEach(refundable, func(p record) error {
		r, err := zs.RefundPayment(p.str("id"), "1")
		if err == nil {
			rv.Refunded, rv.Refund = p.str("id"), r.RefundID
		}
		return err
	}); !ok {
		return nil, fmt.Errorf("demo: no payment of a known customer could be refunded")
	}
	unpostable := pick(zs, "credit-memos", func(r record) bool {
		return r.str("status") == "Posted" && known[r.str("accountId")] && mapped[r.str("currency")] &&
			r.dec("balance").Equal(r.dec("totalAmount")) && r.str("id") != rv.Memo
	})
	if ok, _ := tryEach(unpostable, func(m record) error {
		err := zs.UnpostMemo(m.str("id"))
		if err == nil {
			rv.Unposted = m.str("id")
		}
		return err
	}); !ok {
		return nil, fmt.Errorf("demo: no credit memo of a known customer could be unposted")
	}
	reversible := pick(zs, "invoices", func(r record) bool {
		return r.str("status") == "Posted" && known[r.str("accountId")] && mapped[r.str("currency")] && r.dec("amount").IsPositive() && r.dec("balance").Equal(r.dec("amount")) &&
			r.str("id") != rv.Inv1 && r.str("id") != rv.Inv2 && r.str("id") != rv.Inv3
	})
	if ok, refused := tryEach(reversible, func(inv record) error {
		rev, err := zs.ReverseInvoice(inv.str("id"))
		if err == nil {
			rv.Inv4, rv.Reversal = inv.str("id"), rev.MemoID
		}
		return err // a memo was made from it, say: try the next
	}); !ok {
		return nil, fmt.Errorf("demo: reverse an invoice: %w", refused)
	}
	return rv, nil
}

// knownAccounts are the tenant's accounts the ERP knows (with an ERP id).
func knownAccounts(zs *zuorasim.Sim) map[string]bool {
	known := map[string]bool{}
	for id := range erpAccounts(zs) {
		known[id] = true
	}
	return known
}

// erpAccounts maps the tenant's accounts that have an ERP id to it.
func erpAccounts(zs *zuorasim.Sim) map[string]string {
	erpID := map[string]string{}
	for _, a := range zs.Snapshot("accounts") {
		if e, _ := a["ERPAccountId__c"].(string); e != "" {
			erpID[fmt.Sprint(a["id"])] = e
		}
	}
	return erpID
}

// chooseCustomer finds the script's customer: the first known account, by
// id, with three open USD invoices of at least 20.00 and a posted USD credit
// memo of at least 2.00.
func chooseCustomer(zs *zuorasim.Sim, known map[string]bool) (*Receivables, error) {
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
	for _, a := range slices.Sorted(maps.Keys(byAccount)) {
		if invs := byAccount[a]; len(invs) >= 3 && memoOf[a] != "" {
			return &Receivables{Account: a, Inv1: invs[0].str("id"), Inv2: invs[1].str("id"), Inv3: invs[2].str("id"), Memo: memoOf[a]}, nil
		}
	}
	return nil, fmt.Errorf("demo: the tenant has no USD customer with three open invoices and a credit memo to script receivables on")
}

// tryEach calls do with each of rs until one succeeds and reports whether
// one did; when none does, the last refusal (nil without candidates).
func tryEach(rs []record, do func(record) error) (ok bool, last error) {
	for _, r := range rs {
		if last = do(r); last == nil {
			return true, nil
		}
	}
	return false, last
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
	known := knownAccounts(zs)
	cancelable := pick(zs, "payments", func(r record) bool {
		return r.str("status") == "Processed" && known[r.str("accountId")] && r.dec("appliedAmount").IsPositive() && r.dec("refundAmount").IsZero() &&
			r.str("id") != rv.Payment && r.str("id") != rv.Refunded && mapped[r.str("currency")]
	})
	if ok, _ := tryEach(cancelable, func(p record) error {
		err := zs.CancelPayment(p.str("id"))
		if err == nil {
			rv.Canceled = p.str("id")
		}
		return err
	}); !ok {
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

// PreloadTransferred tells the ERP simulator of the documents the tenant
// shows transferred before the demo (another integration's work): the ERP
// holds them from before the stage's start, for their whole amount (every
// application of the tenant is in the demo's windows), so applications to
// them are resolved there, as in a real ERP.
func (s *Servers) PreloadTransferred() error {
	erpID := erpAccounts(s.Zuora)
	number := map[string]string{"invoice": "invoiceNumber", "debit_memo": "memoNumber", "credit_memo": "memoNumber", "payment": "paymentNumber", "refund": "refundNumber"}
	objects := map[string]struct{ object, amount, status string }{
		"invoice": {"invoices", "amount", "Posted"}, "debit_memo": {"debit-memos", "totalAmount", "Posted"}, "credit_memo": {"credit-memos", "totalAmount", "Posted"},
		"payment": {"payments", "amount", "Processed"}, "refund": {"refunds", "amount", "Processed"},
	}
	var known []erpsim.KnownDocument
	for _, docType := range slices.Sorted(maps.Keys(objects)) {
		o := objects[docType]
		for _, r := range pick(s.Zuora, o.object, func(r record) bool {
			return r.str("transferredToAccounting") == "Yes" && r.str("status") == o.status && erpID[r.str("accountId")] != ""
		}) {
			known = append(known, erpsim.KnownDocument{ZuoraID: r.str("id"), Type: docType, Number: r.str(number[docType]),
				Customer: erpID[r.str("accountId")], Currency: r.str("currency"), Amount: r.dec(o.amount)})
		}
	}
	return s.ERP.Preload(known...)
}

// arChecks verifies the receivables promises over every customer whose
// documents all went through (a customer with an outstanding reject, which
// the demo's tenant has on purpose, is left out and counted): every
// application and reversal in the ERP once, what Zuora counts live in the
// ERP, every document's open balance equal on both sides (internal/archeck),
// and reconcile agreeing, by the ledger and against the ERP.
func arChecks(ctx context.Context, srv *Servers, cfg pipeline.Config, out io.Writer) []Check {
	p, err := pipeline.Open(ctx, cfg)
	if err != nil {
		return []Check{verdict("the stage can be read", false, "%v", err)}
	}
	defer p.Close()
	rejects, err := p.Rejects(ctx)
	if err != nil {
		return []Check{verdict("the outstanding rejects can be read", false, "%v", err)}
	}
	zdocs := srv.Zuora.ARDocuments()
	apps := zuoraApplications(srv.Zuora)
	sc := newARScope(zdocs, apps, rejects)
	return []Check{sc.appsOnce(srv, apps), sc.parity(srv, zdocs, out), sc.reconciled(ctx, p)}
}

// zuoraApp is one application record of the tenant, and whether Zuora
// counts it: not Cancelled, and of a Processed refund.
type zuoraApp struct {
	id, account string
	counts      bool
}

// zuoraApplications lists the tenant's payment, credit memo and refund
// applications, in that order.
func zuoraApplications(zs *zuorasim.Sim) []zuoraApp {
	processed := map[string]bool{}
	for _, r := range zs.Snapshot("refunds") {
		processed[fmt.Sprint(r["id"])] = r["status"] == "Processed"
	}
	var out []zuoraApp
	for _, o := range []string{"payment-applications", "credit-memo-applications", "refund-applications"} {
		for _, a := range zs.Snapshot(o) {
			counts := a["paymentApplicationStatus"] != "Cancelled" && (o != "refund-applications" || processed[fmt.Sprint(a["refundId"])])
			out = append(out, zuoraApp{id: fmt.Sprint(a["id"]), account: fmt.Sprint(a["accountId"]), counts: counts})
		}
	}
	return out
}

// arScope is whom the receivables checks speak for: the customers with no
// outstanding reject, found by the account of each Zuora id.
type arScope struct {
	account map[string]string // zuora id → account id
	left    map[string]bool   // accounts with an outstanding reject
}

func newARScope(zdocs []archeck.ZuoraDoc, apps []zuoraApp, rejects []stage.OutstandingReject) arScope {
	sc := arScope{account: map[string]string{}, left: map[string]bool{}}
	for _, d := range zdocs {
		sc.account[d.ZuoraID] = d.Account
	}
	for _, a := range apps {
		sc.account[a.id] = a.account
	}
	for _, r := range rejects {
		sc.left[sc.account[r.ZuoraID]] = true
	}
	return sc
}

// ours reports whether the Zuora id is of a customer the checks speak for.
func (sc arScope) ours(id string) bool {
	a, ok := sc.account[id]
	return ok && !sc.left[a]
}

// appsOnce checks that the ERP holds every application and reversal once,
// live exactly while Zuora counts it.
func (sc arScope) appsOnce(srv *Servers, apps []zuoraApp) Check {
	keys := map[string]int{}
	live := map[string]bool{}
	for _, a := range srv.ERP.Applications() {
		keys["application "+a.Key]++
		live[a.ZuoraID] = a.Live
	}
	for _, r := range srv.ERP.Reversals() {
		keys["reversal "+r.Key]++
	}
	var twice []string
	for k, n := range keys {
		if n > 1 {
			twice = append(twice, k)
		}
	}
	var missing, extra []string
	for _, a := range apps {
		switch {
		case !sc.ours(a.id):
		case a.counts && !live[a.id]:
			missing = append(missing, a.id)
		case !a.counts && live[a.id]:
			extra = append(extra, a.id)
		}
	}
	return verdict(fmt.Sprintf("the ERP holds every application and reversal once (%d applications, %d reversals), live exactly while Zuora counts it",
		len(srv.ERP.Applications()), len(srv.ERP.Reversals())), len(twice) == 0 && len(missing) == 0 && len(extra) == 0,
		"%d keys more than once %v, %d counting applications not live %v, %d live not counting %v", len(twice), first3(twice), len(missing), first3(missing), len(extra), first3(extra))
}

// parity checks, and prints by currency, that each document's open balance
// in the ERP equals Zuora's.
func (sc arScope) parity(srv *Servers, zdocs []archeck.ZuoraDoc, out io.Writer) Check {
	var zs []archeck.ZuoraDoc
	customers := map[string]bool{}
	for _, d := range zdocs {
		if sc.ours(d.ZuoraID) {
			zs = append(zs, d)
			customers[d.Account] = true
		}
	}
	var es []archeck.ERPDoc
	for _, d := range srv.ERP.ARDocuments() {
		if sc.ours(d.ZuoraID) {
			es = append(es, d)
		}
	}
	diffs, err := archeck.Compare(zs, es)
	if err != nil {
		diffs = []archeck.Difference{{Reason: err.Error()}}
	}
	fmt.Fprintf(out, "\n== AR parity: %d documents of %d customers (%d customers with outstanding rejects left out)\n", len(zs), len(customers), len(sc.left))
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "open\tcur\tzuora\terp\tdocuments\t")
	for _, t := range archeck.Totals(zs, es) {
		fmt.Fprintf(tw, "\t%s\t%s\t%s\t%d / %d\t\n", t.Currency, t.Zuora, t.ERP, t.ZuoraDocs, t.ERPDocs)
	}
	tw.Flush()
	var shown []string
	for _, d := range diffs {
		shown = append(shown, d.String())
	}
	return verdict("AR parity: each document's open balance in the ERP equals Zuora's, to the cent, in every currency", len(diffs) == 0 && len(zs) > 0,
		"%d differences, e.g. %v", len(diffs), first3(shown))
}

// reconciled checks that reconcile, by the ledger and against the ERP,
// finds no difference.
func (sc arScope) reconciled(ctx context.Context, p *pipeline.Pipeline) Check {
	rec, err := p.Reconcile(ctx, pipeline.ReconcileOptions{ERP: true})
	if err != nil {
		return verdict("reconcile runs", false, "%v", err)
	}
	var recDiffs []string
	for _, d := range append(rec.ByLedger, rec.ByERP...) {
		if sc.ours(d.ZuoraID) {
			recDiffs = append(recDiffs, d.String())
		}
	}
	return verdict(fmt.Sprintf("reconcile (by the ledger and against the ERP) finds no difference (%d documents compared)", rec.Documents), len(recDiffs) == 0,
		"%d differences, e.g. %v", len(recDiffs), first3(recDiffs))
}
