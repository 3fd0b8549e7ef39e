package extract_test

import (
	"net/http"
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

// itemGauge counts the invoice item requests the simulator is serving at once;
// each takes delay, so that walks sent together are seen together.
type itemGauge struct {
	delay          time.Duration
	inflight, peak atomic.Int64
	total          atomic.Int64
	// answer, when set, may answer a request for the items of parent itself
	// (after the delay); it returns false to leave it to the simulator.
	answer func(w http.ResponseWriter, r *http.Request, parent string) bool
}

func (g *itemGauge) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/object-query/invoice-items" {
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
		if id, ok := strings.CutPrefix(f, "invoiceId.EQ:"); ok {
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
