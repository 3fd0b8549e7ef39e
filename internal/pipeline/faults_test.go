package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/s3test"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// The tenant's three hourly windows.
var (
	window1 = stage.Window{Start: tenantFrom, End: tenantFrom.Add(time.Hour)}
	window2 = stage.Window{Start: tenantFrom.Add(time.Hour), End: tenantFrom.Add(2 * time.Hour)}
)

// onNthPostIn calls fn once, when the ERP receives the nth POST (retries
// included) of a document whose updatedDate falls in window in.
func (w *world) onNthPostIn(in stage.Window, n int64, fn func()) {
	var seen atomic.Int64
	w.erpHook.set(func(_ http.ResponseWriter, r *http.Request) bool {
		if z, ok := w.initial[r.Header.Get("Idempotency-Key")]; ok && r.Method == http.MethodPost && in.Contains(z.updated) {
			if seen.Add(1) == n {
				fn()
			}
		}
		return false
	})
}

// windowLine returns the report of window in from rep.
func windowLine(t *testing.T, rep *pipeline.Report, in stage.Window) pipeline.WindowReport {
	t.Helper()
	for _, wr := range rep.Windows {
		if wr.Window.ID() == in.ID() {
			return wr
		}
	}
	t.Fatalf("the report has no window %s", in.ID())
	return pipeline.WindowReport{}
}

func sumLines(wr pipeline.WindowReport, col func(pipeline.Line) stage.Tally) int64 {
	var n int64
	for _, l := range wr.Lines {
		n += col(l).Count
	}
	return n
}

// assertStopsAt checks that the stage holds nothing of windows after in and
// that the high-water mark is in's end.
func assertStopsAt(t *testing.T, p *pipeline.Pipeline, in stage.Window) {
	t.Helper()
	status, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !status.HighWater.Equal(in.End) {
		t.Errorf("high-water mark = %s; want the end of window %s", status.HighWater, in.ID())
	}
	for _, wr := range status.Windows {
		if !wr.Window.Start.Before(in.End) {
			t.Errorf("the stage holds window %s, after the one that stopped (%s)", wr.Window.ID(), in.ID())
		}
	}
}

func TestERPOutageMidWindowStopsTheRunAndLoadThenRunRecover(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: 3, volume: smallVolume()})
	w.onNthPostIn(window2, 8, func() { w.erp.SetFaults(erpsim.Faults{Outage: true}) })
	ctx := context.Background()

	rep, err := w.run(ctx, w.config(tenantTo))
	var se *pipeline.StepError
	if !errors.As(err, &se) {
		t.Fatalf("run during an ERP outage: %v; want a *pipeline.StepError", err)
	}
	resume := pipeline.Step{Command: "load", Window: window2}
	if se.Step != "load" || se.Window.ID() != window2.ID() || se.Resume != resume {
		t.Errorf("step error: step %q window %s resume %+v; want load of %s resumed with %+v", se.Step, se.Window.ID(), se.Resume, window2.ID(), resume)
	}
	if first := strings.Split(err.Error(), "\n")[0]; !strings.Contains(first, "circuit breaker") || strings.Count(first, window2.ID()) != 1 {
		t.Errorf("first line %q does not name the root cause and its window once", first)
	}
	wr := windowLine(t, rep, window2)
	posted, pending := sumLines(wr, func(l pipeline.Line) stage.Tally { return l.Posted }), sumLines(wr, func(l pipeline.Line) stage.Tally { return l.Pending })
	if posted == 0 || pending == 0 || wr.Complete || !strings.Contains(wr.Stopped, "circuit breaker") {
		t.Errorf("window %s: posted %d pending %d complete %v stopped %q; want stopped by the breaker midway", window2.ID(), posted, pending, wr.Complete, wr.Stopped)
	}
	if !rep.Balanced() {
		t.Errorf("the stopped run's report does not balance:\n%s", printed(rep))
	}
	p := w.open(w.config(tenantTo))
	assertStopsAt(t, p, window2)
	w.assertNothingUnconfirmedMarked()

	w.erp.SetFaults(erpsim.Faults{})
	lrep, err := p.Load(ctx, window2)
	if err != nil {
		t.Fatalf("load --window %s after the outage: %v", window2.ID(), err)
	}
	// Complete, or waiting only for applications whose documents the last window holds.
	if wr := lrep.Windows[0]; !wr.Complete && !wr.Waiting {
		t.Errorf("window %s is not complete after load:\n%s", window2.ID(), printed(lrep))
	}
	final := w.mustRun(tenantTo)
	if len(final.Windows) == 0 || final.Windows[0].Window.Start != window2.End ||
		slices.ContainsFunc(final.Windows[1:], func(wr pipeline.WindowReport) bool {
			return wr.Why != "dependencies settled" && wr.Why != "rejects re-checked"
		}) {
		t.Errorf("the run after recovery processed %d windows; want only the last (and those whose applications waited for it):\n%s", len(final.Windows), printed(final))
	}
	w.assertPromise(p)
}

