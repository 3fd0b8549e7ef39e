package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erp"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// The AR lines of these tests are written here, as the transform's contract
// (stage.Envelope, docs/design.md "AR pipeline") says they look.

var nextWindow = stage.Window{Start: testWindow.End, End: testWindow.End.Add(time.Hour)}

const customer = "ERP-1"

// docEnv is a document line: doc type, id, amount; key and event as given.
func docEnv(dt stage.DocType, id, amount, key, event string) stage.Envelope {
	body := fmt.Sprintf(`"zuora_id":%q,"number":"N-%s","customer":%q,"currency":"USD","date":"2026-11-25","amount":%s`, id, id, customer, amount)
	if dt != stage.Payment && dt != stage.Refund {
		body += fmt.Sprintf(`,"items":[{"zuora_id":"%s-1","description":"x","quantity":1,"unit_price":%s,"amount":%s,"tax_amount":0}]`, id, amount, amount)
	}
	return stage.Envelope{DocType: string(dt), ZuoraID: id, Number: "N-" + id, IdempotencyKey: key, Customer: customer, Currency: "USD",
		Amount: json.Number(amount), DocDate: "2026-11-25", Endpoint: dt.Endpoint(), Event: event,
		Payload: json.RawMessage(fmt.Sprintf(`{%q:{%s}}`, dt, body))}
}

func post(dt stage.DocType, id, amount string) stage.Envelope {
	return docEnv(dt, id, amount, id, stage.EventPost)
}

// appEnv is an application of amount from source to target (an invoice, or a
// payment or credit memo for a refund; "" is the credit balance).
func appEnv(kind stage.DocType, id, source, target, amount string) stage.Envelope {
	targetType, targetID, deps := "null", "null", []string{source}
	if target != "" {
		targetType, targetID = `"invoice"`, fmt.Sprintf("%q", target)
		if kind == stage.RefundApplication {
			targetType = `"payment"`
		}
		deps = append(deps, target)
	}
	payload := fmt.Sprintf(`{"application":{"zuora_id":%q,"kind":%q,"source_zuora_id":%q,"target_type":%s,"target_zuora_id":%s,"customer":%q,"currency":"USD","amount":%s,"date":"2026-11-25"}}`,
		id, kind.Source(), source, targetType, targetID, customer, amount)
	return stage.Envelope{DocType: string(kind), ZuoraID: id, IdempotencyKey: id, Customer: customer, Currency: "USD",
		Amount: json.Number(amount), DocDate: "2026-11-25", Endpoint: kind.Endpoint(), Event: stage.EventApply,
		DependsOn: deps, Payload: json.RawMessage(payload)}
}

// revEnv is the reversal of the live copy (of type of, under key) of id.
func revEnv(of stage.DocType, id, key, amount string, updated time.Time, deps ...string) stage.Envelope {
	number := ""
	if of.IsDocument() {
		number = fmt.Sprintf(`,"number":"N-%s"`, id)
	}
	payload := fmt.Sprintf(`{"reversal":{"zuora_id":%q,"doc_type":%q%s,"customer":%q,"currency":"USD","amount":%s,"date":"2026-11-26","reason":"Canceled"}}`,
		id, of, number, customer, amount)
	return stage.Envelope{DocType: string(stage.Reversal), ZuoraID: id, IdempotencyKey: stage.ReversalKey(id, updated), Customer: customer,
		Currency: "USD", Amount: json.Number(amount), DocDate: "2026-11-26", Endpoint: stage.Reversal.Endpoint(), Event: stage.EventReversal,
		DependsOn: deps, Reverses: &stage.Reversed{DocType: string(of), IdempotencyKey: key}, Payload: json.RawMessage(payload)}
}

// writeLines commits lines as window w's transform output.
func (e *env) writeLines(w stage.Window, lines ...stage.Envelope) {
	e.t.Helper()
	var b strings.Builder
	for _, l := range lines {
		raw, err := json.Marshal(l)
		if err != nil {
			e.t.Fatal(err)
		}
		b.Write(raw)
		b.WriteByte('\n')
	}
	info, err := e.st.WriteBytes(e.ctx, stage.ReadyKey("documents", w, "ndjson"), []byte(b.String()))
	if err != nil {
		e.t.Fatal(err)
	}
	m := stage.TransformManifest{Window: w.ID(), RunID: "t", Documents: info, CommittedAt: time.Now().UTC()}
	if err := e.st.WriteManifest(e.ctx, w, m); err != nil {
		e.t.Fatal(err)
	}
}

