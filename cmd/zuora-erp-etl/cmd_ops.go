package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/logctx"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
)

// opsFlags are the settings of how a command is watched: its progress, its
// metrics and, for schedule, its health endpoints.
type opsFlags struct {
	listen           string
	readyMaxAge      time.Duration
	metricsFile      string
	progressInterval time.Duration
}

// Defaults of the operations settings.
const (
	defaultReadyMaxAge      = 3 * time.Hour
	defaultProgressInterval = 30 * time.Second
	minProgressInterval     = 100 * time.Millisecond
)

// registerOps adds the operations flags the command uses.
func (s *settings) registerOps(e *env) {
	fs, o := s.fs, &s.ops
	if s.name == "schedule" || s.name == "config" {
		fs.StringVar(&o.listen, "listen", "", "serve /healthz, /readyz and /metrics on this `address`, e.g. :9090 (off by default)")
		fs.Var(newDuration(&o.readyMaxAge, defaultReadyMaxAge), "ready-max-age", "/readyz fails once the high water is older than this (a `duration`)")
	}
	if s.name == "run" || s.name == "schedule" || s.name == "config" {
		fs.StringVar(&o.metricsFile, "metrics-file", "", "write the run's metrics to this `file` for node_exporter's textfile collector (written atomically)")
	}
	fs.Var(newDuration(&o.progressInterval, defaultProgressInterval), "progress-interval", "when stderr is not a terminal, log the progress this often (a `duration`; 0: never)")
}

// checkOps refuses operations settings that make no sense.
func (s *settings) checkOps() error {
	o := s.ops
	has := func(name string) bool { return s.fs.Lookup(name) != nil }
	if has("progress-interval") && o.progressInterval != 0 && o.progressInterval < minProgressInterval {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--progress-interval %s: want 0 (never) or at least %s", o.progressInterval, minProgressInterval)}
	}
	if has("ready-max-age") && o.readyMaxAge <= 0 {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--ready-max-age %s: want a positive duration such as 3h", o.readyMaxAge)}
	}
	if o.listen != "" {
		if _, _, err := net.SplitHostPort(o.listen); err != nil {
			return &pipeline.ConfigError{Msg: fmt.Sprintf("--listen %q: want host:port or :port, e.g. :9090", o.listen)}
		}
	}
	return nil
}

// newLogger builds the command's logger from --log-level and --log-format:
// slog's text or JSON handler on stderr, adding the fields a context carries
// (the window being processed) to every line.
func (s *settings) newLogger(e *env) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.logLevel)); err != nil {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--log-level %q: want debug, info, warn or error", s.logLevel)}
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(e.stderr, opts)
	if s.logFormat == "json" {
		h = slog.NewJSONHandler(e.stderr, opts)
	}
	s.baseLogger = slog.New(logctx.Handler(h))
	s.cfg.Logger = s.baseLogger
	return nil
}

// newRun gives the configuration a fresh run id, a logger whose every line
// carries it, the progress and what the run record keeps of the settings.
func (s *settings) newRun(e *env) {
	// The wall clock names the run even when a test sets the pipeline's clock,
	// so that two runs of one process never share an id (and a record).
	id := pipeline.NewRunID(time.Now())
	for id <= s.lastRunID {
		time.Sleep(time.Millisecond)
		id = pipeline.NewRunID(time.Now())
	}
	s.cfg.RunID, s.lastRunID = id, id
	s.cfg.Logger = s.baseLogger.With("run_id", s.cfg.RunID)
	s.cfg.Command = s.name
	s.cfg.Settings = s.changed()
	if s.prog == nil {
		s.prog = s.newProgress(e)
	}
	if s.prog != nil {
		s.prog.startRun(s.cfg.RunID, s.cfg.Logger)
		s.cfg.Progress = s.prog
	}
}

// changed returns this invocation's settings that differ from the command's
// built-in defaults, as flag name and value: never a secret, a stage URL
// without credentials.
func (s *settings) changed() map[string]string {
	out := map[string]string{}
	defaults := newSettings(s.name, &env{getenv: func(string) string { return "" }}).fs
	s.fs.VisitAll(func(f *flag.Flag) {
		d := defaults.Lookup(f.Name)
		if secretFlags[f.Name] || d == nil || f.Value.String() == d.DefValue {
			return
		}
		v := f.Value.String()
		if f.Name == "stage" {
			if u, err := url.Parse(v); err == nil {
				u.User = nil
				v = u.String()
			}
		}
		out[f.Name] = v
	})
	return out
}
