package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// settings binds one command's flags, whose defaults come from the
// environment, to the pipeline configuration and the command's own values.
type settings struct {
	name string
	fs   *flag.FlagSet
	cfg  pipeline.Config

	logLevel   string
	requestLog string
	since      timeFlag
	until      timeFlag
	from, to   timeFlag  // extract
	force      bool      // extract
	windowID   string    // transform, load
	cron       string    // schedule
	now        bool      // schedule
	format     string    // query
	saved      savedFlag // query --saved
	auditsDir  string    // query
	jsonOut    bool      // status, runs
	pending    bool      // status
	last       int       // status, runs
	before     dateFlag  // prune
	apply      bool      // prune
	docTypes   string
	leaseTTL   string // --lease-ttl of the commands that write (lease.go)
	logFormat  string
	configFile string
	baseLogger *slog.Logger // the logger before a run id is added to it
	lastRunID  string       // the id newRun gave last
	prog       progress     // the run's progress, when it is shown (cmd_progress.go)
	closers    []io.Closer
	// markRefused is --mark-refused of the commands that load; markRefusedEnv
	// is ETL_MARK_REFUSED as set, checked by check.
	markRefused    bool
	markRefusedEnv string

	ops     opsFlags          // the operations flags of some commands (cmd_ops.go)
	duckdb  duckdbFlags       // the DuckDB limits of the commands that open it (cmd_duckdb.go)
	sources map[string]string // where each flag's value came from (config.go, cmd_config.go)
	errs    []error           // settings that failed before the flags were parsed (a secret file)
	warned  []string          // warnings for the user, printed once the flags are parsed
}

// Commands whose flags newSettings knows, and what each takes besides the
// shared settings.
const (
	takesRange    = 1 << iota // --window LENGTH, --max-windows
	takesSpan                 // --since, --until
	takesWindowID             // --window ID
	takesZuora                // the Zuora connection and its tuning
	takesExtract              // what the extract queries and how
	takesMapping              // --sql-dir, --doc-types
	takesERP                  // the ERP connection and its tuning
	takesOps                  // --listen, --metrics-file, --progress-interval (cmd_ops.go)

	takesAll = takesZuora | takesExtract | takesMapping | takesERP | takesOps
)

var pipelineCommands = map[string]struct {
	synopsis string
	takes    int
}{
	"run": {"run [--since T] [--until T] [--window 1h] [flags]\n\nProcesses every due window from the saved high water (or the stage's start point): windows\nwhose load is unfinished first, then new ones up to now minus the settle lag, at most --max-windows.\nThe first run of a stage needs --since, where its history starts. Safe to repeat at any time.",
		takesRange | takesSpan | takesAll},
	"schedule": {"schedule [--cron \"5 * * * *\"] [--now] [flags]\n\nRuns \"run\" on a cron schedule (standard 5-field syntax or @hourly, @every 30m) until interrupted.\nA run still going when the next is due is not started twice; each run's report goes to stdout.",
		takesRange | takesSpan | takesAll},
	"extract": {"extract --from T1 --to T2 [--window 1h] [--force] [flags]\n\nBackfills the windows of [T1, T2) into the stage without moving the high water, at most\n--max-windows of them and none ending after now minus the settle lag. Windows already staged are\nkept unless --force.",
		takesRange | takesZuora | takesExtract | takesOps},
	"transform": {"transform --window ID [--sql-dir DIR] [flags]\n\nRe-runs the transform of one staged window with the current mapping, replacing its documents,\nrejects and skips. Documents already posted are never posted twice.",
		takesWindowID | takesMapping},
	"load": {"load --window ID [flags]\n\nPosts the window's documents that the ERP has not confirmed yet, then marks every confirmed one\ntransferred in Zuora. Use it after an ERP outage; it is always safe to repeat.",
		takesWindowID | takesZuora | takesMapping | takesERP | takesOps},
	"rejects":     {rejectsSynopsis, 0},
	"reconcile":   {reconcileSynopsis, takesZuora | takesERP},
	"rejects ack": {rejectsSynopsis, 0},
	"status":      {statusSynopsis, 0},
	"config":      {configSynopsis, takesRange | takesSpan | takesAll},
	"runs":        {runsSynopsis, 0},
	"prune":       {pruneSynopsis, 0},
	"query": {`query [--stage URL] [--format table|csv|json] "SQL"

Runs DuckDB SQL over every committed window of the stage. Views: the raw snapshots
(` + strings.Join(stage.Tables(), ", ") + `),
quarantine (records that could not be staged: raw JSON and reason), documents, skipped (the
transform's outputs), rejects (only what is outstanding now, with its window, reason, first_seen,
last_seen and the last re-check's note), reject_history (every window's rejects as its last
transform left them, resolved or not) and ledger (every load result); each row carries its window
(a DuckDB keyword: write it "window"). Example:
  zuora-erp-etl query 'select "window", count(*), sum(amount) from invoices group by all order by 1'`, 0},
}

