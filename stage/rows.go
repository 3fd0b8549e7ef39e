package stage

import (
	"encoding/json"
	"time"
)

// The row types below are the tables of docs/design.md, column for column:
// their Parquet tags are the one description of each table's schema (the
// DuckDB views are derived from them, see TableRows). In the raw tables every
// column but id is optional; decimals are DECIMAL(38,9) (internal/money),
// dates are days since 1970-01-01 and timestamps are UTC microseconds.
// RecheckedAt is set only on rows a re-check of a rejected document fetched
// again; the window's own walk leaves it null.

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
	PaymentAmount           *[16]byte  `parquet:"payment_amount,optional,decimal(9:38)"`
	CreditMemoAmount        *[16]byte  `parquet:"credit_memo_amount,optional,decimal(9:38)"`
	RefundAmount            *[16]byte  `parquet:"refund_amount,optional,decimal(9:38)"`
	Reversed                *bool      `parquet:"reversed,optional"`
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
	RefundAmount            *[16]byte  `parquet:"refund_amount,optional,decimal(9:38)"`
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
	AppliedAmount           *[16]byte  `parquet:"applied_amount,optional,decimal(9:38)"`
	Balance                 *[16]byte  `parquet:"balance,optional,decimal(9:38)"`
	RefundAmount            *[16]byte  `parquet:"refund_amount,optional,decimal(9:38)"`
	Reversed                *bool      `parquet:"reversed,optional"`
	Currency                *string    `parquet:"currency,optional"`
	Status                  *string    `parquet:"status,optional"`
	ReasonCode              *string    `parquet:"reason_code,optional"`
	SourceType              *string    `parquet:"source_type,optional"`
	TransferredToAccounting *string    `parquet:"transferred_to_accounting,optional"`
	ItemCount               *int64     `parquet:"item_count,optional"`
	RecheckedAt             *time.Time `parquet:"rechecked_at,optional,timestamp(microsecond)"`
}

// DebitMemoRow is one row of the debit_memos table.
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
	Balance                 *[16]byte  `parquet:"balance,optional,decimal(9:38)"`
	Currency                *string    `parquet:"currency,optional"`
	Status                  *string    `parquet:"status,optional"`
	ReasonCode              *string    `parquet:"reason_code,optional"`
	SourceType              *string    `parquet:"source_type,optional"`
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

// PaymentApplicationRow is one row of the payment_applications table: one
// application event of a payment, its amount as Zuora sent it (never re-signed).
type PaymentApplicationRow struct {
	ID                 string     `parquet:"id"`
	CreatedDate        *time.Time `parquet:"created_date,optional,timestamp(microsecond)"`
	UpdatedDate        *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
	UpdatedDateRaw     *string    `parquet:"updated_date_raw,optional"`
	ApplyAmount        *[16]byte  `parquet:"apply_amount,optional,decimal(9:38)"`
	EffectiveDate      *int32     `parquet:"effective_date,optional,date"`
	Status             *string    `parquet:"status,optional"` // paymentApplicationStatus
	AccountID          *string    `parquet:"account_id,optional"`
	PaymentID          *string    `parquet:"payment_id,optional"`
	InvoiceID          *string    `parquet:"invoice_id,optional"`
	DebitMemoID        *string    `parquet:"debit_memo_id,optional"`
	ApplicationGroupID *string    `parquet:"application_group_id,optional"`
	RecheckedAt        *time.Time `parquet:"rechecked_at,optional,timestamp(microsecond)"`
}

// CreditMemoApplicationRow is one row of the credit_memo_applications table.
type CreditMemoApplicationRow struct {
	ID                 string     `parquet:"id"`
	CreatedDate        *time.Time `parquet:"created_date,optional,timestamp(microsecond)"`
	UpdatedDate        *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
	UpdatedDateRaw     *string    `parquet:"updated_date_raw,optional"`
	Amount             *[16]byte  `parquet:"amount,optional,decimal(9:38)"`
	EffectiveDate      *int32     `parquet:"effective_date,optional,date"`
	AccountID          *string    `parquet:"account_id,optional"`
	CreditMemoID       *string    `parquet:"credit_memo_id,optional"`
	InvoiceID          *string    `parquet:"invoice_id,optional"`
	DebitMemoID        *string    `parquet:"debit_memo_id,optional"`
	ApplicationGroupID *string    `parquet:"application_group_id,optional"`
	RecheckedAt        *time.Time `parquet:"rechecked_at,optional,timestamp(microsecond)"`
}

