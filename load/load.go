// Package load posts a window's ERP-ready documents to the ERP exactly once,
// records every answer in an append-only ledger in the stage, and only then marks
// the confirmed documents TransferredToAccounting = Yes in Zuora.
//
// The window's NDJSON is streamed, never held: one read verifies it and keeps
// each document's small metadata, the next posts as it reads (a file not sorted
// by type takes more), so memory holds only the payloads in flight.
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
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Marker is the narrow view of the Zuora client the load needs (internal/zuora.Client implements it).
type Marker interface {
	MarkTransferred(ctx context.Context, objectType string, ids []string) ([]zuora.MarkResult, error)
}

// Options configures a load run. Zero values take the defaults noted.
type Options struct {
	ERPBaseURL, ERPToken string
	HTTPClient           *http.Client  // nil → a plain client; each request is bounded by RequestTimeout
	Concurrency          int           // concurrent posts; 0 → 4
	BreakerThreshold     int           // documents in a row that fail transiently before the run stops; 0 → 5
	LedgerFlush          int           // ledger rows per part; 0 → 50
	Retry                retry.Policy  // retries of one post
	RequestTimeout       time.Duration // one HTTP attempt; 0 → 30s
	RunID, CodeVersion   string        // RunID "" → a fresh random id
	Logger               *slog.Logger  // nil → slog.Default()
	// DocTypes are the document types moved; nil means every one. A window
	// holding documents of another type is refused with a *TypeNotMovedError
	// before anything is posted.
	DocTypes []stage.DocType
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

// MarkBatch is the most ids passed to one Marker call (Zuora's limit per update).
const MarkBatch = 50

// finalFlushTimeout bounds the ledger and manifest writes made after a cancellation.
const finalFlushTimeout = 30 * time.Second

func (o Options) withDefaults() (Options, error) {
	if o.ERPBaseURL == "" {
		return o, errors.New("load: the ERP base URL is not set")
	}
	if o.ERPToken == "" {
		return o, errors.New("load: the ERP token is not set")
	}
	o.ERPBaseURL = strings.TrimRight(o.ERPBaseURL, "/")
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.BreakerThreshold <= 0 {
		o.BreakerThreshold = 5
	}
	if o.LedgerFlush <= 0 {
		o.LedgerFlush = 50
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.RunID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		o.RunID = hex.EncodeToString(b[:])
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
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
func Run(ctx context.Context, st *stage.Stage, w stage.Window, m Marker, opts Options) (*stage.LoadManifest, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("load: no Zuora client to mark documents transferred")
	}
	log := opts.Logger.With("window", w.ID(), "run_id", opts.RunID)
	ready, err := readDocuments(ctx, st, w)
	if err != nil {
		return nil, fmt.Errorf("load window %s: %w", w.ID(), err)
	}
	docs := ready.docs
	if opts.DocTypes != nil {
		notMoved := map[stage.DocType]int{}
		for _, d := range docs {
			if !slices.Contains(opts.DocTypes, d.DocType) {
				notMoved[d.DocType]++
			}
		}
		for _, dt := range stage.DocTypes() {
			if notMoved[dt] > 0 {
				return nil, &TypeNotMovedError{Window: w, DocType: dt, Count: notMoved[dt]}
			}
		}
	}
	rows, err := readLedger(ctx, st, w)
	if err != nil {
		return nil, fmt.Errorf("load window %s: %w", w.ID(), err)
	}
	r := &run{
		opts:   opts,
		log:    log,
		w:      w,
		state:  states(rows),
		zuora:  m,
		ledger: &ledger{st: st, w: w, runID: opts.RunID, every: opts.LedgerFlush, now: time.Now},
		client: &erpClient{base: opts.ERPBaseURL, token: opts.ERPToken, http: opts.HTTPClient, timeout: opts.RequestTimeout, policy: opts.Retry},
	}
	log.Info("load started", "documents", len(docs), "ledger_rows", len(rows))

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

	man := summarize(w, docs, r.snapshot())
	man.RunID, man.CodeVersion, man.UpdatedAt = opts.RunID, opts.CodeVersion, time.Now().UTC()
	man.StoppedBecause = r.stopReason()
	if ctx.Err() != nil && man.StoppedBecause == "" {
		man.StoppedBecause = "cancelled: " + context.Cause(ctx).Error()
	}
	posted, pending := counts(man)
	kept := fmt.Sprintf("the ledger holds the ERP's answer for every document it settled: %d confirmed, %d still pending", posted, pending)
	if err := st.WriteManifest(final, "load", w, man); err != nil {
		return man, &Error{Window: w, Err: fmt.Errorf("write the load manifest: %w", err), Kept: kept + " (the ledger is complete; only the manifest is missing)"}
	}
	log.Info("load finished", "complete", man.Complete, "stopped_because", man.StoppedBecause, "ledger_parts", len(r.ledger.written))

	if markErr != nil {
		kept += fmt.Sprintf("; %d confirmed documents are not yet marked in Zuora", unmarked(man))
	}
	switch {
	case ctx.Err() != nil:
		return man, &Error{Window: w, Err: fmt.Errorf("cancelled: %w", context.Cause(ctx)), Kept: kept}
	case stopErr != nil:
		return man, &Error{Window: w, Err: errors.Join(fmt.Errorf("stopped: %w", stopErr), markErr), Kept: kept}
	case pending > 0:
		return man, &Error{Window: w, Err: errors.Join(fmt.Errorf("%d documents are still pending after retries (last failure: %s)", pending, r.lastFailure), markErr), Kept: kept}
	case markErr != nil:
		return man, &Error{Window: w, Err: markErr, Kept: kept}
	}
	return man, nil
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
		n += t.Posted.Count - t.Marked.Count
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
	rows, err := readLedger(ctx, st, w)
	if err != nil {
		return nil, fmt.Errorf("load status of window %s: %w", w.ID(), err)
	}
	man := summarize(w, ready.docs, states(rows))
	man.UpdatedAt = time.Now().UTC()
	var last stage.LoadManifest
	if found, err := st.ReadManifest(ctx, "load", w, &last); err != nil {
		return nil, fmt.Errorf("load status of window %s: %w", w.ID(), err)
	} else if found {
		man.RunID, man.CodeVersion, man.StoppedBecause = last.RunID, last.CodeVersion, last.StoppedBecause
	}
	return man, nil
}

// run is the state of one load run.
type run struct {
	opts   Options
	log    *slog.Logger
	w      stage.Window
	ledger *ledger
	client *erpClient
	zuora  Marker

	mu          sync.Mutex
	state       map[string]*docState
	consecutive int    // documents in a row that failed transiently after all retries
	lastFailure string // the last transient failure, for the run's error
	stopped     string // why posting stopped early
	stopErr     error  // why posting stopped, when a typed error says it (e.g. a *RefusedError)
}

// errStopped cancels in-flight posts once the run has decided to stop.
var errStopped = errors.New("load run stopped")

// postAll posts every document that needs it, type by type in dependency
// order, streaming the NDJSON so that only the payloads in flight are in
// memory; it returns a non-nil error when it stopped early.
func (r *run) postAll(ctx context.Context, st *stage.Stage, ready *readyDocuments) error {
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	todo := make([]bool, len(ready.docs))
	for i, d := range ready.docs {
		todo[i] = r.needsPost(d)
	}
	passes := planPasses(ready.docs, todo)
	if len(passes) > 1 {
		r.log.Warn("ready documents are not sorted in dependency order: reading them once per pass", "passes", len(passes))
	}
	for _, p := range passes {
		if err := r.postPass(ctx, pctx, cancel, st, ready, p); err != nil {
			r.stop(err.Error(), cancel)
		}
		if pctx.Err() != nil {
			break
		}
	}
	if reason := r.stopReason(); reason != "" {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.stopErr != nil {
			return r.stopErr // typed, so callers can tell a setting to fix from an outage
		}
		return errors.New(reason)
	}
	return ctx.Err()
}

// pass is one read of the NDJSON that posts the documents of types, in that
// order: those todo marks, count of each type, the last at index last.
type pass struct {
	types []stage.DocType
	last  int
	todo  []bool
	count map[stage.DocType]int
}

// planPasses groups the types with documents to post, in dependency order, into
// reads of the NDJSON: within one read each type's documents all come before the
// next type's. A file sorted by type, as the transform writes it, needs one read.
func planPasses(docs []document, todo []bool) []pass {
	first, last, count := map[stage.DocType]int{}, map[stage.DocType]int{}, map[stage.DocType]int{}
	for i, d := range docs {
		if !todo[i] {
			continue
		}
		if _, ok := first[d.DocType]; !ok {
			first[d.DocType] = i
		}
		last[d.DocType] = i
		count[d.DocType]++
	}
	var out []pass
	for _, t := range stage.DocTypes() {
		f, ok := first[t]
		if !ok {
			continue
		}
		if len(out) == 0 || f < out[len(out)-1].last {
			out = append(out, pass{todo: todo, count: count})
		}
		p := &out[len(out)-1]
		p.types, p.last = append(p.types, t), last[t]
	}
	return out
}

// postPass reads the NDJSON once and posts the documents of p's types that need
// it, each type finished before the next starts. It posts a line only when it is
// the very document the verified first read found at that place; otherwise it
// returns an error before posting it.
func (r *run) postPass(ctx, pctx context.Context, stop context.CancelCauseFunc, st *stage.Stage, ready *readyDocuments, p pass) error {
	inPass := map[stage.DocType]bool{}
	for _, t := range p.types {
		inPass[t] = true
	}
	rc, err := st.NewReader(pctx, ready.key)
	if err != nil {
		if pctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("read ready documents: %w", err)
	}
	defer rc.Close()

	var (
		current stage.DocType
		jobs    chan posting
		wg      sync.WaitGroup
	)
	startType := func(docType stage.DocType) {
		current, jobs = docType, make(chan posting)
		r.log.Info("posting", "doc_type", docType, "documents", p.count[docType])
		for range min(r.opts.Concurrency, p.count[docType]) {
			wg.Add(1)
			go func(jobs <-chan posting) {
				defer wg.Done()
				for d := range jobs {
					if pctx.Err() != nil {
						continue // stopping: leave it pending, unsent
					}
					r.record(ctx, d.document, r.client.post(pctx, d), stop)
				}
			}(jobs)
		}
	}
	finishType := func() { // waits until every post of the current type is settled
		if jobs != nil {
			close(jobs)
			wg.Wait()
			jobs = nil
		}
	}
	defer finishType()

	next := 0 // index of the line's document in ready.docs
	err = scanLines(ready.key, rc, func(n int, line []byte) error {
		i := next
		next++
		if i >= len(ready.docs) {
			return fmt.Errorf("ready documents %s changed since they were verified: line %d is new", ready.key, n)
		}
		want := ready.docs[i]
		if p.todo[i] && inPass[want.DocType] {
			var env stage.Envelope // a fresh payload buffer: a worker keeps it until the post is settled
			d, err := parseDocument(line, &env)
			if err != nil {
				return fmt.Errorf("ready documents %s changed since they were verified: line %d: %w", ready.key, n, err)
			}
			if !d.same(want) {
				return fmt.Errorf("ready documents %s changed since they were verified: line %d is no longer %s %s as verified", ready.key, n, want.DocType, want.ZuoraID)
			}
			if d.DocType != current {
				finishType()
				if pctx.Err() != nil {
					return errStopScan
				}
				startType(d.DocType)
			}
			select {
			case jobs <- posting{document: want, payload: env.Payload}:
			case <-pctx.Done():
				return errStopScan
			}
		}
		if i >= p.last {
			return errStopScan // nothing further to post in this pass
		}
		return nil
	})
	finishType()
	switch {
	case pctx.Err() != nil:
		return nil // stopped or cancelled: the caller reports why
	case err != nil:
		return err
	case next <= p.last:
		return fmt.Errorf("ready documents %s changed since they were verified: it ends after %d documents", ready.key, next)
	}
	return nil
}

// needsPost reports whether the ledger leaves d to post: not confirmed, and not
// refused with this very payload.
func (r *run) needsPost(d document) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state[d.ZuoraID]
	return s == nil || !s.confirmed && !(s.rejected && s.rejectedSHA == d.sha)
}

// record appends one post outcome to the ledger, updates the document's state
// and trips the breaker or stops the run when needed.
func (r *run) record(ctx context.Context, d document, res postResult, stop context.CancelCauseFunc) {
	log := r.log.With("doc_type", d.DocType, "doc_id", d.ZuoraID, "attempts", res.attempts, "http_status", res.status)
	row := stage.LedgerRow{
		RunID: r.opts.RunID, DocType: string(d.DocType), ZuoraID: d.ZuoraID, IdempotencyKey: d.IdempotencyKey,
		Action: stage.ActionPost, Outcome: res.outcome, HTTPStatus: int32(res.status), ERPID: res.erpID,
		Message: res.message, Attempts: int32(res.attempts), Ambiguous: res.ambiguous,
		Currency: d.Currency, Amount: d.fixed, PayloadSHA256: d.sha, StartedAt: res.started, FinishedAt: res.finished,
	}
	if err := r.ledger.add(ctx, row); err != nil && ctx.Err() == nil {
		r.stop(fmt.Sprintf("the stage rejected a ledger part: %v", err), stop)
	}

	r.mu.Lock()
	s := r.state[d.ZuoraID]
	if s == nil {
		s = &docState{}
		r.state[d.ZuoraID] = s
	}
	var tripped bool
	var fatalErr error
	switch res.outcome {
	case stage.OutcomeCreated, stage.OutcomeDuplicate:
		s.confirmed, s.erpID, s.rejected = true, res.erpID, false
		r.consecutive = 0
		log.Debug("posted", "outcome", res.outcome, "erp_id", res.erpID, "ambiguous", res.ambiguous)
	case stage.OutcomeRejected:
		s.rejected, s.rejectedSHA = true, d.sha
		r.consecutive = 0
		log.Warn("erp rejected document", "message", res.message)
	default:
		var fatal *fatalError
		switch {
		case errors.As(res.err, &fatal):
			fatalErr = fatal.err
		case errors.Is(res.err, context.Canceled) || ctx.Err() != nil || r.stopped != "":
			// Cut short by a stop or a cancellation: says nothing about the ERP.
		default:
			r.consecutive++
			r.lastFailure = res.message
			tripped = r.consecutive >= r.opts.BreakerThreshold
			log.Warn("post failed after retries", "error", res.message, "consecutive", r.consecutive)
		}
	}
	n := r.consecutive
	r.mu.Unlock()
	if fatalErr != nil {
		r.stopWith(fatalErr, stop)
	}
	if tripped {
		r.stop(fmt.Sprintf("circuit breaker: %d documents in a row failed after all retries, the ERP looks down (last: %s)", n, res.message), stop)
	}
}

// stop records why the run stops (the first reason wins) and cancels in-flight posts.
func (r *run) stop(reason string, cancel context.CancelCauseFunc) {
	r.mu.Lock()
	if r.stopped == "" {
		r.stopped = reason
		r.log.Error("load stopping", "reason", reason)
	}
	r.mu.Unlock()
	cancel(errStopped)
}

// stopWith stops the run for err, keeping it as the typed reason when it is the first.
func (r *run) stopWith(err error, cancel context.CancelCauseFunc) {
	r.mu.Lock()
	if r.stopped == "" {
		r.stopErr = err
	}
	r.mu.Unlock()
	r.stop(err.Error(), cancel)
}

func (r *run) stopReason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped
}

