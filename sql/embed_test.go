package sql

import (
	"encoding/csv"
	"io/fs"
	"strings"
	"testing"
)

func TestFilesEmbedded(t *testing.T) {
	want := []string{"_macros.sql", "currencies.csv", "payment_methods.csv"}
	for _, name := range DocFiles {
		want = append(want, name)
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
	for docType, name := range DocFiles {
		data, _ := fs.ReadFile(Files, name)
		if !strings.Contains(string(data), "'"+docType+"' AS doc_type") {
			t.Errorf("%s does not produce doc_type %s", name, docType)
		}
	}
}
