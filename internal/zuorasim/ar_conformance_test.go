package zuorasim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The application objects (docs/zuora-api.md §7), the write-back values and
// the admin endpoint, driven over HTTP.

var appObjects = []struct {
	path       string
	filterable []string
	refused    []string // fields the object has that are not filterable
	expands    map[string]string
	amount     string
}{
	{objPaymentApps, []string{"id", "updateddate", "effectivedate", "accountid", "paymentid", "applicationgroupid"},
		[]string{"createddate", "invoiceid", "debitmemoid", "applyamount", "paymentapplicationstatus"},
		map[string]string{"payment": "payment"}, "applyAmount"},
	{objCreditMemoApps, []string{"id", "updateddate", "effectivedate", "accountid", "applicationgroupid", "debitmemoid", "invoiceid"},
		[]string{"creditmemoid", "createddate", "amount"},
		map[string]string{"creditmemo": "creditMemo"}, "amount"},
	{objRefundApps, []string{"id", "updateddate", "accountid", "applicationgroupid", "creditmemoid", "effectivedate", "paymentid", "refundid"},
		[]string{"invoiceid", "createddate", "applyamount"},
		map[string]string{"refund": "refund", "payment": "payment"}, "applyAmount"},
}

// wideTenant is the default tenant with one payment applied to more than 99 invoices.
func wideHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	v := DefaultVolume()
	v.WidePayments = 1
	sim := New(opts)
	sim.Load(Generate(1, v, genFrom, genTo))
	return newHarnessFor(t, sim)
}

