// Package metrics turns run records into Prometheus metrics: served by
// schedule on /metrics, written by run as a node_exporter textfile. Counts
// are exact; amounts are float gauges for dashboards only (the run report
// and the run record are the exact account).
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

const ns = "zuora_erp_etl"

// Columns of a report line as (step, outcome) labels, in report order.
var columns = []struct {
	step, outcome string
	of            func(pipeline.RunLine) stage.Tally
}{
	{"extract", "extracted", func(l pipeline.RunLine) stage.Tally { return l.Extracted }},
	{"transform", "ready", func(l pipeline.RunLine) stage.Tally { return l.Ready }},
	{"transform", "rejected", func(l pipeline.RunLine) stage.Tally { return l.Rejected }},
	{"transform", "skipped", func(l pipeline.RunLine) stage.Tally { return l.Skipped }},
	{"load", "posted", func(l pipeline.RunLine) stage.Tally { return l.Posted }},
	{"load", "rejected", func(l pipeline.RunLine) stage.Tally { return l.ERPRejected }},
	{"load", "pending", func(l pipeline.RunLine) stage.Tally { return l.Pending }},
	{"load", "dependency_rejected", func(l pipeline.RunLine) stage.Tally { return l.DependencyRejected }},
	{"load", "waiting", func(l pipeline.RunLine) stage.Tally { return l.Waiting }},
	{"mark", "marked", func(l pipeline.RunLine) stage.Tally { return l.Marked }},
}

// Metrics holds the figures of the runs seen so far. Safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	lastDocs, lastAmounts                     *prometheus.GaugeVec
	docsCount, amountsSum                     *prometheus.CounterVec
	requests, retries, rateLimited            *prometheus.CounterVec
	outstanding, outstandingAmount, pending   *prometheus.GaugeVec
	highWater                                 prometheus.Gauge
	lastStart, lastDuration, lastExit, lastOK prometheus.Gauge
	lastInfo                                  *prometheus.GaugeVec
	runs                                      *prometheus.CounterVec

	mu        sync.Mutex
	hw        time.Time
	lastRun   *pipeline.RunRecord
	lastGood  bool // the last run that did work finished without failure
	seenAny   bool
	leaseHeld func() (held bool, ok bool)
}

// Options configure New.
type Options struct {
	Now func() time.Time // nil: time.Now
	// LeaseHeld reports whether a writer holds the stage's lease now; ok is
	// false when it could not be read. Nil leaves the metric out.
	LeaseHeld func() (held, ok bool)
	// Process adds the Go runtime and process collectors (schedule, not a textfile).
	Process bool
}

