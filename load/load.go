// Package load posts a window's ERP-ready lines (documents, applications,
// reversals) to the ERP exactly once, in the window's order and each only once
// what it depends on is live, records every answer in an append-only ledger
// in the stage, and only then writes back to Zuora: TransferredToAccounting =
// Yes on the confirmed documents, Error on those the ERP refused.
//
// The window's NDJSON is streamed, never held: one read verifies it and keeps
// each document's small metadata in a temporary file, the next posts as it
// reads (a file not sorted by type takes more), so memory holds only the
// payloads in flight and a ledger state per line.
//
// Every run of a window starts from the ledger, so a run stopped by an ERP
// outage, a crash or Ctrl-C is resumed by running it again: confirmed documents
// are not posted twice, and the Idempotency-Key makes repeating an in-flight
// post harmless.
package load

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erp"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Marker is the narrow view of the Zuora client the load needs (internal/zuora.Client implements it):
// it sets TransferredToAccounting to value (zuora.TransferredYes or TransferredError).
type Marker interface {
	SetTransferred(ctx context.Context, objectType, value string, ids []string) ([]zuora.MarkResult, error)
}

// Poster is the narrow view of the ERP client the load needs (internal/erp.Client implements it).
type Poster interface {
	Post(ctx context.Context, d erp.Document) erp.Result // until the ERP settles it or the retries run out
}

var _ Poster = (*erp.Client)(nil)

// Options configures a load run. Zero values take the defaults noted.
type Options struct {
	Concurrency        int          // concurrent posts; 0 → 4
	MarkConcurrency    int          // write-back calls at once; 0 → 8 (the Zuora client bounds its requests in flight too)
	BreakerThreshold   int          // documents in a row that fail transiently before the run stops; 0 → 5
	LedgerFlush        int          // ledger rows per part; 0 → 500 (a part is also written once its oldest row is 2 s old)
	RunID, CodeVersion string       // RunID "" → a fresh random id
	Logger             *slog.Logger // nil → slog.Default()
	// DocTypes are the types moved; nil means every one. A window holding
	// lines of another type is refused with a *TypeNotMovedError before
	// anything is posted.
	DocTypes []stage.DocType
	// Dependencies answers for what applications depend on beyond the window
	// (the ledger of every window, the outstanding rejects, Zuora); nil knows
	// only the window itself, and posts the rest for the ERP to resolve.
	Dependencies Dependencies
	// MarkRefused marks the documents the ERP refused for good
	// TransferredToAccounting = Error in Zuora (the pipeline's default).
	MarkRefused bool
	// Progress hears of every post the ERP settles; nil hears nothing.
	Progress Progress
	// Read, when not nil, is filled in with what the run read of the ready
	// documents that reading its verdicts needs (see EachVerdict).
	Read *Read
}

// Progress hears how far the posts of one document type are: done settled
// (confirmed, refused or given up) out of total to post in this run.
type Progress interface {
	Posted(docType stage.DocType, done, total int64)
}

// TypeNotMovedError is a window transformed while a document type was moved
// that no longer is: posting it would mark objects the tenant may not have.
// Nothing was posted; transforming the window again drops those documents.
type TypeNotMovedError struct {
	Window  stage.Window
	DocType stage.DocType
	Count   int
}

func (e *TypeNotMovedError) Error() string {
	return fmt.Sprintf("load window %s: it holds %d %s documents, a type no longer moved; nothing was posted, transform the window again to drop them",
		e.Window.ID(), e.Count, e.DocType)
}

// markConcurrency is o.MarkConcurrency or its default.
func (o Options) markConcurrency() int {
	if o.MarkConcurrency > 0 {
		return o.MarkConcurrency
	}
	return 8
}

// MarkBatch is the most ids passed to one Marker call (Zuora's limit per update).
const MarkBatch = 50

