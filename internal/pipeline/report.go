package pipeline

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erp"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Report is what a run (or status) tells the user: per window, per document
// type and currency, where every extracted document ended.
type Report struct {
	RunID     string
	Windows   []WindowReport // every window attempted, in the order attempted
	HighWater time.Time      // set by Status
	Start     time.Time      // set by Status: where the stage's history starts
	Zuora     *zuora.Stats   // requests and retries toward Zuora, when Zuora was called
	ERP       *erp.Stats     // requests, retries and 429s toward the ERP, when it was called
	Clamped   *Clamp         // the requested end was later than now minus the settle lag
	Left      *Left          // due windows left for the next run by MaxWindows
	// Rejects is every window's outstanding rejects, not only those of the
	// windows above; set by Run once it has re-checked them.
	Rejects *Backlog
}

// WindowReport is one window's account.
type WindowReport struct {
	Window      stage.Window
	Why         string // why the run took it: "unfinished", "mapping changed" or "new"
	Failed      string // the step that failed ("extract", "transform", "load"), or ""
	Extracted   bool   // snapshot committed
	Transformed bool   // documents committed
	Loaded      bool   // every document posted or rejected, every posted one marked
	Complete    bool
	Stopped     string // why the last load stopped early, if it did
	Warnings    []string
	Lines       []Line
	// Started and Finished time the run's work on the window (zero in status).
	Started, Finished time.Time
}

// Line accounts for one document type and currency.
//
// Every extracted document ends in exactly one of Posted, Rejected, ERPRejected,
// Skipped or Pending: Extracted = Posted + Rejected + ERPRejected + Skipped + Pending.
type Line struct {
	DocType, Currency string
	Extracted         stage.Tally
	Ready             stage.Tally // mapped, handed to load
	Rejected          stage.Tally // refused by the mapping
	Skipped           stage.Tally // skipped with a reason (already posted or transferred)
	Posted            stage.Tally // confirmed by the ERP
	ERPRejected       stage.Tally // refused by the ERP
	Pending           stage.Tally // not yet answered by the ERP
	Marked            stage.Tally // posted and marked transferred in Zuora
}

type lineKey struct{ docType, currency string }

// Balanced reports whether every extracted document is accounted for.
func (l Line) Balanced() bool {
	return l.Extracted.Equal(l.Posted.Plus(l.Rejected).Plus(l.ERPRejected).Plus(l.Skipped).Plus(l.Pending))
}

func (l *Line) add(m Line) {
	l.Extracted = l.Extracted.Plus(m.Extracted)
	l.Ready = l.Ready.Plus(m.Ready)
	l.Rejected = l.Rejected.Plus(m.Rejected)
	l.Skipped = l.Skipped.Plus(m.Skipped)
	l.Posted = l.Posted.Plus(m.Posted)
	l.ERPRejected = l.ERPRejected.Plus(m.ERPRejected)
	l.Pending = l.Pending.Plus(m.Pending)
	l.Marked = l.Marked.Plus(m.Marked)
}

func sortedLines(m map[lineKey]*Line) []Line {
	out := make([]Line, 0, len(m))
	for _, l := range m {
		out = append(out, *l)
	}
	types := stage.LoadOrder()
	order := func(t string) int {
		if i := slices.Index(types, stage.DocType(t)); i >= 0 {
			return i
		}
		return len(types)
	}
	slices.SortFunc(out, func(a, b Line) int {
		if c := order(a.DocType) - order(b.DocType); c != 0 {
			return c
		}
		return strings.Compare(a.Currency, b.Currency)
	})
	return out
}

func (r *Report) has(w stage.Window) bool { return r.windowSet()[windowKey(w)] }

func (r *Report) windowSet() map[[2]int64]bool {
	set := make(map[[2]int64]bool, len(r.Windows))
	for _, x := range r.Windows {
		set[windowKey(x.Window)] = true
	}
	return set
}

// Outcome says how the window ended: "complete", "failed at STEP", "load
// stopped" or "unfinished".
func (w WindowReport) Outcome() string {
	switch {
	case w.Failed != "":
		return "failed at " + w.Failed
	case w.Complete:
		return "complete"
	case w.Stopped != "":
		return "load stopped"
	}
	return "unfinished"
}

