package archeck

import (
	"errors"
	"slices"
	"testing"

	"github.com/shopspring/decimal"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// parity is a small consistent pair: every document open the same on both sides.
func parity() ([]ZuoraDoc, []ERPDoc) {
	z := []ZuoraDoc{
		{ZuoraID: "inv-usd", DocType: "invoice", Number: "INV1", Currency: "USD", Status: "Posted", Open: d("100.25")},
		{ZuoraID: "inv-paid", DocType: "invoice", Number: "INV2", Currency: "USD", Status: "Posted", Open: d("0")},
		{ZuoraID: "inv-kwd", DocType: "invoice", Number: "INV3", Currency: "KWD", Status: "Posted", Open: d("12.345")},
		{ZuoraID: "inv-jpy", DocType: "invoice", Number: "INV4", Currency: "JPY", Status: "Posted", Open: d("1200")},
		{ZuoraID: "dm", DocType: "debit_memo", Number: "DM1", Currency: "EUR", Status: "Posted", Open: d("5")},
		{ZuoraID: "cm", DocType: "credit_memo", Number: "CM1", Currency: "USD", Status: "Posted", Open: d("20")},
		{ZuoraID: "pay", DocType: "payment", Number: "P1", Currency: "USD", Status: "Processed", Open: d("9.99")},
		{ZuoraID: "pay-canceled", DocType: "payment", Number: "P2", Currency: "USD", Status: "Canceled", Open: d("30")},
		{ZuoraID: "cm-draft", DocType: "credit_memo", Number: "CM2", Currency: "USD", Status: "Draft", Open: d("7")},
		{ZuoraID: "ref", DocType: "refund", Number: "R1", Currency: "USD", Status: "Processed", Open: d("0")},
	}
	e := []ERPDoc{
		{ZuoraID: "inv-usd", DocType: "invoice", Currency: "USD", Live: true, Open: d("100.250")},
		{ZuoraID: "inv-paid", DocType: "invoice", Currency: "USD", Live: true, Open: d("0")},
		{ZuoraID: "inv-kwd", DocType: "invoice", Currency: "KWD", Live: true, Open: d("12.345")},
		{ZuoraID: "inv-jpy", DocType: "invoice", Currency: "JPY", Live: true, Open: d("1200")},
		{ZuoraID: "dm", DocType: "debit_memo", Currency: "EUR", Live: true, Open: d("5.00")},
		{ZuoraID: "cm", DocType: "credit_memo", Currency: "USD", Live: true, Open: d("20")},
		{ZuoraID: "pay", DocType: "payment", Currency: "USD", Live: true, Open: d("9.99")},
		{ZuoraID: "pay-canceled", DocType: "payment", Currency: "USD", Live: false, Open: d("30")}, // reversed
		{ZuoraID: "ref", DocType: "refund", Currency: "USD", Live: true, Open: d("0")},
	}
	return z, e
}

func TestCompareFindsNothingWhenBalancesAgree(t *testing.T) {
	z, e := parity()
	diffs, err := Compare(z, e)
	if err != nil || len(diffs) != 0 {
		t.Fatalf("differences %v, %v", diffs, err)
	}
}

// TestCompareCatchesBrokenParity breaks a consistent pair one way at a time:
// the oracle names exactly the broken document, with the right amounts.
func TestCompareCatchesBrokenParity(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(z []ZuoraDoc, e []ERPDoc) ([]ZuoraDoc, []ERPDoc)
		want   Difference
	}{
		{"a cent off in USD", func(z []ZuoraDoc, e []ERPDoc) ([]ZuoraDoc, []ERPDoc) {
			e[0].Open = d("100.24")
			return z, e
		}, Difference{ZuoraID: "inv-usd", Zuora: d("100.25"), ERP: d("100.24"), Diff: d("0.01"), Reason: BalanceDiffers}},
		{"a fils off in KWD", func(z []ZuoraDoc, e []ERPDoc) ([]ZuoraDoc, []ERPDoc) {
			e[2].Open = d("12.346")
			return z, e
		}, Difference{ZuoraID: "inv-kwd", Zuora: d("12.345"), ERP: d("12.346"), Diff: d("-0.001"), Reason: BalanceDiffers}},
		{"a yen off in JPY", func(z []ZuoraDoc, e []ERPDoc) ([]ZuoraDoc, []ERPDoc) {
			z[3].Open = d("1199")
			return z, e
		}, Difference{ZuoraID: "inv-jpy", Zuora: d("1199"), ERP: d("1200"), Diff: d("-1"), Reason: BalanceDiffers}},
		{"below a cent", func(z []ZuoraDoc, e []ERPDoc) ([]ZuoraDoc, []ERPDoc) {
			e[6].Open = d("9.990000001")
			return z, e
		}, Difference{ZuoraID: "pay", Zuora: d("9.99"), ERP: d("9.990000001"), Diff: d("-0.000000001"), Reason: BalanceDiffers}},
		{"an open invoice the ERP does not hold", func(z []ZuoraDoc, e []ERPDoc) ([]ZuoraDoc, []ERPDoc) {
			return z, e[1:]
		}, Difference{ZuoraID: "inv-usd", Zuora: d("100.25"), ERP: d("0"), Diff: d("100.25"), Reason: MissingInERP}},
		{"a canceled payment still live in the ERP", func(z []ZuoraDoc, e []ERPDoc) ([]ZuoraDoc, []ERPDoc) {
			e[7].Live = true
			return z, e
		}, Difference{ZuoraID: "pay-canceled", Zuora: d("0"), ERP: d("30"), Diff: d("-30"), Reason: BalanceDiffers}},
		{"a payment the ERP reversed that Zuora still holds", func(z []ZuoraDoc, e []ERPDoc) ([]ZuoraDoc, []ERPDoc) {
			e[6].Live = false
			return z, e
		}, Difference{ZuoraID: "pay", Zuora: d("9.99"), ERP: d("0"), Diff: d("9.99"), Reason: BalanceDiffers}},
		{"a draft memo live in the ERP", func(z []ZuoraDoc, e []ERPDoc) ([]ZuoraDoc, []ERPDoc) {
			return z, append(e, ERPDoc{ZuoraID: "cm-draft", DocType: "credit_memo", Currency: "USD", Live: true, Open: d("7")})
		}, Difference{ZuoraID: "cm-draft", Zuora: d("0"), ERP: d("7"), Diff: d("-7"), Reason: BalanceDiffers}},
		{"an open document Zuora does not list", func(z []ZuoraDoc, e []ERPDoc) ([]ZuoraDoc, []ERPDoc) {
			return z, append(e, ERPDoc{ZuoraID: "stray", DocType: "invoice", Currency: "GBP", Live: true, Open: d("3")})
		}, Difference{ZuoraID: "stray", Zuora: d("0"), ERP: d("3"), Diff: d("-3"), Reason: UnknownToZuora}},
		{"another currency", func(z []ZuoraDoc, e []ERPDoc) ([]ZuoraDoc, []ERPDoc) {
			e[4].Currency = "GBP"
			return z, e
		}, Difference{ZuoraID: "dm", Zuora: d("5"), ERP: d("5"), Diff: d("0"), Reason: CurrencyDiffers}},
		{"another type", func(z []ZuoraDoc, e []ERPDoc) ([]ZuoraDoc, []ERPDoc) {
			e[5].DocType = "invoice"
			return z, e
		}, Difference{ZuoraID: "cm", Zuora: d("20"), ERP: d("20"), Diff: d("0"), Reason: TypeDiffers}},
		{"a refund the ERP never applied", func(z []ZuoraDoc, e []ERPDoc) ([]ZuoraDoc, []ERPDoc) {
			e[8].Open = d("15")
			return z, e
		}, Difference{ZuoraID: "ref", Zuora: d("0"), ERP: d("15"), Diff: d("-15"), Reason: BalanceDiffers}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			z, e := parity()
			z, e = c.break_(z, e)
			diffs, err := Compare(z, e)
			if err != nil {
				t.Fatal(err)
			}
			if len(diffs) != 1 {
				t.Fatalf("%d differences %v, want one", len(diffs), diffs)
			}
			g := diffs[0]
			if g.ZuoraID != c.want.ZuoraID || g.Reason != c.want.Reason || !g.Zuora.Equal(c.want.Zuora) ||
				!g.ERP.Equal(c.want.ERP) || !g.Diff.Equal(c.want.Diff) || g.Currency == "" || g.DocType == "" {
				t.Fatalf("got %+v, want %+v", g, c.want)
			}
		})
	}
}

