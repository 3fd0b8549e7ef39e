package main

import (
	"context"
	"fmt"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func cmdExtract(ctx context.Context, args []string, e *env) int {
	s := newSettings("extract", e)
	if code, ok := s.parse(args, e); !ok {
		return code
	}
	p, err := s.open(ctx, e)
	defer s.close()
	if err != nil {
		return s.fail(e, err)
	}
	bf, err := p.Extract(ctx, s.from.t, s.to.t, s.force)
	if bf != nil {
		for _, w := range bf.Windows {
			fmt.Fprintf(e.stdout, "staged %s\n", w.ID())
		}
		if c := bf.Clamped; c != nil {
			fmt.Fprintf(e.stdout, "note: --to %s is later than now minus the settle lag; the windows end at %s, and run stages the rest once it has settled\n",
				c.Requested.Format("2006-01-02T15:04:05Z07:00"), c.Horizon.Format("2006-01-02T15:04:05Z07:00"))
		}
	}
	if err != nil {
		return s.fail(e, err)
	}
	fmt.Fprintf(e.stdout, "%d window(s) staged; transform and load each with: %s, then %s\n", len(bf.Windows),
		s.command(pipeline.Step{Command: "transform", Window: windowOrPlaceholder(bf)}), s.command(pipeline.Step{Command: "load", Window: windowOrPlaceholder(bf)}))
	if l := bf.Left; l != nil {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: %d more window(s) of the range are not staged (at most %d per invocation)\nresume with: %s\n", l.Windows, l.Max, s.command(l.Next))
		return exitFailed
	}
	return exitOK
}

// windowOrPlaceholder is the first window of a backfill, for the example commands.
func windowOrPlaceholder(bf *pipeline.Backfill) (w stage.Window) {
	if len(bf.Windows) > 0 {
		return bf.Windows[0]
	}
	return w
}

func cmdTransform(ctx context.Context, args []string, e *env) int {
	s, p, code, ok := openWindow(ctx, args, e, "transform")
	defer s.close()
	if !ok {
		return code
	}
	rep, err := p.Transform(ctx, s.window())
	if err != nil {
		return s.fail(e, err)
	}
	rep.Print(e.stdout)
	fmt.Fprintf(e.stdout, "post the documents with: %s\n", s.command(pipeline.Step{Command: "load", Window: s.window()}))
	if rep.NeedsAttention() {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: the window still has rejected documents, which need attention; see: %s\n", s.query("select * from rejects"))
		return exitRejected
	}
	return exitOK
}

func cmdLoad(ctx context.Context, args []string, e *env) int {
	s, p, code, ok := openWindow(ctx, args, e, "load")
	defer s.close()
	if !ok {
		return code
	}
	rep, err := p.Load(ctx, s.window())
	return s.outcome(e, rep, err)
}

// openWindow parses the flags of a command that acts on one staged window
// (--window ID) and opens the pipeline; ok is false when the command should
// exit with code instead.
func openWindow(ctx context.Context, args []string, e *env, name string) (s *settings, p *pipeline.Pipeline, code int, ok bool) {
	s = newSettings(name, e)
	if code, ok := s.parse(args, e); !ok {
		return s, nil, code, false
	}
	p, err := s.open(ctx, e)
	if err != nil {
		return s, nil, s.fail(e, err), false
	}
	return s, p, 0, true
}
