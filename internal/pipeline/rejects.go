package pipeline

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/extract"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/load"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// The outstanding rejects of every window live in one index in the stage
// (stage.RejectIndexKey), kept up to date by each committed transform, so that
// a run re-checks them against Zuora and reports them without reading every
// window's files. docs/design.md, "Rejects that come back", is the contract.

// rejectBook is the reject index being read or changed.
type rejectBook struct {
	byKey        map[string]*stage.OutstandingReject // doc_type/zuora_id
	pending      []string
	loadsIndexed bool
}

func bookKey(docType, id string) string { return docType + "/" + id }

func newBook(idx stage.RejectIndex) *rejectBook {
	b := &rejectBook{byKey: map[string]*stage.OutstandingReject{}, pending: idx.Pending, loadsIndexed: idx.LoadsIndexed}
	for i := range idx.Rejects {
		r := &idx.Rejects[i] // the book owns idx's rejects: no copy
		b.byKey[bookKey(r.DocType, r.ZuoraID)] = r
	}
	return b
}

func (b *rejectBook) index(now time.Time) stage.RejectIndex {
	idx := stage.RejectIndex{UpdatedAt: now.UTC(), Pending: b.pending, LoadsIndexed: b.loadsIndexed,
		Rejects: make([]stage.OutstandingReject, 0, len(b.byKey))}
	for _, r := range b.byKey {
		idx.Rejects = append(idx.Rejects, *r)
	}
	return idx
}

// loadRejects reads the reject index. A stage that has none yet (new, or
// staged before the index existed) gets one built from every window's
// committed transform and load; an index written before the ERP's refusals
// were indexed gets those from every window's load. Either is written when
// persist is set.
func (p *Pipeline) loadRejects(ctx context.Context, persist bool) (*rejectBook, error) {
	b, _, err := p.readRejects(ctx, persist)
	return b, err
}

// bookOrigin says what the stage held when a book was read: found, no
// index at all (the book was built from every window); loadsIndexed, an
// index with the ERP's refusals in it (else they were added from every
// window's ledger).
type bookOrigin struct{ found, loadsIndexed bool }

// readRejects is loadRejects, saying as well what the stage held before.
func (p *Pipeline) readRejects(ctx context.Context, persist bool) (*rejectBook, bookOrigin, error) {
	idx, found, err := p.st.ReadRejectIndex(ctx)
	if err != nil {
		return nil, bookOrigin{}, err
	}
	origin := bookOrigin{found: found, loadsIndexed: found && idx.LoadsIndexed}
	b := newBook(idx)
	if origin.loadsIndexed {
		return b, origin, nil
	}
	if err := p.completeRejects(ctx, b, found, persist); err != nil {
		return nil, origin, err
	}
	return b, origin, nil
}

// completeRejects adds to b, read from an index without the ERP's refusals
// (or from none, found false), those of every window's load (and, without an
// index, every window's transform), and writes it when persist is set.
func (p *Pipeline) completeRejects(ctx context.Context, b *rejectBook, found, persist bool) error {
	ws, err := p.st.Windows(ctx)
	if err != nil {
		return err
	}
	transformsIndexed := map[stage.Window]stage.TransformIndexed{}
	loadsIndexed := map[stage.Window]stage.LoadIndexed{}
	for _, w := range ws { // in window order: a later window's answer wins
		tm, ok, err := p.st.ReadTransform(ctx, w)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if !found {
			if err := p.applyTransform(ctx, b, w, tm); err != nil {
				return err
			}
			transformsIndexed[w] = indexed(tm)
		}
		lm, ok, err := p.st.ReadLoad(ctx, w)
		if err != nil {
			return err
		} else if ok {
			if loadsIndexed[w], err = p.applyLoad(ctx, b, w, tm, lm, stage.LoadIndexed{}, nil); err != nil {
				return err
			}
		}
	}
	b.loadsIndexed = true
	if !persist {
		return nil
	}
	if err := p.saveRejects(ctx, b); err != nil {
		return err
	}
	for w, m := range transformsIndexed {
		if err := p.st.WriteTransformIndexed(ctx, w, m); err != nil {
			return err
		}
	}
	for w, m := range loadsIndexed {
		if err := p.st.WriteLoadIndexed(ctx, w, m); err != nil {
			return err
		}
	}
	what := "reject index built from every window"
	if found {
		what = "the ERP's refusals added to the reject index from every window's ledger"
	}
	p.cfg.Logger.Info(what, "windows", len(ws), "outstanding", len(b.byKey))
	return nil
}