var arConformanceCases = []conformanceCase{
	{name: "applications/walk returns every record once, keyset and offset", run: func(t *testing.T, h *harness) {
		for _, offset := range []bool{false, true} {
			h.sim.opts.OffsetCursor = offset
			for _, o := range appObjects {
				got := h.walk("/object-query/"+o.path, q("sort[]", "updateddate.ASC", "pageSize", "7"))
				seen := map[string]int{}
				for i, r := range got {
					seen[r["id"].(string)]++
					if i > 0 && instant(got[i-1]).After(instant(r)) {
						t.Fatalf("%s out of order at %d", o.path, i)
					}
				}
				want := len(h.sim.Snapshot(o.path))
				if len(got) != want || len(seen) != want || want == 0 {
					t.Fatalf("%s offset=%v: %d rows, %d distinct, %d held", o.path, offset, len(got), len(seen), want)
				}
			}
		}
	}},
	{name: "applications/keyset cursor names updatedDate and id", run: func(t *testing.T, h *harness) {
		p := h.list("/object-query/payment-applications", q("sort[]", "updateddate.ASC", "pageSize", "2"))
		raw, _ := base64.StdEncoding.DecodeString(*p.NextPage)
		if !strings.Contains(string(raw), `"field":"UpdatedDate","order":"ASC"`) || !strings.Contains(string(raw), `"field":"Id"`) {
			t.Fatalf("cursor %s", raw)
		}
	}},
	{name: "applications/filterable fields filter, the others are refused", run: func(t *testing.T, h *harness) {
		for _, o := range appObjects {
			rec := h.sim.Snapshot(o.path)[0]
			for _, f := range o.filterable {
				value := ""
				for k, v := range rec {
					if strings.ToLower(k) == f {
						value = fmt.Sprint(v)
					}
				}
				if f == "updateddate" {
					value = genFrom.Format(time.RFC3339)
				}
				if value == "<nil>" || value == "" {
					value = "null"
				}
				op := "EQ"
				if f == "updateddate" {
					op = "GE"
				}
				p := h.list("/object-query/"+o.path, q("filter[]", f+"."+op+":"+value, "pageSize", "99"))
				if len(p.Data) == 0 {
					t.Fatalf("%s filter %s.%s:%s matched nothing", o.path, f, op, value)
				}
				h.list("/object-query/"+o.path, q("sort[]", f+".DESC"))
			}
			for _, f := range o.refused {
				resp, body := h.get("/object-query/"+o.path, q("filter[]", f+".EQ:x"))
				wantReasons(t, resp, body, 400, 50000027)
				resp, body = h.get("/object-query/"+o.path, q("sort[]", f+".ASC"))
				wantReasons(t, resp, body, 400, 50000027)
			}
		}
	}},
	{name: "applications/updateddate range filters", run: func(t *testing.T, h *harness) {
		mid := genFrom.Add(30 * time.Minute).Format(time.RFC3339)
		lo := h.walk("/object-query/payment-applications", q("filter[]", "updateddate.LT:"+mid, "pageSize", "99"))
		hi := h.walk("/object-query/payment-applications", q("filter[]", "updateddate.GE:"+mid, "pageSize", "99"))
		if len(lo)+len(hi) != len(h.sim.Snapshot(objPaymentApps)) || len(lo) == 0 || len(hi) == 0 {
			t.Fatalf("%d before, %d after, %d held", len(lo), len(hi), len(h.sim.Snapshot(objPaymentApps)))
		}
	}},
	{name: "applications/documented expands nest, account is not one", run: func(t *testing.T, h *harness) {
		for _, o := range appObjects {
			for expand, key := range o.expands {
				p := h.list("/object-query/"+o.path, q("expand[]", expand, "pageSize", "99"))
				nested := 0
				for _, r := range p.Data {
					if m, ok := r[key].(map[string]any); ok && m["id"] != nil {
						nested++
					}
				}
				if nested == 0 {
					t.Fatalf("%s expand[]=%s nested nothing", o.path, expand)
				}
			}
			resp, body := h.get("/object-query/"+o.path, q("expand[]", "account"))
			wantReasons(t, resp, body, 400, 50000027)
		}
		p := h.list("/object-query/refund-applications", q("expand[]", "refundapplicationitems"))
		if len(p.Data) == 0 {
			t.Fatal("refundapplicationitems refused")
		}
	}},
	{name: "applications/fields, by key and includeNullFields", run: func(t *testing.T, h *harness) {
		a := h.sim.Snapshot(objPaymentApps)[0]
		p := h.list("/object-query/payment-applications", q("fields[]", "id,applyAmount,paymentId", "filter[]", "id.EQ:"+idOf(a)))
		if len(p.Data) != 1 || len(p.Data[0]) != 3 || p.Data[0]["applyAmount"] != a["applyAmount"] {
			t.Fatalf("fields[] %v", p.Data)
		}
		resp, body := h.get("/object-query/payment-applications", q("fields[]", "id,amount"))
		wantReasons(t, resp, body, 400, 50000027)
		resp, body = h.get("/object-query/payment-applications/"+idOf(a), q("includeNullFields", "true"))
		one := decode[map[string]any](t, body)
		if resp.StatusCode != 200 || one["id"] != idOf(a) || !hasKey(one, "debitMemoId") || !hasKey(one, "journalEntryId") {
			t.Fatalf("by key %d %v", resp.StatusCode, one)
		}
	}},
	{name: "applications/parents' expands nest their applications", run: func(t *testing.T, h *harness) {
		for _, c := range []struct{ parent, expand, key, via string }{
			{"payments", "paymentapplications", "paymentApplications", "paymentId"},
			{"credit-memos", "creditmemoapplications", "creditMemoApplications", "creditMemoId"},
			{"refunds", "refundapplications", "refundApplications", "refundId"},
		} {
			p := h.walk("/object-query/"+c.parent, q("expand[]", c.expand, "pageSize", "99"))
			children := 0
			for _, r := range p {
				kids, ok := r[c.key].([]any)
				if !ok {
					t.Fatalf("%s has no %s list", c.parent, c.key)
				}
				for _, k := range kids {
					if k.(map[string]any)[c.via] != r["id"] {
						t.Fatalf("%s %s nests %v", c.parent, r["id"], k)
					}
					children++
				}
			}
			if children == 0 {
				t.Fatalf("no %s nested", c.key)
			}
		}
	}},
	{name: "applications/a payment's expand stops at the page size", run: func(t *testing.T, h *harness) {
		w := wideHarness(t, Options{})
		var wide map[string]any
		for _, p := range w.sim.Snapshot(objPayments) {
			if n := len(w.sim.data.tables[objPaymentApps].lookupFK(pa.payment, idOf(p))); n > 99 {
				wide = p
			}
		}
		page := w.list("/object-query/payments", q("filter[]", "id.EQ:"+idOf(wide), "expand[]", "paymentapplications", "pageSize", "99"))
		if n := len(page.Data[0]["paymentApplications"].([]any)); n != 99 {
			t.Fatalf("%d children at pageSize 99", n)
		}
		all := w.walk("/object-query/payment-applications", q("filter[]", "paymentid.EQ:"+idOf(wide), "pageSize", "99"))
		if len(all) < 100 {
			t.Fatalf("walking the applications by paymentid gave %d", len(all))
		}
	}},
	{name: "applications/numbers as doubles apply to amounts", opts: Options{NumbersAsDoubles: true}, run: func(t *testing.T, h *harness) {
		forms := 0
		for _, o := range appObjects {
			for _, r := range h.walk("/object-query/"+o.path, q("pageSize", "99")) {
				if s := string(r[o.amount].(json.Number)); strings.ContainsAny(s, "E.") {
					forms++
				}
			}
		}
		if forms == 0 {
			t.Fatal("no amount in a double form")
		}
	}},
	{name: "applications/lower-camel custom fields leave their keys alone", opts: Options{LowerCamelCustomFields: true}, run: func(t *testing.T, h *harness) {
		for _, o := range appObjects {
			p := h.list("/object-query/"+o.path, q("includeNullFields", "true"))
			for k := range p.Data[0] {
				if _, ok := schemas[o.path].index[strings.ToLower(k)]; !ok || k[:1] != strings.ToLower(k[:1]) {
					t.Fatalf("%s key %q", o.path, k)
				}
			}
		}
	}},
	{name: "applications/without Invoice Settlement there are none", opts: Options{NoInvoiceSettlement: true}, run: func(t *testing.T, h *harness) {
		for _, o := range appObjects {
			resp, body := h.get("/object-query/"+o.path, nil)
			wantReasons(t, resp, body, 403, 50000010)
		}
		p := h.list("/object-query/payments", q("expand[]", "paymentapplications"))
		if _, ok := p.Data[0]["paymentApplications"]; ok {
			t.Fatal("payments nest applications on a tenant without them")
		}
	}},
	{name: "applications/an operation is seen over HTTP at once", run: func(t *testing.T, h *harness) {
		ar := &arHarness{h}
		acct, seed := ar.account()
		i := ar.freshInvoice(seed)
		h.clock.Advance(time.Minute)
		p, applied, err := h.sim.CreatePayment(acct, "12.34", Target{i, "12.34"})
		if err != nil {
			t.Fatal(err)
		}
		since := h.clock.Now().Format(time.RFC3339)
		got := h.list("/object-query/payment-applications", q("filter[]", "updateddate.GE:"+since, "sort[]", "updateddate.ASC"))
		if len(got.Data) != 1 || idOf(got.Data[0]) != applied.IDs[0] || got.Data[0]["applyAmount"] != json.Number("12.34") {
			t.Fatalf("applications since the apply: %v", got.Data)
		}
		pays := h.list("/object-query/payments", q("filter[]", "updateddate.GE:"+since))
		invs := h.list("/object-query/invoices", q("filter[]", "updateddate.GE:"+since))
		if len(pays.Data) != 1 || idOf(pays.Data[0]) != p || pays.Data[0]["unappliedAmount"] != json.Number("0") ||
			len(invs.Data) != 1 || idOf(invs.Data[0]) != i {
			t.Fatalf("documents since the apply: %v %v", pays.Data, invs.Data)
		}
	}},

	// --- TransferredToAccounting ---
	{name: "transferred/Error and Ignore are accepted by every write-back", run: func(t *testing.T, h *harness) {
		inv := find(t, h.sim, "invoices", posted)
		pay := find(t, h.sim, "payments", func(r map[string]any) bool { return true })
		memo := find(t, h.sim, "credit-memos", func(r map[string]any) bool { return true })
		for _, v := range []string{"Error", "Ignore", "Processing", "Yes"} {
			res := h.action("", actionBody("Invoice", map[string]any{"Id": idOf(inv), "TransferredToAccounting": v}))
			if !res[0].Success || h.sim.Transferred(idOf(inv)) != v {
				t.Fatalf("action %s: %+v", v, res)
			}
			resp, body := h.do(http.MethodPut, "/v1/credit-memos/bulk", nil, "application/json",
				strings.NewReader(fmt.Sprintf(`{"memos":[{"id":%q,"transferredToAccounting":%q}]}`, idOf(memo), v)), true)
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"success":true`) || h.sim.Transferred(idOf(memo)) != v {
				t.Fatalf("memo bulk %s: %d %s", v, resp.StatusCode, body)
			}
			resp, body = h.do(http.MethodPut, "/v1/payments/"+idOf(pay), nil, "application/json",
				strings.NewReader(fmt.Sprintf(`{"financeInformation":{"transferredToAccounting":%q}}`, v)), true)
			if resp.StatusCode != 200 || h.sim.Transferred(idOf(pay)) != v {
				t.Fatalf("payment PUT %s: %d %s", v, resp.StatusCode, body)
			}
		}
	}},
	{name: "transferred/a value outside the enum is refused everywhere", run: func(t *testing.T, h *harness) {
		inv := find(t, h.sim, "invoices", posted)
		memo := find(t, h.sim, "credit-memos", func(r map[string]any) bool { return true })
		pay := find(t, h.sim, "payments", func(r map[string]any) bool { return true })
		for _, v := range []string{"error", "Done", "No"} { // the action's enum lacks No
			res := h.action("", actionBody("Invoice", map[string]any{"Id": idOf(inv), "TransferredToAccounting": v}))
			if res[0].Success || res[0].Errors[0].Code != "INVALID_VALUE" {
				t.Fatalf("action %s: %+v", v, res)
			}
		}
		for _, v := range []string{"error", "Done"} {
			_, body := h.do(http.MethodPut, "/v1/credit-memos/bulk", nil, "application/json",
				strings.NewReader(fmt.Sprintf(`{"memos":[{"id":%q,"transferredToAccounting":%q}]}`, idOf(memo), v)), true)
			if !strings.Contains(string(body), `"success":false`) {
				t.Fatalf("memo bulk accepted %s: %s", v, body)
			}
			resp, body := h.do(http.MethodPut, "/v1/payments/"+idOf(pay), nil, "application/json",
				strings.NewReader(fmt.Sprintf(`{"financeInformation":{"transferredToAccounting":%q}}`, v)), true)
			if resp.StatusCode != 400 {
				t.Fatalf("payment PUT accepted %s: %d %s", v, resp.StatusCode, body)
			}
		}
	}},
	{name: "transferred/generated Ignore documents", run: func(t *testing.T, h *harness) {
		v := DefaultVolume()
		v.IgnorePercent = 20
		h.sim.Load(Generate(1, v, genFrom, genTo))
		n := 0
		for _, r := range h.walk("/object-query/invoices", q("pageSize", "99")) {
			if r["transferredToAccounting"] == "Ignore" {
				n++
			}
		}
		if n == 0 {
			t.Fatal("no invoice marked Ignore")
		}
	}},

	// --- the admin endpoint ---
	{name: "admin/operations over HTTP", run: func(t *testing.T, h *harness) {
		ar := &arHarness{h}
		acct, seed := ar.account()
		i := ar.freshInvoice(seed)
		call := func(op, body string) map[string]any {
			resp, raw := h.do(http.MethodPost, AdminPrefix+"ar/"+op, nil, "application/json", strings.NewReader(body), true)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", op, resp.StatusCode, raw)
			}
			return decode[map[string]any](t, raw)
		}
		pay := call("create-payment", fmt.Sprintf(`{"account":%q,"amount":"20","targets":[{"id":%q,"amount":15}]}`, acct, i))
		p := pay["id"].(string)
		call("unapply-payment", fmt.Sprintf(`{"id":%q,"targets":[{"id":%q,"amount":"5"}]}`, p, i))
		rf := call("refund-payment", fmt.Sprintf(`{"id":%q,"amount":"10"}`, p))
		call("cancel-refund", fmt.Sprintf(`{"id":%q}`, rf["refund"]))
		call("set-transferred", fmt.Sprintf(`{"id":%q,"value":"Error"}`, p))
		ar.wantAmount(objPayments, p, "unappliedAmount", "10")
		if h.sim.Transferred(p) != "Error" {
			t.Fatal("set-transferred did not")
		}
		resp, raw := h.do(http.MethodPost, AdminPrefix+"ar/apply-payment", nil, "application/json",
			strings.NewReader(fmt.Sprintf(`{"id":%q,"targets":[{"id":%q,"amount":"999999"}]}`, p, i)), true)
		if resp.StatusCode != 422 || !strings.Contains(string(raw), "less than 999999") {
			t.Fatalf("a refused operation: %d %s", resp.StatusCode, raw)
		}
		resp, raw = h.do(http.MethodGet, AdminPrefix+"ar/check", nil, "", nil, true)
		if resp.StatusCode != 200 || strings.TrimSpace(string(raw)) != "[]" {
			t.Fatalf("check: %d %s", resp.StatusCode, raw)
		}
		resp, _ = h.do(http.MethodPost, AdminPrefix+"ar/explode", nil, "application/json", strings.NewReader(`{}`), true)
		if resp.StatusCode != 404 {
			t.Fatalf("unknown operation: %d", resp.StatusCode)
		}
		resp, _ = h.do(http.MethodPost, AdminPrefix+"ar/cancel-payment", nil, "application/json", strings.NewReader(`{}`), false)
		if resp.StatusCode != 401 {
			t.Fatalf("without a token: %d", resp.StatusCode)
		}
		if h.sim.Stats().Requests["POST /_sim/ar/create-payment"] != 0 {
			t.Fatal("admin calls are counted in Stats")
		}
	}},
}

func instant(r map[string]any) time.Time {
	t, _ := time.Parse(time.RFC3339, r["updatedDate"].(string))
	return t
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

func TestARConformance(t *testing.T) {
	for _, c := range arConformanceCases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newHarness(t, c.opts))
		})
	}
	if len(arConformanceCases) < 15 {
		t.Fatalf("only %d AR conformance cases", len(arConformanceCases))
	}
}
