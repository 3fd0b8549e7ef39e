package stage

import (
	"slices"
	"testing"
)

// TestRegistryNamesEachThingOnce: no two types share a table, an endpoint or
// a Zuora object, and every type has what every package reads of it.
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
	for _, dt := range DocTypes() {
		f := dt.must()
		if f.header == "" || f.number == "" || f.amount == "" || f.endpoint == "" || f.object == "" || f.markObject == "" {
			t.Errorf("%s lacks a fact: %+v", dt, f)
		}
		if (f.items == "") != (f.itemObject == "") {
			t.Errorf("%s: item table %q but item object %q", dt, f.items, f.itemObject)
		}
		for what, v := range map[string]string{"table": f.header, "item table": f.items, "endpoint": f.endpoint,
			"object": f.object, "item object": f.itemObject, "mark object": f.markObject} {
			once(dt, what, v)
		}
		if got, ok := DocTypeOfTable(f.header); !ok || got != dt {
			t.Errorf("DocTypeOfTable(%s) = %s", f.header, got)
		}
		if got, ok := DocTypeOfEndpoint(f.endpoint); !ok || got != dt {
			t.Errorf("DocTypeOfEndpoint(%s) = %s", f.endpoint, got)
		}
	}
	if n := len(Tables()); n != len(slices.Compact(slices.Sorted(slices.Values(Tables())))) {
		t.Errorf("Tables() lists a table twice: %v", Tables())
	}
}

func TestParseDocTypesKeepsLoadOrderAndRefusesUnknownNames(t *testing.T) {
	got, err := ParseDocTypes([]string{"refund", "invoice", "refund"})
	if err != nil || !slices.Equal(got, []DocType{Invoice, Refund}) {
		t.Fatalf("ParseDocTypes = %v, %v; want [invoice refund] in load order", got, err)
	}
	if _, err := ParseDocTypes([]string{"invoice", "memo"}); err == nil {
		t.Fatal("an unknown document type was accepted")
	}
	if DocType("memo").Valid() {
		t.Fatal(`"memo" is valid`)
	}
}
