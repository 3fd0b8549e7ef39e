package warehouse

// Column is one column of a stage table as DuckDB reads it.
type Column struct {
	Name string
	Type string
}

const dec = "DECIMAL(38,9)"

func cols(pairs ...string) []Column {
	out := make([]Column, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, Column{Name: pairs[i], Type: pairs[i+1]})
	}
	return out
}

// withCommon returns a raw table's columns: the common ones, rest, and
// rechecked_at (set on rows a re-check of a rejected document fetched again).
func withCommon(rest []Column) []Column {
	common := cols("id", "VARCHAR", "created_date", "TIMESTAMPTZ", "updated_date", "TIMESTAMPTZ", "updated_date_raw", "VARCHAR")
	return append(append(common, rest...), Column{"rechecked_at", "TIMESTAMPTZ"})
}

var memoItemColumns = cols(
	"charge_name", "VARCHAR", "charge_number", "VARCHAR", "sku", "VARCHAR", "unit_of_measure", "VARCHAR",
	"quantity", dec, "unit_price", dec, "amount", dec, "amount_without_tax", dec, "tax_amount", dec,
	"accounting_code", "VARCHAR", "service_start_date", "DATE", "service_end_date", "DATE", "invoice_item_id", "VARCHAR",
)

var memoColumns = cols(
	"account_id", "VARCHAR", "account_number", "VARCHAR", "erp_account_id", "VARCHAR", "invoice_id", "VARCHAR",
	"memo_number", "VARCHAR", "memo_date", "DATE", "total_amount", dec, "total_amount_without_tax", dec,
	"tax_amount", dec, "currency", "VARCHAR", "status", "VARCHAR", "reason_code", "VARCHAR",
	"transferred_to_accounting", "VARCHAR", "item_count", "BIGINT",
)

// readyColumns are the columns of ready/rejects and ready/skipped.
var readyColumns = cols(
	"doc_type", "VARCHAR", "zuora_id", "VARCHAR", "number", "VARCHAR", "customer", "VARCHAR",
	"currency", "VARCHAR", "amount", dec, "reason_code", "VARCHAR", "message", "VARCHAR",
)

// Schemas are the columns of every stage table (docs/design.md), without the
// window column that views add. They give a table with no files yet its shape.
var Schemas = map[string][]Column{
	"invoices": withCommon(cols(
		"account_id", "VARCHAR", "account_number", "VARCHAR", "erp_account_id", "VARCHAR", "invoice_number", "VARCHAR",
		"invoice_date", "DATE", "due_date", "DATE", "status", "VARCHAR", "currency", "VARCHAR",
		"amount", dec, "amount_without_tax", dec, "tax_amount", dec, "balance", dec,
		"transferred_to_accounting", "VARCHAR", "item_count", "BIGINT",
	)),
	"invoice_items": withCommon(cols(
		"invoice_id", "VARCHAR", "account_id", "VARCHAR", "charge_name", "VARCHAR", "charge_number", "VARCHAR",
		"sku", "VARCHAR", "uom", "VARCHAR", "quantity", dec, "unit_price", dec, "charge_amount", dec,
		"tax_amount", dec, "accounting_code", "VARCHAR", "service_start_date", "DATE", "service_end_date", "DATE",
	)),
	"payments": withCommon(cols(
		"account_id", "VARCHAR", "account_number", "VARCHAR", "erp_account_id", "VARCHAR", "payment_number", "VARCHAR",
		"effective_date", "DATE", "amount", dec, "applied_amount", dec, "unapplied_amount", dec,
		"currency", "VARCHAR", "status", "VARCHAR", "type", "VARCHAR", "payment_method_id", "VARCHAR",
		"reference_id", "VARCHAR", "transferred_to_accounting", "VARCHAR",
	)),
	"refunds": withCommon(cols(
		"account_id", "VARCHAR", "account_number", "VARCHAR", "erp_account_id", "VARCHAR", "refund_number", "VARCHAR",
		"refund_date", "DATE", "amount", dec, "currency", "VARCHAR", "status", "VARCHAR", "type", "VARCHAR",
		"source_type", "VARCHAR", "method_type", "VARCHAR", "reason_code", "VARCHAR", "reference_id", "VARCHAR",
		"transferred_to_accounting", "VARCHAR",
	)),
	"credit_memos":      withCommon(memoColumns),
	"credit_memo_items": withCommon(append(cols("credit_memo_id", "VARCHAR"), memoItemColumns...)),
	"debit_memos":       withCommon(append(append([]Column{}, memoColumns...), Column{"due_date", "DATE"})),
	"debit_memo_items":  withCommon(append(cols("debit_memo_id", "VARCHAR"), memoItemColumns...)),
	"documents": cols(
		"doc_type", "VARCHAR", "zuora_id", "VARCHAR", "number", "VARCHAR", "idempotency_key", "VARCHAR",
		"customer", "VARCHAR", "currency", "VARCHAR", "amount", dec, "doc_date", "DATE",
		"endpoint", "VARCHAR", "payload", "VARCHAR",
	),
	"quarantine": cols(
		"entity", "VARCHAR", "doc_type", "VARCHAR", "doc_key", "VARCHAR", "id", "VARCHAR", "number", "VARCHAR",
		"currency", "VARCHAR", "amount", dec, "amount_text", "VARCHAR", "updated_date", "TIMESTAMPTZ",
		"updated_date_raw", "VARCHAR", "reason", "VARCHAR", "raw_json", "VARCHAR", "raw_size", "BIGINT",
		"raw_sha256", "VARCHAR", "raw_truncated", "BOOLEAN", "quarantined_at", "TIMESTAMPTZ", "run_id", "VARCHAR",
	),
	"rejects": readyColumns,
	"skipped": readyColumns,
	"ledger": cols(
		"run_id", "VARCHAR", "doc_type", "VARCHAR", "zuora_id", "VARCHAR", "idempotency_key", "VARCHAR",
		"action", "VARCHAR", "outcome", "VARCHAR", "http_status", "INTEGER", "erp_id", "VARCHAR",
		"message", "VARCHAR", "attempts", "INTEGER", "ambiguous", "BOOLEAN", "currency", "VARCHAR",
		"amount", dec, "payload_sha256", "VARCHAR", "started_at", "TIMESTAMPTZ", "finished_at", "TIMESTAMPTZ",
	),
}
