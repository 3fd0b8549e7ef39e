package extract

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// walker stages slice n (the range r) of one document type: part n of its
// header table, of its item table when it has items, and of the quarantine,
// all three streamed while the pages arrive and committed together.
type walker[H, I any] struct {
	x   *run
	sp  docSpec[H, I]
	n   int
	r   span
	log *slog.Logger

	headers  *table[H]
	items    *table[I] // nil when the type has no items
	quar     *quarantine
	warnings []string
	dropped  int         // records not staged: outside the range, or staged already
	rangeErr *RangeError // rows outside the range that no change during the walk explains
}

// walk stages slice n of a document type; a failed walk commits nothing.
func walk[H, I any](ctx context.Context, x *run, sp docSpec[H, I], n int, r span) error {
	started := time.Now()
	w, err := openWalker(ctx, x, sp, n, r)
	if err != nil {
		return err
	}
	defer w.abort()
	if err := w.stream(ctx); err != nil {
		return err
	}
	return w.commit(started)
}

// openWalker opens the walk's three parts.
func openWalker[H, I any](ctx context.Context, x *run, sp docSpec[H, I], n int, r span) (w *walker[H, I], err error) {
	w = &walker[H, I]{x: x, sp: sp, n: n, r: r, log: x.log.With("entity", sp.table(), "slice", n)}
	defer func() {
		if err != nil {
			w.abort()
		}
	}()
	rows := x.opts.RowGroupRows
	if w.headers, err = openTable[H](ctx, x.st, sp.table(), stage.RawKey(sp.table(), x.w, n), rows); err != nil {
		return nil, err
	}
	if sp.itemTable() != "" {
		if w.items, err = openTable[I](ctx, x.st, sp.itemTable(), stage.RawKey(sp.itemTable(), x.w, n), rows); err != nil {
			return nil, err
		}
	}
	qt, err := openTable[stage.QuarantineRow](ctx, x.st, stage.QuarantineTable, stage.QuarantineKey(sp.table(), x.w, n), rows)
	if err != nil {
		return nil, err
	}
	w.quar = newQuarantine(qt, sp.docType, sp.number, sp.amount, r, x.prior[stage.QuarantineTable], x.opts.RunID, w.log, &w.warnings)
	return w, nil
}

// abort discards every part the walk has not committed.
func (w *walker[H, I]) abort() {
	if w.headers != nil {
		w.headers.abort()
	}
	if w.items != nil {
		w.items.abort()
	}
	if w.quar != nil {
		w.quar.table.abort()
	}
}

// stream walks the range and stages every version not yet staged. Under a
// cursor that is not a keyset (an offset), a row leaving the range mid-walk
// shifts an unseen row behind the cursor, so the range is walked again until
// a walk finds nothing new. The first slice then probes below the window.
func (w *walker[H, I]) stream(ctx context.Context) error {
	seen := keySet{}
	started := w.x.opts.Now()
	for pass := 1; ; pass++ {
		fresh, nonKeyset, err := w.pass(ctx, seen, started)
		switch {
		case err != nil:
			return err
		case !nonKeyset || (pass > 1 && fresh == 0):
			if w.n > 0 {
				return nil // the first slice's probe covers the window's lower bound
			}
			return probe(ctx, w.x, w.sp, w.r)
		case pass == maxPasses:
			return fmt.Errorf("query %s: the range is paged by offset and still changed during walk %d; nothing was committed, run again when the tenant is quieter", w.sp.object(), pass)
		}
		w.log.Info("offset-paged walk: walking the range again to catch rows shifted behind the cursor", "pass", pass+1, "new", fresh)
	}
}