// newSettings builds the flags of pipeline command name, with defaults from
// e's environment (secrets excepted: their flags show no default).
func newSettings(name string, e *env) *settings {
	spec := pipelineCommands[name]
	s := &settings{name: name, fs: newFlagSet(name, spec.synopsis), sources: map[string]string{}}
	s.register(e, spec.takes)
	if spec.takes&takesOps != 0 {
		s.registerOps(e)
	}
	if writes[name] {
		s.registerLease(s.fs, e)
	}
	s.registerDuckDB(e, spec.takes)
	if spec.takes&takesRange != 0 {
		s.fs.Var(newDuration(&s.cfg.WindowSize, time.Hour), "window", "`length` of a window, at least 1m; windows end on multiples of it")
		s.fs.IntVar(&s.cfg.MaxWindows, "max-windows", pipeline.DefaultMaxWindows, "most windows one invocation processes; the rest are left for the next")
	}
	if spec.takes&takesSpan != 0 {
		s.fs.Var(&s.since, "since", "`time` (RFC3339) where the stage's history starts: needed by its first run, recorded in the stage")
		s.fs.Var(&s.until, "until", "`time` (RFC3339) where the last window ends instead of now minus the settle lag (a later time is clamped)")
	}
	if spec.takes&takesWindowID != 0 {
		s.fs.StringVar(&s.windowID, "window", "", "the window id, e.g. 20261125T220000Z-20261125T230000Z (see status)")
	}
	if loads[name] {
		s.markRefusedEnv = e.getenv("ETL_MARK_REFUSED")
		def := true
		if v, err := strconv.ParseBool(s.markRefusedEnv); err == nil {
			def = v
		}
		s.fs.BoolVar(&s.markRefused, "mark-refused", def, "mark the documents the ERP refuses for good TransferredToAccounting = Error in Zuora,\nas Zuora's own connectors do; false leaves them as they are (env ETL_MARK_REFUSED)")
	}
	switch name {
	case "extract":
		s.fs.Var(&s.from, "from", "`time` (RFC3339) where the range starts (required)")
		s.fs.Var(&s.to, "to", "`time` (RFC3339) where the range ends, exclusive (required; a time later than now minus the settle lag is clamped)")
		s.fs.BoolVar(&s.force, "force", false, "extract windows again even if they are already staged")
	case "schedule", "config":
		s.fs.StringVar(&s.cron, "cron", "5 * * * *", "when to run, in cron syntax (UTC), at most once a minute")
		s.fs.BoolVar(&s.now, "now", false, "also run once immediately")
	}
	s.registerCommand(e)
	return s
}

