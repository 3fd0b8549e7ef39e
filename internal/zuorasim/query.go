package zuorasim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// apiError is a request the simulator refuses, with its §2.5 category.
type apiError struct {
	status, category int
	msg              string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, category: 27, msg: fmt.Sprintf(format, args...)}
}

// sortKey is a field value parsed for comparison.
type sortKey struct {
	null bool
	s    string
	n    decimal.Decimal
	i    int64 // ints, bools (0/1) and instants (Unix nanoseconds)
}

func keyOf(f field, v string, ok bool) sortKey {
	if !ok {
		return sortKey{null: true}
	}
	switch f.kind {
	case kNumber:
		d, _ := decimal.NewFromString(v)
		return sortKey{n: d}
	case kInt:
		n, _ := strconv.ParseInt(v, 10, 64)
		return sortKey{i: n}
	case kBool:
		if v == "true" {
			return sortKey{i: 1}
		}
		return sortKey{}
	case kDateTime:
		n, _ := strconv.ParseInt(v, 10, 64)
		return sortKey{i: n * int64(time.Second)}
	}
	return sortKey{s: v}
}

func cmpKey(k kind, a, b sortKey) int {
	switch {
	case a.null && b.null:
		return 0
	case a.null:
		return -1
	case b.null:
		return 1
	}
	switch k {
	case kNumber:
		return a.n.Cmp(b.n)
	case kInt, kBool, kDateTime:
		return cmpInt(a.i, b.i)
	}
	return strings.Compare(a.s, b.s)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// parseValue parses a filter or cursor value for field f.
func (s *Sim) parseValue(f field, raw string) (sortKey, error) {
	switch f.kind {
	case kNumber:
		d, err := decimal.NewFromString(raw)
		if err != nil {
			return sortKey{}, fmt.Errorf("%q is not a number", raw)
		}
		return sortKey{n: d}, nil
	case kInt:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return sortKey{}, fmt.Errorf("%q is not an integer", raw)
		}
		return sortKey{i: n}, nil
	case kBool:
		switch strings.ToLower(raw) {
		case "true":
			return sortKey{i: 1}, nil
		case "false":
			return sortKey{}, nil
		}
		return sortKey{}, fmt.Errorf("%q is not true or false", raw)
	case kDate:
		if _, err := time.Parse(time.DateOnly, raw); err != nil {
			return sortKey{}, fmt.Errorf("%q is not a date (YYYY-MM-DD)", raw)
		}
		return sortKey{s: raw}, nil
	case kDateTime:
		if t, err := time.Parse(time.RFC3339Nano, raw); err == nil {
			return sortKey{i: t.UnixNano()}, nil
		}
		for _, layout := range []string{"2006-01-02T15:04:05", time.DateOnly} {
			if t, err := time.ParseInLocation(layout, raw, s.loc); err == nil {
				return sortKey{i: t.UnixNano()}, nil
			}
		}
		return sortKey{}, fmt.Errorf("%q is not a date-time such as 2026-11-25T22:00:00Z", raw)
	}
	return sortKey{s: raw}, nil
}

// wallClock drops the Z or offset of a date-time, so parseValue reads it in
// the tenant's zone (Options.FilterTimesInTenantZone).
func wallClock(v string) string {
	if len(v) > len("2006-01-02T15:04:05") && v[10] == 'T' {
		return v[:len("2006-01-02T15:04:05")]
	}
	return v
}

type filter struct {
	text   string
	pos    int
	f      field
	op     string
	isNull bool
	raw    string   // EQ/NE/SW value as sent
	vals   []string // IN values as sent
	keys   []sortKey
}

