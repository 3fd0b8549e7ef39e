package stage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Tally counts documents and sums their amounts.
type Tally struct {
	Count  int64           `json:"count"`
	Amount decimal.Decimal `json:"amount"`
}

// Add counts one document of the given amount.
func (t *Tally) Add(amount decimal.Decimal) {
	t.Count++
	t.Amount = t.Amount.Add(amount)
}

// Plus returns t + u.
func (t Tally) Plus(u Tally) Tally {
	return Tally{Count: t.Count + u.Count, Amount: t.Amount.Add(u.Amount)}
}

// Equal reports whether both tallies have the same count and amount.
func (t Tally) Equal(u Tally) bool { return t.Count == u.Count && t.Amount.Equal(u.Amount) }

// TableSnapshot describes one raw table of an extract snapshot.
type TableSnapshot struct {
	Rows  int64        `json:"rows"`
	Files []ObjectInfo `json:"files"`
	// Amounts sums the table's header amount per currency (document tables only).
	Amounts    map[string]decimal.Decimal `json:"amounts,omitempty"`
	MinUpdated *time.Time                 `json:"min_updated,omitempty"`
	MaxUpdated *time.Time                 `json:"max_updated,omitempty"`
	// Query records the Object Query parameters that produced the table.
	Query map[string][]string `json:"query,omitempty"`
}

// ExtractManifest commits a window's raw snapshot. It is written last; the
// files it lists are the snapshot.
type ExtractManifest struct {
	Window      string                   `json:"window"`
	Start       time.Time                `json:"start"`
	End         time.Time                `json:"end"`
	QueryFrom   time.Time                `json:"query_from"` // Start minus the overlap
	RunID       string                   `json:"run_id"`
	CodeVersion string                   `json:"code_version"`
	CommittedAt time.Time                `json:"committed_at"`
	Tables      map[string]TableSnapshot `json:"tables"`
	// Warnings lists what the extract noticed but did not fail on, such as a
	// header total that differs from the sum of its items.
	Warnings []string `json:"warnings,omitempty"`
	// Rechecks lists the runs that added rows fetched again for rejected documents.
	Rechecks []Recheck `json:"rechecks,omitempty"`
}

// Reconciliation is the transform's account of one document type and currency:
// Extracted = Ready + Rejected + Skipped, in count and amount.
type Reconciliation struct {
	DocType   string `json:"doc_type"`
	Currency  string `json:"currency"`
	Extracted Tally  `json:"extracted"`
	Ready     Tally  `json:"ready"`
	Rejected  Tally  `json:"rejected"`
	Skipped   Tally  `json:"skipped"`
}

// Balanced reports whether every extracted document is accounted for.
func (r Reconciliation) Balanced() bool {
	return r.Extracted.Equal(r.Ready.Plus(r.Rejected).Plus(r.Skipped))
}

// TransformManifest commits a window's ERP-ready documents, rejects and skips.
type TransformManifest struct {
	Window      string           `json:"window"`
	RunID       string           `json:"run_id"`
	CodeVersion string           `json:"code_version"`
	SQLDigest   string           `json:"sql_digest"` // sha256 of the SQL and mapping files used
	CommittedAt time.Time        `json:"committed_at"`
	Documents   ObjectInfo       `json:"documents"`         // NDJSON, what load posts
	DocumentsPq ObjectInfo       `json:"documents_parquet"` // the same documents, for audits
	Rejects     ObjectInfo       `json:"rejects"`
	Skipped     ObjectInfo       `json:"skipped"`
	Totals      []Reconciliation `json:"totals"` // sorted by doc type, then currency
}

// LoadTotals is the load's account of one document type and currency.
type LoadTotals struct {
	DocType  string `json:"doc_type"`
	Currency string `json:"currency"`
	Ready    Tally  `json:"ready"`    // documents the load was given
	Posted   Tally  `json:"posted"`   // confirmed by the ERP (created or duplicate)
	Rejected Tally  `json:"rejected"` // refused by the ERP (400/422)
	Pending  Tally  `json:"pending"`  // neither: the ERP was unreachable
	Marked   Tally  `json:"marked"`   // posted and marked transferred in Zuora
	// Waiting are applications (and reversals, reposts) held back until the
	// ERP confirms what they depend on; DependencyRejected those held back
	// because a document they depend on was rejected.
	Waiting            Tally `json:"waiting"`
	DependencyRejected Tally `json:"dependency_rejected"`
	// ErrorMarked are refused documents marked TransferredToAccounting = Error.
	ErrorMarked Tally `json:"error_marked"`
}