// rejectsBy maps, with keep, the outstanding rejects of the index to what a
// caller keeps of each, by Zuora id. A complete index is read one reject at a
// time, so that only what is kept is held; one still to be completed (none
// yet, or written before the ERP's refusals were indexed) is completed in
// memory first, as loadRejects does.
func rejectsBy[T any](ctx context.Context, p *Pipeline, keep func(r *stage.OutstandingReject) (T, bool)) (map[string]T, error) {
	out := map[string]T{}
	put := func(r *stage.OutstandingReject) error {
		if v, ok := keep(r); ok {
			out[r.ZuoraID] = v
		}
		return nil
	}
	head, found, err := p.st.EachReject(ctx, put)
	if err != nil || found && head.LoadsIndexed {
		return out, err
	}
	b, err := p.loadRejects(ctx, false)
	if err != nil {
		return nil, err
	}
	clear(out)
	for _, r := range b.byKey {
		_ = put(r)
	}
	return out, nil
}

func (p *Pipeline) saveRejects(ctx context.Context, b *rejectBook) error {
	return p.st.WriteRejectIndex(ctx, b.index(p.cfg.Now()))
}

// indexRejects applies w's committed transform to the reject index, once per
// transform commit (a record beside the window's manifests says which one the
// index reflects, so a crash between the two is repaired by the next call).
func (p *Pipeline) indexRejects(ctx context.Context, w stage.Window) error {
	fail := func(err error) error {
		return &StepError{Step: "transform", Window: w, Err: fmt.Errorf("window %s: record its rejects in the reject index: %w", w.ID(), err),
			Kept: "the window's committed documents; the index is brought up to date by the next run", Resume: Step{Command: "run", Until: p.cfg.Until}}
	}
	tm, ok, err := p.st.ReadTransform(ctx, w)
	if err != nil || !ok {
		return err
	}
	last, err := p.st.ReadTransformIndexed(ctx, w)
	if err != nil {
		return fail(err)
	}
	if last.Of(tm) {
		return nil
	}
	b, origin, err := p.readRejects(ctx, true)
	if err != nil {
		return fail(err)
	}
	if !origin.found {
		return nil // built just now, from every window's transform including this one
	}
	if err := p.applyTransform(ctx, b, w, tm); err != nil {
		return fail(err)
	}
	if err := p.saveRejects(ctx, b); err != nil {
		return fail(err)
	}
	if err := p.st.WriteTransformIndexed(ctx, w, indexed(tm)); err != nil {
		return fail(err)
	}
	return nil
}

// indexed names the transform that committed tm.
func indexed(tm stage.TransformManifest) stage.TransformIndexed {
	return stage.TransformIndexed{RunID: tm.RunID, CommittedAt: tm.CommittedAt}
}

// indexLoad applies w's last load to the reject index, once per load (a
// record beside the window's manifests names the load and the ledger parts
// applied, so a crash between the two is repaired by the next call). read
// is what the load that just ended read of the window's documents (nil
// when none did): the verdicts take the refused and held lines from it.
func (p *Pipeline) indexLoad(ctx context.Context, w stage.Window, read *load.Read) error {
	lm, ok, err := p.st.ReadLoad(ctx, w)
	if err != nil || !ok {
		return err
	}
	last, err := p.st.ReadLoadIndexed(ctx, w)
	if err != nil {
		return err
	}
	if last.Of(lm) {
		return nil
	}
	b, origin, err := p.readRejects(ctx, true)
	if err != nil {
		return err
	}
	if !origin.loadsIndexed {
		return nil // built just now, from every window's load including this one
	}
	tm, ok, err := p.st.ReadTransform(ctx, w)
	if err != nil || !ok {
		return err
	}
	applied, err := p.applyLoad(ctx, b, w, tm, lm, last, read)
	if err != nil {
		return err
	}
	if err := p.saveRejects(ctx, b); err != nil {
		return err
	}
	return p.st.WriteLoadIndexed(ctx, w, applied)
}

