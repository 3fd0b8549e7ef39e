// Package demo runs the whole pipeline against the built-in Zuora and ERP
// simulators, each a real HTTP server on loopback, and checks the promises the
// tool makes: every document accounted for, each posted exactly once, every
// posted one marked transferred in Zuora, every application and reversal in
// the ERP once, AR parity between Zuora and the ERP, and a second pass
// posting nothing. Between its windows it changes receivables in the
// simulated tenant as a Zuora user would (Receivables).
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Credentials of the demo's simulated tenant and ERP (not secrets: the
// simulators run in this process and hold generated data only).
const (
	ClientID     = "demo-client-id"
	ClientSecret = "demo-client-secret"
	ERPToken     = "demo-erp-token"
)

// From and To bound the demo tenant's generated activity: three hourly
// windows; the demo's receivables changes fill the two hours after To.
var (
	From = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	To   = From.Add(3 * time.Hour)
)

// clock is the demo's time: both simulators and the pipeline read it, so
// that the receivables changes land in the windows after To.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// ownerKey is the file that says the demo owns a stage and may wipe it.
const ownerKey = "DEMO-STAGE.txt"

// Options configures a demo run.
type Options struct {
	StageURL string
	Seed     int64
	Volume   zuorasim.Volume
	Logger   *slog.Logger
	// Realistic turns on every simulator behaviour that Zuora's documentation
	// says real tenants show (see Realistic).
	Realistic bool
}

// Realistic is the simulated tenant as Zuora's documentation says real ones
// behave (docs/zuora-api.md): custom field names in lower camel case
// (eRPAccountId__c), offset cursors on invoices and invoice items, amounts
// written as doubles (1.0E7, 0.0), Actions refusing refunds of credit memos,
// and occasional 429s that carry RateLimit-* headers but no Retry-After.
func Realistic() zuorasim.Options {
	return zuorasim.Options{
		LowerCamelCustomFields:         true,
		OffsetCursorObjects:            []string{"invoices", "invoice-items"},
		NumbersAsDoubles:               true,
		ActionRefusesCreditMemoRefunds: true,
		Faults:                         zuorasim.Faults{Status429Every: 40, NoRetryAfter: true},
	}
}

// Servers are the two simulators, started on loopback.
type Servers struct {
	Zuora    *zuorasim.Sim
	ERP      *erpsim.Sim
	ZuoraURL string
	ERPURL   string
	close    []func() error
}

// Start serves both simulators on 127.0.0.1 with the tenant already loaded.
func Start(seed int64, v zuorasim.Volume, from, to time.Time) (*Servers, error) {
	return StartTenant(zuorasim.Options{}, seed, v, from, to)
}

// StartTenant is Start with the simulated tenant's switches (its credentials
// are the demo's).
func StartTenant(opts zuorasim.Options, seed int64, v zuorasim.Volume, from, to time.Time) (*Servers, error) {
	opts.ClientID, opts.ClientSecret = ClientID, ClientSecret
	zs := zuorasim.New(opts)
	zs.Load(zuorasim.Generate(seed, v, from, to))
	es := erpsim.New(erpsim.Options{Token: ERPToken})
	s := &Servers{Zuora: zs, ERP: es}
	var err error
	if s.ZuoraURL, err = s.serve(zs); err != nil {
		return nil, err
	}
	if s.ERPURL, err = s.serve(es); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Servers) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen on loopback: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	s.close = append(s.close, srv.Close)
	return "http://" + ln.Addr().String(), nil
}

// Close stops both servers.
func (s *Servers) Close() {
	for _, c := range s.close {
		c()
	}
}

// Config returns a pipeline configuration pointed at the simulators.
func (s *Servers) Config(stageURL string, logger *slog.Logger) pipeline.Config {
	fast := retry.Policy{MaxAttempts: 5, Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond, MaxElapsed: 30 * time.Second}
	return pipeline.Config{
		ZuoraBaseURL:      s.ZuoraURL,
		ZuoraClientID:     ClientID,
		ZuoraClientSecret: ClientSecret,
		ERPBaseURL:        s.ERPURL,
		ERPToken:          ERPToken,
		StageURL:          stageURL,
		WindowSize:        time.Hour,
		Since:             From,
		Until:             To,
		ZuoraRetry:        fast,
		ERPRetry:          fast,
		Logger:            logger,
		CodeVersion:       "demo",
	}
}

// Result is what the demo found: the report of the first run (the generated
// windows), of each run after a receivables change, of the second pass, and
// the checks.
type Result struct {
	First, Second *pipeline.Report
	AR            []*pipeline.Report
	Receivables   *Receivables
	Checks        []Check
}

// Check is one promise the demo verified.
type Check struct {
	What string
	OK   bool
	Why  string
}

// OK reports whether every check held.
func (r *Result) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return len(r.Checks) > 0
}