// Next is the command that takes the window further, or nil when it is complete.
func (w WindowReport) Next() *Step {
	switch {
	case !w.Extracted:
		return &Step{Command: "run"}
	case !w.Transformed:
		return &Step{Command: "transform", Window: w.Window}
	case !w.Loaded:
		return &Step{Command: "load", Window: w.Window}
	}
	return nil
}

// Totals adds up every window's lines per document type and currency.
func (r *Report) Totals() []Line {
	m := map[lineKey]*Line{}
	for _, w := range r.Windows {
		for _, l := range w.Lines {
			k := lineKey{l.DocType, l.Currency}
			if m[k] == nil {
				m[k] = &Line{DocType: l.DocType, Currency: l.Currency}
			}
			m[k].add(l)
		}
	}
	return sortedLines(m)
}

// Count adds up one column of Totals for one document type, across currencies.
func (r *Report) Count(docType string, col func(Line) stage.Tally) int64 {
	var n int64
	for _, l := range r.Totals() {
		if l.DocType == docType {
			n += col(l).Count
		}
	}
	return n
}

// Balanced reports whether every line of every window is accounted for.
func (r *Report) Balanced() bool {
	for _, l := range r.Totals() {
		if !l.Balanced() {
			return false
		}
	}
	return true
}

// NeedsAttention reports whether any document needs a person: an outstanding
// reject in any window, the ERP's refusals included, or, without the backlog,
// a reject or a refusal of the windows above.
func (r *Report) NeedsAttention() bool {
	if r.Rejects != nil {
		return r.OutstandingRejects() > 0
	}
	for _, l := range r.Totals() {
		if l.ERPRejected.Count > 0 || l.Rejected.Count > 0 {
			return true
		}
	}
	return false
}

// OutstandingRejects counts the outstanding rejects of every window (see Rejects).
func (r *Report) OutstandingRejects() int64 {
	if r.Rejects == nil {
		return 0
	}
	var n int64
	for _, l := range r.Rejects.Lines {
		n += l.Outstanding.Count
	}
	return n
}

// forget drops w from the report, before w is processed again in the same run.
func (r *Report) forget(w stage.Window) {
	r.Windows = slices.DeleteFunc(r.Windows, func(x WindowReport) bool { return x.Window.ID() == w.ID() })
}

// Unfinished reports whether any document is still pending or posted but unmarked.
func (r *Report) Unfinished() bool {
	for _, l := range r.Totals() {
		if l.Pending.Count > 0 || !l.Marked.Equal(l.Posted) {
			return true
		}
	}
	return false
}

// Print writes the report: the windows attempted and how each ended, then
// document counts per type, then amounts per type and currency with the
// balance check (extracted = posted + rejected + skipped + pending).
func (r *Report) Print(out io.Writer) {
	defer r.printNotes(out)
	defer r.printBacklog(out)
	if len(r.Windows) == 0 {
		fmt.Fprintf(out, "%s: no window was due\n", r.RunID)
		return
	}
	fmt.Fprintf(out, "%s: %d window(s) attempted\n", r.RunID, len(r.Windows))
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for _, w := range r.Windows {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", w.Window.ID(), w.Why, w.Outcome())
	}
	tw.Flush()
	totals := r.Totals()
	if len(totals) == 0 {
		r.printZuora(out)
		return
	}
	byType := map[string]*Line{}
	var types []string
	for _, l := range totals {
		if byType[l.DocType] == nil {
			byType[l.DocType] = &Line{DocType: l.DocType}
			types = append(types, l.DocType)
		}
		byType[l.DocType].add(l)
	}
	header := "\textracted\tready\trejected\tskipped\tposted\terp-rejected\tpending\tmarked\t"
	tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\ndocuments"+header)
	for _, t := range types {
		l := byType[t]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", t,
			l.Extracted.Count, l.Ready.Count, l.Rejected.Count, l.Skipped.Count, l.Posted.Count, l.ERPRejected.Count, l.Pending.Count, l.Marked.Count)
	}
	tw.Flush()
	tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\namounts\tcur"+header+"balanced\t")
	for _, l := range totals {
		ok := "yes"
		if !l.Balanced() {
			ok = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", l.DocType, l.Currency,
			amount(l.Extracted), amount(l.Ready), amount(l.Rejected), amount(l.Skipped), amount(l.Posted), amount(l.ERPRejected), amount(l.Pending), amount(l.Marked), ok)
	}
	tw.Flush()
	r.printZuora(out)
	for _, w := range r.Windows {
		for _, msg := range w.Warnings {
			fmt.Fprintf(out, "warning: window %s: %s\n", w.Window.ID(), msg)
		}
		if w.Stopped != "" {
			fmt.Fprintf(out, "window %s: load stopped: %s\n", w.Window.ID(), w.Stopped)
		}
	}
}