// registerCommand adds the flags of one command alone.
func (s *settings) registerCommand(e *env) {
	fs := s.fs
	switch s.name {
	case "query":
		fs.StringVar(&s.format, "format", "table", "output format: table, csv or json (one object per line; lists, structs and maps as JSON)")
		fs.Var(&s.saved, "saved", "list the saved audit queries, or run the one named after it: --saved NAME")
		fs.StringVar(&s.auditsDir, "audits-dir", e.getenv("ETL_AUDITS_DIR"), "folder of .sql audit queries that replace or add to the saved ones by name (env ETL_AUDITS_DIR)")
	case "status":
		fs.BoolVar(&s.jsonOut, "json", false, "print the status as one JSON object (its shape: docs/design.md \"status --json\")")
		fs.BoolVar(&s.pending, "pending", false, "show only the windows with work pending: unfinished, or holding an outstanding reject")
		fs.StringVar(&s.windowID, "window", "", "show only this window, e.g. 20261125T220000Z-20261125T230000Z")
		fs.IntVar(&s.last, "last", 0, "show only the last N windows (0: every one)")
	case "runs":
		fs.BoolVar(&s.jsonOut, "json", false, "print the runs as a JSON array (its shape: docs/design.md \"Run history\")")
		fs.IntVar(&s.last, "last", 20, "show the last N runs (0: every one)")
	case "prune":
		fs.Var(&s.before, "before", "`time` (RFC3339, or a date 2026-01-31): remove windows that end at or before it (required)")
		fs.BoolVar(&s.apply, "apply", false, "delete; without it prune only says what it would delete")
	}
}

// writes are the commands that write the stage, under its lease.
var writes = map[string]bool{"run": true, "schedule": true, "extract": true, "transform": true, "load": true, "rejects ack": true, "prune": true, "config": true}

// loads are the commands that post to the ERP and write back to Zuora (and
// config, which shows and checks their settings).
var loads = map[string]bool{"run": true, "schedule": true, "load": true, "config": true}

// settingFlags names the flag and environment variable of each
// pipeline.Config field (and of the range of extract, and what rejects ack
// takes) that a message may ask the user to check.
var settingFlags = map[string]struct{ flag, env string }{
	"ZuoraBaseURL":        {"zuora-base-url", "ZUORA_BASE_URL"},
	"ZuoraClientID":       {"zuora-client-id", "ZUORA_CLIENT_ID"},
	"ZuoraClientSecret":   {"zuora-client-secret", "ZUORA_CLIENT_SECRET"},
	"ERPBaseURL":          {"erp-base-url", "ERP_BASE_URL"},
	"ERPToken":            {"erp-token", "ERP_TOKEN"},
	"StageURL":            {"stage", "ETL_STAGE"},
	"SQLDir":              {"sql-dir", "ETL_SQL_DIR"},
	"ERPAccountField":     {"erp-account-field", "ETL_ERP_ACCOUNT_FIELD"},
	"DocTypes":            {"doc-types", "ETL_DOC_TYPES"},
	"UnapplyAmounts":      {"unapply-amounts", "ETL_UNAPPLY_AMOUNTS"},
	"KeepRefusedUnmarked": {"mark-refused", "ETL_MARK_REFUSED"},
	"ZuoraEntityID":       {"zuora-entity-id", "ZUORA_ENTITY_ID"},
	"LeaseTTL":            {"lease-ttl", "ETL_LEASE_TTL"},
	"WindowSize":          {"window", ""},
	"SettleLag":           {"settle-lag", ""},
	"MaxWindows":          {"max-windows", ""},
	"Since":               {"since", ""},
	"Until":               {"until", ""},
	"From":                {"from", ""},
	"To":                  {"to", ""},
	"AckID":               {"id", ""},
	"AckReason":           {"reason", ""},
	"AuditsDir":           {"audits-dir", "ETL_AUDITS_DIR"},
	"StatusWindow":        {"window", ""},
	"PruneBefore":         {"before", ""},
}