// pass walks the range once and returns how many versions it staged that
// no earlier pass had, and whether Zuora paged it by offset. Rows outside the
// range are counted, and fail the window once the pass is done. The records
// are staged in the order they come while the item walks of the documents
// among them overlap (see ahead).
func (w *walker[H, I]) pass(ctx context.Context, seen keySet, started time.Time) (fresh int, nonKeyset bool, err error) {
	q := query(w.x, w.sp, w.r)
	q.Paging = &zuora.Paging{}
	pages := 0 // pages told to the progress so far
	defer func() { w.fetched(q.Paging.Pages-pages, 0) }()
	win := newAhead(ctx, w.x.opts.LookupConcurrency, w.stage)
	defer win.stop()
	records, stop := prefetch(ctx, w.x.src, q)
	defer stop() // before the progress reads q.Paging
	for f := range records {
		if f.err != nil {
			if err := win.drain(); err != nil {
				return 0, false, err // a record before the failed page fails first
			}
			return 0, false, w.queryError(f.err)
		}
		w.fetched(f.pages-pages, 1)
		pages = f.pages
		if err := ctx.Err(); err != nil {
			return 0, false, err
		}
		p, isNew := w.admit(f.raw, seen, started)
		if isNew {
			fresh++
		}
		if p == nil {
			continue
		}
		if err := win.push(p); err != nil {
			return 0, false, err
		}
	}
	if err := win.drain(); err != nil {
		return 0, false, err
	}
	if w.rangeErr != nil {
		return 0, false, w.rangeErr
	}
	return fresh, q.Paging.NonKeyset, nil
}

// queryError is what a failed page of the walk means.
func (w *walker[H, I]) queryError(err error) error {
	field := w.x.opts.ERPAccountField
	switch {
	case unavailable(err):
		return &UnavailableError{DocType: w.sp.docType, Table: w.sp.table(), Object: w.sp.object(), Err: err}
	case refusedField(err, field):
		return &FieldAbsentError{Field: field, Err: err}
	}
	return fmt.Errorf("query %s: %w", w.sp.object(), err)
}

// admit decides what one record of a pass becomes: nil when it is outside the
// range or staged already, else a record to stage in turn, as its rows or as
// the walk that pages its items and builds them. isNew says no earlier record
// of the walk was this version; a record that cannot be decoded is neither new
// nor dropped.
func (w *walker[H, I]) admit(raw json.RawMessage, seen keySet, started time.Time) (p *pending, isNew bool) {
	rec, err := decodeRecord(w.sp.table(), raw)
	if err != nil {
		return &pending{raw: raw, size: len(raw), err: err}, false
	}
	if !w.wanted(rec, seen, started) {
		return nil, false
	}
	seen[keyOf(rec.id, rec.updated)] = struct{}{}
	p = &pending{raw: raw, size: len(raw)}
	var lines []*record
	if w.items != nil {
		kids, walk, err := expandedList(w.sp, rec)
		if walk {
			src, sp, id := w.x.src, w.sp, rec.id
			p.walk = func(ctx context.Context) (func() error, error) {
				lines, err := walkItems(ctx, src, sp, id)
				if err != nil {
					return nil, err
				}
				return w.build(rec, lines)
			}
			return p, true
		}
		if err == nil {
			lines, err = decodeItems(w.sp, rec.id, kids)
		}
		if p.err = err; err != nil {
			return p, true
		}
	}
	if p.keep, p.err = w.build(rec, lines); p.err == nil {
		p.raw = nil
	}
	return p, true
}

// wanted reports whether a decoded record is to be staged: not when it is
// outside the range (counted, and kept for the RangeError when no change
// during the walk explains it) or when this version is staged already.
func (w *walker[H, I]) wanted(rec *record, seen keySet, started time.Time) bool {
	k := keyOf(rec.id, rec.updated)
	switch {
	case !rec.updated.Before(w.r.hi), rec.updated.Before(w.r.lo):
		w.dropped++
		if !outside(rec.updated, w.r, started) {
			w.log.Debug("record changed during the walk", "doc_id", rec.id, "updated", rec.rawUpd)
			return false
		}
		if w.rangeErr == nil {
			w.rangeErr = &RangeError{Table: w.sp.table(), From: w.r.lo, To: w.r.hi, Example: rec.id + " " + rec.rawUpd}
		}
		w.rangeErr.Outside++
		return false
	case seen.has(k), w.x.prior[w.sp.table()].has(k):
		w.dropped++ // this version is already staged
		w.log.Debug("record already staged", "doc_id", rec.id, "updated", rec.rawUpd)
		return false
	}
	return true
}

