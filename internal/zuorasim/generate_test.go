package zuorasim

import (
	"encoding/json"
	"net/url"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

func dec(t *testing.T, v any) decimal.Decimal {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a json.Number", v, v)
	}
	return decimal.RequireFromString(string(n))
}

func TestGenerateIsDeterministic(t *testing.T) {
	a := Generate(42, DefaultVolume(), genFrom, genTo)
	b := Generate(42, DefaultVolume(), genFrom, genTo)
	c := Generate(43, DefaultVolume(), genFrom, genTo)
	for _, o := range Objects {
		sa, sb := a.Snapshot(o, nil), b.Snapshot(o, nil)
		if len(sa) == 0 || !reflect.DeepEqual(sa, sb) {
			t.Fatalf("%s: same seed, different records (%d vs %d)", o, len(sa), len(sb))
		}
	}
	if reflect.DeepEqual(a.IDs("invoices"), c.IDs("invoices")) {
		t.Fatal("seeds 42 and 43 give the same invoice ids")
	}
}

func TestGenerateAmountsAreConsistent(t *testing.T) {
	tn := Generate(3, DefaultVolume(), genFrom, genTo)
	type sums struct{ without, tax decimal.Decimal }
	itemSums := func(object, parent, amountField string) map[string]sums {
		m := map[string]sums{}
		for _, it := range tn.Snapshot(object, nil) {
			p := it[parent].(string)
			s := m[p]
			s.without = s.without.Add(dec(t, it[amountField]))
			s.tax = s.tax.Add(dec(t, it["taxAmount"]))
			m[p] = s
			if amountField == "amountWithoutTax" && !dec(t, it["amount"]).Equal(dec(t, it["amountWithoutTax"])) {
				t.Fatalf("%s %s: amount %v != amountWithoutTax %v", object, it["id"], it["amount"], it["amountWithoutTax"])
			}
		}
		return m
	}
	inv := itemSums("invoice-items", "invoiceId", "chargeAmount")
	owed := map[any]decimal.Decimal{}
	for _, r := range tn.Snapshot("invoices", nil) {
		if posted(r) {
			owed[r["accountId"]] = owed[r["accountId"]].Add(dec(t, r["balance"]))
		}
	}
	for _, a := range tn.Snapshot("accounts", nil) {
		if !dec(t, a["balance"]).Equal(owed[a["id"]]) || !dec(t, a["totalInvoiceBalance"]).Equal(owed[a["id"]]) {
			t.Fatalf("account %v: balance %v, posted invoices owe %s", a["accountNumber"], a["balance"], owed[a["id"]])
		}
	}
	for _, r := range tn.Snapshot("invoices", nil) {
		s := inv[r["id"].(string)]
		amount, without, tax := dec(t, r["amount"]), dec(t, r["amountWithoutTax"]), dec(t, r["taxAmount"])
		if !amount.Equal(without.Add(tax)) || !without.Equal(s.without) || !tax.Equal(s.tax) {
			t.Fatalf("invoice %s: amount %s, without %s, tax %s; items %s + %s", r["invoiceNumber"], amount, without, tax, s.without, s.tax)
		}
	}
	for _, c := range []struct{ memos, items, parent string }{
		{"credit-memos", "credit-memo-items", "creditMemoId"}, {"debit-memos", "debit-memo-items", "debitMemoId"},
	} {
		m := itemSums(c.items, c.parent, "amountWithoutTax")
		for _, r := range tn.Snapshot(c.memos, nil) {
			s := m[r["id"].(string)]
			total, without, tax := dec(t, r["totalAmount"]), dec(t, r["totalAmountWithoutTax"]), dec(t, r["taxAmount"])
			if !total.Equal(without.Add(tax)) || !without.Equal(s.without) || !tax.Equal(s.tax) || s.without.IsZero() {
				t.Fatalf("%s %s: total %s, without %s, tax %s; items %s + %s", c.memos, r["memoNumber"], total, without, tax, s.without, s.tax)
			}
		}
	}
}

