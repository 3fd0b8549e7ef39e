package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/extract"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/s3test"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// rejectWorld is a world whose mapping accepts KWD, so that every reject of
// its first run is NO_ERP_ACCOUNT: documents of accounts without ERPAccountId__c.
type rejectWorld struct {
	*world
	sqlDir string
}

func newRejectWorld(t *testing.T, seed int64) *rejectWorld {
	t.Helper()
	volume := smallVolume()
	volume.NoERPPercent = 20
	return &rejectWorld{world: newWorld(t, worldOptions{seed: seed, volume: volume}), sqlDir: acceptKWD(t)}
}

func (w *rejectWorld) cfg(until time.Time) pipeline.Config {
	c := w.config(until)
	c.SQLDir = w.sqlDir
	return c
}

func (w *rejectWorld) mustRunTo(until time.Time) *pipeline.Report {
	w.t.Helper()
	rep, err := w.run(context.Background(), w.cfg(until))
	if err != nil {
		w.t.Fatalf("run: %v", err)
	}
	return rep
}

// outstanding returns what `query "select * from rejects"` lists, by Zuora id.
func (w *world) outstanding(p *pipeline.Pipeline) map[string]outcomeRow {
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
	rows, err := db.Strings(ctx, `SELECT zuora_id, "window", reason_code, message FROM rejects`)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]outcomeRow{}
	for _, r := range rows {
		out[r[0]] = outcomeRow{r[1], r[2], r[3]}
	}
	return out
}

// fixAccounts sets ERPAccountId__c on every account that has none, through the
// simulator's data, and returns the new ids by account id. The documents of
// those accounts keep their updatedDate.
func (w *world) fixAccounts() map[string]string {
	w.t.Helper()
	fixed := map[string]string{}
	for i, a := range w.zuora.Snapshot("accounts") {
		if str(a["ERPAccountId__c"]) != "" {
			continue
		}
		id := str(a["id"])
		fixed[id] = fmt.Sprintf("ERP-FIX-%03d", i)
		if err := w.zuora.SetFields(id, map[string]string{"ERPAccountId__c": fixed[id]}); err != nil {
			w.t.Fatal(err)
		}
	}
	if len(fixed) == 0 {
		w.t.Fatal("every account has an ERPAccountId__c; the test needs some without")
	}
	w.refreshCustomers()
	return fixed
}

// refreshCustomers updates what the world expects each document's customer to be.
func (w *world) refreshCustomers() {
	customers := map[string]string{}
	for _, a := range w.zuora.Snapshot("accounts") {
		customers[str(a["id"])] = str(a["ERPAccountId__c"])
	}
	for _, o := range docObjects {
		for _, r := range w.zuora.Snapshot(o.object) {
			if d, ok := w.initial[str(r["id"])]; ok {
				d.customer = customers[str(r["accountId"])]
				w.initial[str(r["id"])] = d
			}
		}
	}
}

// updatedDates returns every document's updatedDate as Zuora serves it.
func (w *world) updatedDates() map[string]string {
	out := map[string]string{}
	for _, o := range docObjects {
		for _, r := range w.zuora.Snapshot(o.object) {
			out[str(r["id"])] = str(r["updatedDate"])
		}
	}
	return out
}

// creates counts, per Zuora id, the ERP answers that created a document.
func (w *world) creates() map[string]int {
	out := map[string]int{}
	for _, r := range w.erp.Requests() {
		if r.Status == http.StatusCreated {
			out[r.Key]++
		}
	}
	return out
}