func (fl *filter) match(r *record) bool {
	v, ok := r.get(fl.pos)
	if fl.isNull {
		return ok == (fl.op == "NE")
	}
	if !ok {
		return fl.op == "NE"
	}
	eq := func(i int, want string) bool {
		if fl.f.kind == kString {
			return strings.EqualFold(v, want)
		}
		return cmpKey(fl.f.kind, keyOf(fl.f, v, true), fl.keys[i]) == 0
	}
	switch fl.op {
	case "EQ":
		return eq(0, fl.raw)
	case "NE":
		return !eq(0, fl.raw)
	case "IN":
		for i, want := range fl.vals {
			if eq(i, want) {
				return true
			}
		}
		return false
	case "SW":
		return len(v) >= len(fl.raw) && strings.EqualFold(v[:len(fl.raw)], fl.raw)
	}
	c := cmpKey(fl.f.kind, keyOf(fl.f, v, true), fl.keys[0])
	switch fl.op {
	case "LT":
		return c < 0
	case "LE":
		return c <= 0
	case "GT":
		return c > 0
	}
	return c >= 0 // GE
}

func (s *Sim) parseFilter(text string, sch *schema) (*filter, error) {
	left, value, ok := strings.Cut(text, ":")
	dot := strings.LastIndexByte(left, '.')
	if !ok || dot < 0 {
		return nil, badRequest("invalid filter %q: want field.OP:value", text)
	}
	name, op := strings.ToLower(left[:dot]), strings.ToUpper(left[dot+1:])
	if strings.Contains(name, ".") {
		return nil, badRequest("invalid filter %q: expanded objects cannot be filtered", text)
	}
	if !sch.filterable[name] {
		return nil, badRequest("invalid filter %q: field %s is not filterable on %s", text, name, sch.object)
	}
	fl := &filter{text: text, pos: sch.index[name], op: op}
	fl.f = sch.fields[fl.pos]
	switch op {
	case "EQ", "NE", "LT", "GT", "LE", "GE", "SW", "IN":
	default:
		return nil, badRequest("invalid filter %q: unknown operator %s", text, op)
	}
	if value == "null" {
		if op != "EQ" && op != "NE" {
			return nil, badRequest("invalid filter %q: null works only with EQ and NE", text)
		}
		fl.isNull = true
		return fl, nil
	}
	if value == "\x02\x03" {
		value = ""
	}
	ordered := fl.f.kind == kNumber || fl.f.kind == kInt || fl.f.kind == kDate || fl.f.kind == kDateTime
	switch {
	case op == "SW" && fl.f.kind != kString:
		return nil, badRequest("invalid filter %q: SW works only on text fields", text)
	case (op == "LT" || op == "LE" || op == "GT" || op == "GE") && !ordered:
		return nil, badRequest("invalid filter %q: %s works only on number and date fields", text, op)
	}
	if op == "IN" {
		inner, ok := strings.CutPrefix(value, "[")
		inner, ok2 := strings.CutSuffix(inner, "]")
		if !ok || !ok2 || inner == "" {
			return nil, badRequest("invalid filter %q: IN wants a list such as [A,B]", text)
		}
		fl.vals = strings.Split(inner, ",")
	} else {
		fl.raw = value
		fl.vals = []string{value}
	}
	if fl.f.kind != kString {
		for _, v := range fl.vals {
			if fl.f.kind == kDateTime && s.opts.FilterTimesInTenantZone {
				v = wallClock(v)
			}
			k, err := s.parseValue(fl.f, v)
			if err != nil {
				return nil, badRequest("invalid filter %q: %v", text, err)
			}
			fl.keys = append(fl.keys, k)
		}
	}
	return fl, nil
}

type sortSpec struct {
	pos  int
	f    field
	desc bool
}

func parseSort(text string, sch *schema) (sortSpec, error) {
	dot := strings.LastIndexByte(text, '.')
	if dot < 0 {
		return sortSpec{}, badRequest("invalid sort %q: want field.ASC or field.DESC", text)
	}
	name, dir := strings.ToLower(text[:dot]), strings.ToUpper(text[dot+1:])
	if dir != "ASC" && dir != "DESC" {
		return sortSpec{}, badRequest("invalid sort %q: direction must be ASC or DESC", text)
	}
	if !sch.filterable[name] || sch.filterOnly[name] {
		return sortSpec{}, badRequest("invalid sort %q: field %s is not sortable on %s", text, name, sch.object)
	}
	p := sch.index[name]
	return sortSpec{pos: p, f: sch.fields[p], desc: dir == "DESC"}, nil
}

