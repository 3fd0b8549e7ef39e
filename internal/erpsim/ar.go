package erpsim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/archeck"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// The ERP's receivables (docs/design.md "ERP API"): applications join two
// documents it holds, reversals end a live copy of a document or an
// application, and each document's open balance follows from what is live.

// Paths of the AR endpoints.
const (
	applicationsPath = "/api/applications"
	reversalsPath    = "/api/reversals"
	documentsRead    = "/api/documents/"
	applicationsRead = "/api/applications/"
)

func readPath(p string) bool {
	return strings.HasPrefix(p, documentsRead) || strings.HasPrefix(p, applicationsRead)
}

// Application is one application event the ERP stored.
type Application struct {
	Key        string          `json:"key"`
	ID         string          `json:"id"` // the ERP id
	ZuoraID    string          `json:"zuora_id"`
	Kind       string          `json:"kind"` // payment, credit_memo, refund
	Source     string          `json:"source_zuora_id"`
	TargetType string          `json:"target_type,omitempty"` // invoice, debit_memo, payment, credit_memo; "" is the credit balance
	Target     string          `json:"target_zuora_id,omitempty"`
	Customer   string          `json:"customer"`
	Currency   string          `json:"currency"`
	Amount     decimal.Decimal `json:"amount"` // positive applies, negative unapplies
	Date       string          `json:"date"`
	Body       json.RawMessage `json:"body"`
	Created    time.Time       `json:"created"`
	Live       bool            `json:"live"`
	ReversedBy string          `json:"reversed_by,omitempty"`
}

// Reversal is one reversal the ERP stored: it ended the live copy ERPID of
// the document or application ZuoraID.
type Reversal struct {
	Key      string          `json:"key"`
	ID       string          `json:"id"`
	ZuoraID  string          `json:"zuora_id"`
	DocType  string          `json:"doc_type"`
	Number   string          `json:"number,omitempty"`
	Customer string          `json:"customer"`
	Currency string          `json:"currency"`
	Amount   decimal.Decimal `json:"amount"`
	Date     string          `json:"date"`
	Reason   string          `json:"reason"`
	ERPID    string          `json:"erp_id"`
	Body     json.RawMessage `json:"body"`
	Created  time.Time       `json:"created"`
}

// KnownDocument is a document the ERP holds from before the stage's start;
// Open (nil: the whole amount) is what was still open on it then.
type KnownDocument struct {
	ZuoraID  string           `json:"zuora_id"`
	Type     string           `json:"type"`
	Number   string           `json:"number"`
	Customer string           `json:"customer"`
	Currency string           `json:"currency"`
	Amount   decimal.Decimal  `json:"amount"`
	Open     *decimal.Decimal `json:"open,omitempty"`
}

// Preload makes the ERP hold documents it had before the stage's start, so
// that applications to them are accepted; one it holds a live copy of already
// is refused, and so is the whole call then.
func (s *Sim) Preload(known ...KnownDocument) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, k := range known {
		if k.ZuoraID == "" || k.Customer == "" || k.Currency == "" {
			return fmt.Errorf("preload %q: zuora_id, customer and currency are required", k.ZuoraID)
		}
		if _, ok := idPrefix[stage.DocType(k.Type)]; !ok {
			return fmt.Errorf("preload %s: unknown document type %q", k.ZuoraID, k.Type)
		}
		if _, live := s.liveDoc[k.ZuoraID]; live || seen[k.ZuoraID] {
			return fmt.Errorf("preload %s: the ERP holds it already", k.ZuoraID)
		}
		seen[k.ZuoraID] = true
	}
	for _, k := range known {
		s.seq++
		opening := decimal.Zero
		if k.Open != nil {
			opening = k.Amount.Sub(*k.Open)
		}
		s.holdDocument(Document{Type: k.Type, ID: fmt.Sprintf("ERP-%s-%06d", idPrefix[stage.DocType(k.Type)], s.seq), ZuoraID: k.ZuoraID,
			Number: k.Number, Amount: k.Amount, Customer: k.Customer, Currency: k.Currency, Created: time.Now().UTC(),
			Live: true, Preloaded: true, Opening: opening})
	}
	return nil
}

// Applications returns every stored application, in creation order.
func (s *Sim) Applications() []Application {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Application(nil), s.apps...)
}

