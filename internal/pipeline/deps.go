package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/load"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// holdings answers the load's questions about what the applications of a
// window depend on beyond it (load.Dependencies), in this order: the ledger
// of every window (the ERP holds it live), the other unfinished windows (it is
// ready there, not yet confirmed: wait), the outstanding rejects (rejected),
// and last Zuora, by id: a document Zuora changed at or after the high water
// is staged by a window not loaded yet (wait); one older, or one Zuora does
// not know, is left to the ERP, which resolves the id or refuses it.
type holdings struct {
	p *Pipeline
	// rejected is, once read, why each outstanding or acknowledged reject
	// is held back, by Zuora id: the reject index does not change while a
	// window loads (its answers are indexed after), so each phase need not
	// read it again.
	rejected map[string]string
	// unsettled is, by window id, what each other unfinished window read so
	// far holds ready and not settled: only this window's ledger changes
	// while it loads, so each phase need not read those windows again.
	unsettled map[string]map[string]stage.DocType
}

var _ load.Dependencies = (*holdings)(nil)

func (h *holdings) Holdings(ctx context.Context, w stage.Window, deps []load.Dep) (map[string]load.Holding, error) {
	p := h.p
	ids := make([]string, 0, len(deps))
	for _, d := range deps {
		ids = append(ids, d.ZuoraID)
	}
	out := map[string]load.Holding{}
	live, err := p.liveInERP(ctx, ids)
	if err != nil {
		return nil, err
	}
	for id, in := range live {
		out[id] = load.Holding{State: load.Live, Why: "live in the ERP by the ledger of window " + in}
	}
	open := func() []load.Dep {
		var rest []load.Dep
		for _, d := range deps {
			if _, ok := out[d.ZuoraID]; !ok {
				rest = append(rest, d)
			}
		}
		return rest
	}
	if rest := open(); len(rest) > 0 {
		if err := h.readyElsewhere(ctx, w, rest, out); err != nil {
			return nil, err
		}
	}
	if rest := open(); len(rest) > 0 {
		if err := h.rejectedDeps(ctx, rest, out); err != nil {
			return nil, err
		}
	}
	if rest := open(); len(rest) > 0 {
		if err := p.notStagedYet(ctx, rest, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// liveInERP returns, of ids, those the ERP holds live by the ledger of every
// window (the last confirmed post, repost or apply of the id came after its
// last confirmed reversal), each with the window that confirmed it.
func (p *Pipeline) liveInERP(ctx context.Context, ids []string) (map[string]string, error) {
	if len(ids) == 0 {
		return map[string]string{}, nil
	}
	srcs, err := warehouse.LedgerSources(ctx, p.st)
	if err != nil {
		return map[string]string{}, err
	}
	reversal := warehouse.Literal(string(stage.Reversal))
	return ledgerByID(ctx, srcs, ids, func(in string) string {
		return `SELECT zuora_id, arg_max("window", finished_at) FILTER (WHERE doc_type <> ` + reversal + `)
FROM ledger
WHERE action = ` + warehouse.Literal(stage.ActionPost) + ` AND outcome IN (` + warehouse.Literal(stage.OutcomeCreated) + `, ` + warehouse.Literal(stage.OutcomeDuplicate) + `)
  AND zuora_id IN (` + in + `)
GROUP BY zuora_id
HAVING max(finished_at) FILTER (WHERE doc_type <> ` + reversal + `) >
       coalesce(max(finished_at) FILTER (WHERE doc_type = ` + reversal + `), TIMESTAMP '0001-01-01')`
	})
}

// ErrorMarked returns, of ids, the documents whose last successful
// write-back in the ledger of a window other than w set Error, with that window.
func (h *holdings) ErrorMarked(ctx context.Context, w stage.Window, ids []string) (map[string]string, error) {
	srcs, err := warehouse.LedgerSources(ctx, h.p.st)
	if err != nil {
		return nil, err
	}
	srcs = slices.DeleteFunc(srcs, func(s warehouse.Source) bool { return s.Window == w.ID() })
	return ledgerByID(ctx, srcs, ids, func(in string) string {
		return `SELECT zuora_id, "window" FROM ledger
WHERE action = ` + warehouse.Literal(stage.ActionMark) + ` AND outcome IN (` + warehouse.Literal(stage.OutcomeMarked) + `, ` + warehouse.Literal(stage.OutcomeMarkedError) + `)
  AND zuora_id IN (` + in + `)
QUALIFY row_number() OVER (PARTITION BY zuora_id ORDER BY finished_at DESC) = 1 AND outcome = ` + warehouse.Literal(stage.OutcomeMarkedError)
	})
}

// ledgerByID runs query over the ledger parts srcs for the distinct ids, a
// thousand at a time (query gets them as a quoted SQL list), and returns its
// first column mapped to its second; nothing without parts.
func ledgerByID(ctx context.Context, srcs []warehouse.Source, ids []string, query func(in string) string) (map[string]string, error) {
	if len(srcs) == 0 {
		return map[string]string{}, nil
	}
	db, err := warehouse.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := db.ViewParquet(ctx, "ledger", "ledger", srcs); err != nil {
		return nil, err
	}
	out, err := byID(ctx, db, ids, query)
	if err != nil {
		return nil, fmt.Errorf("read the ledger of every window: %w", err)
	}
	return out, nil
}

// byID runs query on db for the distinct ids, a thousand at a time (query
// gets them as a quoted SQL list), and returns its first column mapped to its second.
func byID(ctx context.Context, db *warehouse.DB, ids []string, query func(in string) string) (map[string]string, error) {
	out := map[string]string{}
	for chunk := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(ids))), 1000) {
		quoted := make([]string, len(chunk))
		for i, id := range chunk {
			quoted[i] = warehouse.Literal(id)
		}
		rows, err := db.Strings(ctx, query(strings.Join(quoted, ", ")))
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			out[r[0]] = r[1]
		}
	}
	return out, nil
}