// Run prepares the stage, runs the pipeline over the demo tenant's three
// windows, changes receivables in Zuora and runs the next window, twice, runs
// every window a second time, and checks the outcome. Progress and the
// reports go to out.
func Run(ctx context.Context, opts Options, out io.Writer) (*Result, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := prepareStage(ctx, opts.StageURL); err != nil {
		return nil, err
	}
	clk := &clock{t: To.Add(10 * time.Minute)}
	srv, err := startServers(opts, clk, out)
	if err != nil {
		return nil, err
	}
	defer srv.Close()

	d := &demoRun{srv: srv, clk: clk, cfg: srv.Config(opts.StageURL, opts.Logger), res: &Result{}, out: out}
	d.cfg.Now = clk.Now
	fmt.Fprintf(out, "== first run of the stage, from %s (its start point) to %s\n", From.Format(time.RFC3339), To.Format(time.RFC3339))
	d.res.First, err = runOnce(ctx, d.cfg)
	if d.res.First != nil {
		d.res.First.Print(out)
	}
	if err != nil {
		return d.res, err
	}
	// Two hours of receivables work in Zuora, each followed by the run of its window.
	until := To
	for step := 1; step <= 2; step++ {
		if err := d.receivablesHour(ctx, step, until); err != nil {
			return d.res, err
		}
		until = until.Add(time.Hour)
	}
	requestsBefore := len(srv.ERP.Requests())
	clk.set(until.Add(20 * time.Minute))
	status, err := d.again(ctx)
	if err != nil {
		return d.res, err
	}
	d.res.Checks = check(srv, status, requestsBefore)
	d.res.Checks = append(d.res.Checks, arChecks(ctx, srv, d.cfg, out)...)
	fmt.Fprintln(out, "\n== checks")
	for _, c := range d.res.Checks {
		verdict := "ok  "
		if !c.OK {
			verdict = "FAIL"
		}
		fmt.Fprintf(out, "%s %s%s\n", verdict, c.What, c.Why)
	}
	return d.res, nil
}

// startServers starts the simulators on the demo's clock, the ERP holding
// what the tenant shows transferred before, and says where they serve.
func startServers(opts Options, clk *clock, out io.Writer) (*Servers, error) {
	tenant := zuorasim.Options{}
	if opts.Realistic {
		tenant = Realistic()
	}
	tenant.Now = clk.Now
	srv, err := StartTenant(tenant, opts.Seed, opts.Volume, From, To)
	if err != nil {
		return nil, err
	}
	if err := srv.PreloadTransferred(); err != nil { // as a real ERP holds what was transferred before
		srv.Close()
		return nil, err
	}
	fmt.Fprintf(out, "Zuora simulator: %s (tenant seed %d)\nERP simulator:   %s\nstage:           %s\n", srv.ZuoraURL, opts.Seed, srv.ERPURL, stage.Redact(opts.StageURL))
	if opts.Realistic {
		fmt.Fprintln(out, "tenant:          realistic (lower-camel custom fields, offset cursors on invoices and items, numbers as doubles,\n                 Actions refusing refunds of credit memos, 429s with RateLimit-* headers only)")
	}
	fmt.Fprintln(out)
	return srv, nil
}

// demoRun is one demo run past its start: the simulators, the clock they
// and the pipeline read, the pipeline's settings and what the run found.
type demoRun struct {
	srv *Servers
	clk *clock
	cfg pipeline.Config
	res *Result
	out io.Writer
}

// receivablesHour runs step (1 or 2) of the receivables script in the hour
// after until, then the run of that hour's window.
func (d *demoRun) receivablesHour(ctx context.Context, step int, until time.Time) error {
	d.clk.set(until.Add(15 * time.Minute))
	words, err := d.script(step)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\n== in Zuora, at %s:\n", d.clk.Now().Format(time.RFC3339))
	for _, w := range words {
		fmt.Fprintf(d.out, "   %s\n", w)
	}
	until = until.Add(time.Hour)
	d.clk.set(until.Add(10 * time.Minute))
	d.cfg.Until = until
	fmt.Fprintf(d.out, "\n== run of the window up to %s\n", until.Format(time.RFC3339))
	rep, err := runOnce(ctx, d.cfg)
	if rep != nil {
		rep.Print(d.out)
		d.res.AR = append(d.res.AR, rep)
	}
	return err
}

// script does step (1 or 2) of the receivables script and says what it did.
func (d *demoRun) script(step int) ([]string, error) {
	if step == 1 {
		var err error
		if d.res.Receivables, err = ReceivablesStepOne(d.srv.Zuora); err != nil {
			return nil, err
		}
		return d.res.Receivables.StepOneWords(), nil
	}
	if err := d.res.Receivables.StepTwo(d.srv.Zuora); err != nil {
		return nil, err
	}
	return d.res.Receivables.StepTwoWords(), nil
}

