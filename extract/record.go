package extract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/fastjson"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// record is one Object Query record, decoded in one pass with its nested
// account and items (see decodeFields): numbers keep their literal text as
// json.Number, so money is never a float. The first conversion error is kept
// and reported once.
type record struct {
	entity  string
	id      string
	updated time.Time
	rawUpd  string
	fields  map[string]any
	err     error
}

// decodeRecord parses raw and checks the two fields every record must carry;
// a record without them is a *MalformedError.
func decodeRecord(entity string, raw json.RawMessage) (*record, error) {
	fields, err := decodeFields(raw)
	if err != nil {
		return nil, malformed(entity, "", "not a JSON object: %v", err)
	}
	return checkRecord(entity, fields, func() string { return snippet(raw) })
}

// recordOf checks an item of an expanded list, decoded with its document, as
// decodeRecord checks a record sent on its own.
func recordOf(entity string, v any) (*record, error) {
	fields, ok := v.(map[string]any)
	if !ok && v != nil {
		return nil, malformed(entity, "", "not a JSON object: %v", typeError(v, &map[string]json.RawMessage{}))
	}
	return checkRecord(entity, fields, func() string { return snippet(literal(v)) })
}

// checkRecord reads the id and updatedDate of a decoded record; raw gives
// its text for an error that names it.
func checkRecord(entity string, fields map[string]any, raw func() string) (*record, error) {
	r := &record{entity: entity, fields: fields}
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

// decodeFields decodes a record, whole, in one pass: objects as maps, lists
// as slices, numbers as their literal. A record that is not a JSON object
// fails with encoding/json's own error for it (a null is no fields): only
// then is it decoded a second time, by encoding/json.
func decodeFields(raw json.RawMessage) (map[string]any, error) {
	var fast any
	if err := fastjson.Unmarshal(raw, &fast); err == nil {
		if fields, ok := fast.(map[string]any); ok || fast == nil {
			return fields, nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any // not a map: encoding/json decodes into any without reflection
	err := dec.Decode(&v)
	if fields, ok := v.(map[string]any); (ok || v == nil) && err == nil {
		if _, end := dec.Token(); end == io.EOF {
			return fields, nil
		}
	}
	var m map[string]json.RawMessage // the error json.Unmarshal gives, whatever the decoder said
	if uerr := json.Unmarshal(raw, &m); uerr != nil {
		return nil, uerr
	}
	if err == nil {
		err = errors.New("more after the record")
	}
	return nil, err
}

// literal is the JSON text of a decoded value, for an error that quotes it.
func literal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte(fmt.Sprint(v))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// typeError is the error encoding/json gives when a value's text is
// unmarshaled into dst, a pointer to the Go type it was wanted as.
func typeError(v any, dst any) error {
	if err := json.Unmarshal(literal(v), dst); err != nil {
		return err
	}
	return fmt.Errorf("want %T, got %s", dst, snippet(literal(v)))
}

// describe names a record that has no id by its number, else by its first bytes.
func (r *record) describe(raw func() string) string {
	for _, n := range numberFields {
		if v := r.str(n); v != nil {
			return n + " " + *v
		}
	}
	return raw()
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
func snippet(raw []byte) string {
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

// value returns the first of names present and not null. A name is looked
// up exactly first, then case-insensitively: Object Query normalizes field
// names to lower camel case, so a custom field such as ERPAccountId__c
// arrives as eRPAccountId__c.
func (r *record) value(names ...string) (string, any) {
	for _, n := range names {
		v, ok := r.fields[n]
		if !ok {
			n, v = r.fold(n)
		}
		if v != nil {
			return n, v
		}
	}
	return "", nil
}

// fold finds a field by its name in any case; a miss costs a look at each
// key, which is cheaper than a folded index for the few misses of a record.
func (r *record) fold(name string) (string, any) {
	for k, v := range r.fields {
		if strings.EqualFold(k, name) {
			return k, v
		}
	}
	return "", nil
}

// str returns a text field; names lists the spellings Zuora is known to use.
func (r *record) str(names ...string) *string {
	name, v := r.value(names...)
	var s string
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		s = v
	case json.Number: // a number where text was expected: keep its literal
		s = string(v)
	case bool:
		s = strconv.FormatBool(v)
	default:
		r.fail(name, fmt.Errorf("want text, got %s", snippet(literal(v))))
		return nil
	}
	return &s
}

// text is a scalar field's text: a string's value or a number's literal.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return string(v)
	}
	return string(literal(v))
}

// decimal returns a money or quantity field exactly as its JSON literal says.
func (r *record) decimal(name string) (decimal.Decimal, bool) {
	_, v := r.value(name)
	if v == nil {
		return decimal.Decimal{}, false
	}
	d, err := money.Parse(text(v))
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
	if b, ok := v.(bool); ok {
		return &b
	}
	var b bool
	switch s, _ := v.(string); s {
	case "true", "True", "TRUE":
		b = true
	case "false", "False", "FALSE":
	default:
		r.fail(n, fmt.Errorf("want true or false, got %s", snippet(literal(v))))
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
func (r *record) object(name string) map[string]any {
	_, v := r.value(name)
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		r.fail(name, typeError(v, &map[string]json.RawMessage{}))
		return nil
	}
	return m
}

// list returns an expanded child list such as invoiceItems, each item as decoded.
func (r *record) list(name string) []any {
	_, v := r.value(name)
	if v == nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		r.fail(name, typeError(v, &[]json.RawMessage{}))
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