// applyLoad folds what w's ledger says of the documents of load lm into b and
// returns the record that says so: a document the ERP confirmed resolves its
// reject in any window; one whose current payload the ERP refused becomes w's
// ERP_REJECTED reject, unless the index holds a newer version. It reads the
// documents with rows in ledger parts that last does not list, or every one
// when the window was mapped again since last.
func (p *Pipeline) applyLoad(ctx context.Context, b *rejectBook, w stage.Window, tm stage.TransformManifest, lm stage.LoadManifest, last stage.LoadIndexed, read *load.Read) (stage.LoadIndexed, error) {
	rec := stage.LoadIndexed{RunID: lm.RunID, UpdatedAt: lm.UpdatedAt, Transform: indexed(tm)}
	all := !last.Transform.Of(tm)
	applied := map[string]bool{}
	for _, k := range last.Parts {
		applied[k] = true
	}
	refused := map[string]load.Verdict{}
	parts, err := load.EachVerdict(ctx, p.st, w, applied, all, read, func(v load.Verdict) error {
		b.settle(v, refused)
		return nil
	})
	if err != nil {
		return rec, err
	}
	rec.Parts = parts
	if len(refused) == 0 {
		return rec, nil
	}
	// The verdicts' fold of the ledger, a state per line, is garbage now:
	// give its pages back before DuckDB takes its own beside them.
	betweenSteps()
	db, err := p.windowDB(ctx, w, tm)
	if err != nil {
		return rec, err
	}
	defer db.Close()
	q := `SELECT d.doc_type, d.zuora_id, coalesce(d.number, ''), coalesce(d.customer, ''), coalesce(d.currency, ''),
    CAST(d.amount AS VARCHAR), '', '', l.updated_date, coalesce(l.account_id, ''), coalesce(l.account_number, ''), coalesce(l.erp_account_id, '')
FROM documents AS d LEFT JOIN latest AS l ON l.doc_type = d.doc_type AND l.id = d.zuora_id
WHERE d.zuora_id IN (`
	listed := 0
	put := func(_ []string, row warehouse.Row) error {
		key := bookKey(row.Values[0], row.Values[1])
		v, ok := refused[key]
		if !ok {
			return nil
		}
		listed++
		r, err := outstandingRow(row, 0)
		if err != nil {
			return err
		}
		b.putRefused(key, refusedReject(r, w, v))
		return nil
	}
	// Only the refused documents' rows are joined with their latest
	// versions, in one scan of the window's documents.
	ids := make([]string, 0, len(refused))
	for _, v := range refused {
		ids = append(ids, warehouse.Literal(v.ZuoraID))
	}
	if err := db.Each(ctx, q+strings.Join(slices.Compact(slices.Sorted(slices.Values(ids))), ", ")+")", put); err != nil {
		return rec, err
	}
	if listed != len(refused) {
		return rec, fmt.Errorf("the ledger refuses %d ready documents, the documents table lists %d of them", len(refused), listed)
	}
	return rec, nil
}

// settle resolves in b the reject verdict v settles (a document the ERP
// confirmed; a dependency_rejected line now only waiting), or adds v to
// refused, by book key.
func (b *rejectBook) settle(v load.Verdict, refused map[string]load.Verdict) {
	key := bookKey(string(v.DocType), v.ZuoraID)
	switch {
	case v.Confirmed:
		delete(b.byKey, key)
	case v.Held != nil && v.Held.Outcome == stage.OutcomeWaiting:
		// Held back on what another window holds: no longer rejected, if it was.
		if old := b.byKey[key]; old != nil && old.ReasonCode == stage.ReasonDependencyRejected {
			delete(b.byKey, key)
		}
	default:
		refused[key] = v
	}
}

