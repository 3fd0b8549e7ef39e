package pipeline

import (
	"context"
	"fmt"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// StatusQuery narrows what StatusOf reports; the zero value is every window.
type StatusQuery struct {
	Window  *stage.Window // only this window
	Last    int           // only the last n windows (of those left by Pending)
	Pending bool          // only windows with work pending: unfinished, or holding an outstanding reject
}

// StatusReport is the stage's status: the windows asked for, and what is
// pending in every window, whichever were asked for.
type StatusReport struct {
	Report *Report // start point, high water and the windows asked for, in time order
	// Unfinished are the committed windows whose load is not complete.
	Unfinished []stage.Window
	// Rejects counts the outstanding rejects per window id.
	Rejects map[string]int
	// Outstanding is every outstanding reject of the stage.
	Outstanding int
}

// Outcome is what the status asks of a person or a probe: Failed while a
// window is unfinished (run resumes it), NeedsAttention while only rejects
// are outstanding, Done otherwise.
func (s *StatusReport) Outcome() Outcome {
	switch {
	case len(s.Unfinished) > 0:
		return Failed
	case s.Outstanding > 0:
		return NeedsAttention
	}
	return Done
}

// StatusOf reports the stage's windows that q asks for, each recomputed from
// its documents and ledger, and what is pending in every window (one listing
// and the reject index: it reads no window it does not report).
func (p *Pipeline) StatusOf(ctx context.Context, q StatusQuery) (*StatusReport, error) {
	unfinished, err := p.st.UnfinishedWindows(ctx)
	if err != nil {
		return nil, err
	}
	rs, err := p.Rejects(ctx)
	if err != nil {
		return nil, err
	}
	out := &StatusReport{Unfinished: unfinished, Rejects: map[string]int{}, Outstanding: len(rs),
		Report: &Report{RunID: p.cfg.RunID}}
	for _, r := range rs {
		out.Rejects[r.Window]++
	}
	ws, err := p.st.Windows(ctx)
	if err != nil {
		return nil, err
	}
	pending := map[string]bool{}
	for _, w := range unfinished {
		pending[w.ID()] = true
	}
	var chosen []stage.Window
	for _, w := range ws {
		switch {
		case q.Window != nil && w.ID() != q.Window.ID():
		case q.Pending && !pending[w.ID()] && out.Rejects[w.ID()] == 0:
		default:
			chosen = append(chosen, w)
		}
	}
	if q.Window != nil && len(chosen) == 0 && !q.Pending {
		return nil, &ConfigError{Msg: fmt.Sprintf("window %s is not in the stage %s (see status for the ids)", q.Window.ID(), p.st.URL()), Settings: []string{"StatusWindow"}}
	}
	if q.Last > 0 && len(chosen) > q.Last {
		chosen = chosen[len(chosen)-q.Last:]
	}
	for _, w := range chosen {
		wr, err := p.windowReport(ctx, w)
		if err != nil {
			return nil, err
		}
		out.Report.Windows = append(out.Report.Windows, wr)
	}
	if st, ok, err := p.st.Start(ctx); err != nil {
		return nil, err
	} else if ok {
		out.Report.Start = st.Start
	}
	if hw, ok, err := p.st.HighWater(ctx); err != nil {
		return nil, err
	} else if ok {
		out.Report.HighWater = hw.Next
	}
	return out, nil
}