type expandReq struct {
	rel  relation
	mask uint64
}

type query struct {
	sch         *schema
	filters     []*filter
	sort        sortSpec
	mask        uint64
	expands     []expandReq
	pageSize    int
	cursor      string
	hasCursor   bool
	includeNull bool
}

// fieldMask selects the named fields of sch; an unknown name is a 400 unless
// ignoreUnknown (the Options switch IgnoreUnknownFields) drops it silently.
func fieldMask(sch *schema, lists []string, ignoreUnknown bool) (uint64, error) {
	if sch == nil {
		return ^uint64(0), nil
	}
	if len(lists) == 0 {
		return ^uint64(0), nil
	}
	var m uint64
	for _, l := range lists {
		for _, name := range strings.Split(l, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			i, ok := sch.index[name]
			if !ok && ignoreUnknown {
				continue
			}
			if !ok {
				return 0, badRequest("invalid fields[]: %s has no field %s", sch.object, name)
			}
			m |= 1 << uint(i)
		}
	}
	return m, nil
}

// parseQuery reads an Object Query request's parameters for sch: fields,
// expands and includeNullFields, and for a list (not byKey) the page size,
// filters, sort and cursor.
func (s *Sim) parseQuery(v url.Values, sch *schema, byKey bool) (*query, error) {
	q := &query{sch: sch, pageSize: 10}
	baseFields, childFields, err := fieldLists(v, sch)
	if err != nil {
		return nil, err
	}
	if q.mask, err = fieldMask(sch, baseFields, s.opts.IgnoreUnknownFields); err != nil {
		return nil, err
	}
	if q.expands, err = s.parseExpands(v["expand[]"], sch, childFields); err != nil {
		return nil, err
	}
	switch inc := strings.ToLower(v.Get("includeNullFields")); inc {
	case "", "false":
	case "true":
		q.includeNull = true
	default:
		return nil, badRequest("invalid includeNullFields %q", inc)
	}
	if byKey {
		return q, nil
	}
	if err := s.parseListing(q, v); err != nil {
		return nil, err
	}
	return q, nil
}

// fieldLists gathers the fields[] lists of a request: the object's own
// (fields[] and <single>.fields[]) and, by expand, the nested objects'.
func fieldLists(v url.Values, sch *schema) (base []string, child map[string][]string, err error) {
	child = map[string][]string{}
	for k, vals := range v {
		prefix, ok := strings.CutSuffix(strings.ToLower(k), ".fields[]")
		switch {
		case !ok:
		case prefix == sch.single:
			base = append(base, vals...)
		case !hasExpand(sch, prefix):
			return nil, nil, badRequest("invalid %s: %s is not an expand of %s", k, prefix, sch.object)
		default:
			child[prefix] = append(child[prefix], vals...)
		}
	}
	return append(base, v["fields[]"]...), child, nil
}

func hasExpand(sch *schema, name string) bool {
	_, ok := sch.expands[name]
	return ok
}

// parseExpands reads the expand[] of a request, each with the fields its
// nested records carry; an expand documented but not modelled nests nothing.
func (s *Sim) parseExpands(names []string, sch *schema, childFields map[string][]string) ([]expandReq, error) {
	var out []expandReq
	for _, e := range names {
		rel, ok := sch.expands[strings.ToLower(e)]
		if !ok {
			return nil, badRequest("invalid expand[] %q for %s", e, sch.object)
		}
		if rel.target == "" || strings.Contains(rel.name, ".") {
			continue // documented but not modelled: accepted, nests nothing
		}
		if s.opts.NoInvoiceSettlement && schemas[rel.target].settlement {
			continue // the tenant has no such objects: nothing to nest
		}
		m, err := fieldMask(schemas[rel.target], childFields[rel.name], s.opts.IgnoreUnknownFields)
		if err != nil {
			return nil, err
		}
		out = append(out, expandReq{rel: rel, mask: m})
	}
	return out, nil
}

