package extract_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/zuora-erp-etl/zuora-erp-etl/extract"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/s3test"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Generated tenants hold records updated in [genFrom, genTo); windows are hours.
var (
	genFrom = time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	genTo   = time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC)
	hour    = func(h int) stage.Window {
		return stage.Window{Start: genFrom.Add(time.Duration(h-20) * time.Hour), End: genFrom.Add(time.Duration(h-19) * time.Hour)}
	}
)

// volume is a few hundred documents, many stamped in shared bill-run seconds,
// some invoices and memos with more than 99 items.
var volume = zuorasim.Volume{Accounts: 20, Invoices: 160, Payments: 80, Refunds: 25, CreditMemos: 40, DebitMemos: 20,
	MaxItems: 130, NoERPPercent: 10, DraftPercent: 15, TransferredPercent: 5, BurstPercent: 50}

var fastRetry = testutil.FastRetry(12, 30*time.Second)

// entity is one stream as the simulator holds it and the extract stages it
// (every status: the default filters none).
type entity struct {
	table, object, itemTable, itemObject, parentField string
}

var entities = []entity{
	{"invoices", "invoices", "invoice_items", "invoice-items", "invoiceId"},
	{"payments", "payments", "", "", ""},
	{"refunds", "refunds", "", "", ""},
	{"credit_memos", "credit-memos", "credit_memo_items", "credit-memo-items", "creditMemoId"},
	{"debit_memos", "debit-memos", "debit_memo_items", "debit-memo-items", "debitMemoId"},
	{"payment_applications", "payment-applications", "", "", ""},
	{"credit_memo_applications", "credit-memo-applications", "", "", ""},
	{"refund_applications", "refund-applications", "", "", ""},
}

// env is a simulated Zuora behind a real HTTP server and the real client.
type env struct {
	sim    *zuorasim.Sim
	client *zuora.Client
}

func newEnv(t *testing.T, tn *zuorasim.Tenant, opts zuorasim.Options, mod func(*zuora.Config)) *env {
	t.Helper()
	return newEnvHandler(t, tn, opts, mod, nil)
}

// newEnvHandler is newEnv with wrap (when not nil) in front of the simulator.
func newEnvHandler(t *testing.T, tn *zuorasim.Tenant, opts zuorasim.Options, mod func(*zuora.Config), wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	sim := zuorasim.New(opts)
	sim.Load(tn)
	var h http.Handler = sim
	if wrap != nil {
		h = wrap(sim)
	}
	cfg := zuora.Config{BaseURL: testutil.Serve(t, h), ClientID: zuorasim.DefaultClientID, ClientSecret: zuorasim.DefaultClientSecret,
		RunID: "extract-sim", Retry: fastRetry}
	if mod != nil {
		mod(&cfg)
	}
	c, err := zuora.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, client: c}
}

var stageSeq atomic.Int64

// stages opens a fresh, empty stage of each backend the pipeline supports.
var stages = []struct {
	name string
	open func(t *testing.T) *stage.Stage
}{
	{"file", func(t *testing.T) *stage.Stage { return openStage(t, "file://"+filepath.ToSlash(t.TempDir())+"/stage") }},
	{"mem", memStage},
	{"s3", func(t *testing.T) *stage.Stage {
		return openStage(t, s3test.StageURL(t))
	}},
}

func memStage(t *testing.T) *stage.Stage {
	// mem:// URLs name process-wide buckets: every test gets its own.
	return openStage(t, fmt.Sprintf("mem://extract-sim-test-%d", stageSeq.Add(1)))
}