// TestFixedAccountPostsItsRejectedDocumentsOnTheNextRun: the most common
// reject, an account without ERPAccountId__c, is fixed in Zuora on the account
// only (its documents keep their updatedDate); the next run re-checks the
// outstanding rejects, posts and marks each of them exactly once, and the
// report needs no attention any more.
func TestFixedAccountPostsItsRejectedDocumentsOnTheNextRun(t *testing.T) {
	t.Parallel()
	w := newRejectWorld(t, 7)
	first := w.mustRunTo(tenantTo)
	if !first.NeedsAttention() {
		t.Fatalf("the first run has no rejects; the test needs some:\n%s", printed(first))
	}
	p := w.open(w.cfg(tenantTo))
	rejected := w.readStage(context.Background(), p.Stage()).rejects
	if len(rejected) == 0 {
		t.Fatal("the stage lists no rejects after the first run")
	}
	for id, rs := range rejected {
		for _, r := range rs {
			if r.reason != "NO_ERP_ACCOUNT" {
				t.Fatalf("%s is rejected for %s; with KWD mapped, every reject should be NO_ERP_ACCOUNT", id, r.reason)
			}
		}
	}

	before := w.updatedDates()
	fixed := w.fixAccounts()
	if after := w.updatedDates(); !mapsEqual(before, after) {
		t.Fatal("fixing the accounts moved a document's updatedDate; the test needs the documents untouched")
	}

	second := w.mustRunTo(tenantTo)
	creates := w.creates()
	docs := map[string]string{}
	for _, d := range w.erpDocuments() {
		docs[d.Key] = d.Customer
	}
	for id := range rejected {
		if creates[id] != 1 {
			t.Errorf("rejected %s %s was created %d times after its account was fixed; want 1", w.initial[id].docType, w.initial[id].number, creates[id])
		}
		if w.zuora.Transferred(id) != "Yes" {
			t.Errorf("rejected %s %s is not marked transferred after the fix", w.initial[id].docType, w.initial[id].number)
		}
		if c, ok := docs[id]; ok && !slices.Contains(mapValues(fixed), c) {
			t.Errorf("%s was posted for customer %q; want one of the fixed ERP ids", id, c)
		}
	}
	if second.NeedsAttention() {
		t.Errorf("after the fix the run still needs attention:\n%s", printed(second))
	}
	if !second.Balanced() {
		t.Errorf("the report of the run after the fix does not balance:\n%s", printed(second))
	}

	requests := len(w.erp.Requests())
	third := w.mustRunTo(tenantTo)
	if got := len(w.erp.Requests()); got != requests {
		t.Errorf("a third run sent %d ERP requests; want none", got-requests)
	}
	if third.NeedsAttention() || len(third.Windows) != 0 {
		t.Errorf("a third run processed %d windows (needs attention %v); want none", len(third.Windows), third.NeedsAttention())
	}
	w.assertPromise(p)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// rejectsOf returns the outstanding rejects a pipeline on the world's stage lists.
func (w *rejectWorld) rejectsOf() []stage.OutstandingReject {
	w.t.Helper()
	rs, err := w.open(w.cfg(tenantTo)).Rejects(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return rs
}

// TestAcknowledgedRejectIsSkippedWithItsReasonAndNeverPosted: a reject a
// person acknowledges is recorded with who and when, leaves the outstanding
// rejects at once, is reported by the next run as skipped with the reason,
// and is never posted, even after its account is fixed. Anything but an
// outstanding reject is refused.
func TestAcknowledgedRejectIsSkippedWithItsReasonAndNeverPosted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newRejectWorld(t, 7)
	first := w.mustRunTo(tenantTo)
	before := w.rejectsOf()
	if len(before) < 2 || first.OutstandingRejects() != int64(len(before)) {
		t.Fatalf("%d outstanding rejects, the report says %d; the test needs at least 2", len(before), first.OutstandingRejects())
	}
	victim := before[0]
	p := w.open(w.cfg(tenantTo))

	var posted string
	for _, d := range w.erpDocuments() {
		posted = d.Key
	}
	for _, tc := range []struct{ id, reason, want string }{
		{"", "x", "AckID"}, // the setting cmd names as --id (its rejects_test checks the rendering)
		{victim.ZuoraID, "  ", "AckReason"},
		{"no-such-document", "x", "not an outstanding reject"},
		{posted, "x", "not an outstanding reject"},
	} {
		if _, err := p.Acknowledge(ctx, tc.id, tc.reason, "alice@ledger"); !pipeline.IsConfigError(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("acknowledge %q (reason %q): %v; want a configuration error about %s", tc.id, tc.reason, err, tc.want)
		}
	}
	a, err := p.Acknowledge(ctx, victim.ZuoraID, "written off: the customer is in liquidation", "alice@ledger")
	if err != nil {
		t.Fatal(err)
	}
	if a.By != "alice@ledger" || a.At.IsZero() || a.Window != victim.Window || a.ReasonCode != victim.ReasonCode {
		t.Errorf("acknowledgement %+v; want who, when, the window and the reject", a)
	}
	if _, err := p.Acknowledge(ctx, victim.ZuoraID, "again", "bob@ledger"); !pipeline.IsConfigError(err) || !strings.Contains(err.Error(), "already acknowledged") {
		t.Errorf("second acknowledgement: %v; want a refusal naming the first", err)
	}
	after := w.rejectsOf()
	if len(after) != len(before)-1 || slices.ContainsFunc(after, func(r stage.OutstandingReject) bool { return r.ZuoraID == victim.ZuoraID }) {
		t.Errorf("after the acknowledgement %d outstanding (before %d), victim listed: %v", len(after), len(before), after)
	}
	if _, listed := w.outstanding(p)[victim.ZuoraID]; listed {
		t.Error(`query "select * from rejects" still lists the acknowledged reject`)
	}

	second := w.mustRunTo(tenantTo)
	if second.OutstandingRejects() != int64(len(before)-1) {
		t.Errorf("the run after the acknowledgement reports %d outstanding; want %d", second.OutstandingRejects(), len(before)-1)
	}
	v := w.readStage(ctx, p.Stage())
	skips := v.skipped[victim.ZuoraID]
	if len(skips) != 1 || skips[0].reason != "ACKNOWLEDGED" || skips[0].window != victim.Window ||
		!strings.Contains(skips[0].message, "the customer is in liquidation") || !strings.Contains(skips[0].message, "alice@ledger") {
		t.Fatalf("skips of the acknowledged reject: %+v; want one ACKNOWLEDGED in %s with the reason and who", skips, victim.Window)
	}
	if len(v.rejects[victim.ZuoraID]) != 0 {
		t.Errorf("the acknowledged document is still rejected: %v", v.rejects[victim.ZuoraID])
	}

	w.fixAccounts()
	third := w.mustRunTo(tenantTo)
	if got := w.creates()[victim.ZuoraID]; got != 0 {
		t.Errorf("the acknowledged document was created %d times after its account was fixed; want never", got)
	}
	if third.NeedsAttention() {
		t.Errorf("with the rest fixed and the victim acknowledged, the run needs attention:\n%s", printed(third))
	}
	w.assertPromise(p)
}

// TestRecheckedDocumentsArePostedOnceWhenTheRunIsRepeatedOrInterrupted: the
// run that re-checks fixed documents stops (the ERP is down, the process is
// killed mid-post, the stage fails right after the re-checked rows are
// committed); the next runs post each exactly once, and more runs post nothing.
func TestRecheckedDocumentsArePostedOnceWhenTheRunIsRepeatedOrInterrupted(t *testing.T) {
	t.Parallel()
	type setup struct {
		w        *rejectWorld
		breakRun func(cancel context.CancelFunc) // makes the re-check run fail
		heal     func()
	}
	for _, tc := range []struct {
		name string
		make func(t *testing.T) setup
	}{
		{"ERP down during the re-check's load", func(t *testing.T) setup {
			w := newRejectWorld(t, 7)
			return setup{w, func(context.CancelFunc) {
				w.erpHook.set(func(rw http.ResponseWriter, r *http.Request) bool {
					http.Error(rw, "maintenance", http.StatusServiceUnavailable)
					return true
				})
			}, func() { w.erpHook.set(nil) }}
		}},
		{"killed during the re-check's posts", func(t *testing.T) setup {
			w := newRejectWorld(t, 7)
			return setup{w, func(cancel context.CancelFunc) {
				var n atomic.Int64
				w.erpHook.set(func(_ http.ResponseWriter, r *http.Request) bool {
					if r.Method == http.MethodPost && n.Add(1) == 2 {
						cancel()
					}
					return false
				})
			}, func() { w.erpHook.set(nil) }}
		}},
		{"stage fails after the re-checked rows are committed", func(t *testing.T) setup {
			var failing atomic.Bool
			url := s3test.HookedStageURL(t, func(rw http.ResponseWriter, r *http.Request) bool {
				if failing.Load() && r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/transform.json") {
					http.Error(rw, "injected", http.StatusInternalServerError)
					return true
				}
				return false
			})
			volume := smallVolume()
			volume.NoERPPercent = 20
			w := &rejectWorld{world: newWorld(t, worldOptions{seed: 7, volume: volume, stage: url}), sqlDir: acceptKWD(t)}
			return setup{w, func(context.CancelFunc) { failing.Store(true) }, func() { failing.Store(false) }}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.make(t)
			w := s.w
			w.mustRunTo(tenantTo)
			rejected := w.rejectsOf()
			if len(rejected) == 0 {
				t.Fatal("no rejects after the first run")
			}
			w.fixAccounts()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s.breakRun(cancel)
			if _, err := w.run(ctx, w.cfg(tenantTo)); err == nil {
				t.Fatal("the broken re-check run succeeded")
			}
			w.assertNothingUnconfirmedMarked()
			s.heal()
			healed := w.mustRunTo(tenantTo)
			if healed.NeedsAttention() {
				t.Errorf("the run after the interruption needs attention:\n%s", printed(healed))
			}
			requests := len(w.erp.Requests())
			for range 2 {
				w.mustRunTo(tenantTo)
			}
			if got := len(w.erp.Requests()); got != requests {
				t.Errorf("two more runs sent %d ERP requests; want none", got-requests)
			}
			creates := w.creates()
			for _, r := range rejected {
				if creates[r.ZuoraID] != 1 {
					t.Errorf("%s %s was created %d times; want exactly 1", r.DocType, r.Number, creates[r.ZuoraID])
				}
			}
			if idx, _, err := w.open(w.cfg(tenantTo)).Stage().ReadRejectIndex(context.Background()); err != nil || len(idx.Pending) != 0 || len(idx.Rejects) != 0 {
				t.Errorf("the reject index holds %d rejects and pending windows %v (%v); want none", len(idx.Rejects), idx.Pending, err)
			}
			w.assertPromise(w.open(w.cfg(tenantTo)))
		})
	}
}

