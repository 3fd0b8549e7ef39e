package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Outcome is how a command ended, in the exit statuses every command shares
// (README "Exit statuses").
type Outcome int

// The outcomes, equal to the exit statuses.
const (
	Done           Outcome = 0 // nothing needs attention
	Failed         Outcome = 1 // failed or unfinished: resume it
	Misconfigured  Outcome = 2 // a setting to fix; nothing was lost
	NeedsAttention Outcome = 3 // finished, but documents need a person
	LeaseHeld      Outcome = 4 // another writer holds the stage
)

func (o Outcome) String() string {
	switch o {
	case Done:
		return "done"
	case Failed:
		return "failed"
	case Misconfigured:
		return "configuration"
	case NeedsAttention:
		return "needs attention"
	case LeaseHeld:
		return "lease held"
	}
	return fmt.Sprintf("outcome %d", int(o))
}

// OutcomeOf is how a run, load or transform that returned rep and err ended.
func OutcomeOf(rep *Report, err error) Outcome {
	var held *stage.LeaseHeldError
	var lost *stage.LeaseLostError
	switch {
	case errors.As(err, &held), errors.As(err, &lost):
		return LeaseHeld
	case IsConfigError(err):
		return Misconfigured
	case err != nil:
		return Failed
	case rep == nil:
		return Done
	case !rep.Balanced(), rep.Unfinished():
		return Failed
	case rep.NeedsAttention():
		return NeedsAttention
	}
	return Done
}

// RunRecord is the record of one run that runs/<run id>.json keeps: the
// printed report's content, its timings, how it ended, and the settings that
// differ from their defaults (never a secret). Its JSON shape is part of the
// interface (docs/design.md "Run history").
type RunRecord struct {
	RunID           string            `json:"run_id"`
	Command         string            `json:"command"`
	CodeVersion     string            `json:"code_version"`
	StartedAt       time.Time         `json:"started_at"`
	FinishedAt      time.Time         `json:"finished_at"`
	DurationSeconds float64           `json:"duration_seconds"`
	ExitStatus      int               `json:"exit_status"`
	Outcome         string            `json:"outcome"`
	Error           string            `json:"error,omitempty"`
	Settings        map[string]string `json:"settings"`
	Windows         []RunWindow       `json:"windows"`
	Totals          []RunLine         `json:"totals"`
	Rejects         *RunBacklog       `json:"outstanding_rejects,omitempty"`
	Zuora           *RunRequests      `json:"zuora,omitempty"`
	ERP             *RunRequests      `json:"erp,omitempty"`
	Clamped         *RunClamp         `json:"clamped,omitempty"`
	LeftWindows     int               `json:"left_windows"`
}

// RunWindow is one window a run attempted.
type RunWindow struct {
	Window          string    `json:"window"`
	Start           time.Time `json:"start"`
	End             time.Time `json:"end"`
	Why             string    `json:"why"`
	Outcome         string    `json:"outcome"`
	Complete        bool      `json:"complete"`
	StartedAt       time.Time `json:"started_at"`
	FinishedAt      time.Time `json:"finished_at"`
	DurationSeconds float64   `json:"duration_seconds"`
	Stopped         string    `json:"stopped,omitempty"`
	Warnings        []string  `json:"warnings,omitempty"`
	Lines           []RunLine `json:"lines"`
}

// RunLine is a report line: one document type and currency.
type RunLine struct {
	DocType     string      `json:"doc_type"`
	Currency    string      `json:"currency"`
	Extracted   stage.Tally `json:"extracted"`
	Ready       stage.Tally `json:"ready"`
	Rejected    stage.Tally `json:"rejected"`
	Skipped     stage.Tally `json:"skipped"`
	Posted      stage.Tally `json:"posted"`
	ERPRejected stage.Tally `json:"erp_rejected"`
	Pending     stage.Tally `json:"pending"`
	Marked      stage.Tally `json:"marked"`
	Balanced    bool        `json:"balanced"`
}

// RunBacklog is every window's outstanding rejects when the run ended.
type RunBacklog struct {
	Documents int64         `json:"documents"`
	Windows   int           `json:"windows"`
	NoID      int64         `json:"without_id"`
	Lines     []BacklogJSON `json:"lines"`
}

// BacklogJSON is one backlog line: document type, currency and reason.
type BacklogJSON struct {
	DocType     string      `json:"doc_type"`
	Currency    string      `json:"currency"`
	Reason      string      `json:"reason"`
	Outstanding stage.Tally `json:"outstanding"`
}

