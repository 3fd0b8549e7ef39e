package extract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// RecheckBatch is how many ids one re-check query asks for (filter[]=id.IN:[…]):
// 50 ids of 32 characters keep the URL under 2 KB, far below the 8 KB that
// gateways commonly accept, and one page (99) holds every answer. Zuora
// documents no limit for IN; this one is ours.
const RecheckBatch = 50

// Wanted is an outstanding reject to fetch again by id.
type Wanted struct {
	DocType stage.DocType
	ID      string       // Zuora id
	Window  stage.Window // the window whose snapshot holds the rejected version
	// Updated is that version's updatedDate; nil when Zuora sent none (a
	// quarantined record), and then any version dated inside the window is it.
	Updated *time.Time
	// Account is the account as the window staged it: what can change in
	// Zuora without a new version of the document.
	Account stage.Account
	// Malformed says the window holds no good row of it (it was quarantined),
	// so any version Zuora now sends intact is worth staging.
	Malformed bool
	// Reason is the reject's reason code. An application rejected as
	// SIGN_UNDETERMINED is staged again at the same version, so that its
	// window decides its group's direction again with what the stage holds
	// by then (docs/design.md "AR pipeline", "Sign").
	Reason string
}

// What a re-check found of one document (Finding.Outcome).
const (
	Unchanged      = "unchanged"       // same version, same account: nothing new to map
	Staged         = "staged"          // same version, new data (its account was fixed, or it is no longer malformed)
	Newer          = "newer"           // a newer version: the window whose range holds it stages it
	NotFound       = "not_found"       // Zuora does not return it any more
	StillMalformed = "still_malformed" // Zuora still sends it in a form that cannot be staged
)

// Finding is what a re-check found of one wanted document.
type Finding struct {
	Wanted
	Outcome string
	Note    string // for people: what was found, e.g. the new updatedDate
}

// RecheckOptions tunes Recheck; the zero value is usable.
type RecheckOptions struct {
	RunID string
	// ERPAccountField is the account's custom field holding the ERP customer,
	// as Options.ERPAccountField; "" means DefaultERPAccountField.
	ERPAccountField string
	RowGroupRows    int // 0 means 10000
	Logger          *slog.Logger
}

// Rechecked is the outcome of a re-check: what it found of every document and
// the rows it wrote, per window, which nothing reads until Commit lists them
// in the window's extract manifest.
type Rechecked struct {
	Findings []Finding
	runID    string
	at       time.Time
	windows  map[string]*recheckWindow
	accounts map[string]map[string]stage.AccountRow // per window id, the accounts of the applications staged again
}

type recheckWindow struct {
	w      stage.Window
	tables map[string]stage.TableSnapshot
	ids    []string
}