// refusedReject is r, a document of w, as the reject verdict v makes it:
// ERP_REJECTED with the ERP's answer, or DEPENDENCY_REJECTED with the hold's.
func refusedReject(r stage.OutstandingReject, w stage.Window, v load.Verdict) stage.OutstandingReject {
	r.Window = w.ID()
	if f := v.Refusal; f != nil {
		r.ReasonCode, r.ERPStatus = stage.ReasonERPRejected, f.HTTPStatus
		r.Message = fmt.Sprintf("the ERP answered %d: %s", f.HTTPStatus, f.Message)
		r.FirstSeen, r.LastSeen = f.First.UTC(), f.Last.UTC()
		return r
	}
	h := v.Held
	r.ReasonCode, r.Message = stage.ReasonDependencyRejected, h.Message
	r.FirstSeen, r.LastSeen = h.First.UTC(), h.Last.UTC()
	return r
}

// putRefused makes r the outstanding reject of key unless the index holds a
// newer version (rejected in a later window); it keeps the first sighting,
// and a re-check's result of the same version in the same window.
func (b *rejectBook) putRefused(key string, r stage.OutstandingReject) {
	if old := b.byKey[key]; old != nil {
		if !atLeast(r, *old) {
			return
		}
		if old.FirstSeen.Before(r.FirstSeen) {
			r.FirstSeen = old.FirstSeen
		}
		if old.Window == r.Window && sameVersion(r.Updated, old.Updated) {
			r.Checked, r.Note = old.Checked, old.Note
			if old.LastSeen.After(r.LastSeen) {
				r.LastSeen = old.LastSeen
			}
		}
	}
	b.byKey[key] = &r
}

// applyTransform folds what w's transform decided into b: a reject of a version
// at least as new as the index's becomes the outstanding one; a skipped
// document resolves the same or an older one, and so does a ready one, unless
// the ERP refused it: then only a load decides (docs/design.md).
func (p *Pipeline) applyTransform(ctx context.Context, b *rejectBook, w stage.Window, tm stage.TransformManifest) error {
	db, err := p.windowDB(ctx, w, tm)
	if err != nil {
		return err
	}
	defer db.Close()
	q := `WITH q AS (SELECT doc_type, doc_key, updated_date FROM quarantine
      QUALIFY row_number() OVER (PARTITION BY doc_type, doc_key ORDER BY updated_date DESC NULLS LAST, quarantined_at DESC) = 1),
outs AS (
    SELECT 'rejected' AS outcome, doc_type, zuora_id, number, customer, currency, amount, reason_code, message FROM rejects
    UNION ALL SELECT 'skipped', doc_type, zuora_id, number, customer, currency, amount, reason_code, message FROM skipped
    UNION ALL SELECT 'ready', doc_type, zuora_id, number, customer, currency, amount, NULL, NULL FROM documents)
SELECT o.outcome, o.doc_type, o.zuora_id, coalesce(o.number, ''), coalesce(o.customer, ''), coalesce(o.currency, ''),
    CAST(o.amount AS VARCHAR), coalesce(o.reason_code, ''), coalesce(o.message, ''),
    CASE WHEN o.reason_code = ` + warehouse.Literal(stage.ReasonMalformed) + ` THEN q.updated_date ELSE coalesce(l.updated_date, q.updated_date) END,
    coalesce(l.account_id, ''), coalesce(l.account_number, ''), coalesce(l.erp_account_id, '')
FROM outs AS o
LEFT JOIN latest AS l ON l.doc_type = o.doc_type AND l.id = o.zuora_id
LEFT JOIN q ON q.doc_type = o.doc_type AND q.doc_key = o.zuora_id`
	seen := tm.CommittedAt.UTC() // when the transform decided
	if seen.IsZero() {
		seen = p.cfg.Now().UTC()
	}
	noID := map[string]string{} // doc_type/number → key, of quarantined records without id
	for k, r := range b.byKey {
		if !r.Recheckable() && r.Number != "" {
			noID[bookKey(r.DocType, r.Number)] = k
		}
	}
	return db.Each(ctx, q, func(_ []string, row warehouse.Row) error {
		r, err := outstandingRow(row, 1)
		if err != nil {
			return err
		}
		r.Window, r.FirstSeen, r.LastSeen = w.ID(), seen, seen
		key := bookKey(r.DocType, r.ZuoraID)
		old := b.byKey[key]
		switch outcome := row.Values[0]; {
		case outcome == "rejected":
			if old != nil && !atLeast(r, *old) {
				return nil // the index holds a newer version, rejected in a later window
			}
			if old != nil {
				r.FirstSeen = old.FirstSeen
				if old.Window == r.Window && sameVersion(r.Updated, old.Updated) {
					r.Checked, r.Note = old.Checked, old.Note
				}
			}
			b.byKey[key] = &r
			return nil
		case old == nil || !atLeast(r, *old):
		case outcome == "ready" && old.ReasonCode == stage.ReasonERPRejected:
			// Mapped again, not yet posted: the ERP's refusal stands until a load's ledger says otherwise.
		default:
			delete(b.byKey, key)
		}
		if k, ok := noID[bookKey(r.DocType, r.Number)]; ok && r.Number != "" && b.byKey[k] != nil && r.Window >= b.byKey[k].Window {
			delete(b.byKey, k) // the record Zuora sent without an id came back intact
			delete(noID, bookKey(r.DocType, r.Number))
		}
		return nil
	})
}