// RunRequests counts a run's requests toward Zuora or the ERP.
type RunRequests struct {
	Requests    int64 `json:"requests"`
	Retries     int64 `json:"retries"`
	RateLimited int64 `json:"rate_limited"`
}

// RunClamp says that the requested end was later than now minus the settle lag.
type RunClamp struct {
	Requested time.Time `json:"requested"`
	Horizon   time.Time `json:"horizon"`
}

// NewRunRecord turns a run's report and error into its record.
func NewRunRecord(rep *Report, err error, started, finished time.Time) RunRecord {
	o := OutcomeOf(rep, err)
	r := RunRecord{RunID: rep.RunID, StartedAt: started.UTC(), FinishedAt: finished.UTC(),
		DurationSeconds: finished.Sub(started).Seconds(), ExitStatus: int(o), Outcome: o.String(),
		Settings: map[string]string{}, Windows: []RunWindow{}, Totals: runLines(rep.Totals())}
	if err != nil {
		r.Error = strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ; ")), " ")
	}
	for _, w := range rep.Windows {
		rw := RunWindow{Window: w.Window.ID(), Start: w.Window.Start, End: w.Window.End, Why: w.Why, Outcome: w.Outcome(),
			Complete: w.Complete, StartedAt: w.Started, FinishedAt: w.Finished, Stopped: w.Stopped, Warnings: w.Warnings, Lines: runLines(w.Lines)}
		if !w.Started.IsZero() {
			rw.DurationSeconds = w.Finished.Sub(w.Started).Seconds()
		}
		r.Windows = append(r.Windows, rw)
	}
	if b := rep.Rejects; b != nil {
		r.Rejects = &RunBacklog{Documents: rep.OutstandingRejects(), Windows: b.Windows, NoID: b.NoID, Lines: []BacklogJSON{}}
		for _, l := range b.Lines {
			r.Rejects.Lines = append(r.Rejects.Lines, BacklogJSON{DocType: l.DocType, Currency: l.Currency, Reason: l.Reason, Outstanding: l.Outstanding})
		}
	}
	if z := rep.Zuora; z != nil {
		r.Zuora = &RunRequests{Requests: z.Requests, Retries: z.RetriesRateLimit + z.Retries5xx + z.RetriesTransport + z.RetriesReasons, RateLimited: z.RetriesRateLimit}
	}
	if e := rep.ERP; e != nil {
		r.ERP = &RunRequests{Requests: e.Requests, Retries: e.Retries, RateLimited: e.RateLimited}
	}
	if c := rep.Clamped; c != nil {
		r.Clamped = &RunClamp{Requested: c.Requested, Horizon: c.Horizon}
	}
	if l := rep.Left; l != nil {
		r.LeftWindows = l.Windows
	}
	return r
}

func runLines(ls []Line) []RunLine {
	out := make([]RunLine, 0, len(ls))
	for _, l := range ls {
		out = append(out, RunLine{DocType: l.DocType, Currency: l.Currency, Extracted: l.Extracted, Ready: l.Ready, Rejected: l.Rejected,
			Skipped: l.Skipped, Posted: l.Posted, ERPRejected: l.ERPRejected, Pending: l.Pending, Marked: l.Marked, Balanced: l.Balanced()})
	}
	return out
}

// recordRun writes the run's record to the stage under the lease; a record
// that cannot be written is logged, never the run's failure.
func (p *Pipeline) recordRun(ctx context.Context, rep *Report, err error, started time.Time) {
	rec := NewRunRecord(rep, err, started, p.cfg.Now())
	rec.Command, rec.CodeVersion = p.cfg.Command, p.cfg.CodeVersion
	if rec.Command == "" {
		rec.Command = "run"
	}
	for k, v := range p.cfg.Settings {
		rec.Settings[k] = v
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if werr := p.st.WriteJSON(wctx, stage.RunKey(rec.RunID), rec); werr != nil {
		p.cfg.Logger.Warn("could not record the run in the stage's history", "err", werr)
	}
}

// Runs returns the records of the last n runs (every run when n <= 0), oldest first.
func (p *Pipeline) Runs(ctx context.Context, n int) ([]RunRecord, error) {
	ids, err := p.st.RunIDs(ctx)
	if err != nil {
		return nil, err
	}
	if n > 0 && len(ids) > n {
		ids = ids[len(ids)-n:]
	}
	out := make([]RunRecord, 0, len(ids))
	for _, id := range ids {
		var r RunRecord
		if err := p.st.ReadJSON(ctx, stage.RunKey(id), &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
