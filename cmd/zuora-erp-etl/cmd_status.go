package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
)

const statusSynopsis = `status [--stage URL] [--pending] [--window ID] [--last N] [--json]

Shows the stage's start point, the high water and, per staged window, which steps are done and
what is pending, recomputed from each window's documents and ledger.
Exit status: 0 when nothing is pending; 1 while a window is unfinished (run resumes it); 3 while
only rejects are outstanding (see zuora-erp-etl rejects). --json prints one object whose shape
docs/design.md describes ("status --json").`

// statusJSON is the shape of status --json (docs/design.md "status --json").
type statusJSON struct {
	Stage              string             `json:"stage"`
	Start              *time.Time         `json:"start"`
	HighWater          *time.Time         `json:"high_water"`
	ExitStatus         int                `json:"exit_status"`
	UnfinishedWindows  []string           `json:"unfinished_windows"`
	OutstandingRejects int                `json:"outstanding_rejects"`
	Windows            []statusWindowJSON `json:"windows"`
}

// statusWindowJSON is one window of status --json.
type statusWindowJSON struct {
	Window             string             `json:"window"`
	Start              time.Time          `json:"start"`
	End                time.Time          `json:"end"`
	Extracted          bool               `json:"extracted"`
	Transformed        bool               `json:"transformed"`
	Loaded             bool               `json:"loaded"`
	Complete           bool               `json:"complete"`
	Ready              int64              `json:"ready"`
	Posted             int64              `json:"posted"`
	Rejected           int64              `json:"rejected"`
	Pending            int64              `json:"pending"`
	Unmarked           int64              `json:"unmarked"`
	OutstandingRejects int                `json:"outstanding_rejects"`
	Next               string             `json:"next"`
	Lines              []pipeline.RunLine `json:"lines"`
}

func cmdStatus(ctx context.Context, args []string, e *env) int {
	s := newSettings("status", e)
	if code, ok := s.parse(args, e); !ok {
		return code
	}
	s.cfg.ReadOnly = true // status never writes, and a missing stage is a typo, not an empty one
	p, err := s.open(ctx, e)
	defer s.close()
	if err != nil {
		return s.fail(e, err)
	}
	q := pipeline.StatusQuery{Last: s.last, Pending: s.pending}
	if s.windowID != "" {
		w := s.window()
		q.Window = &w
	}
	st, err := p.StatusOf(ctx, q)
	if err != nil {
		return s.fail(e, err)
	}
	code := int(st.Outcome())
	if s.jsonOut {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s.statusView(p, st)); err != nil {
			return s.fail(e, err)
		}
		return code
	}
	st.Report.PrintStatus(e.stdout, s.command)
	switch {
	case len(st.Unfinished) > 0:
		fmt.Fprintf(e.stdout, "pending: %d unfinished window(s), %d outstanding reject(s); the next run resumes them, or now: %s\n",
			len(st.Unfinished), st.Outstanding, s.command(pipeline.Step{Command: "run"}))
	case st.Outstanding > 0:
		fmt.Fprintf(e.stdout, "pending: %d outstanding reject(s) need a person; see: %s\n", st.Outstanding, s.command(pipeline.Step{Command: "rejects"}))
	default:
		fmt.Fprintln(e.stdout, "nothing pending")
	}
	return code
}

// statusView is the status as status --json prints it.
func (s *settings) statusView(p *pipeline.Pipeline, st *pipeline.StatusReport) statusJSON {
	out := statusJSON{Stage: p.Stage().URL(), ExitStatus: int(st.Outcome()), UnfinishedWindows: []string{},
		OutstandingRejects: st.Outstanding, Windows: []statusWindowJSON{}}
	if t := st.Report.Start; !t.IsZero() {
		out.Start = &t
	}
	if t := st.Report.HighWater; !t.IsZero() {
		out.HighWater = &t
	}
	for _, w := range st.Unfinished {
		out.UnfinishedWindows = append(out.UnfinishedWindows, w.ID())
	}
	rec := pipeline.NewRunRecord(st.Report, nil, time.Time{}, time.Time{})
	for i, w := range st.Report.Windows {
		v := statusWindowJSON{Window: w.Window.ID(), Start: w.Window.Start, End: w.Window.End, Extracted: w.Extracted,
			Transformed: w.Transformed, Loaded: w.Loaded, Complete: w.Complete, OutstandingRejects: st.Rejects[w.Window.ID()],
			Lines: rec.Windows[i].Lines}
		for _, l := range w.Lines {
			v.Ready += l.Ready.Count
			v.Posted += l.Posted.Count
			v.Rejected += l.Rejected.Count + l.ERPRejected.Count
			v.Pending += l.Pending.Count
			v.Unmarked += l.Posted.Count - l.Marked.Count
		}
		if next := w.Next(); next != nil {
			v.Next = s.command(*next)
		}
		out.Windows = append(out.Windows, v)
	}
	return out
}
