// Package erpsim is an in-process ERP that speaks the "ERP API" of
// docs/design.md: bearer-token auth, idempotency keys, body validation, exact
// decimal amounts, documents with one live copy each, applications and
// reversals with the open balances they leave, fault knobs that can change
// while it runs, and a log of every request so tests can prove each document
// arrived exactly once.
//
// A repeated Idempotency-Key with the same body (canonical JSON, numbers
// compared as decimals) is answered 200 with the original id and the header
// Idempotent-Replayed: true; a first create is answered 201.
package erpsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// ReplayedHeader is set to "true" on an answer repeated for a known idempotency key.
const ReplayedHeader = "Idempotent-Replayed"

// idPrefix gives ERP ids a readable prefix per document type. The endpoint
// of each type, and whether its documents have items, are the registry's.
var idPrefix = map[stage.DocType]string{
	stage.Invoice: "INV", stage.Payment: "PAY", stage.Refund: "REF", stage.CreditMemo: "CM", stage.DebitMemo: "DM",
}

// DefaultToken is the bearer token a simulator accepts when Options.Token is empty.
const DefaultToken = "erp-sim-token"

// Options configures a simulator.
type Options struct {
	Token string // the bearer token every request must carry; empty means DefaultToken
	// Faults are the knobs the simulator starts with.
	Faults Faults
	// KnownDocuments are held from the start, as documents older than the
	// stage's start that the ERP already has (see Preload); New panics on an invalid one.
	KnownDocuments []KnownDocument
}

// TokenOrDefault returns the bearer token a Sim built from o accepts.
func (o Options) TokenOrDefault() string {
	if o.Token == "" {
		return DefaultToken
	}
	return o.Token
}

// RegisterFlags binds the options to command-line flags, all prefixed "erp-".
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Token, "erp-token", o.Token, "bearer token the simulated ERP accepts (empty: "+DefaultToken+")")
	fs.DurationVar(&o.Faults.Latency, "erp-latency", o.Faults.Latency, "delay added to every ERP answer")
	fs.BoolVar(&o.Faults.Outage, "erp-outage", o.Faults.Outage, "answer every ERP request 503")
	fs.IntVar(&o.Faults.FailNext, "erp-fail-next", o.Faults.FailNext, "answer the next N ERP requests with -erp-fail-status")
	fs.IntVar(&o.Faults.FailStatus, "erp-fail-status", o.Faults.FailStatus, "status for -erp-fail-next (500 or 503; 0 means 503)")
	fs.IntVar(&o.Faults.Storm429, "erp-429", o.Faults.Storm429, "answer the next N ERP requests 429 with Retry-After")
	fs.DurationVar(&o.Faults.RetryAfter, "erp-retry-after", o.Faults.RetryAfter, "Retry-After sent with -erp-429 answers")
	fs.IntVar(&o.Faults.CommitThenStall, "erp-commit-then-stall", o.Faults.CommitThenStall, "store the next N documents, then drop the connection unanswered")
}

// Faults are the failure knobs. Counters (FailNext, Storm429, CommitThenStall)
// count down as requests consume them.
type Faults struct {
	Outage     bool          `json:"outage"`      // every request is answered 503
	FailNext   int           `json:"fail_next"`   // the next N requests are answered FailStatus
	FailStatus int           `json:"fail_status"` // 500 or 503; 0 means 503
	Storm429   int           `json:"storm_429"`   // the next N requests are answered 429
	RetryAfter time.Duration `json:"retry_after"` // Retry-After sent with 429 (whole seconds, rounded up)
	Latency    time.Duration `json:"latency"`     // delay before every answer
	// CommitThenStall makes the next N creates store the document, then stall
	// for Stall (or until the client hangs up) and drop the connection unanswered.
	CommitThenStall int           `json:"commit_then_stall"`
	Stall           time.Duration `json:"stall"` // 0 means until the client hangs up
	// RejectKeys and RejectCustomers answer 422 with the given message.
	RejectKeys      map[string]string `json:"reject_keys,omitempty"`
	RejectCustomers map[string]string `json:"reject_customers,omitempty"`
}

