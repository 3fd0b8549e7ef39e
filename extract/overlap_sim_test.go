package extract_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/extract"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// wideVolume is invoices only, about one in 40 with 100 to 250 items, so an
// hour holds a dozen documents whose items are paged from the item endpoint.
var wideVolume = zuorasim.Volume{Accounts: 20, Invoices: 1500, MaxItems: 250, NoERPPercent: 10, DraftPercent: 15, BurstPercent: 50}

// itemGauge counts the invoice item requests (or those of path) the simulator
// is serving at once; each takes delay, so that walks sent together are seen
// together.
type itemGauge struct {
	path           string // "" means /object-query/invoice-items
	delay          time.Duration
	inflight, peak atomic.Int64
	total          atomic.Int64
	// answer, when set, may answer a request for the items of parent itself
	// (after the delay); it returns false to leave it to the simulator.
	answer func(w http.ResponseWriter, r *http.Request, parent string) bool
}

func (g *itemGauge) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path := cmp.Or(g.path, "/object-query/invoice-items"); r.URL.Path != path {
			h.ServeHTTP(w, r)
			return
		}
		n := g.inflight.Add(1)
		defer g.inflight.Add(-1)
		g.total.Add(1)
		for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
		}
		select {
		case <-time.After(g.delay):
		case <-r.Context().Done():
			return
		}
		if g.answer != nil && g.answer(w, r, itemParent(r)) {
			return
		}
		h.ServeHTTP(w, r)
	})
}

// itemParent is the invoice id an item request filters on.
func itemParent(r *http.Request) string {
	for _, f := range r.URL.Query()["filter[]"] {
		if name, id, ok := strings.Cut(f, ".EQ:"); ok && strings.EqualFold(name, "invoiceId") {
			return id
		}
	}
	return ""
}