// New returns the metrics with every document type of the registry already
// present at zero, so that dashboards see each series from the first scrape.
func New(o Options) *Metrics {
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Metrics{reg: prometheus.NewRegistry(), now: o.Now, leaseHeld: o.LeaseHeld}
	byType := []string{"doc_type", "step", "outcome"}
	byCurrency := []string{"doc_type", "currency", "step", "outcome"}
	m.lastDocs = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "last_run_documents",
		Help: "Documents of the last run, per document type, step and outcome (the run report's counts)."}, byType)
	m.lastAmounts = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "last_run_amount",
		Help: "Amounts of the last run per type, currency, step and outcome; a float for dashboards: the run report is the exact record."}, byCurrency)
	m.docsCount = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "documents_total",
		Help: "Documents of every run since the process started, per document type, step and outcome."}, byType)
	m.amountsSum = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "amount_total",
		Help: "Amounts of every run since the process started (float, for dashboards; a negative line is left out)."}, byCurrency)
	api := []string{"api"}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "requests_total",
		Help: "HTTP requests sent, per API (zuora, erp)."}, api)
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "retries_total",
		Help: "Requests sent again after a transient failure, per API."}, api)
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rate_limited_total",
		Help: "Answers 429 (too many requests), per API."}, api)
	m.outstanding = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "outstanding_rejects",
		Help: "Outstanding rejects of every window after the last run, per document type and reason."}, []string{"doc_type", "reason"})
	m.outstandingAmount = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "outstanding_rejects_amount",
		Help: "Amount of the outstanding rejects per currency (float, for dashboards)."}, []string{"currency"})
	m.pending = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "pending_documents",
		Help: "Documents of the windows the last run took that are not finished: state unposted (no answer from the ERP) or unmarked (posted, not marked in Zuora)."}, []string{"doc_type", "state"})
	m.highWater = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "high_water_timestamp_seconds",
		Help: "Where the next run starts: every window before it is committed (Unix time; 0 before the first)."})
	m.lastStart = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "last_run_start_timestamp_seconds", Help: "When the last run started (Unix time)."})
	m.lastDuration = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "last_run_duration_seconds", Help: "How long the last run took."})
	m.lastExit = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "last_run_exit_status",
		Help: "Exit status of the last run: 0 done, 1 failed, 2 configuration, 3 rejects need a person, 4 lease held."})
	m.lastOK = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "last_run_success",
		Help: "1 when the last run that did work finished without failure (exit status 0 or 3), else 0."})
	m.lastInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "last_run_info",
		Help: "1, labelled with the last run's id: its record is runs/<run_id>.json in the stage."}, []string{"run_id"})
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "runs_total", Help: "Runs since the process started, per exit status."}, []string{"exit_status"})
	m.reg.MustRegister(m.lastDocs, m.lastAmounts, m.docsCount, m.amountsSum, m.requests, m.retries, m.rateLimited,
		m.outstanding, m.outstandingAmount, m.pending, m.highWater, m.lastStart, m.lastDuration, m.lastExit, m.lastOK, m.lastInfo, m.runs)
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "high_water_age_seconds",
		Help: "How far the high water is behind now; grows while no window is committed (0 before the first)."}, m.highWaterAge))
	if o.LeaseHeld != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "lease_held",
			Help: "1 when a writer (this process or another) holds the stage's lease, 0 when it is free."}, m.leaseValue))
	}
	if o.Process {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, dt := range stage.LoadOrder() { // every doc_type a report has lines for
		for _, c := range columns {
			m.lastDocs.WithLabelValues(string(dt), c.step, c.outcome)
			m.docsCount.WithLabelValues(string(dt), c.step, c.outcome)
		}
		m.pending.WithLabelValues(string(dt), "unposted")
		m.pending.WithLabelValues(string(dt), "unmarked")
	}
	for _, a := range []string{"zuora", "erp"} {
		m.requests.WithLabelValues(a)
		m.retries.WithLabelValues(a)
		m.rateLimited.WithLabelValues(a)
	}
	return m
}

