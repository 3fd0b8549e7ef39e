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
	// IncludeNullFields asks Zuora to send null fields instead of omitting
	// them, so a field the object has can be told from one it lacks.
	IncludeNullFields bool
	// Paging, when set, is filled in as the walk goes with what it followed.
	Paging *Paging
}

// Paging says what kind of cursors one walk followed. Zuora documents nextPage
// only as opaque; its samples show keysets (base64 JSON of the last row's sort
// value and id) and, for invoices and invoice items, offsets ("MTA=" is "10").
// Under an offset, a row that leaves the filtered set mid-walk moves every later
// row back by one, so one of them is never served: callers re-walk such a range.
type Paging struct {
	Pages     int  // pages fetched
	NonKeyset bool // some nextPage followed was not a keyset cursor
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