// LoadManifest records the state of a window's load after each load run. It is
// rewritten by every load run of the window; the ledger is the history.
type LoadManifest struct {
	Window      string       `json:"window"`
	RunID       string       `json:"run_id"`
	CodeVersion string       `json:"code_version"`
	UpdatedAt   time.Time    `json:"updated_at"`
	Complete    bool         `json:"complete"` // every document posted or rejected, every posted one marked
	Totals      []LoadTotals `json:"totals"`
	// StoppedBecause says why a load run stopped early, e.g. the circuit breaker.
	StoppedBecause string `json:"stopped_because,omitempty"`
	// MarkRefused says the load marks the documents the ERP refused
	// TransferredToAccounting = Error (Complete then waits for those marks).
	MarkRefused bool `json:"mark_refused,omitempty"`
	// WaitsOn are the Zuora ids that hold the window's waiting lines back, and
	// RejectedOn the rejected ones its dependency_rejected lines name, as the
	// load run found them: the window is loaded again once one is confirmed.
	WaitsOn    []string `json:"waits_on,omitempty"`
	RejectedOn []string `json:"rejected_on,omitempty"`
}

// OnlyWaiting reports whether all that keeps the load from complete is lines
// waiting on what other windows hold: nothing pending, every mark made.
func (m LoadManifest) OnlyWaiting() bool {
	if m.Complete || len(m.WaitsOn) == 0 {
		return false
	}
	for _, t := range m.Totals {
		if t.Pending.Count > 0 || t.Marked.Count != t.Posted.Count && DocType(t.DocType).IsDocument() ||
			m.MarkRefused && DocType(t.DocType).IsDocument() && t.ErrorMarked.Count != t.Rejected.Count {
			return false
		}
	}
	return true
}

// HighWater is the pipeline's high water: every window ending at or before
// Next has a committed extract snapshot.
type HighWater struct {
	Next      time.Time `json:"next"`
	UpdatedAt time.Time `json:"updated_at"`
	Window    string    `json:"window"` // the window that moved it
}

// Manifest is the commit point of one step of a window: an ExtractManifest,
// TransformManifest or LoadManifest.
type Manifest interface{ step() string }

func (ExtractManifest) step() string   { return "extract" }
func (TransformManifest) step() string { return "transform" }
func (LoadManifest) step() string      { return "load" }

// readManifest reads w's manifest of m's step into m; found is false when the
// step has not committed the window.
func readManifest[M Manifest](ctx context.Context, s *Stage, w Window) (m M, found bool, err error) {
	err = s.ReadJSON(ctx, ManifestKey(m.step(), w), &m)
	if errors.Is(err, ErrNotFound) {
		var zero M
		return zero, false, nil
	}
	return m, err == nil, err
}

// ReadExtract returns w's extract manifest; found is false when the window
// has no committed snapshot.
func (s *Stage) ReadExtract(ctx context.Context, w Window) (ExtractManifest, bool, error) {
	return readManifest[ExtractManifest](ctx, s, w)
}

// ReadTransform returns w's transform manifest; found is false when the
// window's documents are not committed.
func (s *Stage) ReadTransform(ctx context.Context, w Window) (TransformManifest, bool, error) {
	return readManifest[TransformManifest](ctx, s, w)
}

// ReadLoad returns w's load manifest; found is false when no load recorded one.
func (s *Stage) ReadLoad(ctx context.Context, w Window) (LoadManifest, bool, error) {
	return readManifest[LoadManifest](ctx, s, w)
}

// WriteManifest commits m's step for window w.
func (s *Stage) WriteManifest(ctx context.Context, w Window, m Manifest) error {
	return s.WriteJSON(ctx, ManifestKey(m.step(), w), m)
}

// DeleteExtract takes back w's snapshot before its parts are rewritten, so
// that a failed rewrite leaves none rather than one describing other files.
func (s *Stage) DeleteExtract(ctx context.Context, w Window) error {
	return s.Delete(ctx, ManifestKey(ExtractManifest{}.step(), w))
}

// DeleteTransform takes back w's documents before they are rewritten.
func (s *Stage) DeleteTransform(ctx context.Context, w Window) error {
	return s.Delete(ctx, ManifestKey(TransformManifest{}.step(), w))
}

// SetLoadComplete records that w's load is complete; write it only after a
// load manifest that says so.
func (s *Stage) SetLoadComplete(ctx context.Context, w Window) error {
	_, err := s.WriteBytes(ctx, LoadCompleteKey(w), nil)
	return err
}

// ReopenLoad forgets that w's load was complete, and its load manifest,
// before anything changes the window's documents.
func (s *Stage) ReopenLoad(ctx context.Context, w Window) error {
	if err := s.Delete(ctx, LoadCompleteKey(w)); err != nil {
		return err
	}
	return s.Delete(ctx, ManifestKey(LoadManifest{}.step(), w))
}

