// Package extract stages one window of Zuora Billing documents: it walks Object
// Query for invoices, payments, refunds, credit and debit memos (items
// completed), writes each raw table as a zstd Parquet part and commits the
// snapshot with an extract manifest written last.
package extract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/sync/errgroup"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

var _ Source = (*zuora.Client)(nil)

// Source is the narrow view of the Zuora client the extract needs (internal/zuora.Client implements it).
type Source interface {
	Records(ctx context.Context, q zuora.Query) iter.Seq2[json.RawMessage, error] // one record at a time, pages streamed
}

// Options tunes a run; the zero value is usable.
type Options struct {
	// Overlap reaches back before the window start so late-visible records are
	// still seen; 0 means 10 minutes.
	Overlap time.Duration
	// Statuses filters each document table (a header table of stage.DocType,
	// such as "invoices") by status; a missing key keeps the default
	// (Posted, or Processed for payments and refunds), an empty list filters nothing.
	Statuses map[string][]string
	// Concurrency bounds how many walks (one document type over one time slice)
	// run at once; 0 means 4. The Zuora client's MaxConcurrency still bounds the
	// requests in flight across all of them.
	Concurrency int
	// Slices splits the window's query range into up to this many contiguous
	// half-open time slices (bounds on whole seconds), walked concurrently per
	// document type; slice n writes part n of each table, so keys stay a pure
	// function of (table, window, part). 0 means 1.
	Slices int
	// RowGroupRows is the number of rows per Parquet row group; 0 means 10000.
	RowGroupRows int
	RunID        string
	CodeVersion  string
	// Force re-extracts a window that already has a manifest.
	Force  bool
	Logger *slog.Logger
	// ERPAccountField is the account's custom field holding the ERP customer,
	// read case-insensitively (Object Query lowers its first letter); "" means
	// ERPAccountId__c. On a stage with no document yet, a probe of the tenant's
	// accounts fails the window with a *FieldAbsentError when Zuora does not
	// know the field.
	ERPAccountField string
	// DocTypes are the document types moved; nil means every one. The others
	// are neither queried nor listed in the manifest.
	DocTypes []stage.DocType
	// Now is the clock that dates a walk's start, to tell a row changed during
	// the walk from one the tenant should not have returned; nil means time.Now.
	Now func() time.Time
}

// DefaultOverlap is how far a window's query reaches back before its start.
const DefaultOverlap = 10 * time.Minute

// pageSize is Object Query's largest page; expanded child lists stop there too.
const pageSize = 99