func TestERP429StormAndCommitThenTimeoutAreSettledAsDuplicates(t *testing.T) {
	w := newWorld(t, worldOptions{seed: 5, volume: smallVolume()})
	const storm, stalls = 25, 3
	w.onNthPostIn(window2, 3, func() { w.erp.SetFaults(erpsim.Faults{Storm429: storm, CommitThenStall: stalls}) })
	cfg := w.config(tenantTo)
	// More attempts than the storm has 429s, so no post can exhaust them.
	cfg.ERPRetry = retry.Policy{MaxAttempts: storm + 5, Initial: time.Millisecond, Max: 5 * time.Millisecond, MaxElapsed: 20 * time.Second}
	cfg.ERPTimeout = 500 * time.Millisecond
	p := w.open(cfg)
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatalf("run through a 429 storm and stalled commits: %v", err)
	}

	var tooMany int
	var stalled []string
	for _, r := range w.erp.Requests() {
		switch r.Status {
		case http.StatusTooManyRequests:
			tooMany++
		case 0:
			stalled = append(stalled, r.Key)
		}
	}
	if tooMany != storm || len(stalled) != stalls {
		t.Fatalf("the ERP answered %d requests 429 and dropped %d after committing; want %d and %d", tooMany, len(stalled), storm, stalls)
	}
	v := w.readStage(context.Background(), p.Stage())
	for _, id := range stalled {
		var posts []ledgerRow
		for _, r := range v.ledger[id] {
			if r.action == "post" {
				posts = append(posts, r)
			}
		}
		if len(posts) != 1 || posts[0].outcome != "duplicate" || !posts[0].ambiguous {
			t.Errorf("document %s, committed but unanswered: ledger posts %+v; want one ambiguous duplicate", id, posts)
		}
	}
	w.assertPromise(p)
}

func TestZuoraFaultsDuringARunAreRiddenOut(t *testing.T) {
	t.Parallel()
	faults := zuorasim.Faults{
		RetryAfter:     -1, // Retry-After: 0, so the backoff decides
		Status429Every: 7, Status500Every: 11, DropEvery: 13, TruncateEvery: 17, ExpireTokenEvery: 19,
		DropAfterEvery: 23, MalformedEvery: 29,
		LockCompetitionEvery: 11, TemporaryErrorEvery: 13, TouchPerPage: 1,
	}
	// Enough documents that the last window's walks take several pages.
	volume := smallVolume()
	volume.Invoices, volume.Payments, volume.CreditMemos = 400, 250, 100
	w := newWorld(t, worldOptions{seed: 9, volume: volume, sim: zuorasim.Options{Faults: faults}})
	// Touches and marks stamp the last window, so records touched in a walk,
	// and marks, come back in the same walk or in that window.
	w.clock.Set(tenantTo.Add(-time.Minute))
	ctx := context.Background()
	cfg := func() pipeline.Config {
		c := w.config(tenantTo)
		// About a third of the calls fail: enough attempts to see each through.
		c.ZuoraRetry.MaxAttempts = 12
		return c
	}
	if _, err := w.run(ctx, cfg()); err != nil {
		t.Logf("first run under Zuora faults: %v", err)
		if _, err := w.run(ctx, cfg()); err != nil {
			t.Fatalf("second run under Zuora faults: %v", err)
		}
	}
	fired := w.zuora.Stats().Faults
	for _, kind := range []string{"429", "500", "drop", "drop-after", "truncate", "malformed", "expire-token", "LOCK_COMPETITION", "TEMPORARY_ERROR"} {
		if fired[kind] == 0 {
			t.Errorf("fault %s never fired (fired: %v)", kind, fired)
		}
	}
	p := w.open(w.config(tenantTo))
	v := w.readStage(ctx, p.Stage())
	// Posted documents touched in a walk or marked come back in the last
	// window, to be skipped; a record touched during that window's own walk is
	// staged twice.
	var cameBack, twice int
	for id, z := range w.initial {
		if _, posted := v.ledger[id]; z.eligible && posted && len(v.skipped[id]) > 0 {
			cameBack++
		}
	}
	for _, n := range v.versions {
		if n > 1 {
			twice++
		}
	}
	if cameBack == 0 || twice == 0 {
		t.Errorf("%d posted documents came back and %d records were staged twice in one window; want some of each", cameBack, twice)
	}
	w.assertPromise(p)
}

// killDuringLoad cancels a run during the load of window 2 on the stage at
// stageURL, then runs again.
func killDuringLoad(t *testing.T, stageURL string) {
	w := newWorld(t, worldOptions{seed: 13, volume: smallVolume(), stage: stageURL})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.onNthPostIn(window2, 6, cancel)
	_, err := w.run(ctx, w.config(tenantTo))
	var se *pipeline.StepError
	if !errors.As(err, &se) || se.Step != "load" || se.Resume != (pipeline.Step{Command: "load", Window: window2}) || !errors.Is(err, context.Canceled) {
		t.Fatalf("killed run: %v; want the cancelled load of %s with its resume command", err, window2.ID())
	}
	p := w.open(w.config(tenantTo))
	assertStopsAt(t, p, window2)
	w.assertNothingUnconfirmedMarked()
	w.erpHook.set(nil)
	w.mustRun(tenantTo)
	w.assertPromise(p)
}

