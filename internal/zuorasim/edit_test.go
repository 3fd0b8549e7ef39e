package zuorasim

import (
	"encoding/json"
	"testing"
	"time"
)

// TestSetFieldsEditsOneRecordOnly: fixing an account's custom field moves the
// account's updatedDate and no document's.
func TestSetFieldsEditsOneRecordOnly(t *testing.T) {
	h := newHarness(t, Options{})
	acct := find(t, h.sim, "accounts", func(r map[string]any) bool { return r["ERPAccountId__c"] == nil })
	id := acct["id"].(string)
	before := map[string]any{}
	for _, r := range h.sim.Snapshot("invoices") {
		before[r["id"].(string)] = r["updatedDate"]
	}
	h.clock.Advance(10 * time.Minute)
	if err := h.sim.SetFields(id, map[string]string{"ERPAccountId__c": "ERP-FIXED"}); err != nil {
		t.Fatal(err)
	}
	got := find(t, h.sim, "accounts", func(r map[string]any) bool { return r["id"] == id })
	if got["ERPAccountId__c"] != "ERP-FIXED" {
		t.Fatalf("ERPAccountId__c = %v", got["ERPAccountId__c"])
	}
	if want := h.clock.Now().In(h.sim.Location()).Format(dtLayout); got["updatedDate"] != want {
		t.Errorf("account updatedDate %v; want the edit's %s", got["updatedDate"], want)
	}
	for _, r := range h.sim.Snapshot("invoices") {
		if r["updatedDate"] != before[r["id"].(string)] {
			t.Fatalf("invoice %s updatedDate moved from %v to %v", r["id"], before[r["id"].(string)], r["updatedDate"])
		}
	}
	// Served through Object Query with the expanded account too.
	inv := find(t, h.sim, "invoices", func(r map[string]any) bool { return r["accountId"] == id })
	p := h.list("/object-query/invoices", q("filter[]", "id.EQ:"+inv["id"].(string), "expand[]", "account",
		"account.fields[]", "id,ERPAccountId__c"))
	if len(p.Data) != 1 || p.Data[0]["account"].(map[string]any)["ERPAccountId__c"] != "ERP-FIXED" {
		t.Fatalf("expanded account %v", p.Data)
	}
	for _, bad := range []map[string]string{{"id": "x"}, {"accountNumber": "x"}, {"nope": "1"}, {"balance": "abc"}} {
		if err := h.sim.SetFields(id, bad); err == nil {
			t.Errorf("SetFields %v succeeded", bad)
		}
	}
	if err := h.sim.SetFields("no-such-id", map[string]string{"name": "x"}); err == nil {
		t.Error("SetFields of an unknown id succeeded")
	}
}

// TestCorruptChangesOnlyTheRendering: a corrupted record is served without
// the omitted fields and with raw values, still found by its stored values,
// and served as before once restored.
func TestCorruptChangesOnlyTheRendering(t *testing.T) {
	h := newHarness(t, Options{})
	pay := find(t, h.sim, "payments", func(r map[string]any) bool { return r["status"] == "Processed" })
	id := pay["id"].(string)
	updated, _ := time.Parse(time.RFC3339, pay["updatedDate"].(string))
	query := q("filter[]", "updateddate.GE:"+updated.UTC().Format(time.RFC3339), "filter[]", "updateddate.LE:"+updated.UTC().Format(time.RFC3339),
		"fields[]", "id,updatedDate,amount,paymentNumber", "pageSize", "99")
	fetch := func() map[string]any {
		t.Helper()
		for _, r := range h.walk("/object-query/payments", query) {
			if r["paymentNumber"] == pay["paymentNumber"] {
				return r
			}
		}
		t.Fatalf("payment %s not served", pay["paymentNumber"])
		return nil
	}
	if err := h.sim.Corrupt(id, Corruption{Omit: []string{"updatedDate", "id"}, Raw: map[string]string{"amount": `"1234.567890123456"`}}); err != nil {
		t.Fatal(err)
	}
	got := fetch()
	if _, ok := got["updatedDate"]; ok {
		t.Errorf("updatedDate served: %v", got)
	}
	if _, ok := got["id"]; ok {
		t.Errorf("id served: %v", got)
	}
	if got["amount"] != "1234.567890123456" {
		t.Errorf("amount %#v; want the string", got["amount"])
	}
	if err := h.sim.Corrupt(id, Corruption{Raw: map[string]string{"amount": `1234.567890123456`}}); err != nil {
		t.Fatal(err)
	}
	if got := fetch(); got["amount"] != json.Number("1234.567890123456") || got["id"] != id {
		t.Errorf("amount %#v id %v; want the long number and the id", got["amount"], got["id"])
	}
	if err := h.sim.Corrupt(id, Corruption{}); err != nil {
		t.Fatal(err)
	}
	if got := fetch(); got["amount"] != pay["amount"] || got["updatedDate"] != pay["updatedDate"] {
		t.Errorf("restored record %v; want %v", got, pay)
	}
	if err := h.sim.Corrupt("no-such-id", Corruption{Omit: []string{"id"}}); err == nil {
		t.Error("Corrupt of an unknown id succeeded")
	}
}
