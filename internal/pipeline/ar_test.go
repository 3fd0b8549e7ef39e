package pipeline_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/archeck"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	mapping "github.com/zuora-erp-etl/zuora-erp-etl/sql"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// The AR model end to end (issue 12, "Must show"): windows of a generated
// tenant while the simulator changes receivables between them as a Zuora
// user would, with an ERP outage in the middle; after every run every
// application and every reversal is in the ERP exactly once, and every
// document's open balance in the ERP equals Zuora's, to the cent, in every
// currency (internal/archeck), which reconcile (by the ledger and against the
// ERP) confirms.

// arVolume is a tenant with nothing that needs a person: every account has
// its ERP customer, nothing transferred before, so that parity covers every
// document; drafts, several currencies (KWD mapped by arMapping) and large
// documents as usual.
func arVolume(wide int) zuorasim.Volume {
	v := zuorasim.DefaultVolume()
	v.NoERPPercent, v.TransferredPercent, v.WidePayments = 0, 0, wide
	return v
}

// arMapping is a mapping folder that maps every currency the tenant uses.
func arMapping(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	csv, err := mapping.Files.ReadFile("currencies.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "currencies.csv"), append(csv, []byte("KWD,Kuwaiti dinar\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// arRun runs the pipeline up to until with the AR settings of the test.
func (w *world) arRun(ctx context.Context, until time.Time, sqlDir, unapply string) (*pipeline.Report, error) {
	w.t.Helper()
	cfg := w.config(until)
	cfg.SQLDir, cfg.UnapplyAmounts = sqlDir, unapply
	return w.run(ctx, cfg)
}

// assertAR checks, after a run, what issue 12 promises: the tenant's AR
// invariants hold; every application Zuora counts is live in the ERP once and
// nothing else is; no application, reversal or document copy was created
// twice; every document's open balance in the ERP equals Zuora's; and
// reconcile, by the ledger and against the ERP, finds no difference.
func (w *world) assertAR(t *testing.T, when string, cfg pipeline.Config) {
	t.Helper()
	if v := w.zuora.CheckAR(); len(v) > 0 {
		t.Fatalf("%s: the simulated tenant breaks its own AR invariants: %v", when, v)
	}
	// Every event once: keys are unique among applications, reversals and document copies.
	keys := map[string]int{}
	for _, a := range w.erp.Applications() {
		keys["application "+a.Key]++
	}
	for _, r := range w.erp.Reversals() {
		keys["reversal "+r.Key]++
	}
	for _, d := range w.erp.Documents() {
		keys["document "+d.Key]++
	}
	for k, n := range keys {
		if n > 1 {
			t.Errorf("%s: the ERP holds %s %d times", when, k, n)
		}
	}
	created := map[string]int{}
	for _, r := range w.erp.Requests() {
		if r.Status == http.StatusCreated {
			created[r.Key]++
		}
	}
	for k, n := range created {
		if n > 1 {
			t.Errorf("%s: %d requests created %s", when, n, k)
		}
	}
	// What Zuora counts is what the ERP holds live, one for one.
	live := map[string]bool{}
	for _, a := range w.erp.Applications() {
		if a.Live {
			live[a.ZuoraID] = true
		}
	}
	counting := map[string]bool{}
	for _, o := range []string{"payment-applications", "credit-memo-applications", "refund-applications"} {
		for _, a := range w.zuora.Snapshot(o) {
			if str(a["paymentApplicationStatus"]) == "Cancelled" {
				continue
			}
			counting[str(a["id"])] = true
		}
	}
	refundsLive := map[string]bool{}
	for _, r := range w.zuora.Snapshot("refunds") {
		refundsLive[str(r["id"])] = str(r["status"]) == "Processed"
	}
	for _, a := range w.zuora.Snapshot("refund-applications") {
		if !refundsLive[str(a["refundId"])] {
			delete(counting, str(a["id"]))
		}
	}
	for id := range counting {
		if !live[id] {
			t.Errorf("%s: Zuora counts application %s; the ERP holds no live copy", when, id)
		}
	}
	for id := range live {
		if !counting[id] {
			t.Errorf("%s: the ERP holds application %s live; Zuora does not count it", when, id)
		}
	}
	diffs, err := archeck.Compare(w.zuora.ARDocuments(), w.erp.ARDocuments())
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range diffs {
		if i < 15 {
			t.Errorf("%s: AR parity: %s", when, d)
		}
	}
	if len(diffs) > 15 {
		t.Errorf("%s: AR parity: %d differences in all", when, len(diffs))
	}
	rec, err := w.open(cfg).Reconcile(context.Background(), pipeline.ReconcileOptions{ERP: true})
	if err != nil {
		t.Fatalf("%s: reconcile: %v", when, err)
	}
	for i, d := range append(rec.ByLedger, rec.ByERP...) {
		if i < 10 {
			t.Errorf("%s: reconcile: %s", when, d)
		}
	}
	if rec.Documents == 0 {
		t.Errorf("%s: reconcile compared no document", when)
	}
}

// assertRunClean checks a run's report: it balances, nothing is pending or
// waiting, nothing needs a person, and applications and reversals have lines.
func (w *world) assertRunClean(t *testing.T, when string, rep *pipeline.Report, want ...string) {
	t.Helper()
	if !rep.Balanced() || rep.Unfinished() || rep.NeedsAttention() {
		t.Errorf("%s: report balanced %v, unfinished %v, needs attention %v:\n%s", when, rep.Balanced(), rep.Unfinished(), rep.NeedsAttention(), printed(rep))
		w.logRejects(t)
	}
	if n, _ := rep.Waiting(); n > 0 {
		t.Errorf("%s: %d lines still wait:\n%s", when, n, printed(rep))
	}
	for _, dt := range want {
		if rep.Count(dt, func(l pipeline.Line) stage.Tally { return l.Posted }) == 0 {
			t.Errorf("%s: no %s posted:\n%s", when, dt, printed(rep))
		}
	}
}

// receivablesCase is one tenant and convention the receivables test runs.
type receivablesCase struct {
	name    string
	seed    int64
	unapply string // the tenant's and the pipeline's convention: "" (negative) or "positive"
	wide    int    // Volume.WidePayments
	// generatedOnly runs the generated activity and a further run, not the
	// scripted hours: the tenant has no customer demo.ReceivablesStepOne can
	// script on, or the case is about the generated activity alone.
	generatedOnly bool
}

func TestReceivablesReachTheERPOnceWithParityAfterEveryRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []receivablesCase{
		{name: "negative unapplies", seed: 1},
		{name: "positive unapplies", seed: 1, unapply: "positive"},
		{name: "a payment applied to more than 99 invoices", seed: 1, wide: 1},
		// Under the positive convention each group's sign is settled from the
		// versions of the documents it changes; other seeds, other groups
		// (these three had groups left SIGN_UNDETERMINED while the generator
		// dated applications after their documents' last version). The
		// groups are the generated activity's: the scripted hours are seed 1's.
		{name: "positive unapplies, seed 3", seed: 3, unapply: "positive", generatedOnly: true},
		{name: "positive unapplies, seed 5", seed: 5, unapply: "positive", generatedOnly: true},
		// Seed 8 has no USD customer with three open invoices and a credit memo.
		{name: "positive unapplies, seed 8", seed: 8, unapply: "positive", generatedOnly: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testReceivables(t, tc)
		})
	}
}

