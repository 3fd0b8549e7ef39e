// Package zuorasim is an in-process Zuora Billing tenant: OAuth, Object Query,
// the TransferredToAccounting write-backs, the AR model (applications and the
// operations that change them, docs/design.md "AR model"), a deterministic data
// generator and fault knobs, faithful to docs/zuora-api.md. Facts that document
// marks as inferred are Options switches whose zero value is the documented guess.
package zuorasim

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the tenant zone must load on machines without zoneinfo

	"github.com/klauspost/compress/gzip"
)

// Default credentials when Options leaves them empty.
const (
	DefaultClientID     = "sim-client-id"
	DefaultClientSecret = "sim-client-secret"
)

// LatestVersion is the Zuora-Version under which every error has a 4xx/5xx status.
const LatestVersion = "2025-08-12"

// Options configures a Sim. The zero value is a faithful default tenant.
type Options struct {
	// ClientID and ClientSecret are the accepted OAuth credentials; "" means
	// DefaultClientID / DefaultClientSecret.
	ClientID, ClientSecret string
	// TokenTTL is how long a token lives; 0 means one hour.
	TokenTTL time.Duration
	// Location is the tenant time zone for dt fields; nil means America/Los_Angeles.
	Location *time.Location
	// Now is the clock for token expiry, rate windows and write-back stamps; nil means time.Now.
	Now func() time.Time
	// NoUpdatedBumpOnMark keeps updatedDate unchanged when TransferredToAccounting is set [I: default bumps].
	NoUpdatedBumpOnMark bool
	// DefaultSort is the order when a query has no sort[]; "" means "updateddate.DESC" [I].
	// Objects on which its field is not sortable keep updateddate.DESC.
	DefaultSort string
	// OffsetCursor makes nextPage an offset (base64 of "10", as one doc sample) instead of a keyset [I: keyset].
	OffsetCursor bool
	// NoLegacyErrors200 turns off the pre-2025-08-12 trap: without Zuora-Version 2025-08-12 or later,
	// Object Query 400 and 404 errors come back as HTTP 200 with the reasons body.
	NoLegacyErrors200 bool
	// ActionAcceptsNo lets /v1/action/update set "No", which the SOAP enum lacks [C: default refuses].
	ActionAcceptsNo bool
	// OffsetCursorObjects limits offset cursors to these object paths (e.g. "invoices",
	// "invoice-items", as the doc samples show), keyset elsewhere [I: keyset everywhere].
	OffsetCursorObjects []string
	// IgnoreUnknownFields drops a fields[] name the object does not have instead
	// of answering 400 [I: the docs list the fields; what an unknown name gets is
	// not stated, so the default refuses it].
	IgnoreUnknownFields bool
	// LowerCamelCustomFields lowers the first letter of every custom field's key in
	// Object Query answers (ERPAccountId__c → eRPAccountId__c), as the Object Query
	// guide says it normalizes names [D: the guide; I: the exact spelling].
	LowerCamelCustomFields bool
	// FilterTimesInTenantZone reads the date-time of a filter in the tenant's zone,
	// ignoring its Z or offset, as the pre-R190 query language did [I: default honours it].
	FilterTimesInTenantZone bool
	// NoInvoiceSettlement makes the memo object paths answer as for an object the
	// tenant does not have (HTTP 403, category 10) [I: the status and body].
	NoInvoiceSettlement bool
	// RequireEntityID refuses every request (the token call included) whose
	// Zuora-Entity-Ids header is not this id, as a multi-entity tenant does [I].
	RequireEntityID string
	// ActionRefusesCreditMemoRefunds makes /v1/action/update refuse refunds whose
	// sourceType is CreditMemo (INVALID_TYPE), as the Invoice Settlement guide says
	// Actions do not support them; PUT /v1/refunds/{id} still works [D: the guide; I: the code].
	ActionRefusesCreditMemoRefunds bool
	// NumbersAsDoubles writes numbers in other valid JSON forms of the same value
	// (1.0E7, 100.10, -0.0, 0.0), as a double-typed API may [I].
	NumbersAsDoubles bool
	// UnapplyPositiveAmounts writes an unapply row (and a cancellation's
	// reversing row) with a positive amount, like the apply it undoes; by default
	// it carries a negative one, as a reversing event [I: no source says].
	UnapplyPositiveAmounts bool
	// CancelAddsReversals makes cancelling a payment or a refund add a reversing
	// application row for each of its applications; by default a payment's
	// applications turn Cancelled and a refund's are left as they were [I].
	CancelAddsReversals bool
	// ZuoraFinance refuses to unpost an invoice whose TransferredToAccounting is
	// Yes, as a tenant with Zuora Finance does [D].
	ZuoraFinance bool
	// ReversalMemoSourceType is the sourceType of the credit memo that reversing an
	// invoice creates; "" means "Invoice" [I].
	ReversalMemoSourceType string
	// Faults is the initial fault configuration; change it later with SetFaults.
	Faults Faults
}

