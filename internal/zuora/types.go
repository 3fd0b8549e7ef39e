package zuora

// Query describes one Object Query walk: GET /object-query/{Object} with the
// given parameters, followed page by page through nextPage.
type Query struct {
	// Object is the path segment, e.g. "invoices", "invoice-items", "accounts".
	Object string
	// Filters are ANDed conditions in Zuora's grammar, e.g. "updateddate.GE:2026-11-25T22:00:00Z".
	Filters []string
	// Sort is one "field.ASC" or "field.DESC"; empty leaves Zuora's default.
	Sort string
	// Fields limits the base object's fields; nil asks for all of them.
	Fields []string
	// Expand lists child objects to nest, e.g. "invoiceitems", "account".
	Expand []string
	// ChildFields limits an expanded child's fields, keyed by its expand name.
	ChildFields map[string][]string
	// PageSize is 1 to 99; 0 means 99.
	PageSize int
}

// MarkResult is Zuora's answer for one object of a TransferredToAccounting write-back.
type MarkResult struct {
	ID       string
	OK       bool
	Code     string // e.g. INVALID_VALUE, LOCK_COMPETITION; empty when OK
	Message  string
	Attempts int // how many calls it took, retries of retryable codes included
}

// Object types accepted by MarkTransferred.
const (
	Invoice    = "Invoice"
	Payment    = "Payment"
	Refund     = "Refund"
	CreditMemo = "CreditMemo"
	DebitMemo  = "DebitMemo"
)
