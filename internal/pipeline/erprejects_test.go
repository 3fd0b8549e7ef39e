package pipeline_test

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/s3test"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// newERPWorld is a world whose mapping rejects nothing (every account has an
// ERP id, KWD is mapped), so that every reject is one the ERP made.
func newERPWorld(t *testing.T, stageURL string) *rejectWorld {
	t.Helper()
	volume := smallVolume()
	volume.NoERPPercent = 0
	w := &rejectWorld{world: newWorld(t, worldOptions{seed: 7, volume: volume, stage: stageURL}), sqlDir: acceptKWD(t)}
	// These tests follow a refusal through the re-check, in its own window:
	// the refused documents are not marked Error (whose echo would bring
	// them back in a later window instead; see TestRefusedDocumentsAreMarkedError).
	w.keepRefused = true
	return w
}

// appRejects counts the outstanding rejects of applications: those of the
// refused customer, which the ERP refuses too or which join its refused
// documents (DEPENDENCY_REJECTED).
func (w *rejectWorld) appRejects() int64 {
	w.t.Helper()
	var n int64
	for _, r := range w.rejectsOf() {
		if stage.DocType(r.DocType).IsApplication() {
			n++
		}
	}
	return n
}

// refused is a customer the ERP refuses and the documents of it that a run
// will post: eligible and not yet transferred.
type refused struct {
	customer, account string
	docs              []string
}

// refuseCustomer makes the ERP answer 422 to every document of the customer
// with the most documents to post, and returns it.
func (w *rejectWorld) refuseCustomer() refused {
	w.t.Helper()
	accounts := map[string]string{} // ERP id → account id
	for _, a := range w.zuora.Snapshot("accounts") {
		accounts[str(a["ERPAccountId__c"])] = str(a["id"])
	}
	byCustomer := map[string][]string{}
	for id, d := range w.initial {
		if d.eligible && d.transferred != "Yes" && d.customer != "" {
			byCustomer[d.customer] = append(byCustomer[d.customer], id)
		}
	}
	var r refused
	for _, c := range slices.Sorted(maps.Keys(byCustomer)) {
		if len(byCustomer[c]) > len(r.docs) {
			r = refused{customer: c, account: accounts[c], docs: byCustomer[c]}
		}
	}
	if len(r.docs) < 2 || r.account == "" {
		w.t.Fatalf("no customer with two documents to post: %+v", r)
	}
	slices.Sort(r.docs)
	w.erp.SetFaults(erpsim.Faults{RejectCustomers: map[string]string{r.customer: "customer " + r.customer + " is on credit hold"}})
	return r
}

// erpRejects returns the outstanding rejects listed with reason ERP_REJECTED, by Zuora id.
func (w *rejectWorld) erpRejects() map[string]stage.OutstandingReject {
	w.t.Helper()
	out := map[string]stage.OutstandingReject{}
	for _, r := range w.rejectsOf() {
		if r.ReasonCode == "ERP_REJECTED" && stage.DocType(r.DocType).IsDocument() {
			out[r.ZuoraID] = r
		}
	}
	return out
}

