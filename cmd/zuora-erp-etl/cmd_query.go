package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
)

func cmdQuery(ctx context.Context, args []string, e *env) int {
	s := newSettings("query", e)
	if code, ok := s.parse(args, e); !ok {
		return code
	}
	sql := strings.TrimSpace(strings.Join(s.fs.Args(), " "))
	if sql == "" {
		return s.fail(e, &pipeline.ConfigError{Msg: `query needs SQL, e.g. zuora-erp-etl query "select count(*) from invoices"`})
	}
	s.cfg.ReadOnly = true // query never writes, and a missing stage is a typo, not an empty one
	p, err := s.open(ctx, e)
	defer s.close()
	if err != nil {
		return s.fail(e, err)
	}
	db, err := warehouse.Open(ctx)
	if err != nil {
		return s.fail(e, err)
	}
	defer db.Close()
	if err := db.AttachStage(ctx, p.Stage()); err != nil {
		return s.fail(e, err)
	}
	if err := db.Query(ctx, sql, e.stdout, s.format); err != nil {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: query: %v\n", err)
		return exitUsage
	}
	return exitOK
}