// parseListing reads into q what only a list takes: pageSize, filter[],
// sort[] (the tenant's default sort when none is given) and cursor.
func (s *Sim) parseListing(q *query, v url.Values) error {
	if ps := v.Get("pageSize"); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 99 {
			return badRequest("invalid pageSize %q: must be 1 to 99", ps)
		}
		q.pageSize = n
	}
	for _, text := range v["filter[]"] {
		fl, err := s.parseFilter(text, q.sch)
		if err != nil {
			return err
		}
		q.filters = append(q.filters, fl)
	}
	if q.sch.mustFilter && len(q.filters) == 0 {
		return badRequest("%s requires at least one filter[]", q.sch.object)
	}
	sorts := v["sort[]"]
	if len(sorts) > 1 {
		return badRequest("only one sort[] field is allowed, got %d", len(sorts))
	}
	srt := s.defSort
	if len(sorts) == 1 {
		srt = sorts[0]
	}
	var err error
	if q.sort, err = parseSort(srt, q.sch); err != nil {
		if len(sorts) == 1 {
			return err
		}
		q.sort, _ = parseSort("updateddate.DESC", q.sch)
	}
	q.cursor, q.hasCursor = v.Get("cursor"), v.Has("cursor")
	return nil
}

func (s *Sim) handleQuery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.reasons(w, r, http.StatusMethodNotAllowed, 45, "use GET")
		return
	}
	if !s.authorized(w, r, true) {
		return
	}
	obj, key, byKey := strings.Cut(strings.TrimPrefix(r.URL.Path, "/object-query/"), "/")
	sch, ok := schemas[obj]
	if !ok {
		s.queryError(w, r, &apiError{status: http.StatusNotFound, category: 40, msg: "unknown object " + obj})
		return
	}
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.queryError(w, r, badRequest("invalid query string: %v", err))
		return
	}
	q, err := s.parseQuery(v, sch, byKey)
	if err != nil {
		s.queryError(w, r, err)
		return
	}
	if byKey {
		s.mu.RLock()
		tb := s.data.tables[obj]
		rec := tb.lookup(key)
		var body []byte
		if rec != nil {
			body = s.appendRecord(nil, tb, rec, q)
			body = append(body, '\n')
		}
		s.mu.RUnlock()
		if rec == nil {
			s.queryError(w, r, &apiError{status: http.StatusNotFound, category: 40, msg: fmt.Sprintf("%s %s not found", obj, key)})
			return
		}
		writeBody(w, r, http.StatusOK, body)
		return
	}
	body, ev, err := s.listPage(q)
	if err != nil {
		s.queryError(w, r, err)
		return
	}
	s.afterList(ev)
	writeBody(w, r, http.StatusOK, body)
}

// queryError writes a refused query; under an old Zuora-Version, 400 and 404
// come back as HTTP 200 with the same body, as Zuora did before 2025-08-12.
func (s *Sim) queryError(w http.ResponseWriter, r *http.Request, err error) {
	ae, ok := err.(*apiError)
	if !ok {
		ae = &apiError{status: http.StatusInternalServerError, category: 60, msg: err.Error()}
	}
	status := ae.status
	if !s.opts.NoLegacyErrors200 && legacyVersion(r) && (status == http.StatusBadRequest || status == http.StatusNotFound) {
		status = http.StatusOK
	}
	s.reasons(w, r, status, ae.category, ae.msg)
}

type entry struct {
	r *record
	k sortKey
}

// listPage runs a list query and renders one page.
func (s *Sim) listPage(q *query) ([]byte, PageEvent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	tb := s.data.tables[q.sch.object]
	cmp := func(a, b entry) int {
		c := cmpKey(q.sort.f.kind, a.k, b.k)
		if c == 0 {
			c = strings.Compare(a.r.id(), b.r.id())
		}
		if q.sort.desc {
			c = -c
		}
		return c
	}
	entries := s.sorted(q, tb, cmp)

	start := 0
	if q.hasCursor {
		var err error
		if start, err = s.cursorStart(q, entries, cmp); err != nil {
			return nil, PageEvent{}, err
		}
	}
	return s.renderPage(q, tb, entries, start)
}

