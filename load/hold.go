package load

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// The order within a window (docs/design.md "AR pipeline", "Load"): reversals
// of applications, reversals of documents, the documents in load order, then
// the applications. Each phase is settled before the next starts, so a line
// never goes before what it depends on in its own window.

// phaseOf is d's place in that order.
func phaseOf(d document) int {
	if d.DocType == stage.Reversal {
		if d.reverses.IsApplication() {
			return 0
		}
		return 1
	}
	return 1 + loadOrder[d.DocType] // the reversal is LoadOrder's first
}

// loadOrder is each type's place in stage.LoadOrder, asked once per line.
var loadOrder = func() map[stage.DocType]int {
	out := map[stage.DocType]int{}
	for i, t := range stage.LoadOrder() {
		out[t] = i
	}
	return out
}()

// phaseCount is how many phases there are.
var phaseCount = len(stage.LoadOrder()) + 1

// phaseName names a phase for the logs.
func phaseName(p int) string {
	switch p {
	case 0:
		return "reversal of applications"
	case 1:
		return "reversal of documents"
	}
	return string(stage.LoadOrder()[p-1])
}

// phaseType is the type a phase posts (the reversal for both reversal phases).
func phaseType(p int) stage.DocType {
	if p <= 1 {
		return stage.Reversal
	}
	return stage.LoadOrder()[p-1]
}

// Dependencies is the narrow view the load needs of what the stage and the
// ERP hold beyond the window being loaded: the ledger of every window, the
// outstanding rejects, the other windows' lines, and Zuora for what the stage
// never saw. internal/pipeline implements it.
type Dependencies interface {
	// Holdings says, for each of deps, what holds it; an id it says nothing
	// of is Unknown.
	Holdings(ctx context.Context, w stage.Window, deps []Dep) (map[string]Holding, error)
	// ErrorMarked returns, of the documents ids, those whose last write-back
	// in the ledger of a window other than w set TransferredToAccounting =
	// Error, with that window: Zuora holds Error already. The mark bumps the
	// document's updatedDate, so it comes back in a later window; marking it
	// again there would bring it back once more, every hour.
	ErrorMarked(ctx context.Context, w stage.Window, ids []string) (map[string]string, error)
}

// Dep is one Zuora id a line depends on, with its type when the line says it
// ("" when it does not).
type Dep struct {
	ZuoraID string
	DocType stage.DocType
}

// Holding is what holds one dependency: State is one of Live, Waiting,
// Rejected or Unknown, and Why says it for a person, naming the window.
type Holding struct {
	State string
	Why   string
}

// The states of a dependency.
const (
	Live     = "live"     // the ERP holds it live by the ledger of some window: post what depends on it
	Waiting  = "waiting"  // the stage holds it ready, or Zuora changed it in a window not yet loaded: hold back
	Rejected = "rejected" // an outstanding reject (or acknowledged, never to go): dependency_rejected
	Unknown  = "unknown"  // the stage never staged it: post, the ERP resolves the id or refuses
)

// hold is the decision to hold one line back: the outcome recorded
// (OutcomeWaiting or OutcomeDependencyRejected), why, and the ids it names.
type hold struct {
	outcome string
	why     string
	on      []string
}

// holds decides, for the lines of one phase that are to be posted, which to
// hold back: a repost until the reversal of its old copy in this window is
// confirmed; a reversal of a document until the reversals of its applications
// in this window are; an application until the ERP holds live every document
// it joins. Lines of this window answer for themselves; the rest is asked of
// r.opts.Dependencies (Unknown without one).
func (r *run) holds(ctx context.Context, lines []document, all *index) (map[string]hold, error) {
	p, err := newPlanner(lines, all, r.snapshotOf)
	if err != nil {
		return nil, err
	}
	for _, d := range lines {
		p.plan(d)
	}
	answers, err := r.askDependencies(ctx, p.ask)
	if err != nil {
		return nil, err
	}
	out := map[string]hold{}
	for _, d := range lines {
		if h, held := p.final(d, answers); held {
			out[d.IdempotencyKey] = h
		}
	}
	return out, nil
}

