package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// TestBackfillLeavesTheHighWaterMarkThenRunFinishesIt: Extract stages a range
// without moving the high-water mark; the next Run loads the backfilled
// windows once, processes the rest, and moves the mark to the end.
func TestBackfillLeavesTheHighWaterMarkThenRunFinishesIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, err := demo.Start(11, zuorasim.DefaultVolume(), demo.From, demo.To)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := srv.Config(fmt.Sprintf("mem://backfill-%d", time.Now().UnixNano()), nil)
	p, err := pipeline.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	bf, err := p.Extract(ctx, demo.From, demo.From.Add(2*time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(bf.Windows) != 2 || bf.Left != nil || bf.Clamped != nil {
		t.Fatalf("backfill staged %d windows (left %v, clamped %v); want 2", len(bf.Windows), bf.Left, bf.Clamped)
	}
	if _, found, err := p.Stage().HighWater(ctx); err != nil || found {
		t.Fatalf("backfill moved the high-water mark (found=%v, err=%v)", found, err)
	}
	if n := len(srv.ERP.Requests()); n != 0 {
		t.Fatalf("backfill posted %d documents; it only extracts", n)
	}

	rep, err := p.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Windows) != 3 {
		t.Fatalf("run reported %d windows; want the 2 backfilled and 1 new, each once", len(rep.Windows))
	}
	// The report says what ran and why, not a range from the first window to the last:
	// the backfilled windows as unfinished, the last as new, or (taken again in
	// the same run) for the applications that waited for its documents or the
	// rejects its documents settled.
	for _, wr := range rep.Windows {
		want := "unfinished"
		if wr.Window.End.Equal(demo.To) {
			want = "new"
		}
		if wr.Why != want && wr.Why != "dependencies settled" && wr.Why != "rejects re-checked" || wr.Outcome() != "complete" {
			t.Errorf("window %s: why %q outcome %q; want %q (or taken again), complete", wr.Window.ID(), wr.Why, wr.Outcome(), want)
		}
	}
	if !rep.Balanced() {
		t.Fatal("report does not balance")
	}
	hw, found, err := p.Stage().HighWater(ctx)
	if err != nil || !found || !hw.Next.Equal(demo.To) {
		t.Fatalf("high-water mark %v (found=%v, err=%v); want %v", hw.Next, found, err, demo.To)
	}
	keys := map[string]bool{}
	for _, d := range srv.ERP.Documents() {
		if keys[d.Key] {
			t.Fatalf("document %s posted twice", d.Key)
		}
		keys[d.Key] = true
	}
	var posted int64
	for _, l := range rep.Totals() {
		if stage.DocType(l.DocType).IsDocument() {
			posted += l.Posted.Count
		}
	}
	if int64(len(keys)) != posted || posted == 0 {
		t.Fatalf("the ERP holds %d documents; the report says %d posted", len(keys), posted)
	}
}

// TestStatusFiltersReachTheExtract: a configured status filter replaces the
// default one, so a user can stage, say, failed payments for an audit.
func TestStatusFiltersReachTheExtract(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, err := demo.Start(11, zuorasim.DefaultVolume(), demo.From, demo.To)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := srv.Config(fmt.Sprintf("mem://statuses-%d", time.Now().UnixNano()), nil)
	cfg.Statuses = map[string][]string{"payments": {"Error", "Canceled"}}
	p, err := pipeline.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	bf, err := p.Extract(ctx, demo.From, demo.To, false)
	if err != nil {
		t.Fatal(err)
	}
	ws := bf.Windows
	want := map[string]bool{}
	for _, pay := range srv.Zuora.Snapshot("payments") {
		if s := pay["status"]; s == "Error" || s == "Canceled" {
			want[pay["id"].(string)] = true
		}
	}
	var staged int64
	for _, w := range ws {
		m, _, err := p.Stage().ReadExtract(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		staged += m.Tables["payments"].Rows
		if q := m.Tables["payments"].Query["filter[]"]; !slices.Contains(q, "status.IN:[Error,Canceled]") {
			t.Errorf("window %s payments query filters %v; want the configured statuses", w, q)
		}
	}
	if staged == 0 || staged != int64(len(want)) {
		t.Fatalf("staged %d payments; the tenant has %d in Error or Canceled", staged, len(want))
	}
}
