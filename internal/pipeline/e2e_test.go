package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// The generated tenant's activity spans three hourly windows.
var (
	tenantFrom = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	tenantTo   = tenantFrom.Add(3 * time.Hour)
)

// Credentials of the simulators; the tests check that they never reach a log.
const (
	zuoraClientID     = "e2e-client-id"
	zuoraClientSecret = "e2e-zuora-secret-never-logged"
	erpToken          = "e2e-erp-token-never-logged"
)

// docObjects maps each document type to its Object Query path, its header
// amount field and the status extract takes (docs/design.md).
var docObjects = map[string]struct{ object, amount, status string }{
	"invoice":     {"invoices", "amount", "Posted"},
	"payment":     {"payments", "amount", "Processed"},
	"refund":      {"refunds", "amount", "Processed"},
	"credit_memo": {"credit-memos", "totalAmount", "Posted"},
	"debit_memo":  {"debit-memos", "totalAmount", "Posted"},
}

// smallVolume is a tenant of about 175 documents with every awkward case:
// documents over 99 items, accounts without an ERP id, drafts, documents already
// transferred, shared bill-run seconds.
func smallVolume() zuorasim.Volume { return zuorasim.DefaultVolume() }

// fastRetry keeps fault tests fast while riding out every injected fault.
var fastRetry = testutil.FastRetry(8, 20*time.Second)

// hooked serves next, unless the hook installed with set handles the request first.
type hooked struct {
	next http.Handler
	mu   sync.Mutex
	hook func(w http.ResponseWriter, r *http.Request) (handled bool)
}

func (h *hooked) set(fn func(w http.ResponseWriter, r *http.Request) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hook = fn
}

func (h *hooked) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	hook := h.hook
	h.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	h.next.ServeHTTP(w, r)
}

// world is a generated Zuora tenant and an ERP, each a real HTTP server, and
// one stage that every pipeline of the test opens.
type world struct {
	t         testing.TB
	zuora     *zuorasim.Sim
	erp       *erpsim.Sim
	zuoraURL  string
	erpURL    string
	zuoraHook *hooked
	erpHook   *hooked
	clock     *testutil.Clock
	stageURL  string
	since     time.Time // where the first window starts: the tenant's first second
	logs      *testutil.SyncBuffer
	runs      int
	// keepRefused runs with KeepRefusedUnmarked: the ERP's refusals are not
	// marked Error in Zuora (so that a fixed account comes back by the re-check
	// in the same window rather than as the echo of the mark in a later one).
	keepRefused bool
	// initial is every document of the tenant as generated, by Zuora id.
	initial map[string]zuoraDoc
}

// zuoraDoc is what the test knows of one Zuora document before any run.
type zuoraDoc struct {
	docType, currency, number, transferred string
	customer                               string // the account's ERPAccountId__c
	items                                  int
	amount                                 decimal.Decimal
	updated                                time.Time
	eligible                               bool // extract takes it: Posted or Processed
}

type worldOptions struct {
	seed   int64
	volume zuorasim.Volume
	from   time.Time // the tenant's activity; zero means tenantFrom..tenantTo
	to     time.Time
	sim    zuorasim.Options // Now is replaced by the world's clock
	stage  string           // "" means a fresh file:// stage
}

// newWorld generates the tenant and starts both simulators.
func newWorld(t testing.TB, o worldOptions) *world {
	t.Helper()
	if o.from.IsZero() {
		o.from, o.to = tenantFrom, tenantTo
	}
	w := &world{t: t, clock: testutil.NewClock(o.to.Add(30 * time.Minute)), logs: &testutil.SyncBuffer{}, stageURL: o.stage, since: o.from}
	if w.stageURL == "" {
		w.stageURL = "file://" + t.TempDir()
	}
	o.sim.ClientID, o.sim.ClientSecret, o.sim.Now = zuoraClientID, zuoraClientSecret, w.clock.Now
	w.zuora = zuorasim.New(o.sim)
	tenant := zuorasim.Generate(o.seed, o.volume, o.from, o.to)
	w.zuora.Load(tenant)
	w.erp = erpsim.New(erpsim.Options{Token: erpToken})
	w.zuoraHook = &hooked{next: w.zuora}
	w.erpHook = &hooked{next: w.erp}
	w.zuoraURL, w.erpURL = testutil.Serve(t, w.zuoraHook), testutil.Serve(t, w.erpHook)

	w.initial = map[string]zuoraDoc{}
	w.learnDocuments()
	// The documents another integration transferred before are in the ERP
	// already (its applications then join them there): the ERP holds them
	// from before the stage's start, for their whole amount, since every
	// application of the tenant is in the stage's range.
	var known []erpsim.KnownDocument
	for id, d := range w.initial {
		if d.transferred == "Yes" && d.eligible && d.customer != "" {
			known = append(known, erpsim.KnownDocument{ZuoraID: id, Type: d.docType, Number: d.number, Customer: d.customer, Currency: d.currency, Amount: d.amount})
		}
	}
	if err := w.erp.Preload(known...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logs := w.logs.String()
		for _, secret := range []string{zuoraClientSecret, erpToken} {
			if strings.Contains(logs, secret) {
				t.Errorf("a secret reached the logs: %q", secret)
			}
		}
	})
	return w
}