// fakeDeps answers for what lies beyond the window, as the test sets it.
type fakeDeps struct {
	mu          sync.Mutex
	answers     map[string]Holding
	errorMarked map[string]string
	asked       []Dep
}

func (f *fakeDeps) Holdings(_ context.Context, _ stage.Window, deps []Dep) (map[string]Holding, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, deps...)
	out := map[string]Holding{}
	for _, d := range deps {
		if h, ok := f.answers[d.ZuoraID]; ok {
			out[d.ZuoraID] = h
		}
	}
	return out, nil
}

func (f *fakeDeps) ErrorMarked(_ context.Context, _ stage.Window, ids []string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for _, id := range ids {
		if w, ok := f.errorMarked[id]; ok {
			out[id] = w
		}
	}
	return out, nil
}

// outcomes returns the last post outcome of each idempotency key of w's ledger.
func (e *env) outcomes(w stage.Window) map[string]string {
	e.t.Helper()
	rows, err := readLedger(e.ctx, e.st, w)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		if r.Action == stage.ActionPost {
			out[r.IdempotencyKey] = r.Outcome
		}
	}
	return out
}

func totalsOf(man *stage.LoadManifest, dt stage.DocType) stage.LoadTotals {
	for _, t := range man.Totals {
		if t.DocType == string(dt) {
			return t
		}
	}
	return stage.LoadTotals{}
}