// secretFlags never show their value: not in usage text, not in a printed command.
var secretFlags = map[string]bool{"zuora-client-secret": true, "erp-token": true}

// perInvocationFlags say what one invocation does, not how the tool is set
// up: a printed command takes them from its step, never from this invocation.
var perInvocationFlags = map[string]bool{
	"since": true, "until": true, "from": true, "to": true, "force": true,
	"cron": true, "now": true, "format": true, "break-lease": true,
	"saved": true, "json": true, "pending": true, "last": true, "before": true, "apply": true,
	"metrics-file": true, "listen": true,
}

// register adds the flags of the groups a command takes: the stage and the
// logs for every command, then the Zuora, extract, mapping and ERP settings
// only where the command uses them, so that its --help lists only those.
func (s *settings) register(e *env, takes int) {
	fs, c := s.fs, &s.cfg
	s.registerConfig(e)
	stageDefault := e.getenv("ETL_STAGE")
	if stageDefault == "" {
		stageDefault = "file://./stage"
	}
	fs.StringVar(&c.StageURL, "stage", stageDefault, "stage bucket URL: file://, s3://, gs://, azblob://, mem:// (env ETL_STAGE)")
	fs.StringVar(&s.logLevel, "log-level", "info", "debug, info, warn or error (logs go to stderr)")
	fs.StringVar(&s.logFormat, "log-format", "text", "text or json (slog's JSON handler: one object per line)")
	if takes&takesZuora != 0 {
		fs.StringVar(&c.ZuoraBaseURL, "zuora-base-url", e.getenv("ZUORA_BASE_URL"), "Zuora REST base URL, e.g. https://rest.na.zuora.com (env ZUORA_BASE_URL)")
		fs.StringVar(&c.ZuoraClientID, "zuora-client-id", e.getenv("ZUORA_CLIENT_ID"), "Zuora OAuth client id (env ZUORA_CLIENT_ID)")
		s.secret(&c.ZuoraClientSecret, "zuora-client-secret", "ZUORA_CLIENT_SECRET", "Zuora OAuth client secret", e)
		fs.StringVar(&c.ZuoraEntityID, "zuora-entity-id", e.getenv("ZUORA_ENTITY_ID"), "entity sent as Zuora-Entity-Ids on every call, for multi-entity tenants (env ZUORA_ENTITY_ID)")
		fs.IntVar(&c.ZuoraConcurrency, "zuora-concurrency", 8, "Zuora requests in flight at once, 1 to 80 (the tenant allows 80 Object Query requests)")
		fs.IntVar(&c.ZuoraRate, "zuora-rate", 0, "Zuora requests per minute at most (0: no cap), e.g. to stay under an API Sandbox's 2,500/min, 5,000/h, 10,000/day")
		fs.StringVar(&s.requestLog, "request-log", "", "append every Zuora request and response to this file (secrets redacted)")
	}
	if takes&takesExtract != 0 {
		fs.Var(newDuration(&c.SettleLag, 5*time.Minute), "settle-lag", "how far behind now the last window ends (a `duration`)")
		fs.Var(newDuration(&c.Overlap, 10*time.Minute), "overlap", "how far back each window's query reaches, to catch late-visible records (a `duration`)")
		fs.Var(statusFlag{&c.Statuses}, "status", "status filter of one document table, `TABLE=S1,S2` (repeatable; TABLE= filters nothing);\ndefault: every status is extracted, so that a status change after posting is seen")
		fs.IntVar(&c.Slices, "slices", 1, "split each window's query range into this many time slices walked concurrently, 1 to 100")
		erpField := e.getenv("ETL_ERP_ACCOUNT_FIELD")
		if erpField == "" {
			erpField = "ERPAccountId__c"
		}
		fs.StringVar(&c.ERPAccountField, "erp-account-field", erpField, "API name of the account's custom field holding the ERP customer, read in any case (env ETL_ERP_ACCOUNT_FIELD)")
	}
	if takes&takesMapping != 0 {
		fs.StringVar(&c.SQLDir, "sql-dir", e.getenv("ETL_SQL_DIR"), "folder of mapping .sql/.csv files that replace the built-in ones (env ETL_SQL_DIR)")
	}
	if takes&(takesExtract|takesMapping) != 0 {
		docTypes := e.getenv("ETL_DOC_TYPES")
		if docTypes == "" {
			docTypes = stage.DocTypeList()
		}
		fs.StringVar(&s.docTypes, "doc-types", docTypes, "document types and application kinds to move, comma-separated (reversals follow the documents); a tenant without Invoice Settlement has neither memos nor applications: invoice,payment,refund (env ETL_DOC_TYPES)")
	}
	if takes&takesMapping != 0 {
		unapply := e.getenv("ETL_UNAPPLY_AMOUNTS")
		if unapply == "" {
			unapply = "negative"
		}
		fs.StringVar(&c.UnapplyAmounts, "unapply-amounts", unapply, "how the tenant writes an unapply's amount: negative, or positive (unsigned, like the apply it undoes: the sign is decided per application group) (env ETL_UNAPPLY_AMOUNTS)")
	}
	if takes&takesERP != 0 {
		fs.StringVar(&c.ERPBaseURL, "erp-base-url", e.getenv("ERP_BASE_URL"), "ERP API base URL (env ERP_BASE_URL)")
		s.secret(&c.ERPToken, "erp-token", "ERP_TOKEN", "ERP bearer token", e)
		fs.IntVar(&c.ERPConcurrency, "erp-concurrency", 4, "ERP posts in flight at once, 1 to 256")
		fs.IntVar(&c.BreakerThreshold, "breaker", 5, "consecutive documents failing transiently before the load stops (ERP down), at least 1")
	}
}

