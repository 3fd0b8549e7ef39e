package pipeline_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// TestMalformedRecordIsQuarantinedAndPostedOnceWhenFixed: a record that cannot
// be staged as Zuora sent it (no updatedDate, no id, an amount with more places
// than DECIMAL(38,9) holds, as a JSON number or a string) no longer fails its
// window: it goes to the quarantine table with its raw JSON, is counted as
// rejected MALFORMED in a balanced report, every other document is posted, and
// once Zuora serves it correctly a later run posts it exactly once.
func TestMalformedRecordIsQuarantinedAndPostedOnceWhenFixed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		spoil   func(doc map[string]any) zuorasim.Corruption
		inRaw   string // the raw JSON kept in the quarantine table contains this
		noID    bool
		newVers bool // the fix is a new version (Zuora stamps the edit), posted by a later window
	}{
		{"payment without updatedDate", func(map[string]any) zuorasim.Corruption {
			return zuorasim.Corruption{Omit: []string{"updatedDate"}}
		}, `"paymentNumber":`, false, false},
		{"payment without id", func(map[string]any) zuorasim.Corruption {
			return zuorasim.Corruption{Omit: []string{"id"}}
		}, `"paymentNumber":`, true, true},
		{"amount with 12 decimals as a JSON number", func(map[string]any) zuorasim.Corruption {
			return zuorasim.Corruption{Raw: map[string]string{"amount": "1234.567890123456"}}
		}, `"amount":1234.567890123456`, false, false},
		{"amount with 12 decimals as a JSON string", func(map[string]any) zuorasim.Corruption {
			return zuorasim.Corruption{Raw: map[string]string{"amount": `"1234.567890123456"`}}
		}, `"amount":"1234.567890123456"`, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			volume := smallVolume()
			volume.NoERPPercent = 0 // no other reject: the malformed record is the only one
			w := &rejectWorld{world: newWorld(t, worldOptions{seed: 41, volume: volume}), sqlDir: acceptKWD(t)}
			id, doc := w.pickPayment()
			if err := w.zuora.Corrupt(id, tc.spoil(doc)); err != nil {
				t.Fatal(err)
			}
			z := w.initial[id]
			in := stage.Window{Start: z.updated.Truncate(time.Hour), End: z.updated.Truncate(time.Hour).Add(time.Hour)}

			first, err := w.run(context.Background(), w.cfg(tenantTo))
			if err != nil {
				t.Fatalf("a malformed payment failed the run: %v", err)
			}
			if len(first.Windows) != 3 {
				t.Fatalf("the first run processed %d windows; want 3", len(first.Windows))
			}
			for _, wr := range first.Windows {
				// Complete, or waiting only: applications of a payment Zuora sent
				// without its id wait until a window stages it.
				if !wr.Complete && !wr.Waiting {
					t.Errorf("window %s is not complete", wr.Window.ID())
				}
			}
			if !first.Balanced() {
				t.Errorf("the report does not balance:\n%s", printed(first))
			}
			var malformed int64
			for _, l := range windowLine(t, first, in).Lines {
				if l.DocType == "payment" && l.Currency == z.currency {
					malformed = l.Rejected.Count
				}
			}
			if malformed != 1 {
				t.Errorf("window %s: payment/%s rejected %d; want the one malformed payment:\n%s", in.ID(), z.currency, malformed, printed(first))
			}
			if !first.NeedsAttention() {
				t.Error("a quarantined record does not need attention")
			}
			if out := printed(first); !strings.Contains(out, "MALFORMED") ||
				tc.noID && (!strings.Contains(out, "cannot be re-checked") || !strings.Contains(out, "1 without an id")) {
				t.Errorf("the report does not say what was quarantined (and, without an id, that no re-check can bring it back):\n%s", out)
			}
			posted := w.creates()
			for oid, od := range w.initial {
				if oid != id && od.eligible && od.transferred != "Yes" && posted[oid] != 1 {
					t.Errorf("%s %s was created %d times; a malformed payment must hold nothing back", od.docType, od.number, posted[oid])
				}
			}
			if posted[id] != 0 {
				t.Fatalf("the malformed payment reached the ERP")
			}

			p := w.open(w.cfg(tenantTo))
			q := w.quarantined(p)
			if len(q) != 1 {
				t.Fatalf("the quarantine holds %d records; want 1: %v", len(q), q)
			}
			if q[0].window != in.ID() || !strings.Contains(q[0].raw, tc.inRaw) || !json.Valid([]byte(q[0].raw)) || q[0].reason == "" {
				t.Errorf("quarantined %+v; want window %s and the raw JSON with %s", q[0], in.ID(), tc.inRaw)
			}
			if tc.noID != (q[0].id == "") {
				t.Errorf("quarantined id %q", q[0].id)
			}
			var found bool
			for _, r := range w.outstanding(p) {
				if r.reason == "MALFORMED" && r.window == in.ID() {
					found = true
				}
			}
			if !found {
				t.Errorf("the outstanding rejects lack the MALFORMED payment: %v", w.outstanding(p))
			}

			// The fix.
			if err := w.zuora.Corrupt(id, zuorasim.Corruption{}); err != nil {
				t.Fatal(err)
			}
			until := tenantTo
			if tc.newVers {
				w.clock.Set(tenantTo.Add(20 * time.Minute))
				if err := w.zuora.Touch(id); err != nil {
					t.Fatal(err)
				}
				until = tenantTo.Add(time.Hour)
				w.clock.Set(until.Add(30 * time.Minute))
			}
			second := w.mustRunTo(until)
			if got := w.creates()[id]; got != 1 {
				t.Fatalf("the fixed payment was created %d times; want 1", got)
			}
			if w.zuora.Transferred(id) != "Yes" {
				t.Error("the fixed payment is not marked transferred")
			}
			if second.NeedsAttention() {
				t.Errorf("after the fix the run still needs attention:\n%s", printed(second))
			}
			requests := len(w.erp.Requests())
			w.mustRunTo(until)
			if got := len(w.erp.Requests()); got != requests {
				t.Errorf("a run after the fix sent %d more ERP requests", got-requests)
			}
			w.assertPromise(p)
		})
	}
}

// pickPayment returns a Processed payment, not yet transferred, of the tenant.
func (w *rejectWorld) pickPayment() (string, map[string]any) {
	w.t.Helper()
	for _, r := range w.zuora.Snapshot("payments") {
		id := str(r["id"])
		if z := w.initial[id]; z.eligible && z.transferred != "Yes" && z.customer != "" {
			return id, r
		}
	}
	w.t.Fatal("the tenant has no payment to spoil")
	return "", nil
}

type quarantineRow struct{ window, id, raw, reason string }

// quarantined returns every row of the quarantine view.
func (w *world) quarantined(p interface{ Stage() *stage.Stage }) []quarantineRow {
	w.t.Helper()
	ctx := context.Background()
	db, err := warehouse.Open(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	defer db.Close()
	if err := db.AttachStage(ctx, p.Stage()); err != nil {
		w.t.Fatal(err)
	}
	rows, err := db.Strings(ctx, `SELECT "window", coalesce(id, ''), raw_json, reason FROM quarantine ORDER BY 1`)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []quarantineRow
	for _, r := range rows {
		out = append(out, quarantineRow{r[0], r[1], r[2], r[3]})
	}
	return out
}