// stage stages one admitted record with its items, or sends it to the
// quarantine (see quarantine.route).
func (w *walker[H, I]) stage(p *pending) error {
	err := p.err
	if err == nil {
		err = p.keep()
	}
	if err != nil {
		return w.quar.route(p.raw, err)
	}
	return nil
}

// rows are one record version's rows and what staging them adds to the
// walk's totals, built from its decoded fields so that those need not wait.
type rows[H, I any] struct {
	header      H
	updated     time.Time
	items       []I
	itemUpdated []time.Time
	currency    *string
	total       *decimal.Decimal // the header amount, when it has one
	itemsTotal  *decimal.Decimal // the sum of its items, when it differs from total
	id          string
	accountID   *string // the account to fetch, for an application
}

// build reads the rows of one record version and its items, or says why
// any of their fields cannot be staged (a *MalformedError); the function it
// returns stages them. It reads only rec, lines and the walk's settings, so
// an item walk's goroutine may call it.
func (w *walker[H, I]) build(rec *record, lines []*record) (func() error, error) {
	sp := w.sp
	r := &rows[H, I]{header: sp.header(rec, rec.account(w.x.opts.ERPAccountField), len(lines)), updated: rec.updated, id: rec.id,
		items: make([]I, len(lines)), itemUpdated: make([]time.Time, len(lines))}
	if rec.err != nil {
		return nil, rec.err
	}
	for i, l := range lines {
		if r.items[i] = sp.item(l, rec); l.err != nil {
			return nil, l.err
		}
		r.itemUpdated[i] = l.updated
	}
	if total, ok := rec.decimal(sp.amount); ok {
		r.total, r.currency = &total, rec.str("currency")
		if got := w.itemsTotal(lines); w.items != nil && !got.Equal(total) {
			r.itemsTotal = &got // lines is empty when the type has no items
		}
	}
	if sp.application {
		r.accountID = rec.str("accountId")
	}
	return func() error { return w.keep(r) }, nil
}

// keep stages one record version's rows.
func (w *walker[H, I]) keep(r *rows[H, I]) error {
	if r.total != nil {
		w.headers.addAmount(r.currency, *r.total)
		if r.itemsTotal != nil {
			w.log.Warn("header total differs from its items", "doc_id", r.id, "header", *r.total, "items", *r.itemsTotal)
			w.warnings = append(w.warnings, fmt.Sprintf("%s %s: %s %s differs from the sum of its %d items %s",
				w.sp.table(), r.id, w.sp.amount, *r.total, len(r.items), *r.itemsTotal))
		}
	}
	if err := w.headers.add(r.header, r.updated); err != nil {
		return err
	}
	if w.sp.application {
		w.x.addAccount(r.accountID)
	}
	for i, row := range r.items {
		if err := w.items.add(row, r.itemUpdated[i]); err != nil {
			return err
		}
	}
	return nil
}

// itemsTotal is the sum of what the header amount of lines' document must equal.
func (w *walker[H, I]) itemsTotal(lines []*record) decimal.Decimal {
	got := decimal.Zero
	for _, l := range lines {
		got = got.Add(w.sp.lineTotal(l))
	}
	return got
}

// commit closes the walk's parts and records them in the run.
func (w *walker[H, I]) commit(started time.Time) error {
	x, sp := w.x, w.sp
	snap, err := w.headers.close()
	if err != nil {
		return err
	}
	snap.Query = params(query(x, sp, span{x.from, x.w.End}))
	var isnap stage.TableSnapshot
	if w.items != nil {
		if isnap, err = w.items.close(); err != nil {
			return err
		}
		isnap.Query = params(itemQuery(sp, "<"+sp.table()+".id>"))
		isnap.Query["expanded_from"] = []string{sp.object()}
	}
	qsnap, err := w.quar.close()
	if err != nil {
		return err
	}
	x.commitPart(sp.table(), w.n, snap)
	if w.items != nil {
		x.commitPart(sp.itemTable(), w.n, isnap)
	}
	x.commitQuarantine(sp.table(), w.n, qsnap)
	x.warn(sp.table(), w.n, w.warnings)
	w.log.Info("entity staged", "rows", snap.Rows, "quarantined", qsnap.Rows, "dropped", w.dropped, "warnings", len(w.warnings), "elapsed", time.Since(started))
	return nil
}