// Faults are the injected failures. Every "Every" knob fires on each Nth
// request (or object) it applies to, counted from the moment SetFaults is called,
// so tests are repeatable; 0 turns it off.
type Faults struct {
	// Path limits request faults to paths with this prefix, e.g. "/object-query/";
	// "" means every endpoint except /oauth/token.
	Path string
	// Latency is added to every request.
	Latency time.Duration
	// RateLimit caps requests per RateWindow (0 = none); over it the answer is 429.
	RateLimit int
	// RateWindow is the rate cap's fixed window; 0 means one minute.
	RateWindow time.Duration
	// ConcurrencyLimit caps requests in flight (Object Query's real cap is 80); 0 = none.
	ConcurrencyLimit int
	// RetryAfter is sent with 429s that are not from the rate window; 0 means 1s, negative sends 0.
	RetryAfter time.Duration
	// Status429Every, Status500Every, Status502Every and Status503Every answer with that status before any work.
	Status429Every, Status500Every, Status502Every, Status503Every int
	// DropEvery closes the connection without an answer before doing any work.
	DropEvery int
	// DropAfterEvery does the work (a write-back applies) and then closes the connection unanswered.
	DropAfterEvery int
	// TruncateEvery does the work and sends only the first half of the JSON body.
	TruncateEvery int
	// MalformedEvery does the work and sends a body that is not valid JSON.
	MalformedEvery int
	// ExpireTokenEvery revokes the presented token on each Nth authenticated request, which gets 401.
	ExpireTokenEvery int
	// LockCompetitionEvery and TemporaryErrorEvery fail each Nth object of a write-back with that retryable code.
	LockCompetitionEvery, TemporaryErrorEvery int
	// TouchPerPage bumps updatedDate to Now on this many records of each Object Query list page just served.
	TouchPerPage int
	// InsertPerPage adds this many new documents (copies of the page's first one, items included) after each page.
	InsertPerPage int
	// Conflict409Every answers each Nth write-back call (action, memo bulk, v1 PUT)
	// 409 with a category-50 reason (locking contention) before doing any work.
	Conflict409Every int
	// ActionCode fails each ActionCodeEvery-th object of a write-back with this code
	// (e.g. REQUEST_EXCEEDED_RATE, SERVER_UNAVAILABLE, TRANSACTION_TIMEOUT).
	ActionCode      string
	ActionCodeEvery int
	// NoRetryAfter sends 429s with RateLimit-Limit, -Remaining and -Reset but no Retry-After.
	NoRetryAfter bool
	// HourlyLimit and DailyLimit cap requests per clock hour and per day (0 = none), as
	// sandboxes do (API Sandbox: 5,000 an hour, 10,000 a day); over them the answer is 429.
	HourlyLimit, DailyLimit int
}

// ClientIDOrDefault returns the client_id a Sim built from o accepts.
func (o Options) ClientIDOrDefault() string {
	if o.ClientID == "" {
		return DefaultClientID
	}
	return o.ClientID
}

// ClientSecretOrDefault returns the client_secret a Sim built from o accepts.
func (o Options) ClientSecretOrDefault() string {
	if o.ClientSecret == "" {
		return DefaultClientSecret
	}
	return o.ClientSecret
}

