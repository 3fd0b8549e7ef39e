package stage

import (
	"fmt"
	"strings"
)

// DocType is an ERP document type: one kind of Zuora document. The registry
// below holds what every package knows of it; each stage keeps only its own
// behaviour per type, keyed by DocType.
type DocType string

// The document types, as the doc_type columns and the settings name them.
const (
	Invoice    DocType = "invoice"
	DebitMemo  DocType = "debit_memo"
	CreditMemo DocType = "credit_memo"
	Payment    DocType = "payment"
	Refund     DocType = "refund"
)

// docTypeFacts are the facts of one document type that more than one package reads.
type docTypeFacts struct {
	header     string // raw header table
	items      string // raw item table; "" when the document has no items
	number     string // header column of the document number
	amount     string // header column of the header amount
	endpoint   string // ERP API path the document is posted to
	object     string // Zuora Object Query path of the document
	itemObject string // Zuora Object Query path of its items
	markObject string // Zuora object type the write-back marks
	headerRow  any    // a zero row of the header table (rows.go)
	itemRow    any    // a zero row of the item table, nil when there is none
}

// registry lists every document type in load order: documents that others
// may refer to come first.
var registry = []struct {
	DocType
	docTypeFacts
}{
	{Invoice, docTypeFacts{header: "invoices", items: "invoice_items", number: "invoice_number", amount: "amount",
		endpoint: "/api/invoices", object: "invoices", itemObject: "invoice-items", markObject: "Invoice",
		headerRow: InvoiceRow{}, itemRow: InvoiceItemRow{}}},
	{DebitMemo, docTypeFacts{header: "debit_memos", items: "debit_memo_items", number: "memo_number", amount: "total_amount",
		endpoint: "/api/debit-memos", object: "debit-memos", itemObject: "debit-memo-items", markObject: "DebitMemo",
		headerRow: DebitMemoRow{}, itemRow: DebitMemoItemRow{}}},
	{CreditMemo, docTypeFacts{header: "credit_memos", items: "credit_memo_items", number: "memo_number", amount: "total_amount",
		endpoint: "/api/credit-memos", object: "credit-memos", itemObject: "credit-memo-items", markObject: "CreditMemo",
		headerRow: CreditMemoRow{}, itemRow: CreditMemoItemRow{}}},
	{Payment, docTypeFacts{header: "payments", number: "payment_number", amount: "amount",
		endpoint: "/api/payments", object: "payments", markObject: "Payment",
		headerRow: PaymentRow{}}},
	{Refund, docTypeFacts{header: "refunds", number: "refund_number", amount: "amount",
		endpoint: "/api/refunds", object: "refunds", markObject: "Refund",
		headerRow: RefundRow{}}},
}

// DocTypes returns every document type in load order.
func DocTypes() []DocType {
	out := make([]DocType, len(registry))
	for i, r := range registry {
		out[i] = r.DocType
	}
	return out
}

// Tables returns the raw tables the extract stages, one Hive partition tree
// each: every type's header table, then its item table, in load order.
func Tables() []string {
	var out []string
	for _, r := range registry {
		out = append(out, r.header)
		if r.items != "" {
			out = append(out, r.items)
		}
	}
	return out
}

// HeaderTables returns every type's raw header table, in load order.
func HeaderTables() []string {
	out := make([]string, len(registry))
	for i, r := range registry {
		out[i] = r.header
	}
	return out
}

func (d DocType) facts() (docTypeFacts, bool) {
	for _, r := range registry {
		if r.DocType == d {
			return r.docTypeFacts, true
		}
	}
	return docTypeFacts{}, false
}

func (d DocType) must() docTypeFacts {
	f, ok := d.facts()
	if !ok {
		panic(fmt.Sprintf("stage: %q is not a document type", string(d)))
	}
	return f
}

// Valid reports whether d is a registered document type.
func (d DocType) Valid() bool { _, ok := d.facts(); return ok }

func (d DocType) String() string { return string(d) }

// Words names the type for people: "credit memo".
func (d DocType) Words() string { return strings.ReplaceAll(string(d), "_", " ") }

// HeaderTable is the raw table of the documents, e.g. "invoices".
func (d DocType) HeaderTable() string { return d.must().header }

// ItemTable is the raw table of the documents' items, "" when they have none.
func (d DocType) ItemTable() string { return d.must().items }

// NumberColumn is the header column that holds the document number.
func (d DocType) NumberColumn() string { return d.must().number }

// AmountColumn is the header column that holds the header amount.
func (d DocType) AmountColumn() string { return d.must().amount }

// Endpoint is the ERP API path the documents are posted to.
func (d DocType) Endpoint() string { return d.must().endpoint }

// Object is the Zuora Object Query path of the documents.
func (d DocType) Object() string { return d.must().object }

// ItemObject is the Zuora Object Query path of the items, "" when they have none.
func (d DocType) ItemObject() string { return d.must().itemObject }

// MarkObject is the Zuora object type the write-back marks.
func (d DocType) MarkObject() string { return d.must().markObject }

// DocTypeOfTable returns the type whose raw header table is table.
func DocTypeOfTable(table string) (DocType, bool) {
	for _, r := range registry {
		if r.header == table {
			return r.DocType, true
		}
	}
	return "", false
}

// DocTypeOfEndpoint returns the type posted to the ERP path endpoint.
func DocTypeOfEndpoint(endpoint string) (DocType, bool) {
	for _, r := range registry {
		if r.endpoint == endpoint {
			return r.DocType, true
		}
	}
	return "", false
}

// ParseDocTypes checks names against the registry and returns them as types
// in load order, each once; an unknown name is an error naming what is accepted.
func ParseDocTypes(names []string) ([]DocType, error) {
	want := map[DocType]bool{}
	for _, n := range names {
		d := DocType(n)
		if !d.Valid() {
			return nil, fmt.Errorf("%q is not a document type; want some of %s", n, DocTypeList())
		}
		want[d] = true
	}
	var out []DocType
	for _, d := range DocTypes() {
		if want[d] {
			out = append(out, d)
		}
	}
	return out, nil
}

// InLoadOrder returns the valid types of ds in load order, each once, and
// an error naming the first that is not a document type.
func InLoadOrder(ds []DocType) ([]DocType, error) {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = string(d)
	}
	return ParseDocTypes(names)
}

// DocTypeList is every type's name, comma-separated in load order.
func DocTypeList() string {
	names := make([]string, len(registry))
	for i, r := range registry {
		names[i] = string(r.DocType)
	}
	return strings.Join(names, ",")
}