// Document is one copy of a document the ERP stored. A document (by Zuora
// id) has at most one live copy; a reversal ends it, and posting the document
// again (under a new key) makes a new one.
type Document struct {
	Type     string          `json:"type"` // invoice, payment, refund, credit_memo, debit_memo
	Key      string          `json:"key"`  // the Idempotency-Key that created it ("" when preloaded)
	ID       string          `json:"id"`   // the ERP id
	ZuoraID  string          `json:"zuora_id"`
	Number   string          `json:"number"`
	Body     json.RawMessage `json:"body"`
	Amount   decimal.Decimal `json:"amount"`
	Customer string          `json:"customer"`
	Currency string          `json:"currency"`
	Created  time.Time       `json:"created"`
	// Live is false once a reversal ended this copy; ReversedBy is that reversal's key.
	Live       bool   `json:"live"`
	ReversedBy string `json:"reversed_by,omitempty"`
	// Preloaded marks a document the ERP held before the stage's start
	// (Options.KnownDocuments, Preload); Opening is what was applied to it then.
	Preloaded bool            `json:"preloaded,omitempty"`
	Opening   decimal.Decimal `json:"opening"`
}

// Request is one request the simulator received and how it answered it.
type Request struct {
	Time     time.Time
	Method   string
	Path     string
	Key      string
	Status   int  // 0 when the connection was dropped unanswered
	Replayed bool // answered from the idempotency store
	Body     []byte
}

// Sim is the simulated ERP; it is an http.Handler.
type Sim struct {
	token string

	mu        sync.Mutex
	faults    Faults
	docs      []Document
	apps      []Application
	reversals []Reversal
	byKey     map[string]stored // every key of every endpoint
	liveDoc   map[string]int    // Zuora id → index into docs of the live copy
	lastDoc   map[string]int    // Zuora id → index into docs of the latest copy
	liveApp   map[string]int    // Zuora id → index into apps of the live copy
	lastApp   map[string]int
	appsOf    map[string][]int // Zuora id of a source or target document → indexes into apps
	requests  []Request
	seq       int
}

type stored struct {
	id   string // the ERP id the first answer gave
	body []byte // the first body as it came; compared in canonical form only when a replay's bytes differ
}

// New returns a simulator holding nothing but Options.KnownDocuments.
func New(opts Options) *Sim {
	s := &Sim{token: opts.TokenOrDefault(), faults: copyFaults(opts.Faults), byKey: map[string]stored{},
		liveDoc: map[string]int{}, lastDoc: map[string]int{}, liveApp: map[string]int{}, lastApp: map[string]int{},
		appsOf: map[string][]int{}}
	if err := s.Preload(opts.KnownDocuments...); err != nil {
		panic("erpsim: " + err.Error())
	}
	return s
}

// SetFaults replaces every fault knob at once; it is safe while serving.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = copyFaults(f)
}

// Faults returns the current knobs, counters as consumed so far.
func (s *Sim) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyFaults(s.faults)
}

func copyFaults(f Faults) Faults {
	f.RejectKeys = copyMap(f.RejectKeys)
	f.RejectCustomers = copyMap(f.RejectCustomers)
	return f
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Documents returns every stored document, in creation order.
func (s *Sim) Documents() []Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Document(nil), s.docs...)
}

// Requests returns every request received so far, in arrival order.
func (s *Sim) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Stats counts the requests the simulator received (admin calls are not
// counted), by method and path.
type Stats struct {
	Requests map[string]int `json:"requests"`
}

// Total is the number of requests counted.
func (st Stats) Total() int {
	n := 0
	for _, c := range st.Requests {
		n += c
	}
	return n
}

// Stats returns the counts of the requests received so far.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Requests: map[string]int{}}
	for _, r := range s.requests {
		st.Requests[r.Method+" "+r.Path]++
	}
	return st
}