// RegisterFlags exposes every option and fault knob as a flag, defaulting to o's values.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.ClientID, "client-id", o.ClientID, "accepted OAuth client_id (empty: "+DefaultClientID+")")
	fs.StringVar(&o.ClientSecret, "client-secret", o.ClientSecret, "accepted OAuth client_secret (empty: "+DefaultClientSecret+")")
	fs.DurationVar(&o.TokenTTL, "token-ttl", o.TokenTTL, "access token lifetime (0: 1h)")
	fs.Func("tz", "tenant time zone for dt fields (default America/Los_Angeles)", func(s string) error {
		loc, err := time.LoadLocation(s)
		if err != nil {
			return err
		}
		o.Location = loc
		return nil
	})
	fs.BoolVar(&o.NoUpdatedBumpOnMark, "no-updated-bump", o.NoUpdatedBumpOnMark, "do not bump updatedDate when TransferredToAccounting is set")
	fs.StringVar(&o.DefaultSort, "default-sort", o.DefaultSort, "order without sort[] (empty: updateddate.DESC)")
	fs.BoolVar(&o.OffsetCursor, "offset-cursor", o.OffsetCursor, "emit offset cursors instead of keyset cursors")
	fs.BoolVar(&o.NoLegacyErrors200, "no-legacy-errors-200", o.NoLegacyErrors200, "send 4xx statuses even without Zuora-Version "+LatestVersion)
	fs.BoolVar(&o.ActionAcceptsNo, "action-accepts-no", o.ActionAcceptsNo, "let /v1/action/update set TransferredToAccounting=No")
	fs.Func("offset-cursor-objects", "emit offset cursors on these object paths only, comma-separated (e.g. invoices,invoice-items)", func(v string) error {
		o.OffsetCursorObjects = nil
		for _, obj := range strings.Split(v, ",") {
			if obj = strings.TrimSpace(obj); obj == "" {
				continue
			}
			if _, ok := schemas[obj]; !ok {
				return fmt.Errorf("unknown object path %q", obj)
			}
			o.OffsetCursorObjects = append(o.OffsetCursorObjects, obj)
		}
		return nil
	})
	fs.BoolVar(&o.IgnoreUnknownFields, "ignore-unknown-fields", o.IgnoreUnknownFields, "drop unknown fields[] names instead of answering 400")
	fs.BoolVar(&o.LowerCamelCustomFields, "lower-camel-custom-fields", o.LowerCamelCustomFields, "lower the first letter of custom field keys (eRPAccountId__c)")
	fs.BoolVar(&o.FilterTimesInTenantZone, "filter-times-in-tenant-zone", o.FilterTimesInTenantZone, "read filter date-times in the tenant zone, ignoring Z and offsets")
	fs.BoolVar(&o.NoInvoiceSettlement, "no-invoice-settlement", o.NoInvoiceSettlement, "tenant without Invoice Settlement: memo objects are not available")
	fs.StringVar(&o.RequireEntityID, "require-entity-id", o.RequireEntityID, "refuse requests whose Zuora-Entity-Ids header is not this id")
	fs.BoolVar(&o.ActionRefusesCreditMemoRefunds, "action-refuses-credit-memo-refunds", o.ActionRefusesCreditMemoRefunds, "refuse refunds of credit memos in /v1/action/update")
	fs.BoolVar(&o.NumbersAsDoubles, "numbers-as-doubles", o.NumbersAsDoubles, "write numbers as 1.0E7, 100.10, -0.0 and the like")
	fs.BoolVar(&o.UnapplyPositiveAmounts, "unapply-positive-amounts", o.UnapplyPositiveAmounts, "write unapply rows with positive amounts")
	fs.BoolVar(&o.CancelAddsReversals, "cancel-adds-reversals", o.CancelAddsReversals, "cancelling a payment or refund adds reversing application rows")
	fs.BoolVar(&o.ZuoraFinance, "zuora-finance", o.ZuoraFinance, "refuse to unpost invoices already transferred to accounting")
	fs.StringVar(&o.ReversalMemoSourceType, "reversal-memo-source-type", o.ReversalMemoSourceType, "sourceType of the credit memo an invoice reversal creates (empty: Invoice)")
	f := &o.Faults
	fs.StringVar(&f.Path, "fault-path", f.Path, "apply request faults only to paths with this prefix (empty: all but /oauth/token)")
	fs.DurationVar(&f.Latency, "latency", f.Latency, "latency added to every request")
	fs.IntVar(&f.RateLimit, "rate-limit", f.RateLimit, "requests per rate window before 429 (0: unlimited)")
	fs.DurationVar(&f.RateWindow, "rate-window", f.RateWindow, "rate limit window (0: 1m)")
	fs.IntVar(&f.ConcurrencyLimit, "concurrency-limit", f.ConcurrencyLimit, "requests in flight before 429 (0: unlimited)")
	fs.DurationVar(&f.RetryAfter, "retry-after", f.RetryAfter, "Retry-After of injected 429s (0: 1s)")
	fs.IntVar(&f.Status429Every, "fail-429-every", f.Status429Every, "answer 429 to every Nth request")
	fs.IntVar(&f.Status500Every, "fail-500-every", f.Status500Every, "answer 500 to every Nth request")
	fs.IntVar(&f.Status502Every, "fail-502-every", f.Status502Every, "answer 502 to every Nth request")
	fs.IntVar(&f.Status503Every, "fail-503-every", f.Status503Every, "answer 503 to every Nth request")
	fs.IntVar(&f.DropEvery, "drop-every", f.DropEvery, "close the connection before handling every Nth request")
	fs.IntVar(&f.DropAfterEvery, "drop-after-every", f.DropAfterEvery, "handle every Nth request, then close the connection unanswered")
	fs.IntVar(&f.TruncateEvery, "truncate-every", f.TruncateEvery, "send half of the body of every Nth request")
	fs.IntVar(&f.MalformedEvery, "malformed-every", f.MalformedEvery, "send invalid JSON for every Nth request")
	fs.IntVar(&f.ExpireTokenEvery, "expire-token-every", f.ExpireTokenEvery, "revoke the token on every Nth authenticated request")
	fs.IntVar(&f.LockCompetitionEvery, "lock-competition-every", f.LockCompetitionEvery, "fail every Nth written object with LOCK_COMPETITION")
	fs.IntVar(&f.TemporaryErrorEvery, "temporary-error-every", f.TemporaryErrorEvery, "fail every Nth written object with TEMPORARY_ERROR")
	fs.IntVar(&f.TouchPerPage, "touch-per-page", f.TouchPerPage, "bump updatedDate of N records of each page served")
	fs.IntVar(&f.InsertPerPage, "insert-per-page", f.InsertPerPage, "insert N new documents after each page served")
	fs.IntVar(&f.Conflict409Every, "conflict-409-every", f.Conflict409Every, "answer every Nth write-back call 409 (locking contention, category 50)")
	fs.StringVar(&f.ActionCode, "action-code", f.ActionCode, "code to fail written objects with (with --action-code-every)")
	fs.IntVar(&f.ActionCodeEvery, "action-code-every", f.ActionCodeEvery, "fail every Nth written object with --action-code")
	fs.BoolVar(&f.NoRetryAfter, "no-retry-after", f.NoRetryAfter, "send 429s with RateLimit-* headers only, no Retry-After")
	fs.IntVar(&f.HourlyLimit, "hourly-limit", f.HourlyLimit, "requests per clock hour before 429 (0: unlimited)")
	fs.IntVar(&f.DailyLimit, "daily-limit", f.DailyLimit, "requests per day before 429 (0: unlimited)")
}