// wideInvoices returns the ids of the invoices a window's query [lo, hi)
// returns that have more than 99 items, in the order the walk meets them.
func wideInvoices(t *testing.T, sim *zuorasim.Sim, lo, hi time.Time) []string {
	t.Helper()
	items := map[string]int{}
	for _, it := range sim.Snapshot("invoice-items") {
		items[it["invoiceId"].(string)]++
	}
	type doc struct {
		id string
		u  time.Time
	}
	var docs []doc
	for _, r := range sim.Snapshot("invoices") {
		if u := updatedOf(t, r); !u.Before(lo) && u.Before(hi) && items[r["id"].(string)] > 99 {
			docs = append(docs, doc{r["id"].(string), u})
		}
	}
	slices.SortFunc(docs, func(a, b doc) int {
		if c := a.u.Compare(b.u); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	var out []string
	for _, d := range docs {
		out = append(out, d.id)
	}
	return out
}

// TestSimItemWalksOfAStreamOverlap: the invoices whose expanded items are cut
// at 99 have their items paged from the item endpoint several at once, not one
// after the other inside the page loop, within the Zuora client's bound.
func TestSimItemWalksOfAStreamOverlap(t *testing.T) {
	g := &itemGauge{delay: 20 * time.Millisecond}
	e := newEnvHandler(t, zuorasim.Generate(5, wideVolume, genFrom, genTo), zuorasim.Options{}, nil, g.wrap)
	w := hour(21)
	wide := wideInvoices(t, e.sim, w.Start.Add(-extract.DefaultOverlap), w.End)
	if len(wide) < 8 {
		t.Fatalf("the window holds %d invoices with more than 99 items; want 8 or more to see walks overlap", len(wide))
	}
	m := run(t, e, memStage(t), w, extract.Options{DocTypes: []stage.DocType{stage.Invoice}})
	if got := g.total.Load(); got < int64(len(wide)) {
		t.Fatalf("%d item requests for %d invoices with more than 99 items", got, len(wide))
	}
	if m.Tables["invoice_items"].Rows < int64(100*len(wide)) {
		t.Fatalf("%d items staged; want at least 100 for each of %d wide invoices", m.Tables["invoice_items"].Rows, len(wide))
	}
	peak := g.peak.Load()
	t.Logf("%d wide invoices, %d item requests, at most %d at once", len(wide), g.total.Load(), peak)
	if peak < 2 || peak > zuora.DefaultMaxConcurrency {
		t.Errorf("at most %d item requests in flight at once; want 2 to %d (the walks of a stream's documents overlap, within the client's MaxConcurrency)",
			peak, zuora.DefaultMaxConcurrency)
	}
}

// stagedParts returns the bytes of every file a manifest lists for tables, by key.
func stagedParts(t *testing.T, st *stage.Stage, m *stage.ExtractManifest, tables ...string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, table := range tables {
		for _, f := range m.Tables[table].Files {
			data, err := st.Read(context.Background(), f.Key)
			if err != nil {
				t.Fatal(err)
			}
			out[f.Key] = data
		}
	}
	return out
}

// TestSimOverlappedItemWalksStageWhatOneAtATimeStages: with the item walks
// overlapping, the walk stages the very rows, in the same order and the same
// Parquet bytes, as it stages walking one document at a time, quarantine
// included; and no more item walks than LookupConcurrency are in flight.
func TestSimOverlappedItemWalksStageWhatOneAtATimeStages(t *testing.T) {
	w := hour(21)
	tenant := func() *zuorasim.Tenant { return zuorasim.Generate(5, wideVolume, genFrom, genTo) }
	spoil := func(t *testing.T, sim *zuorasim.Sim) {
		wide := wideInvoices(t, sim, w.Start.Add(-extract.DefaultOverlap), w.End)
		var item string
		for _, it := range sim.Snapshot("invoice-items") {
			if it["invoiceId"] == wide[2] {
				item = it["id"].(string)
			}
		}
		for id, c := range map[string]zuorasim.Corruption{
			wide[1]: {Raw: map[string]string{"amount": "1234.567890123456"}},         // a wide header
			item:    {Raw: map[string]string{"chargeAmount": "1.1234567890123"}},     // an item of a wide invoice
			wide[4]: {Raw: map[string]string{"taxAmount": "9.99999999999999999999"}}, // another wide header
		} {
			if err := sim.Corrupt(id, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	type result struct {
		peak     int64
		invoices []stage.InvoiceRow
		items    []stage.InvoiceItemRow
		quar     []stage.QuarantineRow
		files    map[string][]byte
	}
	extractWith := func(t *testing.T, concurrency int) result {
		g := &itemGauge{delay: 20 * time.Millisecond}
		e := newEnvHandler(t, tenant(), zuorasim.Options{}, nil, g.wrap)
		spoil(t, e.sim)
		st := memStage(t)
		m := run(t, e, st, w, extract.Options{DocTypes: []stage.DocType{stage.Invoice}, LookupConcurrency: concurrency, RunID: "same"})
		quar := readParts[stage.QuarantineRow](t, st, m, stage.QuarantineTable)
		for i := range quar {
			quar[i].QuarantinedAt = time.Time{} // the clock when it was quarantined
		}
		return result{g.peak.Load(),
			readParts[stage.InvoiceRow](t, st, m, "invoices"),
			readParts[stage.InvoiceItemRow](t, st, m, "invoice_items"),
			quar,
			stagedParts(t, st, m, "invoices", "invoice_items")}
	}
	one, three := extractWith(t, 1), extractWith(t, 3)
	if one.peak != 1 {
		t.Errorf("LookupConcurrency 1: %d item requests at once; want 1", one.peak)
	}
	if three.peak < 2 || three.peak > 3 {
		t.Errorf("LookupConcurrency 3: %d item requests at once; want 2 or 3", three.peak)
	}
	if len(one.quar) != 3 {
		t.Fatalf("%d documents quarantined; want the 3 spoilt", len(one.quar))
	}
	if !reflect.DeepEqual(one.invoices, three.invoices) || !reflect.DeepEqual(one.items, three.items) || !reflect.DeepEqual(one.quar, three.quar) {
		t.Fatalf("overlapped walks staged %d invoices, %d items, %d quarantined; one at a time %d, %d, %d: not the same rows in the same order",
			len(three.invoices), len(three.items), len(three.quar), len(one.invoices), len(one.items), len(one.quar))
	}
	if !reflect.DeepEqual(one.files, three.files) {
		t.Errorf("the Parquet parts differ between overlapped and one-at-a-time item walks")
	}
}

// TestSimFirstFailingItemWalkInRecordOrderFailsTheWalk: when item walks fail,
// the walk fails with the error of the first document in record order, the
// text it has walking one document at a time, though a later one failed
// sooner; the item walks still in flight are cancelled and nothing commits.
func TestSimFirstFailingItemWalkInRecordOrderFailsTheWalk(t *testing.T) {
	w := hour(21)
	const hold = 10 * time.Second // longer than any walk here: a request held this long was not cancelled
	var first, second string
	extractWith := func(t *testing.T, concurrency int) error {
		g := &itemGauge{delay: 20 * time.Millisecond}
		e := newEnvHandler(t, zuorasim.Generate(5, wideVolume, genFrom, genTo), zuorasim.Options{}, nil, g.wrap)
		wide := wideInvoices(t, e.sim, w.Start.Add(-extract.DefaultOverlap), w.End)
		first, second = wide[0], wide[1]
		refuse := func(w http.ResponseWriter, parent string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"reasons":[{"code":50000020,"message":"test refuses the items of %s"}]}`, parent)
		}
		var heldOut atomic.Int64
		g.answer = func(w http.ResponseWriter, r *http.Request, parent string) bool {
			wait := hold // the others: held until the client gives up
			switch parent {
			case first:
				wait = 200 * time.Millisecond // refused after the second
			case second:
				wait = 0
			}
			select {
			case <-time.After(wait):
			case <-r.Context().Done():
				return true
			}
			if wait == hold {
				heldOut.Add(1)
				return false
			}
			refuse(w, parent)
			return true
		}
		st := memStage(t)
		_, err := extract.Run(context.Background(), e.client, st, w, extract.Options{DocTypes: []stage.DocType{stage.Invoice}, LookupConcurrency: concurrency})
		if n := heldOut.Load(); n > 0 {
			t.Errorf("LookupConcurrency %d: %d item requests ran to the end of a %v hold: the walks in flight were not cancelled", concurrency, n, hold)
		}
		if _, found, rerr := st.ReadExtract(context.Background(), w); found || rerr != nil {
			t.Fatalf("LookupConcurrency %d: a failed walk left a manifest (found %v, %v)", concurrency, found, rerr)
		}
		return err
	}
	err := extractWith(t, 4) // below the client's MaxConcurrency: every walk started has a request slot
	var ze *zuora.Error
	if !errors.As(err, &ze) || ze.Status != http.StatusBadRequest || !strings.Contains(err.Error(), "query invoice-items of invoices "+first+":") {
		t.Fatalf("Run = %v; want the 400 of the items of %s, the first wide invoice", err, first)
	}
	if strings.Contains(err.Error(), second) {
		t.Fatalf("Run = %v; names %s, a later invoice", err, second)
	}
	if one := extractWith(t, 1); one == nil || one.Error() != err.Error() {
		t.Fatalf("overlapped: %v\none at a time: %v\nwant the same error", err, one)
	}
}

// TestSimAccountBatchesOverlap: the accounts of a window's applications are
// asked for by id, RecheckBatch per query, several queries at once.
func TestSimAccountBatchesOverlap(t *testing.T) {
	v := zuorasim.Volume{Accounts: 600, Invoices: 600, Payments: 1200, Refunds: 150, CreditMemos: 300, MaxItems: 3, NoERPPercent: 10}
	g := &itemGauge{path: "/object-query/" + stage.AccountsObject, delay: 20 * time.Millisecond}
	e := newEnvHandler(t, zuorasim.Generate(5, v, genFrom, genTo), zuorasim.Options{}, nil, g.wrap)
	st := memStage(t)
	m := run(t, e, st, hour(21), extract.Options{})
	accounts := m.Tables[stage.AccountsTable].Rows
	if accounts < 3*extract.RecheckBatch {
		t.Fatalf("the window's applications join %d accounts; want %d or more, for several batches", accounts, 3*extract.RecheckBatch)
	}
	peak := g.peak.Load()
	t.Logf("%d accounts in %d queries (the probe included), at most %d at once", accounts, g.total.Load(), peak)
	if peak < 2 || peak > zuora.DefaultMaxConcurrency {
		t.Errorf("at most %d account queries in flight at once; want 2 to %d", peak, zuora.DefaultMaxConcurrency)
	}
	one := newEnv(t, zuorasim.Generate(5, v, genFrom, genTo), zuorasim.Options{}, nil)
	ost := memStage(t)
	om := run(t, one, ost, hour(21), extract.Options{LookupConcurrency: 1})
	got, want := readParts[stage.AccountRow](t, st, m, stage.AccountsTable), readParts[stage.AccountRow](t, ost, om, stage.AccountsTable)
	if !reflect.DeepEqual(got, want) || !slices.Equal(m.Warnings, om.Warnings) {
		t.Errorf("%d accounts staged, warnings %q; one query at a time %d, %q: want the same rows in the same order", len(got), m.Warnings, len(want), om.Warnings)
	}
}