func TestGenerateShape(t *testing.T) {
	v := DefaultVolume()
	tn := Generate(5, v, genFrom, genTo)
	want := map[string]int{"accounts": v.Accounts, "invoices": v.Invoices, "payments": v.Payments, "refunds": v.Refunds,
		"credit-memos": v.CreditMemos, "debit-memos": v.DebitMemos}
	for o, n := range want {
		if tn.Count(o) != n {
			t.Errorf("%s: %d, want %d", o, tn.Count(o), n)
		}
	}
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for _, o := range Objects {
		for _, r := range tn.Snapshot(o, nil) {
			id := r["id"].(string)
			if !hexID.MatchString(id) || seen[id] {
				t.Fatalf("%s id %q is not a fresh 32-hex id", o, id)
			}
			seen[id] = true
			for _, f := range []string{"createdDate", "updatedDate"} {
				ts, err := time.Parse(time.RFC3339, r[f].(string))
				if err != nil || ts.Before(genFrom) || !ts.Before(genTo) {
					t.Fatalf("%s %s %s = %v outside [%v, %v)", o, id, f, r[f], genFrom, genTo)
				}
			}
		}
	}

	count := func(object string, pred func(map[string]any) bool) int {
		n := 0
		for _, r := range tn.Snapshot(object, nil) {
			if pred(r) {
				n++
			}
		}
		return n
	}
	distinct := func(object, field string) map[any]int {
		m := map[any]int{}
		for _, r := range tn.Snapshot(object, nil) {
			m[r[field]]++
		}
		return m
	}
	items := distinct("invoice-items", "invoiceId")
	over99, maxItems := 0, 0
	for _, n := range items {
		if n > 99 {
			over99++
		}
		maxItems = max(maxItems, n)
	}
	places := func(object, field string) int {
		most := 0
		for _, r := range tn.Snapshot(object, nil) {
			if _, frac, ok := strings.Cut(string(r[field].(json.Number)), "."); ok {
				most = max(most, len(frac))
			}
		}
		return most
	}
	unicodeNames := count("accounts", func(r map[string]any) bool {
		return utf8.RuneCountInString(r["name"].(string)) != len(r["name"].(string))
	})
	cur := distinct("invoices", "currency")
	shared := 0
	for _, n := range distinct("invoices", "updatedDate") {
		shared = max(shared, n)
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"accounts without ERPAccountId__c", count("accounts", func(r map[string]any) bool { return r["ERPAccountId__c"] == nil }) > 0},
		{"accounts with ERPAccountId__c", count("accounts", func(r map[string]any) bool { return r["ERPAccountId__c"] != nil }) > 0},
		{"draft invoices", distinct("invoices", "status")["Draft"] > 0},
		{"draft memos", distinct("credit-memos", "status")["Draft"]+distinct("debit-memos", "status")["Draft"] > 0},
		{"every invoice has items", len(items) == v.Invoices},
		{"an invoice with more than 99 items", over99 > 0 && maxItems <= v.MaxItems},
		{"payments Processed, Error and Canceled", len(distinct("payments", "status")) == 3},
		{"refunds of several source types", len(distinct("refunds", "sourceType")) >= 2},
		{"several currencies, JPY and KWD among them", len(cur) >= 4 && cur["JPY"] > 0 && cur["KWD"] > 0},
		{"unit prices with up to 9 places", places("invoice-items", "unitPrice") == 9},
		{"amounts with 3 places", places("invoices", "amount") == 3},
		{"unicode account names", unicodeNames > 0},
		{"more than a page of invoices in one second", shared > 10},
		{"some documents already transferred", distinct("payments", "transferredToAccounting")["Yes"]+distinct("invoices", "transferredToAccounting")["Yes"] > 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("tenant lacks %s", c.what)
		}
	}
}

func TestGenerateRangeWithFractionalBounds(t *testing.T) {
	from := time.Date(2026, 3, 8, 9, 59, 58, 500_000_000, time.UTC) // around the US DST switch
	to := from.Add(3 * time.Second)
	tn := Generate(9, Volume{Accounts: 3, Invoices: 20, Payments: 5, MaxItems: 3}, from, to)
	for _, o := range Objects {
		for _, r := range tn.Snapshot(o, nil) {
			for _, f := range []string{"createdDate", "updatedDate"} {
				ts, _ := time.Parse(time.RFC3339, r[f].(string))
				if ts.Before(from) || !ts.Before(to) {
					t.Fatalf("%s %s = %v outside [%v, %v)", o, f, ts, from, to)
				}
			}
		}
	}
}