func openStage(t *testing.T, url string) *stage.Stage {
	t.Helper()
	st, err := stage.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func key(id string, updated time.Time) string { return id + "@" + updated.UTC().Format(time.RFC3339) }

// readParts reads every row of every part a manifest lists for a table.
func readParts[T any](t *testing.T, st *stage.Stage, m *stage.ExtractManifest, table string) []T {
	t.Helper()
	snap, ok := m.Tables[table]
	if !ok || len(snap.Files) == 0 {
		t.Fatalf("manifest lists no file for %s", table)
	}
	var out []T
	for _, f := range snap.Files {
		data, err := st.Read(context.Background(), f.Key)
		if err != nil {
			t.Fatal(err)
		}
		r := parquet.NewGenericReader[T](bytes.NewReader(data))
		buf := make([]T, 256)
		for {
			n, err := r.Read(buf)
			out = append(out, buf[:n]...)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("read %s: %v", f.Key, err)
			}
		}
		r.Close()
	}
	if int64(len(out)) != snap.Rows {
		t.Fatalf("%s: parts hold %d rows, manifest says %d", table, len(out), snap.Rows)
	}
	return out
}

// staged returns the sorted (id, updated) keys of a staged table, duplicates kept.
func staged(t *testing.T, st *stage.Stage, m *stage.ExtractManifest, table string) []string {
	t.Helper()
	var out []string
	for _, r := range readParts[stage.KeyRow](t, st, m, table) {
		if r.UpdatedDate == nil {
			t.Fatalf("%s row %s has no updated_date", table, r.ID)
		}
		out = append(out, key(r.ID, *r.UpdatedDate))
	}
	slices.Sort(out)
	return out
}

