//go:build ignore

// gen_fixtures rebuilds the transform test fixtures from fixtures.sql:
//
//	go run ./testdata/transform/gen_fixtures.go
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func main() {
	ctx := context.Background()
	dir := filepath.Join("testdata", "transform")
	script, err := os.ReadFile(filepath.Join(dir, "fixtures.sql"))
	if err != nil {
		log.Fatal(err)
	}
	db, err := warehouse.Open(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	outputs := map[string]string{"ledger_other": "ledger", "ledger_same": "ledger"}
	for _, t := range stage.Tables() {
		outputs[t] = t
	}
	for name, schema := range outputs {
		var cols []string
		for _, c := range warehouse.Schemas[schema] {
			cols = append(cols, warehouse.Ident(c.Name)+" "+c.Type)
		}
		if err := db.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", warehouse.Ident(name), strings.Join(cols, ", "))); err != nil {
			log.Fatal(err)
		}
	}
	if err := db.Exec(ctx, string(script)); err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "raw"), 0o755); err != nil {
		log.Fatal(err)
	}
	for name := range outputs {
		path := filepath.Join(dir, "raw", name+".parquet")
		if strings.HasPrefix(name, "ledger") {
			path = filepath.Join(dir, name+".parquet")
		}
		q := fmt.Sprintf("COPY (SELECT * FROM %s ORDER BY ALL) TO %s (FORMAT parquet, COMPRESSION zstd)", warehouse.Ident(name), warehouse.Literal(path))
		if err := db.Exec(ctx, q); err != nil {
			log.Fatal(err)
		}
	}
}
