package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/extract"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erp"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/logctx"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/load"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
	"github.com/zuora-erp-etl/zuora-erp-etl/transform"
)

// Pipeline runs the stages for windows of one stage.
type Pipeline struct {
	cfg Config
	st  *stage.Stage
	zc  *zuora.Client // opened on first use: transform and query need no Zuora
	ec  *erp.Client   // opened on first use, like zc
}

// Open opens the stage named in cfg.
func Open(ctx context.Context, cfg Config) (*Pipeline, error) {
	cfg = cfg.withDefaults()
	var opts []stage.OpenOption
	if cfg.ReadOnly {
		opts = append(opts, stage.ReadOnly())
	}
	st, err := stage.Open(ctx, cfg.StageURL, opts...)
	if err != nil {
		// A stage that is missing (for a command that only reads), has no
		// driver or cannot be opened is a setting to fix.
		return nil, &ConfigError{Msg: err.Error(), Settings: []string{"StageURL"}}
	}
	return &Pipeline{cfg: cfg, st: st}, nil
}

// Close releases the stage.
func (p *Pipeline) Close() error { return p.st.Close() }

// Stage returns the open stage.
func (p *Pipeline) Stage() *stage.Stage { return p.st }

// RunID returns the id of this pipeline's run, sent to Zuora as Zuora-Track-Id.
func (p *Pipeline) RunID() string { return p.cfg.RunID }

// zuoraStats returns the requests and retries toward Zuora so far, or nil when
// Zuora was not called.
func (p *Pipeline) zuoraStats() *zuora.Stats {
	if p.zc == nil {
		return nil
	}
	st := p.zc.Stats()
	return &st
}

func (p *Pipeline) zuoraClient() (*zuora.Client, error) {
	if p.zc != nil {
		return p.zc, nil
	}
	if err := p.cfg.needZuora(); err != nil {
		return nil, err
	}
	zc, err := zuora.New(zuora.Config{
		BaseURL:        p.cfg.ZuoraBaseURL,
		ClientID:       p.cfg.ZuoraClientID,
		ClientSecret:   p.cfg.ZuoraClientSecret,
		MaxConcurrency: p.cfg.ZuoraConcurrency,
		RunID:          p.cfg.RunID,
		Retry:          p.cfg.ZuoraRetry,
		RequestLog:     p.cfg.RequestLog,
		Logger:         p.cfg.Logger,
		EntityID:       p.cfg.ZuoraEntityID,

		RequestsPerMinute: p.cfg.ZuoraRate,
	})
	if err != nil {
		return nil, &ConfigError{Msg: err.Error(), Settings: []string{"ZuoraBaseURL"}}
	}
	p.zc = zc
	return zc, nil
}

// Run processes every due window, one after another, at most MaxWindows of
// them: first any window whose snapshot is committed but whose load is not
// complete (after an ERP outage), then windows with rejects mapped by another
// mapping, then new windows from the high water (or the stage's start)
// up to Until or now minus the settle lag, whichever is earlier; last it
// re-checks the outstanding rejects of every window against Zuora (see
// recheckRejects). It stops at the first window that fails; the report covers
// every window it attempted and every window's outstanding rejects.
func (p *Pipeline) Run(ctx context.Context) (rep *Report, err error) {
	if err := p.checkRun(ctx); err != nil {
		return nil, err
	}
	release, err := p.takeLease(ctx, "run")
	if err != nil {
		return nil, classify(err)
	}
	defer release()
	rep = &Report{RunID: p.cfg.RunID}
	started := p.cfg.Now()
	defer func() {
		rep.Zuora, rep.ERP, err = p.zuoraStats(), p.erpStats(), classify(err)
		p.recordRun(ctx, rep, err, started) // under the lease, before it is given back
	}()
	until, clamped := p.end(p.cfg.Until)
	rep.Clamped = clamped
	from, err := p.start(ctx, true)
	if err != nil {
		return rep, err
	}
	d := &due{p: p, rep: rep, resume: Step{Command: "run", Until: p.cfg.Until}}
	if err := d.takeStaged(ctx); err != nil {
		return rep, err
	}
	if err := p.reloadWaiting(ctx, rep, d.resume); err != nil {
		return rep, err
	}
	if err := d.takeNew(ctx, from, until); err != nil {
		return rep, err
	}
	if d.left > 0 {
		rep.Left = &Left{Windows: d.left, Max: p.cfg.MaxWindows, Next: d.resume}
		p.cfg.Logger.Warn("windows left for the next run", "left", d.left, "max_windows", p.cfg.MaxWindows)
	}
	return rep, p.recheckRejects(ctx, rep)
}