// TestApplicationsArePostedOnlyOnceWhatTheyJoinIsLive: an application
// joining documents of its own window goes after them; one whose document
// another window holds ready waits (the window unfinished, WaitsOn naming it)
// until that document is live; one whose document is rejected is
// dependency_rejected; one joining documents the stage never staged is posted
// and the ERP decides (a preloaded invoice is resolved, an unknown one refused).
func TestApplicationsArePostedOnlyOnceWhatTheyJoinIsLive(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.sim.Preload(erpsim.KnownDocument{ZuoraID: "inv-old", Type: "invoice", Number: "N-inv-old", Customer: customer,
		Currency: "USD", Amount: decimal.RequireFromString("500")}); err != nil {
		t.Fatal(err)
	}
	e.writeLines(testWindow,
		post(stage.Invoice, "inv-1", "100.00"),
		post(stage.Invoice, "inv-2", "50.00"),
		post(stage.Payment, "pay-1", "120.00"),
		appEnv(stage.PaymentApplication, "app-1", "pay-1", "inv-1", "100.00"),
		appEnv(stage.PaymentApplication, "app-2", "pay-1", "inv-2", "20.00"),
		appEnv(stage.PaymentApplication, "app-later", "pay-1", "inv-later", "0.01"),   // inv-later: ready in another window
		appEnv(stage.PaymentApplication, "app-rejected", "pay-1", "inv-bad", "0.02"),  // inv-bad: an outstanding reject
		appEnv(stage.PaymentApplication, "app-old", "pay-1", "inv-old", "0.03"),       // inv-old: before the stage, preloaded
		appEnv(stage.PaymentApplication, "app-unknown", "pay-1", "inv-never", "0.04"), // the ERP never heard of it
	)
	deps := &fakeDeps{answers: map[string]Holding{
		"inv-later": {State: Waiting, Why: "invoice inv-later is ready in window W2, not confirmed yet"},
		"inv-bad":   {State: Rejected, Why: "invoice inv-bad is rejected in window W0 (NO_ERP_ACCOUNT)"},
	}}
	var mu sync.Mutex
	var paths []string
	e.wrap = func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		paths = append(paths, r.URL.Path+" "+r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		next.ServeHTTP(w, r)
	}
	opts := e.opts()
	opts.Dependencies = deps
	man, err := e.run(e.ctx, opts)
	if err != nil {
		t.Fatalf("Run = %v; want no error (waiting and dependency_rejected lines are not failures)", err)
	}
	got := e.outcomes(testWindow)
	want := map[string]string{"inv-1": stage.OutcomeCreated, "inv-2": stage.OutcomeCreated, "pay-1": stage.OutcomeCreated,
		"app-1": stage.OutcomeCreated, "app-2": stage.OutcomeCreated, "app-old": stage.OutcomeCreated,
		"app-later": stage.OutcomeWaiting, "app-rejected": stage.OutcomeDependencyRejected, "app-unknown": stage.OutcomeRejected}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: outcome %q; want %q", k, got[k], w)
		}
	}
	// Every document went before every application, and held lines were never sent.
	lastDoc, firstApp := -1, len(paths)
	for i, p := range paths {
		if strings.HasPrefix(p, "/api/applications") {
			firstApp = min(firstApp, i)
		} else {
			lastDoc = i
		}
		if strings.HasSuffix(p, " app-later") || strings.HasSuffix(p, " app-rejected") {
			t.Errorf("a held line was sent: %s", p)
		}
	}
	if lastDoc > firstApp {
		t.Errorf("requests %v: a document went after an application", paths)
	}
	// Only what lies beyond the window was asked.
	var asked []string
	for _, d := range deps.asked {
		asked = append(asked, d.ZuoraID+":"+string(d.DocType))
	}
	slices.Sort(asked)
	if fmt.Sprint(asked) != "[inv-bad:invoice inv-later:invoice inv-never:invoice inv-old:invoice]" {
		t.Errorf("asked about %v; want only the invoices the window does not hold, typed", asked)
	}
	apps := totalsOf(man, stage.PaymentApplication)
	if apps.Posted.Count != 3 || apps.Waiting.Count != 1 || !apps.Waiting.Amount.Equal(decimal.RequireFromString("0.01")) ||
		apps.DependencyRejected.Count != 1 || apps.Rejected.Count != 1 || apps.Pending.Count != 0 || apps.Marked.Count != 0 {
		t.Errorf("application totals = %+v", apps)
	}
	if man.Complete || !slices.Equal(man.WaitsOn, []string{"inv-later"}) || !slices.Equal(man.RejectedOn, []string{"inv-bad"}) || !man.OnlyWaiting() {
		t.Errorf("manifest complete=%v waits_on=%v rejected_on=%v; want unfinished, waiting on inv-later only", man.Complete, man.WaitsOn, man.RejectedOn)
	}
	if open, _ := e.sim.OpenBalance("inv-1"); !open.IsZero() {
		t.Errorf("inv-1 open %s in the ERP; want 0", open)
	}
	if n := e.marker.marked["app-1"]; n != 0 {
		t.Errorf("an application was marked in Zuora")
	}

	// Loaded again while nothing changed: the ledger does not grow.
	before := len(e.ledger())
	if _, err := e.run(e.ctx, opts); err != nil {
		t.Fatal(err)
	}
	if after := len(e.ledger()); after != before {
		t.Errorf("a load that changed nothing wrote %d ledger rows", after-before)
	}

	// The other window posted inv-later and the rejected invoice was fixed:
	// both held lines go now, and the window is complete.
	if res := e.client().Post(e.ctx, asDocument(post(stage.Invoice, "inv-later", "10"))); res.Outcome != stage.OutcomeCreated {
		t.Fatalf("post inv-later: %+v", res)
	}
	if res := e.client().Post(e.ctx, asDocument(post(stage.Invoice, "inv-bad", "10"))); res.Outcome != stage.OutcomeCreated {
		t.Fatalf("post inv-bad: %+v", res)
	}
	deps.answers = map[string]Holding{"inv-later": {State: Live}, "inv-bad": {State: Live}}
	man, err = e.run(e.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	got = e.outcomes(testWindow)
	if got["app-later"] != stage.OutcomeCreated || got["app-rejected"] != stage.OutcomeCreated || got["app-unknown"] != stage.OutcomeRejected {
		t.Errorf("after the documents went live: %v", got)
	}
	if !man.Complete || len(man.WaitsOn) != 0 || len(man.RejectedOn) != 0 {
		t.Errorf("manifest = %+v; want complete", man)
	}
}

// asDocument is an envelope as erp.Client.Post takes it.
func asDocument(env stage.Envelope) erp.Document {
	return erp.Document{DocType: stage.DocType(env.DocType), ZuoraID: env.ZuoraID, IdempotencyKey: env.IdempotencyKey, Payload: env.Payload}
}

