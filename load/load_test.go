package load

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/s3test"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func TestRunPostsEveryDocumentOnceInDependencyOrder(t *testing.T) {
	backends := map[string]func(t *testing.T) string{
		"file": func(t *testing.T) string { return "file://" + t.TempDir() },
		// mem:// buckets live as long as the process, one per name.
		"mem": func(t *testing.T) string { return fmt.Sprintf("mem://load-test-%d", time.Now().UnixNano()) },
		"s3": func(t *testing.T) string {
			return s3test.StageURL(t)
		},
	}
	for _, name := range []string{"file", "mem", "s3"} {
		t.Run(name, func(t *testing.T) {
			testRunPostsEveryDocumentOnce(t, newEnvOn(t, backends[name](t), makeSpecs(40)))
		})
	}
}

func testRunPostsEveryDocumentOnce(t *testing.T, e *env) {
	var mu sync.Mutex
	var wire []*http.Request
	e.wrap = func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		wire = append(wire, r.Clone(context.Background()))
		mu.Unlock()
		next.ServeHTTP(w, r)
	}
	man, err := e.run(e.ctx, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	e.assertSettled(man, nil)

	// What went over the wire.
	for _, r := range wire {
		if r.Header.Get("Authorization") != "Bearer "+erpToken || r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
			t.Fatalf("request headers = %v", r.Header)
		}
	}
	reqs := e.sim.Requests()
	if len(reqs) != 40 {
		t.Fatalf("the ERP got %d requests; want 40", len(reqs))
	}
	rank := map[string]int{}
	for i, dt := range stage.Documents() {
		rank[dt.Endpoint()] = i
	}
	for i := 1; i < len(reqs); i++ {
		if rank[reqs[i].Path] < rank[reqs[i-1].Path] {
			t.Fatalf("request %d to %s came after %s: not in dependency order", i, reqs[i].Path, reqs[i-1].Path)
		}
	}

	// The ledger: one post and one mark per document, in parts of at most 7 rows.
	parts, err := e.st.List(e.ctx, stage.LedgerPrefix(testWindow))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != (80+6)/7 {
		t.Fatalf("ledger has %d parts; want %d (80 rows, 7 per part)", len(parts), (80+6)/7)
	}
	rows := e.ledger()
	erp := e.erpDocs()
	posts, marks := 0, 0
	for _, r := range rows {
		switch {
		case r.Action == stage.ActionPost && r.Outcome == stage.OutcomeCreated:
			posts++
			if r.ERPID != erp[r.ZuoraID].ID || r.HTTPStatus != 201 || r.Attempts != 1 || r.Ambiguous || r.RunID != man.RunID {
				t.Fatalf("post row = %+v", r)
			}
			if !amountOf(r).Equal(erp[r.ZuoraID].Amount) {
				t.Fatalf("ledger amount %s; ERP has %s", amountOf(r), erp[r.ZuoraID].Amount)
			}
		case r.Action == stage.ActionMark && r.Outcome == stage.OutcomeMarked:
			marks++
		default:
			t.Fatalf("unexpected ledger row %+v", r)
		}
		if r.StartedAt.IsZero() || r.FinishedAt.Before(r.StartedAt) || r.PayloadSHA256 == "" {
			t.Fatalf("row times/digest = %+v", r)
		}
	}
	if posts != 40 || marks != 40 {
		t.Fatalf("ledger has %d posts and %d marks; want 40 and 40", posts, marks)
	}
	for _, c := range e.marker.calls {
		if len(c.ids) > MarkBatch {
			t.Fatalf("a Marker call got %d ids", len(c.ids))
		}
	}

	// A second run finds nothing to do.
	calls := e.marker.callCount()
	man2, err := e.run(e.ctx, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(e.sim.Requests()) != 40 || e.marker.callCount() != calls {
		t.Fatalf("a re-run of a complete window posted or marked again")
	}
	e.assertSettled(man2, nil)
}

