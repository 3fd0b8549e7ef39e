package main

import (
	"context"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
)

func cmdRun(ctx context.Context, args []string, e *env) int {
	s := newSettings("run", e)
	if code, ok := s.parse(args, e); !ok {
		return code
	}
	if err := s.finish(e); err != nil {
		return s.fail(e, err)
	}
	defer s.close()
	return s.runOnce(ctx, s.cfg, e)
}

// runOnce runs the pipeline once with cfg and prints its report.
func (s *settings) runOnce(ctx context.Context, cfg pipeline.Config, e *env) int {
	p, err := pipeline.Open(ctx, cfg)
	if err != nil {
		return s.fail(e, err)
	}
	defer p.Close()
	rep, err := p.Run(ctx)
	return s.outcome(e, rep, err)
}
