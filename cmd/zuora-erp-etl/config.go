package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// codeVersion names the code that wrote a manifest.
func codeVersion() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}

// settings binds the pipeline configuration to flags whose defaults come from
// the environment.
type settings struct {
	cfg        pipeline.Config
	logLevel   string
	requestLog string
	since      timeFlag
	until      timeFlag
	docTypes   string
	leaseTTL   string // --lease-ttl of the commands that write (lease.go)
	closers    []io.Closer
}

// statusFlag collects --status TABLE=S1,S2 into the extract's status filters.
type statusFlag struct{ m *map[string][]string }

var documentTables = []string{"invoices", "payments", "refunds", "credit_memos", "debit_memos"}

func (f statusFlag) String() string {
	if f.m == nil || *f.m == nil {
		return ""
	}
	var parts []string
	for t, s := range *f.m {
		parts = append(parts, t+"="+strings.Join(s, ","))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func (f statusFlag) Set(v string) error {
	table, list, ok := strings.Cut(v, "=")
	if !ok || !slices.Contains(documentTables, table) {
		return fmt.Errorf("want TABLE=STATUS[,STATUS] with TABLE one of %s", strings.Join(documentTables, ", "))
	}
	if *f.m == nil {
		*f.m = map[string][]string{}
	}
	var statuses []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			statuses = append(statuses, s)
		}
	}
	(*f.m)[table] = statuses
	return nil
}

type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f *timeFlag) Set(s string) error {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("want an RFC3339 time such as 2026-11-25T00:00:00Z")
	}
	f.t = t.UTC()
	return nil
}

// register adds the flags every pipeline command shares.
func (s *settings) register(fs *flag.FlagSet, e *env) {
	c := &s.cfg
	fs.StringVar(&c.ZuoraBaseURL, "zuora-base-url", e.getenv("ZUORA_BASE_URL"), "Zuora REST base URL, e.g. https://rest.na.zuora.com (env ZUORA_BASE_URL)")
	fs.StringVar(&c.ZuoraClientID, "zuora-client-id", e.getenv("ZUORA_CLIENT_ID"), "Zuora OAuth client id (env ZUORA_CLIENT_ID)")
	fs.StringVar(&c.ZuoraClientSecret, "zuora-client-secret", e.getenv("ZUORA_CLIENT_SECRET"), "Zuora OAuth client secret; prefer the env ZUORA_CLIENT_SECRET, flags show in ps")
	fs.StringVar(&c.ERPBaseURL, "erp-base-url", e.getenv("ERP_BASE_URL"), "ERP API base URL (env ERP_BASE_URL)")
	fs.StringVar(&c.ERPToken, "erp-token", e.getenv("ERP_TOKEN"), "ERP bearer token; prefer the env ERP_TOKEN")
	stageDefault := e.getenv("ETL_STAGE")
	if stageDefault == "" {
		stageDefault = "file://./stage"
	}
	fs.StringVar(&c.StageURL, "stage", stageDefault, "stage bucket URL: file://, s3://, gs://, azblob://, mem:// (env ETL_STAGE)")
	fs.StringVar(&c.SQLDir, "sql-dir", e.getenv("ETL_SQL_DIR"), "folder of mapping .sql/.csv files that replace the built-in ones (env ETL_SQL_DIR)")
	fs.DurationVar(&c.SettleLag, "settle-lag", 5*time.Minute, "how far behind now the last window ends")
	fs.DurationVar(&c.Overlap, "overlap", 10*time.Minute, "how far back each window's query reaches, to catch late-visible records")
	fs.IntVar(&c.ZuoraConcurrency, "zuora-concurrency", 8, "Zuora requests in flight at once (the tenant allows 80 Object Query requests)")
	fs.Var(statusFlag{&c.Statuses}, "status", "status filter of one document table, TABLE=S1,S2 (repeatable; TABLE= filters nothing);\ndefaults: invoices, credit_memos, debit_memos=Posted; payments, refunds=Processed")
	fs.IntVar(&c.Slices, "slices", 1, "split each window's query range into this many time slices walked concurrently")
	fs.IntVar(&c.ERPConcurrency, "erp-concurrency", 4, "ERP posts in flight at once")
	fs.IntVar(&c.BreakerThreshold, "breaker", 5, "consecutive documents failing transiently before the load stops (ERP down)")
	erpField := e.getenv("ETL_ERP_ACCOUNT_FIELD")
	if erpField == "" {
		erpField = "ERPAccountId__c"
	}
	fs.StringVar(&c.ERPAccountField, "erp-account-field", erpField, "API name of the account's custom field holding the ERP customer, read in any case (env ETL_ERP_ACCOUNT_FIELD)")
	docTypes := e.getenv("ETL_DOC_TYPES")
	if docTypes == "" {
		docTypes = strings.Join(stage.DocTypes, ",")
	}
	fs.StringVar(&s.docTypes, "doc-types", docTypes, "document types to move, comma-separated; a tenant without Invoice Settlement has no memos (env ETL_DOC_TYPES)")
	fs.StringVar(&c.ZuoraEntityID, "zuora-entity-id", e.getenv("ZUORA_ENTITY_ID"), "entity sent as Zuora-Entity-Ids on every call, for multi-entity tenants (env ZUORA_ENTITY_ID)")
	fs.IntVar(&c.ZuoraRate, "zuora-rate", 0, "Zuora requests per minute at most (0: no cap), e.g. to stay under an API Sandbox's 2,500/min, 5,000/h, 10,000/day")
	fs.StringVar(&s.logLevel, "log-level", "info", "debug, info, warn or error (logs go to stderr)")
	fs.StringVar(&s.requestLog, "request-log", "", "append every Zuora request and response to this file (secrets redacted)")
}