// finalFlushTimeout bounds the ledger and manifest writes made after a cancellation.
const finalFlushTimeout = 30 * time.Second

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.BreakerThreshold <= 0 {
		o.BreakerThreshold = 5
	}
	if o.LedgerFlush <= 0 {
		// Fewer, larger parts: every reader of the ledger (the load's
		// dependencies, the reject index, query) opens each part; a part of
		// 50 rows made a peak hour's window thousands of files.
		o.LedgerFlush = 500
	}
	if o.RunID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		o.RunID = hex.EncodeToString(b[:])
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Error is a load that stopped before its window was complete: Err is the
// root cause and Kept says exactly what the stage holds. Loading the window
// again resumes it: confirmed documents are not posted again.
type Error struct {
	Window stage.Window
	Err    error
	Kept   string
}

func (e *Error) Error() string { return fmt.Sprintf("load window %s: %v", e.Window.ID(), e.Err) }

func (e *Error) Unwrap() error { return e.Err }

// Run loads window w: it posts every document the ledger does not show as
// confirmed or refused, then marks every confirmed, unmarked document in Zuora,
// and writes the window's load manifest. It returns an error only when the
// window needs another run; ERP rejections are reported in the manifest.
func Run(ctx context.Context, st *stage.Stage, w stage.Window, erp Poster, m Marker, opts Options) (*stage.LoadManifest, error) {
	opts = opts.withDefaults()
	if erp == nil {
		return nil, errors.New("load: no ERP client to post documents with")
	}
	if m == nil {
		return nil, errors.New("load: no Zuora client to mark documents transferred")
	}
	log := opts.Logger.With("window", w.ID(), "run_id", opts.RunID)
	ready, err := readDocuments(ctx, st, w)
	if err != nil {
		return nil, fmt.Errorf("load window %s: %w", w.ID(), err)
	}
	defer ready.close()
	docs := ready.docs
	if err := checkMoved(w, docs, opts.DocTypes); err != nil {
		return nil, err
	}
	state, err := ledgerStates(ctx, st, w)
	if err != nil {
		return nil, fmt.Errorf("load window %s: %w", w.ID(), err)
	}
	r := &run{
		opts:    opts,
		log:     log,
		w:       w,
		state:   state,
		zuora:   m,
		erp:     erp,
		ledger:  &ledger{st: st, w: w, runID: opts.RunID, every: opts.LedgerFlush, now: time.Now},
		breaker: &breaker{threshold: opts.BreakerThreshold},
		holdsOn: map[string]hold{},
	}
	log.Info("load started", "documents", docs.len(), "ledger_lines", len(state))

	stopErr := r.postAll(ctx, st, ready)

	// Whatever happened, record what the ERP answered, even after a Ctrl-C.
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
	defer cancel()
	if err := r.ledger.flush(final); err != nil {
		return nil, &Error{Window: w, Err: errors.Join(fmt.Errorf("the stage refused the ledger: %w", err), stopErr), Kept: r.keptWithoutLedger(false)}
	}

	var markErr error
	if ctx.Err() == nil {
		markErr = r.markAll(ctx, docs)
		if err := r.ledger.flush(final); err != nil {
			return nil, &Error{Window: w, Err: fmt.Errorf("the stage refused the ledger: %w", err), Kept: r.keptWithoutLedger(true)}
		}
	}

	man, err := summarize(w, docs, r.settled(), opts.MarkRefused)
	if err == nil {
		man.WaitsOn, man.RejectedOn, err = r.heldOn(docs)
	}
	if err == nil && opts.Read != nil {
		*opts.Read, err = readOf(ready, r.settled())
	}
	if err != nil { // the index's temporary file failed: the ledger holds every answer
		return nil, &Error{Window: w, Err: errors.Join(err, stopErr, markErr), Kept: "the ledger holds the ERP's answer for every document it settled; the load manifest was not written"}
	}
	man.RunID, man.CodeVersion, man.UpdatedAt = opts.RunID, opts.CodeVersion, time.Now().UTC()
	man.StoppedBecause = r.stopReason()
	if ctx.Err() != nil && man.StoppedBecause == "" {
		man.StoppedBecause = "cancelled: " + context.Cause(ctx).Error()
	}
	if err := st.WriteManifest(final, w, man); err != nil {
		return man, &Error{Window: w, Err: fmt.Errorf("write the load manifest: %w", err), Kept: kept(man, nil) + " (the ledger is complete; only the manifest is missing)"}
	}
	log.Info("load finished", "complete", man.Complete, "stopped_because", man.StoppedBecause, "ledger_parts", len(r.ledger.written))
	return man, r.outcome(ctx, man, stopErr, markErr)
}