// TestChangedDocumentIsPostedOnceByTheWindowOfItsNewVersion: a rejected
// document edited in Zuora (a new updatedDate) is not staged again in its old
// window by the re-check; the window whose range holds the new version stages
// it and posts it, once.
func TestChangedDocumentIsPostedOnceByTheWindowOfItsNewVersion(t *testing.T) {
	t.Parallel()
	w := newRejectWorld(t, 7)
	w.mustRunTo(tenantTo)
	var doc stage.OutstandingReject
	for _, r := range w.rejectsOf() {
		if r.DocType == "invoice" {
			doc = r
		}
	}
	if doc.ZuoraID == "" {
		t.Fatal("no rejected invoice")
	}
	edited := tenantTo.Add(90 * time.Minute)
	w.clock.Set(edited)
	if err := w.zuora.Touch(doc.ZuoraID); err != nil { // the document itself changed
		t.Fatal(err)
	}
	w.fixAccounts()
	w.clock.Set(tenantTo.Add(95 * time.Minute))

	// The next run's windows end before the new version: the re-check leaves it.
	w.mustRunTo(tenantTo.Add(time.Hour))
	if got := w.creates()[doc.ZuoraID]; got != 0 {
		t.Fatalf("the edited invoice was created %d times by the run whose windows end before its new version", got)
	}
	var note string
	for _, r := range w.rejectsOf() {
		if r.ZuoraID == doc.ZuoraID {
			note = r.Note
			if r.Window != doc.Window {
				t.Errorf("the edited invoice is outstanding in %s; want still %s", r.Window, doc.Window)
			}
		}
	}
	if !strings.Contains(note, "newer") {
		t.Errorf("the re-check's note on the edited invoice is %q; want it found newer", note)
	}

	w.clock.Set(tenantTo.Add(3 * time.Hour))
	later := w.mustRunTo(tenantTo.Add(2 * time.Hour))
	newWindow := stage.Window{Start: tenantTo.Add(time.Hour), End: tenantTo.Add(2 * time.Hour)}
	if got := w.creates()[doc.ZuoraID]; got != 1 {
		t.Fatalf("the edited invoice was created %d times; want once, by its new version's window", got)
	}
	p := w.open(w.cfg(tenantTo.Add(2 * time.Hour)))
	v := w.readStage(context.Background(), p.Stage())
	var postedIn []string
	for _, l := range v.ledger[doc.ZuoraID] {
		if l.action == "post" {
			postedIn = append(postedIn, l.window)
		}
	}
	if !slices.Equal(postedIn, []string{newWindow.ID()}) {
		t.Errorf("the edited invoice was posted from windows %v; want only %s", postedIn, newWindow.ID())
	}
	if later.NeedsAttention() {
		t.Errorf("after the new version posted, the run needs attention:\n%s", printed(later))
	}
}

