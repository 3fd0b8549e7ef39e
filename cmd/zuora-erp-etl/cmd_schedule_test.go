package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/s3test"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

// runSpans records, per run id (Zuora-Track-Id), the first and last time a
// request of that run reached Zuora.
type runSpans struct {
	next http.Handler
	mu   sync.Mutex
	span map[string][2]time.Time
}

func (s *runSpans) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("Zuora-Track-Id")
	now := time.Now()
	s.mu.Lock()
	sp, ok := s.span[id]
	if !ok {
		sp[0] = now
	}
	s.mu.Unlock()
	s.next.ServeHTTP(w, r)
	s.mu.Lock()
	sp[1] = time.Now()
	s.span[id] = sp
	s.mu.Unlock()
}

// overlaps returns two runs whose requests interleaved, if any.
func (s *runSpans) overlaps() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for a, x := range s.span {
		for b, y := range s.span {
			if a < b && x[0].Before(y[1]) && y[0].Before(x[1]) {
				return a + " and " + b, true
			}
		}
	}
	return "", false
}

// syncLog is a stderr that the test reads while the scheduler writes it.
type syncLog struct{ testutil.SyncBuffer }

// waitFor waits until the log holds n matches of pattern after offset.
func (l *syncLog) waitFor(t *testing.T, pattern string, n int, within time.Duration) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if ms := re.FindAllString(l.String(), -1); len(ms) >= n {
			return ms[n-1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %d× %q within %s in:\n%s", n, pattern, within, l.String())
	return ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitStatus polls url until it answers status.
func waitStatus(t *testing.T, url string, status int, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	var code int
	var body string
	for time.Now().Before(deadline) {
		if code, body = get(t, url); code == status {
			return body
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s answered %d %q; want %d within %s", url, code, body, status, within)
	return ""
}

// scrape parses /metrics into name{labels} → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	_, body := get(t, url)
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			}
		}
	}
	return out
}