// registerRange adds --window (the window length), --since and --until.
func (s *settings) registerRange(fs *flag.FlagSet) {
	fs.DurationVar(&s.cfg.WindowSize, "window", time.Hour, "window length; windows end on multiples of it")
	fs.Var(&s.since, "since", "where the very first window starts when the stage has no high-water mark yet (RFC3339)")
	fs.Var(&s.until, "until", "end of the last window instead of now minus the settle lag (RFC3339)")
}

// finish completes the configuration once the flags are parsed.
func (s *settings) finish(e *env) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.logLevel)); err != nil {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--log-level %q: want debug, info, warn or error", s.logLevel)}
	}
	s.cfg.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	s.cfg.Since, s.cfg.Until = s.since.t, s.until.t
	if err := s.tenantSettings(); err != nil {
		return err
	}
	s.cfg.CodeVersion = codeVersion()
	if err := s.finishLease(); err != nil {
		return err
	}
	if s.requestLog != "" {
		f, err := os.OpenFile(s.requestLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return &pipeline.ConfigError{Msg: fmt.Sprintf("--request-log: %v", err)}
		}
		s.cfg.RequestLog = f
		s.closers = append(s.closers, f)
	}
	return nil
}

// open completes the configuration and opens the pipeline; close releases both.
func (s *settings) open(ctx context.Context, e *env) (*pipeline.Pipeline, error) {
	if err := s.finish(e); err != nil {
		return nil, err
	}
	p, err := pipeline.Open(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, p)
	return p, nil
}

func (s *settings) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i].Close()
	}
}

// parse parses a command's flags; it returns false with the exit status when
// the command should stop (help or a usage error).
func parse(fs *flag.FlagSet, args []string, e *env) (int, bool) {
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}

func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: zuora-erp-etl %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// fail prints err and returns its exit status: 2 for configuration errors, 1
// for everything else (the message says what was kept and how to resume).
func fail(e *env, err error) int {
	if code, ok := leaseFailure(e, err); ok {
		return code
	}
	msg := strings.TrimSpace(err.Error())
	if pipeline.IsConfigError(err) {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: %s\n", msg)
		return exitUsage
	}
	fmt.Fprintf(e.stderr, "zuora-erp-etl: %s\n", msg)
	var se *pipeline.StepError
	if !errors.As(err, &se) {
		fmt.Fprintln(e.stderr, "resume with: zuora-erp-etl run (every step is safe to repeat)")
	}
	return exitFailed
}

// outcome prints the report and returns the run's exit status.
func outcome(e *env, rep *pipeline.Report, err error) int {
	if rep != nil {
		rep.Print(e.stdout)
	}
	if err != nil {
		return fail(e, err)
	}
	if rep == nil {
		return exitOK
	}
	if !rep.Balanced() {
		fmt.Fprintln(e.stderr, "zuora-erp-etl: the report does not balance: some documents are unaccounted for; see zuora-erp-etl status")
		return exitFailed
	}
	if rep.Unfinished() {
		fmt.Fprintln(e.stderr, "zuora-erp-etl: some documents are not yet posted or not yet marked; resume with: zuora-erp-etl run")
		return exitFailed
	}
	if rep.NeedsAttention() {
		fmt.Fprintln(e.stderr, "zuora-erp-etl: some documents were rejected and need attention; list them with: zuora-erp-etl rejects")
		fmt.Fprintln(e.stderr, "fixed in Zuora (the account is enough) or in the mapping (--sql-dir), the next run posts them; one that must never be posted: zuora-erp-etl rejects ack --id ZUORA_ID --reason TEXT")
		return exitRejected
	}
	return exitOK
}

func parseWindow(id string) (stage.Window, error) {
	if id == "" {
		return stage.Window{}, &pipeline.ConfigError{Msg: "--window ID is required (see zuora-erp-etl status for the ids)"}
	}
	w, err := stage.ParseWindowID(id)
	if err != nil {
		return stage.Window{}, &pipeline.ConfigError{Msg: err.Error()}
	}
	return w, nil
}

var timeUTC = time.UTC

func nowUTC() time.Time { return time.Now().UTC() }

// tenantSettings checks the settings that describe the tenant: --doc-types,
// --erp-account-field, --zuora-entity-id and --zuora-rate.
func (s *settings) tenantSettings() error {
	s.cfg.DocTypes = nil
	for _, dt := range strings.Split(s.docTypes, ",") {
		if dt = strings.TrimSpace(dt); dt == "" {
			continue
		}
		if !slices.Contains(stage.DocTypes, dt) {
			return &pipeline.ConfigError{Msg: fmt.Sprintf("--doc-types %q: %q is not a document type; want some of %s", s.docTypes, dt, strings.Join(stage.DocTypes, ","))}
		}
		if !slices.Contains(s.cfg.DocTypes, dt) {
			s.cfg.DocTypes = append(s.cfg.DocTypes, dt)
		}
	}
	if len(s.cfg.DocTypes) == 0 {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--doc-types is empty; want some of %s", strings.Join(stage.DocTypes, ","))}
	}
	f := s.cfg.ERPAccountField
	if f == "" || strings.IndexFunc(f, func(r rune) bool {
		return !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) >= 0 {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--erp-account-field %q: want the field's API name, letters, digits and underscores such as ERPAccountId__c", f)}
	}
	if id := s.cfg.ZuoraEntityID; strings.ContainsAny(id, " ,;:\"'") {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--zuora-entity-id %q: want one entity id", id)}
	}
	if s.cfg.ZuoraRate < 0 {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--zuora-rate %d: want requests per minute, 0 for no cap", s.cfg.ZuoraRate)}
	}
	return nil
}