// checkMoved refuses a window that holds documents of a type not moved.
func checkMoved(w stage.Window, docs *index, moved []stage.DocType) error {
	if moved == nil {
		return nil
	}
	notMoved := map[stage.DocType]int{}
	err := docs.each(func(_ int, d *document) error {
		if !slices.Contains(moved, d.DocType) {
			notMoved[d.DocType]++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load window %s: %w", w.ID(), err)
	}
	for _, dt := range stage.LoadOrder() {
		if notMoved[dt] > 0 {
			return &TypeNotMovedError{Window: w, DocType: dt, Count: notMoved[dt]}
		}
	}
	return nil
}

// heldOn returns the ids that hold this run's waiting lines back, and the
// rejected ones its dependency_rejected lines name, each sorted and once.
func (r *run) heldOn(docs *index) (waits, rejected []string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	err = docs.each(func(_ int, d *document) error {
		s, h := r.state[d.IdempotencyKey], r.holdsOn[d.IdempotencyKey]
		if s == nil || s.held == nil || h.outcome != s.held.outcome {
			return nil
		}
		if h.outcome == stage.OutcomeWaiting {
			waits = append(waits, h.on...)
		} else {
			rejected = append(rejected, h.on...)
		}
		return nil
	})
	slices.Sort(waits)
	slices.Sort(rejected)
	return slices.Compact(waits), slices.Compact(rejected), err
}

// kept says what the stage holds once the ledger and the manifest m are written.
func kept(m *stage.LoadManifest, markErr error) string {
	posted, pending := counts(m)
	s := fmt.Sprintf("the ledger holds the ERP's answer for every document it settled: %d confirmed, %d still pending", posted, pending)
	if markErr != nil {
		s += fmt.Sprintf("; %d confirmed documents are not yet marked in Zuora", unmarked(m))
	}
	return s
}

// outcome is the error of a load whose ledger and manifest man are written:
// nil when the window needs no other run.
func (r *run) outcome(ctx context.Context, man *stage.LoadManifest, stopErr, markErr error) error {
	w, kept := r.w, kept(man, markErr)
	_, pending := counts(man)
	switch {
	case ctx.Err() != nil:
		return &Error{Window: w, Err: fmt.Errorf("cancelled: %w", context.Cause(ctx)), Kept: kept}
	case stopErr != nil:
		return &Error{Window: w, Err: errors.Join(fmt.Errorf("stopped: %w", stopErr), markErr), Kept: kept}
	case pending > 0:
		return &Error{Window: w, Err: errors.Join(fmt.Errorf("%d documents are still pending after retries (last failure: %s)", pending, r.breaker.lastFailure()), markErr), Kept: kept}
	case markErr != nil:
		return &Error{Window: w, Err: markErr, Kept: kept}
	}
	return nil
}

// keptWithoutLedger says what the stage holds when the ledger could not be
// written: the parts written before, and not the answers still in memory.
// marked says whether the write-back to Zuora had run.
func (r *run) keptWithoutLedger(marked bool) string {
	lost := r.ledger.unwritten()
	var confirmed, durable int
	for _, s := range r.snapshot() {
		if s.confirmed {
			confirmed++
		}
	}
	lostConfirmed := 0
	for _, row := range lost {
		if stage.Confirmed(row.Action, row.Outcome) {
			lostConfirmed++
		}
	}
	durable = confirmed - lostConfirmed
	marks := "nothing was marked in Zuora"
	if marked {
		marks = "Zuora may show some of them marked already, and marking them again is harmless"
	}
	return fmt.Sprintf("the ledger parts written before the failure (%d documents confirmed there); the ERP's answers to %d more posts "+
		"(%d confirmations) are not recorded, so they show as pending until the next load posts them again, which the Idempotency-Key makes safe; %s",
		durable, len(lost), lostConfirmed, marks)
}

func unmarked(m *stage.LoadManifest) int64 {
	var n int64
	for _, t := range m.Totals {
		if stage.DocType(t.DocType).IsDocument() {
			n += t.Posted.Count - t.Marked.Count
		}
	}
	return n
}

func counts(m *stage.LoadManifest) (posted, pending int64) {
	for _, t := range m.Totals {
		posted += t.Posted.Count
		pending += t.Pending.Count
	}
	return posted, pending
}

// Pending summarises, from the ledger and manifests, what is left to do for a window (for the `status` command).
func Pending(ctx context.Context, st *stage.Stage, w stage.Window) (*stage.LoadManifest, error) {
	ready, err := readDocuments(ctx, st, w)
	if err != nil {
		return nil, fmt.Errorf("load status of window %s: %w", w.ID(), err)
	}
	defer ready.close()
	state, err := ledgerStates(ctx, st, w)
	if err != nil {
		return nil, fmt.Errorf("load status of window %s: %w", w.ID(), err)
	}
	last, found, err := st.ReadLoad(ctx, w)
	if err != nil {
		return nil, fmt.Errorf("load status of window %s: %w", w.ID(), err)
	}
	man, err := summarize(w, ready.docs, state, last.MarkRefused)
	if err != nil {
		return nil, fmt.Errorf("load status of window %s: %w", w.ID(), err)
	}
	man.UpdatedAt = time.Now().UTC()
	if found {
		man.RunID, man.CodeVersion, man.StoppedBecause = last.RunID, last.CodeVersion, last.StoppedBecause
		man.WaitsOn, man.RejectedOn = last.WaitsOn, last.RejectedOn
	}
	return man, nil
}

// summarize derives the window's load manifest from the lines and the
// ledger's states, so every run reports the whole window. The load is
// complete when no line is pending or held back waiting, every confirmed
// document is marked and, with markRefused, every refused one marked Error.
func summarize(w stage.Window, docs *index, state map[string]*docState, markRefused bool) (*stage.LoadManifest, error) {
	type key struct {
		docType  stage.DocType
		currency string
	}
	totals := map[key]*stage.LoadTotals{}
	err := docs.each(func(_ int, d *document) error {
		k := key{d.DocType, d.Currency}
		t := totals[k]
		if t == nil {
			t = &stage.LoadTotals{DocType: string(d.DocType), Currency: d.Currency}
			totals[k] = t
		}
		amount := d.amount()
		t.Ready.Add(amount)
		s := state[d.IdempotencyKey]
		switch {
		case s != nil && s.confirmed:
			t.Posted.Add(amount)
			if s.marked && d.markable() {
				t.Marked.Add(amount)
			}
		case s != nil && s.refuses(d.sha):
			t.Rejected.Add(amount)
			if s.markedError() && d.markable() {
				t.ErrorMarked.Add(amount)
			}
		case s != nil && s.heldOutcome() == stage.OutcomeWaiting:
			t.Waiting.Add(amount)
		case s != nil && s.heldOutcome() == stage.OutcomeDependencyRejected:
			t.DependencyRejected.Add(amount)
		default:
			t.Pending.Add(amount)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	man := &stage.LoadManifest{Window: w.ID(), Complete: true, Totals: []stage.LoadTotals{}, MarkRefused: markRefused}
	for _, t := range totals {
		man.Totals = append(man.Totals, *t)
		markable := stage.DocType(t.DocType).IsDocument()
		if t.Pending.Count > 0 || t.Waiting.Count > 0 || markable && t.Marked.Count != t.Posted.Count ||
			markRefused && markable && t.ErrorMarked.Count != t.Rejected.Count {
			man.Complete = false
		}
	}
	sort.Slice(man.Totals, func(i, j int) bool {
		a, b := man.Totals[i], man.Totals[j]
		if a.DocType != b.DocType {
			return a.DocType < b.DocType
		}
		return a.Currency < b.Currency
	})
	return man, nil
}
