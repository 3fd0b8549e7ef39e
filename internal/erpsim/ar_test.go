package erpsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// arClient posts to one ERP simulator and fails the test on transport errors.
type arClient struct {
	t   *testing.T
	sim *Sim
	srv *httptest.Server
}

func newAR(t *testing.T, opts Options) *arClient {
	t.Helper()
	opts.Token = token
	sim := New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &arClient{t: t, sim: sim, srv: srv}
}

func (c *arClient) post(path, key, body string) reply {
	c.t.Helper()
	r, err := post(c.t, c.srv.Client(), c.srv.URL, path, key, "Bearer "+token, body)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	return r
}

// must posts and expects status.
func (c *arClient) must(status int, path, key, body string) reply {
	c.t.Helper()
	r := c.post(path, key, body)
	if r.status != status {
		c.t.Fatalf("POST %s key %s: %d %q, want %d", path, key, r.status, r.errMsg, status)
	}
	return r
}

func (c *arClient) open(zuoraID, want string) {
	c.t.Helper()
	got, _ := c.sim.OpenBalance(zuoraID)
	if !got.Equal(decimal.RequireFromString(want)) {
		c.t.Fatalf("open balance of %s = %s, want %s", zuoraID, got, want)
	}
}

func doc(typ, id, customer, currency, amount string) string {
	items := ""
	if typ == "invoice" || typ == "credit_memo" || typ == "debit_memo" {
		items = fmt.Sprintf(`,"items":[{"zuora_id":"%s-1","description":"x","quantity":1,"unit_price":%s,"amount":%s,"tax_amount":0}]`, id, amount, amount)
	}
	return fmt.Sprintf(`{"%s":{"zuora_id":"%s","number":"N-%s","customer":"%s","currency":"%s","date":"2026-11-25","amount":%s%s}}`,
		typ, id, id, customer, currency, amount, items)
}

var docPath = map[string]string{"invoice": "/api/invoices", "payment": "/api/payments", "refund": "/api/refunds",
	"credit_memo": "/api/credit-memos", "debit_memo": "/api/debit-memos"}

func (c *arClient) doc(typ, id, amount string) reply {
	c.t.Helper()
	return c.must(201, docPath[typ], id, doc(typ, id, "ERP-1", "USD", amount))
}

func app(id, kind, source, targetType, target, amount string) string {
	tt, tz := "null", "null"
	if targetType != "" {
		tt, tz = `"`+targetType+`"`, `"`+target+`"`
	}
	return fmt.Sprintf(`{"application":{"zuora_id":"%s","kind":"%s","source_zuora_id":"%s","target_type":%s,"target_zuora_id":%s,"customer":"ERP-1","currency":"USD","amount":%s,"date":"2026-11-25"}}`,
		id, kind, source, tt, tz, amount)
}

func reversal(id, docType, amount, reason string) string {
	return fmt.Sprintf(`{"reversal":{"zuora_id":"%s","doc_type":"%s","number":"N-%s","customer":"ERP-1","currency":"USD","amount":%s,"date":"2026-11-26","reason":"%s"}}`,
		id, docType, id, amount, reason)
}

