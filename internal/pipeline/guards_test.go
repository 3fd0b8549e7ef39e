package pipeline_test

import (
	"context"
	"net/http"
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
	w := newWorld(t, worldOptions{seed: 5, volume: smallVolume()})
	ctx := context.Background()
	now := tenantFrom.Add(76 * time.Minute) // 01:16, with --until 03:00
	cfg := w.config(tenantTo)
	cfg.Now = func() time.Time { return now }
	if _, err := w.run(ctx, cfg); err != nil {
		t.Fatalf("run: %v", err)
	}
	horizon := now.Add(-5 * time.Minute)
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
	if len(rep.Windows) == 0 || !rep.Windows[0].Window.Start.Equal(tenantFrom) {
		t.Fatalf("the resumed run did not start at the first run's --since %s:\n%s", tenantFrom, printed(rep))
	}
	w.assertPromise(w.open(w.config(tenantTo)))
}

// TestRunWithoutAStartPointIsRefused (issue 9, item 2): a run on a stage with
// no start point and no --since is a configuration error, and so is a --since
// that differs from the start the stage already has.
func TestRunWithoutAStartPointIsRefused(t *testing.T) {
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
