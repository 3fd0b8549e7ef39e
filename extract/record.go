package extract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// record is one Object Query record decoded lazily: fields stay raw JSON until a
// column asks for them, so numbers keep their literal text and unknown fields
// cost nothing. The first conversion error is kept and reported once.
type record struct {
	entity  string
	id      string
	updated time.Time
	rawUpd  string
	fields  map[string]json.RawMessage
	folded  map[string]string // lower-case name → key as sent, built on the first miss
	err     error
}

// decodeRecord parses raw and checks the two fields every record must carry;
// a record without them is a *MalformedError.
func decodeRecord(entity string, raw json.RawMessage) (*record, error) {
	r := &record{entity: entity}
	if err := json.Unmarshal(raw, &r.fields); err != nil {
		return nil, malformed(entity, "", "not a JSON object: %v", err)
	}
	id := r.str("id")
	if r.err != nil {
		return nil, r.err
	}
	if id == nil || *id == "" {
		return nil, malformed(entity, "", "has no id (%s)", r.describe(raw))
	}
	r.id = *id
	raw2 := r.str("updatedDate")
	if r.err != nil {
		return nil, r.err
	}
	if raw2 == nil || *raw2 == "" {
		return nil, malformed(entity, r.id, "has no updatedDate")
	}
	t, err := time.Parse(time.RFC3339, *raw2)
	if err != nil {
		return nil, malformed(entity, r.id, "updatedDate %q is not a timestamp with offset", *raw2)
	}
	r.updated, r.rawUpd = t.UTC(), *raw2
	return r, nil
}

// describe names a record that has no id by its number, else by its first bytes.
func (r *record) describe(raw json.RawMessage) string {
	for _, n := range numberFields {
		if v := r.str(n); v != nil {
			return n + " " + *v
		}
	}
	return snippet(raw)
}

// numberFields are the JSON names of every document's number, and of an
// item's charge number, in load order.
var numberFields = func() []string {
	var out []string
	for _, dt := range stage.Documents() {
		if n := entities[dt].numberField(); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return append(out, "chargeNumber")
}()

// snippet shortens a raw record for an error message.
func snippet(raw json.RawMessage) string {
	const max = 80
	if len(raw) > max {
		return string(raw[:max]) + "…"
	}
	return string(raw)
}

// fail keeps the first field that cannot be converted, as a *MalformedError.
func (r *record) fail(field string, err error) {
	if r.err == nil {
		r.err = malformed(r.entity, r.id, "field %s: %v", field, err)
	}
}

// value returns the raw JSON of the first of names present and not null. A
// name is looked up exactly first, then case-insensitively: Object Query
// normalizes field names to lower camel case, so a custom field such as
// ERPAccountId__c arrives as eRPAccountId__c.
func (r *record) value(names ...string) (string, json.RawMessage) {
	for _, n := range names {
		v, ok := r.fields[n]
		if !ok {
			n, v, ok = r.fold(n)
		}
		if ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return n, v
		}
	}
	return "", nil
}

// fold finds a field by its name in any case.
func (r *record) fold(name string) (string, json.RawMessage, bool) {
	if r.folded == nil {
		r.folded = make(map[string]string, len(r.fields))
		for k := range r.fields {
			r.folded[strings.ToLower(k)] = k
		}
	}
	k, ok := r.folded[strings.ToLower(name)]
	if !ok {
		return "", nil, false
	}
	return k, r.fields[k], true
}

// str returns a text field; names lists the spellings Zuora is known to use.
func (r *record) str(names ...string) *string {
	name, v := r.value(names...)
	if v == nil {
		return nil
	}
	v = bytes.TrimSpace(v)
	if len(v) > 0 && v[0] == '"' {
		s, err := unquote(v)
		if err != nil {
			r.fail(name, err)
			return nil
		}
		return &s
	}
	if len(v) > 0 && (v[0] == '{' || v[0] == '[') {
		r.fail(name, fmt.Errorf("want text, got %s", snippet(v)))
		return nil
	}
	s := string(v) // a number or boolean where text was expected: keep its literal
	return &s
}

