package erpsim

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
)

const token = "erp-test-token"

const invoiceBody = `{"invoice":{"zuora_id":"z1","number":"INV1","customer":"ERP-1","currency":"USD","date":"2026-11-25","amount":1234.50,"items":[{"zuora_id":"i1","description":"Gold","quantity":1,"unit_price":1000,"amount":1000,"tax_amount":234.5}]}}`

type reply struct {
	status   int
	id       string
	errMsg   string
	retry    string
	replayed bool
}

func post(t *testing.T, c *http.Client, url, path, key, auth, body string) (reply, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	var out struct{ ID, Error string }
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, data)
	}
	return reply{status: resp.StatusCode, id: out.ID, errMsg: out.Error, retry: resp.Header.Get("Retry-After"),
		replayed: resp.Header.Get(ReplayedHeader) == "true"}, nil
}

func newServer(t *testing.T) (*Sim, *httptest.Server) {
	t.Helper()
	sim := New(Options{Token: token})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

func TestValidationAndAuth(t *testing.T) {
	bearer := "Bearer " + token
	tests := []struct {
		name, path, key, auth, body string
		status                      int
		errHas                      string
	}{
		{"created", "/api/invoices", "k1", bearer, invoiceBody, 201, ""},
		{"no token", "/api/invoices", "k2", "", invoiceBody, 401, "token"},
		{"wrong token", "/api/invoices", "k2", "Bearer nope", invoiceBody, 401, "token"},
		{"no key", "/api/invoices", "", bearer, invoiceBody, 400, "Idempotency-Key"},
		{"unknown endpoint", "/api/widgets", "k3", bearer, invoiceBody, 404, "no endpoint"},
		{"not json", "/api/invoices", "k4", bearer, `{"invoice":`, 422, "not a JSON object"},
		{"wrong top key", "/api/payments", "k5", bearer, invoiceBody, 422, `"payment"`},
		{"two top keys", "/api/payments", "k6", bearer, `{"payment":{},"invoice":{}}`, 422, "exactly one"},
		{"missing customer", "/api/payments", "k7", bearer, `{"payment":{"zuora_id":"p","number":"P1","currency":"USD","date":"2026-11-25","amount":5}}`, 422, "payment.customer"},
		{"amount as string", "/api/payments", "k8", bearer, `{"payment":{"zuora_id":"p","number":"P1","customer":"C","currency":"USD","date":"2026-11-25","amount":"5"}}`, 422, "payment.amount"},
		{"payment ok without items", "/api/payments", "k9", bearer, `{"payment":{"zuora_id":"p","number":"P1","customer":"C","currency":"USD","date":"2026-11-25","amount":5}}`, 201, ""},
		{"memo without items", "/api/credit-memos", "k10", bearer, `{"credit_memo":{"zuora_id":"c","number":"CM1","customer":"C","currency":"USD","date":"2026-11-25","amount":5}}`, 422, "credit_memo.items"},
		{"item without tax", "/api/debit-memos", "k11", bearer, `{"debit_memo":{"zuora_id":"d","number":"DM1","customer":"C","currency":"USD","date":"2026-11-25","amount":5,"items":[{"zuora_id":"i","description":"x","quantity":1,"unit_price":5,"amount":5}]}}`, 422, "items[0].tax_amount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newServer(t)
			got, err := post(t, srv.Client(), srv.URL, tt.path, tt.key, tt.auth, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if got.status != tt.status || !strings.Contains(got.errMsg, tt.errHas) {
				t.Fatalf("got %d %q; want %d with %q", got.status, got.errMsg, tt.status, tt.errHas)
			}
			if tt.status == 201 && got.id == "" {
				t.Fatal("201 without an id")
			}
		})
	}
}

func TestIdempotency(t *testing.T) {
	sim, srv := newServer(t)
	c, bearer := srv.Client(), "Bearer "+token
	first, err := post(t, c, srv.URL, "/api/invoices", "z1", bearer, invoiceBody)
	if err != nil || first.status != 201 || first.replayed {
		t.Fatalf("first post = %+v, %v; want 201", first, err)
	}
	// Same document, other key order and 1234.5 instead of 1234.50: the same body.
	same := `{"invoice":{"amount":1234.5,"number":"INV1","zuora_id":"z1","customer":"ERP-1","currency":"USD","date":"2026-11-25","items":[{"zuora_id":"i1","description":"Gold","quantity":1.0,"unit_price":1000,"amount":1000,"tax_amount":234.50}]}}`
	again, err := post(t, c, srv.URL, "/api/invoices", "z1", bearer, same)
	if err != nil || again.status != 200 || again.id != first.id || !again.replayed {
		t.Fatalf("repeat = %+v, %v; want 200 replayed with id %s", again, err, first.id)
	}
	changed := strings.Replace(invoiceBody, "1234.50", "1234.51", 1)
	conflict, err := post(t, c, srv.URL, "/api/invoices", "z1", bearer, changed)
	if err != nil || conflict.status != 409 || conflict.errMsg == "" {
		t.Fatalf("changed body = %+v, %v; want 409 with a message", conflict, err)
	}
	docs := sim.Documents()
	if len(docs) != 1 {
		t.Fatalf("stored %d documents; want 1", len(docs))
	}
	if d := docs[0]; d.Type != "invoice" || d.Key != "z1" || d.ID != first.id || !d.Amount.Equal(decimal.RequireFromString("1234.5")) || d.Customer != "ERP-1" {
		t.Fatalf("document = %+v", d)
	}
	reqs := sim.Requests()
	if len(reqs) != 3 || reqs[0].Status != 201 || reqs[1].Status != 200 || !reqs[1].Replayed || reqs[2].Status != 409 {
		t.Fatalf("request log = %+v", reqs)
	}
	if string(reqs[2].Body) != changed {
		t.Fatalf("request log body = %s; want what was sent", reqs[2].Body)
	}
}

func TestAmountsAreExact(t *testing.T) {
	sim, srv := newServer(t)
	// More digits than a float64 holds.
	body := `{"payment":{"zuora_id":"p","number":"P1","customer":"C","currency":"USD","date":"2026-11-25","amount":12345678901234567890.123456789}}`
	if r, err := post(t, srv.Client(), srv.URL, "/api/payments", "p", "Bearer "+token, body); err != nil || r.status != 201 {
		t.Fatalf("post = %+v, %v", r, err)
	}
	if got := sim.Documents()[0].Amount.String(); got != "12345678901234567890.123456789" {
		t.Fatalf("amount = %s", got)
	}
	// A last-digit change is another body.
	other := strings.Replace(body, "456789}", "456788}", 1)
	if r, _ := post(t, srv.Client(), srv.URL, "/api/payments", "p", "Bearer "+token, other); r.status != 409 {
		t.Fatalf("last-digit change = %d; want 409", r.status)
	}
}

func TestConcurrentSameKeyStoresOnce(t *testing.T) {
	sim, srv := newServer(t)
	var wg sync.WaitGroup
	ids := make([]string, 20)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := post(t, srv.Client(), srv.URL, "/api/invoices", "z1", "Bearer "+token, invoiceBody)
			if err == nil {
				ids[i] = r.id
			}
		}()
	}
	wg.Wait()
	if n := len(sim.Documents()); n != 1 {
		t.Fatalf("stored %d documents; want 1", n)
	}
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Fatalf("ids = %v; want one id everywhere", ids)
		}
	}
}

