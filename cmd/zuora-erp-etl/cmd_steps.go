package main

import (
	"context"
	"fmt"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func cmdExtract(ctx context.Context, args []string, e *env) int {
	fs := newFlagSet("extract", "extract --from T1 --to T2 [--window 1h] [--force] [flags]\n\nBackfills the windows of [T1, T2) into the stage without moving the high-water mark.\nWindows already staged are kept unless --force.")
	var s settings
	s.register(fs, e)
	s.registerRange(fs)
	s.registerLease(fs, e)
	var from, to timeFlag
	fs.Var(&from, "from", "start of the range (RFC3339, required)")
	fs.Var(&to, "to", "end of the range, exclusive (RFC3339, required)")
	force := fs.Bool("force", false, "extract windows again even if they are already staged")
	if code, ok := parse(fs, args, e); !ok {
		return code
	}
	if from.t.IsZero() || to.t.IsZero() {
		return fail(e, &pipeline.ConfigError{Msg: "extract needs --from and --to (RFC3339)"})
	}
	p, err := s.open(ctx, e)
	defer s.close()
	if err != nil {
		return fail(e, err)
	}
	ws, err := p.Extract(ctx, from.t, to.t, *force)
	if err != nil {
		return fail(e, err)
	}
	for _, w := range ws {
		fmt.Fprintf(e.stdout, "staged %s\n", w.ID())
	}
	fmt.Fprintf(e.stdout, "%d windows staged; transform and load them with: zuora-erp-etl transform --window ID && zuora-erp-etl load --window ID\n", len(ws))
	return exitOK
}

func cmdTransform(ctx context.Context, args []string, e *env) int {
	var s settings
	defer s.close()
	p, w, code, ok := openWindow(ctx, args, e, &s, "transform", "transform --window ID [--sql-dir DIR] [flags]\n\nRe-runs the transform of one staged window with the current mapping, replacing its documents,\nrejects and skips. Documents already posted are never posted twice.")
	if !ok {
		return code
	}
	rep, err := p.Transform(ctx, w)
	if err != nil {
		return fail(e, err)
	}
	rep.Print(e.stdout)
	fmt.Fprintf(e.stdout, "post the documents with: zuora-erp-etl load --window %s\n", w.ID())
	return exitOK
}

func cmdLoad(ctx context.Context, args []string, e *env) int {
	var s settings
	defer s.close()
	p, w, code, ok := openWindow(ctx, args, e, &s, "load", "load --window ID [flags]\n\nPosts the window's documents that the ERP has not confirmed yet, then marks every confirmed one\ntransferred in Zuora. Use it after an ERP outage; it is always safe to repeat.")
	if !ok {
		return code
	}
	rep, err := p.Load(ctx, w)
	return outcome(e, rep, err)
}

// openWindow parses the flags of a command that acts on one staged window
// (--window ID) and opens the pipeline; ok is false when the command should
// exit with code instead.
func openWindow(ctx context.Context, args []string, e *env, s *settings, name, synopsis string) (p *pipeline.Pipeline, w stage.Window, code int, ok bool) {
	fs := newFlagSet(name, synopsis)
	s.register(fs, e)
	s.registerLease(fs, e)
	id := fs.String("window", "", "the window id, e.g. 20261125T220000Z-20261125T230000Z (see status)")
	if code, ok := parse(fs, args, e); !ok {
		return nil, w, code, false
	}
	w, err := parseWindow(*id)
	if err == nil {
		p, err = s.open(ctx, e)
	}
	if err != nil {
		return nil, w, fail(e, err), false
	}
	return p, w, 0, true
}

func cmdStatus(ctx context.Context, args []string, e *env) int {
	fs := newFlagSet("status", "status [--stage URL]\n\nShows the high-water mark and, per staged window, which steps are done and what is pending.")
	var s settings
	s.register(fs, e)
	if code, ok := parse(fs, args, e); !ok {
		return code
	}
	s.cfg.ReadOnly = true // status never writes, and a missing stage is a typo, not an empty one
	p, err := s.open(ctx, e)
	defer s.close()
	if err != nil {
		return fail(e, err)
	}
	rep, err := p.Status(ctx)
	if err != nil {
		return fail(e, err)
	}
	rep.PrintStatus(e.stdout)
	return exitOK
}
