package main

import (
	"context"
	"fmt"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/metrics"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
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
	res := s.runOnce(ctx, s.cfg, e)
	if s.ops.metricsFile != "" {
		m := metrics.New(metrics.Options{Now: s.clock(e), LeaseHeld: s.leaseProbe(ctx)})
		m.Observe(res.record, res.highWater)
		if err := m.WriteTextfile(s.ops.metricsFile); err != nil {
			fmt.Fprintf(e.stderr, "zuora-erp-etl: warning: --metrics-file: %v\n", err)
		}
	}
	return res.code
}

// runResult is how one run ended: its exit status, its record (for the
// metrics) and the stage's high water after it.
type runResult struct {
	code      int
	record    pipeline.RunRecord
	highWater time.Time
}

// runOnce runs the pipeline once with cfg and prints its report.
func (s *settings) runOnce(ctx context.Context, cfg pipeline.Config, e *env) runResult {
	now := s.clock(e)
	started := now()
	p, err := pipeline.Open(ctx, cfg)
	if err != nil {
		code := s.fail(e, err)
		return runResult{code: code, record: pipeline.NewRunRecord(&pipeline.Report{RunID: cfg.RunID}, err, started, now())}
	}
	defer p.Close()
	rep, err := p.Run(ctx)
	code := s.outcome(e, rep, err)
	if rep == nil {
		rep = &pipeline.Report{RunID: cfg.RunID}
	}
	res := runResult{code: code, record: pipeline.NewRunRecord(rep, err, started, now())}
	res.record.ExitStatus = code // what the process says, balance and resume checks included
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if hw, ok, err := p.Stage().HighWater(hctx); err == nil && ok {
		res.highWater = hw.Next
	}
	return res
}

// now is the command's clock.
func (s *settings) clock(e *env) func() time.Time {
	if e.now != nil {
		return e.now
	}
	return time.Now
}

// leaseProbe reads whether a writer holds the stage's lease, for the
// metrics; the stage is opened on first use and never written.
func (s *settings) leaseProbe(ctx context.Context) func() (held, ok bool) {
	var st *stage.Stage
	return func() (bool, bool) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		defer cancel()
		if st == nil {
			opened, err := stage.Open(rctx, s.cfg.StageURL)
			if err != nil {
				return false, false
			}
			st = opened
			s.closers = append(s.closers, st)
		}
		cur, found, err := st.CurrentLease(rctx)
		if err != nil {
			return false, false
		}
		return found && cur.Live(time.Now()), true
	}
}
