package sql

import (
	"encoding/csv"
	"io/fs"
	"strings"
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func TestFilesEmbedded(t *testing.T) {
	want := []string{"_macros.sql", "currencies.csv", "payment_methods.csv"}
	for _, dt := range stage.LoadOrder() {
		want = append(want, DocFile(string(dt)))
	}
	for _, name := range want {
		data, err := fs.ReadFile(Files, name)
		if err != nil {
			t.Errorf("%s is not embedded: %v", name, err)
			continue
		}
		if len(data) == 0 {
			t.Errorf("%s is empty", name)
		}
		if strings.HasSuffix(name, ".csv") {
			rows, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
			if err != nil || len(rows) < 2 {
				t.Errorf("%s: %d rows, %v; want a header and at least one value", name, len(rows), err)
			}
		}
	}
	for _, docType := range stage.LoadOrder() {
		name := DocFile(string(docType))
		data, _ := fs.ReadFile(Files, name)
		if !strings.Contains(string(data), "'"+string(docType)+"' AS doc_type") {
			t.Errorf("%s does not produce doc_type %s", name, docType)
		}
	}
}