type cachedSort struct {
	version uint64
	used    uint64 // s.cacheTick when last read: the least recently used goes first
	entries []entry
}

// sortCacheSize is how many sorted results the simulator keeps: more than the
// walks a client runs at once (Zuora allows 80 requests in flight, the
// pipeline sends 8), so a walk's next page finds its result.
const sortCacheSize = 32

// sorted returns the records matching q's filters in q's order. Walks repeat
// the same filters page after page, so a result read from the whole table is
// cached until the next write; one read through an index (the items of one
// document) is cheap and not cached. The caller holds s.mu for reading.
func (s *Sim) sorted(q *query, tb *table, cmp func(a, b entry) int) []entry {
	var kb strings.Builder
	fmt.Fprintf(&kb, "%s|%d|%t", q.sch.object, q.sort.pos, q.sort.desc)
	for _, fl := range q.filters {
		kb.WriteString("|" + fl.text)
	}
	key := kb.String()
	s.cmu.Lock()
	c, ok := s.cache[key]
	if ok && c.version == s.version {
		s.cacheTick++
		c.used = s.cacheTick
		s.cache[key] = c
		s.cmu.Unlock()
		return c.entries
	}
	s.cmu.Unlock()
	cands, indexed := tb.recs, false
	for _, fl := range q.filters {
		if m, ok := tb.fk[fl.pos]; ok && fl.op == "EQ" && !fl.isNull {
			cands, indexed = m[strings.ToLower(fl.raw)], true
			break
		}
	}
	entries := make([]entry, 0, len(cands))
next:
	for _, r := range cands {
		for _, fl := range q.filters {
			if !fl.match(r) {
				continue next
			}
		}
		v, ok := r.get(q.sort.pos)
		entries = append(entries, entry{r: r, k: keyOf(q.sort.f, v, ok)})
	}
	slices.SortFunc(entries, cmp)
	if indexed {
		return entries
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.cache == nil {
		s.cache = map[string]cachedSort{}
	}
	for k, c := range s.cache {
		if c.version != s.version {
			delete(s.cache, k) // stale: a write came since
		}
	}
	if len(s.cache) >= sortCacheSize {
		oldest, at := "", uint64(math.MaxUint64)
		for k, c := range s.cache {
			if c.used < at {
				oldest, at = k, c.used
			}
		}
		delete(s.cache, oldest)
	}
	s.cacheTick++
	s.cache[key] = cachedSort{version: s.version, used: s.cacheTick, entries: entries}
	return entries
}

// renderPage writes the envelope for entries[start:start+pageSize].
func (s *Sim) renderPage(q *query, tb *table, entries []entry, start int) ([]byte, PageEvent, error) {
	end := min(start+q.pageSize, len(entries))
	page := entries[start:end]

	var b bytes.Buffer
	b.Grow(512 * len(page))
	b.WriteByte('{')
	last := end >= len(entries)
	if !last {
		b.WriteString(`"nextPage":`)
		b.Write(appendString(nil, s.makeCursor(q, page[len(page)-1], end)))
		b.WriteByte(',')
	}
	b.WriteString(`"data":[`)
	ev := PageEvent{Object: q.sch.object, Last: last, IDs: make([]string, len(page))}
	buf := make([]byte, 0, 2048)
	for i, e := range page {
		if i > 0 {
			b.WriteByte(',')
		}
		buf = s.appendRecord(buf[:0], tb, e.r, q)
		b.Write(buf)
		ev.IDs[i] = e.r.id()
	}
	b.WriteString("]}\n")
	return b.Bytes(), ev, nil
}

type cursorEntry struct {
	Value   any `json:"value"`
	OrderBy struct {
		Field string `json:"field"`
		Order string `json:"order"`
	} `json:"orderBy"`
}

// makeCursor encodes the position after e: a keyset of the sort value and id,
// or an offset when Options.OffsetCursor is set.
func (s *Sim) makeCursor(q *query, e entry, offset int) string {
	if s.offsetCursor(q.sch.object) {
		return base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(offset)))
	}
	order := "ASC"
	if q.sort.desc {
		order = "DESC"
	}
	var ks []cursorEntry
	if q.sort.pos != fID {
		var c cursorEntry
		v, ok := e.r.get(q.sort.pos)
		switch {
		case !ok:
			c.Value = nil
		case q.sort.f.kind == kNumber || q.sort.f.kind == kInt:
			c.Value = json.Number(v)
		case q.sort.f.kind == kBool:
			c.Value = v == "true"
		case q.sort.f.kind == kDateTime:
			c.Value = formatDT(v, s.loc)
		default:
			c.Value = v
		}
		c.OrderBy.Field, c.OrderBy.Order = pascal(q.sort.f.name), order
		ks = append(ks, c)
	}
	var c cursorEntry
	c.Value = e.r.id()
	c.OrderBy.Field, c.OrderBy.Order = "Id", order
	ks = append(ks, c)
	raw, _ := json.Marshal(ks)
	return base64.StdEncoding.EncodeToString(raw)
}