func TestApplicationValidation(t *testing.T) {
	good := app("a1", "payment", "p1", "invoice", "i1", "10")
	tests := []struct {
		name, body string
		status     int
		errHas     string
	}{
		{"created", good, 201, ""},
		{"not json", `{"application":`, 422, "not a JSON object"},
		{"wrong top key", doc("invoice", "x", "C", "USD", "1"), 422, `"application"`},
		{"no zuora id", strings.Replace(good, `"zuora_id":"a1",`, "", 1), 422, "application.zuora_id"},
		{"unknown kind", strings.Replace(good, `"kind":"payment"`, `"kind":"adjustment"`, 1), 422, "application.kind"},
		{"no source", strings.Replace(good, `"source_zuora_id":"p1",`, "", 1), 422, "application.source_zuora_id"},
		{"payment to a payment", app("a1", "payment", "p1", "payment", "p2", "10"), 422, "application.target_type"},
		{"refund without a target", app("a1", "refund", "r1", "", "", "10"), 422, "application.target_type"},
		{"refund of an invoice", app("a1", "refund", "r1", "invoice", "i1", "10"), 422, "application.target_type"},
		{"target type without a target id", strings.Replace(good, `"target_zuora_id":"i1"`, `"target_zuora_id":null`, 1), 422, "application.target_zuora_id"},
		{"target id without a target type", strings.Replace(good, `"target_type":"invoice"`, `"target_type":null`, 1), 422, "application.target_zuora_id"},
		{"zero amount", app("a1", "payment", "p1", "invoice", "i1", "0.00"), 422, "application.amount"},
		{"amount as a string", strings.Replace(good, `"amount":10`, `"amount":"10"`, 1), 422, "application.amount"},
		{"no customer", strings.Replace(good, `"customer":"ERP-1",`, "", 1), 422, "application.customer"},
		{"bad date", strings.Replace(good, `"2026-11-25"`, `"2026-13-01"`, 1), 422, "application.date"},
		{"unknown source", app("a1", "payment", "p9", "invoice", "i1", "10"), 422, "p9"},
		{"unknown target", app("a1", "payment", "p1", "invoice", "i9", "10"), 422, "i9"},
		{"source of another kind", app("a1", "credit_memo", "p1", "invoice", "i1", "10"), 422, "p1"},
		{"target of another type", app("a1", "payment", "p1", "debit_memo", "i1", "10"), 422, "i1"},
		{"other currency", strings.Replace(good, `"currency":"USD"`, `"currency":"EUR"`, 1), 422, "currency"},
		{"unapply", app("a1", "payment", "p1", "invoice", "i1", "-10"), 201, ""},
		{"credit balance", app("a1", "payment", "p1", "", "", "10"), 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newAR(t, Options{})
			c.doc("invoice", "i1", "100")
			c.doc("payment", "p1", "80")
			got := c.post("/api/applications", "a1", tt.body)
			if got.status != tt.status || !strings.Contains(got.errMsg, tt.errHas) {
				t.Fatalf("got %d %q; want %d with %q", got.status, got.errMsg, tt.status, tt.errHas)
			}
			if n := len(c.sim.Applications()); (tt.status == 201) != (n == 1) {
				t.Fatalf("%d applications held after a %d", n, got.status)
			}
		})
	}
	c := newAR(t, Options{})
	if r, _ := post(t, c.srv.Client(), c.srv.URL, "/api/applications", "a1", "", good); r.status != 401 {
		t.Fatalf("no token: %d", r.status)
	}
	if r, _ := post(t, c.srv.Client(), c.srv.URL, "/api/applications", "", "Bearer "+token, good); r.status != 400 {
		t.Fatalf("no key: %d", r.status)
	}
}

func TestApplicationIdempotency(t *testing.T) {
	c := newAR(t, Options{})
	c.doc("invoice", "i1", "100")
	c.doc("payment", "p1", "80")
	body := app("a1", "payment", "p1", "invoice", "i1", "10.50")
	first := c.must(201, "/api/applications", "a1", body)
	again := c.must(200, "/api/applications", "a1", strings.Replace(body, "10.50", "10.5", 1))
	if !again.replayed || again.id != first.id || first.replayed {
		t.Fatalf("first %+v, replay %+v", first, again)
	}
	c.must(409, "/api/applications", "a1", app("a1", "payment", "p1", "invoice", "i1", "10.51"))
	// The same application under another key while it is live: a double post.
	c.must(409, "/api/applications", "other-key", body)
	if n := len(c.sim.Applications()); n != 1 {
		t.Fatalf("%d applications", n)
	}
	c.open("i1", "89.5")
}