func TestGenerateWithoutAccountsIsEmpty(t *testing.T) {
	tn := Generate(1, Volume{Invoices: 10}, genFrom, genTo)
	if tn.Count("invoices") != 0 {
		t.Fatal("documents without accounts")
	}
}

// TestWalkReturnsEveryRecordOnce pages through every object of a generated
// tenant with sort updateddate.ASC (and the default DESC order) and checks each
// record comes back exactly once, although many share an updatedDate second.
func TestWalkReturnsEveryRecordOnce(t *testing.T) {
	v := Volume{Accounts: 40, Invoices: 400, Payments: 200, Refunds: 60, CreditMemos: 80, DebitMemos: 40,
		MaxItems: 120, NoERPPercent: 10, DraftPercent: 10, BurstPercent: 60}
	tn := Generate(11, v, genFrom, genTo)
	sim := New(Options{})
	sim.Load(tn)
	h := newHarnessFor(t, sim)
	for _, o := range Objects {
		for _, ps := range []string{"7", "99", "default order"} {
			query := url.Values{"sort[]": {"updateddate.ASC"}, "pageSize": {ps},
				"filter[]": {"updateddate.GE:" + genFrom.Format(time.RFC3339)}}
			if ps == "default order" { // updatedDate DESC, id DESC
				query.Del("sort[]")
				query.Set("pageSize", "10")
			}
			got := h.walk("/object-query/"+o, query)
			count := map[string]int{}
			for _, r := range got {
				count[r["id"].(string)]++
			}
			for _, id := range tn.IDs(o) {
				if count[id] != 1 {
					t.Fatalf("%s pageSize %s: %s came back %d times", o, ps, id, count[id])
				}
			}
			if len(got) != tn.Count(o) {
				t.Fatalf("%s pageSize %s: %d records, want %d", o, ps, len(got), tn.Count(o))
			}
		}
	}
}

func newHarnessFor(t *testing.T, sim *Sim) *harness {
	t.Helper()
	h := newHarness(t, Options{})
	h.sim = sim
	h.srv.Config.Handler = sim
	h.token = h.newToken()
	return h
}

// TestLargeTenantMemory keeps a 10,000-document tenant, loaded into a Sim, well under 200 MB of heap.
func TestLargeTenantMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := Volume{Accounts: 500, Invoices: 5000, Payments: 2500, Refunds: 500, CreditMemos: 1200, DebitMemos: 800,
		MaxItems: 250, NoERPPercent: 10, DraftPercent: 10, BurstPercent: 40}
	sim := New(Options{})
	sim.Load(Generate(1, v, genFrom, genTo))
	runtime.GC()
	runtime.ReadMemStats(&after)
	items := len(sim.Snapshot("invoice-items"))
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("10,000 documents, %d invoice items: %d MB of heap", items, heap>>20)
	if heap > 200<<20 {
		t.Fatalf("heap grew by %d MB", heap>>20)
	}
	runtime.KeepAlive(sim)
}

func BenchmarkGenerate10k(b *testing.B) {
	v := Volume{Accounts: 500, Invoices: 5000, Payments: 2500, Refunds: 500, CreditMemos: 1200, DebitMemos: 800, MaxItems: 250}
	for b.Loop() {
		Generate(1, v, genFrom, genTo)
	}
}

// BenchmarkListPage measures one 99-record page of invoices with items expanded from a 5,000-invoice tenant.
func BenchmarkListPage(b *testing.B) {
	sim := New(Options{})
	sim.Load(Generate(1, Volume{Accounts: 200, Invoices: 5000, MaxItems: 250}, genFrom, genTo))
	q, err := sim.parseQuery(url.Values{"sort[]": {"updateddate.ASC"}, "pageSize": {"99"}, "expand[]": {"invoiceitems"}}, schemas["invoices"], false)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := sim.listPage(q); err != nil {
			b.Fatal(err)
		}
	}
}