// Reversals returns every stored reversal, in creation order.
func (s *Sim) Reversals() []Reversal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Reversal(nil), s.reversals...)
}

// targetTypes are the target types each kind of application may name; ""
// (the account's credit balance) only for payments and credit memos.
var targetTypes = map[string][]string{
	"payment":     {"invoice", "debit_memo", ""},
	"credit_memo": {"invoice", "debit_memo", ""},
	"refund":      {"payment", "credit_memo"},
}

// validateApplication checks an application body.
func validateApplication(body []byte) (Application, error) {
	fields, err := topObject(body, "application")
	if err != nil {
		return Application{}, err
	}
	var a Application
	for _, f := range []struct {
		name string
		to   *string
	}{{"zuora_id", &a.ZuoraID}, {"kind", &a.Kind}, {"source_zuora_id", &a.Source}, {"customer", &a.Customer},
		{"currency", &a.Currency}, {"date", &a.Date}} {
		v, ok := fields[f.name].(string)
		if !ok || v == "" {
			return Application{}, fmt.Errorf("application.%s is required (a non-empty string)", f.name)
		}
		*f.to = v
	}
	allowed, ok := targetTypes[a.Kind]
	if !ok {
		return Application{}, fmt.Errorf("application.kind %q is not payment, credit_memo or refund", a.Kind)
	}
	switch v := fields["target_type"].(type) {
	case nil:
	case string:
		a.TargetType = v
	default:
		return Application{}, fmt.Errorf("application.target_type must be a string or null")
	}
	if !slices.Contains(allowed, a.TargetType) {
		return Application{}, fmt.Errorf("application.target_type %s is not one a %s application may have (%s)",
			orNull(a.TargetType), a.Kind, strings.Join(orNulls(allowed), ", "))
	}
	switch v := fields["target_zuora_id"].(type) {
	case nil:
	case string:
		a.Target = v
	default:
		return Application{}, fmt.Errorf("application.target_zuora_id must be a string or null")
	}
	if (a.TargetType == "") != (a.Target == "") {
		return Application{}, fmt.Errorf("application.target_zuora_id must be given exactly when target_type is (target_type %s)", orNull(a.TargetType))
	}
	if a.Amount, err = number(fields, "amount"); err != nil {
		return Application{}, fmt.Errorf("application.%w", err)
	}
	if a.Amount.IsZero() {
		return Application{}, fmt.Errorf("application.amount is zero: an application applies (positive) or unapplies (negative) something")
	}
	if _, err := time.Parse(time.DateOnly, a.Date); err != nil {
		return Application{}, fmt.Errorf("application.date %q is not a date (YYYY-MM-DD)", a.Date)
	}
	return a, nil
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

func orNulls(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = orNull(s)
	}
	return out
}

// topObject decodes a body that must be {"<key>": {…}}.
func topObject(body []byte, key string) (map[string]any, error) {
	var top map[string]json.RawMessage
	if err := decode(body, &top); err != nil {
		return nil, fmt.Errorf("body is not a JSON object: %v", err)
	}
	if len(top) != 1 || top[key] == nil {
		return nil, fmt.Errorf("body must have exactly one top-level key %q", key)
	}
	var fields map[string]any
	if err := decode(top[key], &fields); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object", key)
	}
	return fields, nil
}

// postApplication stores an application joining documents the ERP holds.
func (s *Sim) postApplication(key string, body []byte) answer {
	a, err := validateApplication(body)
	if err != nil {
		return errAnswer(http.StatusUnprocessableEntity, "%s", err.Error())
	}
	kept, ans, done := s.admitPost(key, a.Customer, body)
	if done {
		return ans
	}
	if i, live := s.liveApp[a.ZuoraID]; live {
		held := s.apps[i]
		return errAnswer(http.StatusConflict, "application %s is already held (ERP id %s, Idempotency-Key %q)", a.ZuoraID, held.ID, held.Key)
	}
	sourceType := a.Kind // payment, credit_memo or refund: the document type it applies from
	if err := s.holds(a.ZuoraID, "source", sourceType, a.Source, a.Currency); err != nil {
		return errAnswer(http.StatusUnprocessableEntity, "%s", err.Error())
	}
	if a.TargetType != "" {
		if err := s.holds(a.ZuoraID, "target", a.TargetType, a.Target, a.Currency); err != nil {
			return errAnswer(http.StatusUnprocessableEntity, "%s", err.Error())
		}
	}
	s.seq++
	a.Key, a.ID, a.Created, a.Live = key, fmt.Sprintf("ERP-APP-%06d", s.seq), time.Now().UTC(), true
	a.Body = append(json.RawMessage(nil), body...)
	s.byKey[key] = stored{id: a.ID, body: kept}
	i := len(s.apps)
	s.apps = append(s.apps, a)
	s.liveApp[a.ZuoraID], s.lastApp[a.ZuoraID] = i, i
	s.appsOf[a.Source] = append(s.appsOf[a.Source], i)
	if a.Target != "" {
		s.appsOf[a.Target] = append(s.appsOf[a.Target], i)
	}
	return s.created(a.ID)
}