// Stats counts what the simulator has seen.
type Stats struct {
	Requests     map[string]int `json:"requests"` // by endpoint, e.g. "GET /object-query/invoices", "GET /object-query/invoices/{key}"
	Faults       map[string]int `json:"faults"`   // by kind, e.g. "429", "500", "drop", "truncate", "expire-token", "LOCK_COMPETITION"
	TokensIssued int            `json:"tokens_issued"`
	Unauthorized int            `json:"unauthorized"`  // requests answered 401
	MarksApplied int            `json:"marks_applied"` // TransferredToAccounting values written
}

// Total is the number of requests counted, token requests included.
func (st Stats) Total() int {
	n := 0
	for _, c := range st.Requests {
		n += c
	}
	return n
}

// PageEvent describes an Object Query list page just served.
type PageEvent struct {
	Object string
	IDs    []string // ids on the page, in order
	Last   bool     // no nextPage was sent
}

// Sim is a simulated Zuora tenant; it implements http.Handler.
type Sim struct {
	opts    Options
	loc     *time.Location
	now     func() time.Time
	defSort string

	mu      sync.RWMutex // guards data, seq, version and corrupt
	data    *Tenant
	seq     uint64
	version uint64                // bumped by every write, so cached sorts know they are stale
	corrupt map[string]Corruption // by record id: rendered differently (see Corrupt)

	cmu       sync.Mutex // guards cache and cacheTick
	cache     map[string]cachedSort
	cacheTick uint64

	fmu       sync.Mutex // guards everything below
	faults    Faults
	reqN      int // requests subject to faults since SetFaults
	authN     int
	objN      int
	inflight  int
	rateStart time.Time
	rateCount int
	hourStart time.Time
	hourCount int
	dayStart  time.Time
	dayCount  int
	writeN    int // write-back calls since SetFaults, for Conflict409Every
	tokens    map[string]time.Time
	stats     Stats
	afterPage func(PageEvent)
}

// New returns an empty simulated tenant; Load data into it.
func New(opts Options) *Sim {
	opts.ClientID, opts.ClientSecret = opts.ClientIDOrDefault(), opts.ClientSecretOrDefault()
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	s := &Sim{opts: opts, loc: opts.Location, now: opts.Now, data: newTenant(), tokens: map[string]time.Time{}}
	if s.loc == nil {
		loc, err := time.LoadLocation("America/Los_Angeles")
		if err != nil {
			panic("zuorasim: " + err.Error()) // time/tzdata is embedded, so this cannot happen
		}
		s.loc = loc
	}
	if s.now == nil {
		s.now = time.Now
	}
	def := opts.DefaultSort
	if def == "" {
		def = "updateddate.DESC"
	}
	valid := false
	for _, o := range Objects {
		if _, err := parseSort(def, schemas[o]); err == nil {
			valid = true
		}
	}
	if !valid {
		panic("zuorasim: DefaultSort " + def + " is not sortable on any object")
	}
	s.defSort = def
	s.stats = Stats{Requests: map[string]int{}, Faults: map[string]int{}}
	s.faults = opts.Faults
	return s
}

// SetFaults replaces the fault configuration and restarts the Nth-request counters.
// It is safe to call while requests are being served.
func (s *Sim) SetFaults(f Faults) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.faults = f
	s.reqN, s.authN, s.objN, s.rateCount, s.hourCount, s.dayCount, s.writeN = 0, 0, 0, 0, 0, 0, 0
	s.rateStart, s.hourStart, s.dayStart = time.Time{}, time.Time{}, time.Time{}
}

