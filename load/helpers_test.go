package load

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erp"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

const erpToken = "s3cret-erp-token-do-not-log"

var testWindow = stage.Window{
	Start: time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC),
	End:   time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC),
}

// spec is one ready document of a fixture.
type spec struct {
	docType                        stage.DocType
	id, currency, amount, customer string
}

// makeSpecs returns n documents cycling through every type and two currencies,
// with amounts that carry trailing zeros and more digits than a float keeps exactly.
func makeSpecs(n int) []spec {
	out := make([]spec, n)
	for i := range out {
		out[i] = spec{
			docType:  stage.Documents()[i%len(stage.Documents())],
			id:       fmt.Sprintf("8a8f%028d", i),
			currency: []string{"USD", "EUR"}[i%2],
			amount:   fmt.Sprintf("%d.%03d0", 1000000000000+i, (i*37)%1000),
			customer: fmt.Sprintf("ERP-%d", 1000+i%7),
		}
	}
	return out
}

// payload is the JSON object posted for s, spaced oddly so that a re-encoding would show.
func (s spec) payload() string {
	items := ""
	if s.docType == "invoice" || s.docType == "credit_memo" || s.docType == "debit_memo" {
		items = fmt.Sprintf(`, "items":[{"zuora_id":"%s-1","description":"Gold plan","quantity":1,"unit_price":%s,"amount":%s,"tax_amount":0.00}]`, s.id, s.amount, s.amount)
	}
	return fmt.Sprintf(`{"%s": {"zuora_id":"%s","number":"N-%s","customer":"%s","currency":"%s","date":"2026-11-25","amount":%s%s}}`,
		s.docType, s.id, s.id[len(s.id)-4:], s.customer, s.currency, s.amount, items)
}

func (s spec) line() string {
	return fmt.Sprintf(`{"doc_type":"%s","zuora_id":"%s","number":"N-%s","idempotency_key":"%s","customer":"%s","currency":"%s","amount":%s,"endpoint":"%s","payload":%s}`,
		s.docType, s.id, s.id[len(s.id)-4:], s.id, s.customer, s.currency, s.amount, s.docType.Endpoint(), s.payload())
}

// posting is s parsed from its NDJSON line, as the load posts it.
func (s spec) posting(t testing.TB) posting {
	t.Helper()
	var env stage.Envelope
	d, err := parseDocument([]byte(s.line()), &env)
	if err != nil {
		t.Fatal(err)
	}
	return posting{document: d, payload: env.Payload}
}

// document is s as erp.Client.Post takes it.
func (s spec) document(t testing.TB) erp.Document {
	t.Helper()
	p := s.posting(t)
	return erp.Document{DocType: p.DocType, ZuoraID: p.ZuoraID, IdempotencyKey: p.IdempotencyKey, Payload: p.payload}
}

// fakeMarker is a hand-written Zuora write-back that records every call.
type fakeMarker struct {
	mu      sync.Mutex
	calls   []markCall
	fail    map[string]string // id → error code
	callErr error             // fail whole calls
	marked  map[string]int    // id → successful marks (Yes)
	errored map[string]int    // id → successful marks Error
	objects map[string]string // id → object type it was marked as
}

type markCall struct {
	object string
	value  string
	ids    []string
}

func newMarker() *fakeMarker {
	return &fakeMarker{fail: map[string]string{}, marked: map[string]int{}, errored: map[string]int{}, objects: map[string]string{}}
}

func (f *fakeMarker) SetTransferred(_ context.Context, object, value string, ids []string) ([]zuora.MarkResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, markCall{object, value, append([]string(nil), ids...)})
	if f.callErr != nil {
		return nil, f.callErr
	}
	out := make([]zuora.MarkResult, len(ids))
	for i, id := range ids {
		if code, ok := f.fail[id]; ok {
			out[i] = zuora.MarkResult{ID: id, Code: code, Message: "cannot update " + id, Attempts: 3}
			continue
		}
		if value == zuora.TransferredError {
			f.errored[id]++
		} else {
			f.marked[id]++
		}
		f.objects[id] = object
		out[i] = zuora.MarkResult{ID: id, OK: true, Attempts: 1}
	}
	return out, nil
}

func (f *fakeMarker) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// env is one window's load against a real HTTP ERP simulator and a file:// stage.
type env struct {
	t      testing.TB
	ctx    context.Context
	st     *stage.Stage
	sim    *erpsim.Sim
	srv    *httptest.Server
	marker *fakeMarker
	specs  []spec
	logs   *testutil.SyncBuffer
	// wrap, when set, sees every request before the simulator does.
	wrap func(w http.ResponseWriter, r *http.Request, next http.Handler)
}

func newEnv(t testing.TB, specs []spec) *env {
	t.Helper()
	return newEnvOn(t, "file://"+t.TempDir(), specs)
}