// secret adds a flag for a secret: its value comes from the environment
// variable, or the file the variable NAME_FILE names (the habit of secret
// volumes), unless the flag is given; usage text says at most that it is set.
func (s *settings) secret(p *string, name, envName, what string, e *env) {
	*p = e.getenv(envName)
	if file := e.getenv(envName + "_FILE"); file != "" {
		switch v, err := readSecretFile(file); {
		case *p != "":
			s.errs = append(s.errs, &pipeline.ConfigError{Msg: fmt.Sprintf("both %s and %s_FILE are set: set one of them", envName, envName)})
		case err != nil:
			s.errs = append(s.errs, &pipeline.ConfigError{Msg: fmt.Sprintf("%s_FILE: %v", envName, err)})
		default:
			*p = v
			s.sources[name] = "env " + envName + "_FILE"
		}
	}
	state := "not set"
	if *p != "" {
		state = "set"
	}
	s.fs.Var(secretValue{p}, name, fmt.Sprintf("%s (a `secret`); prefer the environment variable %s or %s_FILE (now %s): flags show in ps", what, envName, envName, state))
}

// readSecretFile reads a secret from a file, without its trailing newline; an
// empty file is refused, so that a missing secret is never taken for one.
func readSecretFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the secret file: %v", errors.Unwrap(err))
	}
	v := strings.TrimRight(string(data), "\r\n")
	if v == "" {
		return "", fmt.Errorf("the secret file %s is empty", path)
	}
	return v, nil
}

// secretValue is a flag whose value never shows.
type secretValue struct{ p *string }

func (secretValue) String() string       { return "" }
func (v secretValue) Set(s string) error { *v.p = s; return nil }

// durationValue is a duration flag whose error says how to write one.
type durationValue struct{ p *time.Duration }

func newDuration(p *time.Duration, def time.Duration) durationValue {
	*p = def
	return durationValue{p}
}

func (v durationValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		if strings.HasSuffix(s, "d") {
			return errors.New("days are not a unit: write 24h for a day")
		}
		return errors.New("want a duration such as 30m or 1h")
	}
	*v.p = d
	return nil
}

