package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
)

const reconcileSynopsis = `reconcile [--live] [--erp] [--stage URL] [flags]

Compares, per document, Zuora's open balance (an invoice's or debit memo's balance, a payment's
unapplied amount, a credit memo's balance, a refund's amount less its refund applications) with
the open balance the ERP holds by the ledger of every window (confirmed posts, applications and
reversals), and lists every difference. It only reads: it takes no lease, and runs beside a run.
Zuora's side is the latest staged version of each document; --live fetches the current one from
Zuora by id, 50 a query (needs the Zuora settings). --erp also asks the ERP for its own open
balance of each document (GET /api/documents/{id}; needs the ERP settings). Documents another
integration transferred (Yes), marked Ignore, or acknowledged, that the ledger never posted, are
counted apart. Exit status 0 when nothing differs, 3 when something does.`

func cmdReconcile(ctx context.Context, args []string, e *env) int {
	s := newSettings("reconcile", e)
	live := s.fs.Bool("live", false, "fetch Zuora's current open balances by id instead of the latest staged ones")
	withERP := s.fs.Bool("erp", false, "also compare with the ERP's own open balances (GET /api/documents/{id})")
	if code, ok := s.parse(args, e); !ok {
		return code
	}
	s.cfg.ReadOnly = true // reconcile never writes, and a missing stage is a typo, not an empty one
	p, err := s.open(ctx, e)
	defer s.close()
	if err != nil {
		return s.fail(e, err)
	}
	res, err := p.Reconcile(ctx, pipeline.ReconcileOptions{Live: *live, ERP: *withERP})
	if err != nil {
		return s.fail(e, err)
	}
	printReconciliation(e, res)
	if res.Differences() > 0 {
		return exitRejected
	}
	return exitOK
}

// printReconciliation writes every difference and the open balances per currency.
func printReconciliation(e *env, res *pipeline.Reconciliation) {
	side := "the latest staged version of each document"
	if res.Live {
		side = "Zuora now"
	}
	fmt.Fprintf(e.stdout, "reconciled %d documents: %s against the ERP by the ledger", res.Documents, side)
	if res.ERP {
		fmt.Fprint(e.stdout, " and the ERP's own answer")
	}
	fmt.Fprintln(e.stdout)
	if res.NotOurs > 0 {
		fmt.Fprintf(e.stdout, "%d documents left out: transferred by another integration, Ignore or acknowledged, never posted by this one\n", res.NotOurs)
	}
	if res.Unknown > 0 {
		fmt.Fprintf(e.stdout, "%d documents were staged without their open balance (before it was extracted): compare them with --live\n", res.Unknown)
	}
	print := func(what string, diffs []pipeline.Difference) {
		if len(diffs) == 0 {
			fmt.Fprintf(e.stdout, "%s: no difference\n", what)
			return
		}
		fmt.Fprintf(e.stdout, "%s: %d differences\n", what, len(diffs))
		tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  currency\ttype\tzuora id\tnumber\tzuora open\terp open\tdifference\treason")
		for _, d := range diffs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Currency, d.DocType, d.ZuoraID, d.Number, d.Zuora, d.ERP, d.Diff, d.Reason)
		}
		tw.Flush()
	}
	print("Zuora against the ledger", res.ByLedger)
	if res.ERP {
		print("Zuora against the ERP", res.ByERP)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\nopen\tcur\tzuora\tby the ledger\tdocuments\t")
	for _, t := range res.Totals {
		fmt.Fprintf(tw, "\t%s\t%s\t%s\t%d / %d\t\n", t.Currency, t.Zuora, t.ERP, t.ZuoraDocs, t.ERPDocs)
	}
	tw.Flush()
}
