package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"
)

func cmdSchedule(ctx context.Context, args []string, e *env) int {
	s := newSettings("schedule", e)
	if code, ok := s.parse(args, e); !ok {
		return code
	}
	sched, err := schedule(s.cron, time.Now())
	if err != nil {
		return s.fail(e, err)
	}
	if err := s.finish(e); err != nil {
		return s.fail(e, err)
	}
	defer s.close()
	log := s.cfg.Logger
	// A configuration error does not fix itself: the scheduler stops with it.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	refused := make(chan int, 1)
	tick := func() {
		cfg := s.cfg
		cfg.RunID = "" // a fresh run id per run
		code := s.runOnce(ctx, cfg, e)
		if code == exitLeaseHeld {
			log.Warn("another writer holds the stage: this tick did nothing; waiting for the next", "exit_status", code)
			return
		}
		log.Info("scheduled run finished", "exit_status", code)
		if code == exitUsage {
			select {
			case refused <- code:
			default:
			}
			stop(nil)
		}
	}
	c := cron.New(cron.WithLocation(timeUTC), cron.WithChain(cron.SkipIfStillRunning(cronLogger{log})))
	c.Schedule(sched, cron.FuncJob(tick))
	if s.now {
		tick()
	}
	c.Start()
	log.Info("scheduler started", "cron", s.cron, "next", sched.Next(time.Now().UTC()))
	<-ctx.Done()
	<-c.Stop().Done()
	log.Info("scheduler stopped")
	select {
	case code := <-refused:
		return code
	default:
		return exitOK
	}
}

var timeUTC = time.UTC

// cronLogger adapts slog to cron's logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Info(msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error(msg, append(kv, "err", err)...)
}