// askDependencies asks r.opts.Dependencies what holds the dependencies in
// ask, once what this run confirmed is in the stage; nil without any to ask
// or any to answer.
func (r *run) askDependencies(ctx context.Context, ask []Dep) (map[string]Holding, error) {
	if len(ask) == 0 || r.opts.Dependencies == nil {
		return nil, nil
	}
	if err := r.ledger.flush(ctx); err != nil {
		return nil, fmt.Errorf("the stage refused the ledger: %w", err)
	}
	answers, err := r.opts.Dependencies.Holdings(ctx, r.w, ask)
	if err != nil {
		return nil, fmt.Errorf("find what the applications depend on: %w", err)
	}
	return answers, nil
}

// planner decides the holds of one phase from this window's lines, by Zuora
// id, and the ledger as the phase starts; what this window cannot decide it
// collects to ask of the Dependencies.
type planner struct {
	byZuora map[string][]document  // this window's lines, by Zuora id
	snap    map[string]*docState   // the ledger, by idempotency key
	decided map[string][]idHolding // line key → the holdings of what it depends on
	localOf map[string]Holding     // what this window's own lines say of a document
	ask     []Dep                  // what to ask of the Dependencies, each once
	asked   map[string]bool
}

// newPlanner indexes, of this window's lines all, only those the phase's
// lines can depend on, with their states from snapshotOf, so that a phase
// allocates by what it depends on, not by the window.
func newPlanner(lines []document, all *index, snapshotOf func(keys []string) map[string]*docState) (*planner, error) {
	p := &planner{byZuora: map[string][]document{}, decided: map[string][]idHolding{}, localOf: map[string]Holding{}, asked: map[string]bool{}}
	for _, d := range lines {
		for _, id := range dependsOn(d) {
			p.byZuora[id] = nil
		}
	}
	var keys []string
	err := all.each(func(_ int, d *document) error {
		if ds, ok := p.byZuora[d.ZuoraID]; ok {
			p.byZuora[d.ZuoraID] = append(ds, *d)
			keys = append(keys, d.IdempotencyKey)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.snap = snapshotOf(keys)
	return p, nil
}

// dependsOn is the Zuora ids whose lines in this window plan looks at for d.
func dependsOn(d document) []string {
	switch {
	case d.Event == stage.EventRepost:
		return []string{d.ZuoraID}
	case d.DocType == stage.Reversal, d.DocType.IsApplication():
		ids := make([]string, len(d.deps))
		for i, dp := range d.deps {
			ids[i] = dp.ZuoraID
		}
		return ids
	}
	return nil
}

// state is what the ledger says of d (the zero state when it says nothing).
func (p *planner) state(d document) *docState {
	if s := p.snap[d.IdempotencyKey]; s != nil {
		return s
	}
	return &docState{}
}

// local decides the dependency id from this window's lines that match, what
// naming it for a person; ok is false when the window has none.
func (p *planner) local(id string, match func(document) bool, what string) (h Holding, ok bool) {
	var refused, unsettled []string
	for _, d := range p.byZuora[id] {
		if !match(d) {
			continue
		}
		ok = true
		s := p.state(d)
		switch {
		case s.confirmed:
			return Holding{State: Live}, true
		case s.refuses(d.sha):
			refused = append(refused, fmt.Sprintf("%s %s was refused by the ERP (%d: %s)", what, id, s.refused.HTTPStatus, s.refused.Message))
		default:
			unsettled = append(unsettled, fmt.Sprintf("%s %s of this window is not confirmed yet", what, id))
		}
	}
	switch {
	case !ok:
	case len(unsettled) > 0:
		h = Holding{State: Waiting, Why: unsettled[0]}
	default:
		h = Holding{State: Rejected, Why: refused[0]}
	}
	return h, ok
}

// reversalOf matches the reversals of a line whose type is kind.
func reversalOf(kind func(stage.DocType) bool) func(document) bool {
	return func(d document) bool { return d.DocType == stage.Reversal && kind(d.reverses) }
}

// isDocument matches the documents (not applications, not reversals).
func isDocument(d document) bool { return d.DocType.IsDocument() }

// mayHold reports whether a hold can keep d back: a repost, a reversal or
// an application (plan decides nothing of any other line).
func mayHold(d document) bool {
	return d.Event == stage.EventRepost || d.DocType == stage.Reversal || d.DocType.IsApplication()
}

// plan records what this window decides of d's dependencies, and what is
// left to ask.
func (p *planner) plan(d document) {
	switch {
	case d.Event == stage.EventRepost:
		p.planRepost(d)
	case d.DocType == stage.Reversal:
		p.planReversal(d)
	case d.DocType.IsApplication():
		p.planApplication(d)
	}
}

// planRepost holds a repost on the reversal of its old copy in this window.
func (p *planner) planRepost(d document) {
	same := func(t stage.DocType) bool { return t == d.DocType }
	if h, ok := p.local(d.ZuoraID, reversalOf(same), "the reversal of "+d.DocType.Words()); ok {
		p.decide(d, h, d.ZuoraID)
	}
}

// planReversal holds the reversal of a document on the reversals of its
// applications in this window.
func (p *planner) planReversal(d document) {
	for _, dp := range d.deps {
		if h, ok := p.local(dp.ZuoraID, reversalOf(stage.DocType.IsApplication), "the reversal of application"); ok {
			p.decide(d, h, dp.ZuoraID)
		}
	}
}

// planApplication notes what this window says of each document an
// application joins, and asks about each it does not hold live: another
// window may have posted it since.
func (p *planner) planApplication(d document) {
	for _, dp := range d.deps {
		h, ok := p.local(dp.ZuoraID, isDocument, depWords(dp))
		if ok {
			p.localOf[dp.ZuoraID] = h
		}
		if (!ok || h.State != Live) && !p.asked[dp.ZuoraID] {
			p.asked[dp.ZuoraID] = true
			p.ask = append(p.ask, dp)
		}
	}
}

// depWords names a dependency's type for a person ("document" when the
// line does not say it).
func depWords(dp Dep) string {
	if dp.DocType == "" {
		return "document"
	}
	return dp.DocType.Words()
}

// decide records h as what holds id, a dependency of d.
func (p *planner) decide(d document, h Holding, id string) {
	p.decided[d.IdempotencyKey] = append(p.decided[d.IdempotencyKey], holding(h, id))
}

// final is the hold of d, if any, from this window's decisions and the
// Dependencies' answers: this window's line decides a document unless the
// ERP holds it live by another.
func (p *planner) final(d document, answers map[string]Holding) (hold, bool) {
	hs := p.decided[d.IdempotencyKey]
	if d.DocType.IsApplication() {
		for _, dp := range d.deps {
			hs = append(hs, holding(p.joined(dp.ZuoraID, answers), dp.ZuoraID))
		}
	}
	return decide(hs)
}

// joined is what holds the document id an application joins.
func (p *planner) joined(id string, answers map[string]Holding) Holding {
	h, ok := answers[id]
	if l, here := p.localOf[id]; here && (!ok || h.State != Live) {
		return l
	}
	if !ok {
		return Holding{State: Unknown}
	}
	return h
}

// idHolding is the holding of the dependency id.
type idHolding struct {
	Holding
	id string
}

// holding is h about id, with a reason when the one who answered gave none.
func holding(h Holding, id string) idHolding {
	if h.Why == "" {
		switch h.State {
		case Waiting:
			h.Why = id + " is not confirmed by the ERP yet"
		case Rejected:
			h.Why = id + " is rejected"
		}
	}
	return idHolding{Holding: h, id: id}
}

// decide turns the holdings of what one line depends on into a hold: any
// rejected one makes it dependency_rejected, else any waiting one makes it
// wait; live and unknown ones do not hold it back.
func decide(hs []idHolding) (hold, bool) {
	var rejected, waiting []idHolding
	for _, ih := range hs {
		switch ih.State {
		case Rejected:
			rejected = append(rejected, ih)
		case Waiting:
			waiting = append(waiting, ih)
		}
	}
	pick := rejected
	h := hold{outcome: stage.OutcomeDependencyRejected}
	if len(rejected) == 0 {
		pick, h.outcome = waiting, stage.OutcomeWaiting
	}
	if len(pick) == 0 {
		return hold{}, false
	}
	var whys []string
	for _, ih := range pick {
		h.on = append(h.on, ih.id)
		whys = append(whys, ih.Why)
	}
	slices.Sort(h.on)
	h.on = slices.Compact(h.on)
	verb := "waits: "
	if h.outcome == stage.OutcomeDependencyRejected {
		verb = "not posted: "
	}
	h.why = verb + strings.Join(whys, "; ")
	return h, true
}
