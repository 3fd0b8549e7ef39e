package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// holdLease takes the stage's lease through a handle of its own, as another
// process would, until the test ends.
func holdLease(t *testing.T, stageURL string) (*stage.Stage, *stage.Lease) {
	t.Helper()
	st, err := stage.Open(context.Background(), stageURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l, err := st.AcquireLease(context.Background(), stage.LeaseOptions{Holder: stage.Holder{RunID: "run-other", Command: "run"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
	return st, l
}

func wantHeld(t *testing.T, what string, err error) {
	t.Helper()
	var held *stage.LeaseHeldError
	if !errors.As(err, &held) || held.Lease.Holder.RunID != "run-other" {
		t.Fatalf("%s while another writer holds the stage: %v; want a *stage.LeaseHeldError naming it", what, err)
	}
}

// TestEveryWritingStepTakesTheLease: run, extract, transform and load each
// refuse to start while another writer holds the stage, and write nothing;
// status reads through it.
func TestEveryWritingStepTakesTheLease(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: 5, volume: smallVolume()})
	w.mustRun(window1.End)
	st, l := holdLease(t, w.stageURL)
	before, err := st.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	p := w.open(w.config(tenantTo))
	ctx := context.Background()
	rep, err := p.Run(ctx)
	wantHeld(t, "run", err)
	if rep != nil {
		t.Errorf("a refused run returned a report: %+v", rep)
	}
	_, err = p.Extract(ctx, window2.Start, window2.End, false)
	wantHeld(t, "extract", err)
	_, err = p.Transform(ctx, window1)
	wantHeld(t, "transform", err)
	_, err = p.Load(ctx, window1)
	wantHeld(t, "load", err)
	if _, err := p.Status(ctx); err != nil {
		t.Fatalf("status while another writer holds the stage: %v", err)
	}
	after, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("the refused steps changed the stage: %d objects before, %d after", len(before), len(after))
	}
	if len(w.erp.Requests()) == 0 {
		t.Fatal("the first run posted nothing")
	}
	l.Release(ctx)
	if _, err := p.Run(ctx); err != nil {
		t.Fatalf("run once the stage is free: %v", err)
	}
	w.assertPromise(p)
}

// TestABrokenHolderStopsBeforeItsNextWrite breaks the lease of a run in the
// middle of its load: the run writes nothing more (its ledger part is refused,
// so nothing is marked in Zuora), and the next run finishes the work exactly once.
func TestABrokenHolderStopsBeforeItsNextWrite(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: 6, volume: smallVolume()})
	op, err := stage.Open(context.Background(), w.stageURL)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	broke := make(chan error, 1)
	w.onNthPostIn(window1, 5, func() {
		cur, _, err := op.CurrentLease(context.Background())
		if err == nil {
			_, err = op.BreakLease(context.Background(), cur.Generation, stage.Holder{Command: "lease break"})
		}
		broke <- err
	})
	marksBefore := w.zuora.Stats().MarksApplied
	_, err = w.run(context.Background(), w.config(tenantTo))
	if e := <-broke; e != nil {
		t.Fatalf("break: %v", e)
	}
	var lost *stage.LeaseLostError
	if !errors.As(err, &lost) || lost.Successor == nil || lost.Successor.Broke == nil {
		t.Fatalf("run whose lease was broken: %v; want a *stage.LeaseLostError naming the break", err)
	}
	if n := w.zuora.Stats().MarksApplied - marksBefore; n != 0 {
		t.Fatalf("the broken holder marked %d documents in Zuora after its lease was broken", n)
	}
	w.erpHook.set(nil)
	cfg := w.config(tenantTo)
	cfg.Since = time.Time{}
	p := w.open(cfg)
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatalf("the run after the break: %v", err)
	}
	w.assertPromise(p)
}