// outstandingRow reads the columns doc_type, zuora_id, number, customer,
// currency, amount, reason_code, message, updated_date, account_id,
// account_number and erp_account_id of row, from column at on.
func outstandingRow(row warehouse.Row, at int) (stage.OutstandingReject, error) {
	v := row.Values[at:]
	null := row.Null[at:]
	r := stage.OutstandingReject{DocType: v[0], ZuoraID: v[1], Number: v[2], Customer: v[3], Currency: v[4],
		ReasonCode: v[6], Message: v[7], Account: stage.Account{ID: v[9], Number: v[10], ERPID: v[11]}}
	if !null[5] {
		a, err := money.Parse(v[5])
		if err != nil {
			return r, err
		}
		r.Amount = &a
	}
	if !null[8] {
		t, err := time.Parse(time.RFC3339Nano, v[8])
		if err != nil {
			return r, fmt.Errorf("updated_date %q: %w", v[8], err)
		}
		r.Updated = &t
	}
	return r, nil
}

// windowDB opens a warehouse with views over w's raw tables (raw_<table>),
// quarantine, the outputs of its transform tm (rejects, skipped, documents),
// and latest: the doc_type, id, updated_date, rechecked_at and account columns
// of the latest version of every document header the window staged.
func (p *Pipeline) windowDB(ctx context.Context, w stage.Window, tm stage.TransformManifest) (db *warehouse.DB, err error) {
	em, _, err := p.st.ReadExtract(ctx, w)
	if err != nil {
		return nil, err
	}
	db, err = warehouse.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	view := func(name, table string, files ...stage.ObjectInfo) error {
		var srcs []warehouse.Source
		for _, f := range files {
			if f.Key == "" {
				continue
			}
			path, err := p.st.LocalPath(ctx, f.Key, f.SHA256)
			if err != nil {
				return err
			}
			srcs = append(srcs, warehouse.Source{Path: path, Window: w.ID()})
		}
		return db.ViewParquet(ctx, name, table, srcs)
	}
	var heads []string
	for _, docType := range stage.Documents() {
		table := docType.HeaderTable()
		if err := view("raw_"+table, table, em.Tables[table].Files...); err != nil {
			return nil, err
		}
		heads = append(heads, fmt.Sprintf("SELECT %s AS doc_type, id, updated_date, rechecked_at, account_id, account_number, erp_account_id FROM %s",
			warehouse.Literal(string(docType)), warehouse.Ident("raw_"+table)))
	}
	// Applications have no account expand: their accounts are the window's accounts table.
	if err := view("raw_"+stage.AccountsTable, stage.AccountsTable, em.Tables[stage.AccountsTable].Files...); err != nil {
		return nil, err
	}
	for _, kind := range stage.Applications() {
		table := kind.HeaderTable()
		if err := view("raw_"+table, table, em.Tables[table].Files...); err != nil {
			return nil, err
		}
		heads = append(heads, fmt.Sprintf(`SELECT %s AS doc_type, a.id, a.updated_date, a.rechecked_at, a.account_id, acc.account_number, acc.erp_account_id
FROM %s AS a LEFT JOIN (SELECT * FROM %s QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_date DESC NULLS LAST, rechecked_at DESC NULLS LAST) = 1) AS acc
  ON acc.id = a.account_id`, warehouse.Literal(string(kind)), warehouse.Ident("raw_"+table), warehouse.Ident("raw_"+stage.AccountsTable)))
	}
	if err := view("quarantine", stage.QuarantineTable, em.Tables[stage.QuarantineTable].Files...); err != nil {
		return nil, err
	}
	for name, f := range map[string]stage.ObjectInfo{"rejects": tm.Rejects, "skipped": tm.Skipped, "documents": tm.DocumentsPq} {
		if err := view(name, name, f); err != nil {
			return nil, err
		}
	}
	err = db.Exec(ctx, `CREATE VIEW latest AS SELECT * FROM (`+strings.Join(heads, "\nUNION ALL\n")+`) AS raw
QUALIFY row_number() OVER (PARTITION BY doc_type, id ORDER BY updated_date DESC NULLS LAST, rechecked_at DESC NULLS LAST) = 1`)
	return db, err
}