// Recheck fetches the wanted documents again by id (RecheckBatch per query) and
// writes, as re-check parts of each one's window, those Zuora holds at the
// very version staged but with new data (a fixed account, or intact where it
// was malformed); nothing is committed until Commit.
func Recheck(ctx context.Context, src Source, st *stage.Stage, wanted []Wanted, opts RecheckOptions) (*Rechecked, error) {
	if opts.RowGroupRows <= 0 {
		opts.RowGroupRows = 10000
	}
	if opts.ERPAccountField == "" {
		opts.ERPAccountField = DefaultERPAccountField
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	res := &Rechecked{runID: opts.RunID, at: time.Now().UTC(), windows: map[string]*recheckWindow{}, accounts: map[string]map[string]stage.AccountRow{}}
	byType := map[stage.DocType][]Wanted{}
	for _, w := range wanted {
		if _, ok := entities[w.DocType]; !ok {
			return nil, fmt.Errorf("re-check %s: %q is not a document type or application kind", w.ID, w.DocType)
		}
		byType[w.DocType] = append(byType[w.DocType], w)
	}
	for _, dt := range stage.Streams() {
		if ws := byType[dt]; len(ws) > 0 {
			if err := entities[dt].recheck(ctx, src, st, ws, res, opts); err != nil {
				return nil, fmt.Errorf("re-check %s: %w", dt.HeaderTable(), err)
			}
		}
	}
	if err := res.writeAccounts(ctx, st, opts.RowGroupRows); err != nil {
		return nil, fmt.Errorf("re-check %s: %w", stage.AccountsTable, err)
	}
	return res, nil
}

// Windows returns the windows that have re-checked rows to commit, in time order.
func (r *Rechecked) Windows() []stage.Window {
	var out []stage.Window
	for _, rw := range r.windows {
		out = append(out, rw.w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Commit lists w's re-checked rows in its extract manifest, and records the
// re-check there: from then on they are part of the window's snapshot.
func (r *Rechecked) Commit(ctx context.Context, st *stage.Stage, w stage.Window) error {
	rw, ok := r.windows[w.ID()]
	if !ok {
		return nil
	}
	m, found, err := st.ReadExtract(ctx, w)
	if err != nil {
		return fmt.Errorf("commit re-check of window %s: %w", w.ID(), err)
	}
	if !found {
		return fmt.Errorf("commit re-check of window %s: the window has no committed snapshot", w.ID())
	}
	for _, table := range slices.Sorted(maps.Keys(rw.tables)) {
		snap, add := m.Tables[table], rw.tables[table]
		snap.Files = append(snap.Files, add.Files...)
		snap.Rows += add.Rows
		m.Tables[table] = snap
	}
	m.Rechecks = append(m.Rechecks, stage.Recheck{RunID: r.runID, At: r.at, Documents: rw.ids})
	if err := st.WriteManifest(ctx, w, &m); err != nil {
		return fmt.Errorf("commit re-check of window %s: %w", w.ID(), err)
	}
	return nil
}

// recheckRows are the rows of one document type a re-check stages in one window.
type recheckRows[H, I any] struct {
	w       stage.Window
	headers []H
	items   []I
	updated []time.Time // per header
	itemUpd []time.Time // per item
}

// rechecker fetches the wanted documents of one type again and keeps, per
// window, the rows of those it stages.
type rechecker[H, I any] struct {
	src  Source
	sp   docSpec[H, I]
	opts RecheckOptions
	res  *Rechecked
	byID map[string]Wanted
	rows map[string]*recheckRows[H, I] // by window id
}

func recheckTable[H, I any](ctx context.Context, src Source, st *stage.Stage, sp docSpec[H, I], wanted []Wanted, res *Rechecked, opts RecheckOptions) error {
	rc := &rechecker[H, I]{src: src, sp: sp, opts: opts, res: res, byID: make(map[string]Wanted, len(wanted)), rows: map[string]*recheckRows[H, I]{}}
	ids := make([]string, 0, len(wanted))
	for _, w := range wanted {
		if _, dup := rc.byID[w.ID]; !dup {
			ids = append(ids, w.ID)
		}
		rc.byID[w.ID] = w
	}
	slices.Sort(ids)
	for batch := range slices.Chunk(ids, RecheckBatch) {
		fetch := rc.batch
		if sp.application {
			fetch = rc.applicationBatch
		}
		if err := fetch(ctx, batch); err != nil {
			return err
		}
	}
	return rc.write(ctx, st)
}

// applicationBatch fetches one query's worth of applications by id, then
// their accounts by id (applications expand none), and stages again those
// Zuora holds at the same version whose account's ERP customer changed, or
// whose sign is to be decided again.
func (rc *rechecker[H, I]) applicationBatch(ctx context.Context, batch []string) error {
	pending, err := rc.sameApplications(ctx, batch)
	if err != nil {
		return err
	}
	var ids []string
	for _, p := range pending {
		if p.account != "" && !slices.Contains(ids, p.account) {
			ids = append(ids, p.account)
		}
	}
	slices.Sort(ids)
	accounts := map[string]stage.AccountRow{}
	fetch := accountFetch{erpField: rc.opts.ERPAccountField, add: func(a stage.AccountRow) error { accounts[a.ID] = a; return nil }}
	if err := fetch.fetch(ctx, rc.src, ids, 1); err != nil { // a batch of applications: one query of accounts
		return err
	}
	for _, p := range pending {
		rc.restageApplication(p, accounts[p.account])
	}
	return nil
}

// sameApp is an application Zuora holds at the very version staged: its row
// to stage again, and its account's id.
type sameApp[H any] struct {
	w       Wanted
	row     H
	account string
}

// sameApplications asks Zuora for the applications of batch by id, records
// what it found of each one not at the staged version, and returns the rest.
func (rc *rechecker[H, I]) sameApplications(ctx context.Context, batch []string) ([]sameApp[H], error) {
	sp := rc.sp
	q := documentQuery(sp, rc.opts.ERPAccountField)
	q.Filters, q.Sort = []string{"id.IN:[" + strings.Join(batch, ",") + "]"}, "id.ASC"
	var pending []sameApp[H]
	seen := map[string]bool{}
	for raw, err := range rc.src.Records(ctx, q) {
		if err != nil {
			return nil, fmt.Errorf("query %s by id: %w", sp.object(), err)
		}
		rec, id, outcome, note, err := answered(sp, rc.byID, raw)
		switch {
		case err != nil:
			return nil, err
		case seen[id]:
			continue // listed twice (a page boundary moved): once is enough
		}
		seen[id] = true
		if outcome != "" {
			rc.found(rc.byID[id], outcome, note)
			continue
		}
		row := sp.header(rec, account{}, 0)
		if rec.err != nil {
			rc.found(rc.byID[id], StillMalformed, rec.err.Error())
			continue
		}
		at := rc.res.at
		setRechecked(&row, &at)
		pending = append(pending, sameApp[H]{w: rc.byID[id], row: row, account: orEmpty(rec.str("accountId"))})
	}
	rc.notFound(batch, seen)
	return pending, nil
}

// restageApplication stages p again, with its account a, when there is a
// reason to; otherwise it records p unchanged.
func (rc *rechecker[H, I]) restageApplication(p sameApp[H], a stage.AccountRow) {
	note := restageNote(p.w, a)
	if note == "" {
		rc.found(p.w, Unchanged, "")
		return
	}
	rc.found(p.w, Staged, note)
	rc.stage(p.w, p.row, nil)
	if a.ID == "" {
		return
	}
	at := rc.res.at
	a.RecheckedAt = &at
	byID := rc.res.accounts[p.w.Window.ID()]
	if byID == nil {
		byID = map[string]stage.AccountRow{}
		rc.res.accounts[p.w.Window.ID()] = byID
	}
	byID[a.ID] = a
}

// restageNote says why an application Zuora holds at the staged version is
// staged again, with its account a now, or "" when nothing is new.
func restageNote(w Wanted, a stage.AccountRow) string {
	switch {
	case w.Malformed:
		return "served intact now: staged"
	case w.Reason == stage.ReasonSignUndetermined:
		return "the same version: staged again, so that its window decides its group's sign with what the stage holds now"
	case w.Reason == stage.ReasonMissingField && w.DocType.IsApplication():
		// Its documents (hence its currency) may be staged by a later window since.
		return "the same version: staged again, so that its window finds its currency with what the stage holds now"
	case orEmpty(a.ERPAccountID) != w.Account.ERPID: // an application's customer is its account's ERP id
		return "account changed in Zuora: staged again"
	}
	return ""
}

// batch fetches one query's worth of ids and records what Zuora holds of each.
func (rc *rechecker[H, I]) batch(ctx context.Context, batch []string) error {
	sp := rc.sp
	q := documentQuery(sp, rc.opts.ERPAccountField)
	q.Filters, q.Sort = []string{"id.IN:[" + strings.Join(batch, ",") + "]"}, "id.ASC"
	seen := map[string]bool{}
	for raw, err := range rc.src.Records(ctx, q) {
		if err != nil {
			return fmt.Errorf("query %s by id: %w", sp.object(), err)
		}
		id, outcome, note, row, items, err := recheckOne(ctx, rc.src, sp, rc.byID, raw, rc.res.at, rc.opts.ERPAccountField)
		if err != nil {
			return err
		}
		if seen[id] {
			continue // listed twice (a page boundary moved): once is enough
		}
		seen[id] = true
		rc.found(rc.byID[id], outcome, note)
		if outcome == Staged {
			rc.stage(rc.byID[id], *row, items)
		}
	}
	rc.notFound(batch, seen)
	return nil
}

// notFound records NotFound for each id of batch Zuora did not return.
func (rc *rechecker[H, I]) notFound(batch []string, seen map[string]bool) {
	for _, id := range batch {
		if !seen[id] {
			rc.found(rc.byID[id], NotFound, "Zuora returns no "+rc.sp.object()+" with this id")
		}
	}
}

func (rc *rechecker[H, I]) found(w Wanted, outcome, note string) {
	rc.res.Findings = append(rc.res.Findings, Finding{Wanted: w, Outcome: outcome, Note: note})
}

// stage keeps the rows of a document to stage again in its window.
func (rc *rechecker[H, I]) stage(w Wanted, row H, items []I) {
	rr := rc.rows[w.Window.ID()]
	if rr == nil {
		rr = &recheckRows[H, I]{w: w.Window}
		rc.rows[w.Window.ID()] = rr
	}
	rr.headers = append(rr.headers, row)
	rr.updated = append(rr.updated, rc.res.at)
	for _, it := range items {
		rr.items = append(rr.items, it)
		rr.itemUpd = append(rr.itemUpd, rc.res.at)
	}
	rw := rc.res.window(w.Window)
	rw.ids = append(rw.ids, w.ID)
}

// write writes the kept rows as re-check parts of each window, uncommitted.
func (rc *rechecker[H, I]) write(ctx context.Context, st *stage.Stage) error {
	sp, opts := rc.sp, rc.opts
	for _, rr := range rc.rows {
		rw := rc.res.window(rr.w)
		snap, err := writeRecheck(ctx, st, sp.table(), rr.w, rc.res.runID, rr.headers, rr.updated, opts.RowGroupRows)
		if err != nil {
			return err
		}
		rw.tables[sp.table()] = snap
		if sp.itemTable() != "" {
			snap, err := writeRecheck(ctx, st, sp.itemTable(), rr.w, rc.res.runID, rr.items, rr.itemUpd, opts.RowGroupRows)
			if err != nil {
				return err
			}
			rw.tables[sp.itemTable()] = snap
		}
		opts.Logger.Info("re-checked documents staged", "window", rr.w.ID(), "entity", sp.table(), "documents", len(rr.headers))
	}
	return nil
}

// recheckOne decides what one record Zuora returned means for the wanted
// document it answers, and builds its rows when they are to be staged.
func recheckOne[H, I any](ctx context.Context, src Source, sp docSpec[H, I], byID map[string]Wanted, raw json.RawMessage, stamp time.Time, erpField string) (id, outcome, note string, row *H, items []I, err error) {
	rec, id, outcome, note, err := answered(sp, byID, raw)
	if err != nil || outcome != "" {
		return id, outcome, note, nil, nil, err
	}
	w := byID[rec.id]
	a := rec.account(erpField)
	if !w.Malformed && orEmpty(a.id) == w.Account.ID && orEmpty(a.number) == w.Account.Number && orEmpty(a.erpID) == w.Account.ERPID {
		return rec.id, Unchanged, "", nil, nil, nil
	}
	var lines []*record
	if sp.itemTable() != "" {
		if lines, err = docItems(ctx, src, sp, rec); err != nil {
			var bad *MalformedError
			if errors.As(err, &bad) {
				return rec.id, StillMalformed, err.Error(), nil, nil, nil
			}
			return "", "", "", nil, nil, err
		}
	}
	h := sp.header(rec, a, len(lines))
	if rec.err != nil {
		return rec.id, StillMalformed, rec.err.Error(), nil, nil, nil
	}
	at := stamp
	setRechecked(&h, &at)
	items = make([]I, len(lines))
	for i, l := range lines {
		items[i] = sp.item(l, rec)
		if l.err != nil {
			return rec.id, StillMalformed, l.err.Error(), nil, nil, nil
		}
		setRechecked(&items[i], &at)
	}
	note = "account changed in Zuora: staged again"
	if w.Malformed {
		note = "served intact now: staged"
	}
	return rec.id, Staged, note, &h, items, nil
}

// answered decodes raw, a record Zuora returned for a query by id, and says
// what its version means for the wanted document id it answers: outcome ""
// when it is the very version staged (rec is then decoded), else
// StillMalformed, Newer or Unchanged with a note. A record that answers
// nothing asked for is an error.
func answered[H, I any](sp docSpec[H, I], byID map[string]Wanted, raw json.RawMessage) (rec *record, id, outcome, note string, err error) {
	rec, derr := decodeRecord(sp.table(), raw)
	if derr != nil {
		bad := quarantineRow(sp.docType, sp.number, sp.amount, raw, derr)
		if bad.ID == nil || byID[*bad.ID].ID == "" {
			return nil, "", "", "", fmt.Errorf("zuora answered a query by id with a record that is not one of those asked for: %s", snippet(raw))
		}
		return nil, *bad.ID, StillMalformed, derr.Error(), nil
	}
	w, ok := byID[rec.id]
	if !ok {
		return nil, "", "", "", fmt.Errorf("zuora answered a query by id with %s %s, which was not asked for", sp.table(), rec.id)
	}
	switch {
	case w.Updated != nil && rec.updated.After(*w.Updated),
		w.Updated == nil && !rec.updated.Before(w.Window.End):
		return rec, rec.id, Newer, fmt.Sprintf("changed in Zuora since (updatedDate %s): the window of that version stages it", rec.rawUpd), nil
	case w.Updated != nil && rec.updated.Before(*w.Updated):
		return rec, rec.id, Unchanged, fmt.Sprintf("Zuora sends an older version (updatedDate %s) than the window staged", rec.rawUpd), nil
	}
	return rec, rec.id, "", "", nil
}

// writeAccounts writes, per window, the accounts of the applications the
// re-check staged again, as the window's re-check part of the accounts table.
func (r *Rechecked) writeAccounts(ctx context.Context, st *stage.Stage, rowGroup int) error {
	for _, id := range slices.Sorted(maps.Keys(r.accounts)) {
		byID := r.accounts[id]
		rows := make([]stage.AccountRow, 0, len(byID))
		stamps := make([]time.Time, 0, len(byID))
		for _, aid := range slices.Sorted(maps.Keys(byID)) {
			rows = append(rows, byID[aid])
			stamps = append(stamps, r.at)
		}
		rw := r.windows[id]
		snap, err := writeRecheck(ctx, st, stage.AccountsTable, rw.w, r.runID, rows, stamps, rowGroup)
		if err != nil {
			return err
		}
		rw.tables[stage.AccountsTable] = snap
	}
	return nil
}

func (r *Rechecked) window(w stage.Window) *recheckWindow {
	rw := r.windows[w.ID()]
	if rw == nil {
		rw = &recheckWindow{w: w, tables: map[string]stage.TableSnapshot{}}
		r.windows[w.ID()] = rw
	}
	return rw
}

// writeRecheck writes rows as the re-check part of a raw table of window w.
func writeRecheck[T any](ctx context.Context, st *stage.Stage, name string, w stage.Window, runID string, rows []T, updated []time.Time, rowGroup int) (stage.TableSnapshot, error) {
	t, err := openTable[T](ctx, st, name, stage.RecheckKey(name, w, runID), rowGroup)
	if err != nil {
		return stage.TableSnapshot{}, err
	}
	defer t.abort()
	for i, r := range rows {
		if err := t.add(r, updated[i]); err != nil {
			return stage.TableSnapshot{}, err
		}
	}
	snap, err := t.close()
	if err != nil {
		return stage.TableSnapshot{}, err
	}
	snap.MinUpdated, snap.MaxUpdated = nil, nil // re-check stamps, not Zuora's updatedDate
	return snap, nil
}

func orEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func setRechecked(row any, at *time.Time) {
	if r, ok := row.(stage.Rechecked); ok {
		r.SetRechecked(at)
	}
}
