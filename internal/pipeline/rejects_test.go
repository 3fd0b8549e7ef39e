package pipeline_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// rejectWorld is a world whose mapping accepts KWD, so that every reject of
// its first run is NO_ERP_ACCOUNT: documents of accounts without ERPAccountId__c.
type rejectWorld struct {
	*world
	sqlDir string
}

func newRejectWorld(t *testing.T, seed int64) *rejectWorld {
	t.Helper()
	volume := smallVolume()
	volume.NoERPPercent = 20
	return &rejectWorld{world: newWorld(t, worldOptions{seed: seed, volume: volume}), sqlDir: acceptKWD(t)}
}

func (w *rejectWorld) cfg(until time.Time) pipeline.Config {
	c := w.config(until)
	c.SQLDir = w.sqlDir
	return c
}

func (w *rejectWorld) mustRunTo(until time.Time) *pipeline.Report {
	w.t.Helper()
	rep, err := w.run(context.Background(), w.cfg(until))
	if err != nil {
		w.t.Fatalf("run: %v", err)
	}
	return rep
}

// outstanding returns what `query "select * from rejects"` lists, by Zuora id.
func (w *world) outstanding(p *pipeline.Pipeline) map[string]outcomeRow {
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
	rows, err := db.Strings(ctx, `SELECT zuora_id, "window", reason_code, message FROM rejects`)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]outcomeRow{}
	for _, r := range rows {
		out[r[0]] = outcomeRow{r[1], r[2], r[3]}
	}
	return out
}

// fixAccounts sets ERPAccountId__c on every account that has none, through the
// simulator's data, and returns the new ids by account id. The documents of
// those accounts keep their updatedDate.
func (w *world) fixAccounts() map[string]string {
	w.t.Helper()
	fixed := map[string]string{}
	for i, a := range w.zuora.Snapshot("accounts") {
		if str(a["ERPAccountId__c"]) != "" {
			continue
		}
		id := str(a["id"])
		fixed[id] = fmt.Sprintf("ERP-FIX-%03d", i)
		if err := w.zuora.SetFields(id, map[string]string{"ERPAccountId__c": fixed[id]}); err != nil {
			w.t.Fatal(err)
		}
	}
	if len(fixed) == 0 {
		w.t.Fatal("every account has an ERPAccountId__c; the test needs some without")
	}
	w.refreshCustomers()
	return fixed
}

// refreshCustomers updates what the world expects each document's customer to be.
func (w *world) refreshCustomers() {
	customers := map[string]string{}
	for _, a := range w.zuora.Snapshot("accounts") {
		customers[str(a["id"])] = str(a["ERPAccountId__c"])
	}
	for _, o := range docObjects {
		for _, r := range w.zuora.Snapshot(o.object) {
			if d, ok := w.initial[str(r["id"])]; ok {
				d.customer = customers[str(r["accountId"])]
				w.initial[str(r["id"])] = d
			}
		}
	}
}

// updatedDates returns every document's updatedDate as Zuora serves it.
func (w *world) updatedDates() map[string]string {
	out := map[string]string{}
	for _, o := range docObjects {
		for _, r := range w.zuora.Snapshot(o.object) {
			out[str(r["id"])] = str(r["updatedDate"])
		}
	}
	return out
}

// creates counts, per Zuora id, the ERP answers that created a document.
func (w *world) creates() map[string]int {
	out := map[string]int{}
	for _, r := range w.erp.Requests() {
		if r.Status == http.StatusCreated {
			out[r.Key]++
		}
	}
	return out
}

// TestFixedAccountPostsItsRejectedDocumentsOnTheNextRun: the most common
// reject, an account without ERPAccountId__c, is fixed in Zuora on the account
// only (its documents keep their updatedDate); the next run re-checks the
// outstanding rejects, posts and marks each of them exactly once, and the
// report needs no attention any more.
func TestFixedAccountPostsItsRejectedDocumentsOnTheNextRun(t *testing.T) {
	w := newRejectWorld(t, 7)
	first := w.mustRunTo(tenantTo)
	if !first.NeedsAttention() {
		t.Fatalf("the first run has no rejects; the test needs some:\n%s", printed(first))
	}
	p := w.open(w.cfg(tenantTo))
	rejected := w.readStage(context.Background(), p.Stage()).rejects
	if len(rejected) == 0 {
		t.Fatal("the stage lists no rejects after the first run")
	}
	for id, rs := range rejected {
		for _, r := range rs {
			if r.reason != "NO_ERP_ACCOUNT" {
				t.Fatalf("%s is rejected for %s; with KWD mapped, every reject should be NO_ERP_ACCOUNT", id, r.reason)
			}
		}
	}

	before := w.updatedDates()
	fixed := w.fixAccounts()
	if after := w.updatedDates(); !mapsEqual(before, after) {
		t.Fatal("fixing the accounts moved a document's updatedDate; the test needs the documents untouched")
	}

	second := w.mustRunTo(tenantTo)
	creates := w.creates()
	docs := map[string]string{}
	for _, d := range w.erp.Documents() {
		docs[d.Key] = d.Customer
	}
	for id := range rejected {
		if creates[id] != 1 {
			t.Errorf("rejected %s %s was created %d times after its account was fixed; want 1", w.initial[id].docType, w.initial[id].number, creates[id])
		}
		if w.zuora.Transferred(id) != "Yes" {
			t.Errorf("rejected %s %s is not marked transferred after the fix", w.initial[id].docType, w.initial[id].number)
		}
		if c, ok := docs[id]; ok && !slices.Contains(mapValues(fixed), c) {
			t.Errorf("%s was posted for customer %q; want one of the fixed ERP ids", id, c)
		}
	}
	if second.NeedsAttention() {
		t.Errorf("after the fix the run still needs attention:\n%s", printed(second))
	}
	if !second.Balanced() {
		t.Errorf("the report of the run after the fix does not balance:\n%s", printed(second))
	}

	requests := len(w.erp.Requests())
	third := w.mustRunTo(tenantTo)
	if got := len(w.erp.Requests()); got != requests {
		t.Errorf("a third run sent %d ERP requests; want none", got-requests)
	}
	if third.NeedsAttention() || len(third.Windows) != 0 {
		t.Errorf("a third run processed %d windows (needs attention %v); want none", len(third.Windows), third.NeedsAttention())
	}
	w.assertPromise(p)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

var _ = stage.Window{}