func testReceivables(t *testing.T, tc receivablesCase) {
	unapply, wide := tc.unapply, tc.wide
	w := newWorld(t, worldOptions{seed: tc.seed, volume: arVolume(wide), sim: zuorasim.Options{UnapplyPositiveAmounts: unapply == "positive"}})
	sqlDir := arMapping(t)
	ctx := context.Background()
	cfgAt := func(until time.Time) pipeline.Config {
		c := w.config(until)
		c.SQLDir, c.UnapplyAmounts = sqlDir, unapply
		return c
	}

	// The generated activity, three windows.
	w.clock.Set(tenantTo.Add(10 * time.Minute))
	rep, err := w.arRun(ctx, tenantTo, sqlDir, unapply)
	if err != nil {
		t.Fatalf("first run: %v\n%s", err, printed(rep))
	}
	w.assertRunClean(t, "first run", rep, "payment_application", "credit_memo_application", "refund_application")
	w.assertAR(t, "after the first run", cfgAt(tenantTo))
	if wide > 0 {
		widest := 0
		groups := map[string]int{}
		for _, a := range w.erp.Applications() {
			groups[a.Source]++
			widest = max(widest, groups[a.Source])
		}
		if widest <= 99 {
			t.Errorf("the widest payment has %d applications in the ERP; want more than 99", widest)
		}
	}
	if tc.generatedOnly {
		w.assertQuietRun(t, ctx, tenantTo, sqlDir, unapply, cfgAt(tenantTo))
		return
	}

	// The next hour: a payment applied in part to two invoices, a memo applied,
	// a refund, a memo unposted, an invoice reversed; the ERP goes down after a
	// few posts of the run and comes back.
	w.clock.Set(tenantTo.Add(15 * time.Minute))
	ops, err := demo.ReceivablesStepOne(w.zuora)
	if err != nil {
		t.Fatal(err)
	}
	next := tenantTo.Add(time.Hour)
	w.clock.Set(next.Add(10 * time.Minute))
	var posts atomic.Int32
	w.erpHook.set(func(rw http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && posts.Add(1) > 4 {
			http.Error(rw, `{"error":"the ERP is down"}`, http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	if _, err := w.arRun(ctx, next, sqlDir, unapply); err == nil {
		t.Fatal("the run during the ERP outage succeeded")
	}
	w.erpHook.set(nil)
	rep, err = w.arRun(ctx, next, sqlDir, unapply)
	if err != nil {
		t.Fatalf("the run after the outage: %v\n%s", err, printed(rep))
	}
	w.assertRunClean(t, "after the outage", rep, "reversal", "payment_application", "credit_memo_application", "refund_application")
	w.assertAR(t, "after the outage", cfgAt(next))
	reversed := map[string]bool{}
	for _, r := range w.erp.Reversals() {
		reversed[r.ZuoraID] = true
	}
	if !reversed[ops.Unposted] {
		t.Errorf("the unposted credit memo %s was not reversed in the ERP", ops.Unposted)
	}

	// An hour later: the rest of the payment applied, the memo unapplied, a
	// payment cancelled after it was posted, the memo posted again.
	w.clock.Set(next.Add(15 * time.Minute))
	if err := ops.StepTwo(w.zuora); err != nil {
		t.Fatal(err)
	}
	last := next.Add(time.Hour)
	w.clock.Set(last.Add(10 * time.Minute))
	rep, err = w.arRun(ctx, last, sqlDir, unapply)
	if err != nil {
		t.Fatalf("the last run: %v\n%s", err, printed(rep))
	}
	w.assertRunClean(t, "after the last run", rep, "reversal", "payment_application", "credit_memo_application")
	w.assertAR(t, "after the last run", cfgAt(last))
	reversed = map[string]bool{}
	for _, r := range w.erp.Reversals() {
		reversed[r.ZuoraID] = true
	}
	if !reversed[ops.Canceled] {
		t.Errorf("the cancelled payment %s was not reversed in the ERP", ops.Canceled)
	}
	unapplied := 0
	for _, a := range w.erp.Applications() {
		if a.Source == ops.Memo && a.Amount.IsNegative() {
			unapplied++
		}
	}
	if unapplied != 1 {
		t.Errorf("the ERP holds %d unapplications of credit memo %s; want 1, negative whatever the tenant's sign convention", unapplied, ops.Memo)
	}
	copies := 0
	for _, d := range w.erp.Documents() {
		if d.ZuoraID == ops.Unposted {
			copies++
		}
	}
	if copies != 2 {
		t.Errorf("the memo unposted and posted again has %d copies in the ERP; want 2 (one reversed, one live)", copies)
	}

	w.assertQuietRun(t, ctx, last, sqlDir, unapply, cfgAt(last))
}

// assertQuietRun runs once more up to until, 20 minutes after it: the run
// posts nothing, and parity holds still.
func (w *world) assertQuietRun(t *testing.T, ctx context.Context, until time.Time, sqlDir, unapply string, cfg pipeline.Config) {
	t.Helper()
	requests := len(w.erp.Requests())
	w.clock.Set(until.Add(20 * time.Minute))
	if _, err := w.arRun(ctx, until, sqlDir, unapply); err != nil {
		t.Fatal(err)
	}
	if n := len(w.erp.Requests()) - requests; n != 0 {
		t.Errorf("a further run sent %d ERP requests; want none", n)
	}
	w.assertAR(t, "after a further run", cfg)
}

// logRejects logs every outstanding reject, for a failure's reader.
func (w *world) logRejects(t *testing.T) {
	t.Helper()
	rs, err := w.open(w.config(tenantTo)).Rejects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		t.Logf("outstanding: %s %s in %s: %s %s (%s)", r.DocType, r.ZuoraID, r.Window, r.ReasonCode, r.Message, r.Note)
	}
}