// TestScheduleTicksWatchedFromOutside runs schedule in-process with a
// seconds-level spec over several ticks: runs never overlap (a tick due
// while a run goes is skipped), a gap in time is caught up in one run,
// /readyz fails while the last run failed and recovers with it, and
// /metrics says what the run records say.
func TestScheduleTicksWatchedFromOutside(t *testing.T) {
	defer func(d time.Duration) { minCronInterval = d }(minCronInterval)
	minCronInterval = time.Second
	clock := testutil.NewClock(demo.From.Add(65 * time.Minute)) // the first window is due
	zs := zuorasim.New(zuorasim.Options{ClientID: demo.ClientID, ClientSecret: demo.ClientSecret, Now: clock.Now})
	zs.Load(zuorasim.Generate(5, zuorasim.DefaultVolume(), demo.From, demo.From.Add(7*time.Hour)))
	spans := &runSpans{next: zs, span: map[string][2]time.Time{}}
	es := erpsim.New(erpsim.Options{Token: demo.ERPToken})
	stageDir := t.TempDir()
	environ := map[string]string{
		"ZUORA_BASE_URL": testutil.Serve(t, spans), "ZUORA_CLIENT_ID": demo.ClientID, "ZUORA_CLIENT_SECRET": demo.ClientSecret,
		"ERP_BASE_URL": testutil.Serve(t, es), "ERP_TOKEN": demo.ERPToken, "ETL_STAGE": "file://" + stageDir,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout bytes.Buffer
	stderr := &syncLog{}
	p := fastRetry
	e := &env{stdout: &stdout, stderr: stderr, getenv: func(k string) string { return environ[k] }, now: clock.Now, retry: &p}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"schedule", "--cron", "@every 1s", "--now", "--since", demo.From.Format(time.RFC3339),
			"--listen", "127.0.0.1:0", "--breaker", "2", "--log-format", "json"}, e)
	}()
	addr := stderr.waitFor(t, `"addr":"127\.0\.0\.1:\d+"`, 1, 30*time.Second)
	base := "http://" + strings.TrimSuffix(strings.TrimPrefix(addr, `"addr":"`), `"`)
	finished := func(n int) { stderr.waitFor(t, `"msg":"scheduled run finished"`, n, 60*time.Second) }
	count := func() int { return strings.Count(stderr.String(), `"msg":"scheduled run finished"`) }

	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, "alive") {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	finished(2) // the first window, then a tick with nothing due
	waitStatus(t, base+"/readyz", 200, 10*time.Second)

	// A gap: five hours pass at once; the next tick catches up every window,
	// slowly enough (ERP latency) that ticks come due meanwhile and are skipped.
	es.SetFaults(erpsim.Faults{Latency: 15 * time.Millisecond})
	before := count()
	clock.Set(demo.From.Add(5*time.Hour + 5*time.Minute))
	stderr.waitFor(t, `"window":"20261124T040000Z-20261124T050000Z"`, 1, 60*time.Second)
	finished(before + 2)
	es.SetFaults(erpsim.Faults{})
	if which, ok := spans.overlaps(); ok {
		t.Fatalf("runs %s overlapped", which)
	}
	if !strings.Contains(stderr.String(), `"msg":"skip"`) {
		t.Errorf("no tick was skipped while the catch-up ran (it should take longer than a tick)")
	}
	runs := records(t, environ)
	var catchUp *pipeline.RunRecord
	for i := range runs {
		if len(runs[i].Windows) == 4 {
			catchUp = &runs[i]
		}
	}
	if catchUp == nil || catchUp.Windows[0].Window != "20261124T010000Z-20261124T020000Z" || catchUp.ExitStatus != exitRejected {
		t.Fatalf("no run caught up the four windows of the gap: %+v", runs)
	}

	// /metrics says what the run records say: the last run's figures, and
	// the counters summed over every run.
	m := scrape(t, base+"/metrics")
	var lastID string
	for k, v := range m {
		if id, ok := strings.CutPrefix(k, "zuora_erp_etl_last_run_info{run_id="); ok && v == 1 {
			lastID = strings.TrimSuffix(id, "}")
		}
	}
	runs = records(t, environ)
	sums := map[string]int64{}
	var last *pipeline.RunRecord
	for i, r := range runs {
		for _, l := range r.Totals {
			sums[l.DocType] += l.Posted.Count
		}
		if r.RunID == lastID {
			last = &runs[i]
			break
		}
	}
	if last == nil {
		t.Fatalf("/metrics names the last run %q, which the stage did not record", lastID)
	}
	for dt, n := range sums {
		if got := m["zuora_erp_etl_documents_total{doc_type="+dt+",outcome=posted,step=load}"]; got != float64(n) {
			t.Errorf("documents_total %s posted: %v; the records sum %d", dt, got, n)
		}
	}
	if got := m["zuora_erp_etl_last_run_exit_status{}"]; got != float64(last.ExitStatus) {
		t.Errorf("last_run_exit_status %v; the record says %d", got, last.ExitStatus)
	}
	for _, l := range last.Totals {
		if got := m["zuora_erp_etl_last_run_documents{doc_type="+l.DocType+",outcome=extracted,step=extract}"]; got < float64(l.Extracted.Count) {
			t.Errorf("last_run_documents %s extracted: %v; the record says at least %d", l.DocType, got, l.Extracted.Count)
		}
	}
	if m["zuora_erp_etl_requests_total{api=zuora}"] == 0 || m["zuora_erp_etl_requests_total{api=erp}"] < float64(len(es.Documents())) {
		t.Errorf("requests_total: zuora %v, erp %v (the ERP holds %d documents)", m["zuora_erp_etl_requests_total{api=zuora}"], m["zuora_erp_etl_requests_total{api=erp}"], len(es.Documents()))
	}
	if age := m["zuora_erp_etl_high_water_age_seconds{}"]; age != 5*60 {
		t.Errorf("high_water_age_seconds %v; want 300 (the clock is five minutes past the high water)", age)
	}
	if _, ok := m["zuora_erp_etl_lease_held{}"]; !ok {
		t.Error("/metrics has no lease_held")
	}
	if m["zuora_erp_etl_outstanding_rejects{doc_type=invoice,reason=NO_ERP_ACCOUNT}"] == 0 {
		t.Error("/metrics has no outstanding invoice rejects; the tenant has accounts without ERPAccountId__c")
	}
	if !strings.Contains(strings.Join(keys(m), " "), "zuora_erp_etl_amount_total{currency=") {
		t.Error("/metrics has no amounts")
	}

	// The ERP goes down as a new window comes due: the run fails, /readyz
	// says so; the ERP comes back, the next tick resumes, /readyz recovers.
	es.SetFaults(erpsim.Faults{Outage: true})
	clock.Set(demo.From.Add(6*time.Hour + 5*time.Minute))
	stderr.waitFor(t, `"exit_status":1`, 1, 60*time.Second)
	body := waitStatus(t, base+"/readyz", 503, 10*time.Second)
	if !strings.Contains(body, "failed") {
		t.Errorf("/readyz while failing: %q", body)
	}
	es.SetFaults(erpsim.Faults{})
	waitStatus(t, base+"/readyz", 200, 30*time.Second)
	if which, ok := spans.overlaps(); ok {
		t.Fatalf("runs %s overlapped", which)
	}

	// Readiness also needs a fresh high water: hours pass with Zuora unreachable.
	zs.SetFaults(zuorasim.Faults{Status500Every: 1})
	clock.Set(demo.From.Add(10 * time.Hour))
	body = waitStatus(t, base+"/readyz", 503, 30*time.Second)
	zs.SetFaults(zuorasim.Faults{})

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("schedule stopped with exit %d", code)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("schedule did not stop")
	}
	_ = body
}

