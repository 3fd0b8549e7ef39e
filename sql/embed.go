// Package sql holds the default mapping from Zuora's raw tables to ERP
// documents: one SQL file per doc_type (the documents, the application
// kinds, the reversal), shared macros and the value mapping CSVs, embedded
// so the binary runs without them on disk. The doc_types are the stage's
// registry (stage.LoadOrder).
//
// Importers alias it: mapping "github.com/zuora-erp-etl/zuora-erp-etl/sql".
package sql

import "embed"

// Files are the default mapping files; a file of the same name in the
// transform's SQLDir replaces one of them.
//
//go:embed *.sql *.csv
var Files embed.FS

// DocFile names the mapping file of a document type, e.g. "credit_memo.sql".
func DocFile(docType string) string { return docType + ".sql" }