func updatedOf(t *testing.T, rec map[string]any) time.Time {
	t.Helper()
	u, err := time.Parse(time.RFC3339, rec["updatedDate"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// held returns, per table, the sorted keys of what the simulator holds now that
// a window's query [lo, hi) should stage: the records of every stream, the
// items of each document and the accounts of the applications.
func held(t *testing.T, sim *zuorasim.Sim, lo, hi time.Time) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	accounts := map[string]bool{}
	for _, e := range entities {
		var docs []string
		for _, r := range sim.Snapshot(e.object) {
			u := updatedOf(t, r)
			if !u.Before(lo) && u.Before(hi) {
				docs = append(docs, r["id"].(string))
				out[e.table] = append(out[e.table], key(r["id"].(string), u))
				if strings.HasSuffix(e.table, "_applications") {
					accounts[r["accountId"].(string)] = true
				}
			}
		}
		if e.itemTable != "" {
			out[e.itemTable] = itemKeys(t, sim, e, docs)
		}
		slices.Sort(out[e.table])
	}
	for _, a := range sim.Snapshot(stage.AccountsObject) {
		if accounts[a["id"].(string)] {
			out[stage.AccountsTable] = append(out[stage.AccountsTable], key(a["id"].(string), updatedOf(t, a)))
		}
	}
	slices.Sort(out[stage.AccountsTable])
	return out
}

// itemKeys returns the sorted keys of the items of docs, once per listed document.
func itemKeys(t *testing.T, sim *zuorasim.Sim, e entity, docs []string) []string {
	t.Helper()
	byParent := map[string][]string{}
	for _, it := range sim.Snapshot(e.itemObject) {
		p, _ := it[e.parentField].(string)
		byParent[p] = append(byParent[p], key(it["id"].(string), updatedOf(t, it)))
	}
	out := []string{}
	for _, d := range docs {
		out = append(out, byParent[d]...)
	}
	slices.Sort(out)
	return out
}

// assertStaged checks that each table of m holds exactly want's keys.
func assertStaged(t *testing.T, st *stage.Stage, m *stage.ExtractManifest, want map[string][]string) {
	t.Helper()
	for _, table := range simTables() {
		got := staged(t, st, m, table)
		if !slices.Equal(got, want[table]) {
			extra, missing := diff(got, want[table]), diff(want[table], got)
			t.Errorf("%s: staged %d rows, want %d; not wanted %v; missing %v", table, len(got), len(want[table]), first(extra), first(missing))
		}
	}
}

// first shortens a list of keys for an error message.
func first(keys []string) []string { return keys[:min(len(keys), 5)] }

// diff returns the elements of a (a multiset) not matched in b.
func diff(a, b []string) []string {
	left := map[string]int{}
	for _, s := range b {
		left[s]++
	}
	var out []string
	for _, s := range a {
		if left[s] > 0 {
			left[s]--
			continue
		}
		out = append(out, s)
	}
	return out
}

func run(t *testing.T, e *env, st *stage.Stage, w stage.Window, opts extract.Options) *stage.ExtractManifest {
	t.Helper()
	m, err := extract.Run(context.Background(), e.client, st, w, opts)
	if err != nil {
		t.Fatalf("extract %s: %v", w, err)
	}
	return m
}

func generated() *zuorasim.Tenant { return zuorasim.Generate(7, volume, genFrom, genTo) }

func TestSimWindowIsStagedExactlyOnEveryStage(t *testing.T) {
	for _, sb := range stages {
		t.Run(sb.name, func(t *testing.T) {
			e := newEnv(t, generated(), zuorasim.Options{}, nil)
			st := sb.open(t)
			w := hour(22)
			m := run(t, e, st, w, extract.Options{})
			want := held(t, e.sim, w.Start.Add(-extract.DefaultOverlap), w.End)
			if len(want["invoices"]) < 20 || len(want["invoice_items"]) < 200 {
				t.Fatalf("the window holds only %d invoices and %d items: the tenant is too small to prove anything",
					len(want["invoices"]), len(want["invoice_items"]))
			}
			assertStaged(t, st, m, want)
			if len(m.Warnings) != 0 {
				t.Errorf("warnings on a consistent tenant: %v", m.Warnings)
			}
		})
	}
}

func TestSimRecordsSharingOneSecondAcrossPageBoundaries(t *testing.T) {
	burst := time.Date(2026, 11, 25, 22, 30, 0, 0, time.UTC)
	e := newEnv(t, generated(), zuorasim.Options{Now: func() time.Time { return burst }}, nil)
	var src string
	for _, r := range e.sim.Snapshot("invoices") {
		if r["status"] == "Posted" {
			src = r["id"].(string)
			break
		}
	}
	// A bill run stamps 250 invoices in one second: pages of 99 end inside it.
	for range 250 {
		if _, err := e.sim.CloneDocument(src); err != nil {
			t.Fatal(err)
		}
	}
	st := memStage(t)
	w := hour(22)
	m := run(t, e, st, w, extract.Options{})
	want := held(t, e.sim, w.Start.Add(-extract.DefaultOverlap), w.End)
	assertStaged(t, st, m, want)
	inBurst := 0
	for _, k := range staged(t, st, m, "invoices") {
		if strings.HasSuffix(k, "@"+burst.Format(time.RFC3339)) {
			inBurst++
		}
	}
	if inBurst < 250 {
		t.Errorf("%d invoices staged in the burst second, want at least the 250 clones", inBurst)
	}
	// The next window's overlap sees the burst again and stages none of it.
	m2 := run(t, e, st, hour(23), extract.Options{})
	if got := staged(t, st, m2, "invoices"); len(got) != 0 {
		t.Errorf("the next window restaged %d invoices: %v", len(got), first(got))
	}
}

func TestSimRecordsAppearingBehindTheCursorAreStagedOnceByTheNextWindow(t *testing.T) {
	w1, w2 := hour(22), hour(23)
	// Every record sits in the last eight minutes of w1, inside w2's overlap.
	v := volume
	v.BurstPercent, v.DraftPercent = 0, 0
	tn := zuorasim.Generate(3, v, w1.End.Add(-8*time.Minute), w1.End)
	var clock atomic.Int64
	clock.Store(w1.End.Add(-time.Second).Unix())
	e := newEnv(t, tn, zuorasim.Options{Now: func() time.Time { return time.Unix(clock.Load(), 0) }}, nil)
	before := held(t, e.sim, w1.Start.Add(-extract.DefaultOverlap), w1.End)

	var once sync.Once
	var behind, ahead, touched string
	var touchedOld time.Time
	e.sim.SetAfterPage(func(ev zuorasim.PageEvent) {
		if ev.Object != "invoices" || ev.Last {
			return
		}
		once.Do(func() {
			snap := map[string]map[string]any{}
			for _, r := range e.sim.Snapshot("invoices") {
				snap[r["id"].(string)] = r
			}
			cursor := updatedOf(t, snap[ev.IDs[len(ev.IDs)-1]])
			// Stamped one second before the last record handed out: the walk has passed it.
			clock.Store(cursor.Add(-time.Second).Unix())
			touched, touchedOld = ev.IDs[0], updatedOf(t, snap[ev.IDs[0]])
			if err := e.sim.Touch(touched); err != nil {
				t.Error(err)
			}
			var err error
			if behind, err = e.sim.CloneDocument(ev.IDs[1]); err != nil {
				t.Error(err)
			}
			// Stamped ahead of the cursor: this walk still reaches it.
			clock.Store(w1.End.Add(-time.Second).Unix())
			if ahead, err = e.sim.CloneDocument(ev.IDs[2]); err != nil {
				t.Error(err)
			}
		})
	})
	st := memStage(t)
	m1 := run(t, e, st, w1, extract.Options{})
	if behind == "" {
		t.Fatal("the walk of w1 served a single page of invoices: nothing was inserted behind it")
	}
	e.sim.SetAfterPage(nil)
	got1 := staged(t, st, m1, "invoices")
	wantW1 := append(slices.Clone(before["invoices"]), key(ahead, w1.End.Add(-time.Second)))
	slices.Sort(wantW1)
	if !slices.Equal(got1, wantW1) {
		t.Errorf("w1 staged %d invoices, want the %d held when it started plus the one inserted ahead of the cursor; extra %v missing %v",
			len(got1), len(wantW1), first(diff(got1, wantW1)), first(diff(wantW1, got1)))
	}

	m2 := run(t, e, st, w2, extract.Options{})
	after := held(t, e.sim, w1.Start, w2.End)
	touchedNew := ""
	for _, k := range after["invoices"] {
		if strings.HasPrefix(k, touched+"@") {
			touchedNew = k
		}
	}
	wantW2 := []string{touchedNew, after["invoices"][slices.IndexFunc(after["invoices"], func(k string) bool { return strings.HasPrefix(k, behind+"@") })]}
	slices.Sort(wantW2)
	if got := staged(t, st, m2, "invoices"); !slices.Equal(got, wantW2) {
		t.Errorf("w2 staged invoices %v, want exactly the record inserted and the one updated behind w1's cursor %v", got, wantW2)
	}
	// Across both windows every version is staged exactly once.
	union := slices.Sorted(slices.Values(append(got1, staged(t, st, m2, "invoices")...)))
	wantAll := append(slices.Clone(after["invoices"]), key(touched, touchedOld))
	slices.Sort(wantAll)
	if !slices.Equal(union, wantAll) {
		t.Errorf("w1+w2 staged %d invoice versions, want %d; extra %v missing %v", len(union), len(wantAll), first(diff(union, wantAll)), first(diff(wantAll, union)))
	}
}

func TestSimInsertAndTouchKnobsDuringAWalkAreStagedOnceAcrossWindows(t *testing.T) {
	for _, n := range []int{1, 4} {
		t.Run(fmt.Sprintf("slices=%d", n), func(t *testing.T) {
			w1, w2 := hour(22), hour(23)
			v := volume
			v.MaxItems = 20 // every item list arrives expanded: only documents are touched
			now := w1.End.Add(-2 * time.Minute)
			e := newEnv(t, zuorasim.Generate(5, v, genFrom, genTo), zuorasim.Options{Now: func() time.Time { return now }}, nil)
			before := map[string]time.Time{}
			for _, en := range entities {
				for _, r := range e.sim.Snapshot(en.object) {
					before[r["id"].(string)] = updatedOf(t, r)
				}
			}
			// While w1 is walked, each page served is followed by a new copy of
			// its first document and an update of that document, both stamped
			// inside w2's overlap: ahead of some walks, behind others.
			e.sim.SetFaults(zuorasim.Faults{InsertPerPage: 1, TouchPerPage: 1})
			st := memStage(t)
			m1 := run(t, e, st, w1, extract.Options{Slices: n})
			e.sim.SetFaults(zuorasim.Faults{})
			if f := e.sim.Stats().Faults; f["insert"] == 0 || f["touch"] == 0 {
				t.Fatalf("the knobs did nothing: %v", f)
			}
			m2 := run(t, e, st, w2, extract.Options{})

			// Want: what the simulator holds now, plus the version each touched
			// document had when w1 staged it.
			want := held(t, e.sim, w1.Start.Add(-extract.DefaultOverlap), w2.End)
			for _, en := range entities {
				var docs []string
				for _, k := range want[en.table] {
					docs = append(docs, strings.Split(k, "@")[0])
				}
				for _, r := range e.sim.Snapshot(en.object) {
					id := r["id"].(string)
					old, known := before[id]
					if known && !old.Equal(updatedOf(t, r)) && !old.Before(w1.Start.Add(-extract.DefaultOverlap)) {
						want[en.table] = append(want[en.table], key(id, old))
						docs = append(docs, id)
					}
				}
				slices.Sort(want[en.table])
				if en.itemTable != "" {
					want[en.itemTable] = itemKeys(t, e.sim, en, docs)
				}
			}
			for _, table := range simTables() {
				got := slices.Sorted(slices.Values(append(staged(t, st, m1, table), staged(t, st, m2, table)...)))
				if !slices.Equal(got, want[table]) {
					t.Errorf("%s: w1+w2 staged %d rows, want %d once each; extra %v missing %v",
						table, len(got), len(want[table]), first(diff(got, want[table])), first(diff(want[table], got)))
				}
			}
		})
	}
}

func TestSimCrashHalfwayThenRerunStagesTheExactSet(t *testing.T) {
	for _, n := range []int{1, 4} {
		t.Run(fmt.Sprintf("slices=%d", n), func(t *testing.T) {
			e := newEnv(t, generated(), zuorasim.Options{}, nil)
			st := memStage(t)
			w := hour(22)
			ctx, cancel := context.WithCancel(context.Background())
			var pages atomic.Int64
			e.sim.SetAfterPage(func(ev zuorasim.PageEvent) {
				if ev.Object == "invoices" && pages.Add(1) == 1 {
					cancel() // the process dies after the first page of invoices
				}
			})
			if _, err := extract.Run(ctx, e.client, st, w, extract.Options{Slices: n}); !errors.Is(err, context.Canceled) {
				t.Fatalf("crashed run returned %v, want context.Canceled", err)
			}
			if ok, err := st.Exists(context.Background(), stage.ManifestKey("extract", w)); ok || err != nil {
				t.Fatalf("a crashed run left a manifest (exists %v, err %v)", ok, err)
			}
			e.sim.SetAfterPage(nil)
			m := run(t, e, st, w, extract.Options{Slices: n})
			assertStaged(t, st, m, held(t, e.sim, w.Start.Add(-extract.DefaultOverlap), w.End))
		})
	}
}

func TestSimFaultsDuringTheWalk(t *testing.T) {
	// fastClock makes the simulator age a minute per reading, so four-minute
	// tokens expire after a few requests while the client still trusts them.
	fastClock := func() func() time.Time {
		var n atomic.Int64
		return func() time.Time { return genTo.Add(time.Duration(n.Add(1)) * time.Minute) }
	}
	tests := []struct {
		name    string
		opts    zuorasim.Options
		conc    int
		counter func(zuora.Stats) int64
	}{
		// The token cases walk one document type at a time: concurrent walks can
		// see a refreshed token refused again, which Client.call treats as
		// permanent (reported as a client bug).
		{"token lifetime ends mid-walk", zuorasim.Options{Now: fastClock(), TokenTTL: 4 * time.Minute}, 1,
			func(s zuora.Stats) int64 { return s.Refreshes401 }},
		{"token revoked every 5th request", zuorasim.Options{Faults: zuorasim.Faults{ExpireTokenEvery: 5}}, 1,
			func(s zuora.Stats) int64 { return s.Refreshes401 }},
		{"429 every 4th", zuorasim.Options{Faults: zuorasim.Faults{Status429Every: 4, RetryAfter: -1}}, 0,
			func(s zuora.Stats) int64 { return s.RetriesRateLimit }},
		{"500 every 4th", zuorasim.Options{Faults: zuorasim.Faults{Status500Every: 4}}, 0,
			func(s zuora.Stats) int64 { return s.Retries5xx }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, generated(), tt.opts, nil)
			st := memStage(t)
			w := hour(22)
			m := run(t, e, st, w, extract.Options{Concurrency: tt.conc})
			assertStaged(t, st, m, held(t, e.sim, w.Start.Add(-extract.DefaultOverlap), w.End))
			if tt.counter(e.client.Stats()) == 0 {
				t.Errorf("the fault caused no retry: client %+v, simulator %+v", e.client.Stats(), e.sim.Stats())
			}
		})
	}
}