// docItems returns every item of a document: the expanded list, or, when that
// list is cut off at the page size, all of them paged from the item endpoint.
func docItems[H, I any](ctx context.Context, src Source, sp docSpec[H, I], parent *record) ([]*record, error) {
	kids, walk, err := expandedList(sp, parent)
	switch {
	case err != nil:
		return nil, err
	case walk:
		return walkItems(ctx, src, sp, parent.id)
	}
	return decodeItems(sp, parent.id, kids)
}

// expandedList returns a document's expanded item list, decoded with it; walk says
// the list is cut off at the page size, so its items are to be paged instead.
func expandedList[H, I any](sp docSpec[H, I], parent *record) (kids []any, walk bool, err error) {
	kids = parent.list(sp.childKey)
	switch {
	case parent.err != nil:
		return nil, false, parent.err
	case len(kids) >= pageSize:
		return nil, true, nil
	}
	return kids, false, nil
}

// decodeItems checks the expanded items of document parentID.
func decodeItems[H, I any](sp docSpec[H, I], parentID string, kids []any) ([]*record, error) {
	set := newItemSet(sp, parentID, len(kids))
	for _, v := range kids {
		if _, err := set.add(recordOf(set.itemTable, v)); err != nil {
			return nil, err
		}
	}
	return set.out, nil
}

// walkItems pages every item of document parentID from the item endpoint. A
// walk under a cursor that is not a keyset is repeated until a walk finds no
// item it had not seen, as an offset shifts when the list changes.
func walkItems[H, I any](ctx context.Context, src Source, sp docSpec[H, I], parentID string) ([]*record, error) {
	set := newItemSet(sp, parentID, pageSize)
	for pass := 1; ; pass++ {
		q := itemQuery(sp, parentID)
		q.Paging = &zuora.Paging{}
		fresh := 0
		for raw, err := range src.Records(ctx, q) {
			if err != nil {
				return nil, fmt.Errorf("query %s of %s %s: %w", sp.itemObject(), sp.table(), parentID, err)
			}
			isNew, err := set.add(decodeRecord(sp.itemTable(), raw))
			if err != nil {
				return nil, err
			}
			if isNew {
				fresh++
			}
		}
		switch {
		case !q.Paging.NonKeyset || (pass > 1 && fresh == 0):
			return set.out, nil
		case pass == maxPasses:
			return nil, fmt.Errorf("query %s of %s %s: the list is paged by offset and still changed during walk %d", sp.itemObject(), sp.table(), parentID, pass)
		}
	}
}

// itemSet gathers the items of one document, each once.
type itemSet struct {
	table, itemTable, parentID string
	seen                       map[string]bool
	out                        []*record
}

func newItemSet[H, I any](sp docSpec[H, I], parentID string, n int) *itemSet {
	return &itemSet{table: sp.table(), itemTable: sp.itemTable(), parentID: parentID,
		seen: make(map[string]bool, n), out: make([]*record, 0, n)}
}

// add keeps one decoded item unless it was kept already (an item listed
// twice, as a page boundary moved, is staged once); it reports whether it
// was new. err is why the item could not be decoded.
func (s *itemSet) add(r *record, err error) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", s.table, s.parentID, err)
	}
	if s.seen[r.id] {
		return false, nil
	}
	s.seen[r.id] = true
	s.out = append(s.out, r)
	return true, nil
}

// fetched tells the progress, if any, of pages and records the walk fetched.
func (w *walker[H, I]) fetched(pages int, records int64) {
	if p := w.x.opts.Progress; p != nil && (pages > 0 || records > 0) {
		p.Fetched(w.sp.table(), int64(pages), records)
	}
}
