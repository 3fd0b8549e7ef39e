package load

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

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
	for _, docType := range stage.Documents() {
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