// snapshot copies the document states.
func (r *run) snapshot() map[string]*docState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]*docState, len(r.state))
	for k, v := range r.state {
		c := *v
		out[k] = &c
	}
	return out
}

// markAll marks every confirmed, unmarked document transferred in Zuora, one
// object type at a time in batches of MarkBatch, and records each result. Call
// it only once the ledger holds every confirmation.
func (r *run) markAll(ctx context.Context, docs []document) error {
	byType := map[stage.DocType][]document{}
	r.mu.Lock()
	for _, d := range docs {
		if s := r.state[d.ZuoraID]; s != nil && s.confirmed && !s.marked {
			byType[d.DocType] = append(byType[d.DocType], d)
		}
	}
	r.mu.Unlock()
	var failed int
	for _, docType := range stage.DocTypes() {
		todo := byType[docType]
		for len(todo) > 0 {
			batch := todo[:min(MarkBatch, len(todo))]
			todo = todo[len(batch):]
			n, err := r.markBatch(ctx, docType, batch)
			failed += n
			if err != nil {
				return fmt.Errorf("write-back to Zuora failed: %w", err)
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("zuora refused to mark %d confirmed documents transferred (see the ledger's mark_failed rows)", failed)
	}
	return nil
}

// markBatch marks one batch of one type; it returns how many objects Zuora
// refused, or an error when the call itself failed.
func (r *run) markBatch(ctx context.Context, docType stage.DocType, batch []document) (int, error) {
	object := docType.MarkObject()
	ids := make([]string, len(batch))
	for i, d := range batch {
		ids[i] = d.ZuoraID
	}
	started := time.Now().UTC()
	results, callErr := r.zuora.MarkTransferred(ctx, object, ids)
	finished := time.Now().UTC()
	byID := make(map[string]zuora.MarkResult, len(results))
	for _, res := range results {
		byID[res.ID] = res
	}
	var failed int
	for _, d := range batch {
		res, ok := byID[d.ZuoraID]
		row := stage.LedgerRow{
			RunID: r.opts.RunID, DocType: string(d.DocType), ZuoraID: d.ZuoraID, IdempotencyKey: d.IdempotencyKey,
			Action: stage.ActionMark, Outcome: stage.OutcomeMarked, Attempts: int32(res.Attempts),
			Currency: d.Currency, Amount: d.fixed, PayloadSHA256: d.sha, StartedAt: started, FinishedAt: finished,
		}
		r.mu.Lock()
		s := r.state[d.ZuoraID]
		row.ERPID = s.erpID
		switch {
		case callErr != nil:
			row.Outcome, row.Message = stage.OutcomeMarkFailed, callErr.Error()
		case !ok:
			row.Outcome, row.Message = stage.OutcomeMarkFailed, "zuora returned no result for this id"
		case !res.OK:
			row.Outcome, row.Message = stage.OutcomeMarkFailed, strings.TrimPrefix(res.Code+": "+res.Message, ": ")
		default:
			s.marked = true
		}
		r.mu.Unlock()
		if row.Outcome == stage.OutcomeMarkFailed {
			failed++
			r.log.Warn("mark failed", "doc_type", d.DocType, "doc_id", d.ZuoraID, "message", row.Message)
		}
		if err := r.ledger.add(ctx, row); err != nil {
			return failed, err
		}
	}
	if callErr != nil {
		return failed, fmt.Errorf("mark %d %s objects: %w", len(batch), object, callErr)
	}
	return failed, nil
}

// summarize derives the window's load manifest from the documents and the
// ledger's states, so every run reports the whole window.
func summarize(w stage.Window, docs []document, state map[string]*docState) *stage.LoadManifest {
	type key struct {
		docType  stage.DocType
		currency string
	}
	totals := map[key]*stage.LoadTotals{}
	for _, d := range docs {
		k := key{d.DocType, d.Currency}
		t := totals[k]
		if t == nil {
			t = &stage.LoadTotals{DocType: string(d.DocType), Currency: d.Currency}
			totals[k] = t
		}
		t.Ready.Add(d.amount)
		s := state[d.ZuoraID]
		switch {
		case s != nil && s.confirmed:
			t.Posted.Add(d.amount)
			if s.marked {
				t.Marked.Add(d.amount)
			}
		case s != nil && s.rejected && s.rejectedSHA == d.sha:
			t.Rejected.Add(d.amount)
		default:
			t.Pending.Add(d.amount)
		}
	}
	man := &stage.LoadManifest{Window: w.ID(), Complete: true, Totals: []stage.LoadTotals{}}
	for _, t := range totals {
		man.Totals = append(man.Totals, *t)
		if t.Pending.Count > 0 || t.Marked.Count != t.Posted.Count {
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
	return man
}
