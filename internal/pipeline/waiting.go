package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Windows whose lines the load held back (an application waiting for a
// document another window holds, or not posted because that document was
// rejected) are listed in the stage's waiting index (stage.WaitingIndexKey),
// which each load of a window updates from its load manifest. After each
// window's load the pipeline loads again those that what they wait on has
// settled for, so an application waits no longer than its documents: later
// in the same run, else in the run that confirms them.

// waitingIndex reads the waiting index; a stage without one (staged before it
// existed, or the file lost) gets it rebuilt from every window's load manifest.
func (p *Pipeline) waitingIndex(ctx context.Context) (stage.WaitingIndex, error) {
	idx, found, err := p.st.ReadWaitingIndex(ctx)
	if err != nil || found {
		return idx, err
	}
	ws, err := p.st.Windows(ctx)
	if err != nil {
		return idx, err
	}
	for _, w := range ws {
		lm, ok, err := p.st.ReadLoad(ctx, w)
		if err != nil {
			return idx, err
		}
		if ok {
			idx.Set(w, lm)
		}
	}
	idx.UpdatedAt = p.cfg.Now().UTC()
	return idx, nil
}

// noteWaiting records in the waiting index what w's last load held back.
func (p *Pipeline) noteWaiting(ctx context.Context, w stage.Window) error {
	lm, ok, err := p.st.ReadLoad(ctx, w)
	if err != nil || !ok {
		return err
	}
	idx, err := p.waitingIndex(ctx)
	if err != nil {
		return err
	}
	before := fmt.Sprint(idx.Windows)
	idx.Set(w, lm)
	if _, found, err := p.st.ReadWaitingIndex(ctx); err != nil {
		return err
	} else if found && fmt.Sprint(idx.Windows) == before {
		return nil
	}
	idx.UpdatedAt = p.cfg.Now().UTC()
	return p.st.WriteWaitingIndex(ctx, idx)
}

// reloadWaiting loads again each window of the waiting index that what it
// waits on has settled for: a document it waits on is now live in the ERP
// (post what waited), an outstanding reject (its lines become
// dependency_rejected) or skipped (post what waited: the ERP resolves it or
// refuses), or a rejected document its dependency_rejected lines name is now
// live or skipped (post them). Within one call a window is loaded again only
// when what settled for it changed since it was last loaded for it, so the
// loop ends.
func (p *Pipeline) reloadWaiting(ctx context.Context, rep *Report, resume Step) error {
	triggered := map[string]string{} // window → what had settled when it was last loaded
	for {
		due, err := p.dueWindows(ctx, triggered)
		if err != nil || len(due) == 0 {
			return err
		}
		for _, w := range due {
			p.cfg.Logger.Info("loading a window again: what its applications wait on is settled", "window", w.ID())
			rep.forget(w)
			if err := p.processWindow(ctx, w, rep, attempt{why: "dependencies settled", resume: resume, reload: true}); err != nil {
				return err
			}
		}
	}
}

// dueWindows returns the windows of the waiting index whose settled
// documents (settlement.of) differ from those in triggered (what each was
// last loaded for), and records the new ones there.
func (p *Pipeline) dueWindows(ctx context.Context, triggered map[string]string) ([]stage.Window, error) {
	idx, err := p.waitingIndex(ctx)
	if err != nil || len(idx.Windows) == 0 {
		return nil, err
	}
	s, err := p.settlementOf(ctx, idx)
	if err != nil {
		return nil, err
	}
	var due []stage.Window
	for _, e := range idx.Windows {
		settled := s.of(e)
		sig := strings.Join(settled, ",")
		if len(settled) == 0 || triggered[e.Window] == sig {
			continue
		}
		triggered[e.Window] = sig
		w, err := stage.ParseWindowID(e.Window)
		if err != nil {
			return nil, err
		}
		due = append(due, w)
	}
	return due, nil
}

// settlement is what became of the documents the waiting index names: live
// in the ERP (with the window whose ledger confirmed it), an outstanding or
// acknowledged reject, or skipped by the last transform that decided it
// (with that window): never to be posted by us, so the ERP resolves it by
// its Zuora id or refuses what joins it, as for a document older than the stage.
type settlement struct {
	live     map[string]string
	rejected map[string]bool
	skipped  map[string]string
}

// settlementOf reads the settlement of every id the waiting index names;
// only those neither live nor rejected are looked for among the skipped.
func (p *Pipeline) settlementOf(ctx context.Context, idx stage.WaitingIndex) (settlement, error) {
	var ids []string
	for _, e := range idx.Windows {
		ids = append(append(ids, e.WaitsOn...), e.RejectedOn...)
	}
	var s settlement
	var err error
	if s.live, err = p.liveInERP(ctx, ids); err != nil {
		return s, err
	}
	if s.rejected, err = p.rejectedIDs(ctx); err != nil {
		return s, err
	}
	var open []string
	for _, id := range ids {
		if _, live := s.live[id]; !live && !s.rejected[id] {
			open = append(open, id)
		}
	}
	s.skipped, err = p.skippedLast(ctx, open)
	return s, err
}

// of returns what e waits on that is settled, each with how (and where), so
// that a document settled again otherwise (skipped, then confirmed) loads
// the window again: a document it waits on that is live, rejected or
// skipped; a rejected one it names that is live, or skipped and no longer
// rejected.
func (s settlement) of(e stage.WaitingWindow) []string {
	var settled []string
	for _, id := range e.WaitsOn {
		switch {
		case s.live[id] != "":
			settled = append(settled, id+" live in "+s.live[id])
		case s.rejected[id]:
			settled = append(settled, id+" rejected")
		case s.skipped[id] != "":
			settled = append(settled, id+" skipped in "+s.skipped[id])
		}
	}
	for _, id := range e.RejectedOn {
		switch {
		case s.live[id] != "":
			settled = append(settled, id+" live in "+s.live[id])
		case !s.rejected[id] && s.skipped[id] != "":
			settled = append(settled, id+" skipped in "+s.skipped[id])
		}
	}
	return settled
}

// skippedLast returns, of ids, those the last window whose transform decided
// them (ready, rejected or skipped) skipped, for a reason other than
// SUPERSEDED (the newer version's window decides those), each with that window.
func (p *Pipeline) skippedLast(ctx context.Context, ids []string) (map[string]string, error) {
	if len(ids) == 0 {
		return map[string]string{}, nil
	}
	db, err := warehouse.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := db.AttachDecisions(ctx, p.st); err != nil {
		return nil, err
	}
	out, err := byID(ctx, db, ids, func(in string) string {
		return `SELECT zuora_id, "window" FROM (
    SELECT zuora_id, "window", reason_code AS skip FROM skipped WHERE zuora_id IN (` + in + `)
    UNION ALL SELECT zuora_id, "window", NULL FROM documents WHERE zuora_id IN (` + in + `)
    UNION ALL SELECT zuora_id, "window", NULL FROM reject_history WHERE zuora_id IN (` + in + `))
QUALIFY row_number() OVER (PARTITION BY zuora_id ORDER BY "window" DESC, skip NULLS FIRST) = 1
    AND skip IS NOT NULL AND skip <> ` + warehouse.Literal(stage.ReasonSuperseded)
	})
	if err != nil {
		return nil, fmt.Errorf("read what the transforms skipped: %w", err)
	}
	return out, nil
}

// rejectedIDs returns the Zuora ids of the documents that are outstanding
// rejects (or acknowledged, never to go to the ERP).
func (p *Pipeline) rejectedIDs(ctx context.Context) (map[string]bool, error) {
	out, err := rejectsBy(ctx, p, func(r *stage.OutstandingReject) (bool, bool) {
		return true, stage.DocType(r.DocType).IsDocument()
	})
	if err != nil {
		return nil, err
	}
	acks, err := p.st.Acks(ctx)
	if err != nil {
		return nil, err
	}
	for id, a := range acks {
		if stage.DocType(a.DocType).IsDocument() {
			out[id] = true
		}
	}
	return out, nil
}

// waitingLines counts, over the windows of rep, the lines held back waiting.
func waitingLines(rep *Report) (lines int64, windows int) {
	for _, w := range rep.Windows {
		var n int64
		for _, l := range w.Lines {
			n += l.Waiting.Count
		}
		if n > 0 {
			lines += n
			windows++
		}
	}
	return lines, windows
}
