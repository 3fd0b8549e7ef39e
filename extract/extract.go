// Package extract stages one window of Zuora Billing documents: it walks Object
// Query for invoices, payments, refunds, credit and debit memos (items
// completed), writes each raw table as a zstd Parquet part and commits the
// snapshot with an extract manifest written last.
package extract

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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
	// Statuses filters a document table (a header table of stage.Documents,
	// such as "invoices") by status; a table without a key, or with an empty
	// list, is not filtered: every status is extracted, so that a status change
	// after posting is seen. The application objects filter on no status.
	Statuses map[string][]string
	// Concurrency bounds how many walks (one document type over one time slice)
	// run at once; 0 means 4. The Zuora client's MaxConcurrency still bounds the
	// requests in flight across all of them.
	Concurrency int
	// LookupConcurrency bounds the queries that complete what the walks
	// found: per walk, the documents whose expanded items are cut off at 99
	// having their items paged from the item endpoint (and held) while the
	// walk stages its records in the order they came, and the queries of the
	// applications' accounts by id; 0 means 8. The pipeline passes
	// --zuora-concurrency.
	LookupConcurrency int
	// Slices splits the window's query range into up to this many contiguous
	// half-open time slices (bounds on whole seconds), walked concurrently per
	// document type; slice n writes part n of each table, so keys stay a pure
	// function of (table, window, part). 0 means 1.
	Slices int
	// RowGroupRows is the most rows per Parquet row group (a row group is
	// also cut once parquet-go estimates it at 1 MiB); 0 means 10000.
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
	// DocTypes are the types moved (documents and application kinds, as
	// stage.Moved completes them); nil means every one. The others are neither
	// queried nor listed in the manifest. The accounts of the window's
	// applications are fetched when an application kind is moved.
	DocTypes []stage.DocType
	// Now is the clock that dates a walk's start, to tell a row changed during
	// the walk from one the tenant should not have returned; nil means time.Now.
	Now func() time.Time
	// Progress hears of every page and record the walks fetch; nil hears nothing.
	Progress Progress
}