// holds checks that the ERP holds a live copy of document id of docType in currency.
func (s *Sim) holds(app, role, docType, id, currency string) error {
	i, live := s.liveDoc[id]
	if !live {
		return fmt.Errorf("application %s: its %s %s %s is not held by the ERP", app, role, docType, id)
	}
	d := s.docs[i]
	switch {
	case d.Type != docType:
		return fmt.Errorf("application %s: its %s %s is a %s, not a %s", app, role, id, d.Type, docType)
	case d.Currency != currency:
		return fmt.Errorf("application %s: its %s %s is in %s, the application in %s (currency)", app, role, id, d.Currency, currency)
	}
	return nil
}

// reversible are the reversal doc types: every document type (to "") and
// each kind of application (to the kind it names).
var reversible = func() map[string]string {
	m := map[string]string{"payment_application": "payment", "credit_memo_application": "credit_memo", "refund_application": "refund"}
	for _, d := range stage.Documents() {
		m[string(d)] = ""
	}
	return m
}()

type reversalBody struct {
	Reversal
	application string // the kind of application reversed; "" for a document
}

func validateReversal(body []byte) (reversalBody, error) {
	fields, err := topObject(body, "reversal")
	if err != nil {
		return reversalBody{}, err
	}
	var r reversalBody
	for _, f := range []struct {
		name string
		to   *string
	}{{"zuora_id", &r.ZuoraID}, {"doc_type", &r.DocType}, {"customer", &r.Customer}, {"currency", &r.Currency},
		{"date", &r.Date}, {"reason", &r.Reason}} {
		v, ok := fields[f.name].(string)
		if !ok || v == "" {
			return reversalBody{}, fmt.Errorf("reversal.%s is required (a non-empty string)", f.name)
		}
		*f.to = v
	}
	kind, ok := reversible[r.DocType]
	if !ok {
		return reversalBody{}, fmt.Errorf("reversal.doc_type %q is not a document type or payment_application, credit_memo_application, refund_application", r.DocType)
	}
	r.application = kind
	switch v := fields["number"].(type) {
	case string:
		r.Number = v
	case nil:
	default:
		return reversalBody{}, fmt.Errorf("reversal.number must be a string")
	}
	if r.Number == "" && kind == "" {
		return reversalBody{}, fmt.Errorf("reversal.number is required for a document (a non-empty string)")
	}
	if r.Amount, err = number(fields, "amount"); err != nil {
		return reversalBody{}, fmt.Errorf("reversal.%w", err)
	}
	if _, err := time.Parse(time.DateOnly, r.Date); err != nil {
		return reversalBody{}, fmt.Errorf("reversal.date %q is not a date (YYYY-MM-DD)", r.Date)
	}
	return r, nil
}

