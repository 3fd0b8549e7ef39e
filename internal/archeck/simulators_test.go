package archeck_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/archeck"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

// mirror plays an ideal pipeline between the two simulators: it posts to the
// ERP (over HTTP) every posted document and every application Zuora holds,
// and a reversal for everything Zuora took back, so that AR parity must hold
// after every sync. It shows the two AR models agree, and that the oracle sees
// a sync left out.
type mirror struct {
	t        *testing.T
	zs       *zuorasim.Sim
	es       *erpsim.Sim
	srv      *httptest.Server
	posts    map[string]int  // document id → posts so far
	live     map[string]bool // documents live in the ERP
	reversed map[string]int  // document id → reversals so far
	apps     map[string]bool // applications posted
	appsLive map[string]bool
}

const erpToken = "mirror-token"

func newMirror(t *testing.T, opts zuorasim.Options, tn *zuorasim.Tenant) *mirror {
	zs := zuorasim.New(opts)
	zs.Load(tn)
	es := erpsim.New(erpsim.Options{Token: erpToken})
	srv := httptest.NewServer(es)
	t.Cleanup(srv.Close)
	return &mirror{t: t, zs: zs, es: es, srv: srv, posts: map[string]int{}, live: map[string]bool{},
		reversed: map[string]int{}, apps: map[string]bool{}, appsLive: map[string]bool{}}
}

func (m *mirror) post(path, key string, body map[string]any) {
	m.t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, m.srv.URL+path, bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+erpToken)
	req.Header.Set("Idempotency-Key", key)
	resp, err := m.srv.Client().Do(req)
	if err != nil {
		m.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		m.t.Fatalf("POST %s %s: %d %s", path, key, resp.StatusCode, e.Error)
	}
}

type docKind struct {
	object, docType, path, amount, number, live string
}

var kinds = []docKind{
	{"invoices", "invoice", "/api/invoices", "amount", "invoiceNumber", "Posted"},
	{"debit-memos", "debit_memo", "/api/debit-memos", "totalAmount", "memoNumber", "Posted"},
	{"credit-memos", "credit_memo", "/api/credit-memos", "totalAmount", "memoNumber", "Posted"},
	{"payments", "payment", "/api/payments", "amount", "paymentNumber", "Processed"},
	{"refunds", "refund", "/api/refunds", "amount", "refundNumber", "Processed"},
}

