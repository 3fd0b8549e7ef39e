package stage

import (
	"fmt"
	"slices"
	"strings"
)

// DocType is a doc_type of ready/documents: a Zuora document type, an
// application kind or a reversal. The registry below holds what every
// package knows of it; each stage keeps only its own behaviour per type,
// keyed by DocType.
type DocType string

// The document types, as the doc_type columns and the settings name them.
const (
	Invoice    DocType = "invoice"
	DebitMemo  DocType = "debit_memo"
	CreditMemo DocType = "credit_memo"
	Payment    DocType = "payment"
	Refund     DocType = "refund"
)

// The application kinds (Zuora's application objects, docs/zuora-api.md §7)
// and the reversal of something the ERP holds live.
const (
	PaymentApplication    DocType = "payment_application"
	CreditMemoApplication DocType = "credit_memo_application"
	RefundApplication     DocType = "refund_application"
	Reversal              DocType = "reversal"
)

// Kind says what a DocType is: a document, an application or a reversal.
type Kind string

const (
	KindDocument    Kind = "document"
	KindApplication Kind = "application"
	KindReversal    Kind = "reversal"
)

// AccountsTable is the raw table of the accounts of a window's applications,
// fetched by id after their walks (applications expand no account).
const AccountsTable = "accounts"

// AccountsObject is the Zuora Object Query path of the accounts.
const AccountsObject = "accounts"

// docTypeFacts are the facts of one type that more than one package reads.
type docTypeFacts struct {
	kind       Kind
	header     string  // raw table of the records (a document's header, an application's rows); "" for reversals
	items      string  // raw item table; "" when the type has no items
	itemParent string  // the item table's column of its document's id
	number     string  // header column of the document number; "" for applications
	amount     string  // header column of the amount; "" for reversals
	endpoint   string  // ERP API path the type is posted to
	object     string  // Zuora Object Query path of the records; "" for reversals
	itemObject string  // Zuora Object Query path of the items
	markObject string  // Zuora object type the write-back marks; "" when nothing is marked
	source     DocType // an application's source document type (the ERP's "kind")
	headerRow  any     // a zero row of the header table (rows.go)
	itemRow    any     // a zero row of the item table, nil when there is none
}

// registry lists every type in load order (docs/design.md "AR pipeline"):
// reversals first, then the documents, those others may refer to first,
// then the applications, which join documents.
var registry = []struct {
	DocType
	docTypeFacts
}{
	{Reversal, docTypeFacts{kind: KindReversal, endpoint: "/api/reversals"}},
	{Invoice, docTypeFacts{kind: KindDocument, header: "invoices", items: "invoice_items", itemParent: "invoice_id", number: "invoice_number", amount: "amount",
		endpoint: "/api/invoices", object: "invoices", itemObject: "invoice-items", markObject: "Invoice",
		headerRow: InvoiceRow{}, itemRow: InvoiceItemRow{}}},
	{DebitMemo, docTypeFacts{kind: KindDocument, header: "debit_memos", items: "debit_memo_items", itemParent: "debit_memo_id", number: "memo_number", amount: "total_amount",
		endpoint: "/api/debit-memos", object: "debit-memos", itemObject: "debit-memo-items", markObject: "DebitMemo",
		headerRow: DebitMemoRow{}, itemRow: DebitMemoItemRow{}}},
	{CreditMemo, docTypeFacts{kind: KindDocument, header: "credit_memos", items: "credit_memo_items", itemParent: "credit_memo_id", number: "memo_number", amount: "total_amount",
		endpoint: "/api/credit-memos", object: "credit-memos", itemObject: "credit-memo-items", markObject: "CreditMemo",
		headerRow: CreditMemoRow{}, itemRow: CreditMemoItemRow{}}},
	{Payment, docTypeFacts{kind: KindDocument, header: "payments", number: "payment_number", amount: "amount",
		endpoint: "/api/payments", object: "payments", markObject: "Payment",
		headerRow: PaymentRow{}}},
	{Refund, docTypeFacts{kind: KindDocument, header: "refunds", number: "refund_number", amount: "amount",
		endpoint: "/api/refunds", object: "refunds", markObject: "Refund",
		headerRow: RefundRow{}}},
	{PaymentApplication, docTypeFacts{kind: KindApplication, header: "payment_applications", amount: "apply_amount",
		endpoint: "/api/applications", object: "payment-applications", source: Payment,
		headerRow: PaymentApplicationRow{}}},
	{CreditMemoApplication, docTypeFacts{kind: KindApplication, header: "credit_memo_applications", amount: "amount",
		endpoint: "/api/applications", object: "credit-memo-applications", source: CreditMemo,
		headerRow: CreditMemoApplicationRow{}}},
	{RefundApplication, docTypeFacts{kind: KindApplication, header: "refund_applications", amount: "apply_amount",
		endpoint: "/api/applications", object: "refund-applications", source: Refund,
		headerRow: RefundApplicationRow{}}},
}

