package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/zuora-erp-etl/zuora-erp-etl/audits"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
)

// savedFlag is --saved: given alone it lists the saved audits; the name of
// one follows it as the command's argument.
type savedFlag struct{ set bool }

func (f *savedFlag) String() string   { return "" }
func (f *savedFlag) IsBoolFlag() bool { return true }
func (f *savedFlag) Set(v string) error {
	switch v {
	case "true":
		f.set = true
	case "false":
		f.set = false
	default:
		return fmt.Errorf("write --saved NAME, or --saved alone for the list")
	}
	return nil
}

func cmdQuery(ctx context.Context, args []string, e *env) int {
	s := newSettings("query", e)
	if code, ok := s.parse(args, e); !ok {
		return code
	}
	sql := strings.TrimSpace(strings.Join(s.fs.Args(), " "))
	if s.saved.set && s.fs.NArg() > 1 {
		return s.fail(e, &pipeline.ConfigError{Msg: fmt.Sprintf("query --saved takes one name, then nothing; put the flags first: zuora-erp-etl query --format json --saved %s", s.fs.Arg(0))})
	}
	if s.saved.set {
		all, err := audits.List(s.auditsDir)
		if err != nil {
			return s.fail(e, &pipeline.ConfigError{Msg: fmt.Sprintf("saved audits: %v", err), Settings: []string{"AuditsDir"}})
		}
		if sql == "" {
			tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "name\twhat it finds")
			for _, a := range all {
				fmt.Fprintf(tw, "%s\t%s\n", a.Name, a.Description)
			}
			tw.Flush()
			fmt.Fprintln(e.stdout, "run one with: zuora-erp-etl query --saved NAME (its SQL: --audits-dir replaces or adds files by name)")
			return exitOK
		}
		a, found, err := audits.Find(s.auditsDir, sql)
		if err != nil {
			return s.fail(e, err)
		}
		if !found {
			var names []string
			for _, a := range all {
				names = append(names, a.Name)
			}
			return s.fail(e, &pipeline.ConfigError{Msg: fmt.Sprintf("no saved audit %q; the saved ones are %s", sql, strings.Join(names, ", "))})
		}
		sql = a.SQL
	}
	if sql == "" {
		return s.fail(e, &pipeline.ConfigError{Msg: `query needs SQL, e.g. zuora-erp-etl query "select count(*) from invoices", or --saved NAME`})
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