// sync brings the ERP up to what Zuora holds now.
func (m *mirror) sync() {
	m.t.Helper()
	customer := map[any]string{}
	for _, a := range m.zs.Snapshot("accounts") {
		customer[a["id"]] = fmt.Sprint(a["ERPAccountId__c"])
	}
	type held struct {
		docType string
		r       map[string]any
		amount  json.Number
		live    bool
	}
	docs := map[string]held{}
	for _, k := range kinds {
		for _, r := range m.zs.Snapshot(k.object) {
			id := r["id"].(string)
			h := held{docType: k.docType, r: r, amount: r[k.amount].(json.Number), live: r["status"] == k.live}
			docs[id] = h
			if !h.live || m.live[id] {
				continue
			}
			body := map[string]any{"zuora_id": id, "number": r[k.number], "customer": customer[r["accountId"]],
				"currency": r["currency"], "date": "2026-11-25", "amount": h.amount}
			if k.docType == "invoice" || k.docType == "credit_memo" || k.docType == "debit_memo" {
				body["items"] = []any{map[string]any{"zuora_id": id + "-all", "description": "all", "quantity": 1,
					"unit_price": h.amount, "amount": h.amount, "tax_amount": 0}}
			}
			key := id
			if m.posts[id] > 0 {
				key = fmt.Sprintf("%s:post:%d", id, m.posts[id]+1)
			}
			m.post(k.path, key, map[string]any{k.docType: body})
			m.posts[id]++
			m.live[id] = true
		}
	}
	app := func(r map[string]any, kind, source, amountField string, targets map[string]string) {
		id := r["id"].(string)
		if m.apps[id] || !m.live[source] {
			return
		}
		body := map[string]any{"zuora_id": id, "kind": kind, "source_zuora_id": source, "target_type": nil,
			"target_zuora_id": nil, "customer": customer[r["accountId"]], "currency": docs[source].r["currency"],
			"amount": r[amountField], "date": r["effectiveDate"]}
		for field, typ := range targets {
			if t, ok := r[field].(string); ok {
				if !m.live[t] {
					return
				}
				body["target_type"], body["target_zuora_id"] = typ, t
			}
		}
		m.post("/api/applications", id, map[string]any{"application": body})
		m.apps[id], m.appsLive[id] = true, true
	}
	for _, r := range m.zs.Snapshot("payment-applications") {
		if r["paymentApplicationStatus"] != "Cancelled" {
			app(r, "payment", r["paymentId"].(string), "applyAmount", map[string]string{"invoiceId": "invoice", "debitMemoId": "debit_memo"})
		} else if m.appsLive[r["id"].(string)] {
			m.post("/api/reversals", r["id"].(string)+":cancelled", map[string]any{"reversal": map[string]any{
				"zuora_id": r["id"], "doc_type": "payment_application", "customer": customer[r["accountId"]],
				"currency": docs[r["paymentId"].(string)].r["currency"], "amount": r["applyAmount"],
				"date": "2026-11-26", "reason": "Cancelled"}})
			m.appsLive[r["id"].(string)] = false
		}
	}
	for _, r := range m.zs.Snapshot("credit-memo-applications") {
		app(r, "credit_memo", r["creditMemoId"].(string), "amount", map[string]string{"invoiceId": "invoice", "debitMemoId": "debit_memo"})
	}
	for _, r := range m.zs.Snapshot("refund-applications") {
		app(r, "refund", r["refundId"].(string), "applyAmount", map[string]string{"paymentId": "payment", "creditMemoId": "credit_memo"})
	}
	for id, h := range docs {
		if h.live || !m.live[id] {
			continue
		}
		m.reversed[id]++
		m.post("/api/reversals", fmt.Sprintf("%s:reversal:%d", id, m.reversed[id]), map[string]any{"reversal": map[string]any{
			"zuora_id": id, "doc_type": h.docType, "number": "x", "customer": customer[h.r["accountId"]],
			"currency": h.r["currency"], "amount": h.amount, "date": "2026-11-26", "reason": fmt.Sprint(h.r["status"])}})
		m.live[id] = false
	}
}

// parity fails the test on any difference the oracle finds.
func (m *mirror) parity(after string) {
	m.t.Helper()
	if v := m.zs.CheckAR(); len(v) > 0 {
		m.t.Fatalf("after %s: Zuora breaks %s", after, v[0])
	}
	diffs, err := archeck.Compare(m.zs.ARDocuments(), m.es.ARDocuments())
	if err != nil {
		m.t.Fatal(err)
	}
	if len(diffs) > 0 {
		m.t.Fatalf("after %s: %d differences, first %s", after, len(diffs), diffs[0])
	}
	for _, tot := range archeck.Totals(m.zs.ARDocuments(), m.es.ARDocuments()) {
		if !tot.Zuora.Equal(tot.ERP) {
			m.t.Fatalf("after %s: %s totals Zuora %s, ERP %s", after, tot.Currency, tot.Zuora, tot.ERP)
		}
	}
}

var (
	genFrom = time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
	genTo   = genFrom.Add(time.Hour)
)

