package load

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

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
}

// errStopped cancels in-flight posts once the run has decided to stop.
var errStopped = errors.New("load run stopped")

// postAll posts every document that needs it, type by type in dependency
// order, streaming the NDJSON so that only the payloads in flight are in
// memory; it returns a non-nil error when it stopped early.
func (r *run) postAll(ctx context.Context, st *stage.Stage, ready *readyDocuments) error {
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.mu.Lock()
	r.cancel = cancel
	r.mu.Unlock()
	todo := make([]bool, len(ready.docs))
	for i, d := range ready.docs {
		todo[i] = r.needsPost(d)
	}
	passes := planPasses(ready.docs, todo)
	if len(passes) > 1 {
		r.log.Warn("ready documents are not sorted in dependency order: reading them once per pass", "passes", len(passes))
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
	for _, t := range stage.LoadOrder() {
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
func (r *run) postPass(ctx, pctx context.Context, st *stage.Stage, ready *readyDocuments, p pass) error {
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

	var current stage.DocType
	var workers *pool // the workers of the current type
	finishType := func() {
		if workers != nil {
			workers.wait()
			workers = nil
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
		if want := ready.docs[i]; p.todo[i] && inPass[want.DocType] {
			d, err := verified(ready.key, n, line, want)
			if err != nil {
				return err
			}
			if d.DocType != current {
				finishType() // each type is settled before the next starts
				if pctx.Err() != nil {
					return errStopScan
				}
				current, workers = d.DocType, r.startWorkers(ctx, pctx, d.DocType, p.count[d.DocType])
			}
			if !workers.submit(pctx, d) {
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

// verified parses line n of the ready documents, which the first read found
// to be want, and refuses it when it no longer is.
func verified(key string, n int, line []byte, want document) (posting, error) {
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

// startWorkers starts the pool that posts the documents of one type.
func (r *run) startWorkers(ctx, pctx context.Context, docType stage.DocType, count int) *pool {
	r.log.Info("posting", "doc_type", docType, "documents", count)
	var done atomic.Int64
	return startPool(min(r.opts.Concurrency, count), func(d posting) {
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
func (r *run) record(ctx context.Context, d document, res erp.Result) {
	log := r.log.With("doc_type", d.DocType, "doc_id", d.ZuoraID, "attempts", res.Attempts, "http_status", res.Status)
	row := stage.LedgerRow{
		RunID: r.opts.RunID, DocType: string(d.DocType), ZuoraID: d.ZuoraID, IdempotencyKey: d.IdempotencyKey,
		Action: stage.ActionPost, Outcome: res.Outcome, HTTPStatus: int32(res.Status), ERPID: res.ERPID,
		Message: res.Message, Attempts: int32(res.Attempts), Ambiguous: res.Ambiguous,
		Currency: d.Currency, Amount: d.fixed, PayloadSHA256: d.sha, StartedAt: res.Started, FinishedAt: res.Finished,
	}
	if err := r.ledger.add(ctx, row); err != nil && ctx.Err() == nil {
		r.stop(fmt.Sprintf("the stage rejected a ledger part: %v", err))
	}
	r.settle(d, res)
	switch res.Outcome {
	case stage.OutcomeCreated, stage.OutcomeDuplicate:
		r.breaker.settled()
		log.Debug("posted", "outcome", res.Outcome, "erp_id", res.ERPID, "ambiguous", res.Ambiguous)
		return
	case stage.OutcomeRejected:
		r.breaker.settled()
		log.Warn("erp rejected document", "message", res.Message)
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
		log.Warn("post failed after retries", "error", res.Message, "consecutive", n)
		if tripped {
			r.stop(fmt.Sprintf("circuit breaker: %d documents in a row failed after all retries, the ERP looks down (last: %s)", n, res.Message))
		}
	}
}

// settle records in the document's state what the ERP answered.
func (r *run) settle(d document, res erp.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state[d.ZuoraID]
	if s == nil {
		s = &docState{}
		r.state[d.ZuoraID] = s
	}
	switch res.Outcome {
	case stage.OutcomeCreated, stage.OutcomeDuplicate:
		s.confirmed, s.erpID, s.rejected = true, res.ERPID, false
	case stage.OutcomeRejected:
		s.rejected, s.rejectedSHA = true, d.sha
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
