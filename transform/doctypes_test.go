package transform

import (
	"strings"
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// TestDocTypesNotMovedRunNoSQLAndHaveNoRows: with memos left out, a broken
// memo mapping is never run and no memo reaches any output.
func TestDocTypesNotMovedRunNoSQLAndHaveNoRows(t *testing.T) {
	dir := sqlDir(t, map[string]string{"credit_memo.sql": "SELECT this is not SQL", "debit_memo.sql": "SELECT neither"})
	st := fixtureStage(t)
	m := runTransform(t, st, Options{SQLDir: dir, DocTypes: []stage.DocType{stage.Invoice, stage.Payment, stage.Refund}})
	for _, r := range m.Totals {
		if strings.Contains(r.DocType, "memo") {
			t.Errorf("totals list %s %s", r.DocType, r.Currency)
		}
	}
	docs, _ := decodeDocs(t, read(t, st, m.Documents.Key))
	if len(docs) == 0 {
		t.Fatal("no document is ready")
	}
	for id, d := range docs {
		if strings.Contains(d.DocType, "memo") {
			t.Errorf("%s %s is ready although memos are not moved", d.DocType, id)
		}
	}
	for id := range reasons(t, parquetNDJSON(t, st, m.Rejects)) {
		if strings.HasPrefix(id, "cm") || strings.HasPrefix(id, "dm") {
			t.Errorf("memo %s rejected although memos are not moved", id)
		}
	}
	if _, err := (Options{DocTypes: []stage.DocType{stage.Invoice, "memo"}}).moved(); err == nil {
		t.Error("an unknown document type was accepted")
	}
}