// postReversal ends the live copy of a document or application.
func (s *Sim) postReversal(key string, body []byte) answer {
	r, err := validateReversal(body)
	if err != nil {
		return errAnswer(http.StatusUnprocessableEntity, "%s", err.Error())
	}
	kept, ans, done := s.admitPost(key, r.Customer, body)
	if done {
		return ans
	}
	match := func(what, customer, currency string, amount decimal.Decimal) error {
		switch {
		case currency != r.Currency:
			return fmt.Errorf("reversal of %s: it is held in %s, not %s (currency)", what, currency, r.Currency)
		case !amount.Equal(r.Amount):
			return fmt.Errorf("reversal of %s: it is held with amount %s, not %s", what, amount, r.Amount)
		case customer != r.Customer:
			return fmt.Errorf("reversal of %s: it is held for customer %s, not %s", what, customer, r.Customer)
		}
		return nil
	}
	var end func(erpID *string)
	if r.application == "" {
		i, live := s.liveDoc[r.ZuoraID]
		if !live {
			return errAnswer(http.StatusUnprocessableEntity, "reversal of %s %s: the ERP holds no live copy of it", r.DocType, r.ZuoraID)
		}
		d := &s.docs[i]
		if d.Type != r.DocType {
			return errAnswer(http.StatusUnprocessableEntity, "reversal of %s %s: it is held as a %s", r.DocType, r.ZuoraID, d.Type)
		}
		if err := match(r.DocType+" "+r.ZuoraID, d.Customer, d.Currency, d.Amount); err != nil {
			return errAnswer(http.StatusUnprocessableEntity, "%s", err.Error())
		}
		end = func(erpID *string) {
			d.Live, d.ReversedBy, *erpID = false, key, d.ID
			delete(s.liveDoc, r.ZuoraID)
		}
	} else {
		i, live := s.liveApp[r.ZuoraID]
		if !live {
			return errAnswer(http.StatusUnprocessableEntity, "reversal of %s %s: the ERP holds no live copy of it", r.DocType, r.ZuoraID)
		}
		a := &s.apps[i]
		if a.Kind != r.application {
			return errAnswer(http.StatusUnprocessableEntity, "reversal of %s %s: it is held as a %s application", r.DocType, r.ZuoraID, a.Kind)
		}
		if err := match(r.DocType+" "+r.ZuoraID, a.Customer, a.Currency, a.Amount); err != nil {
			return errAnswer(http.StatusUnprocessableEntity, "%s", err.Error())
		}
		end = func(erpID *string) {
			a.Live, a.ReversedBy, *erpID = false, key, a.ID
			delete(s.liveApp, r.ZuoraID)
		}
	}
	s.seq++
	rev := r.Reversal
	rev.Key, rev.ID, rev.Created = key, fmt.Sprintf("ERP-REV-%06d", s.seq), time.Now().UTC()
	rev.Body = append(json.RawMessage(nil), body...)
	end(&rev.ERPID)
	s.byKey[key] = stored{id: rev.ID, body: kept}
	s.reversals = append(s.reversals, rev)
	return s.created(rev.ID)
}

// counts reports whether application i moves balances: it is live and so is
// every document it joins.
func (s *Sim) counts(i int) bool {
	a := s.apps[i]
	if !a.Live {
		return false
	}
	if _, live := s.liveDoc[a.Source]; !live {
		return false
	}
	if a.Target != "" {
		if _, live := s.liveDoc[a.Target]; !live {
			return false
		}
	}
	return true
}

// openLocked is a document's open balance: its amount less what was applied
// before the stage (a preloaded document's opening) and less every counting
// application it is the source or the target of; zero without a live copy.
func (s *Sim) openLocked(zuoraID string) (decimal.Decimal, bool) {
	i, live := s.liveDoc[zuoraID]
	if !live {
		return decimal.Zero, false
	}
	d := s.docs[i]
	open := d.Amount.Sub(d.Opening)
	for _, j := range s.appsOf[zuoraID] {
		if s.counts(j) {
			open = open.Sub(s.apps[j].Amount)
		}
	}
	return open, true
}

// OpenBalance returns a document's open balance and whether the ERP holds a
// live copy of it (a reversed or unknown document is open by zero).
func (s *Sim) OpenBalance(zuoraID string) (decimal.Decimal, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.openLocked(zuoraID)
}

// CustomerBalance is what one customer owes and holds in one currency, from
// the live documents and counting applications.
type CustomerBalance struct {
	Customer      string          `json:"customer"`
	Currency      string          `json:"currency"`
	Receivable    decimal.Decimal `json:"receivable"`     // open invoices and debit memos
	Credits       decimal.Decimal `json:"credits"`        // open payments and credit memos
	Refunds       decimal.Decimal `json:"refunds"`        // refunds not applied to a payment or credit memo
	CreditBalance decimal.Decimal `json:"credit_balance"` // applications to the account's credit balance
	Net           decimal.Decimal `json:"net"`            // receivable + refunds − credits − credit balance
}