// TestSimulatorsAgree: a generated tenant mirrored into the ERP is at parity,
// and stays at parity through every runtime operation, in both cancellation models.
func TestSimulatorsAgree(t *testing.T) {
	for _, reversals := range []bool{false, true} {
		t.Run(fmt.Sprintf("CancelAddsReversals=%v", reversals), func(t *testing.T) {
			id := func(s string, err error) string { t.Helper(); noErr(t, err); return s }
			applied := func(_ zuorasim.Applied, err error) { t.Helper(); noErr(t, err) }
			refunded := func(r zuorasim.Refunded, err error) zuorasim.Refunded { t.Helper(); noErr(t, err); return r }
			paid := func(p string, _ zuorasim.Applied, err error) string { t.Helper(); noErr(t, err); return p }
			clock := genTo.Add(time.Hour)
			m := newMirror(t, zuorasim.Options{CancelAddsReversals: reversals, Now: func() time.Time { return clock }},
				zuorasim.Generate(21, zuorasim.DefaultVolume(), genFrom, genTo))
			m.sync()
			m.parity("the first sync")

			step := func(what string, fn func()) {
				t.Helper()
				clock = clock.Add(time.Minute)
				fn()
				m.sync()
				m.parity(what)
			}
			// Two fresh invoices and a credit memo of one account.
			var acct, i1, i2, i3 string
			for _, r := range m.zs.Snapshot("invoices") {
				if r["status"] == "Posted" && r["currency"] == "USD" && acct == "" {
					acct = r["accountId"].(string)
					i1 = id(m.zs.CloneDocument(r["id"].(string)))
					i2 = id(m.zs.CloneDocument(r["id"].(string)))
					i3 = id(m.zs.CloneDocument(r["id"].(string)))
				}
			}
			var memo string
			for _, r := range m.zs.Snapshot("credit-memos") {
				big := decimal.RequireFromString(string(r["totalAmount"].(json.Number))).GreaterThan(decimal.NewFromInt(10))
				if r["status"] == "Posted" && big && memo == "" {
					memo = id(m.zs.CloneDocument(r["id"].(string)))
				}
			}
			m.sync()
			m.parity("the fresh documents")

			var p string
			step("a payment applied to two invoices, part left unapplied", func() {
				p = paid(m.zs.CreatePayment(acct, "100", zuorasim.Target{ID: i1, Amount: "30"}, zuorasim.Target{ID: i2, Amount: "50"}))
			})
			step("the rest applied later", func() { applied(m.zs.ApplyPayment(p, zuorasim.Target{ID: i2, Amount: "15"})) })
			step("part unapplied", func() { applied(m.zs.UnapplyPayment(p, zuorasim.Target{ID: i1, Amount: "10"})) })
			step("a refund of the payment", func() { refunded(m.zs.RefundPayment(p, "12.5")) })
			memoAcct := ""
			for _, r := range m.zs.Snapshot("credit-memos") {
				if r["id"] == memo {
					memoAcct = r["accountId"].(string)
				}
			}
			var mi string
			for _, r := range m.zs.Snapshot("invoices") {
				if r["accountId"] == memoAcct && r["status"] == "Posted" && mi == "" && decimal.RequireFromString(string(r["amount"].(json.Number))).IsPositive() {
					mi = id(m.zs.CloneDocument(r["id"].(string)))
				}
			}
			step("a credit memo applied", func() { applied(m.zs.ApplyCreditMemo(memo, zuorasim.Target{ID: mi, Amount: "1"})) })
			step("and unapplied", func() { applied(m.zs.UnapplyCreditMemo(memo, zuorasim.Target{ID: mi, Amount: "1"})) })
			step("the credit memo unposted", func() { noErr(t, m.zs.UnpostMemo(memo)) })
			step("and posted again", func() { noErr(t, m.zs.PostMemo(memo)) })
			step("the credit memo refunded", func() { refunded(m.zs.RefundCreditMemo(memo, "0.5")) })
			var rf zuorasim.Refunded
			step("another refund", func() { rf = refunded(m.zs.RefundPayment(p, "2")) })
			step("the refund canceled", func() { noErr(t, m.zs.CancelRefund(rf.RefundID)) })
			step("the first refund canceled", func() {
				for _, r := range m.zs.Snapshot("refunds") {
					if r["status"] == "Processed" && r["amount"] == json.Number("12.5") && r["accountId"] == acct {
						noErr(t, m.zs.CancelRefund(r["id"].(string)))
					}
				}
			})
			step("the payment canceled after it was posted", func() { noErr(t, m.zs.CancelPayment(p)) })
			step("an invoice unposted", func() { noErr(t, m.zs.UnpostInvoice(i1)) })
			step("and posted again", func() { noErr(t, m.zs.PostInvoice(i1)) })
			step("an invoice reversed", func() {
				if _, err := m.zs.ReverseInvoice(i3); err != nil {
					t.Fatal(err)
				}
			})

			// A sync left out is a difference the oracle names.
			clock = clock.Add(time.Minute)
			q := id(m.zs.CloneDocument(i1))
			if _, _, err := m.zs.CreatePayment(acct, "3", zuorasim.Target{ID: i1, Amount: "3"}); err != nil {
				t.Fatal(err)
			}
			diffs, err := archeck.Compare(m.zs.ARDocuments(), m.es.ARDocuments())
			noErr(t, err)
			names := map[string]bool{}
			for _, d := range diffs {
				names[d.ZuoraID] = true
			}
			if !names[i1] || !names[q] || len(diffs) != 2 {
				t.Fatalf("without a sync: %v", diffs)
			}
		})
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