// cursorStart finds where the page after cursor begins in the sorted entries.
func (s *Sim) cursorStart(q *query, entries []entry, cmp func(a, b entry) int) (int, error) {
	raw, err := base64.StdEncoding.DecodeString(q.cursor)
	if err != nil {
		return 0, badRequest("invalid cursor: not base64")
	}
	if s.offsetCursor(q.sch.object) {
		n, err := strconv.Atoi(string(raw))
		if err != nil || n < 0 {
			return 0, badRequest("invalid cursor")
		}
		return min(n, len(entries)), nil
	}
	ks, err := decodeCursor(q, raw)
	if err != nil {
		return 0, err
	}
	pivot, err := s.cursorPivot(q, ks)
	if err != nil {
		return 0, err
	}
	// First entry strictly after the pivot in sort order.
	i, _ := slices.BinarySearchFunc(entries, pivot, func(e, p entry) int {
		if cmp(e, p) <= 0 {
			return -1
		}
		return 1
	})
	return i, nil
}

// decodeCursor reads a keyset cursor and refuses one made for another sort
// than q's: the sort field's entry (unless q sorts by id), then the id's.
func decodeCursor(q *query, raw []byte) ([]cursorEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var ks []cursorEntry
	if err := dec.Decode(&ks); err != nil {
		return nil, badRequest("invalid cursor: %v", err)
	}
	order := "ASC"
	if q.sort.desc {
		order = "DESC"
	}
	fields := []string{pascal(q.sort.f.name), "Id"}
	if q.sort.pos == fID {
		fields = []string{"Id"}
	}
	if len(ks) != len(fields) {
		return nil, badRequest("invalid cursor: it does not match sort %s %s", q.sort.f.name, order)
	}
	for i, k := range ks {
		if k.OrderBy.Field != fields[i] || k.OrderBy.Order != order {
			return nil, badRequest("invalid cursor: it was made for another sort[]; change no parameter between pages")
		}
	}
	return ks, nil
}

// cursorPivot is the entry a decoded cursor names: its id, and the sort
// field's value unless q sorts by id.
func (s *Sim) cursorPivot(q *query, ks []cursorEntry) (entry, error) {
	id, ok := ks[len(ks)-1].Value.(string)
	if !ok {
		return entry{}, badRequest("invalid cursor: bad id")
	}
	pivot := entry{r: &record{vals: []string{id}}}
	if len(ks) == 1 {
		pivot.k = sortKey{s: id}
		return pivot, nil
	}
	var err error
	switch v := ks[0].Value.(type) {
	case nil:
		pivot.k = sortKey{null: true}
	case bool:
		if v {
			pivot.k.i = 1
		}
	case json.Number:
		pivot.k, err = s.parseValue(q.sort.f, string(v))
	case string:
		pivot.k, err = s.parseValue(q.sort.f, v)
	default:
		return entry{}, badRequest("invalid cursor: bad value")
	}
	if err != nil {
		return entry{}, badRequest("invalid cursor: %v", err)
	}
	return pivot, nil
}

