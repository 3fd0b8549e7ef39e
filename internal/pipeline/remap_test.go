package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mapping "github.com/zuora-erp-etl/zuora-erp-etl/sql"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

// TestFixedMappingRetriesRejectsOnTheNextRun: documents rejected for an
// unmapped currency are posted by the next run once the mapping accepts the
// currency, and nothing already posted is posted again.
func TestFixedMappingRetriesRejectsOnTheNextRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, err := demo.Start(7, zuorasim.DefaultVolume(), demo.From, demo.To)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := srv.Config(fmt.Sprintf("mem://remap-%d", time.Now().UnixNano()), nil)

	first := runPipeline(t, ctx, cfg)
	kwd := rejectedIn(first, "KWD")
	if kwd == 0 {
		t.Fatal("the default mapping rejected no KWD document; the test needs some")
	}
	posted := len(srv.ERP.Documents())

	cfg.SQLDir = acceptKWD(t) // the fix
	second := runPipeline(t, ctx, cfg)
	kwdAfter := rejectedIn(second, "KWD") // those left are rejected for another reason, e.g. NO_ERP_ACCOUNT
	if kwdAfter >= kwd {
		t.Fatalf("after the fix, %d KWD documents are still rejected, %d before", kwdAfter, kwd)
	}
	if !second.Balanced() {
		t.Fatal("the second report does not balance")
	}
	docs := srv.ERP.Documents()
	if len(docs) <= posted {
		t.Fatalf("the ERP holds %d documents after the fix, %d before: the rejects were not retried", len(docs), posted)
	}
	keys := map[string]bool{}
	for _, d := range docs {
		if keys[d.Key] {
			t.Fatalf("document %s was posted twice", d.Key)
		}
		keys[d.Key] = true
		if srv.Zuora.Transferred(d.Key) != "Yes" {
			t.Errorf("posted document %s is not marked transferred", d.Key)
		}
	}
	var kwdPosted int
	for _, d := range docs {
		if d.Currency == "KWD" {
			kwdPosted++
		}
	}
	if kwdPosted != kwd-kwdAfter {
		t.Fatalf("%d KWD documents posted after the fix; want the %d that were rejected only for the currency", kwdPosted, kwd-kwdAfter)
	}

	// A third run with the same mapping transforms nothing again.
	third := runPipeline(t, ctx, cfg)
	if len(third.Windows) != 0 {
		t.Fatalf("a third run with an unchanged mapping processed %d windows", len(third.Windows))
	}
}

func runPipeline(t *testing.T, ctx context.Context, cfg pipeline.Config) *pipeline.Report {
	t.Helper()
	p, err := pipeline.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rep, err := p.Run(ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return rep
}

// rejectedIn counts the documents of one currency rejected by the mapping.
func rejectedIn(rep *pipeline.Report, currency string) int {
	var n int
	for _, l := range rep.Totals() {
		if strings.EqualFold(l.Currency, currency) {
			n += int(l.Rejected.Count)
		}
	}
	return n
}

// acceptKWD returns a --sql-dir whose currencies.csv also accepts KWD, which
// the default mapping rejects.
func acceptKWD(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	csv, err := mapping.Files.ReadFile("currencies.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "currencies.csv"), append(csv, []byte("KWD,Kuwaiti dinar\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