func TestCompareOrdersEveryDifference(t *testing.T) {
	z, e := parity()
	e[0].Open, e[2].Open, e[4].Open = d("1"), d("2"), d("3") // USD invoice, KWD invoice, EUR debit memo
	diffs, _ := Compare(z, e)
	var got []string
	for _, x := range diffs {
		got = append(got, x.Currency+" "+x.ZuoraID)
	}
	if want := []string{"EUR dm", "KWD inv-kwd", "USD inv-usd"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestCompareRefusesDuplicates(t *testing.T) {
	z, e := parity()
	var de *DuplicateError
	if _, err := Compare(append(z, z[0]), e); !errors.As(err, &de) || de.ZuoraID != "inv-usd" {
		t.Fatalf("Zuora duplicate: %v", err)
	}
	if _, err := Compare(z, append(e, e[1])); !errors.As(err, &de) || de.ZuoraID != "inv-paid" {
		t.Fatalf("ERP duplicate: %v", err)
	}
}

func TestTotalsPerCurrency(t *testing.T) {
	z, e := parity()
	got := Totals(z, e)
	want := map[string][2]string{"EUR": {"5", "5"}, "JPY": {"1200", "1200"}, "KWD": {"12.345", "12.345"},
		"USD": {"70.26", "70.26"}} // 100.25 − 20 (credit memo) − 9.99 (payment)
	if len(got) != len(want) {
		t.Fatalf("totals %+v", got)
	}
	for _, tot := range got {
		w := want[tot.Currency]
		if !tot.Zuora.Equal(d(w[0])) || !tot.ERP.Equal(d(w[1])) {
			t.Errorf("%s: Zuora %s, ERP %s; want %s, %s", tot.Currency, tot.Zuora, tot.ERP, w[0], w[1])
		}
	}
}