// Observe takes in a finished run and the stage's high water after it (zero
// when none). A run refused for its lease (exit 4) changes only the last
// run's status and the run count: it did no work.
func (m *Metrics) Observe(r pipeline.RunRecord, highWater time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs.WithLabelValues(itoa(r.ExitStatus)).Inc()
	m.lastStart.Set(float64(r.StartedAt.UnixMilli()) / 1000)
	m.lastDuration.Set(r.DurationSeconds)
	m.lastExit.Set(float64(r.ExitStatus))
	m.lastInfo.Reset()
	m.lastInfo.WithLabelValues(r.RunID).Set(1)
	rec := r
	m.lastRun = &rec
	if !highWater.IsZero() {
		m.hw = highWater
		m.highWater.Set(float64(highWater.Unix()))
	}
	if r.ExitStatus == int(pipeline.LeaseHeld) {
		return
	}
	m.seenAny = true
	m.lastGood = r.ExitStatus == int(pipeline.Done) || r.ExitStatus == int(pipeline.NeedsAttention)
	m.lastOK.Set(b2f(m.lastGood))

	m.lastDocs.Reset()
	m.lastAmounts.Reset()
	m.pending.Reset()
	for _, dt := range stage.LoadOrder() { // every doc_type a report has lines for
		for _, c := range columns {
			m.lastDocs.WithLabelValues(string(dt), c.step, c.outcome)
		}
		m.pending.WithLabelValues(string(dt), "unposted")
		m.pending.WithLabelValues(string(dt), "unmarked")
	}
	for _, l := range r.Totals {
		for _, c := range columns {
			t := c.of(l)
			m.lastDocs.WithLabelValues(l.DocType, c.step, c.outcome).Add(float64(t.Count))
			m.docsCount.WithLabelValues(l.DocType, c.step, c.outcome).Add(float64(t.Count))
			amount := t.Amount.InexactFloat64()
			m.lastAmounts.WithLabelValues(l.DocType, l.Currency, c.step, c.outcome).Set(amount)
			if amount > 0 {
				m.amountsSum.WithLabelValues(l.DocType, l.Currency, c.step, c.outcome).Add(amount)
			}
		}
		m.pending.WithLabelValues(l.DocType, "unposted").Add(float64(l.Pending.Count))
		if stage.DocType(l.DocType).IsDocument() { // applications and reversals have no flag in Zuora
			m.pending.WithLabelValues(l.DocType, "unmarked").Add(float64(l.Posted.Count - l.Marked.Count))
		}
	}
	if r.Rejects != nil {
		m.outstanding.Reset()
		m.outstandingAmount.Reset()
		for _, l := range r.Rejects.Lines {
			m.outstanding.WithLabelValues(l.DocType, l.Reason).Add(float64(l.Outstanding.Count))
			m.outstandingAmount.WithLabelValues(l.Currency).Add(l.Outstanding.Amount.InexactFloat64())
		}
	}
	for api, q := range map[string]*pipeline.RunRequests{"zuora": r.Zuora, "erp": r.ERP} {
		if q != nil {
			m.requests.WithLabelValues(api).Add(float64(q.Requests))
			m.retries.WithLabelValues(api).Add(float64(q.Retries))
			m.rateLimited.WithLabelValues(api).Add(float64(q.RateLimited))
		}
	}
}

// SetHighWater records the stage's high water without a run (at start).
func (m *Metrics) SetHighWater(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !t.IsZero() {
		m.hw = t
		m.highWater.Set(float64(t.Unix()))
	}
}

// Ready says whether a probe should count the process ready: the last run
// that did work finished without failure and the high water is fresher than
// maxAge. Before any run, the high water alone decides.
func (m *Metrics) Ready(maxAge time.Duration) (bool, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	age := m.now().Sub(m.hw)
	switch {
	case m.seenAny && !m.lastGood:
		return false, "the last run failed (exit status " + itoa(m.lastRun.ExitStatus) + ")"
	case m.hw.IsZero():
		return false, "the stage has no high water yet"
	case age > maxAge:
		return false, "the high water is " + age.Round(time.Second).String() + " old, more than " + maxAge.String()
	case !m.seenAny:
		return true, "no run yet; the high water is " + age.Round(time.Second).String() + " old"
	}
	return true, "the last run finished; the high water is " + age.Round(time.Second).String() + " old"
}

func (m *Metrics) highWaterAge() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hw.IsZero() {
		return 0
	}
	return m.now().Sub(m.hw).Seconds()
}

func (m *Metrics) leaseValue() float64 {
	held, ok := m.leaseHeld()
	if !ok {
		return -1
	}
	return b2f(held)
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// WriteTextfile writes the metrics for node_exporter's textfile collector:
// a temp file in the same folder, renamed over path, so a reader never sees
// half a file.
func (m *Metrics) WriteTextfile(path string) error {
	return prometheus.WriteToTextfile(path, m.reg)
}

// Gatherer exposes the registry, for tests.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func itoa(n int) string { return strconv.Itoa(n) }