// learnDocuments adds the tenant's documents that the world does not know yet
// to initial, as they are now.
func (w *world) learnDocuments() {
	w.t.Helper()
	customers := map[string]string{} // account id → ERPAccountId__c
	for _, a := range w.zuora.Snapshot("accounts") {
		customers[str(a["id"])] = str(a["ERPAccountId__c"])
	}
	items := map[string]int{} // document id → its items
	for _, o := range itemObjects {
		for _, it := range w.zuora.Snapshot(o.object) {
			items[str(it[o.parent])]++
		}
	}
	for docType, o := range docObjects {
		for _, r := range w.zuora.Snapshot(o.object) {
			updated, err := time.Parse(time.RFC3339, str(r["updatedDate"]))
			if err != nil {
				w.t.Fatal(err)
			}
			d := zuoraDoc{docType: docType, currency: str(r["currency"]), transferred: str(r["transferredToAccounting"]),
				amount: dec(w.t, r[o.amount]), updated: updated.UTC(), eligible: str(r["status"]) == o.status,
				customer: customers[str(r["accountId"])], items: items[str(r["id"])]}
			for _, f := range []string{"invoiceNumber", "paymentNumber", "refundNumber", "memoNumber"} {
				if n := str(r[f]); n != "" {
					d.number = n
				}
			}
			if _, known := w.initial[str(r["id"])]; !known {
				w.initial[str(r["id"])] = d
			}
		}
	}
}

