package zuora_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

// The generated tenant's records all fall in [genFrom, genTo).
var (
	genFrom = time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	genTo   = time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC)
)

// simSecret has characters that form and JSON encodings change.
const simSecret = "top+secret/value=42&ü"

// volume is a few hundred documents; with MaxItems 120 invoices 4, 44 and 84
// get more than 99 items, and more than 50 of each marked type exist.
var volume = zuorasim.Volume{Accounts: 20, Invoices: 120, Payments: 60, Refunds: 20, CreditMemos: 60, DebitMemos: 20,
	MaxItems: 120, NoERPPercent: 10, DraftPercent: 10, BurstPercent: 40}

// fastRetry retries quickly and often enough for every injected fault.
var fastRetry = testutil.FastRetry(12, 30*time.Second)

// newSim starts a simulator holding the generated tenant behind a real HTTP server.
func newSim(t *testing.T, opts zuorasim.Options) (*zuorasim.Sim, *httptest.Server) {
	t.Helper()
	opts.ClientSecret = simSecret
	sim := zuorasim.New(opts)
	sim.Load(zuorasim.Generate(42, volume, genFrom, genTo))
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

func newClient(t *testing.T, baseURL string, mod func(*zuora.Config)) *zuora.Client {
	t.Helper()
	cfg := zuora.Config{BaseURL: baseURL, ClientID: zuorasim.DefaultClientID, ClientSecret: simSecret,
		RunID: "sim-test", Retry: fastRetry}
	if mod != nil {
		mod(&cfg)
	}
	c, err := zuora.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// walkAll walks every object, all at once when concurrent is set, sorted by
// updatedDate ascending in pages of 99, and returns the ids each walk yielded.
func walkAll(t *testing.T, c *zuora.Client, concurrent bool) map[string][]string {
	t.Helper()
	var mu sync.Mutex
	got := map[string][]string{}
	var wg sync.WaitGroup
	for _, o := range zuorasim.Objects {
		if !concurrent {
			wg.Wait()
		}
		wg.Go(func() {
			// Item objects require a filter; this one holds every record.
			q := zuora.Query{Object: o, Sort: "updateddate.ASC", PageSize: 99,
				Filters: []string{"updateddate.GE:" + genFrom.Format(time.RFC3339)}}
			var ids []string
			for raw, err := range c.Records(context.Background(), q) {
				if err != nil {
					t.Errorf("walk %s: %v", o, err)
					return
				}
				var r struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal(raw, &r); err != nil {
					t.Errorf("walk %s: %v", o, err)
					return
				}
				ids = append(ids, r.ID)
			}
			mu.Lock()
			got[o] = ids
			mu.Unlock()
		})
	}
	wg.Wait()
	return got
}

// assertExactWalk checks that each walk returned exactly the simulator's ids, once each.
func assertExactWalk(t *testing.T, sim *zuorasim.Sim, got map[string][]string) {
	t.Helper()
	for _, o := range zuorasim.Objects {
		var want []string
		for _, r := range sim.Snapshot(o) {
			want = append(want, r["id"].(string))
		}
		slices.Sort(want)
		have := slices.Sorted(slices.Values(got[o]))
		if len(want) == 0 {
			t.Fatalf("tenant has no %s", o)
		}
		if !slices.Equal(have, want) {
			t.Errorf("%s: walk returned %d ids (%d distinct), simulator holds %d", o, len(have), len(slices.Compact(slices.Clone(have))), len(want))
		}
	}
}

func TestWalkUnderEachFaultReturnsEveryRecordOnce(t *testing.T) {
	tests := []struct {
		name    string
		faults  zuorasim.Faults
		maxConc int // -1: default, and connections are not kept alive
		counter func(zuora.Stats) int64
		what    string
		// sequential walks one object at a time: with concurrent walks a token
		// revoked right after its refresh fails the walk (see the report of
		// this test's author; a second 401 is permanent in Client.call).
		sequential bool
	}{
		{"429 every 4th with Retry-After 0", zuorasim.Faults{Status429Every: 4, RetryAfter: -1}, 0,
			func(s zuora.Stats) int64 { return s.RetriesRateLimit }, "RetriesRateLimit", false},
		{"rate cap", zuorasim.Faults{RateLimit: 9, RateWindow: time.Second}, 0,
			func(s zuora.Stats) int64 { return s.RetriesRateLimit }, "RetriesRateLimit", false},
		{"concurrency cap below MaxConcurrency", zuorasim.Faults{ConcurrencyLimit: 2, RetryAfter: -1, Latency: 20 * time.Millisecond}, 8,
			func(s zuora.Stats) int64 { return s.RetriesRateLimit }, "RetriesRateLimit", false},
		{"500 every 5th", zuorasim.Faults{Status500Every: 5}, 0,
			func(s zuora.Stats) int64 { return s.Retries5xx }, "Retries5xx", false},
		{"502 every 5th", zuorasim.Faults{Status502Every: 5}, 0,
			func(s zuora.Stats) int64 { return s.Retries5xx }, "Retries5xx", false},
		{"503 every 5th", zuorasim.Faults{Status503Every: 5}, 0,
			func(s zuora.Stats) int64 { return s.Retries5xx }, "Retries5xx", false},
		// Without keep-alive: on a reused connection net/http itself replays a
		// dropped GET, invisibly to the client's retries and Stats.
		{"dropped connections", zuorasim.Faults{DropEvery: 5}, -1,
			func(s zuora.Stats) int64 { return s.RetriesTransport }, "RetriesTransport", false},
		{"truncated bodies", zuorasim.Faults{TruncateEvery: 5}, 0,
			func(s zuora.Stats) int64 { return s.RetriesTransport }, "RetriesTransport", false},
		{"malformed bodies", zuorasim.Faults{MalformedEvery: 5}, 0,
			func(s zuora.Stats) int64 { return s.RetriesTransport }, "RetriesTransport", false},
		{"token expiring every 6th request", zuorasim.Faults{ExpireTokenEvery: 6}, 0,
			func(s zuora.Stats) int64 { return s.Refreshes401 }, "Refreshes401", true},
		{"latency", zuorasim.Faults{Latency: 3 * time.Millisecond}, 0, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := zuorasim.Options{Faults: tt.faults}
			if tt.faults.RateLimit > 0 {
				// The simulator's clock moves one second per 20 readings (each
				// request reads it about twice), so every rate window holds about
				// ten requests however fast or slow this machine is.
				var readings atomic.Int64
				opts.Now = func() time.Time { return genTo.Add(time.Duration(readings.Add(1)/20) * time.Second) }
			}
			sim, srv := newSim(t, opts)
			c := newClient(t, srv.URL, func(cfg *zuora.Config) {
				cfg.MaxConcurrency = max(tt.maxConc, 0)
				if tt.faults.ConcurrencyLimit > 0 {
					// Eight callers contend for two slots: a walk may lose many
					// times in a row, and Retry-After: 0 gives it no pause.
					cfg.Retry.MaxAttempts = 1000
				}
				if tt.maxConc < 0 {
					cfg.HTTPClient = &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
				}
			})
			start := time.Now()
			assertExactWalk(t, sim, walkAll(t, c, !tt.sequential))
			elapsed := time.Since(start)
			st := c.Stats()
			// The rate cap's 429s carry Retry-After: 1 (whole seconds), which
			// the client must wait out instead of its millisecond backoff.
			if tt.faults.RateLimit > 0 && elapsed < time.Second {
				t.Errorf("walk under a rate cap took %s: Retry-After was not honoured", elapsed)
			}
			if tt.counter == nil {
				if st.RetriesRateLimit+st.Retries5xx+st.RetriesTransport+st.RetriesReasons+st.Refreshes401 != 0 {
					t.Errorf("latency alone caused retries: %+v", st)
				}
				return
			}
			if tt.counter(st) == 0 {
				t.Errorf("%s is 0 after the fault fired %v times: %+v", tt.what, sim.Stats().Faults, st)
			}
			if tt.what == "Refreshes401" && st.TokensFetched < 2 {
				t.Errorf("%d tokens fetched, want a fresh one after each revocation", st.TokensFetched)
			}
		})
	}
}

func TestMarkTransferredThroughTheSimulatorWithRetryableObjectFailures(t *testing.T) {
	sim, srv := newSim(t, zuorasim.Options{Faults: zuorasim.Faults{LockCompetitionEvery: 3, TemporaryErrorEvery: 7}})
	var log testutil.SyncBuffer
	c := newClient(t, srv.URL, func(cfg *zuora.Config) { cfg.RequestLog, cfg.LogBodies = &log, true })

	// pick returns n ids of an object whose status is one of statuses.
	pick := func(object string, n int, statuses ...string) []string {
		var out []string
		for _, r := range sim.Snapshot(object) {
			if len(out) < n && slices.Contains(statuses, r["status"].(string)) {
				out = append(out, r["id"].(string))
			}
		}
		if len(out) != n {
			t.Fatalf("tenant has %d %s with status %v, want %d", len(out), object, statuses, n)
		}
		return out
	}
	tests := []struct {
		typ, object string
		ids         []string
		firstCalls  []int // objects in each batch's first call
	}{
		{zuora.Invoice, "invoices", pick("invoices", 50, "Posted"), []int{50}},
		{zuora.Payment, "payments", pick("payments", 51, "Processed", "Error", "Canceled"), []int{50, 1}},
		{zuora.Refund, "refunds", pick("refunds", 1, "Processed", "Error", "Canceled"), []int{1}},
		{zuora.CreditMemo, "credit-memos", pick("credit-memos", 51, "Posted", "Draft"), []int{50, 1}},
		{zuora.DebitMemo, "debit-memos", pick("debit-memos", 1, "Posted", "Draft"), []int{1}},
	}
	sent := map[string]bool{}
	for _, tt := range tests {
		for _, id := range tt.ids {
			if v := sim.Transferred(id); v == "Yes" {
				t.Fatalf("%s %s is already transferred before the test", tt.typ, id)
			}
		}
		res, err := c.MarkTransferred(context.Background(), tt.typ, tt.ids)
		if err != nil {
			t.Fatalf("mark %s: %v", tt.typ, err)
		}
		if len(res) != len(tt.ids) {
			t.Fatalf("mark %s: %d results for %d ids", tt.typ, len(res), len(tt.ids))
		}
		for i, r := range res {
			if r.ID != tt.ids[i] || !r.OK {
				t.Errorf("mark %s result %d: %+v, want OK for %s", tt.typ, i, r, tt.ids[i])
			}
			sent[r.ID] = true
		}
		// The first call of each batch, read from the request log.
		var sizes []int
		for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
			var l struct {
				Op          string `json:"op"`
				Attempt     int    `json:"attempt"`
				RequestBody string `json:"request_body"`
			}
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatal(err)
			}
			if l.Attempt != 1 || !strings.HasPrefix(l.Op, "mark "+tt.typ+" batch") {
				continue
			}
			var body struct {
				Objects []json.RawMessage `json:"objects"`
				Memos   []json.RawMessage `json:"memos"`
			}
			if err := json.Unmarshal([]byte(l.RequestBody), &body); err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(body.Objects)+len(body.Memos))
		}
		if !slices.Equal(sizes, tt.firstCalls) {
			t.Errorf("mark %d %s: first calls carried %v objects, want %v", len(tt.ids), tt.typ, sizes, tt.firstCalls)
		}
	}
	if st := c.Stats(); st.RetriedObjects == 0 {
		t.Errorf("no objects retried after LOCK_COMPETITION and TEMPORARY_ERROR: %+v, sim faults %v", st, sim.Stats().Faults)
	}
	if f := sim.Stats().Faults; f["LOCK_COMPETITION"] == 0 || f["TEMPORARY_ERROR"] == 0 {
		t.Errorf("faults fired %v, want both retryable codes", f)
	}
	for _, tt := range tests {
		for _, r := range sim.Snapshot(tt.object) {
			id := r["id"].(string)
			if got := sim.Transferred(id); (got == "Yes") != sent[id] {
				t.Errorf("%s %s: TransferredToAccounting %q, sent %v", tt.object, id, got, sent[id])
			}
		}
	}

	// A Draft invoice is refused with the simulator's code and stays untransferred.
	draft := pick("invoices", 1, "Draft")[0]
	res, err := c.MarkTransferred(context.Background(), zuora.Invoice, []string{draft})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].OK || res[0].Code != "INVALID_VALUE" || !strings.Contains(res[0].Message, "Draft") {
		t.Errorf("draft invoice result %+v, want OK=false with INVALID_VALUE", res)
	}
	if got := sim.Transferred(draft); got == "Yes" {
		t.Errorf("draft invoice marked %q", got)
	}
}