func keys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// records reads the stage's run records with runs --json.
func records(t *testing.T, environ map[string]string) []pipeline.RunRecord {
	t.Helper()
	code, stdout, stderr := runCLI(t, environ, "runs", "--json", "--last", "0")
	if code != exitOK {
		t.Fatalf("runs --json: exit %d: %s", code, stderr)
	}
	var out []pipeline.RunRecord
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestScheduleStopsCleanlyOnSIGTERM runs schedule as a real process: a
// SIGTERM while a run posts gives the lease back and exits 0; a second
// SIGTERM exits at once with status 1 and says what was kept.
func TestScheduleStopsCleanlyOnSIGTERM(t *testing.T) {
	for _, twice := range []bool{false, true} {
		t.Run(fmt.Sprintf("twice=%v", twice), func(t *testing.T) {
			// The second signal must come while the first is still being
			// honoured: the stage answers slowly once it is sent.
			var slow atomic.Bool
			stageURL := s3test.HookedStageURL(t, func(w http.ResponseWriter, r *http.Request) bool {
				if slow.Load() && r.Method == http.MethodPut {
					time.Sleep(time.Second)
				}
				return false
			})
			w := newProcWorldWith(t, "s3", procOptions{stageURL: stageURL})
			w.gate.hold(20)               // the run is in flight, posting, when the signal comes
			var lines testutil.SyncBuffer // stderr as it arrives, safe to read meanwhile
			p := w.startWatched(t, func(l string) { lines.Write([]byte(l + "\n")) }, "schedule", "--cron", "@every 1m", "--now", "--since", demo.From.Format(time.RFC3339),
				"--until", demo.To.Format(time.RFC3339), "--listen", "127.0.0.1:0")
			deadline := time.Now().Add(60 * time.Second)
			for w.gate.waiting.Load() == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the run never reached the held posts:\n%s", p)
				}
				time.Sleep(20 * time.Millisecond)
			}
			addr := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(lines.String())
			if addr == nil {
				t.Fatalf("no listen address in:\n%s", lines.String())
			}
			if code, _ := get(t, "http://"+addr[1]+"/healthz"); code != 200 {
				t.Errorf("/healthz during the run: %d", code)
			}
			if m := scrape(t, "http://"+addr[1]+"/metrics"); m["zuora_erp_etl_lease_held{}"] != 1 {
				t.Errorf("lease_held during the run: %v", m["zuora_erp_etl_lease_held{}"])
			}
			if twice {
				slow.Store(true)
			}
			p.cmd.Process.Signal(syscall.SIGTERM)
			if twice {
				for !strings.Contains(lines.String(), "again to exit at once") {
					time.Sleep(5 * time.Millisecond)
				}
				p.cmd.Process.Signal(syscall.SIGTERM)
			}
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				t.Fatalf("schedule did not exit after SIGTERM:\n%s", p)
			}
			if twice {
				if p.code != exitFailed || !strings.Contains(p.stderr.String(), "second terminated: exiting now") || !strings.Contains(p.stderr.String(), "kept:") {
					t.Fatalf("second SIGTERM: want exit 1 at once saying what was kept:\n%s", p)
				}
				return
			}
			if p.code != exitOK || !strings.Contains(p.stderr.String(), "scheduler stopped") {
				t.Fatalf("SIGTERM: want exit 0 and a clean stop:\n%s", p)
			}
			show := w.run(t, "lease", "show")
			if !strings.Contains(show.stdout.String(), "given back") {
				t.Fatalf("the lease was not given back:\n%s", show)
			}
			// What the stopped run kept, the next run finishes, posting nothing twice.
			w.gate.hold(-1)
			w.gate.open()
			next := w.run(t, "run", "--until", demo.To.Format(time.RFC3339))
			if next.code != exitRejected {
				t.Fatalf("the run after the stop: %s", next)
			}
			seen := map[string]bool{}
			for _, d := range w.erp.Documents() {
				if seen[d.Key] {
					t.Fatalf("document %s posted twice", d.Key)
				}
				seen[d.Key] = true
			}
			_ = strconv.Itoa
		})
	}
}