// afterList applies the between-pages mutation knobs, then the hook.
func (s *Sim) afterList(ev PageEvent) {
	s.fmu.Lock()
	touch, insert, hook := s.faults.TouchPerPage, s.faults.InsertPerPage, s.afterPage
	s.fmu.Unlock()
	if (touch > 0 || insert > 0) && len(ev.IDs) > 0 {
		now := unixText(s.now())
		s.mu.Lock()
		s.version++ // any write may change what a cached sort holds
		tb := s.data.tables[ev.Object]
		touched, inserted := 0, 0
		for _, id := range ev.IDs[:min(touch, len(ev.IDs))] {
			tb.byID[id].set(fUpdatedDate, now)
			touched++
		}
		if tb.sch.number != "" {
			for range insert {
				if _, err := s.cloneLocked(ev.IDs[0]); err == nil {
					inserted++
				}
			}
		}
		s.mu.Unlock()
		s.fmu.Lock()
		s.stats.Faults["touch"] += touched
		s.stats.Faults["insert"] += inserted
		s.fmu.Unlock()
	}
	if hook != nil {
		hook(ev)
	}
}

// appendRecord renders r with the query's field selection and expansions.
func (s *Sim) appendRecord(b []byte, tb *table, r *record, q *query) []byte {
	b = s.appendFields(b, tb.sch, r, q.mask, q.includeNull)
	for _, x := range q.expands {
		target := s.data.tables[x.rel.target]
		if x.rel.many {
			kids := target.fk[target.sch.pos(x.rel.via)][strings.ToLower(r.id())]
			kids = kids[:min(len(kids), q.pageSize)] // children stop at pageSize, with no cursor
			b = s.sep(b)
			b = appendString(b, x.rel.key)
			b = append(b, ':', '[')
			for i, k := range kids {
				if i > 0 {
					b = append(b, ',')
				}
				b = s.appendFields(b, target.sch, k, x.mask, q.includeNull)
				b = append(b, '}')
			}
			b = append(b, ']')
			continue
		}
		pid, ok := r.get(tb.sch.pos(x.rel.via))
		parent := target.byID[pid]
		if !ok || parent == nil {
			if q.includeNull {
				b = s.sep(b)
				b = appendString(b, x.rel.key)
				b = append(b, ":null"...)
			}
			continue
		}
		b = s.sep(b)
		b = appendString(b, x.rel.key)
		b = append(b, ':')
		b = s.appendFields(b, target.sch, parent, x.mask, q.includeNull)
		b = append(b, '}')
	}
	return append(b, '}')
}

func (s *Sim) sep(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != '{' {
		return append(b, ',')
	}
	return b
}

// appendFields writes "{" and the selected fields, leaving the object open.
func (s *Sim) appendFields(b []byte, sch *schema, r *record, mask uint64, includeNull bool) []byte {
	b = append(b, '{')
	first := true
	bad, corrupted := s.corruption(r)
	for i, f := range sch.fields {
		if mask&(1<<uint(i)) == 0 || corrupted && bad.omits(f.name) {
			continue
		}
		v, ok := r.get(i)
		if ok && f.signed && s.opts.UnapplyPositiveAmounts {
			v = strings.TrimPrefix(v, "-") // an unapply row reads like the apply it undoes
		}
		raw, replaced := bad.Raw[f.name]
		if !ok && !includeNull && !replaced {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		name := f.name
		if s.opts.LowerCamelCustomFields && strings.HasSuffix(name, "__c") {
			name = strings.ToLower(name[:1]) + name[1:]
		}
		b = appendString(b, name)
		b = append(b, ':')
		switch {
		case replaced:
			b = append(b, raw...)
		case !ok:
			b = append(b, "null"...)
		case f.kind == kNumber && s.opts.NumbersAsDoubles:
			b = append(b, doubleForm(v, r.id(), i)...)
		case f.kind == kNumber || f.kind == kInt || f.kind == kBool:
			b = append(b, v...)
		case f.kind == kDateTime:
			b = appendString(b, formatDT(v, s.loc))
		default:
			b = appendString(b, v)
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
	}
	return append(b, '"')
}