// TestRecheckQueriesStayWithinLimits: every outstanding reject is fetched
// once per run, by id, in queries of at most extract.RecheckBatch ids whose
// URL stays short.
func TestRecheckQueriesStayWithinLimits(t *testing.T) {
	t.Parallel()
	volume := smallVolume()
	volume.NoERPPercent = 85 // some accounts keep theirs: the extract refuses a tenant where none has the field
	w := &rejectWorld{world: newWorld(t, worldOptions{seed: 7, volume: volume}), sqlDir: acceptKWD(t)}
	w.mustRunTo(tenantTo)
	outstanding := w.rejectsOf()
	if len(outstanding) <= 2*extract.RecheckBatch {
		t.Fatalf("%d outstanding rejects; the test needs more than %d", len(outstanding), 2*extract.RecheckBatch)
	}
	var mu sync.Mutex
	asked := map[string]int{}
	var longest, most int
	w.zuoraHook.set(func(_ http.ResponseWriter, r *http.Request) bool {
		// The re-check's own queries: not the accounts it fetches for the
		// applications, nor what the load asks about an application's documents.
		if strings.HasSuffix(r.URL.Path, "/accounts") || r.URL.Query().Get("fields[]") == "id,updatedDate" {
			return false
		}
		for _, f := range r.URL.Query()["filter[]"] {
			if list, ok := strings.CutPrefix(f, "id.IN:["); ok {
				ids := strings.Split(strings.TrimSuffix(list, "]"), ",")
				mu.Lock()
				longest, most = max(longest, len(r.URL.RequestURI())), max(most, len(ids))
				for _, id := range ids {
					asked[id]++
				}
				mu.Unlock()
			}
		}
		return false
	})
	w.mustRunTo(tenantTo)
	if most > extract.RecheckBatch || longest > 4096 {
		t.Errorf("a re-check query asked for %d ids in a %d-byte URL; want at most %d ids and 4 KiB", most, longest, extract.RecheckBatch)
	}
	for _, r := range outstanding {
		if asked[r.ZuoraID] != 1 {
			t.Errorf("%s %s was fetched %d times by one run; want once", r.DocType, r.Number, asked[r.ZuoraID])
		}
	}
	if len(asked) != len(outstanding) {
		t.Errorf("the re-check fetched %d ids for %d outstanding rejects", len(asked), len(outstanding))
	}
}