// TestReversalsGoFirstAndARepostWaitsForItsReversal: a window that cancels a
// payment and unposts and re-posts a credit memo sends the reversals of the
// applications, then of the documents, then the repost and the new
// application; while the ERP fails the reversal of the memo, its repost and
// the application of the new copy wait instead of meeting a live copy (a 409
// the load would never post again), and the next load finishes the window.
func TestReversalsGoFirstAndARepostWaitsForItsReversal(t *testing.T) {
	e := newEnv(t, nil)
	e.writeLines(testWindow,
		post(stage.Invoice, "inv", "100.00"),
		post(stage.CreditMemo, "cm", "30.00"),
		post(stage.Payment, "pay", "50.00"),
		appEnv(stage.CreditMemoApplication, "cma", "cm", "inv", "30.00"),
		appEnv(stage.PaymentApplication, "pa", "pay", "inv", "50.00"),
	)
	opts := e.opts()
	opts.Dependencies = &fakeDeps{}
	if man, err := e.run(e.ctx, opts); err != nil || !man.Complete {
		t.Fatalf("first window: %+v, %v", man, err)
	}
	unposted := time.Date(2026, 11, 25, 23, 10, 0, 0, time.UTC)
	reposted := unposted.Add(20 * time.Minute)
	repost := docEnv(stage.CreditMemo, "cm", "30.00", stage.RepostKey("cm", reposted), stage.EventRepost)
	e.writeLines(nextWindow,
		revEnv(stage.CreditMemo, "cm", "cm", "30.00", unposted, "cma"), // written first, as sorted by number
		revEnv(stage.Payment, "pay", "pay", "50.00", unposted, "pa"),
		revEnv(stage.CreditMemoApplication, "cma", "cma", "30.00", unposted),
		revEnv(stage.PaymentApplication, "pa", "pa", "50.00", unposted),
		repost,
		appEnv(stage.CreditMemoApplication, "cma-2", "cm", "inv", "30.00"),
	)
	cmReversal := stage.ReversalKey("cm", unposted)
	var mu sync.Mutex
	var sent []string
	failing := true
	e.wrap = func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		sent = append(sent, r.Header.Get("Idempotency-Key"))
		fail := failing && r.Header.Get("Idempotency-Key") == cmReversal
		mu.Unlock()
		if fail {
			http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	}
	man, err := e.runWindow(e.ctx, nextWindow, opts)
	if err == nil || man.Complete {
		t.Fatalf("the memo's reversal failed, yet Run = %v, complete %v", err, man != nil && man.Complete)
	}
	got := e.outcomes(nextWindow)
	for k, want := range map[string]string{
		stage.ReversalKey("pa", unposted): stage.OutcomeCreated, stage.ReversalKey("cma", unposted): stage.OutcomeCreated,
		stage.ReversalKey("pay", unposted): stage.OutcomeCreated, cmReversal: stage.OutcomeTransient,
		repost.IdempotencyKey: stage.OutcomeWaiting, "cma-2": stage.OutcomeWaiting,
	} {
		if got[k] != want {
			t.Errorf("%s: %q; want %q", k, got[k], want)
		}
	}
	for _, r := range e.sim.Requests() {
		if r.Status == http.StatusConflict || r.Status == http.StatusUnprocessableEntity {
			t.Errorf("the ERP answered %d to %s %s", r.Status, r.Path, r.Key)
		}
	}
	mu.Lock()
	order := map[string]int{}
	for i, k := range sent {
		if _, ok := order[k]; !ok {
			order[k] = i
		}
	}
	failing = false
	mu.Unlock()
	if !(order[stage.ReversalKey("pa", unposted)] < order[stage.ReversalKey("pay", unposted)] &&
		order[stage.ReversalKey("cma", unposted)] < order[cmReversal]) {
		t.Errorf("requests %v: a document was reversed before its applications", sent)
	}
	if _, ok := order[repost.IdempotencyKey]; ok {
		t.Errorf("the repost was sent while the old copy was live")
	}

	man, err = e.runWindow(e.ctx, nextWindow, opts)
	if err != nil || !man.Complete {
		t.Fatalf("second load: %+v, %v", man, err)
	}
	if open, live := e.sim.OpenBalance("inv"); !live || !open.Equal(decimal.RequireFromString("70")) {
		t.Errorf("invoice open %s (live %v); want 70: the payment's application ended, the memo's new copy applied", open, live)
	}
	if _, live := e.sim.OpenBalance("pay"); live {
		t.Error("the canceled payment is live in the ERP")
	}
	if open, live := e.sim.OpenBalance("cm"); !live || !open.IsZero() {
		t.Errorf("credit memo open %s (live %v); want its new copy, applied in full", open, live)
	}
	if n := len(e.sim.Reversals()); n != 4 {
		t.Errorf("the ERP holds %d reversals; want 4", n)
	}
	if n := e.marker.marked["cm"]; n != 2 {
		t.Errorf("the credit memo was marked %d times; want 2 (its post and its repost)", n)
	}
	for _, id := range []string{"pay", "pa", "cma", "cma-2"} {
		if e.marker.marked[id] > 1 || (id != "pay" && e.marker.marked[id] > 0) {
			t.Errorf("%s marked %d times", id, e.marker.marked[id])
		}
	}
}