func TestSimInvoiceWith250ItemsIsStagedWhole(t *testing.T) {
	// Find the first seed whose tenant has an invoice with exactly 250 items.
	v := zuorasim.Volume{Accounts: 2, Invoices: 4, MaxItems: 250}
	w := hour(22)
	var tn *zuorasim.Tenant
	var big string
	for seed := int64(1); seed < 5000 && big == ""; seed++ {
		tn = zuorasim.Generate(seed, v, w.Start, w.End)
		count := map[string]int{}
		for _, it := range tn.Snapshot("invoice-items", nil) {
			count[it["invoiceId"].(string)]++
		}
		for id, n := range count {
			if n == 250 {
				big = id
			}
		}
	}
	if big == "" {
		t.Fatal("no seed below 5000 generates an invoice with 250 items")
	}
	e := newEnv(t, tn, zuorasim.Options{}, nil)
	st := memStage(t)
	m := run(t, e, st, w, extract.Options{})
	assertStaged(t, st, m, held(t, e.sim, w.Start.Add(-extract.DefaultOverlap), w.End))
	if len(m.Warnings) != 0 {
		t.Errorf("warnings: %v", m.Warnings)
	}
	items := map[string]bool{}
	for _, it := range readParts[stage.InvoiceItemRow](t, st, m, "invoice_items") {
		if it.InvoiceID != nil && *it.InvoiceID == big {
			items[it.ID] = true
		}
	}
	if len(items) != 250 {
		t.Errorf("%d distinct items of %s staged, want 250", len(items), big)
	}
	for _, inv := range readParts[stage.InvoiceRow](t, st, m, "invoices") {
		if inv.ID == big && (inv.ItemCount == nil || *inv.ItemCount != 250) {
			t.Errorf("item_count of %s is %v, want 250", big, inv.ItemCount)
		}
	}
}