// ServeHTTP answers one ERP API call.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, AdminPrefix) {
		s.admin(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	req := Request{Time: time.Now().UTC(), Method: r.Method, Path: r.URL.Path, Key: r.Header.Get("Idempotency-Key"), Body: body}

	s.mu.Lock()
	f := s.faults
	s.mu.Unlock()
	if f.Latency > 0 {
		select {
		case <-time.After(f.Latency):
		case <-r.Context().Done():
		}
	}

	a := s.answer(r, req.Key, body)
	req.Status, req.Replayed = a.status, a.replayed
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	if a.stall {
		wait := f.Stall
		var timer <-chan time.Time
		if wait > 0 {
			timer = time.After(wait)
		}
		select {
		case <-timer:
		case <-r.Context().Done():
		}
		panic(http.ErrAbortHandler) // drops the connection without an answer
	}
	w.Header().Set("Content-Type", "application/json")
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	if a.replayed {
		w.Header().Set(ReplayedHeader, "true")
	}
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(a.body)
}

// AdminPrefix serves the simulator's own controls, with the same bearer token:
// GET /_sim/stats (the Stats), GET and PUT /_sim/faults (the Faults as JSON, durations in nanoseconds),
// GET /_sim/documents, /_sim/applications, /_sim/reversals, /_sim/balances (per
// customer and currency) and POST /_sim/preload (a JSON array of
// KnownDocument). Admin calls are not logged in Requests.
const AdminPrefix = "/_sim/"

func (s *Sim) admin(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		reply(http.StatusUnauthorized, map[string]string{"error": "missing or bad bearer token"})
		return
	}
	switch {
	case r.URL.Path == AdminPrefix+"stats" && r.Method == http.MethodGet:
		reply(http.StatusOK, s.Stats())
	case r.URL.Path == AdminPrefix+"faults" && r.Method == http.MethodGet:
		reply(http.StatusOK, s.Faults())
	case r.URL.Path == AdminPrefix+"faults" && r.Method == http.MethodPut:
		var f Faults
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			reply(http.StatusBadRequest, map[string]string{"error": "faults: " + err.Error()})
			return
		}
		s.SetFaults(f)
		reply(http.StatusOK, f)
	case r.URL.Path == AdminPrefix+"documents" && r.Method == http.MethodGet:
		reply(http.StatusOK, s.Documents())
	case r.URL.Path == AdminPrefix+"applications" && r.Method == http.MethodGet:
		reply(http.StatusOK, s.Applications())
	case r.URL.Path == AdminPrefix+"reversals" && r.Method == http.MethodGet:
		reply(http.StatusOK, s.Reversals())
	case r.URL.Path == AdminPrefix+"balances" && r.Method == http.MethodGet:
		reply(http.StatusOK, s.CustomerBalances())
	case r.URL.Path == AdminPrefix+"preload" && r.Method == http.MethodPost:
		var known []KnownDocument
		if err := json.NewDecoder(r.Body).Decode(&known); err != nil {
			reply(http.StatusBadRequest, map[string]string{"error": "preload: " + err.Error()})
			return
		}
		if err := s.Preload(known...); err != nil {
			reply(http.StatusUnprocessableEntity, map[string]string{"error": err.Error()})
			return
		}
		reply(http.StatusOK, known)
	default:
		reply(http.StatusNotFound, map[string]string{"error": "no admin endpoint " + r.Method + " " + r.URL.Path})
	}
}

type answer struct {
	status     int
	body       any
	retryAfter string
	replayed   bool
	stall      bool // committed; drop the connection instead of answering
}

func errAnswer(status int, format string, args ...any) answer {
	return answer{status: status, body: map[string]string{"error": fmt.Sprintf(format, args...)}}
}