// erpDocuments are the documents the pipeline posted to the ERP: every copy,
// those the ERP held from before the stage left out.
func (w *world) erpDocuments() []erpsim.Document {
	var out []erpsim.Document
	for _, d := range w.erp.Documents() {
		if !d.Preloaded {
			out = append(out, d)
		}
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// dec reads a simulator number (json.Number) as a decimal.
func dec(t testing.TB, v any) decimal.Decimal {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a JSON number", v, v)
	}
	d, err := decimal.NewFromString(string(n))
	if err != nil {
		t.Fatalf("number %q: %v", n, err)
	}
	return d
}

// config returns a pipeline configuration for windows from the tenant's start
// up to until, with fast retries and a fresh run id.
func (w *world) config(until time.Time) pipeline.Config {
	w.runs++
	return pipeline.Config{
		ZuoraBaseURL:      w.zuoraURL,
		ZuoraClientID:     zuoraClientID,
		ZuoraClientSecret: zuoraClientSecret,
		ERPBaseURL:        w.erpURL,
		ERPToken:          erpToken,
		StageURL:          w.stageURL,
		WindowSize:        time.Hour,
		Since:             w.since,
		Until:             until,
		ZuoraRetry:        fastRetry,
		ERPRetry:          fastRetry,
		ERPTimeout:        5 * time.Second,
		Logger:            slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RunID:             fmt.Sprintf("run-e2e-%03d", w.runs),
		CodeVersion:       "e2e",

		KeepRefusedUnmarked: w.keepRefused,
	}
}

// open opens a pipeline on the world's stage.
func (w *world) open(cfg pipeline.Config) *pipeline.Pipeline {
	w.t.Helper()
	p, err := pipeline.Open(context.Background(), cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { p.Close() })
	return p
}

// run opens a pipeline with cfg and runs it with ctx.
func (w *world) run(ctx context.Context, cfg pipeline.Config) (*pipeline.Report, error) {
	w.t.Helper()
	rep, err := w.open(cfg).Run(ctx)
	if err != nil {
		for _, secret := range []string{zuoraClientSecret, erpToken} {
			if strings.Contains(err.Error(), secret) {
				w.t.Errorf("a secret reached an error message: %q", secret)
			}
		}
	}
	return rep, err
}

// mustRun runs the pipeline up to until and fails the test on any error.
func (w *world) mustRun(until time.Time) *pipeline.Report {
	w.t.Helper()
	rep, err := w.run(context.Background(), w.config(until))
	if err != nil {
		w.t.Fatalf("run: %v", err)
	}
	return rep
}

// stageView is what the stage says about every committed window.
type stageView struct {
	extracted map[string]string          // zuora id → doc type, from the raw tables
	pairs     map[string]decimal.Decimal // "window|id" → header amount, extracted once per window
	versions  map[string]int             // "window|id" → versions staged (a record touched mid-walk has two)
	rejects   map[string][]outcomeRow    // zuora id → outstanding rejects
	skipped   map[string][]outcomeRow    // zuora id → skips
	ready     map[string][]string        // zuora id → windows it was ready in
	ledger    map[string][]ledgerRow     // zuora id → post and mark rows, in no particular order
	skipCount int64
	rejCount  int64
}

type outcomeRow struct{ window, reason, message string }

type ledgerRow struct {
	window, action, outcome, message string
	ambiguous                        bool
}

// readStage reads every committed window through the warehouse, as `query` would.
func (w *world) readStage(ctx context.Context, st *stage.Stage) stageView {
	w.t.Helper()
	db, err := warehouse.Open(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	defer db.Close()
	if err := db.AttachStage(ctx, st); err != nil {
		w.t.Fatal(err)
	}
	rows := func(q string) [][]string {
		w.t.Helper()
		out, err := db.Strings(ctx, q)
		if err != nil {
			w.t.Fatalf("%s: %v", q, err)
		}
		return out
	}
	v := stageView{extracted: map[string]string{}, pairs: map[string]decimal.Decimal{}, versions: map[string]int{}, rejects: map[string][]outcomeRow{},
		skipped: map[string][]outcomeRow{}, ready: map[string][]string{}, ledger: map[string][]ledgerRow{}}
	var raw []string
	for docType, o := range docObjects {
		table := strings.ReplaceAll(o.object, "-", "_")
		amount := "amount"
		if o.amount == "totalAmount" {
			amount = "total_amount"
		}
		raw = append(raw, fmt.Sprintf(`SELECT '%s' AS doc_type, id, "window", CAST(%s AS VARCHAR) AS amount FROM %s`, docType, amount, table))
	}
	for _, r := range rows(strings.Join(raw, " UNION ALL ")) {
		v.extracted[r[1]] = r[0]
		v.pairs[r[2]+"|"+r[1]] = decimal.RequireFromString(r[3])
		v.versions[r[2]+"|"+r[1]]++
	}
	// A quarantined record was extracted too, counted with its amount when it
	// could be read; a later good row of the same window supersedes it.
	for _, r := range rows(`SELECT doc_type, doc_key, "window", CAST(coalesce(amount, 0) AS VARCHAR), id IS NOT NULL FROM quarantine`) {
		if r[4] == "true" {
			if _, ok := v.extracted[r[1]]; !ok {
				v.extracted[r[1]] = r[0]
			}
		}
		if _, ok := v.pairs[r[2]+"|"+r[1]]; !ok {
			v.pairs[r[2]+"|"+r[1]] = decimal.RequireFromString(r[3])
		}
	}
	// What is rejected now: the outstanding rejects. The report's rejected
	// column counts every window's rejects as its last transform left them.
	for _, r := range rows(`SELECT zuora_id, "window", reason_code, message FROM rejects`) {
		v.rejects[r[0]] = append(v.rejects[r[0]], outcomeRow{r[1], r[2], r[3]})
	}
	v.rejCount = int64(len(rows(`SELECT 1 FROM reject_history`)))
	for _, r := range rows(`SELECT zuora_id, "window", reason_code, message FROM skipped`) {
		v.skipped[r[0]] = append(v.skipped[r[0]], outcomeRow{r[1], r[2], r[3]})
		v.skipCount++
	}
	for _, r := range rows(`SELECT zuora_id, "window" FROM documents`) {
		v.ready[r[0]] = append(v.ready[r[0]], r[1])
	}
	for _, r := range rows(`SELECT zuora_id, "window", action, outcome, coalesce(message, ''), ambiguous FROM ledger`) {
		v.ledger[r[0]] = append(v.ledger[r[0]], ledgerRow{r[1], r[2], r[3], r[4], r[5] == "true"})
	}
	return v
}

// confirmed reports whether the ledger holds the ERP's confirmation of a post.
func confirmed(rows []ledgerRow) bool {
	return slices.ContainsFunc(rows, func(r ledgerRow) bool {
		return r.action == "post" && (r.outcome == "created" || r.outcome == "duplicate")
	})
}

// assertPromise checks the project's core promise over the whole stage:
// every eligible Zuora document was extracted and ended in exactly one of
// posted, rejected with a reason or skipped with a reason; the ERP holds each
// posted one exactly once, with Zuora's amount; Zuora shows every posted one
// transferred and nothing else newly transferred; and the status report's
// counts and amounts balance and agree with the ERP and the stage.
func (w *world) assertPromise(p *pipeline.Pipeline) {
	w.t.Helper()
	t := w.t
	ctx := context.Background()
	v := w.readStage(ctx, p.Stage())

	erpDocs := map[string]erpsim.Document{}
	for _, d := range w.erpDocuments() {
		if _, dup := erpDocs[d.Key]; dup {
			t.Errorf("the ERP holds document %s twice", d.Key)
		}
		erpDocs[d.Key] = d
	}
	created := map[string]int{}
	for _, r := range w.erp.Requests() {
		if r.Status == http.StatusCreated || r.Status == 0 && erpDocs[r.Key].Key != "" {
			created[r.Key]++ // an answer dropped after the commit created it too
		}
	}

	errs := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if errs++; errs <= 15 {
			t.Errorf(format, args...)
		}
	}
	var eligible, posted, rejected, skipped, mostItems int
	for id, z := range w.initial {
		if !z.eligible {
			// Every status is extracted (a status change after posting is
			// seen); one never posted is skipped, never sent.
			if _, ok := v.extracted[id]; !ok {
				fail("%s %s (%s) was never extracted", z.docType, z.number, id)
			}
			if _, ok := erpDocs[id]; ok {
				fail("%s %s (%s) is not Posted/Processed but the ERP holds it", z.docType, z.number, id)
			}
			if got := w.zuora.Transferred(id); got != z.transferred {
				fail("%s %s (%s) was never extracted but its transferredToAccounting went from %q to %q", z.docType, z.number, id, z.transferred, got)
			}
			continue
		}
		eligible++
		name := fmt.Sprintf("%s %s (%s)", z.docType, z.number, id)
		if dt, ok := v.extracted[id]; !ok {
			fail("%s was never extracted", name)
			continue
		} else if dt != z.docType {
			fail("%s was extracted as a %s", name, dt)
		}
		d, inERP := erpDocs[id]
		var reasons []string
		for _, r := range v.rejects[id] {
			if r.reason == "" || r.message == "" {
				fail("%s is rejected in window %s without a reason (%q) or message (%q)", name, r.window, r.reason, r.message)
			}
			reasons = append(reasons, "mapping:"+r.reason)
		}
		for _, r := range v.ledger[id] {
			// A refusal that a later post (a fixed payload) superseded is history.
			if r.action == "post" && r.outcome == "rejected" && !confirmed(v.ledger[id]) {
				if r.message == "" {
					fail("%s is rejected by the ERP in window %s without a message", name, r.window)
				}
				reasons = append(reasons, "erp:rejected")
			}
		}
		for _, s := range v.skipped[id] {
			switch {
			case s.message == "":
				fail("%s is skipped in window %s without a message", name, s.window)
			case s.reason == "ALREADY_POSTED" && !inERP:
				fail("%s is skipped as already posted in window %s but the ERP does not hold it", name, s.window)
			case s.reason == "ALREADY_TRANSFERRED" && z.transferred != "Yes" && !inERP:
				fail("%s is skipped as already transferred in window %s but was neither transferred nor posted", name, s.window)
			case s.reason == "ACKNOWLEDGED" && inERP:
				fail("%s is acknowledged as never to be posted in window %s but the ERP holds it", name, s.window)
			case !slices.Contains([]string{"ALREADY_POSTED", "ALREADY_TRANSFERRED", "ACKNOWLEDGED", "NOT_POSTED", "IGNORED_IN_ZUORA", "SUPERSEDED"}, s.reason):
				fail("%s is skipped in window %s with unknown reason %q", name, s.window, s.reason)
			}
		}
		switch {
		case inERP:
			posted++
			if created[id] != 1 {
				fail("%s was created in the ERP by %d requests; want 1", name, created[id])
			}
			if z.transferred == "Yes" {
				fail("%s was already transferred in Zuora but was posted", name)
			}
			if len(reasons) > 0 {
				fail("%s is in the ERP and also rejected: %v", name, reasons)
			}
			if !confirmed(v.ledger[id]) {
				fail("%s is in the ERP but no ledger row confirms it", name)
			}
			if !d.Amount.Equal(z.amount) || d.Currency != z.currency || d.Type != z.docType || d.Customer != z.customer {
				fail("%s is in the ERP as %s %s %s for %s; Zuora says %s %s %s for %s", name, d.Type, d.Amount, d.Currency, d.Customer, z.docType, z.amount, z.currency, z.customer)
			}
			var body map[string]struct {
				Items []json.RawMessage `json:"items"`
			}
			if err := json.Unmarshal(d.Body, &body); err != nil {
				fail("%s: ERP body: %v", name, err)
			} else if n := len(body[z.docType].Items); n != z.items {
				fail("%s is in the ERP with %d items; Zuora has %d", name, n, z.items)
			}
			mostItems = max(mostItems, z.items)
			if got := w.zuora.Transferred(id); got != "Yes" {
				fail("%s is in the ERP but Zuora's transferredToAccounting is %q", name, got)
			}
		case len(reasons) > 0:
			rejected++
			if got, want := w.zuora.Transferred(id), refusedMark(z.transferred, reasons, w.keepRefused); got != want {
				fail("%s was rejected (%v) but its transferredToAccounting went from %q to %q; want %q", name, reasons, z.transferred, got, want)
			}
		case len(v.skipped[id]) > 0 && z.transferred == "Yes":
			skipped++
			if got := w.zuora.Transferred(id); got != "Yes" {
				fail("%s was skipped as transferred but Zuora now says %q", name, got)
			}
		case slices.ContainsFunc(v.skipped[id], func(s outcomeRow) bool { return s.reason == "ACKNOWLEDGED" }):
			skipped++
			if got := w.zuora.Transferred(id); got != z.transferred {
				fail("%s was acknowledged, never to be posted, but its transferredToAccounting went from %q to %q", name, z.transferred, got)
			}
		default:
			fail("%s is neither posted, rejected nor skipped (ready in windows %v, ledger %v)", name, v.ready[id], v.ledger[id])
		}
	}
	for id := range v.extracted {
		if _, ok := w.initial[id]; !ok {
			fail("extracted %s is not a document of the tenant", id)
		}
	}
	for id, d := range erpDocs {
		if z, ok := w.initial[id]; !ok || !z.eligible {
			fail("the ERP holds %s %s, which Zuora never handed over", d.Type, id)
		}
	}
	reasons := map[string]int{}
	for _, rs := range v.rejects {
		for _, r := range rs {
			reasons[r.reason]++
		}
	}
	t.Logf("promise: %d eligible documents: %d posted (up to %d items), %d rejected, %d skipped; %d ERP requests; mapping rejects %v",
		eligible, posted, mostItems, rejected, skipped, len(w.erp.Requests()), reasons)
	if posted+rejected+skipped != eligible {
		fail("posted %d + rejected %d + skipped %d != eligible %d", posted, rejected, skipped, eligible)
	}
	if posted == 0 || len(erpDocs) != posted {
		fail("the ERP holds %d documents for %d posted", len(erpDocs), posted)
	}

	status, err := p.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	w.assertReportAgrees(status, v, erpDocs)
}

// refusedMark is the transferredToAccounting a rejected document ends with:
// Error once the ERP refused it (unless the run keeps refused ones
// unmarked), else what it was.
func refusedMark(was string, reasons []string, keep bool) string {
	if !keep && slices.Contains(reasons, "erp:rejected") {
		return "Error"
	}
	return was
}

// assertReportAgrees checks a status report covering every window against the
// ERP and the stage: it balances, nothing is pending or unmarked, and its
// counts and amounts are what the ERP holds and the stage lists.
func (w *world) assertReportAgrees(rep *pipeline.Report, v stageView, erpDocs map[string]erpsim.Document) {
	w.t.Helper()
	t := w.t
	if !rep.Balanced() {
		t.Errorf("the status report does not balance:\n%s", printed(rep))
	}
	if rep.Unfinished() {
		t.Errorf("the status report has pending or unmarked documents:\n%s", printed(rep))
	}
	for _, wr := range rep.Windows {
		if !wr.Complete {
			t.Errorf("window %s is not complete (extracted %v transformed %v loaded %v stopped %q)", wr.Window.ID(), wr.Extracted, wr.Transformed, wr.Loaded, wr.Stopped)
		}
	}
	var extracted, rejected, skipped stage.Tally
	postedBy := map[string]stage.Tally{}
	var markedCount int64
	for _, l := range rep.Totals() {
		rejected = rejected.Plus(l.Rejected)
		skipped = skipped.Plus(l.Skipped)
		if !stage.DocType(l.DocType).IsDocument() {
			continue // applications and reversals: no flag in Zuora, not documents of the ERP
		}
		extracted = extracted.Plus(l.Extracted)
		postedBy[l.Currency] = postedBy[l.Currency].Plus(l.Posted)
		markedCount += l.Marked.Count
		if !l.Marked.Equal(l.Posted) {
			t.Errorf("%s/%s: marked %v != posted %v", l.DocType, l.Currency, l.Marked, l.Posted)
		}
	}
	erpBy := map[string]stage.Tally{}
	for _, d := range erpDocs {
		tl := erpBy[d.Currency]
		tl.Add(d.Amount)
		erpBy[d.Currency] = tl
	}
	for cur, want := range erpBy {
		if got := postedBy[cur]; !got.Equal(want) {
			t.Errorf("report posted %s %v; the ERP holds %v", cur, got, want)
		}
	}
	for cur, got := range postedBy {
		if _, ok := erpBy[cur]; !ok && got.Count > 0 {
			t.Errorf("report posted %s %v; the ERP holds none", cur, got)
		}
	}
	var pairs stage.Tally
	for _, a := range v.pairs {
		pairs.Add(a)
	}
	if !extracted.Equal(pairs) {
		t.Errorf("report extracted %v; the stage's raw tables hold %v (documents per window)", extracted, pairs)
	}
	if rejected.Count != v.rejCount || skipped.Count != v.skipCount {
		t.Errorf("report rejected %d skipped %d; the stage lists %d rejects and %d skips", rejected.Count, skipped.Count, v.rejCount, v.skipCount)
	}
	if markedCount != int64(len(erpDocs)) {
		t.Errorf("report marked %d; the ERP holds %d", markedCount, len(erpDocs))
	}
}

func printed(rep *pipeline.Report) string {
	var b strings.Builder
	rep.Print(&b)
	return b.String()
}

// assertNothingUnconfirmedMarked checks, at any point, that every document
// Zuora newly shows as transferred is one the ERP holds.
func (w *world) assertNothingUnconfirmedMarked() {
	w.t.Helper()
	inERP := map[string]bool{}
	for _, d := range w.erpDocuments() {
		inERP[d.Key] = true
	}
	for id, z := range w.initial {
		if got := w.zuora.Transferred(id); got != z.transferred && !inERP[id] && got != "Error" {
			w.t.Errorf("%s %s is marked %q in Zuora but the ERP does not hold it", z.docType, z.number, got)
		}
	}
}

func TestRunOverSeveralWindowsThenAgainPostsNothingNew(t *testing.T) {
	t.Parallel()
	t.Run("file stage", func(t *testing.T) { runTwice(t, "") })
	// mem:// buckets are process-wide: the name must be this test's own.
	t.Run("mem stage", func(t *testing.T) { runTwice(t, fmt.Sprintf("mem://e2e-run-twice-%d", time.Now().UnixNano())) })
}

// runTwice runs three windows, then runs again, on the stage at stageURL ("" is a fresh file:// stage).
func runTwice(t *testing.T, stageURL string) {
	w := newWorld(t, worldOptions{seed: 7, volume: smallVolume(), stage: stageURL})
	// One customer's documents are refused by the ERP, so the promise covers ERP rejections too.
	w.erp.SetFaults(erpsim.Faults{RejectCustomers: map[string]string{"ERP-01003": "customer is blocked in the ERP"}})

	first := w.mustRun(tenantTo)
	if len(first.Windows) != 3 {
		t.Fatalf("first run processed %d windows; want 3", len(first.Windows))
	}
	if !first.Balanced() || first.Unfinished() {
		t.Errorf("first run's report does not balance or is unfinished:\n%s", printed(first))
	}
	if first.Count("invoice", func(l pipeline.Line) stage.Tally { return l.ERPRejected }) == 0 {
		t.Errorf("no invoice was refused by the ERP; the blocked customer should have some:\n%s", printed(first))
	}
	requests := len(w.erp.Requests())
	marks := w.zuora.Stats().MarksApplied

	cfg := w.config(tenantTo)
	p := w.open(cfg)
	second, err := p.Run(context.Background())
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if len(second.Windows) != 0 {
		t.Errorf("second run processed %d windows; want none due", len(second.Windows))
	}
	if got := len(w.erp.Requests()); got != requests {
		t.Errorf("second run sent %d ERP requests; want 0", got-requests)
	}
	if got := w.zuora.Stats().MarksApplied; got != marks {
		t.Errorf("second run marked %d documents in Zuora; want 0", got-marks)
	}

	status, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !status.HighWater.Equal(tenantTo) {
		t.Errorf("high-water mark = %s; want %s", status.HighWater, tenantTo)
	}
	var ids []string
	for _, wr := range status.Windows {
		ids = append(ids, wr.Window.ID())
	}
	want := []string{"20261124T000000Z-20261124T010000Z", "20261124T010000Z-20261124T020000Z", "20261124T020000Z-20261124T030000Z"}
	if !slices.Equal(ids, want) {
		t.Errorf("status windows = %v; want %v", ids, want)
	}
	var out strings.Builder
	status.PrintStatus(&out, func(s pipeline.Step) string { return s.Command })
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n")[3:] {
		if line == "" {
			break // the totals follow
		}
		if f := strings.Fields(line); len(f) != 11 || f[1] != "done" || f[2] != "done" || f[3] != "done" || f[7] != "0" || f[8] != "0" || f[9] != "0" || f[10] != "-" {
			t.Errorf("status line %q; want every step done, nothing pending or unmarked, no next step", line)
		}
	}
	w.assertPromise(p)
}

