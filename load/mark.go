package load

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// markAll writes back to Zuora in batches of MarkBatch, several at once, and
// records each result: TransferredToAccounting = Yes on every
// confirmed, unmarked document (a post or a repost), and with MarkRefused
// Error on every document whose current payload the ERP refused for good and
// that is not marked so yet. Applications and reversals have no flag of their
// own. Call it only once the ledger holds every answer.
//
// The Yes batches go out as the scan of the window's lines fills them, each
// type's last, partial one after the scan; the Error marks, one per refused
// document, are gathered first, since another window may have marked them.
func (r *run) markAll(ctx context.Context, docs *index) error {
	m := r.newMarker(ctx)
	yes := map[stage.DocType][]*document{}
	refused := map[todoKey][]*document{}
	err := docs.each(func(_ int, d *document) error {
		r.mu.Lock()
		s := r.state[d.IdempotencyKey]
		r.mu.Unlock()
		switch {
		case s == nil || !d.markable():
		case s.confirmed && !s.marked:
			yes[d.DocType] = append(yes[d.DocType], d)
			if len(yes[d.DocType]) == MarkBatch {
				m.send(d.DocType, zuora.TransferredYes, yes[d.DocType])
				yes[d.DocType] = nil
			}
		case r.opts.MarkRefused && !s.confirmed && s.refuses(d.sha) && !s.markedError():
			k := todoKey{d.DocType, zuora.TransferredError}
			refused[k] = append(refused[k], d)
		}
		if m.broken.Load() {
			return errStopScan
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return errors.Join(err, m.wait())
	}
	for _, docType := range stage.Documents() {
		m.send(docType, zuora.TransferredYes, yes[docType])
	}
	if err := r.markedElsewhere(ctx, refused); err != nil {
		return errors.Join(err, m.wait())
	}
	for _, docType := range stage.Documents() {
		for batch := range slices.Chunk(refused[todoKey{docType, zuora.TransferredError}], MarkBatch) {
			m.send(docType, zuora.TransferredError, batch)
		}
	}
	return m.wait()
}

// marker sends write-back batches, up to MarkConcurrency at once (the Zuora
// client bounds its requests in flight besides); after a call fails no
// further batch starts, and the batches in flight finish and are recorded.
type marker struct {
	r      *run
	ctx    context.Context
	g      errgroup.Group
	failed atomic.Int64
	broken atomic.Bool
}

func (r *run) newMarker(ctx context.Context) *marker {
	m := &marker{r: r, ctx: ctx}
	m.g.SetLimit(r.opts.markConcurrency())
	return m
}

// send starts the call that sets value on batch, of type docType, once a
// call is free; nothing once a call failed or for an empty batch.
func (m *marker) send(docType stage.DocType, value string, batch []*document) {
	if len(batch) == 0 || m.broken.Load() {
		return
	}
	m.g.Go(func() error {
		f, err := m.r.markBatch(m.ctx, docType, value, batch)
		m.failed.Add(int64(f))
		if err != nil {
			m.broken.Store(true)
			return fmt.Errorf("write-back to Zuora failed: %w", err)
		}
		return nil
	})
}

// wait waits for the calls sent and says how the write-back went.
func (m *marker) wait() error {
	if err := m.g.Wait(); err != nil {
		return err
	}
	if n := m.failed.Load(); n > 0 {
		return fmt.Errorf("zuora refused to mark %d documents (see the ledger's mark_failed rows)", n)
	}
	return nil
}

// todoKey is one batch's type and value.
type todoKey struct {
	docType stage.DocType
	value   string
}

// markedElsewhere takes out of todo the Error marks that another window's
// ledger says Zuora holds already (Dependencies.ErrorMarked), recording each
// as marked without a call: the document is the echo of that mark.
func (r *run) markedElsewhere(ctx context.Context, todo map[todoKey][]*document) error {
	if r.opts.Dependencies == nil {
		return nil
	}
	var ids []string
	for k, ds := range todo {
		if k.value == zuora.TransferredError {
			for _, d := range ds {
				ids = append(ids, d.ZuoraID)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	marked, err := r.opts.Dependencies.ErrorMarked(ctx, r.w, ids)
	if err != nil {
		return fmt.Errorf("read the write-backs of other windows: %w", err)
	}
	for k, ds := range todo {
		if k.value != zuora.TransferredError {
			continue
		}
		keep := ds[:0]
		for _, d := range ds {
			in, ok := marked[d.ZuoraID]
			if !ok {
				keep = append(keep, d)
				continue
			}
			now := time.Now().UTC()
			r.mu.Lock()
			s := r.state[d.IdempotencyKey]
			s.markError()
			erpID := s.erpID
			r.mu.Unlock()
			row := stage.LedgerRow{RunID: r.opts.RunID, DocType: string(d.DocType), ZuoraID: d.ZuoraID, IdempotencyKey: d.IdempotencyKey,
				Action: stage.ActionMark, Outcome: stage.OutcomeMarkedError, ERPID: erpID,
				Message:  "Zuora holds TransferredToAccounting = Error already: window " + in + " marked it; not marked again",
				Currency: d.Currency, Amount: d.fixed, PayloadSHA256: d.sha.String(), StartedAt: now, FinishedAt: now}
			if err := r.ledger.add(ctx, row); err != nil {
				return err
			}
		}
		todo[k] = keep
	}
	return nil
}

// markBatch sets value on one batch of one type; it returns how many objects
// Zuora refused, or an error when the call itself failed.
func (r *run) markBatch(ctx context.Context, docType stage.DocType, value string, batch []*document) (int, error) {
	object := docType.MarkObject()
	ids := make([]string, len(batch))
	for i, d := range batch {
		ids[i] = d.ZuoraID
	}
	started := time.Now().UTC()
	results, callErr := r.zuora.SetTransferred(ctx, object, value, ids)
	finished := time.Now().UTC()
	byID := make(map[string]zuora.MarkResult, len(results))
	for _, res := range results {
		byID[res.ID] = res
	}
	done := stage.OutcomeMarked
	if value == zuora.TransferredError {
		done = stage.OutcomeMarkedError
	}
	var failed int
	for _, d := range batch {
		res, ok := byID[d.ZuoraID]
		row := stage.LedgerRow{
			RunID: r.opts.RunID, DocType: string(d.DocType), ZuoraID: d.ZuoraID, IdempotencyKey: d.IdempotencyKey,
			Action: stage.ActionMark, Outcome: done, Attempts: int32(res.Attempts),
			Currency: d.Currency, Amount: d.fixed, PayloadSHA256: d.sha.String(), StartedAt: started, FinishedAt: finished,
		}
		r.mu.Lock()
		s := r.state[d.IdempotencyKey]
		row.ERPID = s.erpID
		switch {
		case callErr != nil:
			row.Outcome, row.Message = stage.OutcomeMarkFailed, callErr.Error()
		case !ok:
			row.Outcome, row.Message = stage.OutcomeMarkFailed, "zuora returned no result for this id"
		case !res.OK:
			row.Outcome, row.Message = stage.OutcomeMarkFailed, strings.TrimPrefix(res.Code+": "+res.Message, ": ")
		case value == zuora.TransferredError:
			s.markError()
		default:
			s.marked = true
		}
		r.mu.Unlock()
		if row.Outcome == stage.OutcomeMarkFailed {
			failed++
			if value != zuora.TransferredYes {
				row.Message = "TransferredToAccounting = " + value + ": " + row.Message
			}
			r.log.Warn("mark failed", "doc_type", d.DocType, "doc_id", d.ZuoraID, "value", value, "message", row.Message)
		}
		if err := r.ledger.add(ctx, row); err != nil {
			return failed, err
		}
	}
	if callErr != nil {
		return failed, fmt.Errorf("mark %d %s objects %s: %w", len(batch), object, value, callErr)
	}
	return failed, nil
}
