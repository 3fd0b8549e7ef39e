package extract

import "time"

// The row types below are the raw tables of docs/design.md, column for column.
// Every column but id is optional; decimals are DECIMAL(38,9) (internal/money),
// dates are days since 1970-01-01 and timestamps are UTC microseconds.
// RecheckedAt is set only on rows a re-check of a rejected document fetched
// again (see Recheck); the window's own walk leaves it null.

// InvoiceRow is one row of the invoices table.
type InvoiceRow struct {
	ID                      string     `parquet:"id"`
	CreatedDate             *time.Time `parquet:"created_date,optional,timestamp(microsecond)"`
	UpdatedDate             *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
	UpdatedDateRaw          *string    `parquet:"updated_date_raw,optional"`
	AccountID               *string    `parquet:"account_id,optional"`
	AccountNumber           *string    `parquet:"account_number,optional"`
	ERPAccountID            *string    `parquet:"erp_account_id,optional"`
	InvoiceNumber           *string    `parquet:"invoice_number,optional"`
	InvoiceDate             *int32     `parquet:"invoice_date,optional,date"`
	DueDate                 *int32     `parquet:"due_date,optional,date"`
	Status                  *string    `parquet:"status,optional"`
	Currency                *string    `parquet:"currency,optional"`
	Amount                  *[16]byte  `parquet:"amount,optional,decimal(9:38)"`
	AmountWithoutTax        *[16]byte  `parquet:"amount_without_tax,optional,decimal(9:38)"`
	TaxAmount               *[16]byte  `parquet:"tax_amount,optional,decimal(9:38)"`
	Balance                 *[16]byte  `parquet:"balance,optional,decimal(9:38)"`
	TransferredToAccounting *string    `parquet:"transferred_to_accounting,optional"`
	ItemCount               *int64     `parquet:"item_count,optional"`
	RecheckedAt             *time.Time `parquet:"rechecked_at,optional,timestamp(microsecond)"`
}

// InvoiceItemRow is one row of the invoice_items table.
type InvoiceItemRow struct {
	ID               string     `parquet:"id"`
	CreatedDate      *time.Time `parquet:"created_date,optional,timestamp(microsecond)"`
	UpdatedDate      *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
	UpdatedDateRaw   *string    `parquet:"updated_date_raw,optional"`
	InvoiceID        *string    `parquet:"invoice_id,optional"`
	AccountID        *string    `parquet:"account_id,optional"`
	ChargeName       *string    `parquet:"charge_name,optional"`
	ChargeNumber     *string    `parquet:"charge_number,optional"`
	SKU              *string    `parquet:"sku,optional"`
	UOM              *string    `parquet:"uom,optional"`
	Quantity         *[16]byte  `parquet:"quantity,optional,decimal(9:38)"`
	UnitPrice        *[16]byte  `parquet:"unit_price,optional,decimal(9:38)"`
	ChargeAmount     *[16]byte  `parquet:"charge_amount,optional,decimal(9:38)"`
	TaxAmount        *[16]byte  `parquet:"tax_amount,optional,decimal(9:38)"`
	AccountingCode   *string    `parquet:"accounting_code,optional"`
	ServiceStartDate *int32     `parquet:"service_start_date,optional,date"`
	ServiceEndDate   *int32     `parquet:"service_end_date,optional,date"`
	RecheckedAt      *time.Time `parquet:"rechecked_at,optional,timestamp(microsecond)"`
}

// PaymentRow is one row of the payments table.
type PaymentRow struct {
	ID                      string     `parquet:"id"`
	CreatedDate             *time.Time `parquet:"created_date,optional,timestamp(microsecond)"`
	UpdatedDate             *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
	UpdatedDateRaw          *string    `parquet:"updated_date_raw,optional"`
	AccountID               *string    `parquet:"account_id,optional"`
	AccountNumber           *string    `parquet:"account_number,optional"`
	ERPAccountID            *string    `parquet:"erp_account_id,optional"`
	PaymentNumber           *string    `parquet:"payment_number,optional"`
	EffectiveDate           *int32     `parquet:"effective_date,optional,date"`
	Amount                  *[16]byte  `parquet:"amount,optional,decimal(9:38)"`
	AppliedAmount           *[16]byte  `parquet:"applied_amount,optional,decimal(9:38)"`
	UnappliedAmount         *[16]byte  `parquet:"unapplied_amount,optional,decimal(9:38)"`
	Currency                *string    `parquet:"currency,optional"`
	Status                  *string    `parquet:"status,optional"`
	Type                    *string    `parquet:"type,optional"`
	PaymentMethodID         *string    `parquet:"payment_method_id,optional"`
	ReferenceID             *string    `parquet:"reference_id,optional"`
	TransferredToAccounting *string    `parquet:"transferred_to_accounting,optional"`
	RecheckedAt             *time.Time `parquet:"rechecked_at,optional,timestamp(microsecond)"`
}