func TestSelfEchoOfMarksIsSkippedNotPostedAgain(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: 11, volume: smallVolume()})
	// Marks made during the first run stamp updatedDate inside the window after the tenant's activity.
	echo := tenantTo.Add(20 * time.Minute)
	w.clock.Set(echo)
	w.mustRun(tenantTo)
	postedFirst := map[string]bool{}
	for _, d := range w.erpDocuments() {
		postedFirst[d.Key] = true
	}
	if len(postedFirst) == 0 {
		t.Fatal("the first run posted nothing")
	}
	bumped := 0
	for docType, o := range docObjects {
		for _, r := range w.zuora.Snapshot(o.object) {
			if id := str(r["id"]); postedFirst[id] {
				at, err := time.Parse(time.RFC3339, str(r["updatedDate"]))
				if err != nil {
					t.Fatal(err)
				}
				if !at.Equal(echo) {
					t.Fatalf("posted %s %s has updatedDate %s; want the mark's %s", docType, id, at, echo)
				}
				bumped++
			}
		}
	}
	requests := len(w.erp.Requests())

	w.clock.Set(tenantTo.Add(3 * time.Hour))
	second := w.mustRun(tenantTo.Add(2 * time.Hour))
	if len(second.Windows) != 2 {
		t.Fatalf("second run processed %d windows; want the 2 after the tenant's activity", len(second.Windows))
	}
	if got := len(w.erp.Requests()); got != requests {
		t.Errorf("the echo windows sent %d ERP requests; want 0", got-requests)
	}
	var echoed int64
	for _, l := range second.Totals() {
		echoed += l.Extracted.Count
		if l.Ready.Count != 0 || l.Posted.Count != 0 {
			t.Errorf("%s/%s: the echo windows made %d documents ready and posted %d; want 0", l.DocType, l.Currency, l.Ready.Count, l.Posted.Count)
		}
	}
	// Their overlap reaches into the tenant's last window, but extract takes a
	// record again only with a new updatedDate: exactly the marked ones.
	if echoed != int64(bumped) {
		t.Errorf("the echo windows extracted %d documents; want the %d posted and marked", echoed, bumped)
	}

	p := w.open(w.config(tenantTo.Add(2 * time.Hour)))
	v := w.readStage(context.Background(), p.Stage())
	echoWindow := second.Windows[0].Window.ID()
	for id := range postedFirst {
		skips := v.skipped[id]
		if len(skips) != 1 || skips[0].window != echoWindow || (skips[0].reason != "ALREADY_TRANSFERRED" && skips[0].reason != "ALREADY_POSTED") {
			t.Errorf("posted document %s: skips %v; want one ALREADY_TRANSFERRED or ALREADY_POSTED skip in %s", id, skips, echoWindow)
		}
	}
	w.assertPromise(p)
}