// TestRunWritesTheMetricsFile: run --metrics-file leaves a textfile that
// node_exporter reads, whose figures are the run report's, and nothing else
// in its folder.
func TestRunWritesTheMetricsFile(t *testing.T) {
	_, environ := demoEnviron(t)
	dir := t.TempDir()
	path := dir + "/etl.prom"
	c := &cli{t: t, environ: environ}
	code, _, _ := c.run("run", "--since", demo.From.Format(time.RFC3339), "--until", demo.To.Format(time.RFC3339), "--metrics-file", path)
	if code != exitRejected {
		t.Fatalf("run: exit %d", code)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the textfile is not Prometheus' text format: %v", err)
	}
	runs := records(t, environ)
	if len(runs) != 1 {
		t.Fatalf("%d run records", len(runs))
	}
	var posted int64
	for _, l := range runs[0].Totals {
		posted += l.Posted.Count
	}
	var got float64
	for _, m := range families["zuora_erp_etl_last_run_documents"].Metric {
		var step, outcome string
		for _, l := range m.Label {
			switch l.GetName() {
			case "step":
				step = l.GetValue()
			case "outcome":
				outcome = l.GetValue()
			}
		}
		if step == "load" && outcome == "posted" {
			got += m.Gauge.GetValue()
		}
	}
	if got != float64(posted) || posted == 0 {
		t.Errorf("the textfile says %v posted; the run record %d", got, posted)
	}
	if e := families["zuora_erp_etl_last_run_exit_status"]; e == nil || e.Metric[0].Gauge.GetValue() != exitRejected {
		t.Errorf("last_run_exit_status: %v", e)
	}
	if l := families["zuora_erp_etl_lease_held"]; l == nil || l.Metric[0].Gauge.GetValue() != 0 {
		t.Errorf("lease_held after the run: %v", l)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("the metrics folder holds %d files; want the textfile alone", len(left))
	}
}
