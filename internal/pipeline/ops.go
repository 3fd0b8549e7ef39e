package pipeline

import (
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/extract"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erp"
	"github.com/zuora-erp-etl/zuora-erp-etl/load"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Progress hears how a run advances, window by window: what the extract
// fetched, what the load posted, and when a window is done. cmd draws it on
// a terminal or logs it; the library packages only call it.
type Progress interface {
	Fetched(w stage.Window, table string, pages, records int64)
	Posted(w stage.Window, docType stage.DocType, done, total int64)
	WindowDone(w stage.Window)
}

// windowProgress binds a Progress to one window, for the stages.
type windowProgress struct {
	p Progress
	w stage.Window
}

func (wp windowProgress) Fetched(table string, pages, records int64) {
	wp.p.Fetched(wp.w, table, pages, records)
}

func (wp windowProgress) Posted(docType stage.DocType, done, total int64) {
	wp.p.Posted(wp.w, docType, done, total)
}

var (
	_ extract.Progress = windowProgress{}
	_ load.Progress    = windowProgress{}
)

// fetchProgress is the extract's progress for w, nil without one.
func (p *Pipeline) fetchProgress(w stage.Window) extract.Progress {
	if p.cfg.Progress == nil {
		return nil
	}
	return windowProgress{p.cfg.Progress, w}
}

// postProgress is the load's progress for w, nil without one.
func (p *Pipeline) postProgress(w stage.Window) load.Progress {
	if p.cfg.Progress == nil {
		return nil
	}
	return windowProgress{p.cfg.Progress, w}
}

// windowDone times the run's work on w in its report entry and tells the progress.
func (p *Pipeline) windowDone(w stage.Window, rep *Report, started time.Time) {
	for i := len(rep.Windows) - 1; i >= 0; i-- {
		if rep.Windows[i].Window.ID() == w.ID() {
			rep.Windows[i].Started, rep.Windows[i].Finished = started.UTC(), p.cfg.Now().UTC()
			break
		}
	}
	if p.cfg.Progress != nil {
		p.cfg.Progress.WindowDone(w)
	}
}

// erpClient returns the ERP client, opened on first use.
func (p *Pipeline) erpClient() (*erp.Client, error) {
	if p.ec != nil {
		return p.ec, nil
	}
	ec, err := erp.New(erp.Config{BaseURL: p.cfg.ERPBaseURL, Token: p.cfg.ERPToken, Retry: p.cfg.ERPRetry, Timeout: p.cfg.ERPTimeout, Conns: p.cfg.ERPConcurrency})
	if err != nil {
		return nil, &ConfigError{Msg: err.Error(), Settings: []string{"ERPBaseURL", "ERPToken"}}
	}
	p.ec = ec
	return ec, nil
}

// erpStats returns the requests toward the ERP so far, or nil when it was not called.
func (p *Pipeline) erpStats() *erp.Stats {
	if p.ec == nil {
		return nil
	}
	st := p.ec.Stats()
	return &st
}