// queryStage answers q, a query of one value, over the stage as `query` sees it.
func (w *world) queryStage(p *pipeline.Pipeline, q string) string {
	w.t.Helper()
	ctx := context.Background()
	db, err := warehouse.Open(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	defer db.Close()
	if err := db.AttachStage(ctx, p.Stage()); err != nil {
		w.t.Fatal(err)
	}
	rows, err := db.Strings(ctx, q)
	if err != nil || len(rows) != 1 || len(rows[0]) != 1 {
		w.t.Fatalf("%s: %v (%v)", q, rows, err)
	}
	return rows[0][0]
}

// TestERPRejectionStaysOutstandingUntilTheAccountIsFixed: documents the ERP
// refused (422) stay outstanding in the runs after theirs, listed with the
// ERP's status and message, their window and first/last seen, and keep the
// exit status at 3; once the account's ERP id is changed in Zuora (the
// documents untouched), the next run posts each exactly once and needs no
// attention, and later runs post nothing.
func TestERPRejectionStaysOutstandingUntilTheAccountIsFixed(t *testing.T) {
	t.Parallel()
	w := newERPWorld(t, "")
	bad := w.refuseCustomer()

	first := w.mustRunTo(tenantTo)
	if first.Count("invoice", func(l pipeline.Line) stage.Tally { return l.ERPRejected })+first.Count("payment", func(l pipeline.Line) stage.Tally { return l.ERPRejected }) == 0 {
		t.Fatalf("the ERP refused nothing; the test needs refusals:\n%s", printed(first))
	}
	if !first.NeedsAttention() {
		t.Fatalf("the first run needs no attention after the ERP refused documents:\n%s", printed(first))
	}
	if got := len(w.creates()); got == 0 {
		t.Fatal("the first run posted nothing")
	}

	second := w.mustRunTo(tenantTo) // nothing due: only the backlog is left
	if len(second.Windows) != 0 {
		t.Fatalf("the second run processed %d windows; want none due", len(second.Windows))
	}
	if !second.NeedsAttention() || second.OutstandingRejects() != int64(len(bad.docs))+w.appRejects() {
		t.Errorf("the run after the refusals needs attention %v with %d outstanding; want exit 3 with the %d refused documents:\n%s",
			second.NeedsAttention(), second.OutstandingRejects(), len(bad.docs), printed(second))
	}
	listed := w.erpRejects()
	p := w.open(w.cfg(tenantTo))
	view := w.outstanding(p)
	for _, id := range bad.docs {
		r, ok := listed[id]
		if !ok {
			t.Errorf("refused %s %s is not listed by rejects", w.initial[id].docType, w.initial[id].number)
			continue
		}
		if !strings.Contains(r.Message, "422") || !strings.Contains(r.Message, "credit hold") || r.Window == "" ||
			r.FirstSeen.IsZero() || r.LastSeen.Before(r.FirstSeen) || r.Number != w.initial[id].number || r.Customer != bad.customer {
			t.Errorf("refused %s is listed as %+v; want the ERP's status and message, its window, number, customer and first/last seen", id, r)
		}
		if v, ok := view[id]; !ok || v.reason != "ERP_REJECTED" || v.window != r.Window {
			t.Errorf(`query "select * from rejects" shows %s as %+v; want ERP_REJECTED in %s`, id, v, r.Window)
		}
	}
	if len(listed) != len(bad.docs) {
		t.Errorf("rejects lists %d ERP rejections; the ERP refused %d documents", len(listed), len(bad.docs))
	}
	if got := w.queryStage(p, `SELECT count(*) FROM rejects WHERE reason_code = 'ERP_REJECTED' AND erp_status = 422
    AND "window" IS NOT NULL AND first_seen IS NOT NULL AND last_seen >= first_seen AND updated_date IS NOT NULL`); got != strconv.Itoa(len(bad.docs)) {
		t.Errorf(`query "select * from rejects" shows %s ERP rejections with status 422, window and first/last seen; want %d`, got, len(bad.docs))
	}

	// The fix, in Zuora: the account gets the ERP customer the ERP knows; no document changes.
	before := w.updatedDates()
	if err := w.zuora.SetFields(bad.account, map[string]string{"ERPAccountId__c": "ERP-MOVED-1"}); err != nil {
		t.Fatal(err)
	}
	w.refreshCustomers()
	if after := w.updatedDates(); !mapsEqual(before, after) {
		t.Fatal("fixing the account moved a document's updatedDate; the test needs the documents untouched")
	}
	third := w.mustRunTo(tenantTo)
	creates := w.creates()
	for _, id := range bad.docs {
		if creates[id] != 1 || w.zuora.Transferred(id) != "Yes" {
			t.Errorf("refused %s %s was created %d times (transferred %q) after its account was fixed; want once, marked",
				w.initial[id].docType, w.initial[id].number, creates[id], w.zuora.Transferred(id))
		}
	}
	if third.NeedsAttention() || !third.Balanced() {
		t.Errorf("after the fix the run needs attention %v, balanced %v:\n%s", third.NeedsAttention(), third.Balanced(), printed(third))
		for _, r := range w.rejectsOf() {
			t.Logf("outstanding: %s %s in %s: %s %s (%s)", r.DocType, r.ZuoraID, r.Window, r.ReasonCode, r.Message, r.Note)
		}
		for _, l := range strings.Split(w.logs.String(), "\n") {
			if strings.Contains(l, "re-checked") || strings.Contains(l, "4528e4c3") {
				t.Log(l)
			}
		}
		pp := w.open(w.cfg(tenantTo))
		t.Log(w.queryStage(pp, `SELECT string_agg(id || ' ' || "window" || ' ' || coalesce(CAST(rechecked_at AS VARCHAR), '-'), '; ') FROM payment_applications WHERE id IN ('4528e4c3d05ee6d831d224dcd3545620', '5fe1491ee9889b27995af2826bd81087')`))
		t.Log(w.queryStage(pp, `SELECT string_agg(id || ' ' || "window" || ' ' || coalesce(erp_account_id, '-') || ' ' || coalesce(CAST(rechecked_at AS VARCHAR), '-'), '; ') FROM accounts WHERE id = '`+bad.account+`'`))
		t.Log(w.queryStage(pp, `SELECT string_agg(zuora_id || ' ' || "window" || ' ' || customer, '; ') FROM documents WHERE zuora_id IN ('4528e4c3d05ee6d831d224dcd3545620', '5fe1491ee9889b27995af2826bd81087')`))
	}
	if left := w.erpRejects(); len(left) != 0 {
		t.Errorf("after the fix %d ERP rejections are still outstanding: %v", len(left), left)
	}
	requests := len(w.erp.Requests())
	if fourth := w.mustRunTo(tenantTo); fourth.NeedsAttention() || len(w.erp.Requests()) != requests {
		t.Errorf("a fourth run needs attention %v and sent %d ERP requests; want neither", fourth.NeedsAttention(), len(w.erp.Requests())-requests)
	}
	w.assertPromise(w.open(w.cfg(tenantTo)))
}

// TestAcknowledgedERPRejectionIsSkippedAndNeverPosted: an ERP rejection a
// person acknowledges is skipped as ACKNOWLEDGED by the next run and never
// posted, even once the ERP would take it; the run needs no attention.
func TestAcknowledgedERPRejectionIsSkippedAndNeverPosted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newERPWorld(t, "")
	bad := w.refuseCustomer()
	w.mustRunTo(tenantTo)
	listed := w.erpRejects()
	if len(listed) != len(bad.docs) {
		t.Fatalf("%d ERP rejections outstanding; want the %d refused documents", len(listed), len(bad.docs))
	}
	p := w.open(w.cfg(tenantTo))
	for _, id := range bad.docs {
		a, err := p.Acknowledge(ctx, id, "billed in error, credited outside the ERP", "dana@ledger")
		if err != nil {
			t.Fatalf("acknowledge %s: %v", id, err)
		}
		if a.ReasonCode != "ERP_REJECTED" || a.Window != listed[id].Window {
			t.Errorf("acknowledgement %+v; want it to name the ERP rejection in %s", a, listed[id].Window)
		}
	}
	// The customer's applications can never be posted without those
	// documents: a person acknowledges them too.
	for _, r := range w.rejectsOf() {
		if stage.DocType(r.DocType).IsApplication() {
			if _, err := p.Acknowledge(ctx, r.ZuoraID, "its documents never go to the ERP", "dana@ledger"); err != nil {
				t.Fatalf("acknowledge application %s: %v", r.ZuoraID, err)
			}
		}
	}
	w.erp.SetFaults(erpsim.Faults{}) // the ERP would take them now
	if err := w.zuora.SetFields(bad.account, map[string]string{"ERPAccountId__c": "ERP-MOVED-2"}); err != nil {
		t.Fatal(err)
	}
	w.refreshCustomers()

	rep := w.mustRunTo(tenantTo)
	if rep.NeedsAttention() {
		t.Errorf("with every ERP rejection acknowledged the run needs attention:\n%s", printed(rep))
	}
	v := w.readStage(ctx, p.Stage())
	creates := w.creates()
	for _, id := range bad.docs {
		if creates[id] != 0 {
			t.Errorf("acknowledged %s was created %d times; want never", id, creates[id])
		}
		skips := v.skipped[id]
		if len(skips) != 1 || skips[0].reason != "ACKNOWLEDGED" || skips[0].window != listed[id].Window || !strings.Contains(skips[0].message, "dana@ledger") {
			t.Errorf("skips of acknowledged %s: %+v; want one ACKNOWLEDGED in %s", id, skips, listed[id].Window)
		}
	}
	if again := w.mustRunTo(tenantTo); again.NeedsAttention() {
		t.Errorf("a later run needs attention:\n%s", printed(again))
	}
	w.assertPromise(p)
}

