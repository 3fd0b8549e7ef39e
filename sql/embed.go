// Package sql holds the default mapping from Zuora's raw tables to ERP
// documents: one SQL file per document type, shared macros and the value
// mapping CSVs, embedded so the binary runs without them on disk.
//
// Importers alias it: mapping "github.com/zuora-erp-etl/zuora-erp-etl/sql".
package sql

import "embed"

// Files are the default mapping files; a file of the same name in the
// transform's SQLDir replaces one of them.
//
//go:embed *.sql *.csv
var Files embed.FS

// DocFiles names the mapping file of each ERP document type.
var DocFiles = map[string]string{
	"invoice":     "invoice.sql",
	"payment":     "payment.sql",
	"refund":      "refund.sql",
	"credit_memo": "credit_memo.sql",
	"debit_memo":  "debit_memo.sql",
}