// atLeast reports whether r is the same or a newer version than old: by
// updatedDate when both have one, else by window.
func atLeast(r, old stage.OutstandingReject) bool {
	if r.Updated != nil && old.Updated != nil {
		return !r.Updated.Before(*old.Updated)
	}
	return r.Window >= old.Window
}

func sameVersion(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}

// recheckRejects is the run's last step: it re-checks every outstanding reject
// against Zuora, maps and loads again the windows where one changed (or was
// acknowledged, or whose re-check was interrupted), and puts the outstanding
// rejects of every window on rep (docs/design.md, "Rejects that come back").
func (p *Pipeline) recheckRejects(ctx context.Context, rep *Report) error {
	b, err := p.loadRejects(ctx, true)
	if err != nil {
		return err
	}
	acks, err := p.st.Acks(ctx)
	if err != nil {
		return err
	}
	todo := map[string]string{} // window → why it is mapped again
	for _, id := range b.pending {
		todo[id] = "mapping a window again after an interrupted re-check"
	}
	for _, r := range b.byKey {
		if _, acked := acks[r.ZuoraID]; acked && todo[r.Window] == "" {
			todo[r.Window] = "mapping a window again: a reject was acknowledged"
		}
	}
	for _, id := range slices.Sorted(maps.Keys(todo)) {
		w, err := stage.ParseWindowID(id)
		if err != nil {
			return err
		}
		if err := p.remapRechecked(ctx, w, rep, todo[id]); err != nil {
			return err
		}
	}

	if b, err = p.loadRejects(ctx, true); err != nil {
		return err
	}
	var wanted []extract.Wanted
	for _, r := range b.byKey {
		if _, acked := acks[r.ZuoraID]; acked || !r.Recheckable() {
			continue
		}
		w, err := stage.ParseWindowID(r.Window)
		if err != nil {
			return err
		}
		wanted = append(wanted, extract.Wanted{DocType: stage.DocType(r.DocType), ID: r.ZuoraID, Window: w, Updated: r.Updated,
			Account: r.Account, Malformed: r.ReasonCode == stage.ReasonMalformed, Reason: r.ReasonCode})
	}
	if len(wanted) > 0 {
		if err := p.recheck(ctx, b, wanted, rep); err != nil {
			return err
		}
	}
	if b, err = p.loadRejects(ctx, true); err != nil {
		return err
	}
	rep.Rejects = backlog(b, acks)
	return nil
}

