package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erp"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// run is the state of one load run.
type run struct {
	opts    Options
	log     *slog.Logger
	w       stage.Window
	ledger  *ledger
	erp     Poster
	zuora   Marker
	breaker *breaker

	mu      sync.Mutex
	state   map[string]*docState
	cancel  context.CancelCauseFunc // cancels the posts in flight once the run stops
	stopped string                  // why posting stopped early
	stopErr error                   // why posting stopped, when a typed error says it (e.g. an *erp.RefusedError)
	holdsOn map[string]hold         // the lines this run held back, by idempotency key
}

// errStopped cancels in-flight posts once the run has decided to stop.
var errStopped = errors.New("load run stopped")

// postAll posts every line that needs it, phase by phase in the window's
// order (see phaseOf), streaming the NDJSON so that only the payloads in
// flight are in memory; it returns a non-nil error when it stopped early.
func (r *run) postAll(ctx context.Context, st *stage.Stage, ready *readyDocuments) error {
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.mu.Lock()
	r.cancel = cancel
	r.mu.Unlock()
	passes, err := planPasses(ready.docs, func(d *document) bool { return r.needsPost(*d) })
	if err != nil {
		return err
	}
	if len(passes) > 1 {
		r.log.Warn("ready documents are not sorted in load order: reading them once per pass", "passes", len(passes))
	}
	for _, p := range passes {
		if err := r.postPass(ctx, pctx, st, ready, p); err != nil {
			r.stop(err.Error())
		}
		if pctx.Err() != nil {
			break
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.stopErr != nil:
		return r.stopErr // typed, so callers can tell a setting to fix from an outage
	case r.stopped != "":
		return errors.New(r.stopped)
	}
	return ctx.Err()
}

// pass is one read of the NDJSON that posts the lines of phases, in that
// order: those todo marks, count of each phase, the last at index last.
type pass struct {
	phases []int
	last   int
	todo   []bool
	count  map[int]int
}

// planPasses groups the phases with lines to post (those todo reports, and
// marks), in order, into reads of the NDJSON: within one read each phase's
// lines all come before the next phase's. A file sorted in load order, as the
// transform writes it, needs one read.
func planPasses(docs *index, todo func(d *document) bool) ([]pass, error) {
	first, last, count := map[int]int{}, map[int]int{}, map[int]int{}
	marks := make([]bool, docs.len())
	err := docs.each(func(i int, d *document) error {
		if marks[i] = todo(d); !marks[i] {
			return nil
		}
		ph := phaseOf(*d)
		if _, ok := first[ph]; !ok {
			first[ph] = i
		}
		last[ph] = i
		count[ph]++
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []pass
	for ph := range phaseCount {
		f, ok := first[ph]
		if !ok {
			continue
		}
		if len(out) == 0 || f < out[len(out)-1].last {
			out = append(out, pass{todo: marks, count: count})
		}
		p := &out[len(out)-1]
		p.phases, p.last = append(p.phases, ph), last[ph]
	}
	return out, nil
}

// postPass reads the NDJSON once and posts the lines of p's phases that need
// it, each phase finished before the next starts; lines the phase's holds keep
// back are recorded, not posted. It posts a line only when it is the very
// document the verified first read found at that place; otherwise it returns
// an error before posting it.
func (r *run) postPass(ctx, pctx context.Context, st *stage.Stage, ready *readyDocuments, p pass) error {
	rc, err := st.NewReader(pctx, ready.key)
	if err != nil {
		if pctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("read ready documents: %w", err)
	}
	defer rc.Close()
	pp := newPassPoster(r, ready, p)
	defer pp.finishPhase()
	err = scanLines(ready.key, rc, func(n int, line []byte) error { return pp.line(ctx, pctx, n, line) })
	pp.finishPhase()
	switch {
	case pctx.Err() != nil:
		return nil // stopped or cancelled: the caller reports why
	case err != nil:
		return err
	case pp.docs.i <= p.last:
		return fmt.Errorf("ready documents %s changed since they were verified: it ends after %d documents", ready.key, pp.docs.i)
	}
	return nil
}

// passPoster is one read of the ready documents for pass p: it checks each
// line against the verified read and hands the lines of p's phases to the
// current phase's workers, settling a phase before the next starts.
type passPoster struct {
	r       *run
	ready   *readyDocuments
	p       pass
	inPass  map[int]bool    // the phases of p
	current int             // the phase being posted, -1 before the first
	workers *pool           // the workers of the current phase
	held    map[string]hold // the current phase's lines held back
	docs    *indexReader    // the verified read's documents, as the lines come (docs.i: the lines read)
}

func newPassPoster(r *run, ready *readyDocuments, p pass) *passPoster {
	pp := &passPoster{r: r, ready: ready, p: p, inPass: map[int]bool{}, current: -1, docs: ready.docs.reader()}
	for _, ph := range p.phases {
		pp.inPass[ph] = true
	}
	return pp
}

// line takes line n of the NDJSON: it posts it when the pass is to, and
// ends the scan after the pass's last line.
func (pp *passPoster) line(ctx, pctx context.Context, n int, line []byte) error {
	want, ok, err := pp.docs.next()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("ready documents %s changed since they were verified: line %d is new", pp.ready.key, n)
	}
	i := pp.docs.i - 1 // the document's place in the verified read
	if pp.p.todo[i] && pp.inPass[phaseOf(want)] {
		if err := pp.post(ctx, pctx, n, line, want); err != nil {
			return err
		}
	}
	if i >= pp.p.last {
		return errStopScan // nothing further to post in this pass
	}
	return nil
}

// post verifies line n as want and posts it, or records its hold; the
// first line of a phase starts that phase.
func (pp *passPoster) post(ctx, pctx context.Context, n int, line []byte, want document) error {
	d, err := verified(pp.ready.key, n, line, want)
	if err != nil {
		return err
	}
	if ph := phaseOf(d.document); ph != pp.current {
		if err := pp.startPhase(ctx, pctx, ph); err != nil {
			return err
		}
	}
	if h, ok := pp.held[d.IdempotencyKey]; ok {
		pp.r.recordHold(ctx, d.document, h)
		return nil
	}
	if !pp.workers.submit(pctx, d) {
		return errStopScan
	}
	return nil
}

// startPhase settles the current phase, decides the holds of phase ph and
// starts the workers that post the rest of its lines.
func (pp *passPoster) startPhase(ctx, pctx context.Context, ph int) error {
	pp.finishPhase() // each phase is settled before the next starts
	if pctx.Err() != nil {
		return errStopScan
	}
	held := map[string]hold{}
	err := eachPhaseChunk(pp.ready.docs, pp.p.todo, ph, func(lines []document) error {
		h, err := pp.r.holds(pctx, lines, pp.ready.docs)
		maps.Copy(held, h)
		return err
	})
	if err != nil {
		return err
	}
	pp.held, pp.current = held, ph
	pp.workers = pp.r.startWorkers(ctx, pctx, ph, pp.p.count[ph]-len(held))
	return nil
}

// finishPhase waits for the current phase's workers to settle their posts.
func (pp *passPoster) finishPhase() {
	if pp.workers != nil {
		pp.workers.wait()
		pp.workers = nil
	}
}

// eachPhaseChunk calls fn with the lines of phase ph that todo marks and
// that a hold can keep back (see mayHold), holdChunk lines at a time, in
// file order: the others are posted as they come. A line's hold depends on
// the lines of the window it depends on and on the ledger as the phase
// starts, never on the other lines of its phase, so the phase is decided a
// chunk at a time and holds a chunk, not the window's applications.
func eachPhaseChunk(docs *index, todo []bool, ph int, fn func(lines []document) error) error {
	var chunk []document
	err := docs.each(func(i int, d *document) error {
		if !todo[i] || phaseOf(*d) != ph || !mayHold(*d) {
			return nil
		}
		if chunk = append(chunk, *d); len(chunk) == holdChunk {
			err := fn(chunk)
			chunk = chunk[:0]
			return err
		}
		return nil
	})
	if err == nil && len(chunk) > 0 {
		err = fn(chunk)
	}
	return err
}

// holdChunk is how many lines of a phase eachPhaseChunk gives at a time:
// each chunk's holds take a scan of the window's index and a question to
// the Dependencies, so a chunk is large enough for a few per phase of a
// peak hour, small enough to weigh a few MB.
var holdChunk = 8192

// verified takes the payload of line n of the ready documents, which the
// first read found to be want: as is when the line is byte for byte the one
// that read marked, else by decoding it again and refusing it when it no
// longer is want.
func verified(key string, n int, line []byte, want document) (posting, error) {
	if payload, ok := want.line.payloadOf(line); ok {
		// a copy: a worker keeps it until the post is settled
		return posting{document: want, payload: append(json.RawMessage(nil), payload...)}, nil
	}
	var env stage.Envelope // a fresh payload buffer: a worker keeps it until the post is settled
	d, err := parseDocument(line, &env)
	if err != nil {
		return posting{}, fmt.Errorf("ready documents %s changed since they were verified: line %d: %w", key, n, err)
	}
	if !d.same(want) {
		return posting{}, fmt.Errorf("ready documents %s changed since they were verified: line %d is no longer %s %s as verified", key, n, want.DocType, want.ZuoraID)
	}
	return posting{document: want, payload: env.Payload}, nil
}

// startWorkers starts the pool that posts the lines of one phase.
func (r *run) startWorkers(ctx, pctx context.Context, ph, count int) *pool {
	r.log.Info("posting", "doc_type", phaseName(ph), "documents", count)
	docType := phaseType(ph)
	var done atomic.Int64
	return startPool(max(1, min(r.opts.Concurrency, count)), func(d posting) {
		if pctx.Err() != nil {
			return // stopping: leave it pending, unsent
		}
		res := r.erp.Post(pctx, erp.Document{DocType: d.DocType, ZuoraID: d.ZuoraID, IdempotencyKey: d.IdempotencyKey, Payload: d.payload})
		r.record(ctx, d.document, res)
		if p := r.opts.Progress; p != nil {
			p.Posted(docType, done.Add(1), int64(count))
		}
	})
}

// needsPost reports whether the ledger leaves d to post (or to hold back
// again): not confirmed, and not refused with this very payload.
func (r *run) needsPost(d document) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state[d.IdempotencyKey]
	return s == nil || !s.confirmed && !s.refuses(d.sha)
}

// recordHold records that d is held back, unless the ledger says so already
// in the same words for the same payload (so a window that keeps waiting
// does not grow its ledger at every load).
func (r *run) recordHold(ctx context.Context, d document, h hold) {
	r.mu.Lock()
	s := r.state[d.IdempotencyKey]
	if s == nil {
		s = &docState{docType: string(d.DocType), zuoraID: d.ZuoraID}
		r.state[d.IdempotencyKey] = s
	}
	same := s.held != nil && s.held.outcome == h.outcome && s.held.why == h.why && s.held.sha == d.sha
	now := time.Now().UTC()
	s.hold(h.outcome, h.why, d.sha, now)
	r.holdsOn[d.IdempotencyKey] = h
	r.mu.Unlock()
	r.log.Info("held back", "doc_type", d.DocType, "doc_id", d.ZuoraID, "outcome", h.outcome, "why", h.why)
	if same {
		return
	}
	row := stage.LedgerRow{
		RunID: r.opts.RunID, DocType: string(d.DocType), ZuoraID: d.ZuoraID, IdempotencyKey: d.IdempotencyKey,
		Action: stage.ActionPost, Outcome: h.outcome, Message: h.why,
		Currency: d.Currency, Amount: d.fixed, PayloadSHA256: d.sha.String(), StartedAt: now, FinishedAt: now,
	}
	if err := r.ledger.add(ctx, row); err != nil && ctx.Err() == nil {
		r.stop(fmt.Sprintf("the stage rejected a ledger part: %v", err))
	}
}

// record appends one post outcome to the ledger, updates the document's state
// and trips the breaker or stops the run when needed.
func (r *run) record(ctx context.Context, d document, res erp.Result) {
	log := func() *slog.Logger { // built only for a line that is logged
		return r.log.With("doc_type", d.DocType, "doc_id", d.ZuoraID, "attempts", res.Attempts, "http_status", res.Status)
	}
	row := stage.LedgerRow{
		RunID: r.opts.RunID, DocType: string(d.DocType), ZuoraID: d.ZuoraID, IdempotencyKey: d.IdempotencyKey,
		Action: stage.ActionPost, Outcome: res.Outcome, HTTPStatus: int32(res.Status), ERPID: res.ERPID,
		Message: res.Message, Attempts: int32(res.Attempts), Ambiguous: res.Ambiguous,
		Currency: d.Currency, Amount: d.fixed, PayloadSHA256: d.sha.String(), StartedAt: res.Started, FinishedAt: res.Finished,
	}
	if err := r.ledger.add(ctx, row); err != nil && ctx.Err() == nil {
		r.stop(fmt.Sprintf("the stage rejected a ledger part: %v", err))
	}
	r.settle(d, res)
	switch res.Outcome {
	case stage.OutcomeCreated, stage.OutcomeDuplicate:
		r.breaker.settled()
		if r.log.Enabled(ctx, slog.LevelDebug) {
			log().Debug("posted", "outcome", res.Outcome, "erp_id", res.ERPID, "ambiguous", res.Ambiguous)
		}
		return
	case stage.OutcomeRejected:
		r.breaker.settled()
		log().Warn("erp rejected document", "message", res.Message)
		return
	}
	var fatal *erp.FatalError
	switch {
	case errors.As(res.Err, &fatal):
		r.stopWith(fatal.Err)
	case errors.Is(res.Err, context.Canceled) || ctx.Err() != nil || r.stopReason() != "":
		// Cut short by a stop or a cancellation: says nothing about the ERP.
	default:
		n, tripped := r.breaker.failed(res.Message)
		log().Warn("post failed after retries", "error", res.Message, "consecutive", n)
		if tripped {
			r.stop(fmt.Sprintf("circuit breaker: %d documents in a row failed after all retries, the ERP looks down (last: %s)", n, res.Message))
		}
	}
}

// settle records in the document's state what the ERP answered.
func (r *run) settle(d document, res erp.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state[d.IdempotencyKey]
	if s == nil {
		s = &docState{docType: string(d.DocType), zuoraID: d.ZuoraID}
		r.state[d.IdempotencyKey] = s
	}
	s.held = nil
	switch res.Outcome {
	case stage.OutcomeCreated, stage.OutcomeDuplicate:
		s.confirm(res.ERPID)
	case stage.OutcomeRejected:
		s.refuse(d.sha, res.Status, res.Message, res.Finished)
	case stage.OutcomeTransient:
		s.rejected = false
	}
}

// stop records why the run stops (the first reason wins) and cancels in-flight posts.
func (r *run) stop(reason string) {
	r.mu.Lock()
	if r.stopped == "" {
		r.stopped = reason
		r.log.Error("load stopping", "reason", reason)
	}
	cancel := r.cancel
	r.mu.Unlock()
	if cancel != nil {
		cancel(errStopped)
	}
}

// stopWith stops the run for err, keeping it as the typed reason when it is the first.
func (r *run) stopWith(err error) {
	r.mu.Lock()
	if r.stopped == "" {
		r.stopErr = err
	}
	r.mu.Unlock()
	r.stop(err.Error())
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

// settled is the document states once every post and mark has settled: the
// run's own map, no copy, for reading only.
func (r *run) settled() map[string]*docState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// snapshotOf is snapshot for the idempotency keys given only.
func (r *run) snapshotOf(keys []string) map[string]*docState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]*docState, len(keys))
	for _, k := range keys {
		if v := r.state[k]; v != nil {
			c := *v
			out[k] = &c
		}
	}
	return out
}