// readyElsewhere marks Waiting the deps that another unfinished window holds
// ready and the ERP has not settled yet.
func (h *holdings) readyElsewhere(ctx context.Context, w stage.Window, deps []load.Dep, out map[string]load.Holding) error {
	ws, err := h.p.st.UnfinishedWindows(ctx)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, d := range deps {
		want[d.ZuoraID] = true
	}
	for _, o := range ws {
		if o.ID() == w.ID() || len(want) == 0 {
			continue
		}
		unsettled, err := h.unsettledIn(ctx, o)
		if err != nil {
			return err
		}
		for id, dt := range unsettled {
			if want[id] {
				out[id] = load.Holding{State: load.Waiting, Why: fmt.Sprintf("%s %s is ready in window %s, not confirmed by the ERP yet", dt.Words(), id, o.ID())}
				delete(want, id)
			}
		}
	}
	return nil
}

// unsettledIn is load.Unsettled of window o, read once per load.
func (h *holdings) unsettledIn(ctx context.Context, o stage.Window) (map[string]stage.DocType, error) {
	if u, ok := h.unsettled[o.ID()]; ok {
		return u, nil
	}
	u, err := load.Unsettled(ctx, h.p.st, o)
	if err != nil {
		return nil, err
	}
	if h.unsettled == nil {
		h.unsettled = map[string]map[string]stage.DocType{}
	}
	h.unsettled[o.ID()] = u
	return u, nil
}

// rejectedDeps marks Rejected the deps that are outstanding rejects, or
// acknowledged ones, which never go to the ERP.
func (h *holdings) rejectedDeps(ctx context.Context, deps []load.Dep, out map[string]load.Holding) error {
	if h.rejected == nil {
		why, err := h.p.rejectedWhy(ctx)
		if err != nil {
			return err
		}
		h.rejected = why
	}
	for _, d := range deps {
		if why, ok := h.rejected[d.ZuoraID]; ok {
			out[d.ZuoraID] = load.Holding{State: load.Rejected, Why: why}
		}
	}
	return nil
}

// rejectedWhy says, by Zuora id, why each document that is an outstanding
// reject, or an acknowledged one, never to go, is held back.
func (p *Pipeline) rejectedWhy(ctx context.Context) (map[string]string, error) {
	why, err := rejectsBy(ctx, p, func(r *stage.OutstandingReject) (string, bool) {
		if !stage.DocType(r.DocType).IsDocument() {
			return "", false
		}
		return fmt.Sprintf("%s %s is rejected in window %s (%s: %s)",
			strings.ReplaceAll(r.DocType, "_", " "), orID(r.Number, r.ZuoraID), r.Window, r.ReasonCode, r.Message), true
	})
	if err != nil {
		return nil, err
	}
	acks, err := p.st.Acks(ctx)
	if err != nil {
		return nil, err
	}
	for id, a := range acks {
		why[id] = fmt.Sprintf("%s %s is acknowledged, never to go to the ERP (%s by %s)",
			strings.ReplaceAll(a.DocType, "_", " "), id, a.Reason, a.By)
	}
	return why, nil
}

func orID(number, id string) string {
	if number != "" {
		return number + " (" + id + ")"
	}
	return id
}

// notStagedBatch is how many ids one query of notStagedYet asks for.
const notStagedBatch = 50