// SetAfterPage installs a hook called after each Object Query list page, outside
// any lock, so it may mutate the tenant (Touch, CloneDocument) between pages.
func (s *Sim) SetAfterPage(fn func(PageEvent)) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.afterPage = fn
}

// Load replaces the tenant's data with a copy of t.
func (s *Sim) Load(t *Tenant) {
	c := t.clone()
	s.mu.Lock()
	s.version++ // any write may change what a cached sort holds
	defer s.mu.Unlock()
	s.data = c
}

// offsetCursor reports whether list pages of object page by offset.
func (s *Sim) offsetCursor(object string) bool {
	return s.opts.OffsetCursor || slices.Contains(s.opts.OffsetCursorObjects, object)
}

// Location returns the tenant time zone.
func (s *Sim) Location() *time.Location { return s.loc }

// Stats returns a copy of the counters.
func (s *Sim) Stats() Stats {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	st := s.stats
	st.Requests = make(map[string]int, len(s.stats.Requests))
	for k, v := range s.stats.Requests {
		st.Requests[k] = v
	}
	st.Faults = make(map[string]int, len(s.stats.Faults))
	for k, v := range s.stats.Faults {
		st.Faults[k] = v
	}
	return st
}

// Transferred returns TransferredToAccounting of any document by id, "" when null or unknown.
func (s *Sim) Transferred(id string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, tb := range s.data.tables {
		if r, ok := tb.byID[id]; ok {
			if i, ok := tb.sch.index["transferredtoaccounting"]; ok {
				v, _ := r.get(i)
				return v
			}
			return ""
		}
	}
	return ""
}

// Snapshot returns every record of an object path with all fields (nulls as nil,
// numbers as json.Number, dt fields in the tenant zone), in insertion order;
// application amounts carry the sign Options.UnapplyPositiveAmounts says.
func (s *Sim) Snapshot(object string) []map[string]any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := s.data.Snapshot(object, s.loc)
	if sch := schemas[object]; sch != nil && s.opts.UnapplyPositiveAmounts {
		for _, f := range sch.fields {
			if !f.signed {
				continue
			}
			for _, r := range out {
				if n, ok := r[f.name].(json.Number); ok {
					r[f.name] = json.Number(strings.TrimPrefix(string(n), "-"))
				}
			}
		}
	}
	return out
}

// Touch sets a record's updatedDate to Now, as an edit in Zuora would.
func (s *Sim) Touch(id string) error {
	now := unixText(s.now())
	s.mu.Lock()
	s.version++ // any write may change what a cached sort holds
	defer s.mu.Unlock()
	for _, tb := range s.data.tables {
		if r, ok := tb.byID[id]; ok {
			r.set(fUpdatedDate, now)
			return nil
		}
	}
	return fmt.Errorf("touch %s: no such record", id)
}

// CloneDocument inserts a copy of a document (with copies of its items) under a
// new id and number, created and updated Now, and returns the new id. The copy
// has no applications, so its AR fields are those of a new document: an
// invoice or memo wholly open, a payment wholly unapplied, a refund of the
// credit balance.
func (s *Sim) CloneDocument(id string) (string, error) {
	s.mu.Lock()
	s.version++ // any write may change what a cached sort holds
	defer s.mu.Unlock()
	return s.cloneLocked(id)
}

func (s *Sim) cloneLocked(id string) (string, error) {
	now := unixText(s.now())
	for _, tb := range s.data.tables {
		src, ok := tb.byID[id]
		if !ok {
			continue
		}
		if tb.sch.number == "" {
			return "", fmt.Errorf("clone %s: %s are not documents", id, tb.sch.object)
		}
		s.seq++
		c := src.clone()
		c.set(fID, newID(0x51a51a51a51a51a5, s.seq))
		c.set(fCreatedDate, now)
		c.set(fUpdatedDate, now)
		np := tb.sch.pos(tb.sch.number)
		num, _ := src.get(np)
		c.set(np, fmt.Sprintf("%s-S%d", num, s.seq))
		tb.add(c)
		if tb.sch.items != "" {
			items := s.data.tables[tb.sch.items]
			via := 0
			for _, rel := range tb.sch.expands {
				if rel.target == tb.sch.items {
					via = items.sch.pos(rel.via)
				}
			}
			for _, it := range items.fk[via][id] {
				s.seq++
				ci := it.clone()
				ci.set(fID, newID(0x51a51a51a51a51a5, s.seq))
				ci.set(fCreatedDate, now)
				ci.set(fUpdatedDate, now)
				ci.set(via, c.id())
				items.add(ci)
			}
		}
		s.data.openAsNew(tb.sch.object, c, now)
		return c.id(), nil
	}
	return "", fmt.Errorf("clone %s: no such record", id)
}