// CustomerBalances returns every customer's balances per currency, ordered.
func (s *Sim) CustomerBalances() []CustomerBalance {
	s.mu.Lock()
	defer s.mu.Unlock()
	by := map[[2]string]*CustomerBalance{}
	get := func(customer, currency string) *CustomerBalance {
		k := [2]string{customer, currency}
		if by[k] == nil {
			by[k] = &CustomerBalance{Customer: customer, Currency: currency}
		}
		return by[k]
	}
	for id, i := range s.liveDoc {
		d := s.docs[i]
		b := get(d.Customer, d.Currency)
		open, _ := s.openLocked(id)
		switch d.Type {
		case "invoice", "debit_memo":
			b.Receivable = b.Receivable.Add(open)
		case "payment", "credit_memo":
			b.Credits = b.Credits.Add(open)
		case "refund":
			b.Refunds = b.Refunds.Add(open)
		}
	}
	for i, a := range s.apps {
		if a.TargetType == "" && s.counts(i) {
			b := get(s.docs[s.liveDoc[a.Source]].Customer, a.Currency)
			b.CreditBalance = b.CreditBalance.Add(a.Amount)
		}
	}
	out := make([]CustomerBalance, 0, len(by))
	for _, b := range by {
		b.Net = b.Receivable.Add(b.Refunds).Sub(b.Credits).Sub(b.CreditBalance)
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b CustomerBalance) int {
		return cmp.Or(cmp.Compare(a.Customer, b.Customer), cmp.Compare(a.Currency, b.Currency))
	})
	return out
}

// ARDocuments lists every document the ERP holds or held, one per Zuora id
// (its live copy, else its latest), with its open balance, for the AR-parity oracle.
func (s *Sim) ARDocuments() []archeck.ERPDoc {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]archeck.ERPDoc, 0, len(s.lastDoc))
	for id, i := range s.lastDoc {
		d := s.docs[i]
		if j, live := s.liveDoc[id]; live {
			d = s.docs[j]
		}
		open, live := s.openLocked(id)
		out = append(out, archeck.ERPDoc{ZuoraID: id, DocType: d.Type, Customer: d.Customer, Currency: d.Currency, Live: live, Open: open})
	}
	slices.SortFunc(out, func(a, b archeck.ERPDoc) int { return cmp.Compare(a.ZuoraID, b.ZuoraID) })
	return out
}

// read serves GET /api/documents/{zuora_id} and GET /api/applications/{zuora_id}.
func (s *Sim) read(path string) answer {
	if id, ok := strings.CutPrefix(path, documentsRead); ok {
		i, held := s.lastDoc[id]
		if !held || id == "" {
			return errAnswer(http.StatusNotFound, "document %s is not held by the ERP", id)
		}
		d := s.docs[i]
		if j, live := s.liveDoc[id]; live {
			d = s.docs[j]
		}
		open, live := s.openLocked(id)
		copies := 0
		for _, c := range s.docs {
			if c.ZuoraID == id {
				copies++
			}
		}
		return answer{status: http.StatusOK, body: map[string]any{"zuora_id": id, "doc_type": d.Type, "erp_id": d.ID,
			"number": d.Number, "customer": d.Customer, "currency": d.Currency, "amount": json.Number(d.Amount.String()),
			"live": live, "open_balance": json.Number(open.String()), "copies": copies}}
	}
	id := strings.TrimPrefix(path, applicationsRead)
	i, held := s.lastApp[id]
	if !held || id == "" {
		return errAnswer(http.StatusNotFound, "application %s is not held by the ERP", id)
	}
	a := s.apps[i]
	body := map[string]any{"zuora_id": id, "erp_id": a.ID, "kind": a.Kind, "source_zuora_id": a.Source,
		"target_type": nil, "target_zuora_id": nil, "customer": a.Customer, "currency": a.Currency,
		"amount": json.Number(a.Amount.String()), "date": a.Date, "live": a.Live, "counts": s.counts(i)}
	if a.TargetType != "" {
		body["target_type"], body["target_zuora_id"] = a.TargetType, a.Target
	}
	return answer{status: http.StatusOK, body: body}
}
