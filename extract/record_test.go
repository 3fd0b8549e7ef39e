package extract

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRecordReadsFieldsAsSent checks the readers of a record decoded in one
// pass: text as encoding/json decodes it, numbers by their literal (never a
// float), names in any case, null as absent, and the errors of a field or an
// item that is not what it should be.
func TestRecordReadsFieldsAsSent(t *testing.T) {
	raw := `{"id":"d1","updatedDate":"2026-11-22T10:00:00-08:00","text":"Zoë \"q\" \u00e9\ud83c\udf70\ttab",
		"num":12345678901234567890.123456789,"numText":"0.10","flag":"True","esc":"tr\u0075e","lit":false,"nul":null,
		"eRPAccountId__c":"ERP-1","obj":{"a":1},"items":[{"id":"i1","updatedDate":"2026-11-22T10:00:00Z"},7]}`
	r, err := decodeRecord("invoices", json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	var want string
	if err := json.Unmarshal([]byte(`"Zoë \"q\" \u00e9\ud83c\udf70\ttab"`), &want); err != nil {
		t.Fatal(err)
	}
	if s := r.str("text"); s == nil || *s != want {
		t.Errorf("text = %v; want %q", s, want)
	}
	if s := r.str("num"); s == nil || *s != "12345678901234567890.123456789" {
		t.Errorf("a number read as text = %v; want its literal", s)
	}
	if d, ok := r.decimal("num"); !ok || d.String() != "12345678901234567890.123456789" {
		t.Errorf("decimal(num) = %v, %v; want the literal exactly", d, ok)
	}
	if d, ok := r.decimal("numText"); !ok || d.String() != "0.1" {
		t.Errorf("decimal(numText) = %v, %v", d, ok)
	}
	if b := r.boolean("flag"); b == nil || !*b {
		t.Errorf("boolean(flag) = %v; want true", b)
	}
	if b := r.boolean("esc"); b == nil || !*b {
		t.Errorf("boolean(esc) = %v; want true: a text form written with a JSON escape is the same text", b)
	}
	if b := r.boolean("lit"); b == nil || *b {
		t.Errorf("boolean(lit) = %v; want false", b)
	}
	if s := r.str("nul", "ERPAccountId__c"); s == nil || *s != "ERP-1" {
		t.Errorf("str(nul, ERPAccountId__c) = %v; want the second name, found in another case", s)
	}
	if r.err != nil {
		t.Fatalf("a readable field failed: %v", r.err)
	}
	if s := r.str("obj"); s != nil || r.err == nil || !strings.Contains(r.err.Error(), `field obj: want text, got {"a":1}`) {
		t.Errorf("str(obj) = %v, %v; want the object refused", s, r.err)
	}
	items := r.list("items")
	if len(items) != 2 {
		t.Fatalf("items = %v", items)
	}
	if it, err := recordOf("invoice_items", items[0]); err != nil || it.id != "i1" {
		t.Errorf("item 0 = %v, %v", it, err)
	}
	var m map[string]json.RawMessage
	wantErr := json.Unmarshal([]byte("7"), &m)
	if _, err := recordOf("invoice_items", items[1]); err == nil || !strings.Contains(err.Error(), "not a JSON object: "+wantErr.Error()) {
		t.Errorf("item 1 (a number) = %v; want encoding/json's %v", err, wantErr)
	}
	for _, bad := range []string{`[1]`, `{"id":`, `{"id":"x"} {}`} {
		wantErr := json.Unmarshal([]byte(bad), &m)
		if _, err := decodeRecord("invoices", json.RawMessage(bad)); err == nil || !strings.Contains(err.Error(), "not a JSON object: "+wantErr.Error()) {
			t.Errorf("decodeRecord(%s) = %v; want encoding/json's %v", bad, err, wantErr)
		}
	}
}
