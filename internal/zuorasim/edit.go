package zuorasim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// SetFields edits one record as a user would in Zuora: the fields (exact JSON
// names; values as text, "" for null) change and only this record's
// updatedDate moves to Now, so fixing an account leaves its invoices alone.
func (s *Sim) SetFields(id string, fields map[string]string) error {
	now := unixText(s.now())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version++ // any write may change what a cached sort holds
	tb, rec := s.findLocked(id)
	if rec == nil {
		return fmt.Errorf("set fields of %s: no such record", id)
	}
	type change struct {
		pos  int
		val  string
		null bool
	}
	var changes []change
	for name, v := range fields {
		i, ok := tb.sch.index[strings.ToLower(name)]
		if !ok {
			return fmt.Errorf("set fields of %s: %s has no field %s", id, tb.sch.object, name)
		}
		if i == fID || tb.sch.fields[i].name == tb.sch.number || tb.indexed(i) {
			return fmt.Errorf("set fields of %s: %s identifies or links records and cannot be changed", id, name)
		}
		if v == "" {
			changes = append(changes, change{pos: i, null: true})
			continue
		}
		text, err := storedText(tb.sch.fields[i], v)
		if err != nil {
			return fmt.Errorf("set fields of %s: %s: %w", id, name, err)
		}
		changes = append(changes, change{pos: i, val: text})
	}
	for _, c := range changes {
		if c.null {
			rec.null |= 1 << uint(c.pos)
			continue
		}
		rec.set(c.pos, c.val)
	}
	if _, stamped := fields["updatedDate"]; !stamped {
		rec.set(fUpdatedDate, now)
	}
	return nil
}

// Corruption changes how one record is rendered, never what the tenant holds,
// so a test can serve what Zuora should not send: a field left out, or a value
// in another form. Filters and sorts still see the stored values.
type Corruption struct {
	// Omit lists the fields left out of the record, by exact JSON name, e.g. "updatedDate" or "id".
	Omit []string
	// Raw renders fields of the object with this JSON text instead of their
	// value, e.g. {"amount": `1234.567890123456`} or {"amount": `"1234.567890123456"`}.
	Raw map[string]string
}

// Corrupt renders the record id with c in every later answer, as a base record
// and as an expanded child or parent; the zero Corruption restores it.
func (s *Sim) Corrupt(id string, c Corruption) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, rec := s.findLocked(id); rec == nil {
		return fmt.Errorf("corrupt %s: no such record", id)
	}
	if len(c.Omit) == 0 && len(c.Raw) == 0 {
		delete(s.corrupt, id)
		return nil
	}
	if s.corrupt == nil {
		s.corrupt = map[string]Corruption{}
	}
	s.corrupt[id] = c
	return nil
}

// findLocked finds a record by id in any table; the caller holds s.mu.
func (s *Sim) findLocked(id string) (*table, *record) {
	for _, tb := range s.data.tables {
		if r, ok := tb.byID[id]; ok {
			return tb, r
		}
	}
	return nil, nil
}

// indexed reports whether field position i is a relation the table indexes.
func (t *table) indexed(i int) bool {
	_, ok := t.fk[i]
	if ok {
		return true
	}
	for _, rel := range t.sch.expands {
		if rel.target != "" && !rel.many && t.sch.index[strings.ToLower(rel.via)] == i {
			return true
		}
	}
	return false
}

// storedText validates v for field f and returns it as the tenant stores it.
func storedText(f field, v string) (string, error) {
	switch f.kind {
	case kNumber:
		if _, err := decimal.NewFromString(v); err != nil {
			return "", fmt.Errorf("%q is not a number", v)
		}
	case kInt:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return "", fmt.Errorf("%q is not an integer", v)
		}
	case kBool:
		if v != "true" && v != "false" {
			return "", fmt.Errorf("%q is not true or false", v)
		}
	case kDate:
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			return "", fmt.Errorf("%q is not a date (YYYY-MM-DD)", v)
		}
	case kDateTime:
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return "", fmt.Errorf("%q is not an RFC 3339 date-time", v)
		}
		return unixText(t), nil
	}
	return v, nil
}

// corruption returns how r is to be rendered differently, if at all; the caller holds s.mu.
func (s *Sim) corruption(r *record) (Corruption, bool) {
	if len(s.corrupt) == 0 {
		return Corruption{}, false
	}
	c, ok := s.corrupt[r.id()]
	return c, ok
}

func (c Corruption) omits(name string) bool { return slices.Contains(c.Omit, name) }
