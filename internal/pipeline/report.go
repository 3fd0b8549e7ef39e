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

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Report is what a run (or status) tells the user: per window, per document
// type and currency, where every extracted document ended.
type Report struct {
	RunID     string
	Windows   []WindowReport
	HighWater time.Time    // set by Status
	Zuora     *zuora.Stats // requests and retries toward Zuora, when Zuora was called
	// Rejects is every window's outstanding rejects, not only those of the
	// windows above; set by Run once it has re-checked them.
	Rejects *Backlog
}

// WindowReport is one window's account.
type WindowReport struct {
	Window      stage.Window
	Extracted   bool // snapshot committed
	Transformed bool // documents committed
	Loaded      bool // every document posted or rejected, every posted one marked
	Complete    bool
	Stopped     string // why the last load stopped early, if it did
	Warnings    []string
	Lines       []Line
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
	order := func(t string) int {
		if i := slices.Index(stage.DocTypes, t); i >= 0 {
			return i
		}
		return len(stage.DocTypes)
	}
	slices.SortFunc(out, func(a, b Line) int {
		if c := order(a.DocType) - order(b.DocType); c != 0 {
			return c
		}
		return strings.Compare(a.Currency, b.Currency)
	})
	return out
}

func (r *Report) has(w stage.Window) bool {
	for _, x := range r.Windows {
		if x.Window.ID() == w.ID() {
			return true
		}
	}
	return false
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
// reject in any window (or, without the backlog, a reject of the windows
// above), or a document the ERP refused in the windows above.
func (r *Report) NeedsAttention() bool {
	if r.OutstandingRejects() > 0 {
		return true
	}
	for _, l := range r.Totals() {
		if l.ERPRejected.Count > 0 || r.Rejects == nil && l.Rejected.Count > 0 {
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

// Print writes the report: document counts per type, then amounts per type
// and currency with the balance check (extracted = posted + rejected + skipped
// + pending).
func (r *Report) Print(out io.Writer) {
	defer r.printBacklog(out)
	switch len(r.Windows) {
	case 0:
		fmt.Fprintf(out, "%s: no window was due\n", r.RunID)
		return
	case 1:
		fmt.Fprintf(out, "%s: window %s\n", r.RunID, r.Windows[0].Window.ID())
	default:
		fmt.Fprintf(out, "%s: %d windows, %s to %s\n", r.RunID, len(r.Windows),
			r.Windows[0].Window.Start.Format(time.RFC3339), r.Windows[len(r.Windows)-1].Window.End.Format(time.RFC3339))
	}
	totals := r.Totals()
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
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
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
	if z := r.Zuora; z != nil {
		fmt.Fprintf(out, "\nzuora: %d requests, %d retried (429: %d, 5xx: %d, transport: %d, reasons: %d), %d token refreshes after 401, %d write-back objects retried\n",
			z.Requests, z.RetriesRateLimit+z.Retries5xx+z.RetriesTransport+z.RetriesReasons,
			z.RetriesRateLimit, z.Retries5xx, z.RetriesTransport, z.RetriesReasons, z.Refreshes401, z.RetriedObjects)
	}
	for _, w := range r.Windows {
		for _, msg := range w.Warnings {
			fmt.Fprintf(out, "warning: window %s: %s\n", w.Window.ID(), msg)
		}
		if w.Stopped != "" {
			fmt.Fprintf(out, "window %s: load stopped: %s\n", w.Window.ID(), w.Stopped)
		}
	}
}

func amount(t stage.Tally) string {
	if t.Count == 0 {
		return "-"
	}
	return t.Amount.String()
}

// PrintStatus writes one line per window with what is done and what is pending.
func (r *Report) PrintStatus(out io.Writer) {
	if !r.HighWater.IsZero() {
		fmt.Fprintf(out, "high-water mark: %s\n", r.HighWater.Format(time.RFC3339))
	} else {
		fmt.Fprintln(out, "high-water mark: none yet")
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
		next := "-"
		switch {
		case !w.Extracted:
			next = "zuora-erp-etl run"
		case !w.Transformed:
			next = "zuora-erp-etl transform --window " + w.Window.ID()
		case !w.Loaded:
			next = "zuora-erp-etl load --window " + w.Window.ID()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", w.Window.ID(), done(w.Extracted), done(w.Transformed), done(w.Loaded), ready, posted, rejected, pending, unmarked, next)
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