// newEnvOn is newEnv on the stage at stageURL.
func newEnvOn(t testing.TB, stageURL string, specs []spec) *env {
	t.Helper()
	ctx := context.Background()
	st, err := stage.Open(ctx, stageURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, ctx: ctx, st: st, sim: erpsim.New(erpsim.Options{Token: erpToken}), marker: newMarker(), logs: &testutil.SyncBuffer{}}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.wrap != nil {
			e.wrap(w, r, e.sim)
			return
		}
		e.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	e.writeFixture(specs)
	t.Cleanup(func() {
		if strings.Contains(e.logs.String(), erpToken) {
			t.Error("the ERP token reached the logs")
		}
	})
	return e
}

// writeFixture commits specs as the window's transform output.
func (e *env) writeFixture(specs []spec) {
	e.t.Helper()
	e.specs = specs
	var b strings.Builder
	for _, s := range specs {
		b.WriteString(s.line())
		b.WriteByte('\n')
	}
	info, err := e.st.WriteBytes(e.ctx, stage.ReadyKey("documents", testWindow, "ndjson"), []byte(b.String()))
	if err != nil {
		e.t.Fatal(err)
	}
	m := stage.TransformManifest{Window: testWindow.ID(), RunID: "t", Documents: info, CommittedAt: time.Now().UTC()}
	if err := e.st.WriteManifest(e.ctx, testWindow, m); err != nil {
		e.t.Fatal(err)
	}
}

var fastRetry = testutil.FastRetry(4, 5*time.Second)

// runOpts are a load run's options and the ERP client's settings.
type runOpts struct {
	Options
	erp erp.Config
}

func (e *env) opts() runOpts {
	return runOpts{
		Options: Options{
			Concurrency: 4,
			LedgerFlush: 7,
			CodeVersion: "test",
			Logger:      slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		},
		erp: erp.Config{BaseURL: e.srv.URL + "/", Token: erpToken, HTTPClient: e.srv.Client(), Retry: fastRetry, Timeout: 2 * time.Second},
	}
}

// client is an ERP client for the simulator, as a previous process had it.
func (e *env) client() *erp.Client {
	e.t.Helper()
	c, err := erp.New(erp.Config{BaseURL: e.srv.URL, Token: erpToken, HTTPClient: e.srv.Client(), Timeout: time.Second, Retry: fastRetry})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) run(ctx context.Context, opts runOpts) (*stage.LoadManifest, error) {
	return e.runWindow(ctx, testWindow, opts)
}

func (e *env) runWindow(ctx context.Context, w stage.Window, opts runOpts) (*stage.LoadManifest, error) {
	e.t.Helper()
	c, err := erp.New(opts.erp)
	if err != nil {
		e.t.Fatal(err)
	}
	return Run(ctx, e.st, w, c, e.marker, opts.Options)
}