// printZuora writes the requests and retries toward Zuora, when Zuora was called.
func (r *Report) printZuora(out io.Writer) {
	if z := r.Zuora; z != nil {
		fmt.Fprintf(out, "\nzuora: %d requests, %d retried (429: %d, 5xx: %d, transport: %d, reasons: %d), %d token refreshes after 401, %d write-back objects retried\n",
			z.Requests, z.RetriesRateLimit+z.Retries5xx+z.RetriesTransport+z.RetriesReasons,
			z.RetriesRateLimit, z.Retries5xx, z.RetriesTransport, z.RetriesReasons, z.Refreshes401, z.RetriedObjects)
	}
}

// printNotes says what the run did not do: windows clamped to now minus the
// settle lag, and windows left for the next run.
func (r *Report) printNotes(out io.Writer) {
	if c := r.Clamped; c != nil {
		fmt.Fprintf(out, "note: the requested end %s is later than now minus the settle lag; the windows end at %s and the rest waits until it has settled\n",
			c.Requested.Format(time.RFC3339), c.Horizon.Format(time.RFC3339))
	}
	if l := r.Left; l != nil {
		fmt.Fprintf(out, "note: %d more window(s) are due; a run takes %d at most, so they are left for the next run\n", l.Windows, l.Max)
	}
}

func amount(t stage.Tally) string {
	if t.Count == 0 {
		return "-"
	}
	return t.Amount.String()
}

// PrintStatus writes one line per window with what is done and what is
// pending; next renders a window's next step as a command line.
func (r *Report) PrintStatus(out io.Writer, next func(Step) string) {
	if !r.Start.IsZero() {
		fmt.Fprintf(out, "start point: %s\n", r.Start.Format(time.RFC3339))
	} else {
		fmt.Fprintln(out, "start point: none yet (the first run records it)")
	}
	if !r.HighWater.IsZero() {
		fmt.Fprintf(out, "high water: %s\n", r.HighWater.Format(time.RFC3339))
	} else {
		fmt.Fprintln(out, "high water: none yet")
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "window\textract\ttransform\tload\tready\tposted\trejected\tpending\tunmarked\tnext step")
	for _, w := range r.Windows {
		var ready, posted, rejected, pending, unmarked int64
		for _, l := range w.Lines {
			ready += l.Ready.Count
			posted += l.Posted.Count
			rejected += l.Rejected.Count + l.ERPRejected.Count
			pending += l.Pending.Count
			unmarked += l.Posted.Count - l.Marked.Count
		}
		step := "-"
		if s := w.Next(); s != nil {
			step = next(*s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", w.Window.ID(), done(w.Extracted), done(w.Transformed), done(w.Loaded), ready, posted, rejected, pending, unmarked, step)
	}
	tw.Flush()
}

func done(b bool) string {
	if b {
		return "done"
	}
	return "pending"
}

// printBacklog writes one line on the outstanding rejects of every window.
func (r *Report) printBacklog(out io.Writer) {
	b := r.Rejects
	if b == nil {
		return
	}
	n := r.OutstandingRejects()
	if n == 0 {
		fmt.Fprintln(out, "outstanding rejects in every window: none")
		return
	}
	amounts := map[string]decimal.Decimal{}
	for _, l := range b.Lines {
		amounts[l.Currency] = amounts[l.Currency].Add(l.Outstanding.Amount)
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(amounts)) {
		parts = append(parts, strings.TrimSpace(c+" "+amounts[c].String()))
	}
	noID := ""
	if b.NoID > 0 {
		noID = fmt.Sprintf(", %d without an id that no re-check can bring back", b.NoID)
	}
	fmt.Fprintf(out, "outstanding rejects in every window: %d documents in %d windows (%s)%s\n", n, b.Windows, strings.Join(parts, ", "), noID)
}