func TestKnownDocuments(t *testing.T) {
	c := newAR(t, Options{KnownDocuments: []KnownDocument{
		{ZuoraID: "old-inv", Type: "invoice", Number: "INV-OLD", Customer: "ERP-1", Currency: "USD",
			Amount: decimal.RequireFromString("100"), Open: ptr(decimal.RequireFromString("40"))},
	}})
	c.open("old-inv", "40")
	c.doc("payment", "p1", "80")
	c.must(201, "/api/applications", "a1", app("a1", "payment", "p1", "invoice", "old-inv", "40"))
	c.open("old-inv", "0")
	c.open("p1", "40")
	if err := c.sim.Preload(KnownDocument{ZuoraID: "old-pay", Type: "payment", Number: "P-OLD", Customer: "ERP-1",
		Currency: "USD", Amount: decimal.RequireFromString("25")}); err != nil {
		t.Fatal(err)
	}
	c.doc("invoice", "i2", "30")
	c.must(201, "/api/applications", "a2", app("a2", "payment", "old-pay", "invoice", "i2", "25"))
	c.open("old-pay", "0")
	c.open("i2", "5")
	// A known document is held: posting it again is a double post.
	c.must(409, "/api/payments", "old-pay", doc("payment", "old-pay", "ERP-1", "USD", "25"))
	for _, bad := range []KnownDocument{
		{ZuoraID: "", Type: "invoice", Customer: "C", Currency: "USD"},
		{ZuoraID: "x", Type: "widget", Customer: "C", Currency: "USD"},
		{ZuoraID: "old-pay", Type: "payment", Customer: "C", Currency: "USD"},
	} {
		if err := c.sim.Preload(bad); err == nil {
			t.Errorf("Preload(%+v) accepted", bad)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestOneLiveCopyPerDocument(t *testing.T) {
	c := newAR(t, Options{})
	first := c.doc("credit_memo", "cm1", "20")
	// Posted again under another key while the first copy is live: refused.
	if r := c.must(409, "/api/credit-memos", "cm1-again", doc("credit_memo", "cm1", "ERP-1", "USD", "20")); !strings.Contains(r.errMsg, "cm1") {
		t.Fatalf("409 says %q", r.errMsg)
	}
	// Reversed (Zuora unposted it), then posted again under a new key: a new live copy.
	rv := c.must(201, "/api/reversals", "cm1:unpost:1", reversal("cm1", "credit_memo", "20", "unposted"))
	c.must(200, "/api/reversals", "cm1:unpost:1", reversal("cm1", "credit_memo", "20.00", "unposted"))
	c.must(409, "/api/reversals", "cm1:unpost:1", reversal("cm1", "credit_memo", "20", "other reason"))
	c.open("cm1", "0")
	c.must(422, "/api/reversals", "cm1:unpost:2", reversal("cm1", "credit_memo", "20", "unposted"))
	second := c.must(201, "/api/credit-memos", "cm1:post:2", doc("credit_memo", "cm1", "ERP-1", "USD", "20"))
	if second.id == first.id || rv.id == "" {
		t.Fatalf("copies %s and %s, reversal %s", first.id, second.id, rv.id)
	}
	c.open("cm1", "20")
	// The old key replays the first copy's answer; it creates nothing.
	if r := c.must(200, "/api/credit-memos", "cm1", doc("credit_memo", "cm1", "ERP-1", "USD", "20")); r.id != first.id {
		t.Fatalf("old key answered %s", r.id)
	}
	live := 0
	for _, d := range c.sim.Documents() {
		if d.ZuoraID == "cm1" && d.Live {
			live++
		}
	}
	if live != 1 || len(c.sim.Documents()) != 2 {
		t.Fatalf("%d live copies of %d", live, len(c.sim.Documents()))
	}
	if rs := c.sim.Reversals(); len(rs) != 1 || rs[0].ZuoraID != "cm1" || rs[0].ERPID != first.id {
		t.Fatalf("reversals %+v", rs)
	}
}

func TestReversalValidation(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		errHas     string
	}{
		{"reversed", reversal("i1", "invoice", "100", "unposted"), 201, ""},
		{"not held", reversal("i9", "invoice", "100", "unposted"), 422, "i9"},
		{"another type", reversal("i1", "debit_memo", "100", "unposted"), 422, "i1"},
		{"another amount", reversal("i1", "invoice", "100.01", "unposted"), 422, "amount"},
		{"another currency", strings.Replace(reversal("i1", "invoice", "100", "x"), "USD", "EUR", 1), 422, "currency"},
		{"another customer", strings.Replace(reversal("i1", "invoice", "100", "x"), "ERP-1", "ERP-2", 1), 422, "customer"},
		{"no reason", reversal("i1", "invoice", "100", ""), 422, "reversal.reason"},
		{"unknown type", reversal("i1", "widget", "100", "x"), 422, "reversal.doc_type"},
		{"no number", strings.Replace(reversal("i1", "invoice", "100", "x"), `"number":"N-i1",`, "", 1), 422, "reversal.number"},
		{"bad date", strings.Replace(reversal("i1", "invoice", "100", "x"), "2026-11-26", "26/11/2026", 1), 422, "reversal.date"},
		{"an application", strings.Replace(reversal("a1", "payment_application", "30", "cancelled"), `"number":"N-a1",`, "", 1), 201, ""},
		{"an application of another kind", reversal("a1", "credit_memo_application", "30", "cancelled"), 422, "a1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newAR(t, Options{})
			c.doc("invoice", "i1", "100")
			c.doc("payment", "p1", "30")
			c.must(201, "/api/applications", "a1", app("a1", "payment", "p1", "invoice", "i1", "30"))
			got := c.post("/api/reversals", "rev-1", tt.body)
			if got.status != tt.status || !strings.Contains(got.errMsg, tt.errHas) {
				t.Fatalf("got %d %q; want %d with %q", got.status, got.errMsg, tt.status, tt.errHas)
			}
			if n := len(c.sim.Reversals()); (tt.status == 201) != (n == 1) {
				t.Fatalf("%d reversals after a %d", n, got.status)
			}
		})
	}
}

// TestOpenBalancesAfterEveryEvent walks one customer through every kind of
// event and checks each document's open balance and the customer's totals.
func TestOpenBalancesAfterEveryEvent(t *testing.T) {
	c := newAR(t, Options{})
	want := func(balances ...string) {
		t.Helper()
		for i := 0; i+1 < len(balances); i += 2 {
			c.open(balances[i], balances[i+1])
		}
	}
	c.doc("invoice", "i1", "100.00")
	c.doc("invoice", "i2", "50")
	c.doc("payment", "p1", "120")
	c.doc("credit_memo", "m1", "20")
	c.doc("debit_memo", "d1", "7.5")
	want("i1", "100", "i2", "50", "p1", "120", "m1", "20", "d1", "7.5")

	// A payment applied to two invoices, part left unapplied.
	c.must(201, "/api/applications", "pa1", app("pa1", "payment", "p1", "invoice", "i1", "70"))
	c.must(201, "/api/applications", "pa2", app("pa2", "payment", "p1", "invoice", "i2", "30"))
	want("i1", "30", "i2", "20", "p1", "20")
	// The rest applied later, to a debit memo.
	c.must(201, "/api/applications", "pa3", app("pa3", "payment", "p1", "debit_memo", "d1", "7.5"))
	want("d1", "0", "p1", "12.5")
	// A credit memo applied, then unapplied.
	c.must(201, "/api/applications", "ca1", app("ca1", "credit_memo", "m1", "invoice", "i1", "20"))
	want("i1", "10", "m1", "0")
	c.must(201, "/api/applications", "ca2", app("ca2", "credit_memo", "m1", "invoice", "i1", "-20"))
	want("i1", "30", "m1", "20")
	// A refund of the payment's unapplied part.
	c.doc("refund", "r1", "10")
	want("r1", "10")
	c.must(201, "/api/applications", "ra1", app("ra1", "refund", "r1", "payment", "p1", "10"))
	want("r1", "0", "p1", "2.5")
	// The last 2.5 to the customer's credit balance.
	c.must(201, "/api/applications", "pa4", app("pa4", "payment", "p1", "", "", "2.5"))
	want("p1", "0")
	cb := c.sim.CustomerBalances()
	if len(cb) != 1 || cb[0].Customer != "ERP-1" || cb[0].Currency != "USD" || !cb[0].Receivable.Equal(decimal.RequireFromString("50")) ||
		!cb[0].Credits.Equal(decimal.RequireFromString("20")) || !cb[0].CreditBalance.Equal(decimal.RequireFromString("2.5")) {
		t.Fatalf("customer balances %+v", cb)
	}
	// Zuora cancels the payment application to i2 (its status turned Cancelled).
	c.must(201, "/api/reversals", "pa2:cancel", `{"reversal":{"zuora_id":"pa2","doc_type":"payment_application","customer":"ERP-1","currency":"USD","amount":30,"date":"2026-11-26","reason":"Cancelled"}}`)
	want("i2", "50", "p1", "30")
	// Zuora cancels the refund: with the refund reversed, its application no longer counts.
	c.must(201, "/api/reversals", "r1:cancel", reversal("r1", "refund", "10", "Canceled"))
	want("r1", "0", "p1", "40")
	// Zuora cancels the payment: the document and everything it applied stop counting.
	c.must(201, "/api/reversals", "p1:cancel", reversal("p1", "payment", "120", "Canceled"))
	want("p1", "0", "i1", "100", "i2", "50", "d1", "7.5")
	cb = c.sim.CustomerBalances()
	if !cb[0].Receivable.Equal(decimal.RequireFromString("157.5")) || !cb[0].CreditBalance.IsZero() {
		t.Fatalf("customer balances after the cancel %+v", cb)
	}
	// An application of a reversed document is refused; so is reversing one twice.
	c.must(422, "/api/applications", "pa5", app("pa5", "payment", "p1", "invoice", "i1", "1"))
	c.must(422, "/api/reversals", "pa2:again", `{"reversal":{"zuora_id":"pa2","doc_type":"payment_application","customer":"ERP-1","currency":"USD","amount":30,"date":"2026-11-26","reason":"x"}}`)
	docs := c.sim.ARDocuments()
	if len(docs) != 6 {
		t.Fatalf("%d AR documents", len(docs))
	}
	for _, d := range docs {
		if d.ZuoraID == "p1" && (d.Live || !d.Open.IsZero()) {
			t.Fatalf("reversed payment %+v", d)
		}
	}
}

func get(t *testing.T, c *arClient, path, auth string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.srv.URL+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("GET %s: %d %q", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

func TestReadEndpoints(t *testing.T) {
	c := newAR(t, Options{})
	inv := c.doc("invoice", "i1", "100.10")
	c.doc("payment", "p1", "40")
	a := c.must(201, "/api/applications", "a1", app("a1", "payment", "p1", "invoice", "i1", "40"))
	status, m := get(t, c, "/api/documents/i1", "Bearer "+token)
	if status != 200 || m["zuora_id"] != "i1" || m["doc_type"] != "invoice" || m["erp_id"] != inv.id || m["live"] != true ||
		m["amount"] != json.Number("100.1") || m["open_balance"] != json.Number("60.1") || m["currency"] != "USD" ||
		m["customer"] != "ERP-1" || m["number"] != "N-i1" {
		t.Fatalf("document %d %v", status, m)
	}
	status, m = get(t, c, "/api/applications/a1", "Bearer "+token)
	if status != 200 || m["erp_id"] != a.id || m["kind"] != "payment" || m["source_zuora_id"] != "p1" || m["target_type"] != "invoice" ||
		m["target_zuora_id"] != "i1" || m["amount"] != json.Number("40") || m["live"] != true || m["counts"] != true {
		t.Fatalf("application %d %v", status, m)
	}
	c.must(201, "/api/reversals", "p1:x", reversal("p1", "payment", "40", "Canceled"))
	if _, m = get(t, c, "/api/applications/a1", "Bearer "+token); m["live"] != true || m["counts"] != false {
		t.Fatalf("application of a reversed payment %v", m)
	}
	if _, m = get(t, c, "/api/documents/p1", "Bearer "+token); m["live"] != false || m["open_balance"] != json.Number("0") {
		t.Fatalf("reversed payment %v", m)
	}
	if status, _ = get(t, c, "/api/documents/nope", "Bearer "+token); status != 404 {
		t.Fatalf("unknown document: %d", status)
	}
	if status, _ = get(t, c, "/api/applications/nope", "Bearer "+token); status != 404 {
		t.Fatalf("unknown application: %d", status)
	}
	if status, _ = get(t, c, "/api/documents/i1", ""); status != 401 {
		t.Fatalf("no token: %d", status)
	}
}

func TestARFaultKnobs(t *testing.T) {
	c := newAR(t, Options{})
	c.doc("invoice", "i1", "100")
	c.doc("payment", "p1", "40")
	c.sim.SetFaults(Faults{Outage: true})
	c.must(503, "/api/applications", "a1", app("a1", "payment", "p1", "invoice", "i1", "40"))
	c.must(503, "/api/reversals", "r1", reversal("i1", "invoice", "100", "x"))
	if status, _ := get(t, c, "/api/documents/i1", "Bearer "+token); status != 503 {
		t.Fatalf("read during an outage: %d", status)
	}
	c.sim.SetFaults(Faults{RejectKeys: map[string]string{"a1": "period closed"}})
	if r := c.must(422, "/api/applications", "a1", app("a1", "payment", "p1", "invoice", "i1", "40")); r.errMsg != "period closed" {
		t.Fatalf("reject says %q", r.errMsg)
	}
	c.sim.SetFaults(Faults{CommitThenStall: 1})
	impatient := &http.Client{Timeout: 100 * time.Millisecond}
	if _, err := post(t, impatient, c.srv.URL, "/api/applications", "a1", "Bearer "+token, app("a1", "payment", "p1", "invoice", "i1", "40")); err == nil {
		t.Fatal("the stalled post was answered")
	}
	if n := len(c.sim.Applications()); n != 1 {
		t.Fatalf("%d applications stored by the stalled post, want 1", n)
	}
	c.must(200, "/api/applications", "a1", app("a1", "payment", "p1", "invoice", "i1", "40"))
	c.open("i1", "60")
	c.sim.SetFaults(Faults{FailNext: 1, FailStatus: 500})
	c.must(500, "/api/reversals", "r1", reversal("i1", "invoice", "100", "x"))
	c.must(201, "/api/reversals", "r1", reversal("i1", "invoice", "100", "x"))
}

func TestARAdminEndpoints(t *testing.T) {
	c := newAR(t, Options{})
	c.doc("invoice", "i1", "100")
	c.doc("payment", "p1", "40")
	c.must(201, "/api/applications", "a1", app("a1", "payment", "p1", "invoice", "i1", "40"))
	c.must(201, "/api/reversals", "r1", reversal("p1", "payment", "40", "x"))
	for path, n := range map[string]int{"applications": 1, "reversals": 1, "balances": 1} {
		req, _ := http.NewRequest(http.MethodGet, c.srv.URL+AdminPrefix+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var list []map[string]any
		json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(list) != n {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, list)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, c.srv.URL+AdminPrefix+"preload",
		strings.NewReader(`[{"zuora_id":"old","type":"invoice","number":"INV-OLD","customer":"ERP-1","currency":"USD","amount":"12.5"}]`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.srv.Client().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("preload: %v %v", resp, err)
	}
	resp.Body.Close()
	c.open("old", "12.5")
}