// TestERPRejectionConfirmedByALaterWindowIsResolved: a document the ERP
// refused, edited in Zuora (a new version) and taken by the ERP when the
// window of that version posts it, is no longer outstanding, and loading the
// old window again does not bring the old refusal back.
func TestERPRejectionConfirmedByALaterWindowIsResolved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newERPWorld(t, "")
	var doc string
	for _, id := range slices.Sorted(maps.Keys(w.initial)) {
		if d := w.initial[id]; d.docType == "invoice" && d.eligible && d.transferred != "Yes" {
			doc = id
			break
		}
	}
	w.erp.SetFaults(erpsim.Faults{RejectKeys: map[string]string{doc: "period closed for this invoice"}})
	w.mustRunTo(tenantTo)
	old, ok := w.erpRejects()[doc]
	if !ok {
		t.Fatalf("refused invoice %s is not outstanding after the first run: %v", doc, w.rejectsOf())
	}

	w.erp.SetFaults(erpsim.Faults{})
	w.clock.Set(tenantTo.Add(90 * time.Minute))
	if err := w.zuora.Touch(doc); err != nil { // the invoice itself changed
		t.Fatal(err)
	}
	w.clock.Set(tenantTo.Add(95 * time.Minute))
	// The next run's windows end before the new version: the refusal stands.
	if rep := w.mustRunTo(tenantTo.Add(time.Hour)); !rep.NeedsAttention() {
		t.Errorf("the refusal is resolved before the new version was posted:\n%s", printed(rep))
	}
	if r, ok := w.erpRejects()[doc]; !ok || r.Window != old.Window || !strings.Contains(r.Note, "newer") {
		t.Errorf("before its new version's window, the refused invoice is %+v (listed %v); want outstanding in %s, found newer", r, ok, old.Window)
	}

	w.clock.Set(tenantTo.Add(3 * time.Hour))
	until := tenantTo.Add(2 * time.Hour)
	later := w.mustRunTo(until)
	if got := w.creates()[doc]; got != 1 {
		t.Fatalf("the edited invoice was created %d times; want once, by its new version's window", got)
	}
	if _, ok := w.erpRejects()[doc]; ok || later.NeedsAttention() {
		t.Errorf("the invoice confirmed by a later window is still outstanding (needs attention %v):\n%s", later.NeedsAttention(), printed(later))
	}
	for _, r := range w.rejectsOf() {
		t.Logf("outstanding: %s %s in %s: %s %s (%s)", r.DocType, r.ZuoraID, r.Window, r.ReasonCode, r.Message, r.Note)
	}

	// Loading the old window again (its ledger still holds the refusal) changes nothing.
	oldWindow, err := stage.ParseWindowID(old.Window)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.open(w.cfg(until)).Load(ctx, oldWindow); err != nil {
		t.Fatalf("load the old window again: %v", err)
	}
	if _, ok := w.erpRejects()[doc]; ok {
		t.Error("loading the old window again brought back a refusal that a later window resolved")
	}
	if rep := w.mustRunTo(until); rep.NeedsAttention() || w.creates()[doc] != 1 {
		t.Errorf("a later run needs attention %v, invoice created %d times:\n%s", rep.NeedsAttention(), w.creates()[doc], printed(rep))
	}
	// A run that resumes the old window (its load unfinished) reports the old
	// refusal in that window's line, but nothing is outstanding: exit 0.
	st := w.open(w.cfg(until)).Stage()
	for _, k := range []string{stage.LoadCompleteKey(oldWindow), stage.ManifestKey("load", oldWindow)} {
		if err := st.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if rep := w.mustRunTo(until); len(rep.Windows) != 1 || rep.NeedsAttention() || w.creates()[doc] != 1 {
		t.Errorf("the run that resumed the old window took %d windows, needs attention %v, invoice created %d times; want 1, no, once:\n%s",
			len(rep.Windows), rep.NeedsAttention(), w.creates()[doc], printed(rep))
	}
}

