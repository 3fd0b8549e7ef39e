package pipeline_test

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
)

// zuoraDown makes every request to the Zuora simulator answer 503 until the
// returned function is called.
func (w *world) zuoraDown() (up func()) {
	w.zuoraHook.set(func(rw http.ResponseWriter, _ *http.Request) bool {
		rw.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	return func() { w.zuoraHook.set(nil) }
}

// TestFutureWindowsAreNeverCommitted (issue 9, item 1): a run asked for
// windows up to a time later than now minus the settle lag commits none that
// ends after it; a later run takes the rest, and every document ends once.
func TestFutureWindowsAreNeverCommitted(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: 5, volume: smallVolume()})
	ctx := context.Background()
	now := tenantFrom.Add(76 * time.Minute) // 01:16, with --until 03:00
	// A backfill asked for a month ahead stages the settled windows only, and says so.
	bcfg := w.config(tenantTo)
	bcfg.Now = func() time.Time { return now }
	bcfg.StageURL = "file://" + t.TempDir()
	bf, err := w.open(bcfg).Extract(ctx, tenantFrom, tenantFrom.AddDate(0, 1, 0), false)
	if err != nil {
		t.Fatalf("extract to next month: %v", err)
	}
	if len(bf.Windows) != 2 || !bf.Windows[1].End.Equal(now.Add(-5*time.Minute)) || bf.Clamped == nil || !bf.Clamped.Horizon.Equal(now.Add(-5*time.Minute)) {
		t.Errorf("extract to next month at %s staged %v (clamped %+v); want two windows, the last ending at now minus the settle lag", now, bf.Windows, bf.Clamped)
	}

	cfg := w.config(tenantTo)
	cfg.Now = func() time.Time { return now }
	rep, err := w.run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	horizon := now.Add(-5 * time.Minute)
	if c := rep.Clamped; c == nil || !c.Horizon.Equal(horizon) || !c.Requested.Equal(tenantTo) || !strings.Contains(printed(rep), "later than now minus the settle lag") {
		t.Errorf("the report does not say the requested end was clamped (%+v):\n%s", rep.Clamped, printed(rep))
	}
	p := w.open(w.config(tenantTo))
	status, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status.HighWater.After(horizon) {
		t.Errorf("high-water mark %s is later than now minus the settle lag (%s)", status.HighWater, horizon)
	}
	for _, wr := range status.Windows {
		if wr.Window.End.After(horizon) {
			t.Errorf("window %s was committed; it ends after now minus the settle lag (%s)", wr.Window.ID(), horizon)
		}
	}

	now = tenantTo.Add(10 * time.Minute)
	cfg = w.config(tenantTo)
	cfg.Now = func() time.Time { return now }
	if _, err := w.run(ctx, cfg); err != nil {
		t.Fatalf("run once the windows have settled: %v", err)
	}
	w.assertPromise(w.open(w.config(tenantTo)))
}

// TestFailedFirstRunIsResumedFromItsStart (issue 9, item 2): a first run that
// fails with Zuora down leaves the stage's start point, so a plain run (no
// --since) resumes from it and nothing before is skipped.
func TestFailedFirstRunIsResumedFromItsStart(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: 6, volume: smallVolume()})
	ctx := context.Background()
	up := w.zuoraDown()
	if _, err := w.run(ctx, w.config(tenantTo)); err == nil {
		t.Fatal("run with Zuora down succeeded")
	}
	up()
	cfg := w.config(tenantTo)
	cfg.Since = time.Time{}
	rep, err := w.run(ctx, cfg)
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if !slices.ContainsFunc(rep.Windows, func(wr pipeline.WindowReport) bool { return wr.Window.Start.Equal(tenantFrom) }) {
		t.Fatalf("the resumed run did not start at the first run's --since %s:\n%s", tenantFrom, printed(rep))
	}
	w.assertPromise(w.open(w.config(tenantTo)))
}

// TestRunWithoutAStartPointIsRefused (issue 9, item 2): a run on a stage with
// no start point and no --since is a configuration error, and so is a --since
// that differs from the start the stage already has.
func TestRunWithoutAStartPointIsRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: 7, volume: smallVolume()})
	ctx := context.Background()
	cfg := w.config(tenantTo)
	cfg.Since = time.Time{}
	if _, err := w.run(ctx, cfg); !pipeline.IsConfigError(err) {
		t.Fatalf("run without a start point: err = %v; want a configuration error", err)
	}
	if n := len(w.erp.Requests()); n != 0 {
		t.Fatalf("the refused run posted %d documents", n)
	}
	w.mustRun(tenantFrom.Add(time.Hour))
	cfg = w.config(tenantTo)
	cfg.Since = tenantFrom.Add(-24 * time.Hour)
	if _, err := w.run(ctx, cfg); !pipeline.IsConfigError(err) {
		t.Fatalf("run with --since before the stage's start: err = %v; want a configuration error", err)
	}
}