// recheck fetches wanted from Zuora and maps again the windows where some changed.
func (p *Pipeline) recheck(ctx context.Context, b *rejectBook, wanted []extract.Wanted, rep *Report) error {
	zc, err := p.zuoraClient()
	if err != nil {
		return err
	}
	res, err := extract.Recheck(ctx, zc, p.st, wanted, extract.RecheckOptions{RunID: p.cfg.RunID, ERPAccountField: p.cfg.ERPAccountField, Logger: p.cfg.Logger})
	if err != nil {
		return fmt.Errorf("re-check of the outstanding rejects failed (every window is kept as it was): %w", err)
	}
	now := p.cfg.Now().UTC()
	counts := map[string]int{}
	for _, f := range res.Findings {
		counts[f.Outcome]++
		r := b.byKey[bookKey(string(f.DocType), f.ID)]
		if r == nil {
			continue
		}
		r.Checked, r.Note = &now, f.Outcome
		if f.Note != "" {
			r.Note += ": " + f.Note
		}
		if f.Outcome == extract.Unchanged || f.Outcome == extract.StillMalformed {
			r.LastSeen = now
		}
	}
	p.cfg.Logger.Info("outstanding rejects re-checked", "documents", len(wanted), "staged", counts[extract.Staged],
		"unchanged", counts[extract.Unchanged], "newer", counts[extract.Newer], "not_found", counts[extract.NotFound],
		"still_malformed", counts[extract.StillMalformed])
	staged := res.Windows()
	for _, w := range staged {
		if !slices.Contains(b.pending, w.ID()) {
			b.pending = append(b.pending, w.ID())
		}
	}
	// Pending first: a crash from here on leaves the next run the windows to map again.
	if err := p.saveRejects(ctx, b); err != nil {
		return err
	}
	for _, w := range staged {
		if err := p.st.ReopenLoad(ctx, w); err != nil {
			return &StepError{Step: "extract", Window: w, Err: fmt.Errorf("window %s: reopen it for the re-checked rejects: %w", w.ID(), err),
				Kept: "the window's committed snapshot and its ledger", Resume: Step{Command: "run", Until: p.cfg.Until}}
		}
		if err := res.Commit(ctx, p.st, w); err != nil {
			return &StepError{Step: "extract", Window: w, Err: fmt.Errorf("window %s: commit the re-checked rejects: %w", w.ID(), err),
				Kept: "the window's snapshot as it was; the re-checked rows are not part of it", Resume: Step{Command: "run", Until: p.cfg.Until}}
		}
		if err := p.remapRechecked(ctx, w, rep, "re-checked rejects changed in Zuora: mapping their window again"); err != nil {
			return err
		}
	}
	return nil
}

// remapRechecked maps w again with what its snapshot now holds, takes it off
// the pending list, and loads it: the ledger of every window keeps each
// document from being posted twice.
func (p *Pipeline) remapRechecked(ctx context.Context, w stage.Window, rep *Report, why string) error {
	_, staged, err := p.st.ReadExtract(ctx, w)
	if err != nil {
		return err
	}
	if staged {
		p.cfg.Logger.Info(why, "window", w.ID())
		if err := p.transformWindow(ctx, w, true); err != nil {
			if IsConfigError(err) {
				return err
			}
			return stepError("transform", w, err, "the window's committed snapshot and its ledger; nothing more of it was posted", Step{Command: "run", Until: p.cfg.Until})
		}
	} else {
		p.cfg.Logger.Warn("a window with rejects has no committed snapshot any more: left alone", "window", w.ID())
	}
	b, err := p.loadRejects(ctx, true)
	if err != nil {
		return err
	}
	if i := slices.Index(b.pending, w.ID()); i >= 0 {
		b.pending = slices.Delete(b.pending, i, i+1)
		if err := p.saveRejects(ctx, b); err != nil {
			return err
		}
	}
	if !staged {
		return nil
	}
	rep.forget(w)
	return p.processWindow(ctx, w, rep, attempt{why: "rejects re-checked", resume: Step{Command: "run", Until: p.cfg.Until}})
}

// Backlog is every outstanding reject of the stage, whichever window holds it.
type Backlog struct {
	Lines   []BacklogLine // per document type, currency and reason
	Windows int           // how many windows hold them
	NoID    int64         // quarantined records without an id: no re-check can bring them back
}

// BacklogLine counts the outstanding rejects of one document type, currency and reason.
type BacklogLine struct {
	DocType, Currency, Reason string
	Outstanding               stage.Tally // an amount that could not be read exactly counts as zero
}

