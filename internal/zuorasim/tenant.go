package zuorasim

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// record is one Zuora object. Values are kept as text in schema order with a
// null bitmap, which keeps a 100,000-item tenant in tens of megabytes.
type record struct {
	vals []string
	null uint64 // bit i set: field i is null
}

func newRecord(s *schema) *record {
	return &record{vals: make([]string, len(s.fields)), null: ^uint64(0)}
}

func (r *record) get(i int) (string, bool) {
	if r.null&(1<<uint(i)) != 0 {
		return "", false
	}
	return r.vals[i], true
}

func (r *record) set(i int, v string) {
	r.vals[i] = v
	r.null &^= 1 << uint(i)
}

func (r *record) id() string { return r.vals[fID] }

func (r *record) updated() int64 {
	n, _ := strconv.ParseInt(r.vals[fUpdatedDate], 10, 64)
	return n
}

func (r *record) created() int64 {
	n, _ := strconv.ParseInt(r.vals[fCreatedDate], 10, 64)
	return n
}

func (r *record) clone() *record {
	c := &record{vals: make([]string, len(r.vals)), null: r.null}
	copy(c.vals, r.vals)
	return c
}

// table holds the records of one object with the lookups queries need.
type table struct {
	sch   *schema
	recs  []*record
	byID  map[string]*record
	byNum map[string]*record           // lowercase document number
	fk    map[int]map[string][]*record // field position → value → records, for expand and EQ filters
}

func newTable(s *schema) *table {
	t := &table{sch: s, byID: map[string]*record{}, byNum: map[string]*record{}, fk: map[int]map[string][]*record{}}
	// Index every field a relation joins on, and those the AR model looks up.
	for _, other := range schemas {
		for _, rel := range other.expands {
			if rel.target == s.object && rel.many {
				t.fk[s.pos(rel.via)] = map[string][]*record{}
			}
		}
	}
	for _, name := range s.indexed {
		t.fk[s.pos(name)] = map[string][]*record{}
	}
	return t
}

func (t *table) add(r *record) {
	t.recs = append(t.recs, r)
	t.byID[r.id()] = r
	if t.sch.number != "" {
		if n, ok := r.get(t.sch.pos(t.sch.number)); ok {
			t.byNum[strings.ToLower(n)] = r
		}
	}
	for i, m := range t.fk {
		if v, ok := r.get(i); ok {
			lv := strings.ToLower(v)
			m[lv] = append(m[lv], r)
		}
	}
}

// lookup finds a record by id or document number.
func (t *table) lookup(key string) *record {
	if r, ok := t.byID[key]; ok {
		return r
	}
	return t.byNum[strings.ToLower(key)]
}

// Tenant is a set of Zuora records, built by Generate and served by a Sim.
type Tenant struct {
	tables map[string]*table
}

func newTenant() *Tenant {
	t := &Tenant{tables: map[string]*table{}}
	for _, o := range Objects {
		t.tables[o] = newTable(schemas[o])
	}
	return t
}

// Count returns how many records of an object path (e.g. "invoices") the tenant holds.
func (t *Tenant) Count(object string) int {
	if tb, ok := t.tables[object]; ok {
		return len(tb.recs)
	}
	return 0
}

// IDs returns the ids of an object's records in generation order.
func (t *Tenant) IDs(object string) []string {
	tb, ok := t.tables[object]
	if !ok {
		return nil
	}
	ids := make([]string, len(tb.recs))
	for i, r := range tb.recs {
		ids[i] = r.id()
	}
	return ids
}

// Snapshot returns every record of an object with all fields, dt fields in loc
// (nil means UTC); see Sim.Snapshot.
func (t *Tenant) Snapshot(object string, loc *time.Location) []map[string]any {
	tb, ok := t.tables[object]
	if !ok {
		return nil
	}
	if loc == nil {
		loc = time.UTC
	}
	out := make([]map[string]any, 0, len(tb.recs))
	for _, r := range tb.recs {
		out = append(out, r.asMap(tb.sch, loc))
	}
	return out
}

// clone copies the tenant so that two Sims never share mutable records.
func (t *Tenant) clone() *Tenant {
	c := newTenant()
	for o, tb := range t.tables {
		for _, r := range tb.recs {
			c.tables[o].add(r.clone())
		}
	}
	return c
}

// asMap renders all fields of r, nulls included, numbers as json.Number.
func (r *record) asMap(s *schema, loc *time.Location) map[string]any {
	m := make(map[string]any, len(s.fields))
	for i, f := range s.fields {
		v, ok := r.get(i)
		if !ok {
			m[f.name] = nil
			continue
		}
		switch f.kind {
		case kNumber, kInt:
			m[f.name] = json.Number(v)
		case kBool:
			m[f.name] = v == "true"
		case kDateTime:
			m[f.name] = formatDT(v, loc)
		default:
			m[f.name] = v
		}
	}
	return m
}

// Zuora's dt layout: one-second precision with the zone's offset.
const dtLayout = "2006-01-02T15:04:05-07:00"

func formatDT(unix string, loc *time.Location) string {
	n, _ := strconv.ParseInt(unix, 10, 64)
	return time.Unix(n, 0).In(loc).Format(dtLayout)
}

func unixText(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
