package stage

import (
	"slices"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// TestRegistryNamesEachThingOnce: no two types share a table or a Zuora
// object, no two documents an endpoint (the application kinds share
// /api/applications), and every type has what every package reads of it.
func TestRegistryNamesEachThingOnce(t *testing.T) {
	seen := map[string]DocType{}
	once := func(dt DocType, what, v string) {
		if v == "" {
			return
		}
		if other, dup := seen[what+" "+v]; dup {
			t.Errorf("%s %q belongs to both %s and %s", what, v, other, dt)
		}
		seen[what+" "+v] = dt
	}
	for _, dt := range LoadOrder() {
		f := dt.must()
		switch f.kind {
		case KindDocument:
			if f.header == "" || f.number == "" || f.amount == "" || f.endpoint == "" || f.object == "" || f.markObject == "" || f.source != "" {
				t.Errorf("document %s lacks a fact or has an application's: %+v", dt, f)
			}
			once(dt, "endpoint", f.endpoint)
			if got, ok := DocTypeOfEndpoint(f.endpoint); !ok || got != dt {
				t.Errorf("DocTypeOfEndpoint(%s) = %s", f.endpoint, got)
			}
		case KindApplication:
			if f.header == "" || f.amount == "" || f.endpoint != "/api/applications" || f.object == "" || !f.source.IsDocument() ||
				f.number != "" || f.items != "" || f.markObject != "" {
				t.Errorf("application %s: %+v", dt, f)
			}
			once(dt, "source", string(f.source))
			if _, ok := DocTypeOfEndpoint(f.endpoint); ok {
				t.Errorf("DocTypeOfEndpoint(%s) finds a document", f.endpoint)
			}
		case KindReversal:
			if f.header != "" || f.object != "" || f.endpoint != "/api/reversals" || f.markObject != "" {
				t.Errorf("reversal %s: %+v", dt, f)
			}
		default:
			t.Errorf("%s has no kind", dt)
		}
		if (f.items == "") != (f.itemObject == "") {
			t.Errorf("%s: item table %q but item object %q", dt, f.items, f.itemObject)
		}
		if (f.items == "") != (f.itemParent == "") || f.items != "" && !hasColumn(TableRows()[f.items], f.itemParent) {
			t.Errorf("%s: item table %q has no column %q of its document's id", dt, f.items, f.itemParent)
		}
		for what, v := range map[string]string{"table": f.header, "item table": f.items,
			"object": f.object, "item object": f.itemObject, "mark object": f.markObject} {
			once(dt, what, v)
		}
		if f.header != "" {
			if got, ok := DocTypeOfTable(f.header); !ok || got != dt {
				t.Errorf("DocTypeOfTable(%s) = %s", f.header, got)
			}
		}
	}
	if n := len(Tables()); n != len(slices.Compact(slices.Sorted(slices.Values(Tables())))) {
		t.Errorf("Tables() lists a table twice: %v", Tables())
	}
	for _, table := range Tables() {
		if _, ok := TableRows()[table]; !ok {
			t.Errorf("raw table %s has no row type", table)
		}
	}
}

// TestLoadOrderIsTheContracts: reversals, the documents in today's order,
// then the applications (docs/design.md "AR pipeline").
func TestLoadOrderIsTheContracts(t *testing.T) {
	want := []DocType{Reversal, Invoice, DebitMemo, CreditMemo, Payment, Refund, PaymentApplication, CreditMemoApplication, RefundApplication}
	if got := LoadOrder(); !slices.Equal(got, want) {
		t.Fatalf("LoadOrder() = %v, want %v", got, want)
	}
	if got := Documents(); !slices.Equal(got, want[1:6]) {
		t.Errorf("Documents() = %v", got)
	}
	if got := Applications(); !slices.Equal(got, want[6:]) {
		t.Errorf("Applications() = %v", got)
	}
	for _, d := range want {
		if d.IsDocument() != (d.Kind() == KindDocument) || d.IsApplication() != (d.Kind() == KindApplication) {
			t.Errorf("%s: IsDocument %t, IsApplication %t, kind %s", d, d.IsDocument(), d.IsApplication(), d.Kind())
		}
	}
	if got := Tables(); got[len(got)-1] != AccountsTable || !slices.Contains(got, "refund_applications") {
		t.Errorf("Tables() = %v; want the application tables and accounts last", got)
	}
	if DocType("memo").IsDocument() || DocType("memo").IsApplication() {
		t.Error(`"memo" is a document or an application`)
	}
}

func TestParseDocTypesKeepsLoadOrderAndRefusesUnknownNames(t *testing.T) {
	got, err := ParseDocTypes([]string{"refund", "invoice", "refund"})
	if err != nil || !slices.Equal(got, []DocType{Reversal, Invoice, Refund}) {
		t.Fatalf("ParseDocTypes = %v, %v; want [reversal invoice refund] in load order", got, err)
	}
	for _, bad := range [][]string{{"invoice", "memo"}, {"invoice", "reversal"}, {"invoice", "refund_application"}} {
		if _, err := ParseDocTypes(bad); err == nil {
			t.Errorf("ParseDocTypes(%q) was accepted", bad)
		}
	}
	got, err = ParseDocTypes([]string{"payment_application", "payment", "invoice"})
	if err != nil || !slices.Equal(got, []DocType{Reversal, Invoice, Payment, PaymentApplication}) {
		t.Fatalf("ParseDocTypes = %v, %v", got, err)
	}
	all, err := ParseDocTypes(slices.Collect(func(yield func(string) bool) {
		for _, d := range Streams() {
			if !yield(string(d)) {
				return
			}
		}
	}))
	if err != nil || !slices.Equal(all, LoadOrder()) {
		t.Fatalf("every stream selected: %v, %v; want %v", all, err, LoadOrder())
	}
	if DocType("memo").Valid() {
		t.Fatal(`"memo" is valid`)
	}
}

func TestEventKeys(t *testing.T) {
	at := time.Date(2026, 11, 25, 22, 5, 7, 123456000, time.FixedZone("x", -8*3600))
	if got := RepostKey("8a8f", at); got != "8a8f:post:20261126T060507Z" {
		t.Errorf("RepostKey = %s", got)
	}
	if got := ReversalKey("8a8f", at); got != "8a8f:reversal:20261126T060507Z" {
		t.Errorf("ReversalKey = %s", got)
	}
}

// hasColumn reports whether the Parquet schema of row has a column name.
func hasColumn(row any, name string) bool {
	for _, f := range parquet.SchemaOf(row).Fields() {
		if f.Name() == name {
			return true
		}
	}
	return false
}
