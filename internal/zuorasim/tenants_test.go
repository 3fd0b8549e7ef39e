package zuorasim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// Conformance cases for the behaviours of real tenants that the first contract
// missed (issue 10); each is off by default.
func init() {
	conformanceCases = append(conformanceCases, tenantCases...)
}

var tenantCases = []conformanceCase{
	{name: "tenant/LowerCamelCustomFields lowers the first letter of custom field keys", opts: Options{LowerCamelCustomFields: true}, run: func(t *testing.T, h *harness) {
		p := h.list("/object-query/invoices", q("expand[]", "account", "account.fields[]", "id,ERPAccountId__c", "pageSize", "99"))
		seen := 0
		for _, r := range p.Data {
			acc := r["account"].(map[string]any)
			if _, ok := acc["ERPAccountId__c"]; ok {
				t.Fatalf("API name sent: %v", acc)
			}
			if acc["eRPAccountId__c"] != nil {
				seen++
			}
		}
		if seen == 0 {
			t.Fatal("no eRPAccountId__c on the page")
		}
		acc := find(t, h.sim, "accounts", func(r map[string]any) bool { return r["ERPAccountId__c"] != nil })
		got := h.list("/object-query/accounts", q("filter[]", "ERPAccountId__c.EQ:"+acc["ERPAccountId__c"].(string)))
		if len(got.Data) != 1 || got.Data[0]["eRPAccountId__c"] != acc["ERPAccountId__c"] || got.Data[0]["accountNumber"] == nil {
			t.Fatalf("filter on the API name: %v", got.Data)
		}
	}},
	{name: "tenant/OffsetCursorObjects pages invoices and items by offset, others by keyset", opts: Options{OffsetCursorObjects: []string{"invoices", "invoice-items"}}, run: func(t *testing.T, h *harness) {
		if p := h.list("/object-query/invoices", nil); *p.NextPage != "MTA=" {
			t.Fatalf("invoices nextPage %q, want MTA=", *p.NextPage)
		}
		if p := h.list("/object-query/payments", nil); strings.HasPrefix(*p.NextPage, "MT") || len(*p.NextPage) < 20 {
			t.Fatalf("payments nextPage %q, want a keyset", *p.NextPage)
		}
		if n := len(h.walk("/object-query/invoices", q("sort[]", "updateddate.ASC"))); n != 80 {
			t.Fatalf("walk %d", n)
		}
	}},
	{name: "tenant/FilterTimesInTenantZone reads a Z filter as the tenant's wall clock", opts: Options{FilterTimesInTenantZone: true}, run: func(t *testing.T, h *harness) {
		// 14:30Z read in Los Angeles (-08:00) is 22:30Z.
		got := h.walk("/object-query/invoices", q("filter[]", "updateddate.GE:2026-11-25T14:30:00Z", "pageSize", "99"))
		want := 0
		cut := time.Date(2026, 11, 25, 22, 30, 0, 0, time.UTC)
		for _, r := range h.sim.Snapshot("invoices") {
			u, _ := time.Parse(time.RFC3339, r["updatedDate"].(string))
			if !u.Before(cut) {
				want++
			}
		}
		if len(got) != want || want == 0 || want == 80 {
			t.Fatalf("%d records, want the %d updated at or after %s", len(got), want, cut)
		}
	}},
	{name: "tenant/NoInvoiceSettlement: memo objects answer 403 category 10", opts: Options{NoInvoiceSettlement: true}, run: func(t *testing.T, h *harness) {
		for _, p := range []string{"/object-query/credit-memos", "/object-query/debit-memo-items"} {
			resp, body := h.get(p, q("filter[]", "id.NE:x"))
			wantReasons(t, resp, body, 403, 50000010)
		}
		resp, body := h.do(http.MethodPut, "/v1/credit-memos/bulk", nil, "application/json", strings.NewReader(`{"memos":[{"id":"x"}]}`), true)
		wantReasons(t, resp, body, 403, 51000010)
		if p := h.list("/object-query/invoices", nil); len(p.Data) != 10 {
			t.Fatalf("invoices: %d", len(p.Data))
		}
	}},
	{name: "tenant/RequireEntityID refuses requests without Zuora-Entity-Ids, the token call included", opts: Options{RequireEntityID: "ent-1"}, run: func(t *testing.T, h *harness) {
		if p := h.list("/object-query/invoices", nil); len(p.Data) != 10 {
			t.Fatalf("with the header: %d", len(p.Data))
		}
		h.entity = ""
		resp, body := h.get("/object-query/invoices", nil)
		wantReasons(t, resp, body, 400, 50000020)
		resp, body = h.do(http.MethodPost, "/oauth/token", nil, form, tokenForm(DefaultClientID, DefaultClientSecret, "client_credentials"), false)
		wantReasons(t, resp, body, 400, 50000020)
		resp, body = h.do(http.MethodGet, "/object-query/invoices", http.Header{"Zuora-Entity-Ids": {"ent-2"}}, "", nil, true)
		wantReasons(t, resp, body, 400, 50000020)
	}},
	{name: "tenant/ActionRefusesCreditMemoRefunds; PUT /v1/refunds and /v1/payments set financeInformation", opts: Options{ActionRefusesCreditMemoRefunds: true}, run: func(t *testing.T, h *harness) {
		for seed := int64(2); !slices.ContainsFunc(h.sim.Snapshot("refunds"), func(r map[string]any) bool { return r["sourceType"] == "CreditMemo" }); seed++ {
			h.sim.Load(Generate(seed, DefaultVolume(), genFrom, genTo))
		}
		cm := find(t, h.sim, "refunds", func(r map[string]any) bool { return r["sourceType"] == "CreditMemo" })
		pay := find(t, h.sim, "refunds", func(r map[string]any) bool { return r["sourceType"] == "Payment" })
		res := h.action("", actionBody("Refund", map[string]any{"Id": idOf(cm), "TransferredToAccounting": "Yes"},
			map[string]any{"Id": idOf(pay), "TransferredToAccounting": "Yes"}))
		if res[0].Success || res[0].Errors[0].Code != "INVALID_TYPE" || !res[1].Success || h.sim.Transferred(idOf(cm)) == "Yes" {
			t.Fatalf("%+v", res)
		}
		before := h.sim.Stats().MarksApplied
		resp, body := h.do(http.MethodPut, "/v1/refunds/"+idOf(cm), nil, "application/json", strings.NewReader(`{"financeInformation":{"transferredToAccounting":"Yes"}}`), true)
		out := decode[map[string]any](t, body)
		if resp.StatusCode != 200 || out["success"] != true || h.sim.Transferred(idOf(cm)) != "Yes" || h.sim.Stats().MarksApplied != before+1 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		p := h.sim.Snapshot("payments")[0]
		resp, body = h.do(http.MethodPut, "/v1/payments/"+idOf(p), nil, "application/json", strings.NewReader(`{"financeInformation":{"transferredToAccounting":"Yes"}}`), true)
		if resp.StatusCode != 200 || h.sim.Transferred(idOf(p)) != "Yes" {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		resp, body = h.do(http.MethodPut, "/v1/refunds/nope", nil, "application/json", strings.NewReader(`{"financeInformation":{"transferredToAccounting":"Yes"}}`), true)
		wantReasons(t, resp, body, 404, 50000040)
		resp, body = h.do(http.MethodPut, "/v1/refunds/"+idOf(cm), nil, "application/json", strings.NewReader(`{"financeInformation":{"transferredToAccounting":"Maybe"}}`), true)
		wantReasons(t, resp, body, 400, 50000020)
	}},
	{name: "tenant/Conflict409Every answers memo bulk and v1 PUTs 409 with category 50", opts: Options{Faults: Faults{Conflict409Every: 2}}, run: func(t *testing.T, h *harness) {
		m := h.sim.Snapshot("credit-memos")[0]
		body := `{"memos":[{"id":"` + idOf(m) + `","transferredToAccounting":"Yes"}]}`
		var codes []int
		for range 2 {
			resp, raw := h.do(http.MethodPut, "/v1/credit-memos/bulk", nil, "application/json", strings.NewReader(body), true)
			codes = append(codes, resp.StatusCode)
			if resp.StatusCode == 409 {
				wantReasons(t, resp, raw, 409, 51000050)
			}
		}
		if fmt.Sprint(codes) != "[200 409]" {
			t.Fatalf("codes %v", codes)
		}
	}},
	{name: "tenant/ActionCode fails every Nth written object with that code", opts: Options{Faults: Faults{ActionCode: "REQUEST_EXCEEDED_RATE", ActionCodeEvery: 2}}, run: func(t *testing.T, h *harness) {
		var objs []map[string]any
		for _, r := range h.sim.Snapshot("payments")[:4] {
			objs = append(objs, map[string]any{"Id": idOf(r), "TransferredToAccounting": "Yes"})
		}
		res := h.action("", actionBody("Payment", objs...))
		if !res[0].Success || res[1].Success || res[1].Errors[0].Code != "REQUEST_EXCEEDED_RATE" || res[3].Errors[0].Code != "REQUEST_EXCEEDED_RATE" {
			t.Fatalf("%+v", res)
		}
		m := h.sim.Snapshot("debit-memos")[0]
		h.sim.SetFaults(Faults{ActionCode: "TRANSACTION_TIMEOUT", ActionCodeEvery: 1})
		_, raw := h.do(http.MethodPut, "/v1/debit-memos/bulk", nil, "application/json", strings.NewReader(`{"memos":[{"id":"`+idOf(m)+`","transferredToAccounting":"Yes"}]}`), true)
		if !strings.Contains(string(raw), `"code":52000061`) {
			t.Fatalf("%s", raw)
		}
	}},
	{name: "tenant/NoRetryAfter: 429 carries RateLimit-* headers only", opts: Options{Faults: Faults{RateLimit: 1, NoRetryAfter: true}}, run: func(t *testing.T, h *harness) {
		h.get("/object-query/accounts", nil)
		h.clock.Advance(15 * time.Second)
		resp, body := h.get("/object-query/accounts", nil)
		wantReasons(t, resp, body, 429, 50000070)
		if resp.Header.Get("Retry-After") != "" || resp.Header.Get("RateLimit-Reset") != "45" || resp.Header.Get("RateLimit-Remaining") != "0" ||
			!strings.Contains(resp.Header.Get("RateLimit-Limit"), "1;w=60") {
			t.Fatalf("headers %v", resp.Header)
		}
	}},
	{name: "tenant/HourlyLimit and DailyLimit cap requests per clock hour and day", opts: Options{Faults: Faults{HourlyLimit: 2, DailyLimit: 4}}, run: func(t *testing.T, h *harness) {
		// The clock starts at 01:00:00; ten minutes in, the hour has 50 minutes left.
		h.clock.Advance(10 * time.Minute)
		h.get("/object-query/accounts", nil)
		h.get("/object-query/accounts", nil)
		resp, body := h.get("/object-query/accounts", nil)
		wantReasons(t, resp, body, 429, 50000070)
		if resp.Header.Get("RateLimit-Reset") != "3000" || !strings.Contains(resp.Header.Get("RateLimit-Limit"), "2;w=3600") {
			t.Fatalf("hourly headers %v", resp.Header)
		}
		h.clock.Advance(time.Hour)
		h.token = h.newToken()
		if resp, _ := h.get("/object-query/accounts", nil); resp.StatusCode != 200 {
			t.Fatalf("next hour: %d", resp.StatusCode)
		}
		resp, _ = h.get("/object-query/accounts", nil)
		if resp.StatusCode != 429 || !strings.Contains(resp.Header.Get("RateLimit-Limit"), "4;w=86400") || resp.Header.Get("RateLimit-Reset") != "78600" {
			t.Fatalf("daily: %d %v", resp.StatusCode, resp.Header)
		}
	}},
	{name: "tenant/NumbersAsDoubles writes the same amounts in other JSON forms", opts: Options{NumbersAsDoubles: true}, run: func(t *testing.T, h *harness) {
		_, raw := h.get("/object-query/invoices", q("pageSize", "99", "fields[]", "id,amount,taxAmount,balance,creditMemoAmount"))
		text := string(raw)
		for _, form := range []string{"E", "-0.0", "0.0,"} {
			if !strings.Contains(text, form) {
				t.Errorf("no %q in the answer", form)
			}
		}
		var p struct {
			Data []map[string]any `json:"data"`
		}
		dec := json.NewDecoder(strings.NewReader(text))
		dec.UseNumber()
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		want := map[string]map[string]any{}
		for _, r := range h.sim.Snapshot("invoices") {
			want[idOf(r)] = r
		}
		for _, r := range p.Data {
			id := r["id"].(string)
			for _, f := range []string{"amount", "taxAmount", "balance"} {
				got := decimal.RequireFromString(string(r[f].(json.Number)))
				exp := decimal.RequireFromString(string(want[id][f].(json.Number)))
				if !got.Equal(exp) {
					t.Fatalf("%s %s: %s, want %s", id, f, r[f], exp)
				}
			}
		}
	}},
}