// Progress hears how far the walks are, per raw table: pages and records
// fetched since the last call (walks of several tables call it concurrently).
type Progress interface {
	Fetched(table string, pages, records int64)
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
	m, err := committedExtract(ctx, st, w, opts.Force, log)
	if err == nil && m == nil {
		x := &run{src: src, st: st, w: w, opts: opts, log: log, from: w.Start.Add(-opts.Overlap)}
		x.slices = split(x.from, w.End, opts.Slices)
		m, err = x.extract(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("extract window %s: %w", w.ID(), err)
	}
	return m, nil
}

// committedExtract returns w's committed manifest, or nil when there is none
// or force is set: then the old manifest is deleted first, since the parts
// are about to be rewritten and a failed re-run must leave none.
func committedExtract(ctx context.Context, st *stage.Stage, w stage.Window, force bool, log *slog.Logger) (*stage.ExtractManifest, error) {
	if force {
		return nil, st.DeleteExtract(ctx, w)
	}
	m, found, err := st.ReadExtract(ctx, w)
	if err != nil || !found {
		return nil, err
	}
	log.Info("extract already committed", "committed_at", m.CommittedAt)
	return &m, nil
}

// extract stages the window: every walk, the accounts of its applications,
// then the manifest, written last.
func (x *run) extract(ctx context.Context) (*stage.ExtractManifest, error) {
	var err error
	if x.prior, err = priorKeys(ctx, x.st, x.w, x.from); err != nil {
		return nil, err
	}
	first, err := firstWindow(ctx, x.st, x.w)
	if err != nil {
		return nil, err
	}
	if first {
		if err := probeAccountField(ctx, x.src, x.opts.ERPAccountField); err != nil {
			return nil, err
		}
	}
	started := time.Now()
	if err := x.walkAll(ctx); err != nil {
		return nil, err
	}
	if slices.ContainsFunc(x.opts.DocTypes, stage.DocType.IsApplication) {
		if err := x.stageAccounts(ctx); err != nil {
			return nil, err
		}
	}
	x.merge()
	x.mergeQuarantine()
	m := x.manifest()
	if err := x.st.WriteManifest(ctx, x.w, m); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	x.log.Info("extract committed", "tables", len(m.Tables), "warnings", len(m.Warnings), "elapsed", time.Since(started))
	return m, nil
}

// walkAll walks every moved type over every slice, Options.Concurrency at a
// time; a cancellation is named before the error it caused.
func (x *run) walkAll(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(x.opts.Concurrency)
	for _, dt := range x.opts.DocTypes {
		ent := entities[dt]
		for n, r := range x.slices {
			g.Go(func() error { return ent.walk(gctx, x, n, r) })
		}
	}
	err := g.Wait()
	if cerr := ctx.Err(); err != nil && cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}

// manifest is the extract manifest of the merged walks, with every warning:
// the types not moved first, then each table's, then the accounts'.
func (x *run) manifest() *stage.ExtractManifest {
	m := &stage.ExtractManifest{
		Window:      x.w.ID(),
		Start:       x.w.Start.UTC(),
		End:         x.w.End.UTC(),
		QueryFrom:   x.from,
		RunID:       x.opts.RunID,
		CodeVersion: x.opts.CodeVersion,
		CommittedAt: time.Now().UTC(),
		Tables:      x.tables,
	}
	for _, dt := range stage.Streams() {
		t := dt.HeaderTable()
		if !x.opts.moves(dt) {
			m.Warnings = append(m.Warnings, t+": not extracted (the "+dt.Words()+" is not among the types moved)")
		}
		for _, ws := range x.warnings[t] {
			m.Warnings = append(m.Warnings, ws...)
		}
	}
	for _, ws := range x.warnings[stage.AccountsTable] {
		m.Warnings = append(m.Warnings, ws...)
	}
	return m
}

func (o Options) withDefaults() (Options, error) {
	if o.Overlap < 0 {
		return o, fmt.Errorf("extract: negative overlap %s", o.Overlap)
	}
	if o.Overlap == 0 {
		o.Overlap = DefaultOverlap
	}
	for table := range o.Statuses {
		if dt, ok := stage.DocTypeOfTable(table); !ok || !dt.IsDocument() {
			return o, fmt.Errorf("extract: statuses for %q: want one of %s", table, strings.Join(stage.DocumentTables(), ", "))
		}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.LookupConcurrency <= 0 {
		o.LookupConcurrency = zuora.DefaultMaxConcurrency
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
		o.DocTypes = stage.LoadOrder()
	}
	types, err := stage.Moved(o.DocTypes)
	if err != nil {
		return o, fmt.Errorf("extract: %w", err)
	}
	o.DocTypes = slices.DeleteFunc(types, func(d stage.DocType) bool { return d == stage.Reversal })
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
	from   time.Time         // the query's lower bound: Start minus the overlap
	slices []span            // [from, w.End) cut into Options.Slices parts
	prior  map[string]keySet // per table, what other committed windows staged in [from, w.End)

	mu          sync.Mutex
	quar        []quarantineSnap                 // the quarantine parts of every walk
	parts       map[string][]stage.TableSnapshot // per table, one snapshot per slice
	warnings    map[string][][]string            // per table, the warnings of each slice
	tables      map[string]stage.TableSnapshot   // parts merged, once every walk is done
	accounts    map[string]bool                  // the accountId of every application staged
	accountSnap *stage.TableSnapshot             // the accounts part, once fetched
}

// span is a half-open range [lo, hi) of updatedDate values.
type span struct{ lo, hi time.Time }

// has reports whether t is in the span.
func (r span) has(t time.Time) bool { return !t.Before(r.lo) && t.Before(r.hi) }

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

// docKey identifies one version of one record: the first 128 bits of the
// SHA-256 of its id and its updatedDate in microseconds, so a window's dedupe
// set costs the same small entry per record however long its ids are.
type docKey [16]byte

// keySet is a set of record versions.
type keySet map[docKey]struct{}

func (s keySet) has(k docKey) bool { _, ok := s[k]; return ok }

func keyOf(id string, updated time.Time) docKey {
	var micros [9]byte
	micros[0] = 1 // dated; an undated key (quarantineKey) has none
	binary.BigEndian.PutUint64(micros[1:], uint64(updated.UnixMicro()))
	return hashKey(id, micros[:])
}

// hashKey is the docKey of id (its length first, so no id runs into the
// suffix) followed by suffix.
func hashKey(id string, suffix []byte) docKey {
	buf := make([]byte, 0, 8+len(id)+len(suffix))
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(id)))
	buf = append(append(buf, id...), suffix...)
	sum := sha256.Sum256(buf)
	return docKey(sum[:16])
}

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
	if x.accountSnap != nil {
		x.tables[stage.AccountsTable] = *x.accountSnap
	}
}

// zuoraTime formats t as the explicit UTC value Object Query filters take.
func zuoraTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// documentQuery is the Object Query of a stream, without filters or order:
// a document's account and items expanded; an application as it is (Zuora
// offers no account expand on them).
func documentQuery[H, I any](sp docSpec[H, I], erpField string) zuora.Query {
	q := zuora.Query{Object: sp.object(), Fields: sp.fields, PageSize: pageSize}
	if sp.application {
		return q
	}
	q.Expand = []string{"account"}
	q.ChildFields = map[string][]string{"account": accountFields(erpField)}
	if sp.itemTable() != "" {
		q.Expand = append(q.Expand, sp.expand)
		q.ChildFields[sp.expand] = sp.itemFields
	}
	return q
}

// query builds the Object Query of a document type for the range r.
func query[H, I any](x *run, sp docSpec[H, I], r span) zuora.Query {
	q := documentQuery(sp, x.opts.ERPAccountField)
	q.Filters = []string{
		"updateddate.GE:" + zuoraTime(r.lo),
		"updateddate.LT:" + zuoraTime(r.hi),
	}
	q.Sort = "updateddate.ASC"
	statuses := x.opts.Statuses[sp.table()]
	switch len(statuses) {
	case 0:
	case 1:
		q.Filters = append(q.Filters, "status.EQ:"+statuses[0])
	default:
		q.Filters = append(q.Filters, "status.IN:["+strings.Join(statuses, ",")+"]")
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