// TestERPRejectionIsIndexedAfterACrashBetweenLoadAndIndex: the stage fails
// right after the load wrote its ledger, before the index records the
// refusals; the next run repairs the index from that load's ledger.
func TestERPRejectionIsIndexedAfterACrashBetweenLoadAndIndex(t *testing.T) {
	t.Parallel()
	var ledgered, failing atomic.Bool
	url := s3test.HookedStageURL(t, func(rw http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut {
			return false
		}
		if strings.Contains(r.URL.Path, "/ledger/") {
			ledgered.Store(true)
		}
		if failing.Load() && ledgered.Load() && strings.HasSuffix(r.URL.Path, "/state/rejects.json") {
			http.Error(rw, "injected", http.StatusInternalServerError)
			return true
		}
		return false
	})
	w := newERPWorld(t, url)
	bad := w.refuseCustomer()
	failing.Store(true)
	if _, err := w.run(context.Background(), w.cfg(tenantTo)); err == nil {
		t.Fatal("the run whose index write failed succeeded")
	}
	failing.Store(false)
	rep := w.mustRunTo(tenantTo)
	if rep.OutstandingRejects() != int64(len(bad.docs))+w.appRejects() || len(w.erpRejects()) != len(bad.docs) {
		t.Errorf("after the repair %d outstanding (%d ERP rejections listed); want the %d refused documents:\n%s",
			rep.OutstandingRejects(), len(w.erpRejects()), len(bad.docs), printed(rep))
	}
}