// RefundRow is one row of the refunds table.
type RefundRow struct {
	ID                      string     `parquet:"id"`
	CreatedDate             *time.Time `parquet:"created_date,optional,timestamp(microsecond)"`
	UpdatedDate             *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
	UpdatedDateRaw          *string    `parquet:"updated_date_raw,optional"`
	AccountID               *string    `parquet:"account_id,optional"`
	AccountNumber           *string    `parquet:"account_number,optional"`
	ERPAccountID            *string    `parquet:"erp_account_id,optional"`
	RefundNumber            *string    `parquet:"refund_number,optional"`
	RefundDate              *int32     `parquet:"refund_date,optional,date"`
	Amount                  *[16]byte  `parquet:"amount,optional,decimal(9:38)"`
	Currency                *string    `parquet:"currency,optional"`
	Status                  *string    `parquet:"status,optional"`
	Type                    *string    `parquet:"type,optional"`
	SourceType              *string    `parquet:"source_type,optional"`
	MethodType              *string    `parquet:"method_type,optional"`
	ReasonCode              *string    `parquet:"reason_code,optional"`
	ReferenceID             *string    `parquet:"reference_id,optional"`
	TransferredToAccounting *string    `parquet:"transferred_to_accounting,optional"`
	RecheckedAt             *time.Time `parquet:"rechecked_at,optional,timestamp(microsecond)"`
}

// CreditMemoRow is one row of the credit_memos table.
type CreditMemoRow struct {
	ID                      string     `parquet:"id"`
	CreatedDate             *time.Time `parquet:"created_date,optional,timestamp(microsecond)"`
	UpdatedDate             *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
	UpdatedDateRaw          *string    `parquet:"updated_date_raw,optional"`
	AccountID               *string    `parquet:"account_id,optional"`
	AccountNumber           *string    `parquet:"account_number,optional"`
	ERPAccountID            *string    `parquet:"erp_account_id,optional"`
	InvoiceID               *string    `parquet:"invoice_id,optional"`
	MemoNumber              *string    `parquet:"memo_number,optional"`
	MemoDate                *int32     `parquet:"memo_date,optional,date"`
	TotalAmount             *[16]byte  `parquet:"total_amount,optional,decimal(9:38)"`
	TotalAmountWithoutTax   *[16]byte  `parquet:"total_amount_without_tax,optional,decimal(9:38)"`
	TaxAmount               *[16]byte  `parquet:"tax_amount,optional,decimal(9:38)"`
	Currency                *string    `parquet:"currency,optional"`
	Status                  *string    `parquet:"status,optional"`
	ReasonCode              *string    `parquet:"reason_code,optional"`
	TransferredToAccounting *string    `parquet:"transferred_to_accounting,optional"`
	ItemCount               *int64     `parquet:"item_count,optional"`
	RecheckedAt             *time.Time `parquet:"rechecked_at,optional,timestamp(microsecond)"`
}

