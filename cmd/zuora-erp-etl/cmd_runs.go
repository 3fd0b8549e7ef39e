package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"
)

const runsSynopsis = `runs [--stage URL] [--last N] [--json]

Lists the recent runs the stage recorded (runs/<run id>.json: the report, timings, exit status and
the settings that differed from their defaults), oldest first. --json prints a JSON array of the
records, whose shape docs/design.md describes ("Run history").`

func cmdRuns(ctx context.Context, args []string, e *env) int {
	s := newSettings("runs", e)
	if code, ok := s.parse(args, e); !ok {
		return code
	}
	s.cfg.ReadOnly = true
	p, err := s.open(ctx, e)
	defer s.close()
	if err != nil {
		return s.fail(e, err)
	}
	runs, err := p.Runs(ctx, s.last)
	if err != nil {
		return s.fail(e, err)
	}
	if s.jsonOut {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(runs); err != nil {
			return s.fail(e, err)
		}
		return exitOK
	}
	if len(runs) == 0 {
		fmt.Fprintln(e.stdout, "no run recorded yet")
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tcommand\tstarted\tduration\texit\twindows\tposted\trejects outstanding\toutcome")
	for _, r := range runs {
		var posted int64
		for _, l := range r.Totals {
			posted += l.Posted.Count
		}
		rejects := "-"
		if r.Rejects != nil {
			rejects = fmt.Sprint(r.Rejects.Documents)
		}
		outcome := r.Outcome
		if r.Error != "" {
			outcome += ": " + truncate(r.Error, 80)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", r.RunID, r.Command, r.StartedAt.Format(time.RFC3339),
			(time.Duration(r.DurationSeconds * float64(time.Second))).Round(time.Millisecond), r.ExitStatus, len(r.Windows), posted, rejects, outcome)
	}
	tw.Flush()
	return exitOK
}

func truncate(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
