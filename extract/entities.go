package extract

import (
	"context"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// docSpec says how one Zuora document type is queried and turned into rows of
// its header table H and, when it has items, its item table I.
// Its tables and Object Query paths are the registry's (stage.DocType).
type docSpec[H, I any] struct {
	docType stage.DocType
	fields  []string // fields[] of the base object
	amount  string   // JSON name of the header amount ("amount" or "totalAmount")
	number  string   // JSON name of the document number, e.g. "invoiceNumber"; "" for applications
	header  func(r *record, a account, items int) H
	// application marks an application kind: it expands no account (Zuora
	// offers none) and its accounts are fetched by id after the walks.
	application bool

	expand      string   // expand[] name, e.g. "invoiceitems"; empty when the document has no items
	childKey    string   // JSON key of the expanded list, e.g. "invoiceItems"
	parentField string   // item filter field, e.g. "invoiceid"
	itemFields  []string // fields[] of the items, both expanded and from the endpoint
	item        func(r *record, parent *record) I
	lineTotal   func(r *record) decimal.Decimal // what the header amount must equal the sum of
}

var invoiceSpec = docSpec[stage.InvoiceRow, stage.InvoiceItemRow]{
	docType: stage.Invoice,
	number:  "invoiceNumber",
	fields: []string{"id", "createddate", "updateddate", "accountid", "invoicenumber", "invoicedate", "duedate",
		"status", "currency", "amount", "amountwithouttax", "taxamount", "balance", "paymentamount", "creditmemoamount",
		"refundamount", "reversed", "transferredtoaccounting"},
	amount: "amount",
	header: func(r *record, a account, items int) stage.InvoiceRow {
		return stage.InvoiceRow{
			ID: r.id, CreatedDate: r.created(), UpdatedDate: r.updatedPtr(), UpdatedDateRaw: r.rawUpdated(),
			AccountID: a.id, AccountNumber: a.number, ERPAccountID: a.erpID,
			InvoiceNumber: r.str("invoiceNumber"), InvoiceDate: r.date("invoiceDate"), DueDate: r.date("dueDate"),
			Status: r.str("status"), Currency: r.str("currency"),
			Amount: r.fixed("amount"), AmountWithoutTax: r.fixed("amountWithoutTax"), TaxAmount: r.fixed("taxAmount"),
			Balance: r.fixed("balance"), PaymentAmount: r.fixed("paymentAmount"), CreditMemoAmount: r.fixed("creditMemoAmount"),
			RefundAmount: r.fixed("refundAmount"), Reversed: r.boolean("reversed"),
			TransferredToAccounting: r.str("transferredToAccounting"), ItemCount: int64Ptr(items),
		}
	},
	expand:      "invoiceitems",
	childKey:    "invoiceItems",
	parentField: "invoiceid",
	itemFields: []string{"id", "createddate", "updateddate", "invoiceid", "accountid", "chargename", "chargenumber",
		"sku", "uom", "quantity", "unitprice", "chargeamount", "taxamount", "accountingcode",
		"servicestartdate", "serviceenddate"},
	item: func(r *record, parent *record) stage.InvoiceItemRow {
		row := stage.InvoiceItemRow{
			ID: r.id, CreatedDate: r.created(), UpdatedDate: r.updatedPtr(), UpdatedDateRaw: r.rawUpdated(),
			InvoiceID: r.str("invoiceId"), AccountID: r.str("accountId"),
			ChargeName: r.str("chargeName"), ChargeNumber: r.str("chargeNumber"),
			SKU: r.str("sKU", "sku", "SKU"), UOM: r.str("uOM", "uom", "UOM"),
			Quantity: r.fixed("quantity"), UnitPrice: r.fixed("unitPrice"),
			ChargeAmount: r.fixed("chargeAmount"), TaxAmount: r.fixed("taxAmount"),
			AccountingCode:   r.str("accountingCode"),
			ServiceStartDate: r.date("serviceStartDate"), ServiceEndDate: r.date("serviceEndDate"),
		}
		if row.InvoiceID == nil {
			row.InvoiceID = &parent.id
		}
		if row.AccountID == nil {
			row.AccountID = parent.account("").id // only the id is wanted
		}
		return row
	},
	lineTotal: func(r *record) decimal.Decimal { return sum(r, "chargeAmount", "taxAmount") },
}

var paymentSpec = docSpec[stage.PaymentRow, struct{}]{
	docType: stage.Payment,
	number:  "paymentNumber",
	fields: []string{"id", "createddate", "updateddate", "accountid", "paymentnumber", "effectivedate", "amount",
		"appliedamount", "unappliedamount", "refundamount", "currency", "status", "type", "paymentmethodid", "referenceid",
		"transferredtoaccounting"},
	amount: "amount",
	header: func(r *record, a account, _ int) stage.PaymentRow {
		return stage.PaymentRow{
			ID: r.id, CreatedDate: r.created(), UpdatedDate: r.updatedPtr(), UpdatedDateRaw: r.rawUpdated(),
			AccountID: a.id, AccountNumber: a.number, ERPAccountID: a.erpID,
			PaymentNumber: r.str("paymentNumber"), EffectiveDate: r.date("effectiveDate"),
			Amount: r.fixed("amount"), AppliedAmount: r.fixed("appliedAmount"), UnappliedAmount: r.fixed("unappliedAmount"),
			RefundAmount: r.fixed("refundAmount"),
			Currency:     r.str("currency"), Status: r.str("status"), Type: r.str("type"),
			PaymentMethodID: r.str("paymentMethodId"), ReferenceID: r.str("referenceId", "referenceID"),
			TransferredToAccounting: r.str("transferredToAccounting"),
		}
	},
}

var refundSpec = docSpec[stage.RefundRow, struct{}]{
	docType: stage.Refund,
	number:  "refundNumber",
	fields: []string{"id", "createddate", "updateddate", "accountid", "refundnumber", "refunddate", "amount",
		"currency", "status", "type", "sourcetype", "methodtype", "reasoncode", "referenceid",
		"transferredtoaccounting"},
	amount: "amount",
	header: func(r *record, a account, _ int) stage.RefundRow {
		return stage.RefundRow{
			ID: r.id, CreatedDate: r.created(), UpdatedDate: r.updatedPtr(), UpdatedDateRaw: r.rawUpdated(),
			AccountID: a.id, AccountNumber: a.number, ERPAccountID: a.erpID,
			RefundNumber: r.str("refundNumber"), RefundDate: r.date("refundDate"), Amount: r.fixed("amount"),
			Currency: r.str("currency"), Status: r.str("status"), Type: r.str("type"),
			SourceType: r.str("sourceType"), MethodType: r.str("methodType"), ReasonCode: r.str("reasonCode"),
			ReferenceID:             r.str("referenceID", "referenceId"),
			TransferredToAccounting: r.str("transferredToAccounting"),
		}
	},
}

// memoFields are the base fields shared by credit and debit memos.
var memoFields = []string{"id", "createddate", "updateddate", "accountid", "invoiceid", "memonumber", "memodate",
	"totalamount", "totalamountwithouttax", "taxamount", "balance", "currency", "status", "reasoncode", "sourcetype",
	"transferredtoaccounting"}

// memoItemFields are the item fields shared by credit and debit memo items; the
// parent id field is added per type. Memo items have no accountingCode in the
// Object Query contract, so it is read when present but never requested.
var memoItemFields = []string{"id", "createddate", "updateddate", "chargename", "chargenumber", "sku",
	"unitofmeasure", "quantity", "unitprice", "amount", "amountwithouttax", "taxamount",
	"servicestartdate", "serviceenddate", "invoiceitemid"}

func memoLineTotal(r *record) decimal.Decimal { return sum(r, "amountWithoutTax", "taxAmount") }

var creditMemoSpec = docSpec[stage.CreditMemoRow, stage.CreditMemoItemRow]{
	docType: stage.CreditMemo,
	number:  "memoNumber",
	fields:  append(append([]string{}, memoFields...), "appliedamount", "refundamount", "reversed"),
	amount:  "totalAmount",
	header: func(r *record, a account, items int) stage.CreditMemoRow {
		return stage.CreditMemoRow{
			ID: r.id, CreatedDate: r.created(), UpdatedDate: r.updatedPtr(), UpdatedDateRaw: r.rawUpdated(),
			AccountID: a.id, AccountNumber: a.number, ERPAccountID: a.erpID,
			InvoiceID: r.str("invoiceId"), MemoNumber: r.str("memoNumber"), MemoDate: r.date("memoDate"),
			TotalAmount: r.fixed("totalAmount"), TotalAmountWithoutTax: r.fixed("totalAmountWithoutTax"),
			TaxAmount: r.fixed("taxAmount"), AppliedAmount: r.fixed("appliedAmount"), Balance: r.fixed("balance"),
			RefundAmount: r.fixed("refundAmount"), Reversed: r.boolean("reversed"),
			Currency: r.str("currency"), Status: r.str("status"), ReasonCode: r.str("reasonCode"),
			SourceType: r.str("sourceType"), TransferredToAccounting: r.str("transferredToAccounting"),
			ItemCount: int64Ptr(items),
		}
	},
	expand:      "creditmemoitems",
	childKey:    "creditMemoItems",
	parentField: "creditmemoid",
	itemFields:  append([]string{"creditmemoid"}, memoItemFields...),
	item: func(r *record, parent *record) stage.CreditMemoItemRow {
		row := stage.CreditMemoItemRow{
			ID: r.id, CreatedDate: r.created(), UpdatedDate: r.updatedPtr(), UpdatedDateRaw: r.rawUpdated(),
			CreditMemoID: r.str("creditMemoId"), ChargeName: r.str("chargeName"), ChargeNumber: r.str("chargeNumber"),
			SKU: r.str("sku", "sKU", "SKU"), UnitOfMeasure: r.str("unitOfMeasure"),
			Quantity: r.fixed("quantity"), UnitPrice: r.fixed("unitPrice"), Amount: r.fixed("amount"),
			AmountWithoutTax: r.fixed("amountWithoutTax"), TaxAmount: r.fixed("taxAmount"),
			AccountingCode:   r.str("accountingCode"),
			ServiceStartDate: r.date("serviceStartDate"), ServiceEndDate: r.date("serviceEndDate"),
			InvoiceItemID: r.str("invoiceItemId"),
		}
		if row.CreditMemoID == nil {
			row.CreditMemoID = &parent.id
		}
		return row
	},
	lineTotal: memoLineTotal,
}

var debitMemoSpec = docSpec[stage.DebitMemoRow, stage.DebitMemoItemRow]{
	docType: stage.DebitMemo,
	number:  "memoNumber",
	fields:  append(append([]string{}, memoFields...), "duedate"),
	amount:  "totalAmount",
	header: func(r *record, a account, items int) stage.DebitMemoRow {
		return stage.DebitMemoRow{
			ID: r.id, CreatedDate: r.created(), UpdatedDate: r.updatedPtr(), UpdatedDateRaw: r.rawUpdated(),
			AccountID: a.id, AccountNumber: a.number, ERPAccountID: a.erpID,
			InvoiceID: r.str("invoiceId"), MemoNumber: r.str("memoNumber"), MemoDate: r.date("memoDate"),
			TotalAmount: r.fixed("totalAmount"), TotalAmountWithoutTax: r.fixed("totalAmountWithoutTax"),
			TaxAmount: r.fixed("taxAmount"), Balance: r.fixed("balance"), Currency: r.str("currency"), Status: r.str("status"),
			ReasonCode: r.str("reasonCode"), SourceType: r.str("sourceType"), TransferredToAccounting: r.str("transferredToAccounting"),
			ItemCount: int64Ptr(items), DueDate: r.date("dueDate"),
		}
	},
	expand:      "debitmemoitems",
	childKey:    "debitMemoItems",
	parentField: "debitmemoid",
	itemFields:  append([]string{"debitmemoid"}, memoItemFields...),
	item: func(r *record, parent *record) stage.DebitMemoItemRow {
		row := stage.DebitMemoItemRow{
			ID: r.id, CreatedDate: r.created(), UpdatedDate: r.updatedPtr(), UpdatedDateRaw: r.rawUpdated(),
			DebitMemoID: r.str("debitMemoId"), ChargeName: r.str("chargeName"), ChargeNumber: r.str("chargeNumber"),
			SKU: r.str("sku", "sKU", "SKU"), UnitOfMeasure: r.str("unitOfMeasure"),
			Quantity: r.fixed("quantity"), UnitPrice: r.fixed("unitPrice"), Amount: r.fixed("amount"),
			AmountWithoutTax: r.fixed("amountWithoutTax"), TaxAmount: r.fixed("taxAmount"),
			AccountingCode:   r.str("accountingCode"),
			ServiceStartDate: r.date("serviceStartDate"), ServiceEndDate: r.date("serviceEndDate"),
			InvoiceItemID: r.str("invoiceItemId"),
		}
		if row.DebitMemoID == nil {
			row.DebitMemoID = &parent.id
		}
		return row
	},
	lineTotal: memoLineTotal,
}

// The application kinds (docs/zuora-api.md §7): events with their own ids,
// walked by updatedDate like the documents, amounts staged exactly as sent.
// They expand no account; the walk collects their accountId for the fetch
// by id that follows (see accounts.go).

var paymentApplicationSpec = docSpec[stage.PaymentApplicationRow, struct{}]{
	docType:     stage.PaymentApplication,
	application: true,
	fields: []string{"id", "createddate", "updateddate", "applyamount", "effectivedate", "paymentapplicationstatus",
		"accountid", "paymentid", "invoiceid", "debitmemoid", "applicationgroupid"},
	amount: "applyAmount",
	header: func(r *record, _ account, _ int) stage.PaymentApplicationRow {
		return stage.PaymentApplicationRow{
			ID: r.id, CreatedDate: r.created(), UpdatedDate: r.updatedPtr(), UpdatedDateRaw: r.rawUpdated(),
			ApplyAmount: r.fixed("applyAmount"), EffectiveDate: r.date("effectiveDate"), Status: r.str("paymentApplicationStatus"),
			AccountID: r.str("accountId"), PaymentID: r.str("paymentId"), InvoiceID: r.str("invoiceId"),
			DebitMemoID: r.str("debitMemoId"), ApplicationGroupID: r.str("applicationGroupId"),
		}
	},
}

var creditMemoApplicationSpec = docSpec[stage.CreditMemoApplicationRow, struct{}]{
	docType:     stage.CreditMemoApplication,
	application: true,
	fields: []string{"id", "createddate", "updateddate", "amount", "effectivedate", "accountid", "creditmemoid",
		"invoiceid", "debitmemoid", "applicationgroupid"},
	amount: "amount",
	header: func(r *record, _ account, _ int) stage.CreditMemoApplicationRow {
		return stage.CreditMemoApplicationRow{
			ID: r.id, CreatedDate: r.created(), UpdatedDate: r.updatedPtr(), UpdatedDateRaw: r.rawUpdated(),
			Amount: r.fixed("amount"), EffectiveDate: r.date("effectiveDate"), AccountID: r.str("accountId"),
			CreditMemoID: r.str("creditMemoId"), InvoiceID: r.str("invoiceId"), DebitMemoID: r.str("debitMemoId"),
			ApplicationGroupID: r.str("applicationGroupId"),
		}
	},
}

var refundApplicationSpec = docSpec[stage.RefundApplicationRow, struct{}]{
	docType:     stage.RefundApplication,
	application: true,
	fields: []string{"id", "createddate", "updateddate", "applyamount", "effectivedate", "accountid", "refundid",
		"paymentid", "creditmemoid", "invoiceid", "applicationgroupid"},
	amount: "applyAmount",
	header: func(r *record, _ account, _ int) stage.RefundApplicationRow {
		return stage.RefundApplicationRow{
			ID: r.id, CreatedDate: r.created(), UpdatedDate: r.updatedPtr(), UpdatedDateRaw: r.rawUpdated(),
			ApplyAmount: r.fixed("applyAmount"), EffectiveDate: r.date("effectiveDate"), AccountID: r.str("accountId"),
			RefundID: r.str("refundId"), PaymentID: r.str("paymentId"), CreditMemoID: r.str("creditMemoId"),
			InvoiceID: r.str("invoiceId"), ApplicationGroupID: r.str("applicationGroupId"),
		}
	},
}

// entity is how the extract stages one document type: one walk per time
// slice of a window, and a re-check of rejected documents by id.
type entity interface {
	walk(ctx context.Context, x *run, n int, r span) error
	recheck(ctx context.Context, src Source, st *stage.Stage, wanted []Wanted, res *Rechecked, opts RecheckOptions) error
	numberField() string
	kind() stage.DocType
}

func (sp docSpec[H, I]) numberField() string { return sp.number }
func (sp docSpec[H, I]) kind() stage.DocType { return sp.docType }

func (sp docSpec[H, I]) walk(ctx context.Context, x *run, n int, r span) error {
	return walk(ctx, x, sp, n, r)
}

func (sp docSpec[H, I]) recheck(ctx context.Context, src Source, st *stage.Stage, wanted []Wanted, res *Rechecked, opts RecheckOptions) error {
	return recheckTable(ctx, src, st, sp, wanted, res, opts)
}

// entities are the walkers of every stream: the documents and the application kinds.
var entities = map[stage.DocType]entity{
	stage.Invoice:               invoiceSpec,
	stage.DebitMemo:             debitMemoSpec,
	stage.CreditMemo:            creditMemoSpec,
	stage.Payment:               paymentSpec,
	stage.Refund:                refundSpec,
	stage.PaymentApplication:    paymentApplicationSpec,
	stage.CreditMemoApplication: creditMemoApplicationSpec,
	stage.RefundApplication:     refundApplicationSpec,
}

func (sp docSpec[H, I]) table() string      { return sp.docType.HeaderTable() }
func (sp docSpec[H, I]) itemTable() string  { return sp.docType.ItemTable() }
func (sp docSpec[H, I]) object() string     { return sp.docType.Object() }
func (sp docSpec[H, I]) itemObject() string { return sp.docType.ItemObject() }

// sum adds the named decimal fields of r, a missing one counting as zero.
func sum(r *record, names ...string) decimal.Decimal {
	var total decimal.Decimal
	for _, n := range names {
		if d, ok := r.decimal(n); ok {
			total = total.Add(d)
		}
	}
	return total
}
