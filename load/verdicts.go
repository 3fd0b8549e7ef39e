package load

import (
	"context"
	"fmt"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Verdict is what a window's ledger says the ERP decided about one document:
// it holds it (Confirmed), or it refused the payload the window holds now.
type Verdict struct {
	DocType   stage.DocType
	ZuoraID   string
	Confirmed bool
	Refusal   *Refusal // set when the ERP's standing answer refuses the current payload
	// Held is set when the load held the current payload back: waiting for, or
	// not posted because of, what it depends on.
	Held *Held
}

// Held is a line the load held back (OutcomeWaiting or
// OutcomeDependencyRejected), why, and when the hold first and last held.
type Held struct {
	Outcome     string
	Message     string
	First, Last time.Time
}

// Refusal is the ERP's last permanent refusal of a document (400, 422 or 409
// with another body) and when the window's ledger first and last recorded one.
type Refusal struct {
	HTTPStatus  int
	Message     string
	First, Last time.Time
}

// Verdicts reads w's ledger and returns the verdicts of the documents that
// have rows in a part not in applied, or of every document when all is set;
// parts are the keys of every ledger part read. A refusal counts only for a
// document of the window's current ready documents whose payload is the one
// refused; a confirmation counts wherever it is.
func Verdicts(ctx context.Context, st *stage.Stage, w stage.Window, applied map[string]bool, all bool) (vs []Verdict, parts []string, err error) {
	parts, err = EachVerdict(ctx, st, w, applied, all, func(v Verdict) error {
		vs = append(vs, v)
		return nil
	})
	return vs, parts, err
}

// EachVerdict is Verdicts calling fn with each verdict, at most one per
// line, instead of returning them all: a window's confirmations are most
// of its lines.
func EachVerdict(ctx context.Context, st *stage.Stage, w stage.Window, applied map[string]bool, all bool, fn func(Verdict) error) (parts []string, err error) {
	state := ledgerFold{}
	touched := map[string]bool{}
	parts, err = eachLedgerRow(ctx, st, w, func(part string, r *stage.LedgerRow) error {
		s := state.add(r)
		if !applied[part] {
			touched[s.zuoraID] = true // the state's copy of the id: the row's is reused
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verdicts of window %s: %w", w.ID(), err)
	}
	refused := false
	for _, s := range state {
		switch {
		case !all && !touched[s.zuoraID]:
		case s.confirmed:
			if err := fn(Verdict{DocType: stage.DocType(s.docType), ZuoraID: s.zuoraID, Confirmed: true}); err != nil {
				return nil, err
			}
		case s.rejected, s.held != nil:
			refused = true
		}
	}
	if !refused {
		return parts, nil
	}
	// Only the lines the ledger refused or held can have such a verdict.
	ready, err := readDocumentsWhere(ctx, st, w, func(d *document) bool {
		s := state[d.IdempotencyKey]
		return s != nil && !s.confirmed && (s.rejected || s.held != nil) && (all || touched[d.ZuoraID])
	})
	if err != nil {
		return nil, fmt.Errorf("verdicts of window %s: %w", w.ID(), err)
	}
	for _, d := range ready.docs {
		s := state[d.IdempotencyKey]
		var v *Verdict
		switch {
		case s.heldFor(d.sha):
			v = &Verdict{DocType: d.DocType, ZuoraID: d.ZuoraID,
				Held: &Held{Outcome: s.held.outcome, Message: s.held.why, First: s.held.since, Last: s.lastAt}}
		case s.refuses(d.sha):
			f := s.refused.Refusal
			v = &Verdict{DocType: d.DocType, ZuoraID: d.ZuoraID, Refusal: &f}
		}
		if v != nil {
			if err := fn(*v); err != nil {
				return nil, err
			}
		}
	}
	return parts, nil
}

// Unsettled returns, by Zuora id, the type of each document line of w that
// the ERP has neither confirmed nor refused with its current payload: a post
// or repost still to come, which applications of other windows wait for. A
// window not transformed has none.
func Unsettled(ctx context.Context, st *stage.Stage, w stage.Window) (map[string]stage.DocType, error) {
	if _, found, err := st.ReadTransform(ctx, w); err != nil || !found {
		return nil, err
	}
	state, err := ledgerStates(ctx, st, w)
	if err != nil {
		return nil, fmt.Errorf("unsettled documents of window %s: %w", w.ID(), err)
	}
	out := map[string]stage.DocType{}
	_, err = readDocumentsWhere(ctx, st, w, func(d *document) bool {
		s := state[d.IdempotencyKey]
		if d.DocType.IsDocument() && (s == nil || !s.confirmed && !s.refuses(d.sha)) {
			out[d.ZuoraID] = d.DocType
		}
		return false // only the map is kept
	})
	if err != nil {
		return nil, fmt.Errorf("unsettled documents of window %s: %w", w.ID(), err)
	}
	return out, nil
}
