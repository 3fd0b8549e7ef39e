package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/metrics"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
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
	log := s.baseLogger
	m := metrics.New(metrics.Options{Now: s.clock(e), LeaseHeld: s.leaseProbe(ctx), Process: true})
	if hw, ok := s.highWater(ctx); ok {
		m.SetHighWater(hw)
	}
	if s.ops.listen != "" {
		stopServing, err := s.serve(m, log)
		if err != nil {
			return s.fail(e, err)
		}
		defer stopServing()
	}
	// A configuration error does not fix itself: the scheduler stops with it.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	t := &ticker{s: s, e: e, m: m, log: log, stop: stop, refused: make(chan int, 1)}
	c := cron.New(cron.WithLocation(timeUTC), cron.WithChain(cron.SkipIfStillRunning(cronLogger{log})))
	c.Schedule(sched, cron.FuncJob(func() { t.tick(ctx) }))
	if s.now {
		t.tick(ctx)
	}
	c.Start()
	log.Info("scheduler started", "cron", s.cron, "next", sched.Next(time.Now().UTC()))
	<-ctx.Done()
	if context.Cause(ctx) != nil && !errors.Is(context.Cause(ctx), context.Canceled) {
		log.Info("stopping: the run in flight, if any, stops at its next safe point and gives the lease back", "cause", context.Cause(ctx))
	}
	<-c.Stop().Done()
	log.Info("scheduler stopped")
	select {
	case code := <-t.refused:
		return code
	default:
		return exitOK
	}
}

// ticker runs the scheduled runs, one at a time whether the cron or --now
// starts it, and stops the scheduler on a configuration error, which does
// not fix itself (refused then holds the exit status).
type ticker struct {
	s       *settings
	e       *env
	m       *metrics.Metrics
	log     *slog.Logger
	mu      sync.Mutex
	stop    context.CancelCauseFunc
	refused chan int
}

// tick runs the pipeline once, unless the previous run is still going, and
// records it in the metrics.
func (t *ticker) tick(ctx context.Context) {
	if !t.mu.TryLock() {
		t.log.Warn("the previous run is still going: this tick is skipped")
		return
	}
	defer t.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	s := t.s
	s.newRun(t.e) // a fresh run id, and a logger that says it, per run
	res := s.runOnce(ctx, s.cfg, t.e)
	t.m.Observe(res.record, res.highWater)
	if s.ops.metricsFile != "" {
		if err := t.m.WriteTextfile(s.ops.metricsFile); err != nil {
			s.cfg.Logger.Warn("could not write the metrics file", "file", s.ops.metricsFile, "err", err)
		}
	}
	if res.code == exitLeaseHeld {
		s.cfg.Logger.Warn("another writer holds the stage: this tick did nothing; waiting for the next", "exit_status", res.code)
		return
	}
	s.cfg.Logger.Info("scheduled run finished", "exit_status", res.code, "duration", time.Duration(res.record.DurationSeconds*float64(time.Second)).Round(time.Millisecond))
	if res.code == exitUsage {
		select {
		case t.refused <- res.code:
		default:
		}
		t.stop(nil)
	}
}

// highWater reads the stage's high water, for the metrics before any run.
func (s *settings) highWater(ctx context.Context) (time.Time, bool) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg := s.cfg
	cfg.ReadOnly = true
	p, err := pipeline.Open(rctx, cfg)
	if err != nil {
		return time.Time{}, false
	}
	defer p.Close()
	hw, ok, err := p.Stage().HighWater(rctx)
	return hw.Next, ok && err == nil
}

// serve serves /healthz, /readyz and /metrics on --listen until stop is called.
func (s *settings) serve(m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", s.ops.listen)
	if err != nil {
		return nil, &pipeline.ConfigError{Msg: fmt.Sprintf("--listen %s: %v", s.ops.listen, err)}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok: the scheduler is alive")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := m.Ready(s.ops.readyMaxAge)
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready: "+why)
			return
		}
		fmt.Fprintln(w, "ready: "+why)
	})
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("the health and metrics server stopped", "err", err)
		}
	}()
	log.Info("serving /healthz, /readyz and /metrics", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

var timeUTC = time.UTC

// cronLogger adapts slog to cron's logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Info(msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error(msg, append(kv, "err", err)...)
}