func TestFaults(t *testing.T) {
	bearer := "Bearer " + token
	t.Run("outage", func(t *testing.T) {
		sim, srv := newServer(t)
		sim.SetFaults(Faults{Outage: true})
		for range 3 {
			if r, _ := post(t, srv.Client(), srv.URL, "/api/invoices", "z1", bearer, invoiceBody); r.status != 503 {
				t.Fatalf("status = %d; want 503", r.status)
			}
		}
		sim.SetFaults(Faults{})
		if r, _ := post(t, srv.Client(), srv.URL, "/api/invoices", "z1", bearer, invoiceBody); r.status != 201 {
			t.Fatalf("after the outage status = %d; want 201", r.status)
		}
		if len(sim.Documents()) != 1 {
			t.Fatal("the outage stored documents")
		}
	})
	t.Run("fail next", func(t *testing.T) {
		sim, srv := newServer(t)
		sim.SetFaults(Faults{FailNext: 2, FailStatus: 500})
		var got []int
		for range 3 {
			r, _ := post(t, srv.Client(), srv.URL, "/api/invoices", "z1", bearer, invoiceBody)
			got = append(got, r.status)
		}
		if got[0] != 500 || got[1] != 500 || got[2] != 201 {
			t.Fatalf("statuses = %v; want 500 500 201", got)
		}
	})
	t.Run("429 storm", func(t *testing.T) {
		sim, srv := newServer(t)
		sim.SetFaults(Faults{Storm429: 2, RetryAfter: 1500 * time.Millisecond})
		r, _ := post(t, srv.Client(), srv.URL, "/api/invoices", "z1", bearer, invoiceBody)
		if r.status != 429 || r.retry != "2" {
			t.Fatalf("got %d Retry-After %q; want 429 and 2", r.status, r.retry)
		}
		if f := sim.Faults(); f.Storm429 != 1 {
			t.Fatalf("storm counter = %d; want 1 left", f.Storm429)
		}
	})
	t.Run("reject key and customer", func(t *testing.T) {
		sim, srv := newServer(t)
		sim.SetFaults(Faults{RejectKeys: map[string]string{"z1": "period closed"}, RejectCustomers: map[string]string{"ERP-9": "customer on hold"}})
		if r, _ := post(t, srv.Client(), srv.URL, "/api/invoices", "z1", bearer, invoiceBody); r.status != 422 || r.errMsg != "period closed" {
			t.Fatalf("rejected key = %+v", r)
		}
		other := strings.Replace(invoiceBody, "ERP-1", "ERP-9", 1)
		if r, _ := post(t, srv.Client(), srv.URL, "/api/invoices", "z2", bearer, other); r.status != 422 || r.errMsg != "customer on hold" {
			t.Fatalf("rejected customer = %+v", r)
		}
		if len(sim.Documents()) != 0 {
			t.Fatal("a rejected document was stored")
		}
	})
	t.Run("latency", func(t *testing.T) {
		sim, srv := newServer(t)
		sim.SetFaults(Faults{Latency: 50 * time.Millisecond})
		start := time.Now()
		if r, _ := post(t, srv.Client(), srv.URL, "/api/invoices", "z1", bearer, invoiceBody); r.status != 201 {
			t.Fatalf("status = %d", r.status)
		}
		if time.Since(start) < 50*time.Millisecond {
			t.Fatal("answered before the latency")
		}
	})
}

