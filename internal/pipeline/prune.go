package pipeline

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// PruneMargin is how far before the high water a pruned window must end: the
// next window's overlap reads the windows just before it.
const PruneMargin = 24 * time.Hour

// PruneReport is what Prune removed, or would remove in a dry run.
type PruneReport struct {
	Before  time.Time
	Applied bool
	Pruned  []stage.WindowObjects // windows removed (or to remove), oldest first
	Kept    []KeptWindow          // windows ending before Before that stay, and why
	Runs    []string              // run records removed (or to remove): runs started before Before
}

// KeptWindow is a window old enough to prune that stays, and why.
type KeptWindow struct {
	Window stage.Window
	Why    string
}

// Objects counts the objects and bytes of the pruned windows.
func (r *PruneReport) Objects() (n int, bytes int64) {
	for _, w := range r.Pruned {
		n += len(w.Keys)
		bytes += w.Bytes
	}
	return n + len(r.Runs), bytes
}

// Prune removes, under the lease, the windows that end at or before before,
// whose load is complete, whose every document is marked and that hold no
// outstanding reject (acknowledged ones included until their window is
// mapped again): their snapshot, transform outputs and manifests. The ledger
// of every window stays (it proves each document was posted once), and so
// does state/. Run records of runs started before before go too. With apply
// false nothing is deleted: the report says what would be.
func (p *Pipeline) Prune(ctx context.Context, before time.Time, apply bool) (*PruneReport, error) {
	before = before.UTC()
	if err := p.pruneAllowed(ctx, before); err != nil {
		return nil, err
	}
	release, err := p.takeLease(ctx, "prune")
	if err != nil {
		return nil, classify(err)
	}
	defer release()
	held, err := p.heldWindows(ctx)
	if err != nil {
		return nil, err
	}
	ws, err := p.st.Windows(ctx)
	if err != nil {
		return nil, err
	}
	rep := &PruneReport{Before: before, Applied: apply}
	for _, w := range ws {
		if w.End.After(before) {
			break
		}
		objs, why, err := p.pruneable(ctx, w, held)
		if err != nil {
			return nil, err
		}
		if why != "" {
			rep.Kept = append(rep.Kept, KeptWindow{Window: w, Why: why})
			continue
		}
		rep.Pruned = append(rep.Pruned, objs)
		if apply {
			if err := p.deleteWindow(ctx, w, objs); err != nil {
				return rep, err
			}
		}
	}
	ids, err := p.st.RunIDs(ctx)
	if err != nil {
		return nil, err
	}
	cut := NewRunID(before)
	for _, id := range ids {
		if id >= cut {
			continue
		}
		rep.Runs = append(rep.Runs, id)
		if apply {
			if err := p.st.Delete(ctx, stage.RunKey(id)); err != nil {
				return rep, fmt.Errorf("prune the record of %s: %w", id, err)
			}
		}
	}
	return rep, nil
}

// pruneAllowed refuses a before later than a day before the high water: the
// next window's overlap still reads windows so recent.
func (p *Pipeline) pruneAllowed(ctx context.Context, before time.Time) error {
	hw, ok, err := p.st.HighWater(ctx)
	if err != nil {
		return err
	}
	limit := hw.Next.Add(-PruneMargin)
	if ok && !before.After(limit) {
		return nil
	}
	msg := "the stage has no high water yet: nothing is old enough to prune"
	if ok {
		msg = fmt.Sprintf("%s is later than a day before the high water (%s): the next window's overlap still reads windows so recent; want %s or earlier",
			before.Format(time.RFC3339), hw.Next.Format(time.RFC3339), limit.Format(time.RFC3339))
	}
	return &ConfigError{Msg: msg, Settings: []string{"PruneBefore"}}
}

// heldWindows says, by window id, why a window with a pending re-check or
// an outstanding reject stays.
func (p *Pipeline) heldWindows(ctx context.Context) (map[string]string, error) {
	b, err := p.loadRejects(ctx, false)
	if err != nil {
		return nil, err
	}
	held := map[string]string{} // window id → why it stays
	for _, id := range b.pending {
		held[id] = "a re-check staged documents in it that are not mapped yet"
	}
	for _, r := range b.byKey {
		if held[r.Window] == "" {
			held[r.Window] = fmt.Sprintf("it holds an outstanding reject (%s %s, %s)", r.DocType, r.ZuoraID, r.ReasonCode)
		}
	}
	return held, nil
}

// pruneable returns the objects of w to prune, or why w stays.
func (p *Pipeline) pruneable(ctx context.Context, w stage.Window, held map[string]string) (stage.WindowObjects, string, error) {
	why, err := p.pruneWhy(ctx, w, held)
	if err != nil || why != "" {
		return stage.WindowObjects{}, why, err
	}
	em, _, err := p.st.ReadExtract(ctx, w)
	if err != nil {
		return stage.WindowObjects{}, "", err
	}
	objs, err := p.st.PruneObjects(ctx, w, slices.Collect(maps.Keys(em.Tables)))
	return objs, "", err
}

// deleteWindow deletes the objects of w that prune removes.
func (p *Pipeline) deleteWindow(ctx context.Context, w stage.Window, objs stage.WindowObjects) error {
	for _, k := range objs.Keys {
		if err := p.st.Delete(ctx, k); err != nil {
			return fmt.Errorf("prune window %s: %w (run prune again: it carries on)", w.ID(), err)
		}
	}
	p.cfg.Logger.Info("pruned window", "window", w.ID(), "objects", len(objs.Keys), "bytes", objs.Bytes)
	return nil
}

// pruneWhy says why w must stay, or "" when it may go: its load is
// complete, every posted document is marked, none is pending or refused by
// the ERP, and it holds no outstanding reject. A window a prune stopped in
// (its load-complete record left, a manifest gone) may go on.
func (p *Pipeline) pruneWhy(ctx context.Context, w stage.Window, held map[string]string) (string, error) {
	complete, err := p.st.Exists(ctx, stage.LoadCompleteKey(w))
	if err != nil {
		return "", err
	}
	if !complete {
		return "its load is not complete", nil
	}
	_, extracted, err := p.st.ReadExtract(ctx, w)
	if err != nil {
		return "", err
	}
	_, transformed, err := p.st.ReadTransform(ctx, w)
	if err != nil {
		return "", err
	}
	lm, loaded, err := p.st.ReadLoad(ctx, w)
	if err != nil {
		return "", err
	}
	if !extracted || !transformed || !loaded {
		return "", nil // a prune stopped in it: only this window's records are left
	}
	if why := held[w.ID()]; why != "" {
		return why, nil
	}
	for _, t := range lm.Totals {
		switch {
		case t.Pending.Count > 0:
			return fmt.Sprintf("%d %s documents are pending", t.Pending.Count, t.DocType), nil
		case t.Waiting.Count > 0:
			return fmt.Sprintf("%d %s lines wait for documents of other windows", t.Waiting.Count, t.DocType), nil
		case t.Rejected.Count > 0:
			return fmt.Sprintf("the ERP refused %d %s documents", t.Rejected.Count, t.DocType), nil
		case stage.DocType(t.DocType).IsDocument() && !t.Marked.Equal(t.Posted): // applications and reversals have no flag
			return fmt.Sprintf("%d posted %s documents are not marked in Zuora", t.Posted.Count-t.Marked.Count, t.DocType), nil
		}
	}
	return "", nil
}