// notStagedYet asks Zuora, by id, when it last changed each dep the stage does
// not hold: at or after the high water, a window not loaded yet stages it
// (Waiting); before it, the stage never saw it (older than the stage's
// start) and the ERP decides (left Unknown). One Zuora does not return by id
// (a record it sends without an id, quarantined, or gone) waits too: it
// cannot be posted until a window stages it, and posting what depends on it
// would only earn a refusal that its posting later would not undo.
func (p *Pipeline) notStagedYet(ctx context.Context, deps []load.Dep, out map[string]load.Holding) error {
	hw, ok, err := p.st.HighWater(ctx)
	if err != nil || !ok {
		return err
	}
	zc, err := p.zuoraClient()
	if err != nil {
		return err
	}
	a := ages{zc: zc, next: hw.Next, found: map[string]bool{}, out: out}
	byType := depsByType(deps)
	for _, dt := range slices.Sorted(maps.Keys(byType)) {
		if err := a.ask(ctx, dt, byType[dt], p.moved(dt)); err != nil {
			return err
		}
	}
	for _, d := range deps {
		if !a.found[d.ZuoraID] {
			out[d.ZuoraID] = load.Holding{State: load.Waiting, Why: fmt.Sprintf("%s %s is not staged and Zuora returns no document with this id (sent without one, quarantined, or gone); it waits until a window stages it",
				typeWords(d.DocType), d.ZuoraID)}
		}
	}
	return nil
}

// depsByType groups the ids of deps by the document type to ask Zuora for:
// every document type for a dep whose line did not say its type.
func depsByType(deps []load.Dep) map[stage.DocType][]string {
	byType := map[stage.DocType][]string{}
	for _, d := range deps {
		types := []stage.DocType{d.DocType}
		if !d.DocType.IsDocument() {
			types = stage.Documents() // the line did not say: any document may be it
		}
		for _, dt := range types {
			byType[dt] = append(byType[dt], d.ZuoraID)
		}
	}
	return byType
}

// ages asks Zuora when documents last changed: found gathers the ids Zuora
// returned (or need not be asked of), out the Waiting of those changed at or
// after next, the high water.
type ages struct {
	zc    *zuora.Client
	next  time.Time
	found map[string]bool
	out   map[string]load.Holding
}

// ask asks Zuora about the documents ids of type dt, notStagedBatch at a
// time; a type the run does not move is not asked: the ERP decides.
func (a ages) ask(ctx context.Context, dt stage.DocType, ids []string, moved bool) error {
	if !moved {
		for _, id := range ids {
			a.found[id] = true // not moved: the ERP decides
		}
		return nil
	}
	for batch := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(ids))), notStagedBatch) {
		if err := a.askBatch(ctx, dt, batch); err != nil {
			return err
		}
	}
	return nil
}

// askBatch asks Zuora about the documents batch of type dt in one query.
func (a ages) askBatch(ctx context.Context, dt stage.DocType, batch []string) error {
	q := zuora.Query{Object: dt.Object(), Fields: []string{"id", "updatedDate"},
		Filters: []string{"id.IN:[" + strings.Join(batch, ",") + "]"}, Sort: "id.ASC"}
	for raw, err := range a.zc.Records(ctx, q) {
		if err != nil {
			return fmt.Errorf("ask Zuora when the documents applications depend on changed: %w", err)
		}
		var rec struct {
			ID      string `json:"id"`
			Updated string `json:"updatedDate"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			return fmt.Errorf("query %s by id: %w", dt.Object(), err)
		}
		if slices.Contains(batch, rec.ID) {
			a.record(dt, rec.ID, rec.Updated)
		}
	}
	return nil
}

// record notes that Zuora returned id, last changed at updated: Waiting
// when that is at or after the high water, else the ERP decides.
func (a ages) record(dt stage.DocType, id, updated string) {
	a.found[id] = true
	at, err := time.Parse(time.RFC3339, updated)
	if err != nil || at.Before(a.next) {
		return // nothing to say of it, or older than the stage: the ERP decides
	}
	a.out[id] = load.Holding{State: load.Waiting, Why: fmt.Sprintf("%s %s changed in Zuora at %s, in a window not loaded yet",
		dt.Words(), id, at.UTC().Format(time.RFC3339))}
}

func typeWords(dt stage.DocType) string {
	if dt == "" {
		return "document"
	}
	return dt.Words()
}

// moved reports whether the run moves document type dt.
func (p *Pipeline) moved(dt stage.DocType) bool {
	return p.cfg.DocTypes == nil || slices.Contains(p.cfg.DocTypes, dt)
}