func backlog(b *rejectBook, acks map[string]stage.Ack) *Backlog {
	type key struct{ docType, currency, reason string }
	lines := map[key]*BacklogLine{}
	windows := map[string]bool{}
	out := &Backlog{}
	for _, r := range b.byKey {
		if _, acked := acks[r.ZuoraID]; acked {
			continue
		}
		k := key{r.DocType, r.Currency, r.ReasonCode}
		if lines[k] == nil {
			lines[k] = &BacklogLine{DocType: r.DocType, Currency: r.Currency, Reason: r.ReasonCode}
		}
		amount := decimal.Zero
		if r.Amount != nil {
			amount = *r.Amount
		}
		lines[k].Outstanding.Add(amount)
		windows[r.Window] = true
		if !r.Recheckable() {
			out.NoID++
		}
	}
	for _, l := range lines {
		out.Lines = append(out.Lines, *l)
	}
	slices.SortFunc(out.Lines, func(a, b BacklogLine) int {
		return strings.Compare(a.DocType+"/"+a.Currency+"/"+a.Reason, b.DocType+"/"+b.Currency+"/"+b.Reason)
	})
	out.Windows = len(windows)
	return out
}

// Rejects returns the outstanding rejects of every window, acknowledged ones
// left out, sorted by window, document type and number.
func (p *Pipeline) Rejects(ctx context.Context) ([]stage.OutstandingReject, error) {
	b, err := p.loadRejects(ctx, false)
	if err != nil {
		return nil, err
	}
	acks, err := p.st.Acks(ctx)
	if err != nil {
		return nil, err
	}
	idx := b.index(p.cfg.Now())
	idx.Rejects = slices.DeleteFunc(idx.Rejects, func(r stage.OutstandingReject) bool { _, acked := acks[r.ZuoraID]; return acked })
	idx.Sort()
	return idx.Rejects, nil
}

// Acknowledge records that the outstanding reject id must never go to the
// ERP, with the person's reason and who they are (user@host). From the next
// run on, its window reports it as skipped (ACKNOWLEDGED), not as a reject.
// Anything but an outstanding, unacknowledged reject is a *ConfigError.
func (p *Pipeline) Acknowledge(ctx context.Context, id, reason, by string) (*stage.Ack, error) {
	if strings.TrimSpace(id) == "" {
		return nil, &ConfigError{Msg: "want the Zuora id of an outstanding reject (see the rejects command)", Settings: []string{"AckID"}}
	}
	if strings.TrimSpace(reason) == "" {
		return nil, &ConfigError{Msg: "want why the document must never go to the ERP", Settings: []string{"AckReason"}}
	}
	release, err := p.takeLease(ctx, "rejects ack")
	if err != nil {
		return nil, err
	}
	defer release()
	acks, err := p.st.Acks(ctx)
	if err != nil {
		return nil, err
	}
	if a, ok := acks[id]; ok {
		return nil, &ConfigError{Msg: fmt.Sprintf("%s is already acknowledged (by %s at %s: %s)", id, a.By, a.At.Format(time.RFC3339), a.Reason)}
	}
	b, err := p.loadRejects(ctx, true)
	if err != nil {
		return nil, err
	}
	var found *stage.OutstandingReject
	for _, r := range b.byKey {
		if r.ZuoraID == id {
			found = r
		}
	}
	if found == nil {
		return nil, &ConfigError{Msg: fmt.Sprintf("%s is not an outstanding reject of stage %s; only those can be acknowledged (see the rejects command)", id, p.st.URL())}
	}
	a := stage.Ack{ZuoraID: id, DocType: found.DocType, Number: found.Number, Window: found.Window, ReasonCode: found.ReasonCode,
		Reason: strings.TrimSpace(reason), By: by, At: p.cfg.Now().UTC()}
	if err := p.st.WriteAck(ctx, a); err != nil {
		return nil, err
	}
	p.cfg.Logger.Info("reject acknowledged", "doc_id", id, "window", a.Window, "by", by)
	return &a, nil
}