func ofKind(k Kind) []DocType {
	var out []DocType
	for _, r := range registry {
		if r.kind == k {
			out = append(out, r.DocType)
		}
	}
	return out
}

// LoadOrder returns every type in load order: the reversal, the five
// documents (invoice, debit memo, credit memo, payment, refund), then the
// three application kinds.
func LoadOrder() []DocType {
	out := make([]DocType, len(registry))
	for i, r := range registry {
		out[i] = r.DocType
	}
	return out
}

// Documents returns the five document types in load order.
func Documents() []DocType { return ofKind(KindDocument) }

// Applications returns the three application kinds in load order.
func Applications() []DocType { return ofKind(KindApplication) }

// Streams returns the types the extract walks by updatedDate, each into its
// own raw table: the documents, then the applications.
func Streams() []DocType { return append(Documents(), Applications()...) }

// Tables returns the raw tables the extract stages, one Hive partition tree
// each: every document's header table, then its item table, in load order;
// then each application kind's table; then the accounts.
func Tables() []string {
	var out []string
	for _, r := range registry {
		if r.header != "" {
			out = append(out, r.header)
		}
		if r.items != "" {
			out = append(out, r.items)
		}
	}
	return append(out, AccountsTable)
}

// HeaderTables returns the raw table of every stream (a document's header
// table, an application kind's table), in load order: the tables whose
// rows are the records walked by updatedDate.
func HeaderTables() []string {
	var out []string
	for _, d := range Streams() {
		out = append(out, d.HeaderTable())
	}
	return out
}

// DocumentTables returns the header table of each of the five documents, in
// load order: the tables a status filter may name (the application objects
// filter on no status).
func DocumentTables() []string {
	var out []string
	for _, d := range Documents() {
		out = append(out, d.HeaderTable())
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
		panic(fmt.Sprintf("stage: %q is not a doc_type", string(d)))
	}
	return f
}

// Valid reports whether d is a registered type of any kind.
func (d DocType) Valid() bool { _, ok := d.facts(); return ok }

func (d DocType) String() string { return string(d) }

// Words names the type for people: "credit memo", "payment application".
func (d DocType) Words() string { return strings.ReplaceAll(string(d), "_", " ") }

// Kind says whether the type is a document, an application or the reversal.
func (d DocType) Kind() Kind { return d.must().kind }

// IsDocument reports whether d is one of the five document types.
func (d DocType) IsDocument() bool { f, ok := d.facts(); return ok && f.kind == KindDocument }

// IsApplication reports whether d is one of the three application kinds.
func (d DocType) IsApplication() bool { f, ok := d.facts(); return ok && f.kind == KindApplication }

// HeaderTable is the raw table of the records, e.g. "invoices" or
// "payment_applications"; "" for the reversal, which has none.
func (d DocType) HeaderTable() string { return d.must().header }

// ItemTable is the raw table of the documents' items, "" when they have none.
func (d DocType) ItemTable() string { return d.must().items }