// statusFlag collects --status TABLE=S1,S2 into the extract's status filters.
type statusFlag struct{ m *map[string][]string }

func (f statusFlag) String() string { return strings.Join(f.parts(), " ") }

// parts is one TABLE=S1,S2 per table, as the flag is given.
func (f statusFlag) parts() []string {
	if f.m == nil || *f.m == nil {
		return nil
	}
	var parts []string
	for t, s := range *f.m {
		parts = append(parts, t+"="+strings.Join(s, ","))
	}
	slices.Sort(parts)
	return parts
}

func (f statusFlag) Set(v string) error {
	table, list, ok := strings.Cut(v, "=")
	if dt, known := stage.DocTypeOfTable(table); !ok || !known || !dt.IsDocument() {
		return fmt.Errorf("want TABLE=STATUS[,STATUS] with TABLE one of %s", strings.Join(stage.DocumentTables(), ", "))
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

// parse parses a command's flags and checks their values; it returns false
// with the exit status when the command should stop (help or a usage error,
// reported in one line).
func (s *settings) parse(args []string, e *env) (int, bool) {
	if code, ok := parseLayered(s, args, e); !ok {
		return code, false
	}
	if err := s.check(); err != nil {
		return s.fail(e, err), false
	}
	return 0, true
}

// parseLayered parses a command's flags and fills the rest from the
// environment and the configuration file, without checking their values.
func parseLayered(s *settings, args []string, e *env) (int, bool) {
	if code, ok := parse(s.fs, args, e); !ok {
		return code, false
	}
	if err := s.layer(e); err != nil {
		return s.fail(e, err), false
	}
	for _, w := range s.warned {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: warning: %s\n", w)
	}
	return 0, true
}

// check refuses flag values that make no sense, naming the flag and what it accepts.
func (s *settings) check() error {
	for _, r := range rangeRules {
		if s.fs.Lookup(r.flag) != nil && r.bad(&s.cfg) {
			return badFlag(r.name, r.value(&s.cfg), r.want)
		}
	}
	switch {
	case s.name != "query" && s.name != "config" && s.fs.NArg() > 0:
		return &pipeline.ConfigError{Msg: fmt.Sprintf("%s: unexpected argument %q; see: zuora-erp-etl %s --help", s.name, s.fs.Arg(0), s.name)}
	case !s.since.t.IsZero() && !s.until.t.IsZero() && !s.since.t.Before(s.until.t):
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--since %s is not before --until %s", s.since.String(), s.until.String())}
	case s.logFormat != "text" && s.logFormat != "json":
		return badFlag("log-format", s.logFormat, "want text or json")
	}
	if err := s.checkOps(); err != nil {
		return err
	}
	if _, err := strconv.ParseBool(s.markRefusedEnv); loads[s.name] && s.markRefusedEnv != "" && err != nil {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("ETL_MARK_REFUSED %q: want true or false (or pass --mark-refused=false)", s.markRefusedEnv)}
	}
	if err := s.checkDuckDB(); err != nil {
		return err
	}
	if c := commandChecks[s.name]; c != nil {
		return c(s)
	}
	return nil
}

// badFlag is the refusal of --name value, saying what the flag wants.
func badFlag(name, value, want string) error {
	return &pipeline.ConfigError{Msg: fmt.Sprintf("--%s %s: %s", name, value, want)}
}

// rangeRules are the numeric settings' ranges, checked in this order when the
// command has the flag: name is the flag the refusal names.
var rangeRules = []struct {
	flag, name, want string
	bad              func(c *pipeline.Config) bool
	value            func(c *pipeline.Config) string
}{
	{"max-windows", "window", "want at least 1m (e.g. 1h); shorter windows only multiply requests",
		func(c *pipeline.Config) bool { return c.WindowSize < pipeline.MinWindow }, func(c *pipeline.Config) string { return c.WindowSize.String() }},
	{"settle-lag", "settle-lag", "want a positive duration such as 5m",
		func(c *pipeline.Config) bool { return c.SettleLag <= 0 }, func(c *pipeline.Config) string { return c.SettleLag.String() }},
	{"overlap", "overlap", "want a positive duration such as 10m",
		func(c *pipeline.Config) bool { return c.Overlap <= 0 }, func(c *pipeline.Config) string { return c.Overlap.String() }},
	{"zuora-concurrency", "zuora-concurrency", "want 1 to 80 (Zuora allows 80 concurrent Object Query requests per tenant)",
		func(c *pipeline.Config) bool { return c.ZuoraConcurrency < 1 || c.ZuoraConcurrency > 80 },
		func(c *pipeline.Config) string { return fmt.Sprint(c.ZuoraConcurrency) }},
	{"erp-concurrency", "erp-concurrency", "want 1 to 256",
		func(c *pipeline.Config) bool { return c.ERPConcurrency < 1 || c.ERPConcurrency > 256 },
		func(c *pipeline.Config) string { return fmt.Sprint(c.ERPConcurrency) }},
	{"breaker", "breaker", "want at least 1 document",
		func(c *pipeline.Config) bool { return c.BreakerThreshold < 1 }, func(c *pipeline.Config) string { return fmt.Sprint(c.BreakerThreshold) }},
	{"slices", "slices", "want 1 to 100",
		func(c *pipeline.Config) bool { return c.Slices < 1 || c.Slices > 100 }, func(c *pipeline.Config) string { return fmt.Sprint(c.Slices) }},
	{"max-windows", "max-windows", "want at least 1",
		func(c *pipeline.Config) bool { return c.MaxWindows < 1 }, func(c *pipeline.Config) string { return fmt.Sprint(c.MaxWindows) }},
}

// commandChecks are the checks of one command's own flags.
var commandChecks = map[string]func(*settings) error{
	"extract":   (*settings).checkExtract,
	"transform": (*settings).checkWindowFlag,
	"load":      (*settings).checkWindowFlag,
	"schedule":  (*settings).checkCron,
	"config":    (*settings).checkCron,
	"status":    (*settings).checkStatus,
	"runs":      (*settings).checkRuns,
	"prune":     (*settings).checkPrune,
	"query":     (*settings).checkQuery,
}

func (s *settings) checkExtract() error {
	switch {
	case s.from.t.IsZero() || s.to.t.IsZero():
		return &pipeline.ConfigError{Msg: "extract needs --from and --to (RFC3339)"}
	case !s.from.t.Before(s.to.t):
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--from %s is not before --to %s", s.from.String(), s.to.String())}
	}
	return nil
}

func (s *settings) checkWindowFlag() error {
	if s.windowID == "" {
		return &pipeline.ConfigError{Msg: "--window ID is required (see zuora-erp-etl status for the ids)"}
	}
	if _, err := stage.ParseWindowID(s.windowID); err != nil {
		return &pipeline.ConfigError{Msg: "--window: " + err.Error()}
	}
	return nil
}

func (s *settings) checkCron() error {
	_, err := schedule(s.cron, time.Now())
	return err
}

func (s *settings) checkStatus() error {
	if s.windowID != "" {
		if _, err := stage.ParseWindowID(s.windowID); err != nil {
			return &pipeline.ConfigError{Msg: "--window: " + err.Error()}
		}
	}
	if s.last < 0 {
		return badFlag("last", fmt.Sprint(s.last), "want a number of windows, 0 for every one")
	}
	return nil
}

func (s *settings) checkRuns() error {
	if s.last < 0 {
		return badFlag("last", fmt.Sprint(s.last), "want a number of runs, 0 for every one")
	}
	return nil
}

func (s *settings) checkPrune() error {
	if s.before.t.IsZero() {
		return &pipeline.ConfigError{Msg: "prune needs --before DATE (RFC3339 or 2026-01-31): windows ending then or earlier are removed"}
	}
	return nil
}

func (s *settings) checkQuery() error {
	switch s.format {
	case "table", "csv", "json":
		return nil
	}
	return &pipeline.ConfigError{Msg: fmt.Sprintf("--format %q: want table, csv or json", s.format)}
}

// minCronInterval is the shortest interval between scheduled runs: each run
// ends its last window at now minus the settle lag, so runs seconds apart
// would make windows of seconds. Tests of the scheduler shorten it.
var minCronInterval = time.Minute

// schedule parses a cron spec, refusing one that fires more than once a
// minute or never.
func schedule(spec string, now time.Time) (cron.Schedule, error) {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, &pipeline.ConfigError{Msg: fmt.Sprintf("--cron %q: %v", spec, err)}
	}
	if every, ok := sched.(cron.ConstantDelaySchedule); ok && every.Delay < minCronInterval {
		return nil, &pipeline.ConfigError{Msg: fmt.Sprintf("--cron %q fires more than once a minute: want at least @every 1m", spec)}
	}
	if sched.Next(now).IsZero() {
		return nil, &pipeline.ConfigError{Msg: fmt.Sprintf("--cron %q never fires: no date matches it", spec)}
	}
	return sched, nil
}

