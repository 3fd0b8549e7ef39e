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
	parts, err = EachVerdict(ctx, st, w, applied, all, nil, func(v Verdict) error {
		vs = append(vs, v)
		return nil
	})
	return vs, parts, err
}

// EachVerdict is Verdicts calling fn with each verdict, at most one per
// line, instead of returning them all: a window's confirmations are most
// of its lines. read, when not nil, is what the load run of w that just
// ended read of the window's ready documents: the refused and held lines
// are taken from it instead of reading the documents again, when it is of
// the documents the window holds now and names every one of them.
func EachVerdict(ctx context.Context, st *stage.Stage, w stage.Window, applied map[string]bool, all bool, read *Read, fn func(Verdict) error) (parts []string, err error) {
	state := ledgerFold{}
	// The ids whose verdicts are asked for: those with a row in a part not
	// applied yet; nil when that is every id (all, or nothing applied
	// before: a window's first load, the most common), where a set of every
	// id would double the fold for nothing.
	var touched map[string]bool
	if !all && len(applied) > 0 {
		touched = map[string]bool{}
	}
	asked := func(id string) bool { return touched == nil || touched[id] }
	parts, err = eachLedgerRow(ctx, st, w, func(part string, r *stage.LedgerRow) error {
		s := state.add(r)
		if touched != nil && !applied[part] {
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
		case !asked(s.zuoraID):
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
	keep := func(d *document) bool {
		s := state[d.IdempotencyKey]
		return s != nil && s.refusedOrHeld() && asked(d.ZuoraID)
	}
	docs, err := read.linesOf(ctx, st, w, state, keep)
	if err != nil {
		return nil, fmt.Errorf("verdicts of window %s: %w", w.ID(), err)
	}
	if docs == nil {
		if docs, err = readDocumentsWhere(ctx, st, w, keep); err != nil {
			return nil, fmt.Errorf("verdicts of window %s: %w", w.ID(), err)
		}
	}
	for _, d := range docs {
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

// Read is what a load run read of its window's ready documents that its
// verdicts need afterwards: the checksum of the documents it verified, and
// the lines it left refused or held back, in file order. Run fills it in
// (Options.Read); EachVerdict takes it instead of reading and decoding the
// documents a second time.
type Read struct {
	documents string     // the key and checksum of the ready documents read
	lines     []document // the lines left unconfirmed, refused or held, in file order
}

// readOf is what a Read keeps of the lines of ready once the run settled
// them into state; nothing when ready had no checksum to verify.
func readOf(ready *readyDocuments, state map[string]*docState) (Read, error) {
	if ready.sum == "" {
		return Read{}, nil
	}
	out := Read{documents: ready.key + "@" + ready.sum}
	err := ready.docs.each(func(_ int, d *document) error {
		if s := state[d.IdempotencyKey]; s != nil && s.refusedOrHeld() {
			out.lines = append(out.lines, *d)
		}
		return nil
	})
	return out, err
}

// linesOf returns, of the lines r holds, those keep accepts, when r is of
// the ready documents w's transform manifest commits now and holds every
// line of the ledger fold state that can be refused or held. It returns
// nil, nil when the documents must be read instead.
func (r *Read) linesOf(ctx context.Context, st *stage.Stage, w stage.Window, state ledgerFold, keep func(d *document) bool) ([]document, error) {
	if r == nil || r.documents == "" {
		return nil, nil
	}
	m, found, err := st.ReadTransform(ctx, w)
	if err != nil {
		return nil, fmt.Errorf("read transform manifest: %w", err)
	}
	if !found || m.Documents.SHA256 == "" || m.Documents.Key+"@"+m.Documents.SHA256 != r.documents {
		return nil, nil // transformed again since, or a manifest without a checksum
	}
	held := map[string]bool{}
	for _, d := range r.lines {
		held[d.IdempotencyKey] = true
	}
	for key, s := range state {
		if s.refusedOrHeld() && !held[key] {
			return nil, nil // a line the run did not leave so: another writer; read them
		}
	}
	out := []document{}
	for _, d := range r.lines {
		if keep(&d) {
			out = append(out, d)
		}
	}
	return out, nil
}
