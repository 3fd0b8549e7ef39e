package load

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erp"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// erpProcessEnv makes the test binary serve an ERP simulator instead of
// running tests, so that memory tests measure the load alone.
const erpProcessEnv = "LOAD_TEST_ERP_PROCESS"

func TestMain(m *testing.M) {
	if os.Getenv(erpProcessEnv) != "" {
		serveERPProcess()
		return
	}
	os.Exit(m.Run())
}

// erpSummary is what the ERP process reports about the documents it holds.
type erpSummary struct {
	Documents int               `json:"documents"` // stored documents, duplicates included
	Bodies    map[string]string `json:"bodies"`    // idempotency key → sha256 of the stored body
	Creates   map[string]int    `json:"creates"`   // idempotency key → requests answered 201
}

// serveERPProcess serves an erpsim on loopback, prints its URL, and exits when
// stdin closes (the test that started it ended or died).
func serveERPProcess() {
	sim := erpsim.New(erpsim.Options{Token: erpToken})
	mux := http.NewServeMux()
	mux.Handle("/", sim)
	mux.HandleFunc("GET /_test/summary", func(w http.ResponseWriter, _ *http.Request) {
		s := erpSummary{Bodies: map[string]string{}, Creates: map[string]int{}}
		for _, d := range sim.Documents() {
			s.Documents++
			sum := sha256.Sum256(d.Body)
			s.Bodies[d.Key] = hex.EncodeToString(sum[:])
		}
		for _, r := range sim.Requests() {
			if r.Status == http.StatusCreated {
				s.Creates[r.Key]++
			}
		}
		_ = json.NewEncoder(w).Encode(s)
	})
	testutil.ServeChild(mux)
}

// erpProcess is an ERP simulator running in a child process.
type erpProcess struct {
	url string
}

// startERPProcess starts the test binary as an ERP simulator; it stops with the test.
func startERPProcess(t testing.TB) *erpProcess {
	t.Helper()
	return &erpProcess{url: testutil.StartChild(t, erpProcessEnv+"=1")}
}