// RefundApplicationRow is one row of the refund_applications table.
type RefundApplicationRow struct {
	ID                 string     `parquet:"id"`
	CreatedDate        *time.Time `parquet:"created_date,optional,timestamp(microsecond)"`
	UpdatedDate        *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
	UpdatedDateRaw     *string    `parquet:"updated_date_raw,optional"`
	ApplyAmount        *[16]byte  `parquet:"apply_amount,optional,decimal(9:38)"`
	EffectiveDate      *int32     `parquet:"effective_date,optional,date"`
	AccountID          *string    `parquet:"account_id,optional"`
	RefundID           *string    `parquet:"refund_id,optional"`
	PaymentID          *string    `parquet:"payment_id,optional"`
	CreditMemoID       *string    `parquet:"credit_memo_id,optional"`
	InvoiceID          *string    `parquet:"invoice_id,optional"`
	ApplicationGroupID *string    `parquet:"application_group_id,optional"`
	RecheckedAt        *time.Time `parquet:"rechecked_at,optional,timestamp(microsecond)"`
}

// AccountRow is one row of the accounts table: an account of the window's
// applications, fetched by id, with its ERP customer.
type AccountRow struct {
	ID             string     `parquet:"id"`
	CreatedDate    *time.Time `parquet:"created_date,optional,timestamp(microsecond)"`
	UpdatedDate    *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
	UpdatedDateRaw *string    `parquet:"updated_date_raw,optional"`
	AccountNumber  *string    `parquet:"account_number,optional"`
	ERPAccountID   *string    `parquet:"erp_account_id,optional"`
	RecheckedAt    *time.Time `parquet:"rechecked_at,optional,timestamp(microsecond)"`
}

// QuarantineRow is one row of the quarantine table: a document record the
// extract could not stage, kept with its raw JSON and the reason.
type QuarantineRow struct {
	Entity  string  `parquet:"entity"`   // the raw table the document belongs to, e.g. "payments"
	DocType string  `parquet:"doc_type"` // e.g. "payment"
	DocKey  string  `parquet:"doc_key"`  // the id, or NoIDPrefix + 16 hex of the raw JSON's sha256
	ID      *string `parquet:"id,optional"`
	Number  *string `parquet:"number,optional"`
	// Currency and the header amount are kept when they can be read; Amount
	// only when it fits DECIMAL(38,9), AmountText always exactly as sent.
	Currency       *string    `parquet:"currency,optional"`
	Amount         *[16]byte  `parquet:"amount,optional,decimal(9:38)"`
	AmountText     *string    `parquet:"amount_text,optional"`
	UpdatedDate    *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
	UpdatedDateRaw *string    `parquet:"updated_date_raw,optional"`
	Reason         string     `parquet:"reason"`
	RawJSON        string     `parquet:"raw_json"` // exactly as Zuora sent it, cut at a character boundary after 256 KiB
	RawSize        int64      `parquet:"raw_size"`
	RawSHA256      string     `parquet:"raw_sha256"` // of the whole raw JSON
	RawTruncated   bool       `parquet:"raw_truncated"`
	QuarantinedAt  time.Time  `parquet:"quarantined_at,timestamp(microsecond)"`
	RunID          string     `parquet:"run_id"`
}

// DocumentRow is one row of ready/documents as the transform writes it (with
// DuckDB): what load posts, for audits.
type DocumentRow struct {
	DocType        *string   `parquet:"doc_type,optional"`
	ZuoraID        *string   `parquet:"zuora_id,optional"`
	Number         *string   `parquet:"number,optional"`
	IdempotencyKey *string   `parquet:"idempotency_key,optional"`
	Customer       *string   `parquet:"customer,optional"`
	Currency       *string   `parquet:"currency,optional"`
	Amount         *[16]byte `parquet:"amount,optional,decimal(9:38)"`
	DocDate        *int32    `parquet:"doc_date,optional,date"`
	Endpoint       *string   `parquet:"endpoint,optional"`
	Payload        *string   `parquet:"payload,optional"` // the JSON object to POST
	Event          *string   `parquet:"event,optional"`
	DependsOn      []string  `parquet:"depends_on,list"`
	ReversesType   *string   `parquet:"reverses_doc_type,optional"`
	ReversesKey    *string   `parquet:"reverses_idempotency_key,optional"`
}