func TestSimConsecutiveWindowsStageEveryDocumentOnce(t *testing.T) {
	e := newEnv(t, generated(), zuorasim.Options{}, nil)
	st := memStage(t)
	union := map[string][]string{}
	for h := 20; h <= 22; h++ {
		m := run(t, e, st, hour(h), extract.Options{})
		for _, table := range simTables() {
			union[table] = append(union[table], staged(t, st, m, table)...)
		}
	}
	want := held(t, e.sim, genFrom, genTo)
	for _, table := range simTables() {
		got := slices.Sorted(slices.Values(union[table]))
		if !slices.Equal(got, want[table]) {
			t.Errorf("%s: three windows staged %d rows, want %d once each; extra %v missing %v",
				table, len(got), len(want[table]), first(diff(got, want[table])), first(diff(want[table], got)))
		}
	}
}

// inflight counts the Object Query requests a server is handling at once.
type inflight struct {
	next     http.Handler
	mu       sync.Mutex
	now, max int
}

func (f *inflight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/object-query/") {
		f.mu.Lock()
		f.now++
		f.max = max(f.max, f.now)
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.now--
			f.mu.Unlock()
		}()
	}
	f.next.ServeHTTP(w, r)
}

func TestSimSlicesStageTheSameSetWithinTheConcurrencyBudget(t *testing.T) {
	w := hour(22)
	want := map[string][]string{}
	for _, slices := range []int{1, 4} {
		t.Run(fmt.Sprint(slices), func(t *testing.T) {
			const budget = 3
			counter := &inflight{}
			e := newEnvHandler(t, generated(), zuorasim.Options{Faults: zuorasim.Faults{Latency: 2 * time.Millisecond}},
				func(cfg *zuora.Config) { cfg.MaxConcurrency = budget },
				func(h http.Handler) http.Handler { counter.next = h; return counter })
			st := memStage(t)
			m := run(t, e, st, w, extract.Options{Slices: slices, Concurrency: 8})
			for _, table := range simTables() {
				got := staged(t, st, m, table)
				if slices == 1 {
					want[table] = got
				} else if !equalSets(got, want[table]) {
					t.Errorf("%s: %d slices staged %d rows, 1 slice %d; extra %v missing %v", table, slices,
						len(got), len(want[table]), first(diff(got, want[table])), first(diff(want[table], got)))
				}
				files := m.Tables[table].Files
				if len(files) != slices {
					t.Fatalf("%s: %d parts, want one per slice", table, len(files))
				}
				for n, f := range files {
					if f.Key != stage.RawKey(table, w, n) {
						t.Errorf("%s part %d key %s, want %s", table, n, f.Key, stage.RawKey(table, w, n))
					}
				}
			}
			if slices == 4 {
				// 70 minutes from 21:50 cut into four contiguous half-open ranges.
				want := []string{"2026-11-25T21:50:00Z/2026-11-25T22:07:30Z", "2026-11-25T22:07:30Z/2026-11-25T22:25:00Z",
					"2026-11-25T22:25:00Z/2026-11-25T22:42:30Z", "2026-11-25T22:42:30Z/2026-11-25T23:00:00Z"}
				if got := m.Tables["invoices"].Query["slices[]"]; !equalSets(got, want) {
					t.Errorf("manifest records slices %v, want %v", got, want)
				}
			}
			assertStaged(t, st, m, held(t, e.sim, w.Start.Add(-extract.DefaultOverlap), w.End))
			if counter.max > budget || counter.max < 2 {
				t.Errorf("%d Object Query requests in flight at most, want 2 to MaxConcurrency %d", counter.max, budget)
			}
		})
	}
}