// ServeHTTP routes a request through the fault knobs to the endpoint; the
// admin endpoints (AdminPrefix) bypass them.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, AdminPrefix) {
		w.Header().Set("Zuora-Request-Id", uuid())
		s.handleAdmin(w, r)
		return
	}
	endpoint := endpointName(r)
	w.Header().Set("Zuora-Request-Id", uuid())
	if t := r.Header.Get("Zuora-Track-Id"); t != "" {
		w.Header().Set("Zuora-Track-Id", t)
	}

	f, n, release, kind := s.admit(r, endpoint)
	defer release()
	if f.RateLimit > 0 && kind != "429-rate" {
		s.rateHeaders(w, f)
	}
	if f.Latency > 0 {
		select {
		case <-time.After(f.Latency):
		case <-r.Context().Done():
			return
		}
	}
	if s.preFault(w, r, kind) {
		return
	}
	post := postFault(f, n)
	if post == "" {
		s.route(w, r)
		return
	}
	s.countFault(post)
	s.spoil(w, r, post)
}

// rateHeaders writes the RateLimit headers Zuora sends under a rate limit.
func (s *Sim) rateHeaders(w http.ResponseWriter, f Faults) {
	s.fmu.Lock()
	remaining := max(f.RateLimit-s.rateCount, 0)
	s.fmu.Unlock()
	w.Header().Set("RateLimit-Limit", fmt.Sprintf("%d, %d;w=%d", f.RateLimit, f.RateLimit, int(rateWindow(f).Seconds())))
	w.Header().Set("RateLimit-Remaining", strconv.Itoa(remaining))
}

// preFault answers with the fault admit chose instead of the endpoint, and
// reports whether it did.
func (s *Sim) preFault(w http.ResponseWriter, r *http.Request, kind string) bool {
	switch kind {
	case "":
		return false
	case "drop":
		hijackClose(w)
	case "429-rate", "429-concurrency", "429", "429-hour", "429-day":
		s.tooMany(w, r, kind)
	case "500":
		s.reasons(w, r, http.StatusInternalServerError, 60, "An unexpected error occurred")
	case "502", "503":
		code, _ := strconv.Atoi(kind)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(code)
		fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>\n", code, http.StatusText(code))
	default:
		return false
	}
	return true
}

// postFault is the fault that spoils the answer to request n, or "".
func postFault(f Faults, n int) string {
	switch {
	case every(f.DropAfterEvery, n):
		return "drop-after"
	case every(f.TruncateEvery, n):
		return "truncate"
	case every(f.MalformedEvery, n):
		return "malformed"
	}
	return ""
}

// spoil records the plain answer, then spoils it as post says; gzip (if
// accepted) applies to the spoiled body.
func (s *Sim) spoil(w http.ResponseWriter, r *http.Request, post string) {
	plain := r.Clone(r.Context())
	plain.Header.Del("Accept-Encoding")
	rec := httptest.NewRecorder()
	s.route(rec, plain)
	body := rec.Body.Bytes()
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	switch post {
	case "drop-after":
		hijackClose(w)
		return
	case "truncate":
		body = body[:len(body)/2]
	case "malformed":
		body = []byte(`{"data":[{"id":"` + "\x00" + `",}` + "<html>")
	}
	writeBody(w, r, rec.Code, body)
}

func rateWindow(f Faults) time.Duration {
	if f.RateWindow <= 0 {
		return time.Minute
	}
	return f.RateWindow
}

func every(n, i int) bool { return n > 0 && i > 0 && i%n == 0 }

// admit counts the request and decides which pre-handling fault, if any, fires.
// release must be called when the request is done.
func (s *Sim) admit(r *http.Request, endpoint string) (f Faults, n int, release func(), kind string) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.stats.Requests[endpoint]++
	f = s.faults
	release = func() {}
	applies := strings.HasPrefix(r.URL.Path, f.Path)
	if f.Path == "" {
		applies = r.URL.Path != "/oauth/token"
	}
	if !applies {
		f = Faults{}
		return f, 0, release, ""
	}
	s.reqN++
	n = s.reqN
	s.inflight++
	release = func() {
		s.fmu.Lock()
		s.inflight--
		s.fmu.Unlock()
	}
	kind = s.quotaLocked(f)
	if kind == "" {
		kind = s.everyLocked(f, n)
	}
	if kind != "" {
		k, _, _ := strings.Cut(kind, "-")
		s.stats.Faults[k]++
	}
	return f, n, release, kind
}