// unquote decodes a JSON string literal. One that needs no decoding (no
// escape, quote or control character, valid UTF-8) is its bytes, as
// encoding/json would return them, without its two scans; any other goes
// through encoding/json.
func unquote(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if n := len(v); n >= 2 && v[0] == '"' && v[n-1] == '"' && plain(v[1:n-1]) {
		return string(v[1 : n-1]), nil
	}
	var s string
	err := json.Unmarshal(v, &s)
	return s, err
}

// plain reports whether b can stand in a JSON string literal as it is.
func plain(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c == '"' || c < 0x20 {
			return false
		}
	}
	return utf8.Valid(b)
}

// decimal returns a money or quantity field exactly as its JSON literal says.
func (r *record) decimal(name string) (decimal.Decimal, bool) {
	_, v := r.value(name)
	if v == nil {
		return decimal.Decimal{}, false
	}
	text := string(bytes.TrimSpace(v))
	if len(text) > 0 && text[0] == '"' {
		var err error
		if text, err = unquote(v); err != nil {
			r.fail(name, err)
			return decimal.Decimal{}, false
		}
	}
	d, err := money.Parse(text)
	if err != nil {
		r.fail(name, err)
		return decimal.Decimal{}, false
	}
	return d, true
}

// fixed returns a decimal field as DECIMAL(38,9); more than 9 places is an error.
func (r *record) fixed(name string) *[16]byte {
	d, ok := r.decimal(name)
	if !ok {
		return nil
	}
	f, err := money.ToFixed(d)
	if err != nil {
		r.fail(name, err)
		return nil
	}
	return &f
}

// boolean returns a true/false field; Zuora's booleans are JSON literals,
// and their text forms are read too.
func (r *record) boolean(name string) *bool {
	n, v := r.value(name)
	if v == nil {
		return nil
	}
	var b bool
	switch strings.Trim(string(bytes.TrimSpace(v)), `"`) {
	case "true", "True", "TRUE":
		b = true
	case "false", "False", "FALSE":
	default:
		r.fail(n, fmt.Errorf("want true or false, got %s", snippet(v)))
		return nil
	}
	return &b
}

// date returns a YYYY-MM-DD field as days since 1970-01-01.
func (r *record) date(name string) *int32 {
	s := r.str(name)
	if s == nil {
		return nil
	}
	t, err := time.Parse(time.DateOnly, *s)
	if err != nil {
		r.fail(name, fmt.Errorf("%q is not a date", *s))
		return nil
	}
	days := int32(t.Unix() / 86400)
	return &days
}

// timestamp returns a date-time field (offset included) as a UTC instant.
func (r *record) timestamp(name string) *time.Time {
	s := r.str(name)
	if s == nil {
		return nil
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		r.fail(name, fmt.Errorf("%q is not a timestamp with offset", *s))
		return nil
	}
	t = t.UTC()
	return &t
}

// object returns a nested object such as the expanded account, or nil.
func (r *record) object(name string) map[string]json.RawMessage {
	_, v := r.value(name)
	if v == nil {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		r.fail(name, err)
		return nil
	}
	return m
}

// list returns an expanded child list such as invoiceItems.
func (r *record) list(name string) []json.RawMessage {
	_, v := r.value(name)
	if v == nil {
		return nil
	}
	var l []json.RawMessage
	if err := json.Unmarshal(v, &l); err != nil {
		r.fail(name, err)
		return nil
	}
	return l
}

// account is what the extract keeps of the expanded account.
type account struct {
	id, number, erpID *string
}

// account reads the expanded account; erpField names its ERP customer field.
func (r *record) account(erpField string) account {
	m := r.object("account")
	if m == nil {
		return account{id: r.str("accountId")}
	}
	sub := &record{entity: r.entity + " account", id: r.id, fields: m}
	a := account{id: sub.str("id"), number: sub.str("accountNumber"), erpID: sub.str(erpField)}
	if sub.err != nil {
		r.fail("account", sub.err)
	}
	if id := r.str("accountId"); id != nil {
		a.id = id
	}
	return a
}

func (r *record) created() *time.Time { return r.timestamp("createdDate") }

func (r *record) updatedPtr() *time.Time { t := r.updated; return &t }

func (r *record) rawUpdated() *string { s := r.rawUpd; return &s }

func int64Ptr(n int) *int64 { v := int64(n); return &v }