// TestRejectIndexIsBuiltForAStageStagedWithoutIt: a stage whose windows were
// staged before the index existed (or lost it) gets it built from every
// window's transform, with the same outstanding rejects.
func TestRejectIndexIsBuiltForAStageStagedWithoutIt(t *testing.T) {
	t.Parallel()
	w := newRejectWorld(t, 7)
	w.mustRunTo(tenantTo)
	want := w.rejectsOf()
	p := w.open(w.cfg(tenantTo))
	ctx := context.Background()
	objs, err := p.Stage().List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.Key == stage.RejectIndexKey || strings.HasSuffix(o.Key, "/rejects-indexed.json") {
			if err := p.Stage().Delete(ctx, o.Key); err != nil {
				t.Fatal(err)
			}
		}
	}
	ids := func(rs []stage.OutstandingReject) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Window+"/"+r.ZuoraID+"/"+r.ReasonCode)
		}
		return out
	}
	if got := w.rejectsOf(); !slices.Equal(ids(got), ids(want)) {
		t.Errorf("without the index the stage lists %v; want %v", ids(got), ids(want))
	}
	rep := w.mustRunTo(tenantTo)
	if rep.OutstandingRejects() != int64(len(want)) {
		t.Errorf("the run rebuilt %d outstanding rejects; want %d", rep.OutstandingRejects(), len(want))
	}
	if _, found, err := p.Stage().ReadRejectIndex(ctx); !found || err != nil {
		t.Errorf("the run left no index (%v)", err)
	}
}

// BenchmarkRecheckOfABacklog measures a run with no window due and most
// documents of a 5,000-document tenant outstanding (nine accounts in ten have
// no ERP id): the cost every run pays to re-check a backlog nothing fixed.
func BenchmarkRecheckOfABacklog(b *testing.B) {
	volume := zuorasim.Volume{Accounts: 150, Invoices: 2500, Payments: 1250, Refunds: 400, CreditMemos: 500, DebitMemos: 350,
		MaxItems: 120, NoERPPercent: 90, DraftPercent: 5, TransferredPercent: 3, BurstPercent: 20}
	w := &rejectWorld{world: newWorld(b, worldOptions{seed: 5, volume: volume}), sqlDir: acceptKWD(b)}
	quiet := func() pipeline.Config {
		c := w.cfg(tenantTo)
		c.Logger = slog.New(slog.DiscardHandler)
		return c
	}
	rep, err := w.run(context.Background(), quiet())
	if err != nil {
		b.Fatal(err)
	}
	backlog := rep.OutstandingRejects()
	b.ResetTimer()
	for b.Loop() {
		if rep, err = w.run(context.Background(), quiet()); err != nil || rep.OutstandingRejects() != backlog {
			b.Fatalf("run: %v; %d outstanding, want %d", err, rep.OutstandingRejects(), backlog)
		}
	}
	b.ReportMetric(float64(backlog), "rejects")
	b.ReportMetric(float64(backlog)*float64(b.N)/b.Elapsed().Seconds(), "rejects/s")
}
