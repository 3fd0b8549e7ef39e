package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unique"

	"github.com/parquet-go/parquet-go"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pqzstd"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// ledger buffers rows and appends them to the stage as parts of at most
// every rows, never rewriting one, one part at a time and in the order the
// rows came. The add that fills a part writes it, without holding the lock:
// the other workers go on adding meanwhile, and wait only when a whole part
// piled up during the upload. Only flush makes every row durable. It is safe
// for concurrent use.
type ledger struct {
	st    *stage.Stage
	w     stage.Window
	runID string
	every int
	now   func() time.Time
	write func(ctx context.Context, key string, rows []stage.LedgerRow) error // nil: writeLedgerPart

	mu        sync.Mutex
	idle      sync.Cond         // on mu: an upload ended
	pending   []stage.LedgerRow // rows in no part yet, oldest first
	uploading []stage.LedgerRow // the rows of the part being written, nil when none
	err       error             // why the last part could not be written, until a flush succeeds
	seq       int
	written   []string // keys of the parts this run wrote
}

// add buffers a row and, once every rows are buffered or the oldest has
// waited ledgerMaxAge, writes them as a part.
// It returns why a part could not be written; the ledger keeps those rows
// for flush to write.
func (l *ledger) add(ctx context.Context, r stage.LedgerRow) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.err == nil && len(l.pending) >= l.every {
		if l.uploading == nil {
			l.uploadLocked(ctx, l.every) // a full part left by the add that waited for the last upload
			continue
		}
		l.wait() // a whole part piled up during one upload: memory holds at most two
	}
	l.pending = append(l.pending, r)
	if l.err == nil && l.uploading == nil && (len(l.pending) >= l.every || l.stale()) {
		l.uploadLocked(ctx, min(l.every, len(l.pending)))
	}
	return l.err
}

// ledgerMaxAge is how long an answer may wait for a full part: under a slow
// ERP a part is written at least this often, so the stage (and status) is
// never far behind what the ERP answered.
const ledgerMaxAge = 2 * time.Second

// stale reports whether the oldest buffered answer has waited ledgerMaxAge.
func (l *ledger) stale() bool {
	at := l.pending[0].FinishedAt
	return !at.IsZero() && l.now().Sub(at) >= ledgerMaxAge
}

// flush waits for the part being written, then writes every buffered row as
// one part; it returns once all of them are durable, or why they are not.
func (l *ledger) flush(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.uploading != nil {
		l.wait()
	}
	if len(l.pending) > 0 {
		l.uploadLocked(ctx, len(l.pending))
	}
	return l.err
}

func (l *ledger) wait() {
	if l.idle.L == nil {
		l.idle.L = &l.mu
	}
	l.idle.Wait()
}

// uploadLocked writes the oldest n buffered rows as the next part, with the
// lock released while the stage takes it. A failed part's rows go back before
// the rows buffered since, so that nothing changes order.
func (l *ledger) uploadLocked(ctx context.Context, n int) {
	rows := l.pending[:n:n]
	l.pending = append([]stage.LedgerRow(nil), l.pending[n:]...)
	l.uploading = rows
	key := stage.LedgerKey(l.w, l.now(), l.runID, l.seq)
	l.seq++
	l.mu.Unlock()
	err := l.writePart(ctx, key, rows)
	l.mu.Lock()
	l.uploading = nil
	if err != nil {
		l.pending = append(rows, l.pending...)
		l.err = fmt.Errorf("append ledger part: %w", err)
	} else {
		l.written = append(l.written, key)
		l.err = nil
	}
	if l.idle.L != nil {
		l.idle.Broadcast()
	}
}

func (l *ledger) writePart(ctx context.Context, key string, rows []stage.LedgerRow) error {
	if l.write != nil {
		return l.write(ctx, key, rows)
	}
	return writeLedgerPart(ctx, l.st, key, rows)
}

// writeLedgerPart writes rows as the ledger part key.
func writeLedgerPart(ctx context.Context, st *stage.Stage, key string, rows []stage.LedgerRow) error {
	w, err := st.NewWriter(ctx, key)
	if err != nil {
		return err
	}
	defer w.Abort()
	pw := parquet.NewGenericWriter[stage.LedgerRow](w, pqzstd.Options()...)
	if _, err := pw.Write(rows); err != nil {
		return err
	}
	if err := pw.Close(); err != nil {
		return err
	}
	return w.Close()
}