func TestKilledMidRunThenRunAgainPostsNothingTwice(t *testing.T) {
	t.Parallel()
	// Not mem://: a killed process takes its mem:// stage with it.
	for name, stageURL := range map[string]func(t *testing.T) string{
		"file": func(t *testing.T) string { return "" },
		"s3":   func(t *testing.T) string { return s3test.StageURL(t) },
	} {
		t.Run("during load on "+name, func(t *testing.T) { killDuringLoad(t, stageURL(t)) })
	}
	t.Run("during write-back", func(t *testing.T) {
		w := newWorld(t, worldOptions{seed: 19, volume: smallVolume()})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var marks atomic.Int64
		w.zuoraHook.set(func(_ http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/v1/action/update" && marks.Add(1) == 3 {
				// Killed while the call is in flight: the client hangs up, then
				// Zuora applies the marks it can no longer report.
				body, _ := io.ReadAll(r.Body) // a server notices a hang-up only after the body
				r.Body = io.NopCloser(bytes.NewReader(body))
				cancel()
				<-r.Context().Done()
			}
			return false
		})
		_, err := w.run(ctx, w.config(tenantTo))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("killed run: %v; want context.Canceled", err)
		}
		w.assertNothingUnconfirmedMarked()
		status, err := w.open(w.config(tenantTo)).Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !status.Unfinished() {
			t.Errorf("after a kill during write-back the status shows every posted document marked:\n%s", printed(status))
		}
		w.zuoraHook.set(nil)
		w.mustRun(tenantTo)
		p := w.open(w.config(tenantTo))
		w.assertPromise(p)
	})
	t.Run("during extract", func(t *testing.T) {
		w := newWorld(t, worldOptions{seed: 17, volume: smallVolume()})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var cancelled atomic.Bool
		// Cancelled at the first query of window 2's walk (a range query
		// reaching back the overlap before its start); the load of window 1
		// asks Zuora too, by id, about its applications' documents.
		w.zuoraHook.set(func(_ http.ResponseWriter, r *http.Request) bool {
			for _, f := range r.URL.Query()["filter[]"] {
				if v, ok := strings.CutPrefix(f, "updateddate.GE:"); ok {
					if at, err := time.Parse(time.RFC3339, v); err == nil && !at.Before(window2.Start.Add(-time.Hour)) && at.Before(window2.End) && !cancelled.Swap(true) {
						cancel()
					}
				}
			}
			return false
		})
		_, err := w.run(ctx, w.config(tenantTo))
		var se *pipeline.StepError
		if !errors.As(err, &se) || se.Step != "extract" || se.Window.ID() != window2.ID() || !errors.Is(err, context.Canceled) {
			t.Fatalf("killed run: %v; want the cancelled extract of %s", err, window2.ID())
		}
		p := w.open(w.config(tenantTo))
		assertStopsAt(t, p, window1)
		posted := len(w.erpDocuments())
		w.zuoraHook.set(nil)
		w.mustRun(tenantTo)
		if len(w.erpDocuments()) <= posted {
			t.Errorf("the second run posted nothing after the killed extract")
		}
		w.assertPromise(p)
	})
}

func TestZuoraWriteBackDownKeepsPostsAndTheNextRunMarksThem(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: 29, volume: smallVolume()})
	w.zuora.SetFaults(zuorasim.Faults{Path: "/v1/", Status500Every: 1})
	ctx := context.Background()
	_, err := w.run(ctx, w.config(tenantTo))
	var se *pipeline.StepError
	if !errors.As(err, &se) || se.Step != "load" || se.Window.ID() != window1.ID() {
		t.Fatalf("run with Zuora's write-back down: %v; want the load of %s to fail", err, window1.ID())
	}
	posted := map[string]bool{}
	for _, d := range w.erpDocuments() {
		posted[d.Key] = true
	}
	if len(posted) == 0 || w.zuora.Stats().MarksApplied != 0 {
		t.Fatalf("the ERP holds %d documents and Zuora applied %d marks; want posts and no mark", len(posted), w.zuora.Stats().MarksApplied)
	}
	p := w.open(w.config(tenantTo))
	assertStopsAt(t, p, window1)

	w.zuora.SetFaults(zuorasim.Faults{})
	before := len(w.erp.Requests())
	w.mustRun(tenantTo)
	for _, r := range w.erp.Requests()[before:] {
		if posted[r.Key] {
			t.Errorf("document %s, confirmed before the write-back failed, was posted again", r.Key)
		}
	}
	w.assertPromise(p)
}