// TestERPRejectionsAreRebuiltForAStageWithoutThem: a stage whose index has no
// ERP rejections (lost, or written before they were indexed) gets them back
// from the windows' ledgers on first use.
func TestERPRejectionsAreRebuiltForAStageWithoutThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, lose := range []string{"the index", "the ERP entries"} {
		t.Run(lose, func(t *testing.T) {
			w := newERPWorld(t, "")
			bad := w.refuseCustomer()
			w.mustRunTo(tenantTo)
			want := w.erpRejects()
			if len(want) != len(bad.docs) {
				t.Fatalf("%d ERP rejections; want %d", len(want), len(bad.docs))
			}
			all := int64(len(w.rejectsOf())) // the documents and the applications they hold back
			st := w.open(w.cfg(tenantTo)).Stage()
			objs, err := st.List(ctx, "manifests/")
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if strings.HasSuffix(o.Key, "/erp-rejects-indexed.json") || lose == "the index" && strings.HasSuffix(o.Key, "/rejects-indexed.json") {
					if err := st.Delete(ctx, o.Key); err != nil {
						t.Fatal(err)
					}
				}
			}
			if lose == "the index" {
				if err := st.Delete(ctx, stage.RejectIndexKey); err != nil {
					t.Fatal(err)
				}
			} else {
				// As the code before ERP rejections were indexed left it.
				if err := st.WriteJSON(ctx, stage.RejectIndexKey, map[string]any{"updated_at": time.Now().UTC(), "rejects": []any{}}); err != nil {
					t.Fatal(err)
				}
			}
			if got := w.erpRejects(); len(got) != len(want) {
				t.Errorf("without %s, rejects lists %d ERP rejections; want %d", lose, len(got), len(want))
			}
			rep := w.mustRunTo(tenantTo)
			if rep.OutstandingRejects() != all || !rep.NeedsAttention() {
				t.Errorf("the run after losing %s reports %d outstanding; want %d", lose, rep.OutstandingRejects(), all)
			}
		})
	}
}

// BenchmarkRecheckOfAnERPBacklog measures a run with no window due when the
// ERP refused the documents of nine customers in ten of a 5,000-document
// tenant: the cost every run pays to re-check ERP rejections nothing fixed.
// The first run's time (posting and indexing the refusals) is reported too.
func BenchmarkRecheckOfAnERPBacklog(b *testing.B) {
	volume := zuorasim.Volume{Accounts: 150, Invoices: 2500, Payments: 1250, Refunds: 400, CreditMemos: 500, DebitMemos: 350,
		MaxItems: 120, NoERPPercent: 0, DraftPercent: 5, TransferredPercent: 3, BurstPercent: 20}
	w := &rejectWorld{world: newWorld(b, worldOptions{seed: 5, volume: volume}), sqlDir: acceptKWD(b)}
	refuse := map[string]string{}
	for i, a := range w.zuora.Snapshot("accounts") {
		if i%10 != 0 {
			refuse[str(a["ERPAccountId__c"])] = "customer is blocked in the ERP"
		}
	}
	w.erp.SetFaults(erpsim.Faults{RejectCustomers: refuse})
	quiet := func() pipeline.Config {
		c := w.cfg(tenantTo)
		c.Logger = slog.New(slog.DiscardHandler)
		return c
	}
	start := time.Now()
	rep, err := w.run(context.Background(), quiet())
	if err != nil {
		b.Fatal(err)
	}
	first := time.Since(start)
	backlog := rep.OutstandingRejects()
	b.ResetTimer()
	for b.Loop() {
		if rep, err = w.run(context.Background(), quiet()); err != nil || rep.OutstandingRejects() != backlog {
			b.Fatalf("run: %v; %d outstanding, want %d", err, rep.OutstandingRejects(), backlog)
		}
	}
	b.ReportMetric(float64(backlog), "rejects")
	b.ReportMetric(float64(backlog)*float64(b.N)/b.Elapsed().Seconds(), "rejects/s")
	b.ReportMetric(first.Seconds(), "first-run-s")
}