// window is the window of --window ID, checked by parse.
func (s *settings) window() stage.Window {
	w, _ := stage.ParseWindowID(s.windowID)
	return w
}

// finish completes the configuration once the flags are parsed.
func (s *settings) finish(e *env) error {
	if err := s.newLogger(e); err != nil {
		return err
	}
	if err := s.applyDuckDB(); err != nil {
		return err
	}
	s.cfg.Since, s.cfg.Until = s.since.t, s.until.t
	s.cfg.KeepRefusedUnmarked = loads[s.name] && !s.markRefused
	if err := s.tenantSettings(); err != nil {
		return err
	}
	s.cfg.CodeVersion = codeVersion()
	if err := s.finishLease(); err != nil {
		return err
	}
	if e.now != nil {
		s.cfg.Now = e.now
	}
	s.newRun(e)
	if e.retry != nil {
		s.cfg.ZuoraRetry, s.cfg.ERPRetry = *e.retry, *e.retry
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
// the command should stop. Help goes to stderr; a usage error is one line
// that names the flag, never the whole flag list.
func parse(fs *flag.FlagSet, args []string, e *env) (int, bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(e.stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return exitOK, false
	case err != nil:
		msg := strings.NewReplacer("flag -", "--", "defined: -", "defined: --").Replace(err.Error())
		fmt.Fprintf(e.stderr, "zuora-erp-etl %s: %s; see: zuora-erp-etl %s --help\n", fs.Name(), msg, fs.Name())
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

// tenantSettings checks the settings that describe the tenant: --doc-types,
// --erp-account-field, --zuora-entity-id and --zuora-rate.
func (s *settings) tenantSettings() error {
	if s.fs.Lookup("doc-types") == nil {
		return nil // a command that reads no tenant
	}
	var names []string
	for _, dt := range strings.Split(s.docTypes, ",") {
		if dt = strings.TrimSpace(dt); dt != "" {
			names = append(names, dt)
		}
	}
	types, err := stage.ParseDocTypes(names)
	if err != nil {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--doc-types %q: %v", s.docTypes, err)}
	}
	if len(types) == 0 {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--doc-types is empty; want some of %s", stage.DocTypeList())}
	}
	s.cfg.DocTypes = types
	if err := pipeline.CheckUnapplyAmounts(s.cfg.UnapplyAmounts); err != nil {
		return err
	}
	f := s.cfg.ERPAccountField
	if s.fs.Lookup("erp-account-field") != nil && f == "" || strings.IndexFunc(f, func(r rune) bool {
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
