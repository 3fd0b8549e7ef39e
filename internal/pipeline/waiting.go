package pipeline

import (
	"context"
	"fmt"
	"strings"

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
// (post what waited) or an outstanding reject (its lines become
// dependency_rejected), or a rejected document its dependency_rejected lines
// name is now live (post them). A window is loaded again only when that set
// of settled documents grew since it was last loaded for it, so the loop ends.
func (p *Pipeline) reloadWaiting(ctx context.Context, rep *Report, resume Step) error {
	triggered := map[string]string{} // window → the settled ids it was last loaded for
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

// dueWindows returns the windows of the waiting index whose set of settled
// documents differs from the one in triggered (the set each was last loaded
// for), and records the new sets there.
func (p *Pipeline) dueWindows(ctx context.Context, triggered map[string]string) ([]stage.Window, error) {
	idx, err := p.waitingIndex(ctx)
	if err != nil || len(idx.Windows) == 0 {
		return nil, err
	}
	var ids []string
	for _, e := range idx.Windows {
		ids = append(append(ids, e.WaitsOn...), e.RejectedOn...)
	}
	live, err := p.liveInERP(ctx, ids)
	if err != nil {
		return nil, err
	}
	rejected, err := p.rejectedIDs(ctx)
	if err != nil {
		return nil, err
	}
	var due []stage.Window
	for _, e := range idx.Windows {
		settled := settledFor(e, live, rejected)
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

// settledFor returns what e waits on that is settled: a document it waits
// on that is live or rejected, a rejected one it names that is live.
func settledFor(e stage.WaitingWindow, live map[string]string, rejected map[string]bool) []string {
	var settled []string
	for _, id := range e.WaitsOn {
		if _, ok := live[id]; ok || rejected[id] {
			settled = append(settled, id)
		}
	}
	for _, id := range e.RejectedOn {
		if _, ok := live[id]; ok {
			settled = append(settled, id)
		}
	}
	return settled
}

// rejectedIDs returns the Zuora ids of the documents that are outstanding
// rejects (or acknowledged, never to go to the ERP).
func (p *Pipeline) rejectedIDs(ctx context.Context) (map[string]bool, error) {
	b, err := p.loadRejects(ctx, false)
	if err != nil {
		return nil, err
	}
	acks, err := p.st.Acks(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, r := range b.byKey {
		if stage.DocType(r.DocType).IsDocument() {
			out[r.ZuoraID] = true
		}
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