func TestCommitThenTimeout(t *testing.T) {
	sim, srv := newServer(t)
	sim.SetFaults(Faults{CommitThenStall: 1})
	c := &http.Client{Timeout: 100 * time.Millisecond}
	_, err := post(t, c, srv.URL, "/api/invoices", "z1", "Bearer "+token, invoiceBody)
	var netErr interface{ Timeout() bool }
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("err = %v; want a client timeout", err)
	}
	docs := sim.Documents()
	if len(docs) != 1 {
		t.Fatalf("stored %d documents; want the committed one", len(docs))
	}
	r, err := post(t, srv.Client(), srv.URL, "/api/invoices", "z1", "Bearer "+token, invoiceBody)
	if err != nil || r.status != 200 || r.id != docs[0].ID {
		t.Fatalf("retry = %+v, %v; want 200 with id %s", r, err, docs[0].ID)
	}
	if n := len(sim.Documents()); n != 1 {
		t.Fatalf("stored %d documents after the retry; want 1", n)
	}
	if reqs := sim.Requests(); len(reqs) != 2 || reqs[0].Status != 0 {
		t.Fatalf("request log = %+v; want the dropped request with status 0", reqs)
	}
}

func TestFlagsAndDefaultToken(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	o.RegisterFlags(fs)
	if err := fs.Parse([]string{"-erp-outage", "-erp-429", "3", "-erp-retry-after", "2s"}); err != nil {
		t.Fatal(err)
	}
	if !o.Faults.Outage || o.Faults.Storm429 != 3 || o.Faults.RetryAfter != 2*time.Second || o.TokenOrDefault() != DefaultToken {
		t.Fatalf("options = %+v", o)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.HasPrefix(f.Name, "erp-") {
			t.Errorf("flag %s lacks the erp- prefix", f.Name)
		}
	})
	srv := httptest.NewServer(New(Options{}))
	defer srv.Close()
	if r, _ := post(t, srv.Client(), srv.URL, "/api/invoices", "z1", "Bearer "+DefaultToken, invoiceBody); r.status != 201 {
		t.Fatalf("default token = %d; want 201", r.status)
	}
	if r, _ := post(t, srv.Client(), srv.URL, "/api/invoices", "z2", "Bearer ", invoiceBody); r.status != 401 {
		t.Fatalf("empty bearer = %d; want 401", r.status)
	}
}

func TestAdminEndpoints(t *testing.T) {
	sim, srv := newServer(t)
	call := func(method, path, auth, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	bearer := "Bearer " + token
	if code, _ := call(http.MethodPut, "/_sim/faults", "", `{"outage":true}`); code != 401 {
		t.Fatalf("admin without token = %d; want 401", code)
	}
	if code, body := call(http.MethodPut, "/_sim/faults", bearer, `{"outage":true,"reject_keys":{"k":"no"}}`); code != 200 {
		t.Fatalf("PUT faults = %d %s", code, body)
	}
	if f := sim.Faults(); !f.Outage || f.RejectKeys["k"] != "no" {
		t.Fatalf("faults after PUT = %+v", f)
	}
	if r, _ := post(t, srv.Client(), srv.URL, "/api/invoices", "z1", bearer, invoiceBody); r.status != 503 {
		t.Fatalf("status during the outage = %d", r.status)
	}
	call(http.MethodPut, "/_sim/faults", bearer, `{}`)
	if r, _ := post(t, srv.Client(), srv.URL, "/api/invoices", "z1", bearer, invoiceBody); r.status != 201 {
		t.Fatalf("status after the outage = %d", r.status)
	}
	code, body := call(http.MethodGet, "/_sim/documents", bearer, "")
	if code != 200 || !strings.Contains(body, `"key":"z1"`) || !strings.Contains(body, `"amount":"1234.5"`) {
		t.Fatalf("GET documents = %d %s", code, body)
	}
	if n := len(sim.Requests()); n != 2 {
		t.Fatalf("request log has %d entries; want only the 2 API calls", n)
	}
}

func TestIDPrefixesCoverEveryDocType(t *testing.T) {
	testutil.CoversDocTypes(t, "erpsim.idPrefix", idPrefix)
}