// UnfinishedWindows returns, in time order, the windows whose snapshot is
// committed and whose load is not recorded complete, from one listing.
func (s *Stage) UnfinishedWindows(ctx context.Context) ([]Window, error) {
	objs, err := s.List(ctx, ManifestPrefix)
	if err != nil {
		return nil, err
	}
	keys := make(map[string]bool, len(objs))
	for _, o := range objs {
		keys[o.Key] = true
	}
	ws, err := windowsIn(objs)
	if err != nil {
		return nil, err
	}
	var out []Window
	for _, w := range ws {
		if keys[ManifestKey(ExtractManifest{}.step(), w)] && !keys[LoadCompleteKey(w)] {
			out = append(out, w)
		}
	}
	return out, nil
}

// Windows returns every window that has at least one manifest, in time order.
func (s *Stage) Windows(ctx context.Context) ([]Window, error) {
	objs, err := s.List(ctx, ManifestPrefix)
	if err != nil {
		return nil, err
	}
	return windowsIn(objs)
}

// windowsIn returns the windows the manifests listed belong to, in time order.
func windowsIn(objs []ObjectInfo) ([]Window, error) {
	seen := map[string]bool{}
	var ws []Window
	for _, o := range objs {
		rest := strings.TrimPrefix(o.Key, ManifestPrefix+"window=")
		id, _, ok := strings.Cut(rest, "/")
		if !ok || seen[id] {
			continue
		}
		w, err := ParseWindowID(id)
		if err != nil {
			return nil, fmt.Errorf("stage holds a manifest with a bad window: %s: %w", o.Key, err)
		}
		seen[id] = true
		ws = append(ws, w)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].Start.Before(ws[j].Start) })
	return ws, nil
}

// LedgerPart is one ledger part and the id of the window it belongs to.
type LedgerPart struct {
	Window string
	ObjectInfo
}

// LedgerParts returns every ledger part of window w, in write order.
func (s *Stage) LedgerParts(ctx context.Context, w Window) ([]ObjectInfo, error) {
	objs, err := s.List(ctx, LedgerPrefix(w))
	if err != nil {
		return nil, err
	}
	var out []ObjectInfo
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".parquet") {
			out = append(out, o)
		}
	}
	return out, nil
}

// AllLedgerParts returns every ledger part of the stage with its window, in
// window then write order. No ledger yet is not an error.
func (s *Stage) AllLedgerParts(ctx context.Context) ([]LedgerPart, error) {
	objs, err := s.List(ctx, ledgerRoot)
	if err != nil {
		return nil, err
	}
	var out []LedgerPart
	for _, o := range objs {
		if !strings.HasSuffix(o.Key, ".parquet") {
			continue
		}
		rest, ok := strings.CutPrefix(o.Key, ledgerRoot+"window=")
		id, _, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 {
			return nil, fmt.Errorf("ledger part %s is not under %swindow=<id>/", o.Key, ledgerRoot)
		}
		out = append(out, LedgerPart{Window: id, ObjectInfo: o})
	}
	return out, nil
}

// HighWater returns the high water, or found=false when there is none yet.
func (s *Stage) HighWater(ctx context.Context) (hw HighWater, found bool, err error) {
	err = s.ReadJSON(ctx, HighWaterKey, &hw)
	if errors.Is(err, ErrNotFound) {
		return HighWater{}, false, nil
	}
	return hw, err == nil, err
}

// SetHighWater moves the high water to the end of w. Call it only after w's
// extract manifest is written. It never moves it backwards.
func (s *Stage) SetHighWater(ctx context.Context, w Window, now time.Time) error {
	cur, found, err := s.HighWater(ctx)
	if err != nil {
		return err
	}
	if found && !w.End.After(cur.Next) {
		return nil
	}
	return s.WriteJSON(ctx, HighWaterKey, HighWater{Next: w.End.UTC(), UpdatedAt: now.UTC(), Window: w.ID()})
}

// Start is where the stage's history begins: the first run's start, recorded
// before any window is tried so that a failed first run is resumed from there.
type Start struct {
	Start time.Time `json:"start"`
	SetAt time.Time `json:"set_at"`
	RunID string    `json:"run_id"`
}

// Start returns the stage's start point, or found=false when none is recorded.
func (s *Stage) Start(ctx context.Context) (st Start, found bool, err error) {
	err = s.ReadJSON(ctx, StartKey, &st)
	if errors.Is(err, ErrNotFound) {
		return Start{}, false, nil
	}
	return st, err == nil, err
}

// SetStart records the stage's start point.
func (s *Stage) SetStart(ctx context.Context, st Start) error {
	st.Start, st.SetAt = st.Start.UTC(), st.SetAt.UTC()
	return s.WriteJSON(ctx, StartKey, st)
}