// again runs the same windows a second time, then loads each window again,
// and returns the stage's status.
func (d *demoRun) again(ctx context.Context) (*pipeline.Report, error) {
	fmt.Fprintf(d.out, "\n== second run of the same windows, then each window loaded again\n")
	var err error
	if d.res.Second, err = runOnce(ctx, d.cfg); err != nil {
		return nil, err
	}
	d.res.Second.Print(d.out)
	status, err := statusOf(ctx, d.cfg)
	if err != nil {
		return nil, err
	}
	for _, w := range status.Windows {
		before := len(d.srv.ERP.Requests())
		if err := loadAgain(ctx, d.cfg, w.Window); err != nil {
			return nil, err
		}
		fmt.Fprintf(d.out, "load of window %s again: %d ERP requests\n", w.Window.ID(), len(d.srv.ERP.Requests())-before)
	}
	return status, nil
}

// statusOf is the stage's status: every window's account.
func statusOf(ctx context.Context, cfg pipeline.Config) (rep *pipeline.Report, err error) {
	err = withPipeline(ctx, cfg, func(p *pipeline.Pipeline) error {
		rep, err = p.Status(ctx)
		return err
	})
	return rep, err
}

func runOnce(ctx context.Context, cfg pipeline.Config) (rep *pipeline.Report, err error) {
	err = withPipeline(ctx, cfg, func(p *pipeline.Pipeline) error {
		rep, err = p.Run(ctx)
		return err
	})
	return rep, err
}

func loadAgain(ctx context.Context, cfg pipeline.Config, w stage.Window) error {
	return withPipeline(ctx, cfg, func(p *pipeline.Pipeline) error {
		_, err := p.Load(ctx, w)
		return err
	})
}

// withPipeline opens the pipeline of cfg for fn and closes it after.
func withPipeline(ctx context.Context, cfg pipeline.Config, fn func(*pipeline.Pipeline) error) error {
	p, err := pipeline.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	return fn(p)
}

// check verifies the demo's promises over every window (the stage's
// status) against what the simulators hold.
func check(srv *Servers, status *pipeline.Report, requestsBefore int) []Check {
	var checks []Check
	add := func(what string, ok bool, why string, args ...any) {
		checks = append(checks, verdict(what, ok, why, args...))
	}

	var unbalanced []string
	var posted, extracted int64
	for _, l := range status.Totals() {
		extracted += l.Extracted.Count
		if stage.DocType(l.DocType).IsDocument() {
			posted += l.Posted.Count
		}
		if !l.Balanced() {
			unbalanced = append(unbalanced, l.DocType+"/"+l.Currency)
		}
	}
	add("extracted = posted + rejected + skipped, in count and amount, for every type (documents, applications, reversals) and currency",
		len(unbalanced) == 0 && extracted > 0, "%v do not balance (extracted %d)", unbalanced, extracted)

	var docs []erpsim.Document
	for _, d := range srv.ERP.Documents() {
		if !d.Preloaded {
			docs = append(docs, d)
		}
	}
	seen := map[string]int{}
	for _, d := range docs {
		seen[d.Key]++
	}
	var twice []string
	for k, n := range seen {
		if n > 1 {
			twice = append(twice, k)
		}
	}
	add("the ERP holds each posted document exactly once (a document posted again after a reversal is a new copy)", len(twice) == 0 && int64(len(docs)) == posted,
		"%d document copies for %d posted, %d keys more than once", len(docs), posted, len(twice))

	var unmarked []string
	for _, d := range docs {
		if srv.Zuora.Transferred(d.ZuoraID) != "Yes" {
			unmarked = append(unmarked, d.ZuoraID)
		}
	}
	add("Zuora shows every posted document as transferred", len(unmarked) == 0, "%d posted documents not marked, e.g. %v", len(unmarked), first3(unmarked))

	newRequests := len(srv.ERP.Requests()) - requestsBefore
	add("running the demo's windows again posts nothing new", newRequests == 0, "%d new ERP requests", newRequests)
	return checks
}

func verdict(what string, ok bool, why string, args ...any) Check {
	if ok {
		return Check{What: what, OK: true}
	}
	return Check{What: what, Why: ": " + fmt.Sprintf(why, args...)}
}

func first3(s []string) []string {
	if len(s) > 3 {
		return s[:3]
	}
	return s
}

// prepareStage empties the demo's stage, refusing to touch one the demo did not create.
func prepareStage(ctx context.Context, url string) error {
	st, err := stage.Open(ctx, url)
	if err != nil {
		return err
	}
	defer st.Close()
	objs, err := st.List(ctx, "")
	if err != nil {
		return err
	}
	owned := false
	for _, o := range objs {
		if o.Key == ownerKey {
			owned = true
		}
	}
	if len(objs) > 0 && !owned {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("stage %s holds data the demo did not write; the demo starts from an empty stage", st.URL()),
			Settings: []string{"StageURL"}}
	}
	for _, o := range objs {
		if err := st.Delete(ctx, o.Key); err != nil {
			return err
		}
	}
	_, err = st.WriteBytes(ctx, ownerKey, []byte("This stage belongs to the demo command, which empties it at every start.\n"))
	return err
}
