package zuorasim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// conformanceCase drives the simulator purely over HTTP and checks one
// documented behaviour of docs/zuora-api.md.
type conformanceCase struct {
	name string
	opts Options
	run  func(t *testing.T, h *harness)
}

func TestConformance(t *testing.T) {
	for _, c := range conformanceCases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newHarness(t, c.opts))
		})
	}
	if len(conformanceCases) < 40 {
		t.Fatalf("only %d conformance cases", len(conformanceCases))
	}
}

var dtPattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$`)

func tokenForm(id, secret, grant string) *strings.Reader {
	return strings.NewReader(url.Values{"client_id": {id}, "client_secret": {secret}, "grant_type": {grant}}.Encode())
}

const form = "application/x-www-form-urlencoded"

func actionBody(typ string, objs ...map[string]any) *strings.Reader {
	b, _ := json.Marshal(map[string]any{"type": typ, "objects": objs})
	return strings.NewReader(string(b))
}

type actionResp []struct {
	ID      string `json:"Id"`
	Success bool   `json:"Success"`
	Errors  []struct {
		Code    string `json:"Code"`
		Message string `json:"Message"`
	} `json:"Errors"`
}

func (h *harness) action(query string, body *strings.Reader) actionResp {
	h.t.Helper()
	resp, raw := h.do(http.MethodPost, "/v1/action/update"+query, nil, "application/json", body, true)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("action: status %d: %s", resp.StatusCode, raw)
	}
	return decode[actionResp](h.t, raw)
}

func posted(r map[string]any) bool { return r["status"] == "Posted" }

func idOf(r map[string]any) string { return r["id"].(string) }

var conformanceCases = []conformanceCase{
	// --- OAuth ---
	{name: "token/issued with form credentials", run: func(t *testing.T, h *harness) {
		resp, body := h.do(http.MethodPost, "/oauth/token", nil, form, tokenForm(DefaultClientID, DefaultClientSecret, "client_credentials"), false)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		tok := decode[map[string]any](t, body)
		if tok["token_type"] != "bearer" || tok["expires_in"] != json.Number("3599") || len(tok["access_token"].(string)) < 20 || tok["jti"] == nil || tok["scope"] == nil {
			t.Fatalf("token body %s", body)
		}
		if got := h.sim.Stats().TokensIssued; got != 2 {
			t.Fatalf("TokensIssued %d, want 2", got)
		}
	}},
	{name: "token/wrong secret is 401 and never echoed", run: func(t *testing.T, h *harness) {
		resp, body := h.do(http.MethodPost, "/oauth/token", nil, form, tokenForm(DefaultClientID, "wrong-secret-xyz", "client_credentials"), false)
		wantReasons(t, resp, body, 401, 50000011)
		if strings.Contains(string(body), "wrong-secret-xyz") {
			t.Fatal("secret echoed in error body")
		}
	}},
	{name: "token/custom credentials", opts: Options{ClientID: "cid", ClientSecret: "sec"}, run: func(t *testing.T, h *harness) {
		resp, _ := h.do(http.MethodPost, "/oauth/token", nil, form, tokenForm("cid", "sec", "client_credentials"), false)
		if resp.StatusCode != 200 {
			t.Fatalf("custom credentials: status %d", resp.StatusCode)
		}
		resp, _ = h.do(http.MethodPost, "/oauth/token", nil, form, tokenForm(DefaultClientID, DefaultClientSecret, "client_credentials"), false)
		if resp.StatusCode != 401 {
			t.Fatalf("default credentials on a custom tenant: status %d", resp.StatusCode)
		}
	}},
	{name: "token/unsupported grant_type is 400", run: func(t *testing.T, h *harness) {
		resp, body := h.do(http.MethodPost, "/oauth/token", nil, form, tokenForm(DefaultClientID, DefaultClientSecret, "password"), false)
		wantReasons(t, resp, body, 400, 50000020)
	}},
	{name: "token/expires after TokenTTL", opts: Options{TokenTTL: 10 * time.Minute}, run: func(t *testing.T, h *harness) {
		if resp, _ := h.get("/object-query/accounts", nil); resp.StatusCode != 200 {
			t.Fatalf("fresh token: %d", resp.StatusCode)
		}
		h.clock.Advance(10 * time.Minute)
		resp, body := h.get("/object-query/accounts", nil)
		wantReasons(t, resp, body, 401, 50000011)
		h.token = h.newToken()
		if resp, _ := h.get("/object-query/accounts", nil); resp.StatusCode != 200 {
			t.Fatalf("new token: %d", resp.StatusCode)
		}
	}},
	{name: "auth/missing or unknown token on Object Query is 401 with reasons", run: func(t *testing.T, h *harness) {
		resp, body := h.do(http.MethodGet, "/object-query/invoices", nil, "", nil, false)
		wantReasons(t, resp, body, 401, 50000011)
		h.token = "not-a-token"
		resp, body = h.get("/object-query/invoices", nil)
		wantReasons(t, resp, body, 401, 50000011)
	}},
	{name: "auth/action 401 is a message body with WWW-Authenticate", run: func(t *testing.T, h *harness) {
		h.token = "bogus"
		resp, body := h.do(http.MethodPost, "/v1/action/update", nil, "application/json", actionBody("Invoice"), true)
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Bearer realm=Zuora API") {
			t.Fatalf("status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if m := decode[map[string]any](t, body); m["message"] == nil {
			t.Fatalf("body %s", body)
		}
	}},

	// --- envelope and paging ---
	{name: "query/default pageSize is 10 with nextPage", run: func(t *testing.T, h *harness) {
		p := h.list("/object-query/invoices", nil)
		if len(p.Data) != 10 || p.NextPage == nil || *p.NextPage == "" {
			t.Fatalf("got %d records, nextPage %v", len(p.Data), p.NextPage)
		}
	}},
	{name: "query/no matches is exactly {data:[]}", run: func(t *testing.T, h *harness) {
		_, body := h.get("/object-query/invoices", q("filter[]", "invoicenumber.EQ:NOPE"))
		if strings.TrimSpace(string(body)) != `{"data":[]}` {
			t.Fatalf("body %s", body)
		}
	}},
	{name: "query/pageSize out of range is 400", run: func(t *testing.T, h *harness) {
		for _, ps := range []string{"0", "100", "-1", "ten"} {
			resp, body := h.get("/object-query/invoices", q("pageSize", ps))
			wantReasons(t, resp, body, 400, 50000027)
		}
		if p := h.list("/object-query/invoices", q("pageSize", "99")); len(p.Data) != 80 || p.NextPage != nil {
			t.Fatalf("pageSize 99: %d records, nextPage %v", len(p.Data), p.NextPage)
		}
	}},
	{name: "query/default order is updatedDate DESC then id DESC", run: func(t *testing.T, h *harness) {
		all := h.walk("/object-query/invoices", q("pageSize", "7"))
		for i := 1; i < len(all); i++ {
			a, b := all[i-1], all[i]
			ta, _ := time.Parse(time.RFC3339, a["updatedDate"].(string))
			tb, _ := time.Parse(time.RFC3339, b["updatedDate"].(string))
			if ta.Before(tb) || (ta.Equal(tb) && idOf(a) < idOf(b)) {
				t.Fatalf("record %d out of order: %v %s then %v %s", i, ta, idOf(a), tb, idOf(b))
			}
		}
	}},
	{name: "query/nextPage is base64 JSON keyset and absent on the last page", run: func(t *testing.T, h *harness) {
		p := h.list("/object-query/invoices", q("sort[]", "updateddate.ASC", "pageSize", "5"))
		raw, err := base64.StdEncoding.DecodeString(*p.NextPage)
		if err != nil {
			t.Fatal(err)
		}
		var ks []cursorEntry
		if err := json.Unmarshal(raw, &ks); err != nil || len(ks) != 2 {
			t.Fatalf("cursor %s: %v", raw, err)
		}
		last := p.Data[4]
		if ks[0].OrderBy.Field != "UpdatedDate" || ks[0].OrderBy.Order != "ASC" || ks[0].Value != last["updatedDate"] ||
			ks[1].OrderBy.Field != "Id" || ks[1].Value != last["id"] {
			t.Fatalf("cursor %s does not point after %v", raw, last["id"])
		}
		all := h.walk("/object-query/invoices", q("sort[]", "updateddate.ASC", "pageSize", "99"))
		if len(all) != 80 {
			t.Fatalf("walk: %d", len(all))
		}
	}},
	{name: "query/cursor made for another sort or tampered is 400", run: func(t *testing.T, h *harness) {
		p := h.list("/object-query/invoices", q("sort[]", "updateddate.ASC"))
		resp, body := h.get("/object-query/invoices", q("sort[]", "updateddate.DESC", "cursor", *p.NextPage))
		wantReasons(t, resp, body, 400, 50000027)
		resp, body = h.get("/object-query/invoices", q("cursor", "!!notbase64"))
		wantReasons(t, resp, body, 400, 50000027)
	}},
	{name: "query/OffsetCursor switch emits offsets like MTA=", opts: Options{OffsetCursor: true}, run: func(t *testing.T, h *harness) {
		p := h.list("/object-query/invoices", nil)
		if *p.NextPage != "MTA=" {
			t.Fatalf("nextPage %q, want MTA=", *p.NextPage)
		}
		if n := len(h.walk("/object-query/invoices", nil)); n != 80 {
			t.Fatalf("walk %d", n)
		}
	}},
	{name: "query/DefaultSort switch", opts: Options{DefaultSort: "invoicenumber.ASC"}, run: func(t *testing.T, h *harness) {
		p := h.list("/object-query/invoices", nil)
		if p.Data[0]["invoiceNumber"] != "INV00000001" || p.Data[1]["invoiceNumber"] != "INV00000002" {
			t.Fatalf("first numbers %v %v", p.Data[0]["invoiceNumber"], p.Data[1]["invoiceNumber"])
		}
	}},

	// --- sort ---
	{name: "sort/ASC on a number field", run: func(t *testing.T, h *harness) {
		all := h.walk("/object-query/payments", q("sort[]", "amount.ASC", "pageSize", "13"))
		for i := 1; i < len(all); i++ {
			a := decimal.RequireFromString(string(all[i-1]["amount"].(json.Number)))
			b := decimal.RequireFromString(string(all[i]["amount"].(json.Number)))
			if a.GreaterThan(b) {
				t.Fatalf("%s before %s", a, b)
			}
		}
		if len(all) != 50 {
			t.Fatalf("walk %d", len(all))
		}
	}},
	{name: "sort/only one field", run: func(t *testing.T, h *harness) {
		resp, body := h.get("/object-query/invoices", q("sort[]", "updateddate.ASC", "sort[]", "id.ASC"))
		wantReasons(t, resp, body, 400, 50000027)
	}},
	{name: "sort/unsortable, related, filter-only or bad direction is 400", run: func(t *testing.T, h *harness) {
		for _, c := range []struct{ obj, sort string }{
			{"invoices", "transferredtoaccounting.ASC"}, {"invoices", "account.name.ASC"},
			{"invoice-items", "fulfillmentid.ASC"}, {"invoices", "updateddate.UP"}, {"invoices", "updateddate"},
		} {
			qq := q("sort[]", c.sort, "filter[]", "id.NE:x")
			resp, body := h.get("/object-query/"+c.obj, qq)
			wantReasons(t, resp, body, 400, 50000027)
		}
	}},

	// --- filter ---
	{name: "filter/EQ is case-insensitive", run: func(t *testing.T, h *harness) {
		all := h.walk("/object-query/invoices", q("filter[]", "status.EQ:posted", "pageSize", "99"))
		want := 0
		for _, r := range h.sim.Snapshot("invoices") {
			if posted(r) {
				want++
			}
		}
		if len(all) != want || want == 0 || want == 80 {
			t.Fatalf("%d posted, want %d", len(all), want)
		}
	}},
	{name: "filter/NE and AND of repeated filters", run: func(t *testing.T, h *harness) {
		acc := h.sim.Snapshot("invoices")[0]["accountId"].(string)
		all := h.walk("/object-query/invoices", q("filter[]", "status.NE:Draft", "filter[]", "accountid.EQ:"+acc, "pageSize", "99"))
		want := 0
		for _, r := range h.sim.Snapshot("invoices") {
			if r["status"] != "Draft" && r["accountId"] == acc {
				want++
			}
		}
		if len(all) != want || want == 0 {
			t.Fatalf("%d, want %d", len(all), want)
		}
		for _, r := range all {
			if r["status"] == "Draft" || r["accountId"] != acc {
				t.Fatalf("record %v breaks the filters", r["id"])
			}
		}
	}},
	{name: "filter/LT GT LE GE compare numbers exactly", run: func(t *testing.T, h *harness) {
		pay := h.sim.Snapshot("payments")[3]
		amt := string(pay["amount"].(json.Number))
		le := h.walk("/object-query/payments", q("filter[]", "amount.LE:"+amt, "pageSize", "99"))
		gt := h.walk("/object-query/payments", q("filter[]", "amount.GT:"+amt, "pageSize", "99"))
		lt := h.walk("/object-query/payments", q("filter[]", "amount.LT:"+amt, "pageSize", "99"))
		ge := h.walk("/object-query/payments", q("filter[]", "amount.GE:"+amt, "pageSize", "99"))
		if len(le)+len(gt) != 50 || len(lt)+len(ge) != 50 || len(le) <= len(lt) || !slices.Contains(ids(le), idOf(pay)) || slices.Contains(ids(gt), idOf(pay)) {
			t.Fatalf("le %d gt %d lt %d ge %d", len(le), len(gt), len(lt), len(ge))
		}
	}},
	{name: "filter/dates in Z and offset form compare instants", run: func(t *testing.T, h *harness) {
		z := h.walk("/object-query/invoices", q("filter[]", "updateddate.GE:2026-11-25T22:30:00Z", "pageSize", "99"))
		off := h.walk("/object-query/invoices", q("filter[]", "updateddate.GE:2026-11-25T14:30:00-08:00", "pageSize", "99"))
		if len(z) == 0 || len(z) == 80 || !slices.Equal(ids(z), ids(off)) {
			t.Fatalf("Z %d records, offset %d", len(z), len(off))
		}
		cut := time.Date(2026, 11, 25, 22, 30, 0, 0, time.UTC)
		for _, r := range z {
			u, _ := time.Parse(time.RFC3339, r["updatedDate"].(string))
			if u.Before(cut) {
				t.Fatalf("%v before %v", u, cut)
			}
		}
	}},
	{name: "filter/a + offset must be sent as %2B; a raw + decodes to a space and is 400", run: func(t *testing.T, h *harness) {
		enc := h.walk("/object-query/invoices", q("filter[]", "updateddate.GE:2026-11-25T23:30:00+01:00", "pageSize", "99"))
		z := h.walk("/object-query/invoices", q("filter[]", "updateddate.GE:2026-11-25T22:30:00Z", "pageSize", "99"))
		if len(enc) == 0 || !slices.Equal(ids(enc), ids(z)) {
			t.Fatalf("%%2B offset %d records, Z %d", len(enc), len(z))
		}
		resp, body := h.do(http.MethodGet, "/object-query/invoices?filter[]=updateddate.GE:2026-11-25T23:30:00+01:00", nil, "", nil, true)
		wantReasons(t, resp, body, 400, 50000027)
	}},
	{name: "filter/date field GE and bad date is 400", run: func(t *testing.T, h *harness) {
		if p := h.list("/object-query/invoices", q("filter[]", "invoicedate.GE:2026-11-25", "pageSize", "99")); len(p.Data) != 80 {
			t.Fatalf("%d", len(p.Data))
		}
		if p := h.list("/object-query/invoices", q("filter[]", "invoicedate.GE:2026-11-26")); len(p.Data) != 0 {
			t.Fatalf("%d", len(p.Data))
		}
		resp, body := h.get("/object-query/invoices", q("filter[]", "invoicedate.GE:25/11/2026"))
		wantReasons(t, resp, body, 400, 50000027)
	}},
	{name: "filter/SW is a case-insensitive prefix", run: func(t *testing.T, h *harness) {
		all := h.walk("/object-query/invoices", q("filter[]", "invoicenumber.SW:inv0000001", "pageSize", "99"))
		if len(all) != 10 { // INV00000010 .. INV00000019
			t.Fatalf("%d", len(all))
		}
	}},
	{name: "filter/IN takes a bracketed list", run: func(t *testing.T, h *harness) {
		all := h.walk("/object-query/payments", q("filter[]", "status.IN:[Error,Canceled]", "pageSize", "99"))
		want := 0
		for _, r := range h.sim.Snapshot("payments") {
			if r["status"] == "Error" || r["status"] == "Canceled" {
				want++
			}
		}
		if len(all) != want || want == 0 {
			t.Fatalf("%d, want %d", len(all), want)
		}
		resp, body := h.get("/object-query/payments", q("filter[]", "status.IN:Error,Canceled"))
		wantReasons(t, resp, body, 400, 50000027)
	}},
	{name: "filter/null and empty string values", run: func(t *testing.T, h *harness) {
		nulls, set := 0, 0
		for _, r := range h.sim.Snapshot("accounts") {
			if r["crmId"] == nil {
				nulls++
			} else {
				set++
			}
		}
		if got := len(h.walk("/object-query/accounts", q("filter[]", "crmid.EQ:null", "pageSize", "99"))); got != nulls || nulls == 0 {
			t.Fatalf("EQ:null %d, want %d", got, nulls)
		}
		if got := len(h.walk("/object-query/accounts", q("filter[]", "crmid.NE:null", "pageSize", "99"))); got != set || set == 0 {
			t.Fatalf("NE:null %d, want %d", got, set)
		}
		if got := len(h.walk("/object-query/accounts", q("filter[]", "crmid.EQ:\x02\x03"))); got != 0 {
			t.Fatalf("EQ empty %d, want 0", got)
		}
		resp, body := h.get("/object-query/accounts", q("filter[]", "crmid.GT:null"))
		wantReasons(t, resp, body, 400, 50000027)
	}},
	{name: "filter/transferredtoaccounting is not filterable (400 reasons)", run: func(t *testing.T, h *harness) {
		resp, body := h.get("/object-query/invoices", q("filter[]", "transferredtoaccounting.EQ:Yes"))
		wantReasons(t, resp, body, 400, 50000027)
	}},
	{name: "filter/createddate only on payments", run: func(t *testing.T, h *harness) {
		resp, body := h.get("/object-query/invoices", q("filter[]", "createddate.GE:2026-01-01T00:00:00Z"))
		wantReasons(t, resp, body, 400, 50000027)
		if p := h.list("/object-query/payments", q("filter[]", "createddate.GE:2026-01-01T00:00:00Z")); len(p.Data) != 10 {
			t.Fatalf("payments by createddate: %d", len(p.Data))
		}
	}},
	{name: "filter/bad operator, bad number, LT on text, expanded field are 400", run: func(t *testing.T, h *harness) {
		for _, f := range []string{"status.LIKE:Posted", "amount.GT:ten", "invoicenumber.LT:INV1", "account.name.EQ:x", "status", "status.SW"} {
			resp, body := h.get("/object-query/invoices", q("filter[]", f))
			wantReasons(t, resp, body, 400, 50000027)
		}
	}},
	{name: "filter/indexed custom field ERPAccountId__c on accounts", run: func(t *testing.T, h *harness) {
		acc := find(t, h.sim, "accounts", func(r map[string]any) bool { return r["ERPAccountId__c"] != nil })
		p := h.list("/object-query/accounts", q("filter[]", "ERPAccountId__c.EQ:"+acc["ERPAccountId__c"].(string)))
		if len(p.Data) != 1 || p.Data[0]["id"] != acc["id"] {
			t.Fatalf("%v", ids(p.Data))
		}
	}},
	{name: "filter/invoice-items requires a filter", run: func(t *testing.T, h *harness) {
		resp, body := h.get("/object-query/invoice-items", nil)
		wantReasons(t, resp, body, 400, 50000027)
		inv := h.sim.Snapshot("invoices")[0]
		items := h.walk("/object-query/invoice-items", q("filter[]", "invoiceid.EQ:"+idOf(inv), "pageSize", "99"))
		sum := decimal.Zero
		for _, it := range items {
			if it["invoiceId"] != inv["id"] {
				t.Fatalf("item of %v", it["invoiceId"])
			}
			sum = sum.Add(decimal.RequireFromString(string(it["chargeAmount"].(json.Number))))
		}
		if !sum.Equal(decimal.RequireFromString(string(inv["amountWithoutTax"].(json.Number)))) {
			t.Fatalf("items sum %s, invoice %v", sum, inv["amountWithoutTax"])
		}
	}},

	// --- fields, expand, nulls ---
	{name: "fields/subset is case-insensitive and ignores request order", run: func(t *testing.T, h *harness) {
		p := h.list("/object-query/invoices", q("fields[]", "UpdatedDate,id", "fields[]", "AMOUNT"))
		for _, r := range p.Data {
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range r {
					if !yield(k) {
						return
					}
				}
			})
			if !slices.Equal(keys, []string{"amount", "id", "updatedDate"}) {
				t.Fatalf("keys %v", keys)
			}
		}
		_, body := h.get("/object-query/invoices", q("fields[]", "updateddate,id", "pageSize", "1"))
		if !strings.HasPrefix(string(body), `{"nextPage":"`) || !strings.Contains(string(body), `"data":[{"id":"`) {
			t.Fatalf("schema order not kept: %s", body)
		}
	}},
	{name: "fields/unknown field is 400; invoice item has no amount", run: func(t *testing.T, h *harness) {
		resp, body := h.get("/object-query/invoices", q("fields[]", "id,nosuchfield"))
		wantReasons(t, resp, body, 400, 50000027)
		resp, body = h.get("/object-query/invoice-items", q("fields[]", "id,amount", "filter[]", "id.NE:x"))
		wantReasons(t, resp, body, 400, 50000027)
	}},
	{name: "fields/<object>.fields[] selects the base", run: func(t *testing.T, h *harness) {
		p := h.list("/object-query/accounts", q("account.fields[]", "id,name"))
		if len(p.Data[0]) != 2 || p.Data[0]["name"] == nil {
			t.Fatalf("%v", p.Data[0])
		}
	}},
	{name: "fields/exact §2.4 names", run: func(t *testing.T, h *harness) {
		inv := h.sim.Snapshot("invoices")[0]
		it := h.list("/object-query/invoice-items", q("filter[]", "invoiceid.EQ:"+idOf(inv))).Data[0]
		for _, k := range []string{"chargeAmount", "sKU", "uOM", "taxAmount", "unitPrice", "quantity", "chargeName", "invoiceId", "accountId"} {
			if _, ok := it[k]; !ok {
				t.Errorf("invoice item lacks %s", k)
			}
		}
		cm := h.list("/object-query/credit-memos", nil).Data[0]
		for _, k := range []string{"totalAmount", "totalAmountWithoutTax", "taxAmount", "memoNumber", "memoDate"} {
			if _, ok := cm[k]; !ok {
				t.Errorf("credit memo lacks %s", k)
			}
		}
		cmi := h.list("/object-query/credit-memo-items", nil).Data[0]
		for _, k := range []string{"sku", "unitOfMeasure", "amount", "amountWithoutTax", "creditMemoId"} {
			if _, ok := cmi[k]; !ok {
				t.Errorf("credit memo item lacks %s", k)
			}
		}
		for _, k := range []string{"accountId", "currency"} {
			if _, ok := cmi[k]; ok {
				t.Errorf("credit memo item has %s", k)
			}
		}
		rf := h.list("/object-query/refunds", nil).Data[0]
		if _, ok := rf["referenceID"]; !ok {
			t.Errorf("refund lacks referenceID")
		}
	}},
	{name: "expand/invoiceitems nest under invoiceItems and stop at pageSize", run: func(t *testing.T, h *harness) {
		big := find(t, h.sim, "invoices", func(r map[string]any) bool {
			return len(h.walk("/object-query/invoice-items", q("filter[]", "invoiceid.EQ:"+idOf(r), "pageSize", "99"))) > 99
		})
		for _, ps := range []string{"99", "3"} {
			p := h.list("/object-query/invoices", q("filter[]", "id.EQ:"+idOf(big), "expand[]", "invoiceitems",
				"invoiceitems.fields[]", "id,chargeAmount", "pageSize", ps))
			kids := p.Data[0]["invoiceItems"].([]any)
			if fmt.Sprint(len(kids)) != ps || len(kids[0].(map[string]any)) != 2 {
				t.Fatalf("pageSize %s: %d children, first %v", ps, len(kids), kids[0])
			}
		}
	}},
	{name: "expand/account with ERPAccountId__c from a document", run: func(t *testing.T, h *harness) {
		p := h.list("/object-query/invoices", q("expand[]", "account", "account.fields[]", "id,accountNumber,ERPAccountId__c"))
		seen := false
		for _, r := range p.Data {
			acc := r["account"].(map[string]any)
			if acc["id"] != r["accountId"] || acc["accountNumber"] == nil || len(acc) > 3 {
				t.Fatalf("account %v for invoice of %v", acc, r["accountId"])
			}
			seen = seen || acc["ERPAccountId__c"] != nil
		}
		if !seen {
			t.Fatal("no ERPAccountId__c on the page")
		}
	}},
	{name: "expand/unknown value is 400, documented unmodelled value is accepted", run: func(t *testing.T, h *harness) {
		resp, body := h.get("/object-query/invoices", q("expand[]", "nonsense"))
		wantReasons(t, resp, body, 400, 50000027)
		resp, body = h.get("/object-query/invoices", q("expand[]", "invoiceitems,account"))
		wantReasons(t, resp, body, 400, 50000027)
		if p := h.list("/object-query/invoices", q("expand[]", "billtocontact")); len(p.Data) != 10 {
			t.Fatalf("%d", len(p.Data))
		}
		resp, body = h.get("/object-query/invoices", q("nope.fields[]", "id"))
		wantReasons(t, resp, body, 400, 50000027)
	}},
	{name: "expand/memo items and invoice from item", run: func(t *testing.T, h *harness) {
		p := h.list("/object-query/debit-memos", q("expand[]", "debitmemoitems"))
		if len(p.Data[0]["debitMemoItems"].([]any)) == 0 {
			t.Fatal("no debitMemoItems")
		}
		inv := h.sim.Snapshot("invoices")[0]
		it := h.list("/object-query/invoice-items", q("filter[]", "invoiceid.EQ:"+idOf(inv), "expand[]", "invoice")).Data[0]
		if it["invoice"].(map[string]any)["invoiceNumber"] != inv["invoiceNumber"] {
			t.Fatalf("%v", it["invoice"])
		}
	}},
	{name: "nulls/omitted by default, present with includeNullFields=true", run: func(t *testing.T, h *harness) {
		p := h.list("/object-query/invoices", nil)
		for _, r := range p.Data {
			if _, ok := r["sequenceSetId"]; ok {
				t.Fatal("null sequenceSetId sent without includeNullFields")
			}
		}
		p = h.list("/object-query/invoices", q("includeNullFields", "true"))
		for _, r := range p.Data {
			if v, ok := r["sequenceSetId"]; !ok || v != nil {
				t.Fatalf("sequenceSetId %v %v", v, ok)
			}
		}
	}},
	{name: "values/updatedDate has one-second precision and the LA offset", run: func(t *testing.T, h *harness) {
		for _, r := range h.list("/object-query/invoices", nil).Data {
			u := r["updatedDate"].(string)
			if !dtPattern.MatchString(u) || !strings.HasSuffix(u, "-08:00") {
				t.Fatalf("updatedDate %q", u)
			}
		}
	}},
	{name: "values/Location switch and summer offset", opts: Options{Location: time.FixedZone("X", 5*3600+30*60)}, run: func(t *testing.T, h *harness) {
		if u := h.list("/object-query/invoices", nil).Data[0]["updatedDate"].(string); !strings.HasSuffix(u, "+05:30") {
			t.Fatalf("updatedDate %q", u)
		}
		la, _ := time.LoadLocation("America/Los_Angeles")
		if got := formatDT(unixText(time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)), la); got != "2026-07-01T05:00:00-07:00" {
			t.Fatalf("summer %s", got)
		}
	}},
	{name: "values/numbers keep their exact decimal text", run: func(t *testing.T, h *harness) {
		snap := h.sim.Snapshot("invoice-items")
		var nine map[string]any
		for _, r := range snap {
			if s := string(r["unitPrice"].(json.Number)); strings.Contains(s, ".") && len(strings.Split(s, ".")[1]) >= 7 {
				nine = r
				break
			}
		}
		if nine == nil {
			t.Fatal("no unit price with 7+ places")
		}
		_, body := h.get("/object-query/invoice-items", q("filter[]", "id.EQ:"+idOf(nine)))
		if !strings.Contains(string(body), `"unitPrice":`+string(nine["unitPrice"].(json.Number))+`,`) {
			t.Fatalf("unit price %v not literal in %s", nine["unitPrice"], body)
		}
	}},
	{name: "key/by id and by number; unknown key is 404", run: func(t *testing.T, h *harness) {
		inv := h.sim.Snapshot("invoices")[5]
		for _, key := range []string{idOf(inv), inv["invoiceNumber"].(string)} {
			resp, body := h.get("/object-query/invoices/"+key, q("expand[]", "invoiceitems"))
			r := decode[map[string]any](t, body)
			if resp.StatusCode != 200 || r["id"] != inv["id"] || r["invoiceItems"] == nil {
				t.Fatalf("%s: %d %v", key, resp.StatusCode, r["id"])
			}
		}
		resp, body := h.get("/object-query/invoices/INV99999999", nil)
		wantReasons(t, resp, body, 404, 50000040)
		resp, body = h.get("/object-query/widgets", nil)
		wantReasons(t, resp, body, 404, 50000040)
	}},
	{name: "legacy/old or missing Zuora-Version returns errors as 200 with reasons", run: func(t *testing.T, h *harness) {
		for _, v := range []string{"", "186.0", "2024-05-20"} {
			hdr := http.Header{"Zuora-Version": {v}}
			if v == "" {
				hdr = http.Header{"X-No-Version": {"1"}}
			}
			resp, body := h.do(http.MethodGet, "/object-query/invoices?filter[]=nope.EQ:1", hdr, "", nil, true)
			wantReasons(t, resp, body, 200, 50000027)
		}
		resp, body := h.get("/object-query/invoices", q("filter[]", "nope.EQ:1"))
		wantReasons(t, resp, body, 400, 50000027)
	}},
	{name: "legacy/NoLegacyErrors200 switch", opts: Options{NoLegacyErrors200: true}, run: func(t *testing.T, h *harness) {
		resp, body := h.do(http.MethodGet, "/object-query/invoices?filter[]=nope.EQ:1", http.Header{"X-No-Version": {"1"}}, "", nil, true)
		wantReasons(t, resp, body, 400, 50000027)
	}},
	{name: "headers/request id, track id echo and gzip over 1000 bytes", run: func(t *testing.T, h *harness) {
		resp, body := h.do(http.MethodGet, "/object-query/invoices", http.Header{"Zuora-Track-Id": {"run-42"}, "Accept-Encoding": {"gzip"}}, "", nil, true)
		if len(resp.Header.Get("Zuora-Request-Id")) != 36 || resp.Header.Get("Zuora-Track-Id") != "run-42" {
			t.Fatalf("headers %v", resp.Header)
		}
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatal("not gzipped")
		}
		if p := decode[page](t, gunzip(t, body)); len(p.Data) != 10 {
			t.Fatalf("%d", len(p.Data))
		}
		resp, _ = h.do(http.MethodGet, "/object-query/invoices?pageSize=1&fields[]=id", http.Header{"Accept-Encoding": {"gzip"}}, "", nil, true)
		if resp.Header.Get("Content-Encoding") != "" {
			t.Fatal("small body gzipped")
		}
	}},

	// --- write-back: action ---
	{name: "action/marks Yes and bumps updatedDate to now", run: func(t *testing.T, h *harness) {
		inv := find(t, h.sim, "invoices", func(r map[string]any) bool { return posted(r) && r["transferredToAccounting"] != "Yes" })
		res := h.action("", actionBody("Invoice", map[string]any{"Id": idOf(inv), "TransferredToAccounting": "Yes"}))
		if len(res) != 1 || !res[0].Success || res[0].ID != idOf(inv) {
			t.Fatalf("%+v", res)
		}
		if h.sim.Transferred(idOf(inv)) != "Yes" {
			t.Fatal("not marked")
		}
		got := h.list("/object-query/invoices/"+idOf(inv), nil)
		_ = got
		_, body := h.get("/object-query/invoices/"+idOf(inv), nil)
		r := decode[map[string]any](t, body)
		if u, _ := time.Parse(time.RFC3339, r["updatedDate"].(string)); !u.Equal(h.clock.Now()) {
			t.Fatalf("updatedDate %v, want %v", r["updatedDate"], h.clock.Now())
		}
		if h.sim.Stats().MarksApplied != 1 {
			t.Fatal("MarksApplied")
		}
	}},
	{name: "action/NoUpdatedBumpOnMark switch", opts: Options{NoUpdatedBumpOnMark: true}, run: func(t *testing.T, h *harness) {
		inv := find(t, h.sim, "invoices", posted)
		h.action("", actionBody("Invoice", map[string]any{"Id": idOf(inv), "TransferredToAccounting": "Yes"}))
		after := find(t, h.sim, "invoices", func(r map[string]any) bool { return r["id"] == inv["id"] })
		if after["updatedDate"] != inv["updatedDate"] || after["transferredToAccounting"] != "Yes" {
			t.Fatalf("before %v after %v", inv["updatedDate"], after["updatedDate"])
		}
	}},
	{name: "action/partial failure in request order", run: func(t *testing.T, h *harness) {
		ok := find(t, h.sim, "invoices", posted)
		draft := find(t, h.sim, "invoices", func(r map[string]any) bool { return r["status"] == "Draft" && r["transferredToAccounting"] != "Yes" })
		res := h.action("", actionBody("Invoice",
			map[string]any{"Id": idOf(ok), "TransferredToAccounting": "Yes"},
			map[string]any{"Id": "0123456789abcdef0123456789abcdef", "TransferredToAccounting": "Yes"},
			map[string]any{"Id": idOf(draft), "TransferredToAccounting": "Yes"},
			map[string]any{"Id": idOf(ok), "TransferredToAccounting": "Maybe"},
			map[string]any{"TransferredToAccounting": "Yes"},
		))
		want := []string{"", "INVALID_ID", "INVALID_VALUE", "INVALID_VALUE", "MISSING_REQUIRED_VALUE"}
		for i, w := range want {
			code := ""
			if len(res[i].Errors) > 0 {
				code = res[i].Errors[0].Code
			}
			if code != w || res[i].Success != (w == "") {
				t.Fatalf("object %d: %+v, want %q", i, res[i], w)
			}
		}
		if h.sim.Transferred(idOf(draft)) == "Yes" || h.sim.Transferred(idOf(ok)) != "Yes" {
			t.Fatal("wrong objects changed")
		}
	}},
	{name: "action/more than 50 objects all fail MAX_RECORDS_EXCEEDED", run: func(t *testing.T, h *harness) {
		var objs []map[string]any
		for _, r := range h.sim.Snapshot("invoices")[:51] {
			objs = append(objs, map[string]any{"Id": idOf(r), "TransferredToAccounting": "Yes"})
		}
		res := h.action("", actionBody("Invoice", objs...))
		if len(res) != 51 || res[0].Success || res[0].Errors[0].Code != "MAX_RECORDS_EXCEEDED" || h.sim.Stats().MarksApplied != 0 {
			t.Fatalf("%+v", res[0])
		}
	}},
	{name: "action/CreditMemo and DebitMemo types are refused", run: func(t *testing.T, h *harness) {
		for _, typ := range []string{"CreditMemo", "DebitMemo"} {
			obj := "credit-memos"
			if typ == "DebitMemo" {
				obj = "debit-memos"
			}
			m := h.sim.Snapshot(obj)[0]
			res := h.action("", actionBody(typ, map[string]any{"Id": idOf(m), "TransferredToAccounting": "Yes"}))
			if res[0].Success || res[0].Errors[0].Code != "INVALID_TYPE" || h.sim.Transferred(idOf(m)) == "Yes" && m["transferredToAccounting"] != "Yes" {
				t.Fatalf("%s: %+v", typ, res)
			}
		}
	}},
	{name: "action/unknown field is a silent no-op unless rejectUnknownFields=true", run: func(t *testing.T, h *harness) {
		inv := find(t, h.sim, "invoices", func(r map[string]any) bool { return posted(r) && r["transferredToAccounting"] == nil })
		res := h.action("", actionBody("Invoice", map[string]any{"Id": idOf(inv), "TransferedToAccounting": "Yes"}))
		if !res[0].Success || h.sim.Transferred(idOf(inv)) != "" {
			t.Fatalf("%+v, transferred %q", res, h.sim.Transferred(idOf(inv)))
		}
		resp, body := h.do(http.MethodPost, "/v1/action/update?rejectUnknownFields=true", nil, "application/json",
			actionBody("Invoice", map[string]any{"Id": idOf(inv), "TransferedToAccounting": "Yes"}), true)
		if resp.StatusCode != 400 || decode[map[string]any](t, body)["message"] != "Error - unrecognised fields" {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}},
	{name: "action/payments and refunds are updatable; No needs ActionAcceptsNo", run: func(t *testing.T, h *harness) {
		p, r := h.sim.Snapshot("payments")[0], h.sim.Snapshot("refunds")[0]
		if res := h.action("", actionBody("Payment", map[string]any{"Id": idOf(p), "TransferredToAccounting": "Processing"})); !res[0].Success {
			t.Fatalf("%+v", res)
		}
		if res := h.action("", actionBody("Refund", map[string]any{"Id": idOf(r), "TransferredToAccounting": "Error"})); !res[0].Success {
			t.Fatalf("%+v", res)
		}
		if h.sim.Transferred(idOf(p)) != "Processing" || h.sim.Transferred(idOf(r)) != "Error" {
			t.Fatal("not applied")
		}
		if res := h.action("", actionBody("Payment", map[string]any{"Id": idOf(p), "TransferredToAccounting": "No"})); res[0].Success {
			t.Fatal("No accepted by default")
		}
	}},

	// --- write-back: memo bulk PUT ---
	{name: "memos/bulk credit and debit memo PUT with per-memo results", run: func(t *testing.T, h *harness) {
		for _, c := range []struct{ path, obj, prefix string }{{"/v1/credit-memos/bulk", "credit-memos", "5100"}, {"/v1/debit-memos/bulk", "debit-memos", "5200"}} {
			m := h.sim.Snapshot(c.obj)[0]
			body := fmt.Sprintf(`{"memos":[{"id":%q,"transferredToAccounting":"Yes"},{"id":"missing","transferredToAccounting":"Yes"},{"id":%q,"transferredToAccounting":"Bogus"}]}`, idOf(m), idOf(m))
			resp, raw := h.do(http.MethodPut, c.path, nil, "application/json", strings.NewReader(body), true)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", c.path, resp.StatusCode, raw)
			}
			var out struct {
				Success   bool   `json:"success"`
				ProcessID string `json:"processId"`
				RequestID string `json:"requestId"`
				Memos     []struct {
					ID          string `json:"id"`
					Success     bool   `json:"success"`
					UpdatedDate string `json:"updatedDate"`
					Reasons     []struct {
						Code int `json:"code"`
					} `json:"reasons"`
				} `json:"memos"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatal(err)
			}
			if !out.Success || out.ProcessID == "" || len(out.RequestID) != 36 || len(out.Memos) != 3 {
				t.Fatalf("%s", raw)
			}
			if !out.Memos[0].Success || !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`).MatchString(out.Memos[0].UpdatedDate) {
				t.Fatalf("memo 0: %+v", out.Memos[0])
			}
			if out.Memos[1].Success || out.Memos[1].Reasons[0].Code%100 != 40 || out.Memos[2].Success || out.Memos[2].Reasons[0].Code%100 != 20 {
				t.Fatalf("%s", raw)
			}
			if !strings.HasPrefix(fmt.Sprint(out.Memos[1].Reasons[0].Code), c.prefix) || h.sim.Transferred(idOf(m)) != "Yes" {
				t.Fatalf("%s: %s", c.path, raw)
			}
		}
	}},
	{name: "memos/more than 50 is 400", run: func(t *testing.T, h *harness) {
		var memos []string
		for range 51 {
			memos = append(memos, `{"id":"x","transferredToAccounting":"Yes"}`)
		}
		resp, raw := h.do(http.MethodPut, "/v1/credit-memos/bulk", nil, "application/json", strings.NewReader(`{"memos":[`+strings.Join(memos, ",")+`]}`), true)
		if resp.StatusCode != 400 || decode[map[string]any](t, raw)["success"] != false {
			t.Fatalf("%d %s", resp.StatusCode, raw)
		}
	}},

	// --- faults ---
	{name: "faults/latency", opts: Options{Faults: Faults{Latency: 150 * time.Millisecond}}, run: func(t *testing.T, h *harness) {
		start := time.Now()
		h.get("/object-query/accounts", nil)
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Fatalf("answered in %v", d)
		}
	}},
	{name: "faults/rate cap 429 with Retry-After and RateLimit headers, reset by the window", opts: Options{Faults: Faults{RateLimit: 3, RateWindow: time.Minute}}, run: func(t *testing.T, h *harness) {
		for i := range 3 {
			resp, _ := h.get("/object-query/accounts", nil)
			if resp.StatusCode != 200 || resp.Header.Get("RateLimit-Remaining") != fmt.Sprint(2-i) {
				t.Fatalf("request %d: %d, RateLimit-Remaining %q", i, resp.StatusCode, resp.Header.Get("RateLimit-Remaining"))
			}
		}
		if resp, _ := h.get("/object-query/accounts", nil); resp.StatusCode != 429 {
			t.Fatalf("4th request: %d", resp.StatusCode)
		}
		h.clock.Advance(20 * time.Second)
		resp, body := h.get("/object-query/accounts", nil)
		wantReasons(t, resp, body, 429, 50000070)
		if resp.Header.Get("Retry-After") != "40" || resp.Header.Get("RateLimit-Remaining") != "0" || !strings.Contains(resp.Header.Get("RateLimit-Limit"), "3;w=60") {
			t.Fatalf("headers %v", resp.Header)
		}
		h.clock.Advance(41 * time.Second)
		if resp, _ := h.get("/object-query/accounts", nil); resp.StatusCode != 200 {
			t.Fatalf("after the window: %d", resp.StatusCode)
		}
	}},
	{name: "faults/concurrency cap 429 with Concurrency-Limit headers", opts: Options{Faults: Faults{ConcurrencyLimit: 2, Latency: 300 * time.Millisecond}}, run: func(t *testing.T, h *harness) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var codes []int
		var hdr http.Header
		for range 5 {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/object-query/accounts", nil)
				req.Header.Set("Authorization", "Bearer "+h.token)
				resp, err := h.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				codes = append(codes, resp.StatusCode)
				if resp.StatusCode == 429 {
					hdr = resp.Header
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		n429 := 0
		for _, c := range codes {
			if c == 429 {
				n429++
			}
		}
		if n429 != 3 || hdr.Get("Concurrency-Limit-Limit") != "2" || hdr.Get("Concurrency-Limit-Remaining") != "0" || hdr.Get("Retry-After") != "1" {
			t.Fatalf("codes %v, headers %v", codes, hdr)
		}
	}},
	{name: "faults/every Nth 429, 500, 502, 503", run: func(t *testing.T, h *harness) {
		for _, c := range []struct {
			f    Faults
			code int
		}{{Faults{Status429Every: 2, RetryAfter: 3 * time.Second}, 429}, {Faults{Status500Every: 2}, 500}, {Faults{Status502Every: 2}, 502}, {Faults{Status503Every: 2}, 503}} {
			h.sim.SetFaults(c.f)
			var got []int
			for range 4 {
				resp, body := h.get("/object-query/accounts", nil)
				got = append(got, resp.StatusCode)
				if resp.StatusCode == 500 {
					wantReasons(t, resp, body, 500, 50000060)
				}
				if resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "3" {
					t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
				}
			}
			if !slices.Equal(got, []int{200, c.code, 200, c.code}) {
				t.Fatalf("%+v: %v", c.f, got)
			}
		}
	}},
	{name: "faults/dropped connection before and after the work", run: func(t *testing.T, h *harness) {
		h.sim.SetFaults(Faults{DropEvery: 1})
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/object-query/accounts", nil)
		req.Header.Set("Authorization", "Bearer "+h.token)
		if resp, err := h.srv.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("no transport error")
		}
		inv := find(t, h.sim, "invoices", func(r map[string]any) bool { return posted(r) && r["transferredToAccounting"] == nil })
		h.sim.SetFaults(Faults{DropAfterEvery: 1})
		req, _ = http.NewRequest(http.MethodPost, h.srv.URL+"/v1/action/update", actionBody("Invoice", map[string]any{"Id": idOf(inv), "TransferredToAccounting": "Yes"}))
		req.Header.Set("Authorization", "Bearer "+h.token)
		if resp, err := h.srv.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("no transport error")
		}
		// Go's transport may resend an idempotent GET once on a dropped connection, so drop counts 1 or 2.
		if h.sim.Transferred(idOf(inv)) != "Yes" || h.sim.Stats().Faults["drop"] < 1 || h.sim.Stats().Faults["drop-after"] != 1 {
			t.Fatalf("the write was not applied before the drop: %v", h.sim.Stats().Faults)
		}
	}},
	{name: "faults/truncated and malformed JSON bodies", run: func(t *testing.T, h *harness) {
		for _, f := range []Faults{{TruncateEvery: 1}, {MalformedEvery: 1}} {
			h.sim.SetFaults(f)
			resp, body := h.get("/object-query/invoices", nil)
			var v any
			if resp.StatusCode != 200 || json.Unmarshal(body, &v) == nil {
				t.Fatalf("%+v: status %d, body parses", f, resp.StatusCode)
			}
		}
	}},
	{name: "faults/token expires mid-walk", opts: Options{Faults: Faults{ExpireTokenEvery: 3}}, run: func(t *testing.T, h *harness) {
		p := h.list("/object-query/invoices", nil)
		p = h.list("/object-query/invoices", q("cursor", *p.NextPage))
		resp, body := h.get("/object-query/invoices", q("cursor", *p.NextPage))
		wantReasons(t, resp, body, 401, 50000011)
		resp, _ = h.get("/object-query/invoices", q("cursor", *p.NextPage))
		if resp.StatusCode != 401 {
			t.Fatal("revoked token works again")
		}
		h.token = h.newToken()
		if p := h.list("/object-query/invoices", q("cursor", *p.NextPage)); len(p.Data) != 10 {
			t.Fatalf("%d", len(p.Data))
		}
	}},
	{name: "faults/LOCK_COMPETITION and TEMPORARY_ERROR in write-back results", run: func(t *testing.T, h *harness) {
		h.sim.SetFaults(Faults{LockCompetitionEvery: 2, TemporaryErrorEvery: 3})
		var objs []map[string]any
		for _, r := range h.sim.Snapshot("payments")[:6] {
			objs = append(objs, map[string]any{"Id": idOf(r), "TransferredToAccounting": "Yes"})
		}
		res := h.action("", actionBody("Payment", objs...))
		var codes []string
		for _, r := range res {
			if r.Success {
				codes = append(codes, "")
			} else {
				codes = append(codes, r.Errors[0].Code)
			}
		}
		if !slices.Equal(codes, []string{"", "LOCK_COMPETITION", "TEMPORARY_ERROR", "LOCK_COMPETITION", "", "LOCK_COMPETITION"}) {
			t.Fatalf("%v", codes)
		}
		m := h.sim.Snapshot("credit-memos")[0]
		h.sim.SetFaults(Faults{LockCompetitionEvery: 1})
		_, raw := h.do(http.MethodPut, "/v1/credit-memos/bulk", nil, "application/json", strings.NewReader(`{"memos":[{"id":"`+idOf(m)+`","transferredToAccounting":"Yes"}]}`), true)
		if !strings.Contains(string(raw), `"code":51000050`) || !strings.Contains(string(raw), "LOCK_COMPETITION") {
			t.Fatalf("%s", raw)
		}
	}},
	{name: "faults/records touched and inserted between pages", run: func(t *testing.T, h *harness) {
		h.sim.SetFaults(Faults{TouchPerPage: 1, InsertPerPage: 1})
		all := h.walk("/object-query/invoices", q("sort[]", "updateddate.ASC", "pageSize", "20"))
		// Each page's first record is bumped to now and a copy inserted at now, so both
		// come back at the end of an ascending walk.
		seen := map[string]int{}
		for _, r := range all {
			seen[idOf(r)]++
		}
		st := h.sim.Stats()
		if st.Faults["touch"] == 0 || st.Faults["insert"] == 0 || len(all) <= 80 || len(seen) <= 80 {
			t.Fatalf("walk %d records, %d distinct, stats %v", len(all), len(seen), st.Faults)
		}
		dup := 0
		for _, n := range seen {
			if n > 1 {
				dup++
			}
		}
		if dup == 0 {
			t.Fatal("no touched record reappeared in the ascending walk")
		}
		if n := len(h.sim.Snapshot("invoices")); n != 80+st.Faults["insert"] {
			t.Fatalf("%d invoices after %d inserts", n, st.Faults["insert"])
		}
	}},
	{name: "faults/after-page hook can mutate the tenant", run: func(t *testing.T, h *harness) {
		var events []PageEvent
		h.sim.SetAfterPage(func(ev PageEvent) {
			events = append(events, ev)
			if len(events) == 1 {
				if err := h.sim.Touch(ev.IDs[0]); err != nil {
					t.Error(err)
				}
			}
		})
		all := h.walk("/object-query/payments", q("pageSize", "20"))
		if len(events) != 3 || !events[2].Last || events[0].Last || len(events[0].IDs) != 20 {
			t.Fatalf("events %+v", events)
		}
		// Default DESC walk: the record touched after page 1 moved ahead of the walk and is not seen again.
		if len(all) != 50 {
			t.Fatalf("%d", len(all))
		}
	}},
	{name: "faults/Path limits request faults; token endpoint exempt by default", run: func(t *testing.T, h *harness) {
		h.sim.SetFaults(Faults{Status500Every: 1, Path: "/v1/"})
		if resp, _ := h.get("/object-query/accounts", nil); resp.StatusCode != 200 {
			t.Fatalf("%d", resp.StatusCode)
		}
		resp, _ := h.do(http.MethodPost, "/v1/action/update", nil, "application/json", actionBody("Invoice"), true)
		if resp.StatusCode != 500 {
			t.Fatalf("%d", resp.StatusCode)
		}
		h.sim.SetFaults(Faults{Status500Every: 1})
		h.newToken() // fatal unless 200
	}},
	{name: "stats/requests per endpoint and unauthorized", run: func(t *testing.T, h *harness) {
		h.get("/object-query/invoices", nil)
		h.get("/object-query/invoices/INV00000001", nil)
		h.token = "x"
		h.get("/object-query/invoices", nil)
		st := h.sim.Stats()
		if st.Requests["GET /object-query/invoices"] != 2 || st.Requests["GET /object-query/invoices/{key}"] != 1 ||
			st.Requests["POST /oauth/token"] != 1 || st.Unauthorized != 1 {
			t.Fatalf("%+v", st)
		}
	}},
}