// tokenTap records every access token the simulator issues and every bearer
// token presented to it, without changing what goes over the wire.
type tokenTap struct {
	next   http.Handler
	mu     sync.Mutex
	tokens map[string]bool
}

func (tp *tokenTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && tok != "" {
		tp.add(tok)
	}
	if r.URL.Path != "/oauth/token" {
		tp.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	plain := r.Clone(r.Context())
	plain.Header.Del("Accept-Encoding")
	tp.next.ServeHTTP(rec, plain)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(rec.Body.Bytes(), &body) == nil && body.AccessToken != "" {
		tp.add(body.AccessToken)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

func (tp *tokenTap) add(tok string) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.tokens[tok] = true
}

func TestRequestLogOfAFaultyWalkHoldsNoSecret(t *testing.T) {
	sim := zuorasim.New(zuorasim.Options{ClientSecret: simSecret, TokenTTL: time.Hour, Faults: zuorasim.Faults{
		ExpireTokenEvery: 4, Status500Every: 7, TruncateEvery: 9, MalformedEvery: 11, Status429Every: 13, RetryAfter: -1}})
	sim.Load(zuorasim.Generate(42, volume, genFrom, genTo))
	tap := &tokenTap{next: sim, tokens: map[string]bool{}}
	srv := httptest.NewServer(tap)
	t.Cleanup(srv.Close)
	var log testutil.SyncBuffer
	c := newClient(t, srv.URL, func(cfg *zuora.Config) { cfg.RequestLog, cfg.LogBodies = &log, true })
	assertExactWalk(t, sim, walkAll(t, c, false))
	ids := []string{sim.Snapshot("payments")[0]["id"].(string)}
	if _, err := c.MarkTransferred(context.Background(), zuora.Payment, ids); err != nil {
		t.Fatal(err)
	}

	out := log.String()
	st := c.Stats()
	if st.Refreshes401 == 0 || len(tap.tokens) < 2 {
		t.Fatalf("the walk refreshed %d tokens and the simulator issued %d: the test saw no token churn", st.Refreshes401, len(tap.tokens))
	}
	if !strings.Contains(out, `"op":"fetch token"`) || !strings.Contains(out, "response_body") {
		t.Fatalf("request log lacks token exchanges or bodies:\n%.2000s", out)
	}
	secrets := []string{simSecret, url.QueryEscape(simSecret), strings.Trim(fmt.Sprintf("%q", simSecret), `"`)}
	for tok := range tap.tokens {
		secrets = append(secrets, tok)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("request log contains secret %q", s)
		}
	}
}

// TestConcurrentWalksSurviveTokensRevokedUnderThem: with several walks in
// flight, a revoked token is often refused again right after a refresh (another
// walk's refresh revoked it); the client retries instead of failing the walk.
func TestConcurrentWalksSurviveTokensRevokedUnderThem(t *testing.T) {
	sim, srv := newSim(t, zuorasim.Options{Faults: zuorasim.Faults{ExpireTokenEvery: 6}})
	c := newClient(t, srv.URL, func(cfg *zuora.Config) { cfg.Retry.MaxAttempts = 20 })
	assertExactWalk(t, sim, walkAll(t, c, true))
	if st := c.Stats(); st.Refreshes401 == 0 {
		t.Fatalf("stats %+v: no token was refused; the fault did not bite", st)
	}
}

// TestSetTransferredErrorThroughTheSimulator: the write-back of a document the
// ERP refused sets Error on each object type (the memo bulk endpoints and the
// update action alike, and the PUT fallback for a refund of a credit memo);
// any other value is refused before a request is sent.
func TestSetTransferredErrorThroughTheSimulator(t *testing.T) {
	sim, srv := newSim(t, zuorasim.Options{ActionRefusesCreditMemoRefunds: true})
	c := newClient(t, srv.URL, nil)
	first := func(object string, ok func(map[string]any) bool) string {
		for _, r := range sim.Snapshot(object) {
			if ok(r) {
				return r["id"].(string)
			}
		}
		t.Fatalf("no %s fits", object)
		return ""
	}
	status := func(s string) func(map[string]any) bool {
		return func(r map[string]any) bool { return r["status"] == s }
	}
	for _, tt := range []struct{ typ, id string }{
		{zuora.Invoice, first("invoices", status("Posted"))},
		{zuora.Payment, first("payments", status("Processed"))},
		{zuora.CreditMemo, first("credit-memos", status("Posted"))},
		{zuora.DebitMemo, first("debit-memos", status("Posted"))},
		{zuora.Refund, first("refunds", func(r map[string]any) bool { return r["sourceType"] == "CreditMemo" })},
	} {
		res, err := c.SetTransferred(context.Background(), tt.typ, zuora.TransferredError, []string{tt.id})
		if err != nil || len(res) != 1 || !res[0].OK {
			t.Fatalf("set Error on %s %s: %+v, %v", tt.typ, tt.id, res, err)
		}
		if got := sim.Transferred(tt.id); got != "Error" {
			t.Errorf("%s %s: TransferredToAccounting = %q, want Error", tt.typ, tt.id, got)
		}
	}
	if _, err := c.SetTransferred(context.Background(), zuora.Invoice, "No", []string{"x"}); err == nil {
		t.Fatal("the write-back set No")
	}
}