// readyLine is one line of the documents NDJSON, numbers kept as text.
type readyLine struct {
	DocType string                                `json:"doc_type"`
	ZuoraID string                                `json:"zuora_id"`
	Amount  json.Number                           `json:"amount"`
	Payload map[string]map[string]json.RawMessage `json:"payload"`
}

type readyItem struct {
	ZuoraID   string      `json:"zuora_id"`
	Quantity  json.Number `json:"quantity"`
	UnitPrice json.Number `json:"unit_price"`
	Amount    json.Number `json:"amount"`
	TaxAmount json.Number `json:"tax_amount"`
}

// itemObjects maps each document type with items to its item object, the
// field naming the parent and the Zuora field behind the ERP item's amount.
var itemObjects = map[string]struct{ object, parent, amount string }{
	"invoice":     {"invoice-items", "invoiceId", "chargeAmount"},
	"credit_memo": {"credit-memo-items", "creditMemoId", "amountWithoutTax"},
	"debit_memo":  {"debit-memo-items", "debitMemoId", "amountWithoutTax"},
}

func TestAmountsInTheNDJSONEqualZuorasForTenThousandDocuments(t *testing.T) {
	t.Parallel()
	volume := zuorasim.Volume{Accounts: 300, Invoices: 5000, Payments: 2500, Refunds: 800, CreditMemos: 1000, DebitMemos: 700,
		MaxItems: 120, NoERPPercent: 5, DraftPercent: 5, TransferredPercent: 3, BurstPercent: 20}
	from, to := tenantFrom, tenantFrom.Add(2*time.Hour)
	w := newWorld(t, worldOptions{seed: 2026, volume: volume, from: from, to: to})
	if n := len(w.initial); n < 10_000 {
		t.Fatalf("the tenant has %d documents; want at least 10,000", n)
	}
	ctx := context.Background()
	cfg := w.config(to)
	cfg.Logger = slog.New(slog.DiscardHandler)
	p := w.open(cfg)
	start := time.Now()
	windows, err := p.Extract(ctx, from, to, false)
	if err != nil {
		t.Fatal(err)
	}
	extracted := time.Since(start)
	var wantReady int64
	for _, win := range windows.Windows {
		rep, err := p.Transform(ctx, win)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range rep.Totals() {
			wantReady += l.Ready.Count
		}
	}
	t.Logf("%d documents: extract %s, transform %s", len(w.initial), extracted.Round(time.Millisecond), (time.Since(start) - extracted).Round(time.Millisecond))

	items := map[string][]map[string]any{} // document id → its items in Zuora
	for _, o := range itemObjects {
		for _, it := range w.zuora.Snapshot(o.object) {
			items[str(it[o.parent])] = append(items[str(it[o.parent])], it)
		}
	}
	amountField := func(docType string) string { return docObjects[docType].amount }
	equal := func(what string, got json.Number, want any) {
		t.Helper()
		g, err := decimal.NewFromString(string(got))
		if err != nil {
			t.Errorf("%s: %q is not a decimal", what, got)
			return
		}
		if wd := dec(t, want); !g.Equal(wd) {
			t.Errorf("%s = %s; Zuora says %s", what, got, wd)
		}
	}
	headers := map[string]map[string]any{}
	for _, o := range docObjects {
		for _, r := range w.zuora.Snapshot(o.object) {
			headers[str(r["id"])] = r
		}
	}

	var docs, lines, docLines int64
	seen := map[string]bool{}
	for _, win := range windows.Windows {
		tm, ok, err := p.Stage().ReadTransform(ctx, win)
		if err != nil || !ok {
			t.Fatalf("window %s has no transform manifest (%v)", win.ID(), err)
		}
		r, err := p.Stage().NewReader(ctx, tm.Documents.Key)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var l readyLine
			dc := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			dc.UseNumber()
			if err := dc.Decode(&l); err != nil {
				t.Fatalf("window %s: %v in %s", win.ID(), err, sc.Text())
			}
			lines++
			if !stage.DocType(l.DocType).IsDocument() {
				continue // applications and reversals: their amounts are checked by the AR tests (ar_test.go)
			}
			docLines++
			z, ok := headers[l.ZuoraID]
			if !ok {
				t.Errorf("ready %s %s is not in Zuora", l.DocType, l.ZuoraID)
				continue
			}
			name := l.DocType + " " + l.ZuoraID
			equal(name+" amount", l.Amount, z[amountField(l.DocType)])
			body := l.Payload[l.DocType]
			var payloadAmount json.Number
			if err := decodeNumbers(body["amount"], &payloadAmount); err != nil {
				t.Errorf("%s payload amount: %v", name, err)
			}
			equal(name+" payload amount", payloadAmount, z[amountField(l.DocType)])
			if it, ok := itemObjects[l.DocType]; ok {
				var got []readyItem
				if err := decodeNumbers(body["items"], &got); err != nil {
					t.Errorf("%s items: %v", name, err)
				}
				want := map[string]map[string]any{}
				for _, zi := range items[l.ZuoraID] {
					want[str(zi["id"])] = zi
				}
				if len(got) != len(want) {
					t.Errorf("%s has %d items; Zuora has %d", name, len(got), len(want))
				}
				for _, gi := range got {
					zi, ok := want[gi.ZuoraID]
					if !ok {
						t.Errorf("%s item %s is not in Zuora", name, gi.ZuoraID)
						continue
					}
					equal(name+" item "+gi.ZuoraID+" amount", gi.Amount, zi[it.amount])
					equal(name+" item "+gi.ZuoraID+" tax_amount", gi.TaxAmount, zi["taxAmount"])
					equal(name+" item "+gi.ZuoraID+" unit_price", gi.UnitPrice, zi["unitPrice"])
					equal(name+" item "+gi.ZuoraID+" quantity", gi.Quantity, zi["quantity"])
				}
			}
			if !seen[l.ZuoraID] {
				seen[l.ZuoraID] = true
				docs++
			}
			if t.Failed() {
				t.FailNow() // one bad line is enough; do not print thousands
			}
		}
		r.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d ready lines (%d distinct documents) match Zuora exactly", lines, docs)
	if lines != wantReady {
		t.Errorf("read %d ready lines; the transform reported %d ready", lines, wantReady)
	}
	if docs != docLines {
		t.Errorf("%d distinct documents in %d ready document lines; a document is ready in one window only", docs, docLines)
	}
}