// ItemParentColumn is the item table's column that holds the id of the
// item's document, e.g. "invoice_id"; "" when the type has no items.
func (d DocType) ItemParentColumn() string { return d.must().itemParent }

// NumberColumn is the header column that holds the document number; "" for
// applications and the reversal.
func (d DocType) NumberColumn() string { return d.must().number }

// AmountColumn is the header column that holds the amount (an
// application's as Zuora sent it); "" for the reversal.
func (d DocType) AmountColumn() string { return d.must().amount }

// Endpoint is the ERP API path the type is posted to; the three application
// kinds share /api/applications.
func (d DocType) Endpoint() string { return d.must().endpoint }

// Object is the Zuora Object Query path of the records; "" for the reversal.
func (d DocType) Object() string { return d.must().object }

// ItemObject is the Zuora Object Query path of the items, "" when they have none.
func (d DocType) ItemObject() string { return d.must().itemObject }

// MarkObject is the Zuora object type the write-back marks; "" for
// applications and the reversal, which have no flag of their own.
func (d DocType) MarkObject() string { return d.must().markObject }

// Source is the document type whose money an application moves (payment,
// credit_memo, refund: the ERP API's "kind"); "" for other types.
func (d DocType) Source() DocType { return d.must().source }

// DocTypeOfTable returns the stream whose raw table (a document's header
// table or an application kind's table) is table.
func DocTypeOfTable(table string) (DocType, bool) {
	for _, r := range registry {
		if r.header != "" && r.header == table {
			return r.DocType, true
		}
	}
	return "", false
}

// DocTypeOfEndpoint returns the document type posted to the ERP path
// endpoint. Only documents are found: the application kinds share one path.
func DocTypeOfEndpoint(endpoint string) (DocType, bool) {
	for _, d := range Documents() {
		if d.Endpoint() == endpoint {
			return d, true
		}
	}
	return "", false
}

// Moved checks a selection of types to move and returns it complete, in
// load order, each once: the reversal is added when a document is among
// them (a document moved is reversed when Zuora cancels or unposts it), and
// an application kind whose source document is not among them is an error.
func Moved(ds []DocType) ([]DocType, error) {
	want := map[DocType]bool{}
	for _, d := range ds {
		if !d.Valid() {
			return nil, fmt.Errorf("%q is not a type to move; want some of %s", string(d), DocTypeList())
		}
		want[d] = true
	}
	for _, d := range Documents() {
		if want[d] {
			want[Reversal] = true
		}
	}
	for _, a := range Applications() {
		if want[a] && !want[a.Source()] {
			return nil, fmt.Errorf("%s needs its source documents moved: add %s", a, a.Source())
		}
	}
	var out []DocType
	for _, d := range LoadOrder() {
		if want[d] {
			out = append(out, d)
		}
	}
	return out, nil
}

// ParseDocTypes checks the names a person selects (documents and
// application kinds; the reversal is never named, it follows the
// documents) and returns them as Moved does.
func ParseDocTypes(names []string) ([]DocType, error) {
	ds := make([]DocType, 0, len(names))
	for _, n := range names {
		d := DocType(n)
		if !d.Valid() || d == Reversal {
			return nil, fmt.Errorf("%q is not a document type or application kind; want some of %s", n, DocTypeList())
		}
		ds = append(ds, d)
	}
	return Moved(ds)
}

// DocTypeList is every name ParseDocTypes accepts, comma-separated in load
// order: the documents, then the application kinds. It is the default
// selection.
func DocTypeList() string {
	var names []string
	for _, d := range Streams() {
		names = append(names, string(d))
	}
	return strings.Join(names, ",")
}

// Only returns the types of ds of kind k, in their order.
func Only(ds []DocType, k Kind) []DocType {
	return slices.DeleteFunc(slices.Clone(ds), func(d DocType) bool { f, ok := d.facts(); return !ok || f.kind != k })
}
