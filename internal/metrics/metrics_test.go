package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func tally(n int64, a string) stage.Tally {
	return stage.Tally{Count: n, Amount: decimal.RequireFromString(a)}
}

func TestObserveAndReady(t *testing.T) {
	now := time.Date(2026, 11, 24, 5, 5, 0, 0, time.UTC)
	m := New(Options{Now: func() time.Time { return now }, LeaseHeld: func() (bool, bool) { return true, true }})
	if ok, why := m.Ready(time.Hour); ok || !strings.Contains(why, "no high water") {
		t.Errorf("ready before anything: %v %q", ok, why)
	}
	rec := pipeline.RunRecord{RunID: "run-a", ExitStatus: 3, StartedAt: now.Add(-time.Minute), DurationSeconds: 60,
		Totals: []pipeline.RunLine{{DocType: "invoice", Currency: "USD", Extracted: tally(5, "100.50"), Ready: tally(4, "90"),
			Rejected: tally(1, "10.50"), Posted: tally(3, "60"), Pending: tally(1, "30"), Marked: tally(2, "40")}},
		Rejects: &pipeline.RunBacklog{Documents: 1, Lines: []pipeline.BacklogJSON{{DocType: "invoice", Currency: "USD", Reason: "NO_ERP_ACCOUNT", Outstanding: tally(1, "10.50")}}},
		ERP:     &pipeline.RunRequests{Requests: 7, Retries: 2, RateLimited: 1}}
	m.Observe(rec, now.Add(-5*time.Minute))
	m.Observe(rec, now.Add(-5*time.Minute))
	for name, want := range map[string]float64{
		`last_run_documents{doc_type="invoice",outcome="posted",step="load"}`:                   3,
		`documents_total{doc_type="invoice",outcome="posted",step="load"}`:                      6,
		`last_run_amount{currency="USD",doc_type="invoice",outcome="extracted",step="extract"}`: 100.5,
		`pending_documents{doc_type="invoice",state="unposted"}`:                                1,
		`pending_documents{doc_type="invoice",state="unmarked"}`:                                1,
		`outstanding_rejects{doc_type="invoice",reason="NO_ERP_ACCOUNT"}`:                       1,
		`rate_limited_total{api="erp"}`:                                                         2,
		`high_water_age_seconds`:                                                                300,
		`last_run_exit_status`:                                                                  3,
		`lease_held`:                                                                            1,
	} {
		if got := value(t, m, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// Every type of the registry is there from the start.
	if got := value(t, m, `last_run_documents{doc_type="refund",outcome="posted",step="load"}`); got != 0 {
		t.Errorf("refund series: %v", got)
	}
	if ok, _ := m.Ready(time.Hour); !ok {
		t.Error("not ready after a run with rejects (exit 3 is a finished run)")
	}
	if ok, why := m.Ready(time.Minute); ok || !strings.Contains(why, "old") {
		t.Errorf("ready with a stale high water: %q", why)
	}
	rec.ExitStatus = 1
	m.Observe(rec, time.Time{})
	if ok, why := m.Ready(time.Hour); ok || !strings.Contains(why, "failed") {
		t.Errorf("ready after a failed run: %q", why)
	}
	rec.ExitStatus = 4 // another writer: no work, readiness unchanged
	m.Observe(rec, time.Time{})
	if ok, _ := m.Ready(time.Hour); ok {
		t.Error("a refused run made the process ready")
	}
	path := filepath.Join(t.TempDir(), "etl.prom")
	if err := m.WriteTextfile(path); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "zuora_erp_etl_last_run_exit_status 4") {
		t.Errorf("textfile:\n%s", data)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*")); len(left) != 1 {
		t.Errorf("the textfile left %v", left)
	}
}

// value reads one series from the registry, by the name without the namespace.
func value(t *testing.T, m *Metrics, series string) float64 {
	t.Helper()
	name, labels, _ := strings.Cut(series, "{")
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != ns+"_"+name {
			continue
		}
		for _, mt := range mf.Metric {
			var ls []string
			for _, l := range mt.Label {
				ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
			}
			if strings.Join(ls, ",") != strings.TrimSuffix(labels, "}") {
				continue
			}
			if mt.Gauge != nil {
				return mt.Gauge.GetValue()
			}
			return mt.Counter.GetValue()
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}