// decodeNumbers decodes raw JSON keeping numbers as text.
func decodeNumbers(raw json.RawMessage, v any) error {
	dc := json.NewDecoder(bytes.NewReader(raw))
	dc.UseNumber()
	return dc.Decode(v)
}

func BenchmarkRunFiveThousandDocuments(b *testing.B) {
	volume := zuorasim.Volume{Accounts: 150, Invoices: 2500, Payments: 1250, Refunds: 400, CreditMemos: 500, DebitMemos: 350,
		MaxItems: 120, NoERPPercent: 5, DraftPercent: 5, TransferredPercent: 3, BurstPercent: 20}
	docs := 0
	for b.Loop() {
		b.StopTimer()
		w := newWorld(b, worldOptions{seed: 5, volume: volume})
		cfg := w.config(tenantTo)
		cfg.Logger = slog.New(slog.DiscardHandler)
		cfg.ERPConcurrency = 8
		b.StartTimer()
		if _, err := w.run(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
		docs += len(w.initial)
	}
	b.ReportMetric(float64(docs)/b.Elapsed().Seconds(), "docs/s")
}

// recorder stands in for a test's testing.TB to collect what a check reports.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

// errFatal unwinds a check that called Fatal on a recorder.
var errFatal = errors.New("fatal")

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Error(args ...any)   { r.add(fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, args ...any) {
	r.add(fmt.Sprintf(format, args...))
}
func (r *recorder) Fatal(args ...any) { r.add(fmt.Sprint(args...)); panic(errFatal) }
func (r *recorder) Fatalf(format string, args ...any) {
	r.add(fmt.Sprintf(format, args...))
	panic(errFatal)
}

func (r *recorder) add(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msg)
}

// check runs assertPromise against a recorder and returns what it reported.
func (w *world) check(p *pipeline.Pipeline) []string {
	real := w.t
	rec := &recorder{TB: real}
	w.t = rec
	defer func() {
		w.t = real
		if v := recover(); v != nil && v != errFatal {
			panic(v)
		}
	}()
	w.assertPromise(p)
	return rec.msgs
}

// TestPromiseCheckCatchesBrokenPromises proves the shared check can fail: each
// way of breaking the promise behind the pipeline's back is reported.
func TestPromiseCheckCatchesBrokenPromises(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: 7, volume: smallVolume()})
	w.mustRun(tenantTo)
	p := w.open(w.config(tenantTo))
	ctx := context.Background()
	if msgs := w.check(p); len(msgs) != 0 {
		t.Fatalf("the check fails a clean run: %q", msgs)
	}
	expect := func(what string, want ...string) {
		t.Helper()
		msgs := strings.Join(w.check(p), "\n")
		for _, s := range want {
			if !strings.Contains(msgs, s) {
				t.Errorf("%s: the check did not report %q; it reported:\n%s", what, s, msgs)
			}
		}
	}

	var victim string
	for id, z := range w.initial {
		if z.docType == "invoice" && z.eligible && z.transferred != "Yes" && w.zuora.Transferred(id) != "Yes" {
			victim = id
			break
		}
	}
	zc, err := zuora.New(zuora.Config{BaseURL: w.zuoraURL, ClientID: zuoraClientID, ClientSecret: zuoraClientSecret, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := zc.MarkTransferred(ctx, zuora.Invoice, []string{victim}); err != nil || !res[0].OK {
		t.Fatalf("mark %s: %v %+v", victim, err, res)
	}
	expect("an unposted invoice marked in Zuora", "was rejected", "its transferredToAccounting went from")

	body := `{"payment":{"zuora_id":"not-from-zuora","number":"P-X","customer":"ERP-01001","currency":"USD","date":"2026-11-24","amount":1.5}}`
	req, _ := http.NewRequest(http.MethodPost, w.erpURL+"/api/payments", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+erpToken)
	req.Header.Set("Idempotency-Key", "not-from-zuora")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("post a foreign payment: %v %v", err, resp)
	}
	resp.Body.Close()
	expect("a document Zuora never handed over in the ERP", "which Zuora never handed over", "report posted USD")

	parts, err := p.Stage().List(ctx, stage.LedgerPrefix(window2))
	if err != nil || len(parts) == 0 {
		t.Fatalf("ledger of %s: %d parts, %v", window2.ID(), len(parts), err)
	}
	for _, o := range parts {
		if err := p.Stage().Delete(ctx, o.Key); err != nil {
			t.Fatal(err)
		}
	}
	expect("a window's ledger lost", "no ledger row confirms it", "pending or unmarked")
}