func (p *erpProcess) summary(t testing.TB) erpSummary {
	t.Helper()
	resp, err := http.Get(p.url + "/_test/summary")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s erpSummary
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// bigFixture is a window of large documents written straight into the stage.
type bigFixture struct {
	size   int64             // bytes of NDJSON
	shas   map[string]string // zuora id → sha256 of its payload
	totals map[string]decimal.Decimal
}

// writeBigFixture streams n documents of about payloadSize bytes each into the
// stage as w's transform output, sorted by type in dependency order as the
// transform writes them; ids start with prefix. It never holds more than one payload.
func writeBigFixture(t testing.TB, st *stage.Stage, w stage.Window, prefix string, n, payloadSize int) bigFixture {
	t.Helper()
	ctx := context.Background()
	f := bigFixture{shas: map[string]string{}, totals: map[string]decimal.Decimal{}}
	filler := make([]byte, 1800)
	for i := range filler {
		filler[i] = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789"[(i*7)%63]
	}
	var payload strings.Builder
	out, err := st.NewWriter(ctx, stage.ReadyKey("documents", w, "ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Abort()
	bw := bufio.NewWriter(out)
	for i := range n {
		docType := stage.Documents()[i*len(stage.Documents())/n]
		id := fmt.Sprintf("%s%028d", prefix, i)
		amount := fmt.Sprintf("%d.123456789", 1000+i)
		payload.Reset()
		fmt.Fprintf(&payload, `{"%s":{"zuora_id":"%s","number":"N-%d","customer":"ERP-1001","currency":"USD","date":"2026-11-25","amount":%s,"items":[`,
			docType, id, i, amount)
		for k := 0; payload.Len() < payloadSize; k++ {
			if k > 0 {
				payload.WriteByte(',')
			}
			fmt.Fprintf(&payload, `{"zuora_id":"%s-%d","description":"%s","quantity":1,"unit_price":0.5,"amount":0.5,"tax_amount":0}`, id, k, filler)
		}
		payload.WriteString("]}}")
		sum := sha256.Sum256([]byte(payload.String()))
		f.shas[id] = hex.EncodeToString(sum[:])
		f.totals[string(docType)] = f.totals[string(docType)].Add(decimal.RequireFromString(amount))
		fmt.Fprintf(bw, `{"doc_type":"%s","zuora_id":"%s","number":"N-%d","idempotency_key":"%s","customer":"ERP-1001","currency":"USD","amount":%s,"endpoint":"%s","payload":%s}`+"\n",
			docType, id, i, id, amount, docType.Endpoint(), payload.String())
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	info := out.Info()
	m := stage.TransformManifest{Window: w.ID(), RunID: "t", Documents: info, CommittedAt: time.Now().UTC()}
	if err := st.WriteManifest(ctx, w, m); err != nil {
		t.Fatal(err)
	}
	f.size = info.Size
	return f
}

// TestLoadMemoryDoesNotGrowWithTheWindow loads a window of 2,000 documents of
// 100 KB each (about 200 MB of NDJSON) into an ERP simulator in another process
// and checks that the heap never grew by a quarter of the NDJSON's size.
func TestLoadMemoryDoesNotGrowWithTheWindow(t *testing.T) {
	const n, payloadSize = 2000, 100 << 10
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	st, err := stage.Open(context.Background(), "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fix := writeBigFixture(t, st, testWindow, "8a8f", n, payloadSize)
	proc := startERPProcess(t)
	marker := newMarker()
	logs := &testutil.SyncBuffer{}
	opts := Options{Concurrency: 4, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	client := erpClient(t, proc.url, 10*time.Second)

	h := testutil.StartHeapPeak()
	start := time.Now()
	man, err := Run(context.Background(), st, testWindow, client, marker, opts)
	took := time.Since(start)
	growth := h.Growth()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d documents, %d MB of NDJSON loaded in %v; heap peak grew by %.1f MB", n, fix.size>>20, took.Round(time.Millisecond), float64(growth)/(1<<20))
	if growth > fix.size/4 {
		t.Errorf("the heap grew by %d bytes while loading %d bytes of NDJSON; want less than a quarter", growth, fix.size)
	}

	// And the load did its job: every document once in the ERP, byte for byte, marked, tallied.
	sum := proc.summary(t)
	if sum.Documents != n || len(sum.Bodies) != n {
		t.Fatalf("the ERP holds %d documents (%d keys); want %d", sum.Documents, len(sum.Bodies), n)
	}
	for id, sha := range fix.shas {
		if sum.Bodies[id] != sha || sum.Creates[id] != 1 {
			t.Fatalf("document %s: ERP body sha %s created %d times; want %s once", id, sum.Bodies[id], sum.Creates[id], sha)
		}
		if marker.marked[id] != 1 {
			t.Fatalf("document %s marked %d times; want 1", id, marker.marked[id])
		}
	}
	if !man.Complete || len(man.Totals) != len(stage.Documents()) {
		t.Fatalf("manifest complete=%v with %d totals; want complete with one per type", man.Complete, len(man.Totals))
	}
	for _, tt := range man.Totals {
		if want := fix.totals[tt.DocType]; !tt.Ready.Amount.Equal(want) || !tt.Posted.Equal(tt.Ready) || !tt.Marked.Equal(tt.Ready) {
			t.Errorf("%s totals %+v; want ready, posted and marked %s", tt.DocType, tt, want)
		}
	}
}

// BenchmarkRunLargePayloads loads 200 documents of 200 KB each into an ERP
// simulator in another process; B/op and the heap's peak growth are the load's alone.
func BenchmarkRunLargePayloads(b *testing.B) {
	const n, payloadSize = 200, 200 << 10
	proc := startERPProcess(b)
	client := erpClient(b, proc.url, 0)
	b.ReportAllocs()
	var peak int64
	var size int64
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		st, err := stage.Open(context.Background(), "file://"+b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		size = writeBigFixture(b, st, testWindow, fmt.Sprintf("b%03d", i%1000), n, payloadSize).size
		opts := Options{Concurrency: 4, Logger: slog.New(slog.DiscardHandler)}
		h := testutil.StartHeapPeak()
		b.StartTimer()
		if _, err := Run(context.Background(), st, testWindow, client, newMarker(), opts); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		peak = max(peak, h.Growth())
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "docs/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.SetBytes(size)
}

func TestChecksumMismatchPostsNothing(t *testing.T) {
	specs := makeSpecs(20)
	e := newEnv(t, specs)
	// The NDJSON changes after the transform committed it; the manifest does not.
	key := stage.ReadyKey("documents", testWindow, "ndjson")
	var b strings.Builder
	for i, s := range specs {
		if i == 19 {
			s.amount = "1.00" // the very last line: found only once every line was read
		}
		b.WriteString(s.line() + "\n")
	}
	if _, err := e.st.WriteBytes(e.ctx, key, []byte(b.String())); err != nil {
		t.Fatal(err)
	}
	_, err := e.run(e.ctx, e.opts())
	if err == nil || !strings.Contains(err.Error(), "checksum") || !strings.Contains(err.Error(), key) {
		t.Fatalf("Run = %v; want a checksum error naming %s", err, key)
	}
	if n := len(e.sim.Requests()); n != 0 || e.marker.callCount() != 0 {
		t.Fatalf("%d posts and %d Marker calls; want none", n, e.marker.callCount())
	}
	if parts, err := e.st.List(e.ctx, stage.LedgerPrefix(testWindow)); err != nil || len(parts) != 0 {
		t.Fatalf("ledger parts %v, %v; want none", parts, err)
	}
	if _, err := Pending(e.ctx, e.st, testWindow); err == nil || !strings.Contains(err.Error(), key) {
		t.Fatalf("Pending = %v; want the checksum error", err)
	}
}

func TestNotSortedByTypeIsStillPostedInDependencyOrder(t *testing.T) {
	// Sorted by type as the transform writes, except that one invoice comes last.
	specs := makeSpecs(30)
	sorted := make([]spec, 0, len(specs))
	for _, dt := range stage.Documents() {
		for _, s := range specs {
			if s.docType == dt && s.id != specs[0].id {
				sorted = append(sorted, s)
			}
		}
	}
	sorted = append(sorted, specs[0])
	e := newEnv(t, sorted)
	man, err := e.run(e.ctx, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	e.assertSettled(man, nil)
	reqs := e.sim.Requests()
	rank := map[string]int{}
	for i, dt := range stage.Documents() {
		rank[dt.Endpoint()] = i
	}
	for i := 1; i < len(reqs); i++ {
		if rank[reqs[i].Path] < rank[reqs[i-1].Path] {
			t.Fatalf("request %d to %s came after %s: not in dependency order", i, reqs[i].Path, reqs[i-1].Path)
		}
	}
	if len(reqs) != len(specs) {
		t.Fatalf("the ERP got %d requests; want %d", len(reqs), len(specs))
	}
}

func TestDocumentsChangedDuringTheLoadStopBeforePostingThem(t *testing.T) {
	specs := makeSpecs(25) // interleaved types: one read of the NDJSON per type
	e := newEnv(t, specs)
	changed := append([]spec(nil), specs...)
	var firstPayment int
	for i, s := range changed {
		if s.docType == "payment" {
			firstPayment = i
			break
		}
	}
	changed[firstPayment].customer = "ERP-CHANGED"
	// While invoices are posted, the NDJSON is replaced behind the manifest's back.
	var once sync.Once
	e.wrap = func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		once.Do(func() {
			var b strings.Builder
			for _, s := range changed {
				b.WriteString(s.line() + "\n")
			}
			if _, err := e.st.WriteBytes(e.ctx, stage.ReadyKey("documents", testWindow, "ndjson"), []byte(b.String())); err != nil {
				t.Error(err)
			}
		})
		next.ServeHTTP(w, r)
	}
	man, err := e.run(e.ctx, e.opts())
	if err == nil || !strings.Contains(err.Error(), "changed since they were verified") || !errors.As(err, new(*Error)) {
		t.Fatalf("Run = %v; want a changed-documents error naming the resume command", err)
	}
	if !strings.Contains(man.StoppedBecause, "changed since they were verified") || man.Complete {
		t.Fatalf("manifest stopped=%q complete=%v", man.StoppedBecause, man.Complete)
	}
	// Types before payment were posted and marked; no payment or refund was sent.
	for _, r := range e.sim.Requests() {
		if r.Path == "/api/payments" || r.Path == "/api/refunds" {
			t.Fatalf("posted %s %s after the NDJSON changed", r.Path, r.Key)
		}
	}
	inERPDocs := e.erpDocs()
	for _, s := range specs {
		posted := s.docType != "payment" && s.docType != "refund"
		if _, inERP := inERPDocs[s.id]; inERP != posted || (e.marker.marked[s.id] == 1) != posted {
			t.Fatalf("document %s (%s) in the ERP %v, marked %d times", s.id, s.docType, inERP, e.marker.marked[s.id])
		}
	}

	// The manifest no longer matches the file: the next run refuses it outright.
	before := len(e.sim.Requests())
	if _, err := e.run(e.ctx, e.opts()); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("re-run = %v; want a checksum error", err)
	}
	// The transform commits the new file; the next run posts the rest.
	e.writeFixture(changed)
	e.wrap = nil
	man, err = e.run(e.ctx, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	e.assertSettled(man, nil)
	if got := len(e.sim.Requests()) - before; got != 10 {
		t.Fatalf("the last run posted %d documents; want the 10 payments and refunds", got)
	}
}

// erpClient is a client for the ERP simulator at url.
func erpClient(t testing.TB, url string, timeout time.Duration) *erp.Client {
	t.Helper()
	c, err := erp.New(erp.Config{BaseURL: url, Token: erpToken, Retry: fastRetry, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// countingMarker confirms every write-back and keeps only a count, so that a
// memory test measures the load's heap, not the fake's.
type countingMarker struct{ marked atomic.Int64 }

func (c *countingMarker) SetTransferred(_ context.Context, _, _ string, ids []string) ([]zuora.MarkResult, error) {
	out := make([]zuora.MarkResult, len(ids))
	for i, id := range ids {
		out[i] = zuora.MarkResult{ID: id, OK: true, Attempts: 1}
	}
	c.marked.Add(int64(len(ids)))
	return out, nil
}

// loadStateBytesPerDocument is what the load may keep per document of a
// window: its ledger state (the ids, the ERP's id, flags), the lines
// themselves being indexed in a temporary file; measured at 0.2 to 0.3 KB
// (with a collection every 10% of growth, as the test runs). The index held
// in memory, as the load did before, measured 0.47 to 0.6 KB so (0.5 to 0.8
// KB with collections at 100%; 0.8 to 1.3 KB before a state kept its
// refusal and hold by pointer);
// holding the window's ledger rows as well measured about 2 KB; holding the
// documents (1 KB each here) fails too.
const loadStateBytesPerDocument = 400

// TestLoadMemoryPerDocumentIsALedgerState loads a window, re-runs it, and
// asks for its verdicts and its pending work, at two sizes ten times apart,
// with the ERP in another process: the live heap's peak grows with the window by
// at most a ledger state per document, never by the documents, their index or the
// ledger's rows.
func TestLoadMemoryPerDocumentIsALedgerState(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(10)) // a collection every MB or so: the live heap's peak is seen, not what a late one finds
	proc := startERPProcess(t)
	client := erpClient(t, proc.url, 10*time.Second)
	peak := func(n int) int64 {
		st, err := stage.Open(context.Background(), "file://"+t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		writeBigFixture(t, st, testWindow, fmt.Sprintf("m%d-", n), n, 1<<10)
		opts := Options{Concurrency: 4, Logger: slog.New(slog.DiscardHandler)}
		marker := &countingMarker{}
		ctx := context.Background()
		h := testutil.StartLivePeak()
		for pass := range 2 { // the second finds everything posted and marked
			if _, err := Run(ctx, st, testWindow, client, marker, opts); err != nil {
				t.Fatalf("%d documents, pass %d: %v", n, pass+1, err)
			}
		}
		if _, _, err := Verdicts(ctx, st, testWindow, nil, true); err != nil {
			t.Fatal(err)
		}
		if _, err := Pending(ctx, st, testWindow); err != nil {
			t.Fatal(err)
		}
		growth := h.Growth()
		if got := marker.marked.Load(); got != int64(n) {
			t.Fatalf("%d documents: %d marked", n, got)
		}
		return growth
	}
	const small, large = 1000, 10000
	a, b := min(peak(small), peak(small)), min(peak(large), peak(large)) // the lower of two: a collection's timing only adds

	perDoc := float64(b-a) / (large - small)
	t.Logf("heap peak growth: %.1f MB at %d documents, %.1f MB at %d: %.0f bytes per document", float64(a)/(1<<20), small, float64(b)/(1<<20), large, perDoc)
	if perDoc > loadStateBytesPerDocument {
		t.Errorf("the load's heap grows by %.0f bytes per document of the window; want at most %d (a ledger state)", perDoc, loadStateBytesPerDocument)
	}
}

// TestAPhaseOfApplicationsIsNotHeldWhole loads windows of invoices, payments
// and the applications joining them, at two sizes eight times apart, with the
// ERP in another process: the live heap's peak grows by the lines' ledger
// states, not by the applications of a phase and what they depend on, which
// the holds decide a chunk at a time. Measured at 0.65 KB per application
// and its two documents; a phase decided whole, 2 KB.
func TestAPhaseOfApplicationsIsNotHeldWhole(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	defer func(n int) { holdChunk = n }(holdChunk)
	holdChunk = 256 // what the test's sizes are to a peak hour
	proc := startERPProcess(t)
	client := erpClient(t, proc.url, 10*time.Second)
	peak := func(n int) int64 {
		ctx := context.Background()
		st, err := stage.Open(ctx, "file://"+t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		e := &env{t: t, ctx: ctx, st: st}
		var lines []stage.Envelope
		for i := range n {
			lines = append(lines, post(stage.Invoice, fmt.Sprintf("inv-%d-%024d", n, i), "100.00"))
		}
		for i := range n {
			lines = append(lines, post(stage.Payment, fmt.Sprintf("pay-%d-%024d", n, i), "100.00"))
		}
		for i := range n {
			lines = append(lines, appEnv(stage.PaymentApplication, fmt.Sprintf("app-%d-%024d", n, i),
				fmt.Sprintf("pay-%d-%024d", n, i), fmt.Sprintf("inv-%d-%024d", n, i), "100.00"))
		}
		e.writeLines(testWindow, lines...)
		lines = nil
		h := testutil.StartLivePeak()
		man, err := Run(ctx, st, testWindow, client, &countingMarker{}, Options{Concurrency: 4, Logger: slog.New(slog.DiscardHandler)})
		growth := h.Growth()
		if err != nil {
			t.Fatalf("%d applications: %v", n, err)
		}
		if got := totalsOf(man, stage.PaymentApplication).Posted.Count; got != int64(n) {
			t.Fatalf("%d applications: %d posted", n, got)
		}
		return growth
	}
	const small, large = 1000, 8000
	a, b := min(peak(small), peak(small)), min(peak(large), peak(large))
	perApp := float64(b-a) / (large - small)
	t.Logf("heap peak growth: %.1f MB at %d applications, %.1f MB at %d: %.0f bytes per application and its two documents", float64(a)/(1<<20), small, float64(b)/(1<<20), large, perApp)
	if perApp > 3*loadStateBytesPerDocument {
		t.Errorf("the load's heap grows by %.0f bytes per application and its two documents; want at most %d (three ledger states)", perApp, 3*loadStateBytesPerDocument)
	}
}