// Run extracts window w into st and returns its committed manifest. A window
// that is already committed is returned as is, without calling Zuora, unless
// opts.Force is set. A failed or cancelled run leaves no manifest. Records whose
// (id, updatedDate) another committed window already staged are not staged again.
func Run(ctx context.Context, src Source, st *stage.Stage, w stage.Window, opts Options) (*stage.ExtractManifest, error) {
	if !w.Start.Before(w.End) {
		return nil, fmt.Errorf("extract window %s: empty window", w.ID())
	}
	w = stage.Window{Start: w.Start.UTC(), End: w.End.UTC()}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	log := opts.Logger.With("window", w.ID(), "run_id", opts.RunID)

	if opts.Force {
		// The parts are about to be rewritten: the old manifest would no longer
		// describe them, so it goes first and a failed re-run leaves none.
		if err := st.Delete(ctx, stage.ManifestKey("extract", w)); err != nil {
			return nil, fmt.Errorf("extract window %s: %w", w.ID(), err)
		}
	} else {
		var m stage.ExtractManifest
		found, err := st.ReadManifest(ctx, "extract", w, &m)
		if err != nil {
			return nil, fmt.Errorf("extract window %s: %w", w.ID(), err)
		}
		if found {
			log.Info("extract already committed", "committed_at", m.CommittedAt)
			return &m, nil
		}
	}

	x := &run{src: src, st: st, w: w, opts: opts, log: log, from: w.Start.Add(-opts.Overlap)}
	x.slices = split(x.from, w.End, opts.Slices)
	x.prior, err = priorKeys(ctx, st, w, x.from)
	if err != nil {
		return nil, fmt.Errorf("extract window %s: %w", w.ID(), err)
	}
	first, err := firstWindow(ctx, st, w)
	if err != nil {
		return nil, fmt.Errorf("extract window %s: %w", w.ID(), err)
	}
	if first {
		if err := probeAccountField(ctx, src, opts.ERPAccountField); err != nil {
			return nil, fmt.Errorf("extract window %s: %w", w.ID(), err)
		}
	}

	started := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Concurrency)
	for _, dt := range opts.DocTypes {
		ent := entities[dt]
		for n, r := range x.slices {
			g.Go(func() error { return ent.walk(gctx, x, n, r) })
		}
	}
	if err := g.Wait(); err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		return nil, fmt.Errorf("extract window %s: %w", w.ID(), err)
	}
	x.merge()
	x.mergeQuarantine()

	m := &stage.ExtractManifest{
		Window:      w.ID(),
		Start:       w.Start.UTC(),
		End:         w.End.UTC(),
		QueryFrom:   x.from,
		RunID:       opts.RunID,
		CodeVersion: opts.CodeVersion,
		CommittedAt: time.Now().UTC(),
		Tables:      x.tables,
	}
	for _, dt := range stage.DocTypes() {
		t := dt.HeaderTable()
		if !opts.moves(dt) {
			m.Warnings = append(m.Warnings, t+": not extracted (the document type is not among those moved)")
		}
		for _, ws := range x.warnings[t] {
			m.Warnings = append(m.Warnings, ws...)
		}
	}
	if err := st.WriteManifest(ctx, "extract", w, m); err != nil {
		return nil, fmt.Errorf("extract window %s: commit: %w", w.ID(), err)
	}
	log.Info("extract committed", "tables", len(m.Tables), "warnings", len(m.Warnings), "elapsed", time.Since(started))
	return m, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Overlap < 0 {
		return o, fmt.Errorf("extract: negative overlap %s", o.Overlap)
	}
	if o.Overlap == 0 {
		o.Overlap = DefaultOverlap
	}
	for table := range o.Statuses {
		if _, ok := stage.DocTypeOfTable(table); !ok {
			return o, fmt.Errorf("extract: statuses for %q: want one of %s", table, strings.Join(stage.HeaderTables(), ", "))
		}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Slices < 0 {
		return o, fmt.Errorf("extract: negative slices %d", o.Slices)
	}
	if o.Slices == 0 {
		o.Slices = 1
	}
	if o.RowGroupRows <= 0 {
		o.RowGroupRows = 10000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ERPAccountField == "" {
		o.ERPAccountField = DefaultERPAccountField
	}
	if o.DocTypes == nil {
		o.DocTypes = stage.DocTypes()
	}
	types, err := stage.InLoadOrder(o.DocTypes)
	if err != nil {
		return o, fmt.Errorf("extract: %w", err)
	}
	o.DocTypes = types
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// run is the state one Run shares between its concurrent walks.
type run struct {
	src    Source
	st     *stage.Stage
	w      stage.Window
	opts   Options
	log    *slog.Logger
	from   time.Time                  // the query's lower bound: Start minus the overlap
	slices []span                     // [from, w.End) cut into Options.Slices parts
	prior  map[string]map[docKey]bool // per table, what other committed windows staged

	mu       sync.Mutex
	quar     []quarantineSnap                 // the quarantine parts of every walk
	parts    map[string][]stage.TableSnapshot // per table, one snapshot per slice
	warnings map[string][][]string            // per table, the warnings of each slice
	tables   map[string]stage.TableSnapshot   // parts merged, once every walk is done
}

// span is a half-open range [lo, hi) of updatedDate values.
type span struct{ lo, hi time.Time }

// split cuts [from, to) into at most n contiguous spans whose inner bounds are
// whole seconds, the precision of Zuora's updatedDate and of its filters.
func split(from, to time.Time, n int) []span {
	var out []span
	lo := from
	for i := 1; i < n; i++ {
		hi := from.Add(to.Sub(from) * time.Duration(i) / time.Duration(n)).Truncate(time.Second)
		if !hi.After(lo) || !hi.Before(to) {
			continue
		}
		out = append(out, span{lo, hi})
		lo = hi
	}
	return append(out, span{lo, to})
}

// docKey identifies one version of one record.
type docKey struct {
	id      string
	updated int64 // UTC microseconds
}

func keyOf(id string, updated time.Time) docKey { return docKey{id, updated.UnixMicro()} }

// commitPart records what slice n of a table staged.
func (x *run) commitPart(name string, n int, snap stage.TableSnapshot) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.parts == nil {
		x.parts = map[string][]stage.TableSnapshot{}
	}
	if x.parts[name] == nil {
		x.parts[name] = make([]stage.TableSnapshot, len(x.slices))
	}
	x.parts[name][n] = snap
}

func (x *run) warn(table string, n int, ws []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.warnings == nil {
		x.warnings = map[string][][]string{}
	}
	if x.warnings[table] == nil {
		x.warnings[table] = make([][]string, len(x.slices))
	}
	x.warnings[table][n] = ws
}

// merge folds each table's slices into one snapshot listing every part in
// slice order; with several slices its query records their ranges.
func (x *run) merge() {
	x.tables = map[string]stage.TableSnapshot{}
	for name, parts := range x.parts {
		var m stage.TableSnapshot
		for _, p := range parts {
			m.Rows += p.Rows
			m.Files = append(m.Files, p.Files...)
			for c, a := range p.Amounts {
				if m.Amounts == nil {
					m.Amounts = map[string]decimal.Decimal{}
				}
				m.Amounts[c] = m.Amounts[c].Add(a)
			}
			if p.MinUpdated != nil && (m.MinUpdated == nil || p.MinUpdated.Before(*m.MinUpdated)) {
				m.MinUpdated = p.MinUpdated
			}
			if p.MaxUpdated != nil && (m.MaxUpdated == nil || p.MaxUpdated.After(*m.MaxUpdated)) {
				m.MaxUpdated = p.MaxUpdated
			}
			m.Query = p.Query
		}
		if len(parts) > 1 {
			for _, sl := range x.slices {
				m.Query["slices[]"] = append(m.Query["slices[]"], zuoraTime(sl.lo)+"/"+zuoraTime(sl.hi))
			}
		}
		x.tables[name] = m
	}
}

// zuoraTime formats t as the explicit UTC value Object Query filters take.
func zuoraTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// query builds the Object Query of a document type for the range r.
func query[H, I any](x *run, sp docSpec[H, I], r span) zuora.Query {
	q := zuora.Query{
		Object: sp.object(),
		Filters: []string{
			"updateddate.GE:" + zuoraTime(r.lo),
			"updateddate.LT:" + zuoraTime(r.hi),
		},
		Sort:        "updateddate.ASC",
		Fields:      sp.fields,
		Expand:      []string{"account"},
		ChildFields: map[string][]string{"account": accountFields(x.opts.ERPAccountField)},
		PageSize:    pageSize,
	}
	statuses, ok := x.opts.Statuses[sp.table()]
	if !ok {
		statuses = sp.defStatus
	}
	switch len(statuses) {
	case 0:
	case 1:
		q.Filters = append(q.Filters, "status.EQ:"+statuses[0])
	default:
		q.Filters = append(q.Filters, "status.IN:["+strings.Join(statuses, ",")+"]")
	}
	if sp.itemTable() != "" {
		q.Expand = append(q.Expand, sp.expand)
		q.ChildFields[sp.expand] = sp.itemFields
	}
	return q
}

// itemQuery pages every item of one document from the item endpoint.
func itemQuery[H, I any](sp docSpec[H, I], parentID string) zuora.Query {
	return zuora.Query{
		Object:   sp.itemObject(),
		Filters:  []string{sp.parentField + ".EQ:" + parentID},
		Sort:     "id.ASC",
		Fields:   sp.itemFields,
		PageSize: pageSize,
	}
}

// params renders a query as the parameters the manifest records.
func params(q zuora.Query) map[string][]string {
	p := map[string][]string{
		"object":   {q.Object},
		"filter[]": q.Filters,
		"fields[]": {strings.Join(q.Fields, ",")},
		"pageSize": {strconv.Itoa(q.PageSize)},
	}
	if q.Sort != "" {
		p["sort[]"] = []string{q.Sort}
	}
	if len(q.Expand) > 0 {
		p["expand[]"] = q.Expand
	}
	for _, k := range slices.Sorted(maps.Keys(q.ChildFields)) {
		p[k+".fields[]"] = []string{strings.Join(q.ChildFields[k], ",")}
	}
	return p
}

// walk stages slice n (the range r) of one document type: part n of its header
// table and, when it has items, of its item table, both streamed while the
// pages arrive.
func walk[H, I any](ctx context.Context, x *run, sp docSpec[H, I], n int, r span) error {
	log := x.log.With("entity", sp.table(), "slice", n)
	started := time.Now()
	q := query(x, sp, r)
	var (
		headers  *table[H]
		items    *table[I]
		quar     *quarantine
		itemInfo stage.ObjectInfo
		quarInfo stage.ObjectInfo
		warnings []string
		dropped  int
	)

	// keep stages one record version and its items, or, when any of their
	// fields cannot be staged (a *MalformedError), none of them.
	keep := func(rec *record) error {
		var lines []*record
		var err error
		if sp.itemTable() != "" {
			lines, err = docItems(ctx, x.src, sp, rec)
			if err != nil {
				return err
			}
		}
		acct := rec.account(x.opts.ERPAccountField)
		row := sp.header(rec, acct, len(lines))
		if rec.err != nil {
			return rec.err
		}
		irows := make([]I, len(lines))
		for i, l := range lines {
			if irows[i] = sp.item(l, rec); l.err != nil {
				return l.err
			}
		}
		if total, ok := rec.decimal(sp.amount); ok {
			headers.addAmount(rec.str("currency"), total)
			if sp.itemTable() != "" {
				got := decimal.Zero
				for _, l := range lines {
					got = got.Add(sp.lineTotal(l))
				}
				if !got.Equal(total) {
					log.Warn("header total differs from its items", "doc_id", rec.id, "header", total, "items", got)
					warnings = append(warnings, fmt.Sprintf("%s %s: %s %s differs from the sum of its %d items %s",
						sp.table(), rec.id, sp.amount, total, len(lines), got))
				}
			}
		}
		if err := headers.add(row, rec.updated); err != nil {
			return err
		}
		for i, l := range lines {
			if err := items.add(irows[i], l.updated); err != nil {
				return err
			}
		}
		return nil
	}

	// stream walks the range and stages every version not yet staged. Under a
	// cursor that is not a keyset (an offset), a row leaving the range mid-walk
	// shifts an unseen row behind the cursor, so the range is walked again until
	// a walk finds nothing new. Rows outside the range that no change during
	// the walk explains are counted, and fail the window once the walk is done.
	stream := func() error {
		seen := map[docKey]bool{}
		var rangeErr *RangeError
		walkStart := x.opts.Now()
		for pass := 1; ; pass++ {
			paging := &zuora.Paging{}
			q.Paging = paging
			fresh := 0
			for raw, err := range x.src.Records(ctx, q) {
				if err != nil {
					if unavailable(err) {
						return &UnavailableError{Table: sp.table(), Object: sp.object(), Err: err}
					}
					if refusedField(err, x.opts.ERPAccountField) {
						return &FieldAbsentError{Field: x.opts.ERPAccountField, Err: err}
					}
					return fmt.Errorf("query %s: %w", sp.object(), err)
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				rec, err := decodeRecord(sp.table(), raw)
				if err != nil {
					// A malformed record goes to the quarantine (see quar.route); any other error fails the walk.
					if err := quar.route(raw, err); err != nil {
						return err
					}
					continue
				}
				k := keyOf(rec.id, rec.updated)
				switch {
				case !rec.updated.Before(r.hi), rec.updated.Before(r.lo):
					dropped++
					if !outside(rec.updated, r, walkStart) {
						log.Debug("record changed during the walk", "doc_id", rec.id, "updated", rec.rawUpd)
						continue
					}
					if rangeErr == nil {
						rangeErr = &RangeError{Table: sp.table(), From: r.lo, To: r.hi, Example: rec.id + " " + rec.rawUpd}
					}
					rangeErr.Outside++
					continue
				case seen[k], x.prior[sp.table()][k]:
					dropped++ // this version is already staged
					log.Debug("record already staged", "doc_id", rec.id, "updated", rec.rawUpd)
					continue
				}
				seen[k] = true
				fresh++
				if err := keep(rec); err != nil {
					if err := quar.route(raw, err); err != nil {
						return err
					}
				}
			}
			if rangeErr != nil {
				return rangeErr
			}
			if !paging.NonKeyset || (pass > 1 && fresh == 0) {
				if n > 0 {
					return nil // the first slice's probe covers the window's lower bound
				}
				return probe(ctx, x, sp, r)
			}
			if pass == maxPasses {
				return fmt.Errorf("query %s: the range is paged by offset and still changed during walk %d; nothing was committed, run again when the tenant is quieter", sp.object(), pass)
			}
			log.Info("offset-paged walk: walking the range again to catch rows shifted behind the cursor", "pass", pass+1, "new", fresh)
		}
	}

	// streamQuarantined runs stream with the walk's part of the quarantine table open.
	streamQuarantined := func() error {
		info, err := x.st.Write(ctx, stage.QuarantineKey(sp.table(), x.w, n), func(qw io.Writer) error {
			quar = newQuarantine(qw, sp.docType, sp.number, sp.amount, r, x.prior[stage.QuarantineTable], x.opts.RunID, log, &warnings, x.opts.RowGroupRows)
			if err := stream(); err != nil {
				return err
			}
			return quar.close()
		})
		quarInfo = info
		return err
	}

	headerInfo, err := x.st.Write(ctx, stage.RawKey(sp.table(), x.w, n), func(hw io.Writer) error {
		headers = newTable[H](sp.table(), hw, x.opts.RowGroupRows)
		if sp.itemTable() == "" {
			if err := streamQuarantined(); err != nil {
				return err
			}
			return headers.close()
		}
		info, err := x.st.Write(ctx, stage.RawKey(sp.itemTable(), x.w, n), func(iw io.Writer) error {
			items = newTable[I](sp.itemTable(), iw, x.opts.RowGroupRows)
			if err := streamQuarantined(); err != nil {
				return err
			}
			return items.close()
		})
		if err != nil {
			return err
		}
		itemInfo = info
		return headers.close()
	})
	if err != nil {
		return err
	}

	snap := headers.snap
	snap.Files = []stage.ObjectInfo{headerInfo}
	snap.Query = params(query(x, sp, span{x.from, x.w.End}))
	x.commitPart(sp.table(), n, snap)
	if sp.itemTable() != "" {
		isnap := items.snap
		isnap.Files = []stage.ObjectInfo{itemInfo}
		isnap.Query = params(itemQuery(sp, "<"+sp.table()+".id>"))
		isnap.Query["expanded_from"] = []string{sp.object()}
		x.commitPart(sp.itemTable(), n, isnap)
	}
	qsnap := quar.table.snap
	qsnap.Files = []stage.ObjectInfo{quarInfo}
	x.commitQuarantine(sp.table(), n, qsnap)
	x.warn(sp.table(), n, warnings)
	log.Info("entity staged", "rows", snap.Rows, "quarantined", qsnap.Rows, "dropped", dropped, "warnings", len(warnings), "elapsed", time.Since(started))
	return nil
}

// docItems returns every item of a document: the expanded list, or, when that
// list is cut off at the page size, all of them paged from the item endpoint.
// An item walk under a cursor that is not a keyset is repeated until a walk
// finds no item it had not seen, as an offset shifts when the list changes.
func docItems[H, I any](ctx context.Context, src Source, sp docSpec[H, I], parent *record) ([]*record, error) {
	kids := parent.list(sp.childKey)
	if parent.err != nil {
		return nil, parent.err
	}
	walk := len(kids) >= pageSize
	if walk {
		kids = kids[:0]
	}
	seen := make(map[string]bool, len(kids))
	out := make([]*record, 0, len(kids))
	add := func(raw json.RawMessage) (bool, error) {
		r, err := decodeRecord(sp.itemTable(), raw)
		if err != nil {
			return false, fmt.Errorf("%s %s: %w", sp.table(), parent.id, err)
		}
		if seen[r.id] {
			return false, nil // an item listed twice (a page boundary moved) is staged once
		}
		seen[r.id] = true
		out = append(out, r)
		return true, nil
	}
	for _, raw := range kids {
		if _, err := add(raw); err != nil {
			return nil, err
		}
	}
	for pass := 1; walk; pass++ {
		q := itemQuery(sp, parent.id)
		q.Paging = &zuora.Paging{}
		fresh := 0
		for raw, err := range src.Records(ctx, q) {
			if err != nil {
				return nil, fmt.Errorf("query %s of %s %s: %w", sp.itemObject(), sp.table(), parent.id, err)
			}
			isNew, err := add(raw)
			if err != nil {
				return nil, err
			}
			if isNew {
				fresh++
			}
		}
		switch {
		case !q.Paging.NonKeyset || (pass > 1 && fresh == 0):
			walk = false
		case pass == maxPasses:
			return nil, fmt.Errorf("query %s of %s %s: the list is paged by offset and still changed during walk %d", sp.itemObject(), sp.table(), parent.id, pass)
		}
	}
	return out, nil
}