func (e *env) ledger() []stage.LedgerRow {
	e.t.Helper()
	rows, err := readLedger(e.ctx, e.st, testWindow)
	if err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// erpDocs indexes the simulator's stored documents by idempotency key.
func (e *env) erpDocs() map[string]erpsim.Document {
	out := map[string]erpsim.Document{}
	for _, d := range e.sim.Documents() {
		if _, dup := out[d.Key]; dup {
			e.t.Fatalf("the ERP holds document %s twice", d.Key)
		}
		out[d.Key] = d
	}
	return out
}

// assertSettled checks the end state after recovery: every document except
// those in rejected is in the ERP exactly once with its payload byte for byte,
// created by exactly one 201; every confirmed document is marked once, as its
// Zuora object type; nothing else is marked; the manifest is complete and adds up.
func (e *env) assertSettled(man *stage.LoadManifest, rejected map[string]bool) {
	e.t.Helper()
	docs := e.erpDocs()
	created := map[string]int{}
	for _, r := range e.sim.Requests() {
		if r.Status == http.StatusCreated || (r.Status == 0 && docs[r.Key].Key != "") {
			created[r.Key]++ // a dropped answer after a commit created it too
		}
	}
	for _, s := range e.specs {
		d, ok := docs[s.id]
		if rejected[s.id] {
			if ok {
				e.t.Errorf("rejected document %s is in the ERP", s.id)
			}
			continue
		}
		if !ok {
			e.t.Errorf("document %s is not in the ERP", s.id)
			continue
		}
		if string(d.Body) != s.payload() {
			e.t.Errorf("document %s body = %s; want the payload byte for byte", s.id, d.Body)
		}
		if created[s.id] != 1 {
			e.t.Errorf("document %s was created by %d requests; want 1", s.id, created[s.id])
		}
		if !d.Amount.Equal(decimal.RequireFromString(s.amount)) {
			e.t.Errorf("document %s amount = %s; want %s", s.id, d.Amount, s.amount)
		}
	}
	if len(docs) != len(e.specs)-len(rejected) {
		e.t.Errorf("the ERP holds %d documents; want %d", len(docs), len(e.specs)-len(rejected))
	}
	e.marker.mu.Lock()
	for _, s := range e.specs {
		_, inERP := docs[s.id]
		switch n := e.marker.marked[s.id]; {
		case inERP && n != 1:
			e.t.Errorf("confirmed document %s was marked %d times; want 1", s.id, n)
		case !inERP && n != 0:
			e.t.Errorf("unconfirmed document %s was marked", s.id)
		case inERP && e.marker.objects[s.id] != s.docType.MarkObject():
			e.t.Errorf("document %s marked as %s; want %s", s.id, e.marker.objects[s.id], s.docType.MarkObject())
		}
	}
	e.marker.mu.Unlock()
	e.assertAddsUp(man, rejected)
	if !man.Complete || man.StoppedBecause != "" {
		e.t.Errorf("manifest complete=%v stopped=%q; want complete", man.Complete, man.StoppedBecause)
	}
	stored, found, err := e.st.ReadLoad(e.ctx, testWindow)
	if err != nil || !found {
		e.t.Fatalf("load manifest not written: %v", err)
	}
	if !stored.Complete || len(stored.Totals) != len(man.Totals) {
		e.t.Errorf("stored manifest = %+v; want what Run returned", stored)
	}
}

// assertAddsUp checks the manifest's tallies against the fixture and the ERP:
// Ready = Posted + Rejected + Pending per type and currency, Ready is the
// fixture, Posted is what the ERP holds, Marked is what the Marker marked.
func (e *env) assertAddsUp(man *stage.LoadManifest, rejected map[string]bool) {
	e.t.Helper()
	type key struct{ docType, currency string }
	want := map[key]*stage.LoadTotals{}
	docs := e.erpDocs()
	e.marker.mu.Lock()
	defer e.marker.mu.Unlock()
	for _, s := range e.specs {
		k := key{string(s.docType), s.currency}
		if want[k] == nil {
			want[k] = &stage.LoadTotals{}
		}
		amt := decimal.RequireFromString(s.amount)
		want[k].Ready.Add(amt)
		if _, ok := docs[s.id]; ok {
			want[k].Posted.Add(amt)
		}
		if rejected[s.id] {
			want[k].Rejected.Add(amt)
		}
		if e.marker.marked[s.id] > 0 {
			want[k].Marked.Add(amt)
		}
	}
	if len(man.Totals) != len(want) {
		e.t.Fatalf("manifest has %d totals; want %d", len(man.Totals), len(want))
	}
	for _, got := range man.Totals {
		w := want[key{got.DocType, got.Currency}]
		if w == nil {
			e.t.Fatalf("manifest totals for unknown %s/%s", got.DocType, got.Currency)
		}
		if !got.Ready.Equal(got.Posted.Plus(got.Rejected).Plus(got.Pending)) {
			e.t.Errorf("%s/%s: ready %v != posted+rejected+pending", got.DocType, got.Currency, got)
		}
		if !got.Ready.Equal(w.Ready) || !got.Posted.Equal(w.Posted) || !got.Rejected.Equal(w.Rejected) || !got.Marked.Equal(w.Marked) {
			e.t.Errorf("%s/%s: manifest %+v; want ready %v posted %v rejected %v marked %v", got.DocType, got.Currency, got, w.Ready, w.Posted, w.Rejected, w.Marked)
		}
	}
}

// sum adds the amounts of specs.
func amountOf(r stage.LedgerRow) decimal.Decimal { return money.FromFixed(r.Amount) }

// readLedger returns every row of every ledger part of w, in write order.
func readLedger(ctx context.Context, st *stage.Stage, w stage.Window) ([]stage.LedgerRow, error) {
	var rows []stage.LedgerRow
	_, err := eachLedgerRow(ctx, st, w, func(_ string, r *stage.LedgerRow) error {
		rows = append(rows, *r)
		return nil
	})
	return rows, err
}

// states folds rows, in write order, into one state per idempotency key.
func states(rows []stage.LedgerRow) map[string]*docState {
	f := ledgerFold{}
	for i := range rows {
		f.add(&rows[i])
	}
	return f
}

// indexOf is an index of docs, removed when the test ends.
func indexOf(t *testing.T, docs []document) *index {
	t.Helper()
	iw, err := newIndex()
	if err != nil {
		t.Fatal(err)
	}
	for i := range docs {
		if err := iw.add(&docs[i]); err != nil {
			t.Fatal(err)
		}
	}
	x, err := iw.done()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.close)
	return x
}
