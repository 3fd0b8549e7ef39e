package warehouse

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// hiveType is the Athena/Trino/Spark type of a DuckDB column type.
func hiveType(t string) string {
	switch {
	case strings.HasSuffix(t, "[]"):
		return "array<" + hiveType(strings.TrimSuffix(t, "[]")) + ">"
	case t == "VARCHAR":
		return "string"
	case strings.HasPrefix(t, "DECIMAL"):
		return strings.ToLower(t)
	case t == "DATE":
		return "date"
	case strings.HasPrefix(t, "TIMESTAMP"):
		return "timestamp"
	case t == "BIGINT":
		return "bigint"
	case t == "INTEGER":
		return "int"
	case t == "BOOLEAN":
		return "boolean"
	case t == "DOUBLE":
		return "double"
	}
	return "?" + t
}

// TestOperationsDDLMatchesTheRowTypes checks that docs/operations.md has a
// table for every stage table, whose columns are the row type's, in order and
// with its types, besides the window partition.
func TestOperationsDDLMatchesTheRowTypes(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)CREATE (?:EXTERNAL )?TABLE zuora_stage\\.([a-z_]+) \\((.*?)\n\\)").FindAllStringSubmatch(string(data), -1)
	seen := map[string]bool{}
	for _, b := range blocks {
		table := b[1]
		schema, ok := Schemas[table]
		if !ok {
			t.Errorf("operations.md defines %s, which is not a stage table", table)
			continue
		}
		seen[table] = true
		var got, want []string
		for _, l := range strings.Split(strings.TrimSpace(b[2]), "\n") {
			l = strings.TrimSuffix(strings.TrimSpace(l), ",")
			if l != "`window` string" {
				got = append(got, l)
			}
		}
		for _, c := range schema {
			want = append(want, c.Name+" "+hiveType(c.Type))
		}
		if !slices.Equal(got, want) {
			t.Errorf("operations.md %s:\n got  %v\n want %v", table, got, want)
		}
	}
	for table := range Schemas {
		if !seen[table] {
			t.Errorf("operations.md has no DDL for %s", table)
		}
	}
}