// DebitMemoRow is one row of the debit_memos table: a credit memo row plus due_date.
type DebitMemoRow struct {
	ID                      string     `parquet:"id"`
	CreatedDate             *time.Time `parquet:"created_date,optional,timestamp(microsecond)"`
	UpdatedDate             *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
	UpdatedDateRaw          *string    `parquet:"updated_date_raw,optional"`
	AccountID               *string    `parquet:"account_id,optional"`
	AccountNumber           *string    `parquet:"account_number,optional"`
	ERPAccountID            *string    `parquet:"erp_account_id,optional"`
	InvoiceID               *string    `parquet:"invoice_id,optional"`
	MemoNumber              *string    `parquet:"memo_number,optional"`
	MemoDate                *int32     `parquet:"memo_date,optional,date"`
	TotalAmount             *[16]byte  `parquet:"total_amount,optional,decimal(9:38)"`
	TotalAmountWithoutTax   *[16]byte  `parquet:"total_amount_without_tax,optional,decimal(9:38)"`
	TaxAmount               *[16]byte  `parquet:"tax_amount,optional,decimal(9:38)"`
	Currency                *string    `parquet:"currency,optional"`
	Status                  *string    `parquet:"status,optional"`
	ReasonCode              *string    `parquet:"reason_code,optional"`
	TransferredToAccounting *string    `parquet:"transferred_to_accounting,optional"`
	ItemCount               *int64     `parquet:"item_count,optional"`
	DueDate                 *int32     `parquet:"due_date,optional,date"`
	RecheckedAt             *time.Time `parquet:"rechecked_at,optional,timestamp(microsecond)"`
}

// CreditMemoItemRow is one row of the credit_memo_items table.
type CreditMemoItemRow struct {
	ID               string     `parquet:"id"`
	CreatedDate      *time.Time `parquet:"created_date,optional,timestamp(microsecond)"`
	UpdatedDate      *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
	UpdatedDateRaw   *string    `parquet:"updated_date_raw,optional"`
	CreditMemoID     *string    `parquet:"credit_memo_id,optional"`
	ChargeName       *string    `parquet:"charge_name,optional"`
	ChargeNumber     *string    `parquet:"charge_number,optional"`
	SKU              *string    `parquet:"sku,optional"`
	UnitOfMeasure    *string    `parquet:"unit_of_measure,optional"`
	Quantity         *[16]byte  `parquet:"quantity,optional,decimal(9:38)"`
	UnitPrice        *[16]byte  `parquet:"unit_price,optional,decimal(9:38)"`
	Amount           *[16]byte  `parquet:"amount,optional,decimal(9:38)"`
	AmountWithoutTax *[16]byte  `parquet:"amount_without_tax,optional,decimal(9:38)"`
	TaxAmount        *[16]byte  `parquet:"tax_amount,optional,decimal(9:38)"`
	AccountingCode   *string    `parquet:"accounting_code,optional"`
	ServiceStartDate *int32     `parquet:"service_start_date,optional,date"`
	ServiceEndDate   *int32     `parquet:"service_end_date,optional,date"`
	InvoiceItemID    *string    `parquet:"invoice_item_id,optional"`
	RecheckedAt      *time.Time `parquet:"rechecked_at,optional,timestamp(microsecond)"`
}

// DebitMemoItemRow is one row of the debit_memo_items table.
type DebitMemoItemRow struct {
	ID               string     `parquet:"id"`
	CreatedDate      *time.Time `parquet:"created_date,optional,timestamp(microsecond)"`
	UpdatedDate      *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
	UpdatedDateRaw   *string    `parquet:"updated_date_raw,optional"`
	DebitMemoID      *string    `parquet:"debit_memo_id,optional"`
	ChargeName       *string    `parquet:"charge_name,optional"`
	ChargeNumber     *string    `parquet:"charge_number,optional"`
	SKU              *string    `parquet:"sku,optional"`
	UnitOfMeasure    *string    `parquet:"unit_of_measure,optional"`
	Quantity         *[16]byte  `parquet:"quantity,optional,decimal(9:38)"`
	UnitPrice        *[16]byte  `parquet:"unit_price,optional,decimal(9:38)"`
	Amount           *[16]byte  `parquet:"amount,optional,decimal(9:38)"`
	AmountWithoutTax *[16]byte  `parquet:"amount_without_tax,optional,decimal(9:38)"`
	TaxAmount        *[16]byte  `parquet:"tax_amount,optional,decimal(9:38)"`
	AccountingCode   *string    `parquet:"accounting_code,optional"`
	ServiceStartDate *int32     `parquet:"service_start_date,optional,date"`
	ServiceEndDate   *int32     `parquet:"service_end_date,optional,date"`
	InvoiceItemID    *string    `parquet:"invoice_item_id,optional"`
	RecheckedAt      *time.Time `parquet:"rechecked_at,optional,timestamp(microsecond)"`
}

// keyRow reads only the dedupe key of a staged document table.
type keyRow struct {
	ID          string     `parquet:"id"`
	UpdatedDate *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
}