// unwritten returns a copy of the rows not yet durable: buffered, or in the
// part being written.
func (l *ledger) unwritten() []stage.LedgerRow {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append(append([]stage.LedgerRow(nil), l.uploading...), l.pending...)
}

// ledgerStates folds w's ledger into one state per idempotency key as it
// reads it, a batch of rows at a time: the window's rows are never all held.
func ledgerStates(ctx context.Context, st *stage.Stage, w stage.Window) (map[string]*docState, error) {
	f := ledgerFold{}
	_, err := eachLedgerRow(ctx, st, w, func(_ string, r *stage.LedgerRow) error {
		f.add(r)
		return nil
	})
	return f, err
}

// ledgerBatch is how many ledger rows are decoded at a time.
const ledgerBatch = 256

// eachLedgerRow calls fn with every row of every ledger part of w, in write
// order, and the key of its part, and returns the keys of the parts read.
// The row is reused after fn returns.
func eachLedgerRow(ctx context.Context, st *stage.Stage, w stage.Window, fn func(part string, r *stage.LedgerRow) error) (keys []string, err error) {
	parts, err := st.LedgerParts(ctx, w)
	if err != nil {
		return nil, fmt.Errorf("list ledger of window %s: %w", w.ID(), err)
	}
	rows := make([]stage.LedgerRow, ledgerBatch)
	for _, o := range parts {
		data, err := st.Read(ctx, o.Key) // one part: at most a flush of the ledger
		if err != nil {
			return keys, fmt.Errorf("read ledger: %w", err)
		}
		if err := eachRowOf(data, rows, func(r *stage.LedgerRow) error { return fn(o.Key, r) }); err != nil {
			return keys, fmt.Errorf("decode ledger part %s: %w", o.Key, err)
		}
		keys = append(keys, o.Key)
	}
	return keys, nil
}