// checkRun refuses a run whose settings or start point are wrong before it
// takes the lease, so that a refusal leaves nothing behind; the start point
// is checked again under the lease, where a new one is recorded.
func (p *Pipeline) checkRun(ctx context.Context) error {
	for _, check := range []func() error{p.cfg.needZuora, p.cfg.needERP, p.cfg.checkWindows} {
		if err := check(); err != nil {
			return err
		}
	}
	if _, err := p.zuoraClient(); err != nil {
		return err
	}
	if _, err := p.start(ctx, false); err != nil {
		return classify(err)
	}
	return nil
}

// due is the work one run takes: at most MaxWindows windows, the rest left,
// counted, for the next run.
type due struct {
	p      *Pipeline
	rep    *Report
	resume Step // what resumes the run if a window fails
	left   int  // windows due but left for the next run
	taken  int  // windows taken, of at most MaxWindows (loads again of waiting windows not counted)
}

// take processes w, or leaves it for the next run once the run is full.
func (d *due) take(ctx context.Context, w stage.Window, a attempt) error {
	if d.taken >= d.p.cfg.MaxWindows {
		d.left++
		return nil
	}
	d.taken++
	a.resume = d.resume
	return d.p.processWindow(ctx, w, d.rep, a)
}

// takeStaged takes the staged windows that need more: those whose load is
// not complete (after an ERP outage), then those with rejects mapped by
// another mapping; once none is left, the mapping is remembered.
func (d *due) takeStaged(ctx context.Context) error {
	remap, err := d.p.windowsToRemap(ctx)
	if err != nil {
		return err
	}
	unfinished, err := d.p.unfinishedWindows(ctx)
	if err != nil {
		return err
	}
	for _, w := range unfinished {
		d.p.cfg.Logger.Info("resuming window", "window", w.ID())
		if err := d.take(ctx, w, attempt{why: "unfinished", remap: remap.has(w)}); err != nil {
			return err
		}
	}
	for _, w := range remap.list {
		if d.rep.has(w) {
			continue
		}
		d.p.cfg.Logger.Info("mapping changed: transforming a window with rejects again", "window", w.ID())
		if err := d.take(ctx, w, attempt{why: "mapping changed", remap: true}); err != nil {
			return err
		}
	}
	if d.left > 0 {
		return nil
	}
	return d.p.rememberMapping(ctx)
}

