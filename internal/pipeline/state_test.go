package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// TestTransformedAgainWindowIsLoadedByTheNextRun: after `transform --window`
// with a fixed mapping (and no `load --window`), the window is no longer
// complete, so the next run posts its newly ready documents; every complete
// window carries the marker that lets runs skip reading it.
func TestTransformedAgainWindowIsLoadedByTheNextRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, err := demo.Start(7, zuorasim.DefaultVolume(), demo.From, demo.To)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := srv.Config(fmt.Sprintf("mem://state-%d", time.Now().UnixNano()), nil)
	first := runPipeline(t, ctx, cfg)
	st := openStage(t, cfg.StageURL)
	for _, w := range first.Windows {
		if ok, err := st.Exists(ctx, stage.LoadCompleteKey(w.Window)); err != nil || !ok {
			t.Fatalf("window %s is complete but has no marker (err %v)", w.Window, err)
		}
	}

	// Find a window with KWD rejects, fix the mapping, and transform only it.
	var target stage.Window
	for _, w := range first.Windows {
		for _, l := range w.Lines {
			if l.Currency == "KWD" && l.Rejected.Count > 0 {
				target = w.Window
			}
		}
	}
	if target.Start.IsZero() {
		t.Fatal("no window with KWD rejects; the test needs one")
	}
	cfg.SQLDir = acceptKWD(t)
	p, err := pipeline.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	before := len(srv.ERP.Documents())
	if _, err := p.Transform(ctx, target); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.Exists(ctx, stage.LoadCompleteKey(target)); ok {
		t.Fatal("the window transformed again still carries the complete marker")
	}
	if n := len(srv.ERP.Documents()); n != before {
		t.Fatalf("transform posted %d documents; it only maps", n-before)
	}

	second := runPipeline(t, ctx, cfg)
	var resumed bool
	for _, w := range second.Windows {
		resumed = resumed || w.Window.ID() == target.ID()
	}
	if !resumed {
		t.Fatalf("the next run did not load window %s", target)
	}
	var kwd int
	keys := map[string]bool{}
	for _, d := range srv.ERP.Documents() {
		if keys[d.Key] {
			t.Fatalf("document %s posted twice", d.Key)
		}
		keys[d.Key] = true
		if d.Currency == "KWD" {
			kwd++
		}
		if srv.Zuora.Transferred(d.Key) != "Yes" {
			t.Errorf("posted document %s is not marked", d.Key)
		}
	}
	if kwd == 0 {
		t.Fatal("no KWD document was posted after the mapping was fixed")
	}
	status, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range status.Windows {
		if !w.Complete {
			t.Errorf("window %s is not complete after the second run", w.Window)
		}
		if ok, _ := st.Exists(ctx, stage.LoadCompleteKey(w.Window)); !ok {
			t.Errorf("window %s is complete but has no marker", w.Window)
		}
	}
}

func openStage(t *testing.T, url string) *stage.Stage {
	t.Helper()
	st, err := stage.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