// answer decides the response; it consumes fault counters and stores documents.
func (s *Sim) answer(r *http.Request, key string, body []byte) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.faultLocked(); ok {
		return a
	}
	if r.Method == http.MethodGet && r.URL.Path == PingPath {
		return s.ping(r)
	}
	if r.Method == http.MethodGet && readPath(r.URL.Path) {
		if r.Header.Get("Authorization") != "Bearer "+s.token {
			return errAnswer(http.StatusUnauthorized, "missing or bad bearer token")
		}
		return s.read(r.URL.Path)
	}
	if r.Method != http.MethodPost {
		return errAnswer(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
	docType, ok := stage.DocTypeOfEndpoint(r.URL.Path)
	if !ok && r.URL.Path != applicationsPath && r.URL.Path != reversalsPath {
		return errAnswer(http.StatusNotFound, "no endpoint %s", r.URL.Path)
	}
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		return errAnswer(http.StatusUnauthorized, "missing or bad bearer token")
	}
	if key == "" {
		return errAnswer(http.StatusBadRequest, "Idempotency-Key header is required")
	}
	switch r.URL.Path {
	case applicationsPath:
		return s.postApplication(key, body)
	case reversalsPath:
		return s.postReversal(key, body)
	}
	doc, err := validate(docType, body)
	if err != nil {
		return errAnswer(http.StatusUnprocessableEntity, "%s", err.Error())
	}
	kept, a, done := s.admitPost(key, doc.Customer, body)
	if done {
		return a
	}
	if i, live := s.liveDoc[doc.ZuoraID]; live {
		held := s.docs[i]
		return errAnswer(http.StatusConflict, "document %s is already held (ERP id %s, Idempotency-Key %q): reverse it before posting it again",
			doc.ZuoraID, held.ID, held.Key)
	}
	s.seq++
	doc.Type, doc.Key, doc.Created, doc.Live = string(docType), key, time.Now().UTC(), true
	doc.ID = fmt.Sprintf("ERP-%s-%06d", idPrefix[docType], s.seq)
	doc.Body = append(json.RawMessage(nil), body...)
	s.byKey[key] = stored{id: doc.ID, body: kept}
	s.holdDocument(doc)
	return s.created(doc.ID)
}

// faultLocked is the answer a fault knob gives instead of the endpoint's
// (an outage, a storm of 429s, the next failures), consuming its counter.
func (s *Sim) faultLocked() (answer, bool) {
	f := &s.faults
	switch {
	case f.Outage:
		return errAnswer(http.StatusServiceUnavailable, "erp is down for maintenance"), true
	case f.Storm429 > 0:
		f.Storm429--
		a := errAnswer(http.StatusTooManyRequests, "too many requests")
		a.retryAfter = strconv.Itoa(int((f.RetryAfter + time.Second - 1) / time.Second))
		return a, true
	case f.FailNext > 0:
		f.FailNext--
		status := f.FailStatus
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		return errAnswer(status, "internal error"), true
	}
	return answer{}, false
}

// admitPost applies the refusal knobs and the idempotency store to a valid
// body: done is true with the answer to give (a refusal, a replay, a
// conflict); otherwise a copy of the body is returned for storing.
func (s *Sim) admitPost(key, customer string, body []byte) (kept []byte, a answer, done bool) {
	f := &s.faults
	if msg, ok := f.RejectKeys[key]; ok {
		return nil, errAnswer(http.StatusUnprocessableEntity, "%s", msg), true
	}
	if msg, ok := f.RejectCustomers[customer]; ok {
		return nil, errAnswer(http.StatusUnprocessableEntity, "%s", msg), true
	}
	if !json.Valid(body) {
		_, err := canonical(body) // says what is wrong
		return nil, errAnswer(http.StatusUnprocessableEntity, "body: %v", err), true
	}
	if prev, ok := s.byKey[key]; ok {
		if !sameBody(prev.body, body) {
			return nil, errAnswer(http.StatusConflict, "idempotency key %s was used with a different body", key), true
		}
		return nil, answer{status: http.StatusOK, body: map[string]string{"id": prev.id}, replayed: true}, true
	}
	return append([]byte(nil), body...), answer{}, false
}

// sameBody reports whether two bodies are the same JSON: the same bytes, or
// the same canonical form (keys in any order, numbers in any spelling).
func sameBody(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	ca, errA := canonical(a)
	cb, errB := canonical(b)
	return errA == nil && errB == nil && bytes.Equal(ca, cb)
}

// created answers a stored create: 201, or the CommitThenStall fault.
func (s *Sim) created(id string) answer {
	if f := &s.faults; f.CommitThenStall > 0 {
		f.CommitThenStall--
		return answer{status: 0, stall: true}
	}
	return answer{status: http.StatusCreated, body: map[string]string{"id": id}}
}

// holdDocument stores a copy as the document's live one.
func (s *Sim) holdDocument(doc Document) {
	s.liveDoc[doc.ZuoraID] = len(s.docs)
	s.lastDoc[doc.ZuoraID] = len(s.docs)
	s.docs = append(s.docs, doc)
}