// quotaLocked counts the request against the rate, hourly and daily limits
// and names the first it exceeds ("429-rate", "429-hour", "429-day"), or "".
func (s *Sim) quotaLocked(f Faults) string {
	kind := ""
	if f.RateLimit > 0 {
		now := s.now()
		if s.rateStart.IsZero() || !now.Before(s.rateStart.Add(rateWindow(f))) {
			s.rateStart, s.rateCount = now, 0
		}
		s.rateCount++
		if s.rateCount > f.RateLimit {
			kind = "429-rate"
		}
	}
	if f.HourlyLimit > 0 {
		h := s.now().Truncate(time.Hour)
		if !s.hourStart.Equal(h) {
			s.hourStart, s.hourCount = h, 0
		}
		if s.hourCount++; s.hourCount > f.HourlyLimit && kind == "" {
			kind = "429-hour"
		}
	}
	if f.DailyLimit > 0 {
		d := s.now().UTC().Truncate(24 * time.Hour)
		if !s.dayStart.Equal(d) {
			s.dayStart, s.dayCount = d, 0
		}
		if s.dayCount++; s.dayCount > f.DailyLimit && kind == "" {
			kind = "429-day"
		}
	}
	return kind
}

// everyLocked is the pre-handling fault the concurrency limit or an
// every-n knob fires for request n, or "".
func (s *Sim) everyLocked(f Faults, n int) string {
	switch {
	case f.ConcurrencyLimit > 0 && s.inflight > f.ConcurrencyLimit:
		return "429-concurrency"
	case every(f.DropEvery, n):
		return "drop"
	case every(f.Status429Every, n):
		return "429"
	case every(f.Status500Every, n):
		return "500"
	case every(f.Status502Every, n):
		return "502"
	case every(f.Status503Every, n):
		return "503"
	}
	return ""
}

func (s *Sim) countFault(kind string) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.stats.Faults[kind]++
}

// tooMany writes a 429 with the rate and concurrency headers Zuora sends.
func (s *Sim) tooMany(w http.ResponseWriter, r *http.Request, kind string) {
	s.fmu.Lock()
	f := s.faults
	retry := f.RetryAfter
	if retry == 0 {
		retry = time.Second
	}
	limit, window := f.RateLimit, f.RateWindow
	if window <= 0 {
		window = time.Minute
	}
	switch kind {
	case "429-rate":
		retry = s.rateStart.Add(window).Sub(s.now())
	case "429-hour":
		limit, window = f.HourlyLimit, time.Hour
		retry = s.hourStart.Add(time.Hour).Sub(s.now())
	case "429-day":
		limit, window = f.DailyLimit, 24*time.Hour
		retry = s.dayStart.Add(24 * time.Hour).Sub(s.now())
	}
	s.fmu.Unlock()
	secs := int(math.Ceil(max(retry, 0).Seconds()))
	h := w.Header()
	if !f.NoRetryAfter {
		h.Set("Retry-After", strconv.Itoa(secs))
	}
	if limit > 0 {
		h.Set("RateLimit-Limit", fmt.Sprintf("%d, %d;w=%d", limit, limit, int(window.Seconds())))
	}
	h.Set("RateLimit-Remaining", "0")
	h.Set("RateLimit-Reset", strconv.Itoa(secs))
	if kind == "429-concurrency" {
		h.Set("Concurrency-Limit-Type", "Default")
		h.Set("Concurrency-Limit-Limit", strconv.Itoa(f.ConcurrencyLimit))
		h.Set("Concurrency-Limit-Remaining", "0")
	}
	if r.URL.Path == "/oauth/token" {
		h.Set("X-RateLimit-Limit-minute", strconv.Itoa(max(limit, 100)))
		h.Set("X-RateLimit-Remaining-minute", "0")
	}
	s.reasons(w, r, http.StatusTooManyRequests, 70, "Too many requests")
}

func hijackClose(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // HTTP/2: the server resets the stream
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// memoPath reports whether p serves an Invoice Settlement object: the memos,
// their items and the three application objects.
func memoPath(p string) bool {
	if rest, ok := strings.CutPrefix(p, "/object-query/"); ok {
		obj, _, _ := strings.Cut(rest, "/")
		return schemas[obj] != nil && schemas[obj].settlement
	}
	return strings.HasPrefix(p, "/v1/credit-memos") || strings.HasPrefix(p, "/v1/debit-memos")
}

func endpointName(r *http.Request) string {
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/object-query/"); ok {
		if obj, _, found := strings.Cut(rest, "/"); found {
			return r.Method + " /object-query/" + obj + "/{key}"
		}
	}
	for _, prefix := range []string{"/v1/refunds/", "/v1/payments/"} {
		if strings.HasPrefix(p, prefix) {
			return r.Method + " " + prefix + "{key}"
		}
	}
	return r.Method + " " + p
}