func TestWindowsAcrossTheTenantsDSTChangeLoseAndRepeatNothing(t *testing.T) {
	t.Parallel()
	// At 09:00 UTC on 2026-11-01 Los Angeles goes from -07:00 to -08:00, so the
	// tenant's updatedDate strings run through the local hour 01:00-02:00 twice.
	from := time.Date(2026, 11, 1, 7, 0, 0, 0, time.UTC)
	to := from.Add(4 * time.Hour)
	w := newWorld(t, worldOptions{seed: 23, volume: smallVolume(), from: from, to: to})
	offsets := map[string]int{}
	for _, o := range docObjects {
		for _, r := range w.zuora.Snapshot(o.object) {
			if u := str(r["updatedDate"]); strings.HasPrefix(u, "2026-11-01T01:") {
				offsets[u[len(u)-6:]]++
			}
		}
	}
	if offsets["-07:00"] == 0 || offsets["-08:00"] == 0 {
		t.Fatalf("documents in the repeated local hour by offset: %v; want both -07:00 and -08:00", offsets)
	}
	rep := w.mustRun(to)
	if len(rep.Windows) != 4 {
		t.Fatalf("run processed %d windows; want 4", len(rep.Windows))
	}
	w.assertPromise(w.open(w.config(to)))
}

func TestDocumentVisibleLateIsTakenByTheNextWindowsOverlapOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: 31, volume: smallVolume()})
	last := stage.Window{Start: tenantTo.Add(-time.Hour), End: tenantTo}
	w.mustRun(last.Start)

	// A document stamped five minutes before the high-water mark becomes visible
	// only now: the next window's overlap must take it.
	var source string
	for id, z := range w.initial {
		if z.docType == "invoice" && z.eligible && z.transferred != "Yes" && z.customer != "" && z.currency == "USD" && last.Contains(z.updated) {
			source = id
			break
		}
	}
	if source == "" {
		t.Fatal("the tenant has no USD invoice to copy in its last window")
	}
	stamped := last.Start.Add(-5 * time.Minute)
	w.clock.Set(stamped)
	late, err := w.zuora.CloneDocument(source)
	if err != nil {
		t.Fatal(err)
	}
	w.learnDocuments()
	if !w.initial[late].updated.Equal(stamped) {
		t.Fatalf("the late invoice is stamped %s; want %s", w.initial[late].updated, stamped)
	}
	w.clock.Set(tenantTo.Add(30 * time.Minute))

	rep := w.mustRun(tenantTo)
	// The last window again, and the earlier ones only to post applications
	// that waited for its documents.
	if len(rep.Windows) == 0 || rep.Windows[0].Window.ID() != last.ID() ||
		slices.ContainsFunc(rep.Windows[1:], func(wr pipeline.WindowReport) bool {
			return wr.Why != "dependencies settled" && wr.Why != "rejects re-checked"
		}) {
		t.Fatalf("second run processed %d windows; want only %s (and those whose applications waited for it):\n%s", len(rep.Windows), last.ID(), printed(rep))
	}
	var creates []string
	for _, r := range w.erp.Requests() {
		if r.Key == late {
			creates = append(creates, fmt.Sprint(r.Status))
		}
	}
	if !slices.Equal(creates, []string{"201"}) {
		t.Errorf("the late invoice was sent to the ERP with answers %v; want one 201", creates)
	}
	p := w.open(w.config(tenantTo))
	v := w.readStage(context.Background(), p.Stage())
	if got := v.ready[late]; !slices.Equal(got, []string{last.ID()}) {
		t.Errorf("the late invoice was ready in windows %v; want only %s", got, last.ID())
	}
	w.assertPromise(p)
}
