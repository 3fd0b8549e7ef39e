package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/extract"
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
}

// Open opens the stage named in cfg.
func Open(ctx context.Context, cfg Config) (*Pipeline, error) {
	cfg = cfg.withDefaults()
	var opts []stage.OpenOption
	if cfg.ReadOnly {
		opts = append(opts, stage.ReadOnly())
	}
	st, err := stage.Open(ctx, cfg.StageURL, opts...)
	var none *stage.NoStageError
	if errors.As(err, &none) {
		return nil, &ConfigError{Msg: none.Error() + "; check --stage (ETL_STAGE)"}
	}
	if err != nil {
		return nil, err
	}
	return &Pipeline{cfg: cfg, st: st}, nil
}

// Close releases the stage.
func (p *Pipeline) Close() error { return p.st.Close() }

// Stage returns the open stage.
func (p *Pipeline) Stage() *stage.Stage { return p.st }

// RunID returns the id of this pipeline's run, sent to Zuora as Zuora-Track-Id.
func (p *Pipeline) RunID() string { return p.cfg.RunID }

// StepError is a step that failed for a window: exit status 1. It says what was
// kept and which command resumes.
type StepError struct {
	Step   string
	Window stage.Window
	Err    error
	Kept   string
	Resume string
}

func (e *StepError) Error() string {
	msg := strings.TrimSuffix(strings.TrimSpace(e.Err.Error()), "; resume with: "+e.Resume)
	return fmt.Sprintf("%s of window %s failed: %s\nkept: %s\nresume with: %s", e.Step, e.Window.ID(), msg, e.Kept, e.Resume)
}

func (e *StepError) Unwrap() error { return e.Err }

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
		return nil, &ConfigError{Msg: err.Error()}
	}
	p.zc = zc
	return zc, nil
}

