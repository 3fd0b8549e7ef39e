package extract

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// TestSchemasFollowTheDesign checks every raw table's Parquet schema against
// the column list of docs/design.md, types and nullability included.
func TestSchemasFollowTheDesign(t *testing.T) {
	common := "id created_date:TS updated_date:TS updated_date_raw "
	memo := "account_id account_number erp_account_id invoice_id memo_number memo_date:DATE total_amount:DEC " +
		"total_amount_without_tax:DEC tax_amount:DEC currency status reason_code transferred_to_accounting item_count:INT64"
	memoItem := "charge_name charge_number sku unit_of_measure quantity:DEC unit_price:DEC amount:DEC " +
		"amount_without_tax:DEC tax_amount:DEC accounting_code service_start_date:DATE service_end_date:DATE invoice_item_id"
	want := map[string]string{
		"invoices": common + "account_id account_number erp_account_id invoice_number invoice_date:DATE due_date:DATE status " +
			"currency amount:DEC amount_without_tax:DEC tax_amount:DEC balance:DEC transferred_to_accounting item_count:INT64",
		"invoice_items": common + "invoice_id account_id charge_name charge_number sku uom quantity:DEC unit_price:DEC " +
			"charge_amount:DEC tax_amount:DEC accounting_code service_start_date:DATE service_end_date:DATE",
		"payments": common + "account_id account_number erp_account_id payment_number effective_date:DATE amount:DEC " +
			"applied_amount:DEC unapplied_amount:DEC currency status type payment_method_id reference_id transferred_to_accounting",
		"refunds": common + "account_id account_number erp_account_id refund_number refund_date:DATE amount:DEC currency " +
			"status type source_type method_type reason_code reference_id transferred_to_accounting",
		"credit_memos":      common + memo,
		"debit_memos":       common + memo + " due_date:DATE",
		"credit_memo_items": common + "credit_memo_id " + memoItem,
		"debit_memo_items":  common + "debit_memo_id " + memoItem,
	}
	typeOf := map[string]string{
		"TS":    "TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)",
		"DATE":  "DATE",
		"DEC":   "DECIMAL(38,9)",
		"INT64": "INT(64,true)",
		"":      "STRING",
	}

	st := newStage(t)
	m := mustRun(t, newFake(), st, w1, Options{}) // empty tables still carry their schema
	for _, table := range stage.Tables() {
		data, err := st.Read(context.Background(), m.Tables[table].Files[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		var got, exp []string
		for _, col := range f.Schema().Fields() {
			lt := ""
			if col.Type().LogicalType() != nil {
				lt = col.Type().LogicalType().String()
			}
			if lt == "DECIMAL(38,9)" && (col.Type().Kind() != parquet.FixedLenByteArray || col.Type().Length() != 16) {
				lt += " not in FIXED_LEN_BYTE_ARRAY(16)"
			}
			nullability := col.Optional() // every column is optional except id
			if col.Name() == "id" {
				nullability = col.Required()
			}
			if !nullability {
				lt += " (nullability wrong)"
			}
			got = append(got, col.Name()+" "+lt)
		}
		for _, c := range strings.Fields(want[table] + " rechecked_at:TS") {
			name, kind, _ := strings.Cut(c, ":")
			exp = append(exp, name+" "+typeOf[kind])
		}
		if !slices.Equal(got, exp) {
			t.Errorf("%s schema:\n got %q\nwant %q", table, got, exp)
		}
	}
}