// eachRowOf decodes the ledger part data into rows, a batch at a time, and
// calls fn with each.
func eachRowOf(data []byte, rows []stage.LedgerRow, fn func(r *stage.LedgerRow) error) error {
	pr := parquet.NewGenericReader[stage.LedgerRow](bytes.NewReader(data))
	defer pr.Close()
	for {
		clear(rows)
		n, err := pr.Read(rows)
		for i := range n {
			if err := fn(&rows[i]); err != nil {
				return err
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
	}
}

// docState is what the ledger says about one line, by its idempotency key:
// one post event (a document's post or repost, an application, a reversal).
//
// It is kept for every line of a window, so what only a refused or held
// line has hangs off it by pointer: a confirmed line costs a third as much.
type docState struct {
	docType   string
	zuoraID   string
	erpID     string    // set when confirmed
	lastAt    time.Time // when the last row of this key was written
	confirmed bool      // the ERP created it or already had it
	rejected  bool      // the last answer was a permanent refusal
	marked    bool      // marked transferred (Yes) in Zuora
	refused   *refusal  // the last refusal, once there was one (kept after a retry)
	held      *holdRow  // set while the last answer held the line back
}

// refusal is the ERP's last permanent refusal of a line.
type refusal struct {
	sha         payloadSum // payload digest of the refused post
	markedError bool       // marked Error in Zuora after the refusal of sha
	Refusal                // the last refusal, and when the first one came
}

// holdRow is the hold the last answer recorded: outcome is OutcomeWaiting or
// OutcomeDependencyRejected, why the message of that row.
type holdRow struct {
	outcome, why string
	since        time.Time  // the first row of that hold
	sha          payloadSum // the payload the hold was decided for
}

// refuses reports whether the ERP's standing answer refuses the payload sha.
func (s *docState) refuses(sha payloadSum) bool {
	return s.rejected && s.refused != nil && s.refused.sha == sha
}

// markedError reports whether Zuora holds Error for the refused payload.
func (s *docState) markedError() bool { return s.refused != nil && s.refused.markedError }

// markError records that Zuora holds Error for the refused payload.
func (s *docState) markError() {
	if s.refused != nil {
		f := *s.refused // a new refusal: copies of s (snapshots) keep theirs
		f.markedError = true
		s.refused = &f
	}
}

// heldOutcome is the outcome of the line's standing hold, "" when none.
func (s *docState) heldOutcome() string {
	if s.held == nil {
		return ""
	}
	return s.held.outcome
}

// refusedOrHeld reports whether the line's standing answer, not a
// confirmation, is a refusal or a hold: what only the payload held now can
// turn into a verdict (see EachVerdict).
func (s *docState) refusedOrHeld() bool { return !s.confirmed && (s.rejected || s.held != nil) }

// heldFor reports whether the line's standing hold was decided for payload sha.
func (s *docState) heldFor(sha payloadSum) bool { return s.held != nil && s.held.sha == sha }

// ledgerFold is the ledger folded into one state per idempotency key. A
// confirmation is final; a rejection counts only while no later post
// superseded it.
type ledgerFold map[string]*docState

// add folds the next row of the ledger into its line's state, which it returns.
func (f ledgerFold) add(r *stage.LedgerRow) *docState {
	s := f[r.IdempotencyKey]
	if s == nil {
		s = &docState{docType: unique.Make(r.DocType).Value(), zuoraID: r.ZuoraID}
		key := r.IdempotencyKey
		if key == r.ZuoraID {
			key = s.zuoraID // share the bytes: the key is usually the id
		}
		f[key] = s
	}
	switch r.Action {
	case stage.ActionPost:
		s.foldPost(r)
	case stage.ActionMark:
		s.foldMark(r)
	}
	s.lastAt = r.FinishedAt
	return s
}

// foldPost folds one post row of the ledger into s.
func (s *docState) foldPost(r *stage.LedgerRow) {
	held := r.Outcome == stage.OutcomeWaiting || r.Outcome == stage.OutcomeDependencyRejected
	if !held {
		s.held = nil
	}
	switch {
	case r.Outcome == stage.OutcomeCreated || r.Outcome == stage.OutcomeDuplicate:
		s.confirm(r.ERPID)
	case r.Outcome == stage.OutcomeTransient:
		s.rejected = false
	case s.confirmed:
		// A confirmation is final: a later refusal or hold does not undo it.
	case r.Outcome == stage.OutcomeRejected:
		s.refuse(sumOf(r.PayloadSHA256), int(r.HTTPStatus), r.Message, r.FinishedAt)
	case held:
		s.hold(r.Outcome, r.Message, sumOf(r.PayloadSHA256), r.FinishedAt)
	}
}

// foldMark folds one write-back row of the ledger into s.
func (s *docState) foldMark(r *stage.LedgerRow) {
	switch r.Outcome {
	case stage.OutcomeMarked:
		s.marked = true
	case stage.OutcomeMarkedError:
		if s.refused != nil {
			f := *s.refused
			f.markedError = s.refuses(sumOf(r.PayloadSHA256))
			s.refused = &f
		}
	}
}

// confirm records that the ERP holds the line as erpID.
func (s *docState) confirm(erpID string) {
	s.confirmed, s.erpID, s.rejected = true, erpID, false
}

// refuse records the ERP's permanent refusal of the payload sha; an Error
// mark in Zuora counts only for the payload it was made for.
func (s *docState) refuse(sha payloadSum, status int, message string, at time.Time) {
	f := &refusal{} // a new refusal: copies of s (snapshots) keep theirs
	if s.refused != nil {
		*f = *s.refused
	}
	s.refused = f
	if f.sha != sha {
		f.markedError = false
	}
	s.rejected, f.sha = true, sha
	if f.First.IsZero() {
		f.First = at
	}
	f.HTTPStatus, f.Message, f.Last = status, message, at
}

// hold records that the payload sha is held back (outcome, why), since at
// when the hold is new.
func (s *docState) hold(outcome, why string, sha payloadSum, at time.Time) {
	since := at
	if s.held != nil && s.held.outcome == outcome {
		since = s.held.since
	}
	s.held = &holdRow{outcome: outcome, why: why, since: since, sha: sha}
}