// Run processes every due window, one after another: first any window whose
// snapshot is committed but whose load is not complete (after an ERP outage),
// then new windows from the high-water mark up to Until (or now minus the settle
// lag), and last re-checks the outstanding rejects of every window against
// Zuora (see recheckRejects). It stops at the first window that fails; the
// report covers every window it touched and every window's outstanding rejects.
func (p *Pipeline) Run(ctx context.Context) (*Report, error) {
	if err := p.cfg.needZuora(); err != nil {
		return nil, err
	}
	if err := p.cfg.needERP(); err != nil {
		return nil, err
	}
	release, err := p.takeLease(ctx, "run")
	if err != nil {
		return nil, err
	}
	defer release()
	rep := &Report{RunID: p.cfg.RunID}
	defer func() { rep.Zuora = p.zuoraStats() }()
	unfinished, err := p.unfinishedWindows(ctx)
	if err != nil {
		return rep, err
	}
	for _, w := range unfinished {
		p.cfg.Logger.Info("resuming window", "window", w.ID())
		if err := p.processWindow(ctx, w, rep, false); err != nil {
			return rep, err
		}
	}
	remap, err := p.windowsToRemap(ctx)
	if err != nil {
		return rep, err
	}
	for _, w := range remap {
		if rep.has(w) {
			continue
		}
		p.cfg.Logger.Info("mapping changed: transforming a window with rejects again", "window", w.ID())
		if err := p.transform(ctx, w, true); err != nil {
			return rep, err
		}
		if err := p.processWindow(ctx, w, rep, false); err != nil {
			return rep, err
		}
	}
	if err := p.rememberMapping(ctx); err != nil {
		return rep, err
	}
	due, err := p.dueWindows(ctx)
	if err != nil {
		return rep, err
	}
	for _, w := range due {
		if rep.has(w) {
			// Resumed above (a backfilled window, say): only the mark is left to move.
			if err := p.moveMark(ctx, w); err != nil {
				return rep, err
			}
			continue
		}
		if err := p.processWindow(ctx, w, rep, true); err != nil {
			return rep, err
		}
	}
	if err := p.recheckRejects(ctx, rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// dueWindows returns the windows from the high-water mark (or Since) to Until,
// each ending on a multiple of the window size or at Until.
func (p *Pipeline) dueWindows(ctx context.Context) ([]stage.Window, error) {
	until := p.cfg.Until
	if until.IsZero() {
		until = p.cfg.Now().Add(-p.cfg.SettleLag)
	}
	hw, found, err := p.st.HighWater(ctx)
	if err != nil {
		return nil, err
	}
	from := hw.Next
	if !found {
		from = p.cfg.Since
		if from.IsZero() {
			from = until.Truncate(p.cfg.WindowSize).Add(-p.cfg.WindowSize)
			p.cfg.Logger.Info("no high-water mark and no --since: starting one window back", "from", from)
		}
	}
	return stage.Split(from, until, p.cfg.WindowSize), nil
}

// unfinishedWindows lists committed windows whose load is not complete. One
// listing of the manifests finds them: a complete window carries a marker, so
// only windows without one are read.
func (p *Pipeline) unfinishedWindows(ctx context.Context) ([]stage.Window, error) {
	objs, err := p.st.List(ctx, stage.ManifestPrefix)
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for _, o := range objs {
		keys[o.Key] = true
	}
	ws, err := p.st.Windows(ctx)
	if err != nil {
		return nil, err
	}
	var out []stage.Window
	for _, w := range ws {
		if !keys[stage.ManifestKey("extract", w)] || keys[stage.LoadCompleteKey(w)] {
			continue
		}
		var lm stage.LoadManifest
		done, err := p.st.ReadManifest(ctx, "load", w, &lm)
		if err != nil {
			return nil, err
		}
		if done && lm.Complete {
			// Complete, but the marker was never written (a crash just before).
			if err := p.markComplete(ctx, w); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, w)
	}
	return out, nil
}

// markComplete records that w's load is complete (see stage.LoadCompleteKey).
func (p *Pipeline) markComplete(ctx context.Context, w stage.Window) error {
	if _, err := p.st.WriteBytes(ctx, stage.LoadCompleteKey(w), nil); err != nil {
		return &StepError{Step: "load", Window: w, Err: fmt.Errorf("record the window complete: %w", err),
			Kept: "every document posted and marked", Resume: "zuora-erp-etl run"}
	}
	return nil
}

// reopen forgets that w's load was complete, before its documents change.
func (p *Pipeline) reopen(ctx context.Context, w stage.Window) error {
	if err := p.st.Delete(ctx, stage.LoadCompleteKey(w)); err != nil {
		return err
	}
	return p.st.Delete(ctx, stage.ManifestKey("load", w))
}

// windowsToRemap lists committed windows that have rejected documents and were
// mapped with other SQL or CSV files than the current ones: after the mapping
// is fixed, the next run retries their rejects.
func (p *Pipeline) windowsToRemap(ctx context.Context) ([]stage.Window, error) {
	digest, err := transform.MappingDigest(p.cfg.SQLDir)
	if err != nil {
		return nil, &ConfigError{Msg: fmt.Sprintf("mapping: %v", err)}
	}
	var last mappingState
	if err := p.st.ReadJSON(ctx, stage.MappingKey, &last); err != nil && !errors.Is(err, stage.ErrNotFound) {
		return nil, err
	}
	if last.Digest == digest {
		return nil, nil // every window with rejects was mapped with this mapping already
	}
	ws, err := p.st.Windows(ctx)
	if err != nil {
		return nil, err
	}
	var out []stage.Window
	for _, w := range ws {
		var tm stage.TransformManifest
		ok, err := p.st.ReadManifest(ctx, "transform", w, &tm)
		if err != nil {
			return nil, err
		}
		if !ok || tm.SQLDigest == digest {
			continue
		}
		for _, r := range tm.Totals {
			if r.Rejected.Count > 0 {
				out = append(out, w)
				break
			}
		}
	}
	return out, nil
}

// mappingState is what the stage remembers of the mapping (stage.MappingKey).
type mappingState struct {
	Digest    string    `json:"digest"`
	UpdatedAt time.Time `json:"updated_at"`
}

// rememberMapping records that every window with rejects has been mapped with
// the current mapping, so later runs skip the scan until the mapping changes.
func (p *Pipeline) rememberMapping(ctx context.Context) error {
	digest, err := transform.MappingDigest(p.cfg.SQLDir)
	if err != nil {
		return &ConfigError{Msg: fmt.Sprintf("mapping: %v", err)}
	}
	return p.st.WriteJSON(ctx, stage.MappingKey, mappingState{Digest: digest, UpdatedAt: p.cfg.Now().UTC()})
}

// processWindow runs every step the window still needs. moveMark says whether a
// committed snapshot advances the high-water mark (not for backfills).
func (p *Pipeline) processWindow(ctx context.Context, w stage.Window, rep *Report, moveMark bool) error {
	log := p.cfg.Logger.With("window", w.ID(), "run_id", p.cfg.RunID)
	if err := p.extract(ctx, w, false); err != nil {
		return err
	}
	if moveMark {
		if err := p.moveMark(ctx, w); err != nil {
			return err
		}
	}
	if err := p.transform(ctx, w, false); err != nil {
		return err
	}
	wr, err := p.loadWindow(ctx, w)
	if wr != nil {
		rep.Windows = append(rep.Windows, *wr)
		log.Info("window done", "complete", wr.Complete)
	}
	return err
}

// loadWindow posts and marks w's documents, reports the window even when the
// load was interrupted (the report tells the user what was kept, so a Ctrl-C
// must not stop it), and records a complete window as such. The report is nil
// only when it could not be read.
func (p *Pipeline) loadWindow(ctx context.Context, w stage.Window) (*WindowReport, error) {
	loadErr := p.load(ctx, w)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	wr, err := p.windowReport(rctx, w)
	if err != nil {
		return nil, errors.Join(loadErr, err)
	}
	if loadErr == nil && wr.Loaded {
		if err := p.markComplete(ctx, w); err != nil {
			return &wr, err
		}
	}
	return &wr, loadErr
}

// moveMark moves the high-water mark past w, whose snapshot is committed.
func (p *Pipeline) moveMark(ctx context.Context, w stage.Window) error {
	if err := p.st.SetHighWater(ctx, w, p.cfg.Now()); err != nil {
		return &StepError{Step: "extract", Window: w, Err: fmt.Errorf("move high-water mark: %w", err),
			Kept: "the committed snapshot of the window", Resume: "zuora-erp-etl run"}
	}
	return nil
}

func (p *Pipeline) extract(ctx context.Context, w stage.Window, force bool) error {
	zc, err := p.zuoraClient()
	if err != nil {
		return err
	}
	_, err = extract.Run(ctx, zc, p.st, w, extract.Options{
		Overlap:     p.cfg.Overlap,
		Statuses:    p.cfg.Statuses,
		Slices:      p.cfg.Slices,
		RunID:       p.cfg.RunID,
		CodeVersion: p.cfg.CodeVersion,
		Force:       force,
		Logger:      p.cfg.Logger,

		ERPAccountField: p.cfg.ERPAccountField,
		DocTypes:        p.cfg.DocTypes,
		Now:             p.cfg.Now,
	})
	if err := tenantSetting(w, err); err != nil {
		return err
	}
	if err != nil {
		return &StepError{Step: "extract", Window: w, Err: err,
			Kept:   "nothing of this window (no snapshot is committed until its manifest is written); earlier windows are intact",
			Resume: "zuora-erp-etl run"}
	}
	return nil
}

func (p *Pipeline) transform(ctx context.Context, w stage.Window, force bool) error {
	if force {
		// New documents may come out: the window's load is no longer complete
		// until a load says so (the ledger keeps what was posted).
		if err := p.reopen(ctx, w); err != nil {
			return &StepError{Step: "transform", Window: w, Err: err,
				Kept: "the window's committed snapshot and its ledger", Resume: "zuora-erp-etl transform --window " + w.ID()}
		}
	}
	_, err := transform.Run(ctx, p.st, w, transform.Options{
		SQLDir:      p.cfg.SQLDir,
		RunID:       p.cfg.RunID,
		CodeVersion: p.cfg.CodeVersion,
		Force:       force,
		Logger:      p.cfg.Logger,
		DocTypes:    p.cfg.DocTypes,
	})
	if err != nil {
		return &StepError{Step: "transform", Window: w, Err: err,
			Kept:   "the window's committed snapshot; no documents were posted",
			Resume: "zuora-erp-etl transform --window " + w.ID() + " && zuora-erp-etl load --window " + w.ID()}
	}
	return p.indexRejects(ctx, w)
}

func (p *Pipeline) load(ctx context.Context, w stage.Window) error {
	if err := p.cfg.needERP(); err != nil {
		return err
	}
	zc, err := p.zuoraClient()
	if err != nil {
		return err
	}
	_, err = load.Run(ctx, p.st, w, zc, load.Options{
		ERPBaseURL:       p.cfg.ERPBaseURL,
		ERPToken:         p.cfg.ERPToken,
		Concurrency:      p.cfg.ERPConcurrency,
		BreakerThreshold: p.cfg.BreakerThreshold,
		Retry:            p.cfg.ERPRetry,
		RequestTimeout:   p.cfg.ERPTimeout,
		RunID:            p.cfg.RunID,
		CodeVersion:      p.cfg.CodeVersion,
		Logger:           p.cfg.Logger,
		DocTypes:         p.cfg.DocTypes,
	})
	var tn *load.TypeNotMovedError
	if errors.As(err, &tn) {
		return &StepError{Step: "load", Window: w, Err: err,
			Kept:   "the window's snapshot and ledger; nothing was posted",
			Resume: "zuora-erp-etl transform --window " + w.ID() + " && zuora-erp-etl load --window " + w.ID()}
	}
	if err != nil {
		return &StepError{Step: "load", Window: w, Err: err,
			Kept:   "every ERP answer received so far, in the window's ledger; confirmed documents will not be posted again",
			Resume: "zuora-erp-etl load --window " + w.ID()}
	}
	return nil
}

// Extract backfills [from, to) without moving the high-water mark. Windows that
// already have a snapshot are taken again only when force is set.
func (p *Pipeline) Extract(ctx context.Context, from, to time.Time, force bool) ([]stage.Window, error) {
	if !from.Before(to) {
		return nil, &ConfigError{Msg: fmt.Sprintf("--from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))}
	}
	if err := p.cfg.needZuora(); err != nil {
		return nil, err
	}
	release, err := p.takeLease(ctx, "extract")
	if err != nil {
		return nil, err
	}
	defer release()
	ws := stage.Split(from, to, p.cfg.WindowSize)
	for _, w := range ws {
		if err := p.extract(ctx, w, force); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// Transform re-runs the transform of one committed window.
func (p *Pipeline) Transform(ctx context.Context, w stage.Window) (*Report, error) {
	if err := p.requireSnapshot(ctx, w); err != nil {
		return nil, err
	}
	release, err := p.takeLease(ctx, "transform")
	if err != nil {
		return nil, err
	}
	defer release()
	if err := p.transform(ctx, w, true); err != nil {
		return nil, err
	}
	wr, err := p.windowReport(ctx, w)
	return &Report{RunID: p.cfg.RunID, Windows: []WindowReport{wr}}, err
}

// Load re-runs post and write-back for one window, touching only documents not
// yet confirmed or not yet marked.
func (p *Pipeline) Load(ctx context.Context, w stage.Window) (*Report, error) {
	if err := p.cfg.needERP(); err != nil {
		return nil, err
	}
	if err := p.cfg.needZuora(); err != nil {
		return nil, err
	}
	if err := p.requireSnapshot(ctx, w); err != nil {
		return nil, err
	}
	release, err := p.takeLease(ctx, "load")
	if err != nil {
		return nil, err
	}
	defer release()
	var tm stage.TransformManifest
	ok, err := p.st.ReadManifest(ctx, "transform", w, &tm)
	if err != nil {
		return nil, err
	}
	if !ok {
		if err := p.transform(ctx, w, false); err != nil {
			return nil, err
		}
	}
	wr, err := p.loadWindow(ctx, w)
	if wr == nil {
		return nil, err
	}
	return &Report{RunID: p.cfg.RunID, Windows: []WindowReport{*wr}, Zuora: p.zuoraStats()}, err
}

func (p *Pipeline) requireSnapshot(ctx context.Context, w stage.Window) error {
	var em stage.ExtractManifest
	ok, err := p.st.ReadManifest(ctx, "extract", w, &em)
	if err != nil {
		return err
	}
	if !ok {
		return &ConfigError{Msg: fmt.Sprintf("window %s has no committed snapshot in %s; see zuora-erp-etl status, or extract it with: zuora-erp-etl extract --from %s --to %s",
			w.ID(), p.st.URL(), w.Start.Format(time.RFC3339), w.End.Format(time.RFC3339))}
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
	wr := WindowReport{Window: w}
	var em stage.ExtractManifest
	ok, err := p.st.ReadManifest(ctx, "extract", w, &em)
	if err != nil {
		return wr, err
	}
	wr.Extracted = ok
	wr.Warnings = em.Warnings
	var tm stage.TransformManifest
	if wr.Transformed, err = p.st.ReadManifest(ctx, "transform", w, &tm); err != nil {
		return wr, err
	}
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
		lm, err := load.Pending(ctx, p.st, w)
		if err != nil {
			return wr, err
		}
		wr.Loaded = lm.Complete
		wr.Stopped = lm.StoppedBecause
		for _, t := range lm.Totals {
			l := line(t.DocType, t.Currency)
			l.Posted, l.ERPRejected, l.Pending, l.Marked = t.Posted, t.Rejected, t.Pending, t.Marked
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
		return &ConfigError{Msg: fmt.Sprintf("window %s: %v; set the API name of the account's ERP customer field with --erp-account-field or ETL_ERP_ACCOUNT_FIELD (now %s)",
			w.ID(), fa, fa.Field)}
	}
	var ue *extract.UnavailableError
	if errors.As(err, &ue) {
		return &ConfigError{Msg: fmt.Sprintf("window %s: %v; a tenant without Invoice Settlement has no memo objects: move only the other types with --doc-types or ETL_DOC_TYPES, e.g. --doc-types invoice,payment,refund",
			w.ID(), ue)}
	}
	return nil
}