// OutcomeRow is one row of ready/rejects or ready/skipped: a document the
// mapping rejected, or one skipped with a reason.
type OutcomeRow struct {
	DocType    *string   `parquet:"doc_type,optional"`
	ZuoraID    *string   `parquet:"zuora_id,optional"`
	Number     *string   `parquet:"number,optional"`
	Customer   *string   `parquet:"customer,optional"`
	Currency   *string   `parquet:"currency,optional"`
	Amount     *[16]byte `parquet:"amount,optional,decimal(9:38)"`
	ReasonCode *string   `parquet:"reason_code,optional"`
	Message    *string   `parquet:"message,optional"`
}

// Envelope is one line of ready/documents NDJSON: a ready document as load
// posts it, its amount an exact JSON number and its payload the JSON object.
// Event, DependsOn and Reverses are docs/design.md "AR pipeline"'s; a line
// written before them has none, and its Event reads as EventPost.
type Envelope struct {
	DocType        string          `json:"doc_type"`
	ZuoraID        string          `json:"zuora_id"`
	Number         string          `json:"number"`
	IdempotencyKey string          `json:"idempotency_key"`
	Customer       string          `json:"customer"`
	Currency       string          `json:"currency"`
	Amount         json.Number     `json:"amount"`
	DocDate        string          `json:"doc_date"`
	Endpoint       string          `json:"endpoint"`
	Payload        json.RawMessage `json:"payload"`
	Event          string          `json:"event,omitempty"`      // EventPost, EventRepost, EventReversal or EventApply
	DependsOn      []string        `json:"depends_on,omitempty"` // Zuora ids the ERP must hold live before this line is posted
	Reverses       *Reversed       `json:"reverses,omitempty"`   // for a reversal: the live copy it ends
}

// Reversed names the live copy a reversal ends: the line that posted it.
type Reversed struct {
	DocType        string `json:"doc_type"`
	IdempotencyKey string `json:"idempotency_key"`
}

// What a line of ready/documents does (Envelope.Event).
const (
	EventPost     = "post"     // the first post of a document; key = its Zuora id
	EventRepost   = "repost"   // a document posted again after a reversal; key = RepostKey
	EventReversal = "reversal" // ends the ERP's live copy; key = ReversalKey
	EventApply    = "apply"    // an application; key = its Zuora id
)

// KeyTimeLayout is how a record version's updatedDate appears in an
// idempotency key: UTC, to the second, as Zuora dates versions.
const KeyTimeLayout = "20060102T150405Z"

// RepostKey is the idempotency key of document id posted again in the
// version updated at updated: new for that event, the same on every retry.
func RepostKey(id string, updated time.Time) string {
	return id + ":" + EventPost + ":" + updated.UTC().Format(KeyTimeLayout)
}

// ReversalKey is the idempotency key of the reversal of id reported by its
// version updated at updated.
func ReversalKey(id string, updated time.Time) string {
	return id + ":" + EventReversal + ":" + updated.UTC().Format(KeyTimeLayout)
}

// Ledger actions and outcomes, as docs/design.md "Ledger" names them.
const (
	ActionPost = "post" // a post of the document to the ERP
	ActionMark = "mark" // the write-back of TransferredToAccounting = Yes to Zuora

	OutcomeCreated   = "created"   // post: the ERP created the document
	OutcomeDuplicate = "duplicate" // post: the ERP already had it (an idempotent replay)
	OutcomeRejected  = "rejected"  // post: the ERP refused it for good (400, 409, 422)
	OutcomeTransient = "transient" // post: no answer that settles it, after every retry
	// post: an application held back until the ERP confirms what it depends on
	OutcomeWaiting = "waiting"
	// post: an application not posted because a document it depends on was rejected
	OutcomeDependencyRejected = "dependency_rejected"
	OutcomeMarked             = "marked"       // mark: Zuora marked it transferred
	OutcomeMarkFailed         = "mark_failed"  // mark: Zuora refused or did not answer
	OutcomeMarkedError        = "marked_error" // mark: Zuora holds TransferredToAccounting = Error for a document the ERP refused
)

