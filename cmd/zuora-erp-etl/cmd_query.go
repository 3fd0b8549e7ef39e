package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
)

func cmdQuery(ctx context.Context, args []string, e *env) int {
	fs := newFlagSet("query", `query [--stage URL] [--format table|csv|json] "SQL"

Runs DuckDB SQL over every committed window of the stage. Views: invoices, invoice_items, payments,
refunds, credit_memos, credit_memo_items, debit_memos, debit_memo_items (the raw snapshots),
quarantine (records that could not be staged: raw JSON and reason), documents, skipped (the
transform's outputs), rejects (only what is outstanding now, with its window, reason, first_seen,
last_seen and the last re-check's note), reject_history (every window's rejects as its last
transform left them, resolved or not) and ledger (every load result); each row carries its window
(a DuckDB keyword: write it "window"). Example:
  zuora-erp-etl query 'select "window", count(*), sum(amount) from invoices group by all order by 1'`)
	var s settings
	s.register(fs, e)
	format := fs.String("format", "table", "output format: table, csv or json (one object per line)")
	if code, ok := parse(fs, args, e); !ok {
		return code
	}
	sql := strings.TrimSpace(strings.Join(fs.Args(), " "))
	if sql == "" {
		fs.Usage()
		return exitUsage
	}
	switch *format {
	case "table", "csv", "json":
	default:
		return fail(e, &pipeline.ConfigError{Msg: fmt.Sprintf("--format %q: want table, csv or json", *format)})
	}
	s.cfg.ReadOnly = true // query never writes, and a missing stage is a typo, not an empty one
	p, err := s.open(ctx, e)
	defer s.close()
	if err != nil {
		return fail(e, err)
	}
	db, err := warehouse.Open(ctx)
	if err != nil {
		return fail(e, err)
	}
	defer db.Close()
	if err := db.AttachStage(ctx, p.Stage()); err != nil {
		return fail(e, err)
	}
	if err := db.Query(ctx, sql, e.stdout, *format); err != nil {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: query: %v\n", err)
		return exitUsage
	}
	return exitOK
}