func TestSimNegativeSlicesAreRefused(t *testing.T) {
	e := newEnv(t, generated(), zuorasim.Options{}, nil)
	_, err := extract.Run(context.Background(), e.client, memStage(t), hour(22), extract.Options{Slices: -1})
	if err == nil || !strings.Contains(err.Error(), "slices") {
		t.Errorf("Slices -1: %v, want an error naming slices", err)
	}
	if n := e.sim.Stats().Requests["GET /object-query/invoices"]; n != 0 {
		t.Errorf("a refused run queried Zuora %d times", n)
	}
}

func equalSets(a, b []string) bool { return a != nil && slices.Equal(a, b) }

// BenchmarkSimSlices stages one window from a simulator that answers each
// request after 2 ms, walked as 1 and as 4 time slices.
func BenchmarkSimSlices(b *testing.B) {
	v := volume
	v.Invoices, v.Payments = 800, 400
	tn := zuorasim.Generate(7, v, genFrom, genTo)
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("slices=%d", n), func(b *testing.B) {
			sim := zuorasim.New(zuorasim.Options{Faults: zuorasim.Faults{Latency: 2 * time.Millisecond}})
			sim.Load(tn)
			srv := httptest.NewServer(sim)
			defer srv.Close()
			c, err := zuora.New(zuora.Config{BaseURL: srv.URL, ClientID: zuorasim.DefaultClientID,
				ClientSecret: zuorasim.DefaultClientSecret, MaxConcurrency: 8})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				st, err := stage.Open(context.Background(), fmt.Sprintf("mem://extract-sim-bench-%d", stageSeq.Add(1)))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := extract.Run(context.Background(), c, st, hour(22), extract.Options{Slices: n, Concurrency: 8}); err != nil {
					b.Fatal(err)
				}
				st.Close()
			}
		})
	}
}

// simTables are the raw tables whose records a run walks by updatedDate:
// every one but the accounts, which each window fetches by id for its own
// applications (TestSimAccountsOfTheApplicationsAreStaged checks those).
func simTables() []string {
	return slices.DeleteFunc(stage.Tables(), func(t string) bool { return t == stage.AccountsTable })
}