// validate checks the body against the ERP API and returns the document's header.
func validate(dt stage.DocType, body []byte) (Document, error) {
	docType := string(dt)
	var top map[string]json.RawMessage
	if err := decode(body, &top); err != nil {
		return Document{}, fmt.Errorf("body is not a JSON object: %v", err)
	}
	if len(top) != 1 || top[docType] == nil {
		return Document{}, fmt.Errorf("body must have exactly one top-level key %q", docType)
	}
	var fields map[string]any
	if err := decode(top[docType], &fields); err != nil {
		return Document{}, fmt.Errorf("%s is not a JSON object", docType)
	}
	var doc Document
	for _, h := range headerFields {
		v, ok := fields[h.name].(string)
		if !ok || v == "" {
			return Document{}, fmt.Errorf("%s.%s is required (a non-empty string)", docType, h.name)
		}
		if h.set != nil {
			h.set(&doc, v)
		}
	}
	amount, err := number(fields, "amount")
	if err != nil {
		return Document{}, fmt.Errorf("%s.%w", docType, err)
	}
	doc.Amount = amount
	if dt.ItemTable() != "" {
		if err := validateItems(docType, fields["items"]); err != nil {
			return Document{}, err
		}
	}
	return doc, nil
}

// headerFields are the text fields every document's header must carry, in
// the order they are checked, with where the header keeps each (date: nowhere).
var headerFields = []struct {
	name string
	set  func(d *Document, v string)
}{
	{"zuora_id", func(d *Document, v string) { d.ZuoraID = v }},
	{"number", func(d *Document, v string) { d.Number = v }},
	{"customer", func(d *Document, v string) { d.Customer = v }},
	{"currency", func(d *Document, v string) { d.Currency = v }},
	{"date", nil},
}

// validateItems checks a document's items: a non-empty array of objects,
// each with its text and number fields.
func validateItems(docType string, v any) error {
	items, ok := v.([]any)
	if !ok || len(items) == 0 {
		return fmt.Errorf("%s.items is required (a non-empty array)", docType)
	}
	for i, it := range items {
		item, ok := it.(map[string]any)
		if !ok {
			return fmt.Errorf("%s.items[%d] is not an object", docType, i)
		}
		for _, name := range []string{"zuora_id", "description"} {
			if v, ok := item[name].(string); !ok || v == "" {
				return fmt.Errorf("%s.items[%d].%s is required (a non-empty string)", docType, i, name)
			}
		}
		for _, name := range []string{"quantity", "unit_price", "amount", "tax_amount"} {
			if _, err := number(item, name); err != nil {
				return fmt.Errorf("%s.items[%d].%w", docType, i, err)
			}
		}
	}
	return nil
}

func number(fields map[string]any, name string) (decimal.Decimal, error) {
	n, ok := fields[name].(json.Number)
	if !ok {
		return decimal.Decimal{}, fmt.Errorf("%s is required (a number)", name)
	}
	d, err := decimal.NewFromString(string(n))
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("%s %q is not a decimal number", name, n)
	}
	return d, nil
}

// decode parses JSON keeping numbers as their literal text.
func decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// canonical re-encodes a JSON body with sorted keys and every number in its
// shortest decimal form, so 1.50 and 1.5 compare equal and key order does not matter.
func canonical(body []byte) ([]byte, error) {
	var v any
	if err := decode(body, &v); err != nil {
		return nil, err
	}
	v, err := canonicalValue(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func canonicalValue(v any) (any, error) {
	switch t := v.(type) {
	case json.Number:
		d, err := decimal.NewFromString(string(t))
		if err != nil {
			return nil, fmt.Errorf("number %q: %w", t, err)
		}
		return json.Number(d.String()), nil
	case map[string]any:
		for k := range t { // json.Marshal sorts map keys
			c, err := canonicalValue(t[k])
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
		return t, nil
	case []any:
		for i := range t {
			c, err := canonicalValue(t[i])
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
		return t, nil
	}
	return v, nil
}

var _ http.Handler = (*Sim)(nil)