// Confirmed reports whether a ledger row says the ERP holds the document.
func Confirmed(action, outcome string) bool {
	return action == ActionPost && (outcome == OutcomeCreated || outcome == OutcomeDuplicate)
}

// LedgerRow is one line of the ledger: a post outcome or a mark result.
type LedgerRow struct {
	RunID          string    `parquet:"run_id"`
	DocType        string    `parquet:"doc_type"`
	ZuoraID        string    `parquet:"zuora_id"`
	IdempotencyKey string    `parquet:"idempotency_key"`
	Action         string    `parquet:"action"`
	Outcome        string    `parquet:"outcome"`
	HTTPStatus     int32     `parquet:"http_status"`
	ERPID          string    `parquet:"erp_id"`
	Message        string    `parquet:"message"`
	Attempts       int32     `parquet:"attempts"`
	Ambiguous      bool      `parquet:"ambiguous"`
	Currency       string    `parquet:"currency"`
	Amount         [16]byte  `parquet:"amount,decimal(9:38)"`
	PayloadSHA256  string    `parquet:"payload_sha256"`
	StartedAt      time.Time `parquet:"started_at,timestamp(microsecond)"`
	FinishedAt     time.Time `parquet:"finished_at,timestamp(microsecond)"`
}

// KeyRow reads only the version key of a raw table's rows, which every raw table has.
type KeyRow struct {
	ID          string     `parquet:"id"`
	UpdatedDate *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
}

// QuarantineKeyRow reads only the version key of a quarantined record.
type QuarantineKeyRow struct {
	DocKey      string     `parquet:"doc_key"`
	UpdatedDate *time.Time `parquet:"updated_date,optional,timestamp(microsecond)"`
}

// TableRows returns, per table of the stage (the raw tables, quarantine,
// documents, rejects, skipped and ledger), a zero row whose type describes it.
func TableRows() map[string]any {
	out := map[string]any{
		QuarantineTable: QuarantineRow{},
		"documents":     DocumentRow{},
		"rejects":       OutcomeRow{},
		"skipped":       OutcomeRow{},
		"ledger":        LedgerRow{},
		AccountsTable:   AccountRow{},
	}
	for _, r := range registry {
		if r.header != "" {
			out[r.header] = r.headerRow
		}
		if r.items != "" {
			out[r.items] = r.itemRow
		}
	}
	return out
}

// Rechecked is a raw row that can say when a re-check fetched it.
type Rechecked interface{ SetRechecked(*time.Time) }

func (r *InvoiceRow) SetRechecked(t *time.Time)               { r.RecheckedAt = t }
func (r *InvoiceItemRow) SetRechecked(t *time.Time)           { r.RecheckedAt = t }
func (r *PaymentRow) SetRechecked(t *time.Time)               { r.RecheckedAt = t }
func (r *RefundRow) SetRechecked(t *time.Time)                { r.RecheckedAt = t }
func (r *CreditMemoRow) SetRechecked(t *time.Time)            { r.RecheckedAt = t }
func (r *CreditMemoItemRow) SetRechecked(t *time.Time)        { r.RecheckedAt = t }
func (r *DebitMemoRow) SetRechecked(t *time.Time)             { r.RecheckedAt = t }
func (r *DebitMemoItemRow) SetRechecked(t *time.Time)         { r.RecheckedAt = t }
func (r *PaymentApplicationRow) SetRechecked(t *time.Time)    { r.RecheckedAt = t }
func (r *CreditMemoApplicationRow) SetRechecked(t *time.Time) { r.RecheckedAt = t }
func (r *RefundApplicationRow) SetRechecked(t *time.Time)     { r.RecheckedAt = t }
func (r *AccountRow) SetRechecked(t *time.Time)               { r.RecheckedAt = t }