// TestReportOfAFailedRunNamesTheWindowThatFailed (issue 9, item 9): with
// Zuora down, the report names the window the run attempted and says it
// failed, instead of "no window was due".
func TestReportOfAFailedRunNamesTheWindowThatFailed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: 8, volume: smallVolume()})
	w.zuoraDown()
	rep, err := w.run(context.Background(), w.config(tenantTo))
	if err == nil {
		t.Fatal("run with Zuora down succeeded")
	}
	out := printed(rep)
	if strings.Contains(out, "no window was due") || !strings.Contains(out, window1.ID()) || !strings.Contains(out, "failed") {
		t.Fatalf("report of a run whose extract failed:\n%s\nwant the window %s and that it failed", out, window1.ID())
	}
}

// TestMaxWindowsLeavesTheRestForTheNextRun (issue 9, item 3): a run takes at
// most MaxWindows windows and says how many it left; the next runs take the
// rest, and every document ends exactly once.
func TestMaxWindowsLeavesTheRestForTheNextRun(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: 9, volume: smallVolume()})
	ctx := context.Background()
	cfg := w.config(tenantTo)
	cfg.MaxWindows = 1
	rep, err := w.run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Windows) != 1 || rep.Left == nil || rep.Left.Windows != 2 || rep.Left.Next.Command != "run" ||
		!strings.Contains(printed(rep), "2 more window(s) are due") {
		t.Fatalf("run with MaxWindows 1 over 3 windows: %d windows, left %+v:\n%s", len(rep.Windows), rep.Left, printed(rep))
	}
	p := w.open(w.config(tenantTo))
	assertStopsAt(t, p, window1)
	for range 2 {
		cfg = w.config(tenantTo)
		cfg.MaxWindows = 1
		if _, err := w.run(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	rep = w.mustRun(tenantTo)
	if len(rep.Windows) != 0 || rep.Left != nil {
		t.Fatalf("a run after the three windows: %d windows, left %+v", len(rep.Windows), rep.Left)
	}
	w.assertPromise(p)

	// A backfill is capped the same way, and says where to carry on.
	cfg = w.config(tenantTo)
	cfg.MaxWindows = 2
	bf, err := w.open(cfg).Extract(ctx, tenantFrom, tenantTo, true)
	if err != nil {
		t.Fatal(err)
	}
	want := pipeline.Step{Command: "extract", From: tenantFrom.Add(2 * time.Hour), To: tenantTo, Force: true}
	if len(bf.Windows) != 2 || bf.Left == nil || bf.Left.Windows != 1 || bf.Left.Next != want {
		t.Fatalf("backfill with MaxWindows 2 over 3 windows: %d windows, left %+v; want 2 and %+v", len(bf.Windows), bf.Left, want)
	}
}

// TestPlanningDoesNotGrowWithTheWindowsDue (issue 9, item 3): a run whose
// stage starts ten years back with one-minute windows (five million due)
// takes its one window and counts the rest without holding them.
func TestPlanningDoesNotGrowWithTheWindowsDue(t *testing.T) {
	w := newWorld(t, worldOptions{seed: 10, volume: smallVolume()})
	cfg := w.config(tenantTo)
	cfg.Since = tenantTo.AddDate(-10, 0, 0)
	cfg.WindowSize = time.Minute
	cfg.MaxWindows = 1
	cfg.Logger = slog.New(slog.DiscardHandler)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rep, err := w.run(context.Background(), cfg)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	due := int(tenantTo.Sub(cfg.Since) / time.Minute)
	if len(rep.Windows) != 1 || rep.Left == nil || rep.Left.Windows != due-1 {
		t.Fatalf("%d windows, left %+v; want 1 and %d left", len(rep.Windows), rep.Left, due-1)
	}
	// Holding the windows would take 48 bytes each: 250 MB for five million.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("the run allocated %d MB for %d due windows; planning must not grow with them", grew>>20, due)
	}
}