// TestHoldsAreDecidedAChunkAtATime runs the holds' tests again with a phase
// decided one line at a time: a line's hold must not depend on the other
// lines of its phase, or a peak hour's phase would decide differently from a
// small one.
func TestHoldsAreDecidedAChunkAtATime(t *testing.T) {
	defer func(n int) { holdChunk = n }(holdChunk)
	holdChunk = 1
	t.Run("applications", TestApplicationsArePostedOnlyOnceWhatTheyJoinIsLive)
	t.Run("reversals", TestReversalsGoFirstAndARepostWaitsForItsReversal)
}

// TestRefusedDocumentsAreMarkedError: with MarkRefused a document the ERP
// refused for good is marked TransferredToAccounting = Error once, a confirmed
// one Yes, an application neither; without it the refused one is left alone.
func TestRefusedDocumentsAreMarkedError(t *testing.T) {
	for _, markRefused := range []bool{true, false} {
		t.Run(fmt.Sprint("MarkRefused=", markRefused), func(t *testing.T) {
			e := newEnv(t, nil)
			e.sim.SetFaults(erpsim.Faults{RejectKeys: map[string]string{"inv-bad": "customer blocked"}})
			e.writeLines(testWindow, post(stage.Invoice, "inv", "10.00"), post(stage.Invoice, "inv-bad", "10.00"), post(stage.Payment, "pay", "10.00"),
				appEnv(stage.PaymentApplication, "app", "pay", "inv", "10.00"))
			opts := e.opts()
			opts.MarkRefused = markRefused
			for range 2 {
				man, err := e.run(e.ctx, opts)
				if err != nil || !man.Complete {
					t.Fatalf("Run = %+v, %v", man, err)
				}
				inv := totalsOf(man, stage.Invoice)
				if want := map[bool]int64{true: 1, false: 0}[markRefused]; inv.Rejected.Count != 1 || inv.ErrorMarked.Count != want {
					t.Fatalf("invoice totals = %+v; want 1 rejected, %d marked Error", inv, want)
				}
			}
			if e.outcomes(testWindow)["inv-bad"] != stage.OutcomeRejected {
				t.Fatalf("inv-bad: %v; want refused by the ERP", e.outcomes(testWindow))
			}
			want := map[bool]int{true: 1, false: 0}[markRefused]
			if e.marker.errored["inv-bad"] != want || e.marker.marked["inv-bad"] != 0 {
				t.Errorf("inv-bad marked Error %d, Yes %d times; want Error %d", e.marker.errored["inv-bad"], e.marker.marked["inv-bad"], want)
			}
			if e.marker.marked["inv"] != 1 || e.marker.marked["pay"] != 1 || e.marker.errored["inv"] != 0 || e.marker.marked["app"]+e.marker.errored["app"] != 0 {
				t.Errorf("marks = %v, errors = %v", e.marker.marked, e.marker.errored)
			}
		})
	}
}

// TestTheEchoOfAnErrorMarkIsNotMarkedAgain: a refused document comes back in a
// later window because its Error mark bumped its updatedDate; that window
// posts it again (a fix on the ERP's side is seen so), and when the ERP refuses
// it again it is not marked once more (which would bring it back every hour):
// the ledger says Zuora holds Error already.
func TestTheEchoOfAnErrorMarkIsNotMarkedAgain(t *testing.T) {
	e := newEnv(t, nil)
	e.sim.SetFaults(erpsim.Faults{RejectKeys: map[string]string{"inv-echo": "customer blocked", "inv-new": "customer blocked"}})
	e.writeLines(nextWindow, post(stage.Invoice, "inv-echo", "10.00"), post(stage.Invoice, "inv-new", "10.00"))
	opts := e.opts()
	opts.Dependencies, opts.MarkRefused = &fakeDeps{errorMarked: map[string]string{"inv-echo": testWindow.ID()}}, true
	for range 2 {
		man, err := e.runWindow(e.ctx, nextWindow, opts)
		if err != nil || !man.Complete {
			t.Fatalf("Run = %+v, %v", man, err)
		}
		if inv := totalsOf(man, stage.Invoice); inv.Rejected.Count != 2 || inv.ErrorMarked.Count != 2 {
			t.Fatalf("invoice totals %+v; want both refused and both Error in Zuora", inv)
		}
	}
	if got := e.outcomes(nextWindow); got["inv-echo"] != stage.OutcomeRejected || got["inv-new"] != stage.OutcomeRejected {
		t.Fatalf("outcomes %v", got)
	}
	if e.marker.errored["inv-echo"] != 0 || e.marker.errored["inv-new"] != 1 {
		t.Errorf("Error marks %v; want none for the echo, one for the document refused for the first time", e.marker.errored)
	}
}
