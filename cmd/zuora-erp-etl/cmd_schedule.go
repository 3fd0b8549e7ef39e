package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/robfig/cron/v3"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
)

func cmdSchedule(ctx context.Context, args []string, e *env) int {
	fs := newFlagSet("schedule", `schedule [--cron "5 * * * *"] [--now] [flags]

Runs "run" on a cron schedule (standard 5-field syntax or @hourly, @every 30m) until interrupted.
A run still going when the next is due is not started twice; each run's report goes to stdout.`)
	var s settings
	s.register(fs, e)
	s.registerRange(fs)
	s.registerLease(fs, e)
	spec := fs.String("cron", "5 * * * *", "when to run, in cron syntax (UTC)")
	now := fs.Bool("now", false, "also run once immediately")
	if code, ok := parse(fs, args, e); !ok {
		return code
	}
	sched, err := cron.ParseStandard(*spec)
	if err != nil {
		return fail(e, &pipeline.ConfigError{Msg: fmt.Sprintf("--cron %q: %v", *spec, err)})
	}
	if err := s.finish(e); err != nil {
		return fail(e, err)
	}
	defer s.close()
	log := s.cfg.Logger
	tick := func() {
		cfg := s.cfg
		cfg.RunID = "" // a fresh run id per run
		code := runOnce(ctx, cfg, e)
		if code == exitLeaseHeld {
			log.Warn("another writer holds the stage: this tick did nothing; waiting for the next", "exit_status", code)
			return
		}
		log.Info("scheduled run finished", "exit_status", code)
	}
	c := cron.New(cron.WithLocation(timeUTC), cron.WithChain(cron.SkipIfStillRunning(cronLogger{log})))
	c.Schedule(sched, cron.FuncJob(tick))
	if *now {
		tick()
	}
	c.Start()
	log.Info("scheduler started", "cron", *spec, "next", sched.Next(nowUTC()))
	<-ctx.Done()
	<-c.Stop().Done()
	log.Info("scheduler stopped")
	return exitOK
}

// runOnce runs the pipeline once and prints its report.
func runOnce(ctx context.Context, cfg pipeline.Config, e *env) int {
	p, err := pipeline.Open(ctx, cfg)
	if err != nil {
		return fail(e, err)
	}
	defer p.Close()
	rep, err := p.Run(ctx)
	return outcome(e, rep, err)
}

// cronLogger adapts slog to cron's logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Info(msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error(msg, append(kv, "err", err)...)
}