func TestOutageTripsBreakerThenResumes(t *testing.T) {
	e := newEnv(t, makeSpecs(60))
	// The ERP goes down for good from its 12th request on. The wrapper
	// answers the outage itself, by the request's number on arrival: a
	// fault flag set by request 12 could also fail request 11 while it was
	// still on its way into the simulator.
	var n atomic.Int32
	e.wrap = func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if n.Add(1) >= 12 {
			http.Error(w, `{"error":"erp is down for maintenance"}`, http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	}
	opts := e.opts()
	opts.Concurrency, opts.BreakerThreshold = 2, 3
	man, err := e.run(e.ctx, opts)
	if err == nil {
		t.Fatal("Run succeeded against a dead ERP")
	}
	var le *Error
	if !errors.As(err, &le) || le.Window != testWindow || !strings.Contains(le.Kept, "pending") {
		t.Errorf("error %v; want a *load.Error of window %s saying what is pending", err, testWindow.ID())
	}
	if !strings.Contains(err.Error(), "circuit breaker") || strings.Count(err.Error(), testWindow.ID()) != 1 {
		t.Errorf("error %q does not name the breaker and its window once", err)
	}
	if strings.Contains(err.Error(), erpToken) {
		t.Error("the error holds the ERP token")
	}
	if !strings.Contains(man.StoppedBecause, "circuit breaker") || man.Complete {
		t.Fatalf("manifest stopped=%q complete=%v", man.StoppedBecause, man.Complete)
	}
	// It gave up quickly: at most threshold+concurrency documents were tried against the outage.
	failedReqs := int(n.Load()) - 11
	if max := (opts.BreakerThreshold + opts.Concurrency) * fastRetry.MaxAttempts; failedReqs > max {
		t.Fatalf("%d requests hit the dead ERP; want at most %d", failedReqs, max)
	}
	// What the ERP confirmed is marked; nothing else.
	confirmed := e.erpDocs()
	if len(confirmed) != 11 {
		t.Fatalf("the ERP holds %d documents; want the 11 posted before the outage", len(confirmed))
	}
	e.marker.mu.Lock()
	if len(e.marker.marked) != len(confirmed) {
		t.Errorf("marked %d documents; the ERP confirmed %d", len(e.marker.marked), len(confirmed))
	}
	for id := range e.marker.marked {
		if _, ok := confirmed[id]; !ok {
			t.Errorf("marked %s, which the ERP never confirmed", id)
		}
	}
	e.marker.mu.Unlock()
	e.assertAddsUp(man, nil)
	var pending int64
	for _, tt := range man.Totals {
		pending += tt.Pending.Count
	}
	if pending != 60-11 {
		t.Fatalf("manifest says %d pending; want 49", pending)
	}
	status, err := Pending(e.ctx, e.st, testWindow)
	if err != nil || status.StoppedBecause != man.StoppedBecause || len(status.Totals) != len(man.Totals) {
		t.Fatalf("Pending = %+v, %v; want the run's picture", status, err)
	}
	for i := range status.Totals {
		if !status.Totals[i].Pending.Equal(man.Totals[i].Pending) || !status.Totals[i].Marked.Equal(man.Totals[i].Marked) {
			t.Fatalf("Pending totals %+v; run said %+v", status.Totals[i], man.Totals[i])
		}
	}

	// The ERP recovers; the same command finishes the window.
	e.wrap = nil
	man, err = e.run(e.ctx, opts)
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	e.assertSettled(man, nil)
}

func TestStormOf429IsRetried(t *testing.T) {
	e := newEnv(t, makeSpecs(20))
	e.sim.SetFaults(erpsim.Faults{Storm429: 15})
	opts := e.opts()
	opts.erp.Retry.MaxAttempts = 10
	man, err := e.run(e.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.assertSettled(man, nil)
	var storms, retried int
	for _, r := range e.sim.Requests() {
		if r.Status == http.StatusTooManyRequests {
			storms++
		}
	}
	for _, r := range e.ledger() {
		if r.Action == stage.ActionPost && r.Attempts > 1 {
			retried++
		}
	}
	if storms != 15 || retried == 0 {
		t.Fatalf("%d answers were 429 and %d posts retried; want 15 and some", storms, retried)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t, makeSpecs(1))
	e.sim.SetFaults(erpsim.Faults{Storm429: 1, RetryAfter: time.Second})
	start := time.Now()
	man, err := e.run(e.ctx, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("retried after %v; the ERP said Retry-After: 1", took)
	}
	e.assertSettled(man, nil)
}

func TestTimeoutAfterCommitIsSettledByTheRetry(t *testing.T) {
	e := newEnv(t, makeSpecs(10))
	e.sim.SetFaults(erpsim.Faults{CommitThenStall: 3})
	opts := e.opts()
	opts.erp.Timeout = 150 * time.Millisecond
	man, err := e.run(e.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.assertSettled(man, nil)
	erp := e.erpDocs()
	var ambiguous int
	for _, r := range e.ledger() {
		if r.Action != stage.ActionPost || !r.Ambiguous {
			continue
		}
		ambiguous++
		if r.Outcome != stage.OutcomeDuplicate || r.HTTPStatus != 200 || r.Attempts != 2 || r.ERPID != erp[r.ZuoraID].ID {
			t.Errorf("ambiguous post row = %+v; want a duplicate on the second attempt with the ERP's id", r)
		}
	}
	if ambiguous != 3 {
		t.Fatalf("%d ambiguous posts in the ledger; want 3", ambiguous)
	}
}

func TestRejectedDocumentIsRecordedAndNotRetried(t *testing.T) {
	specs := makeSpecs(10)
	bad := specs[3]
	e := newEnv(t, specs)
	e.sim.SetFaults(erpsim.Faults{RejectKeys: map[string]string{bad.id: "customer ERP-X is closed"}})
	man, err := e.run(e.ctx, e.opts())
	if err != nil {
		t.Fatalf("a rejection is not a run error: %v", err)
	}
	e.assertSettled(man, map[string]bool{bad.id: true})
	var rows int
	for _, r := range e.ledger() {
		if r.ZuoraID == bad.id {
			rows++
			if r.Action != stage.ActionPost || r.Outcome != stage.OutcomeRejected || r.HTTPStatus != 422 || r.Message != "customer ERP-X is closed" || r.Attempts != 1 {
				t.Fatalf("rejected row = %+v", r)
			}
		}
	}
	if rows != 1 {
		t.Fatalf("%d ledger rows for the rejected document; want 1", rows)
	}

	// A re-run with the same payload leaves it alone.
	before := len(e.sim.Requests())
	if _, err := e.run(e.ctx, e.opts()); err != nil {
		t.Fatal(err)
	}
	if len(e.sim.Requests()) != before {
		t.Fatal("a re-run re-posted a rejected document whose payload did not change")
	}

	// Once the transform fixes the payload, the next run posts it.
	specs[3].customer = "ERP-FIXED"
	e.writeFixture(specs)
	e.sim.SetFaults(erpsim.Faults{})
	man, err = e.run(e.ctx, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(e.sim.Requests()) != before+1 {
		t.Fatalf("the fixed document took %d requests; want 1", len(e.sim.Requests())-before)
	}
	e.assertSettled(man, nil)
}

func TestCancelledMidLoadThenRerun(t *testing.T) {
	e := newEnv(t, makeSpecs(40))
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	var created atomic.Int32
	e.wrap = func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		next.ServeHTTP(w, r)
		if created.Add(1) == 15 {
			cancel() // Ctrl-C while posts are in flight
		}
	}
	e.sim.SetFaults(erpsim.Faults{Latency: 5 * time.Millisecond})
	opts := e.opts()
	opts.LedgerFlush = 1000 // nothing reaches the stage before the final flush
	man, err := e.run(ctx, opts)
	var le *Error
	if !errors.Is(err, context.Canceled) || !errors.As(err, &le) || le.Window != testWindow {
		t.Fatalf("Run = %v; want a *load.Error of the window, cancelled", err)
	}
	if man.Complete || !strings.HasPrefix(man.StoppedBecause, "cancelled") {
		t.Fatalf("manifest complete=%v stopped=%q", man.Complete, man.StoppedBecause)
	}
	if e.marker.callCount() != 0 {
		t.Fatal("a cancelled run marked documents in Zuora")
	}
	// The final flush recorded what the ERP had confirmed before the cancel.
	erp := e.erpDocs()
	var confirmedInLedger int
	for _, r := range e.ledger() {
		if r.Outcome == stage.OutcomeCreated {
			confirmedInLedger++
			if _, ok := erp[r.ZuoraID]; !ok {
				t.Fatalf("the ledger confirms %s, which the ERP does not hold", r.ZuoraID)
			}
		}
	}
	// When the 15th request was served, at most Concurrency posts were in flight.
	if confirmedInLedger < 15-opts.Concurrency {
		t.Fatalf("the ledger confirms %d documents; at least %d were answered before the cancel", confirmedInLedger, 15-opts.Concurrency)
	}

	e.wrap = nil
	man, err = e.run(e.ctx, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	e.assertSettled(man, nil)
}

func TestKilledBeforeLedgerFlushIsSettledAsDuplicates(t *testing.T) {
	specs := makeSpecs(8)
	e := newEnv(t, specs)
	// A previous process posted three documents and died before writing its ledger.
	client := e.client()
	for _, s := range specs[:3] {
		if res := client.Post(e.ctx, s.document(t)); res.Outcome != stage.OutcomeCreated {
			t.Fatalf("pre-post = %+v", res)
		}
	}
	man, err := e.run(e.ctx, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	e.assertSettled(man, nil)
	var dups int
	for _, r := range e.ledger() {
		if r.Outcome == stage.OutcomeDuplicate {
			dups++
		}
	}
	if dups != 3 {
		t.Fatalf("%d duplicates in the ledger; want 3", dups)
	}
}

func TestWriteBackPartialFailuresAreRetriedByTheNextRun(t *testing.T) {
	var specs []spec
	for _, s := range makeSpecs(600) {
		if s.docType == "invoice" {
			specs = append(specs, s) // 120 invoices: three Marker batches
		}
	}
	e := newEnv(t, specs)
	e.marker.fail[specs[7].id] = "LOCK_COMPETITION"
	e.marker.fail[specs[99].id] = "INVALID_VALUE"
	opts := e.opts()
	opts.Concurrency = 8
	man, err := e.run(e.ctx, opts)
	var le *Error
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "refused to mark 2") || !strings.Contains(le.Kept, "2 confirmed documents are not yet marked") {
		t.Fatalf("Run = %v; want a *load.Error about 2 unmarked documents", err)
	}
	var sizes []int // the batches go several at once: in any order
	for _, c := range e.marker.calls {
		if c.object != "Invoice" {
			t.Fatalf("a Marker call for %s; want Invoice only", c.object)
		}
		sizes = append(sizes, len(c.ids))
	}
	if slices.Sort(sizes); !slices.Equal(sizes, []int{20, 50, 50}) {
		t.Fatalf("Marker calls of %v ids; want 3 batches of at most 50 Invoice ids (50, 50, 20)", sizes)
	}
	if man.Complete {
		t.Fatal("manifest complete with unmarked documents")
	}
	e.assertAddsUp(man, nil)
	failed := map[string]string{}
	for _, r := range e.ledger() {
		if r.Outcome == stage.OutcomeMarkFailed {
			failed[r.ZuoraID] = r.Message
		}
	}
	if len(failed) != 2 || !strings.HasPrefix(failed[specs[7].id], "LOCK_COMPETITION: ") || !strings.HasPrefix(failed[specs[99].id], "INVALID_VALUE: ") {
		t.Fatalf("mark_failed rows = %v", failed)
	}

	// Zuora is down for the next run: the call fails, the run says so.
	e.marker.fail = map[string]string{}
	e.marker.callErr = errors.New("zuora answered 503 after 6 attempts")
	if _, err := e.run(e.ctx, opts); err == nil || !strings.Contains(err.Error(), "write-back to Zuora failed") {
		t.Fatalf("Run with Zuora down = %v", err)
	}

	// Zuora is back: only the two unmarked documents are marked, and nothing is re-posted.
	e.marker.callErr = nil
	calls, reqs := len(e.marker.calls), len(e.sim.Requests())
	man, err = e.run(e.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if last := e.marker.calls[len(e.marker.calls)-1]; len(e.marker.calls) != calls+1 || len(last.ids) != 2 {
		t.Fatalf("the resumed run made %d Marker calls, last with %v; want one call with the 2 unmarked ids", len(e.marker.calls)-calls, last.ids)
	}
	if len(e.sim.Requests()) != reqs {
		t.Fatal("the resumed run posted to the ERP again")
	}
	e.assertSettled(man, nil)
}

func TestBadTokenStopsTheRunWithoutLeakingIt(t *testing.T) {
	e := newEnv(t, makeSpecs(20))
	opts := e.opts()
	opts.erp.Token = "wrong-" + erpToken
	man, err := e.run(e.ctx, opts)
	var le *Error
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Run = %v; want a *load.Error naming the 401", err)
	}
	if strings.Contains(err.Error(), erpToken) || strings.Contains(e.logs.String(), erpToken) {
		t.Fatal("the token leaked into the error or the logs")
	}
	if n := len(e.sim.Requests()); n > opts.Concurrency {
		t.Fatalf("%d requests with a bad token; want at most one per worker", n)
	}
	for _, tt := range man.Totals {
		if tt.Rejected.Count != 0 {
			t.Fatal("a bad token counted documents as rejected")
		}
	}
	opts.erp.Token = erpToken
	man, err = e.run(e.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.assertSettled(man, nil)
}

func TestRunNeedsATransformManifest(t *testing.T) {
	e := newEnv(t, nil)
	other := stage.Window{Start: testWindow.End, End: testWindow.End.Add(time.Hour)}
	_, err := e.runWindow(e.ctx, other, e.opts())
	if err == nil || !strings.Contains(err.Error(), "no transform manifest") {
		t.Fatalf("Run = %v; want a missing transform manifest error", err)
	}
}

// BenchmarkRun measures a whole window's load: 200 documents posted with four
// workers to the simulator over real HTTP, the ledger written to a file:// stage,
// and every document marked.
func BenchmarkRun(b *testing.B) {
	specs := makeSpecs(200)
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, specs)
		opts := e.opts()
		opts.LedgerFlush = 50
		b.StartTimer()
		if _, err := e.run(e.ctx, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(specs)*b.N)/b.Elapsed().Seconds(), "docs/s")
}

func TestIsolatedFailureLeavesTheWindowPendingWithoutTrippingTheBreaker(t *testing.T) {
	e := newEnv(t, makeSpecs(10))
	// The first document fails every attempt; the ERP then recovers.
	e.sim.SetFaults(erpsim.Faults{FailNext: fastRetry.MaxAttempts, FailStatus: 500})
	opts := e.opts()
	opts.Concurrency, opts.BreakerThreshold = 1, 2
	man, err := e.run(e.ctx, opts)
	if err == nil || !strings.Contains(err.Error(), "1 documents are still pending") || !errors.As(err, new(*Error)) {
		t.Fatalf("Run = %v; want an error naming the pending document and the resume command", err)
	}
	if man.StoppedBecause != "" || man.Complete || len(e.sim.Documents()) != 9 {
		t.Fatalf("stopped=%q complete=%v erp docs=%d; want no breaker, 9 posted", man.StoppedBecause, man.Complete, len(e.sim.Documents()))
	}
	e.assertAddsUp(man, nil)
	man, err = e.run(e.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.assertSettled(man, nil)
}

func TestConflictingBodyIsRejectedAndNotMarked(t *testing.T) {
	specs := makeSpecs(3)
	e := newEnv(t, specs)
	// The ERP already holds the first document's key with another body.
	other := specs[0]
	other.customer = "ERP-OTHER"
	if res := e.client().Post(e.ctx, other.document(t)); res.Outcome != stage.OutcomeCreated {
		t.Fatalf("pre-post = %+v", res)
	}
	man, err := e.run(e.ctx, e.opts())
	if err != nil {
		t.Fatalf("a conflict is a rejection, not a run error: %v", err)
	}
	for _, r := range e.ledger() {
		if r.ZuoraID == specs[0].id && (r.Outcome != stage.OutcomeRejected || r.HTTPStatus != 409 || !strings.Contains(r.Message, "different body")) {
			t.Fatalf("conflict row = %+v", r)
		}
	}
	if e.marker.marked[specs[0].id] != 0 || e.marker.marked[specs[1].id] != 1 || e.marker.marked[specs[2].id] != 1 {
		t.Fatalf("marked = %v; want the two posted documents only", e.marker.marked)
	}
	var rejected int64
	for _, tt := range man.Totals {
		rejected += tt.Rejected.Count
	}
	if rejected != 1 || !man.Complete {
		t.Fatalf("manifest rejected=%d complete=%v; want 1 and complete", rejected, man.Complete)
	}
}

func TestUnwritableLedgerStopsBeforeAnyMark(t *testing.T) {
	root := t.TempDir()
	st, err := stage.Open(context.Background(), "file://"+root)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, makeSpecs(30))
	e.st = st
	e.writeFixture(e.specs)
	// A file where the ledger folder should be: no ledger part can be written.
	if err := os.WriteFile(filepath.Join(root, "ledger"), []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := e.opts()
	opts.LedgerFlush = 3
	_, err = e.run(e.ctx, opts)
	if err == nil || !strings.Contains(err.Error(), "the stage refused the ledger") || !errors.As(err, new(*Error)) {
		t.Fatalf("Run = %v; want a ledger error naming the resume command", err)
	}
	if e.marker.callCount() != 0 {
		t.Fatal("documents were marked although the ledger does not record their posts")
	}
	if n := len(e.sim.Documents()); n == 0 || n > 3+opts.Concurrency {
		t.Fatalf("the ERP got %d documents; want the run to stop right after the first failed part", n)
	}

	// The stage is fixed; the re-run finds the posted documents through their keys.
	if err := os.Remove(filepath.Join(root, "ledger")); err != nil {
		t.Fatal(err)
	}
	man, err := e.run(e.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.assertSettled(man, nil)
}

// TestLedgerThatCannotBeWrittenSaysWhatWasKept (issue 9, item 14): when the
// stage refuses the ledger after the ERP confirmed documents, the error says
// that those answers are not recorded (and nothing was marked), instead of
// claiming the ledger keeps every answer; the next load settles them.
func TestLedgerThatCannotBeWrittenSaysWhatWasKept(t *testing.T) {
	dir := t.TempDir()
	e := newEnvOn(t, "file://"+dir, makeSpecs(30))
	// A file where the window's ledger folder goes: every part write fails, as on a full disk.
	ledgerDir := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(stage.LedgerPrefix(testWindow), "/")))
	if err := os.MkdirAll(filepath.Dir(ledgerDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ledgerDir, []byte("full"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := e.opts()
	opts.LedgerFlush = 1000 // every answer waits for the final flush
	_, err := e.run(e.ctx, opts)
	var le *Error
	if !errors.As(err, &le) {
		t.Fatalf("Run = %v; want a *load.Error", err)
	}
	posted := len(e.erpDocs())
	for _, want := range []string{"not recorded", fmt.Sprintf("(%d confirmations)", posted), "nothing was marked in Zuora"} {
		if !strings.Contains(le.Kept, want) {
			t.Errorf("kept %q does not say %q", le.Kept, want)
		}
	}
	if strings.Contains(err.Error()+le.Kept, "keeps every") || posted == 0 {
		t.Errorf("error %q, kept %q, %d posted: claims the ledger kept what it did not", err, le.Kept, posted)
	}
	if e.marker.callCount() != 0 {
		t.Error("documents were marked in Zuora although the ledger does not hold their confirmation")
	}

	if err := os.Remove(ledgerDir); err != nil {
		t.Fatal(err)
	}
	man, err := e.run(e.ctx, e.opts())
	if err != nil {
		t.Fatalf("load after the disk was freed: %v", err)
	}
	e.assertSettled(man, nil)
	if len(e.erpDocs()) != posted {
		t.Errorf("the ERP holds %d documents after the second load; want the same %d", len(e.erpDocs()), posted)
	}
}