// takeNew takes the new windows of [from, until), planned one at a time, and
// moves the high water past each; one taken already (a backfilled window
// resumed above) only moves the high water.
func (d *due) takeNew(ctx context.Context, from, until time.Time) error {
	done := d.rep.windowSet()
	for w := range stage.SplitSeq(from, until, d.p.cfg.WindowSize) {
		switch {
		case done[windowKey(w)] && d.left == 0:
			if err := d.p.advanceHighWater(ctx, w, d.resume); err != nil {
				return err
			}
		case done[windowKey(w)]:
		case d.left > 0:
			d.left++ // counted, not kept: memory does not grow with the windows due
		default:
			if err := d.take(ctx, w, attempt{why: "new", advance: true}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Clamp says that a requested end was later than now minus the settle lag,
// where the windows end instead.
type Clamp struct{ Requested, Horizon time.Time }

// Left is the due work a run or a backfill left for the next one because
// of MaxWindows, and the command that carries on.
type Left struct {
	Windows int
	Max     int
	Next    Step
}

// horizon is now minus the settle lag: no window may end later.
func (p *Pipeline) horizon() time.Time {
	return p.cfg.Now().Add(-p.cfg.SettleLag).UTC().Truncate(time.Second)
}

// end returns where the last window ends: until, or the horizon when until is
// zero or later than it (then with a Clamp saying so).
func (p *Pipeline) end(until time.Time) (time.Time, *Clamp) {
	h := p.horizon()
	if until.IsZero() {
		return h, nil
	}
	if until.After(h) {
		p.cfg.Logger.Warn("the requested end is later than now minus the settle lag: windows end there instead, the rest waits for a later run",
			"requested", until.UTC(), "horizon", h)
		return h, &Clamp{Requested: until.UTC(), Horizon: h}
	}
	return until.UTC(), nil
}

// start returns where the due windows start: the high water, else the
// stage's start point, else Since, which it records (when record is set) as
// the start point before any window is tried. A Since that differs from the
// stage's start is refused.
func (p *Pipeline) start(ctx context.Context, record bool) (time.Time, error) {
	hw, hasMark, err := p.st.HighWater(ctx)
	if err != nil {
		return time.Time{}, err
	}
	st, hasStart, err := p.st.Start(ctx)
	if err != nil {
		return time.Time{}, err
	}
	since := p.cfg.Since.UTC().Truncate(time.Second)
	if !since.IsZero() && (hasMark || hasStart) && !(hasStart && since.Equal(st.Start)) {
		e := &ConfigError{Settings: []string{"Since"}}
		begins := hw.Next
		if hasStart {
			begins = st.Start
			e.Msg = fmt.Sprintf("%s differs from where the stage's history starts (%s, recorded by its first run); a start is given only to a new stage",
				since.Format(time.RFC3339), st.Start.Format(time.RFC3339))
		} else {
			e.Msg = fmt.Sprintf("the stage already has a high water (%s); a start is given only to a new stage", hw.Next.Format(time.RFC3339))
		}
		if since.Before(begins) {
			e.Next, e.NextFor = &Step{Command: "extract", From: since, To: begins}, "to stage the history before it, run"
		}
		return time.Time{}, e
	}
	switch {
	case hasMark:
		return hw.Next, nil
	case hasStart:
		return st.Start, nil
	case since.IsZero():
		return time.Time{}, &ConfigError{Settings: []string{"Since"},
			Msg: fmt.Sprintf("the stage %s has no start point yet: its first run must say where its history starts (an RFC3339 time)", p.st.URL())}
	case since.After(p.horizon()):
		return time.Time{}, &ConfigError{Settings: []string{"Since"},
			Msg: fmt.Sprintf("%s is later than now minus the settle lag (%s): nothing there has settled yet", since.Format(time.RFC3339), p.horizon().Format(time.RFC3339))}
	}
	if !record {
		return since, nil
	}
	if err := p.st.SetStart(ctx, stage.Start{Start: since, SetAt: p.cfg.Now(), RunID: p.cfg.RunID}); err != nil {
		return time.Time{}, fmt.Errorf("record the stage's start point: %w", err)
	}
	p.cfg.Logger.Info("recorded the stage's start point", "start", since)
	return since, nil
}

// unfinishedWindows lists committed windows whose load is not complete. One
// listing of the stage finds them (stage.UnfinishedWindows); a window whose
// load manifest says complete without the record of it (a crash just before,
// perhaps before the reject index had the load's answers) is recorded now. A
// window held back only by lines waiting on other windows is left to
// reloadWaiting, which loads it once what it waits on is settled.
func (p *Pipeline) unfinishedWindows(ctx context.Context) ([]stage.Window, error) {
	ws, err := p.st.UnfinishedWindows(ctx)
	if err != nil {
		return nil, err
	}
	var out []stage.Window
	for _, w := range ws {
		lm, done, err := p.st.ReadLoad(ctx, w)
		if err != nil {
			return nil, err
		}
		if done && lm.OnlyWaiting() {
			continue
		}
		if !done || !lm.Complete {
			out = append(out, w)
			continue
		}
		if err := p.indexLoad(ctx, w, nil); err != nil {
			return nil, fmt.Errorf("window %s: record the ERP's answers in the reject index: %w", w.ID(), err)
		}
		if err := p.recordComplete(ctx, w); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// recordComplete records that w's load is complete (see stage.SetLoadComplete).
func (p *Pipeline) recordComplete(ctx context.Context, w stage.Window) error {
	if err := p.st.SetLoadComplete(ctx, w); err != nil {
		return fmt.Errorf("window %s: record it complete: %w", w.ID(), err)
	}
	return nil
}

// windowsToRemap lists committed windows that have rejected documents and were
// mapped with other SQL or CSV files than the current ones: after the mapping
// is fixed, the next run retries their rejects.
func (p *Pipeline) windowsToRemap(ctx context.Context) (windowList, error) {
	digest, err := transform.MappingDigest(p.cfg.SQLDir)
	if err != nil {
		return windowList{}, &ConfigError{Msg: fmt.Sprintf("mapping: %v", err), Settings: []string{"SQLDir"}}
	}
	last, err := p.st.ReadMapping(ctx)
	if err != nil {
		return windowList{}, err
	}
	if last.Digest == digest {
		return windowList{}, nil // every window with rejects was mapped with this mapping already
	}
	ws, err := p.st.Windows(ctx)
	if err != nil {
		return windowList{}, err
	}
	var out windowList
	for _, w := range ws {
		tm, ok, err := p.st.ReadTransform(ctx, w)
		if err != nil {
			return windowList{}, err
		}
		if !ok || tm.SQLDigest == digest {
			continue
		}
		for _, r := range tm.Totals {
			if r.Rejected.Count > 0 {
				out.add(w)
				break
			}
		}
	}
	return out, nil
}

// windowList is windows in order, with a set to look them up.
type windowList struct {
	list []stage.Window
	set  map[[2]int64]bool
}

func (l *windowList) add(w stage.Window) {
	if l.set == nil {
		l.set = map[[2]int64]bool{}
	}
	l.list = append(l.list, w)
	l.set[windowKey(w)] = true
}

func (l windowList) has(w stage.Window) bool { return l.set[windowKey(w)] }

func windowKey(w stage.Window) [2]int64 { return [2]int64{w.Start.Unix(), w.End.Unix()} }

// rememberMapping records that every window with rejects has been mapped with
// the current mapping, so later runs skip the scan until the mapping changes.
func (p *Pipeline) rememberMapping(ctx context.Context) error {
	digest, err := transform.MappingDigest(p.cfg.SQLDir)
	if err != nil {
		return &ConfigError{Msg: fmt.Sprintf("mapping: %v", err), Settings: []string{"SQLDir"}}
	}
	return p.st.WriteMapping(ctx, stage.Mapping{Digest: digest, UpdatedAt: p.cfg.Now().UTC()})
}

// attempt is why a run takes a window and what it does with it.
type attempt struct {
	why     string // "unfinished", "mapping changed", "new" or "dependencies settled", for the report
	remap   bool   // transform it again with the current mapping
	reload  bool   // a load again of a waiting window: what it waits on is settled
	advance bool   // a committed snapshot advances the high water (not for backfills)
	resume  Step   // what resumes the run if the window fails
}

// processWindow runs every step the window still needs and adds the window to
// the report however it ends.
func (p *Pipeline) processWindow(ctx context.Context, w stage.Window, rep *Report, a attempt) error {
	ctx = logctx.With(ctx, "window", w.ID()) // every line logged for the window says which
	started := p.cfg.Now()
	defer p.windowDone(w, rep, started)
	fail := func(step, kept string, resume Step, err error) error {
		rep.Windows = append(rep.Windows, p.reportWindow(ctx, w, a.why, step))
		if IsConfigError(err) {
			return err // a setting to fix: no resume hint
		}
		return stepError(step, w, err, kept, resume)
	}
	if err := p.extractWindow(ctx, w, false); err != nil {
		return fail("extract", "every window before this one; nothing of this one (a snapshot is committed only by its manifest)", a.resume, err)
	}
	if a.advance {
		if err := p.advanceHighWater(ctx, w, a.resume); err != nil {
			return fail("extract", "the window's committed snapshot; the high water stays where it was", a.resume, err)
		}
	}
	betweenSteps()
	if err := p.transformWindow(ctx, w, a.remap); err != nil {
		return fail("transform", "the window's committed snapshot and its ledger; nothing more of it was posted", a.resume, err)
	}
	betweenSteps()
	wr, err := p.loadWindow(ctx, w)
	if wr != nil {
		wr.Why = a.why
		rep.Windows = append(rep.Windows, *wr)
		p.cfg.Logger.Info("window done", "window", w.ID(), "run_id", p.cfg.RunID, "complete", wr.Complete)
	}
	if err != nil || a.reload {
		return err
	}
	return p.reloadWaiting(ctx, rep, a.resume)
}

// betweenSteps gives the system back the memory the step just done freed:
// Go returns a heap's free pages over minutes, so without it a run's
// transform would hold the extract's peak heap beside DuckDB's limit, and
// its load the transform's (a month-end hour's run peaked some 50MB above
// its largest step).
func betweenSteps() { debug.FreeOSMemory() }

// reportWindow reads w's report after a failure; a report it cannot read is
// the bare window, so that the failure is still reported.
func (p *Pipeline) reportWindow(ctx context.Context, w stage.Window, why, failed string) WindowReport {
	return p.reportWith(ctx, w, why, failed, nil)
}

// reportLoaded is reportWindow just after a load that gave its account of
// the window, lm: the report need not read the window's documents and ledger
// again (nil reads them).
func (p *Pipeline) reportLoaded(ctx context.Context, w stage.Window, lm *stage.LoadManifest) WindowReport {
	return p.reportWith(ctx, w, "", "", lm)
}

func (p *Pipeline) reportWith(ctx context.Context, w stage.Window, why, failed string, lm *stage.LoadManifest) WindowReport {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	wr, err := p.windowReportWith(rctx, w, lm)
	if err != nil {
		p.cfg.Logger.Warn("cannot read the report of a failed window", "window", w.ID(), "err", err)
		wr = WindowReport{Window: w}
	}
	wr.Why, wr.Failed = why, failed
	return wr
}

// loadWindow posts and marks w's documents, reports the window even when the
// load was interrupted (the report tells the user what was kept, so a Ctrl-C
// must not stop it), and records a complete window as such. A failed load is a
// *StepError resumed by loading the window again.
func (p *Pipeline) loadWindow(ctx context.Context, w stage.Window) (*WindowReport, error) {
	lm, read, loadErr := p.loadDocuments(ctx, w)
	var tn *load.TypeNotMovedError
	switch {
	case errors.As(loadErr, &tn):
		// Mapped while the type was not moved: map it again, whose output says to load.
		loadErr = &StepError{Step: "load", Window: w, Err: loadErr, Kept: "the window's snapshot and ledger; nothing was posted",
			Resume: Step{Command: "transform", Window: w}}
	case loadErr != nil && !IsConfigError(loadErr):
		loadErr = &StepError{Step: "load", Window: w, Err: loadErr, Kept: loadKept(loadErr), Resume: Step{Command: "load", Window: w}}
	}
	if loadErr == nil {
		if err := p.indexLoad(ctx, w, read); err != nil {
			loadErr = &StepError{Step: "load", Window: w, Err: fmt.Errorf("window %s: record the ERP's answers in the reject index: %w", w.ID(), err),
				Kept: "the window's ledger, which holds every answer of the ERP; loading the window again records them in the index", Resume: Step{Command: "load", Window: w}}
		}
	}
	if err := p.noteWaiting(ctx, w); err != nil && loadErr == nil {
		loadErr = &StepError{Step: "load", Window: w, Err: fmt.Errorf("window %s: record its waiting lines in the waiting index: %w", w.ID(), err),
			Kept: "the window's ledger, which holds every answer of the ERP; loading the window again records them", Resume: Step{Command: "load", Window: w}}
	}
	wr := p.reportLoaded(ctx, w, lm)
	if loadErr != nil {
		wr.Failed = "load"
		return &wr, loadErr
	}
	if wr.Loaded {
		if err := p.recordComplete(ctx, w); err != nil {
			wr.Failed = "load"
			return &wr, &StepError{Step: "load", Window: w, Err: err,
				Kept: "every document of the window posted and marked; only the record that it is complete is missing", Resume: Step{Command: "load", Window: w}}
		}
	}
	return &wr, nil
}

// advanceHighWater moves the high water past w, whose snapshot is committed.
func (p *Pipeline) advanceHighWater(ctx context.Context, w stage.Window, resume Step) error {
	if err := p.st.SetHighWater(ctx, w, p.cfg.Now()); err != nil {
		return &StepError{Step: "extract", Window: w, Err: fmt.Errorf("window %s: move the high water: %w", w.ID(), err),
			Kept: "the window's committed snapshot; the high water stays where it was", Resume: resume}
	}
	return nil
}

func (p *Pipeline) extractWindow(ctx context.Context, w stage.Window, force bool) error {
	zc, err := p.zuoraClient()
	if err != nil {
		return err
	}
	_, err = extract.Run(ctx, zc, p.st, w, extract.Options{
		Overlap:           p.cfg.Overlap,
		Statuses:          p.cfg.Statuses,
		Slices:            p.cfg.Slices,
		LookupConcurrency: p.cfg.ZuoraConcurrency,
		RunID:             p.cfg.RunID,
		CodeVersion:       p.cfg.CodeVersion,
		Force:             force,
		Logger:            p.cfg.Logger,

		ERPAccountField: p.cfg.ERPAccountField,
		DocTypes:        p.cfg.DocTypes,
		Now:             p.cfg.Now,
		Progress:        p.fetchProgress(w),
	})
	if err := tenantSetting(w, err); err != nil {
		return err
	}
	return err
}

// transformWindow maps w unless it is mapped already; force maps it again.
func (p *Pipeline) transformWindow(ctx context.Context, w stage.Window, force bool) error {
	if force {
		// New documents may come out: the window's load is no longer complete
		// until a load says so (the ledger keeps what was posted).
		if err := p.st.ReopenLoad(ctx, w); err != nil {
			return fmt.Errorf("transform window %s: reopen it: %w", w.ID(), err)
		}
	}
	_, err := transform.Run(ctx, p.st, w, transform.Options{
		SQLDir:         p.cfg.SQLDir,
		RunID:          p.cfg.RunID,
		CodeVersion:    p.cfg.CodeVersion,
		Force:          force,
		Logger:         p.cfg.Logger,
		DocTypes:       p.cfg.DocTypes,
		UnapplyAmounts: p.cfg.UnapplyAmounts,
	})
	if err != nil {
		return err
	}
	return p.indexRejects(ctx, w)
}

// loadDocuments posts and marks w's documents; the manifest is the load's
// account of the window (nil when the load ended before it could give one).
func (p *Pipeline) loadDocuments(ctx context.Context, w stage.Window) (*stage.LoadManifest, *load.Read, error) {
	if err := p.cfg.needERP(); err != nil {
		return nil, nil, err
	}
	zc, err := p.zuoraClient()
	if err != nil {
		return nil, nil, err
	}
	ec, err := p.erpClient()
	if err != nil {
		return nil, nil, err
	}
	read := &load.Read{}
	lm, err := load.Run(ctx, p.st, w, ec, zc, load.Options{
		Concurrency:      p.cfg.ERPConcurrency,
		MarkConcurrency:  p.cfg.ZuoraConcurrency,
		BreakerThreshold: p.cfg.BreakerThreshold,
		RunID:            p.cfg.RunID,
		CodeVersion:      p.cfg.CodeVersion,
		Logger:           p.cfg.Logger,
		DocTypes:         p.cfg.DocTypes,
		Dependencies:     &holdings{p: p},
		MarkRefused:      !p.cfg.KeepRefusedUnmarked,
		Progress:         p.postProgress(w),
		Read:             read,
	})
	return lm, read, classify(err)
}

// Backfill is what Extract did: the windows it staged, in order, and what it
// left for another backfill.
type Backfill struct {
	Windows []stage.Window // at most MaxWindows
	Clamped *Clamp
	Left    *Left
}

// Extract backfills [from, to) without moving the high water, at most
// MaxWindows windows, and never a window ending after now minus the settle
// lag. Windows that already have a snapshot are taken again only when force
// is set.
func (p *Pipeline) Extract(ctx context.Context, from, to time.Time, force bool) (bf *Backfill, err error) {
	if err := p.cfg.checkWindows(); err != nil {
		return nil, err
	}
	if err := p.cfg.needZuora(); err != nil {
		return nil, err
	}
	from, to = from.UTC().Truncate(time.Second), to.UTC().Truncate(time.Second)
	switch {
	case !from.Before(to):
		return nil, &ConfigError{Msg: fmt.Sprintf("the range %s to %s is empty", from.Format(time.RFC3339), to.Format(time.RFC3339)), Settings: []string{"From", "To"}}
	case from.After(p.horizon()):
		return nil, &ConfigError{Msg: fmt.Sprintf("%s is later than now minus the settle lag (%s): nothing there has settled yet",
			from.Format(time.RFC3339), p.horizon().Format(time.RFC3339)), Settings: []string{"From"}}
	}
	release, err := p.takeLease(ctx, "extract")
	if err != nil {
		return nil, classify(err)
	}
	defer release()
	defer func() { err = classify(err) }()
	end, clamped := p.end(to)
	bf = &Backfill{Clamped: clamped}
	left := 0
	var next time.Time
	for w := range stage.SplitSeq(from, end, p.cfg.WindowSize) {
		if len(bf.Windows) >= p.cfg.MaxWindows {
			if left == 0 {
				next = w.Start
			}
			left++
			continue
		}
		if err := p.extractWindow(ctx, w, force); err != nil {
			if IsConfigError(err) {
				return bf, err
			}
			return bf, &StepError{Step: "extract", Window: w, Err: err,
				Kept:   "the windows of the range before this one; nothing of this one (a snapshot is committed only by its manifest)",
				Resume: Step{Command: "extract", From: w.Start, To: to, Force: force}}
		}
		bf.Windows = append(bf.Windows, w)
	}
	if left > 0 {
		bf.Left = &Left{Windows: left, Max: p.cfg.MaxWindows, Next: Step{Command: "extract", From: next, To: to, Force: force}}
	}
	return bf, nil
}

// Transform re-runs the transform of one committed window.
func (p *Pipeline) Transform(ctx context.Context, w stage.Window) (rep *Report, err error) {
	defer func() { err = classify(err) }()
	if err := p.requireSnapshot(ctx, w); err != nil {
		return nil, err
	}
	release, err := p.takeLease(ctx, "transform")
	if err != nil {
		return nil, classify(err)
	}
	defer release()
	if err := p.transformWindow(ctx, w, true); err != nil {
		return nil, stepError("transform", w, err, "the window's committed snapshot and its ledger; nothing of it was posted", Step{Command: "transform", Window: w})
	}
	wr, err := p.windowReport(ctx, w)
	return &Report{RunID: p.cfg.RunID, Windows: []WindowReport{wr}}, err
}

// Load re-runs post and write-back for one window, touching only documents not
// yet confirmed or not yet marked.
func (p *Pipeline) Load(ctx context.Context, w stage.Window) (rep *Report, err error) {
	if err := p.cfg.needERP(); err != nil {
		return nil, err
	}
	if err := p.cfg.needZuora(); err != nil {
		return nil, err
	}
	defer func() { err = classify(err) }()
	if err := p.requireSnapshot(ctx, w); err != nil {
		return nil, err
	}
	release, err := p.takeLease(ctx, "load")
	if err != nil {
		return nil, classify(err)
	}
	defer release()
	_, ok, err := p.st.ReadTransform(ctx, w)
	if err != nil {
		return nil, err
	}
	if !ok {
		if err := p.transformWindow(ctx, w, false); err != nil {
			return nil, stepError("transform", w, err, "the window's committed snapshot; nothing of it was posted", Step{Command: "load", Window: w})
		}
	}
	wr, err := p.loadWindow(ctx, w)
	return &Report{RunID: p.cfg.RunID, Windows: []WindowReport{*wr}, Zuora: p.zuoraStats()}, err
}

func (p *Pipeline) requireSnapshot(ctx context.Context, w stage.Window) error {
	_, ok, err := p.st.ReadExtract(ctx, w)
	if err != nil {
		return err
	}
	if !ok {
		return &ConfigError{Msg: fmt.Sprintf("window %s has no committed snapshot in %s", w.ID(), p.st.URL()),
			Next: &Step{Command: "extract", From: w.Start, To: w.End}, NextFor: "to stage it, run"}
	}
	return nil
}

// Status reports every window of the stage with what is pending.
func (p *Pipeline) Status(ctx context.Context) (*Report, error) {
	ws, err := p.st.Windows(ctx)
	if err != nil {
		return nil, err
	}
	rep := &Report{RunID: p.cfg.RunID}
	if st, ok, err := p.st.Start(ctx); err != nil {
		return nil, err
	} else if ok {
		rep.Start = st.Start
	}
	for _, w := range ws {
		wr, err := p.windowReport(ctx, w)
		if err != nil {
			return nil, err
		}
		rep.Windows = append(rep.Windows, wr)
	}
	if hw, ok, err := p.st.HighWater(ctx); err != nil {
		return nil, err
	} else if ok {
		rep.HighWater = hw.Next
	}
	return rep, nil
}

// windowReport reads the window's manifests and ledger into a report.
func (p *Pipeline) windowReport(ctx context.Context, w stage.Window) (WindowReport, error) {
	return p.windowReportWith(ctx, w, nil)
}

// windowReportWith is windowReport with the load's account of the window
// given (lm), or read from the stage when lm is nil.
func (p *Pipeline) windowReportWith(ctx context.Context, w stage.Window, lm *stage.LoadManifest) (WindowReport, error) {
	wr := WindowReport{Window: w}
	em, ok, err := p.st.ReadExtract(ctx, w)
	if err != nil {
		return wr, err
	}
	wr.Extracted = ok
	wr.Warnings = em.Warnings
	tm, transformed, err := p.st.ReadTransform(ctx, w)
	if err != nil {
		return wr, err
	}
	wr.Transformed = transformed
	lines := map[lineKey]*Line{}
	line := func(docType, currency string) *Line {
		k := lineKey{docType, currency}
		if lines[k] == nil {
			lines[k] = &Line{DocType: docType, Currency: currency}
		}
		return lines[k]
	}
	for _, r := range tm.Totals {
		l := line(r.DocType, r.Currency)
		l.Extracted, l.Ready, l.Rejected, l.Skipped = r.Extracted, r.Ready, r.Rejected, r.Skipped
	}
	if wr.Transformed {
		if lm == nil {
			if lm, err = load.Pending(ctx, p.st, w); err != nil {
				return wr, err
			}
		}
		wr.Loaded = lm.Complete
		wr.Waiting = lm.OnlyWaiting()
		wr.WaitsOn = lm.WaitsOn
		wr.Stopped = lm.StoppedBecause
		for _, t := range lm.Totals {
			l := line(t.DocType, t.Currency)
			l.Posted, l.ERPRejected, l.Pending, l.Marked = t.Posted, t.Rejected, t.Pending, t.Marked
			l.Waiting, l.DependencyRejected, l.ErrorMarked = t.Waiting, t.DependencyRejected, t.ErrorMarked
		}
	}
	wr.Lines = sortedLines(lines)
	wr.Complete = wr.Extracted && wr.Transformed && wr.Loaded
	return wr, nil
}

// tenantSetting turns an extract failure that a setting explains into a
// *ConfigError naming it: nothing was committed, and running again with the
// same settings would fail the same way.
func tenantSetting(w stage.Window, err error) error {
	var fa *extract.FieldAbsentError
	if errors.As(err, &fa) {
		return &ConfigError{Msg: fmt.Sprintf("window %s: %v; set the API name of the account's ERP customer field (now %s)", w.ID(), fa, fa.Field),
			Settings: []string{"ERPAccountField"}}
	}
	var ue *extract.UnavailableError
	if errors.As(err, &ue) {
		return &ConfigError{Msg: fmt.Sprintf("window %s: %v; a tenant without Invoice Settlement has no memo objects: move only the other types, e.g. invoice,payment,refund", w.ID(), ue),
			Settings: []string{"DocTypes"}}
	}
	return nil
}