func (s *Sim) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if id := s.opts.RequireEntityID; id != "" && r.Header.Get("Zuora-Entity-Ids") != id {
		s.reasons(w, r, http.StatusBadRequest, 20, "the Zuora-Entity-Ids header must name the entity: this OAuth client has access to several entities")
		return
	}
	if s.opts.NoInvoiceSettlement && memoPath(p) {
		s.reasons(w, r, http.StatusForbidden, 10, "Invoice Settlement is not enabled for this tenant: credit and debit memo objects are not available")
		return
	}
	switch {
	case p == "/oauth/token":
		s.handleToken(w, r)
	case strings.HasPrefix(p, "/object-query/"):
		s.handleQuery(w, r)
	case p == "/v1/action/update":
		s.handleAction(w, r)
	case p == "/v1/credit-memos/bulk" || p == "/v1/debit-memos/bulk":
		s.handleMemoBulk(w, r)
	case strings.HasPrefix(p, "/v1/refunds/") || strings.HasPrefix(p, "/v1/payments/"):
		s.handleFinancePut(w, r)
	default:
		s.reasons(w, r, http.StatusNotFound, 40, "no such endpoint: "+r.Method+" "+p)
	}
}

func (s *Sim) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.reasons(w, r, http.StatusMethodNotAllowed, 45, "use POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.reasons(w, r, http.StatusBadRequest, 20, "invalid form body")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		s.reasons(w, r, http.StatusBadRequest, 20, fmt.Sprintf("unsupported grant_type %q", gt))
		return
	}
	if r.PostForm.Get("client_id") != s.opts.ClientID || r.PostForm.Get("client_secret") != s.opts.ClientSecret {
		s.fmu.Lock()
		s.stats.Unauthorized++
		s.fmu.Unlock()
		s.reasons(w, r, http.StatusUnauthorized, 11, "invalid client credentials")
		return
	}
	tok := randomHex(16)
	s.fmu.Lock()
	s.tokens[tok] = s.now().Add(s.opts.TokenTTL)
	s.stats.TokensIssued++
	s.fmu.Unlock()
	expires := int(s.opts.TokenTTL / time.Second)
	if expires > 1 {
		expires-- // Zuora's sample: 3599 for one hour
	}
	writeJSON(w, r, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "bearer", "expires_in": expires,
		"scope": "user.sim tenant.sim entity.sim", "jti": randomHex(16),
	})
}

// authorized checks the bearer token and writes the 401 when it fails.
func (s *Sim) authorized(w http.ResponseWriter, r *http.Request, queryStyle bool) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.fmu.Lock()
	exp, known := s.tokens[tok]
	good := ok && known && s.now().Before(exp)
	if good {
		s.authN++
		if every(s.faults.ExpireTokenEvery, s.authN) && (s.faults.Path == "" || strings.HasPrefix(r.URL.Path, s.faults.Path)) {
			delete(s.tokens, tok)
			s.stats.Faults["expire-token"]++
			good = false
		}
	}
	if !good {
		s.stats.Unauthorized++
	}
	s.fmu.Unlock()
	if good {
		return true
	}
	if queryStyle {
		s.reasons(w, r, http.StatusUnauthorized, 11, "Authentication error")
		return false
	}
	w.Header().Set("WWW-Authenticate", "Basic realm=Zuora API, ZSession realm=Zuora API, Bearer realm=Zuora API")
	writeJSON(w, r, http.StatusUnauthorized, map[string]any{"message": "Authentication error"})
	return false
}

// reasons writes the §2.5 error body. The code's first six digits name the
// resource (500000 for every GET, as documented), the last two the category.
func (s *Sim) reasons(w http.ResponseWriter, r *http.Request, status, category int, msg string) {
	resource := 500000
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/credit-memos"):
		resource = 510000
	case strings.HasPrefix(r.URL.Path, "/v1/debit-memos"):
		resource = 520000
	}
	writeJSON(w, r, status, map[string]any{
		"reasons":   []map[string]any{{"code": resource*100 + category, "message": msg}},
		"requestId": w.Header().Get("Zuora-Request-Id"),
	})
}

// writeJSON encodes v, gzipping bodies over 1000 bytes when the client accepts it.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, r, status, buf.Bytes())
}

func writeBody(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	if len(body) > 1000 && acceptsGzip(r) {
		var zb bytes.Buffer
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(&zb)
		zw.Write(body)
		zw.Close()
		gzipWriters.Put(zw)
		body = zb.Bytes()
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// gzipWriters are reused from one answer to the next: a gzip writer holds
// about a megabyte of compressor state, which was most of what the simulator
// allocated. The fastest level keeps a page's compression cheap; the bytes
// the client reads are the same.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return zw
}}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if strings.TrimSpace(strings.SplitN(part, ";", 2)[0]) == "gzip" {
			return true
		}
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func uuid() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// legacyVersion reports whether the request pins no Zuora-Version at or after LatestVersion.
func legacyVersion(r *http.Request) bool {
	v := r.Header.Get("Zuora-Version")
	if _, err := time.Parse(time.DateOnly, v); err != nil {
		return true
	}
	return v < LatestVersion
}
