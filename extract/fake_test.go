package extract

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
)

// fakeZuora serves Object Query the way docs/zuora-api.md says Zuora does:
// filters (updateddate GE/LT/GT/LE, EQ/IN on text), sort[] with a keyset
// cursor, fields[] projection, expand[] with children cut off at pageSize,
// null fields omitted and numbers sent with their literal text.
type fakeZuora struct {
	mu      sync.Mutex
	objects map[string][]map[string]any // by object path
	queries []zuora.Query
	// onPage runs after page n (from 1) of a walk has been handed out, before
	// the next one is read; tests insert records or cancel there.
	onPage func(q zuora.Query, n int)
	// ignoreFields returns every field, as a Zuora that added new ones would.
	ignoreFields bool
	// onStart runs when a walk of a document object starts, before its first page.
	onStart func(q zuora.Query)
	// inflight and maxInflight count concurrent walks of document objects.
	inflight, maxInflight int
	// ignoreLT drops updateddate LT filters, to prove the extract checks the end itself.
	ignoreLT bool
}

var _ Source = (*fakeZuora)(nil)

func newFake() *fakeZuora { return &fakeZuora{objects: map[string][]map[string]any{}} }

func (f *fakeZuora) add(object string, rec map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[object] = append(f.objects[object], rec)
}

// calls returns the queries received for object.
func (f *fakeZuora) calls(object string) []zuora.Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []zuora.Query
	for _, q := range f.queries {
		if object == "" || q.Object == object {
			out = append(out, q)
		}
	}
	return out
}

// children maps an expand[] name to the child object, its parent-id field and JSON key.
var children = map[string][3]string{
	"invoiceitems":    {"invoice-items", "invoiceId", "invoiceItems"},
	"creditmemoitems": {"credit-memo-items", "creditMemoId", "creditMemoItems"},
	"debitmemoitems":  {"debit-memo-items", "debitMemoId", "debitMemoItems"},
}

func (f *fakeZuora) Records(ctx context.Context, q zuora.Query) iter.Seq2[json.RawMessage, error] {
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	return func(yield func(json.RawMessage, error) bool) {
		size := q.PageSize
		if size == 0 {
			size = 99
		}
		if size < 1 || size > 99 {
			yield(nil, fmt.Errorf("400: pageSize %d out of range", size))
			return
		}
		if strings.HasSuffix(q.Object, "-items") && len(q.Filters) == 0 {
			yield(nil, fmt.Errorf("400: %s needs a filter", q.Object))
			return
		}
		if !strings.HasSuffix(q.Object, "-items") {
			f.mu.Lock()
			f.inflight++
			f.maxInflight = max(f.maxInflight, f.inflight)
			f.mu.Unlock()
			defer func() {
				f.mu.Lock()
				f.inflight--
				f.mu.Unlock()
			}()
			if f.onStart != nil {
				f.onStart(q)
			}
		}
		var cursor map[string]any
		for n := 1; ; n++ {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			page, more, err := f.page(q, cursor, size)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, raw := range page {
				if !yield(raw, nil) {
					return
				}
			}
			if !more {
				return
			}
			var last map[string]any
			_ = json.Unmarshal(page[len(page)-1], &last)
			cursor = last
			if f.onPage != nil {
				f.onPage(q, n)
			}
		}
	}
}

// page returns the next page after cursor (the last record handed out).
func (f *fakeZuora) page(q zuora.Query, cursor map[string]any, size int) ([]json.RawMessage, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var match []map[string]any
	for _, rec := range f.objects[q.Object] {
		ok, err := f.matches(rec, q.Filters)
		if err != nil {
			return nil, false, err
		}
		if ok {
			match = append(match, rec)
		}
	}
	less, err := order(q.Sort)
	if err != nil {
		return nil, false, err
	}
	slices.SortStableFunc(match, less)
	if cursor != nil {
		i := 0
		for i < len(match) && less(match[i], cursor) <= 0 {
			i++
		}
		match = match[i:]
	}
	more := len(match) > size
	if more {
		match = match[:size]
	}
	out := make([]json.RawMessage, 0, len(match))
	for _, rec := range match {
		obj := f.project(rec, q.Fields)
		for _, e := range q.Expand {
			if e == "account" {
				if acct := f.find("accounts", "id", rec["accountId"]); acct != nil {
					obj["account"] = f.project(acct, q.ChildFields["account"])
				}
				continue
			}
			c, ok := children[e]
			if !ok {
				return nil, false, fmt.Errorf("400: unknown expand %s", e)
			}
			var kids []map[string]any
			for _, k := range f.objects[c[0]] {
				if k[c[1]] == rec["id"] {
					kids = append(kids, k)
				}
			}
			slices.SortFunc(kids, func(a, b map[string]any) int { return strings.Compare(a["id"].(string), b["id"].(string)) })
			if len(kids) > size {
				kids = kids[:size] // expanded children stop at pageSize
			}
			list := make([]map[string]any, 0, len(kids))
			for _, k := range kids {
				list = append(list, f.project(k, q.ChildFields[e]))
			}
			obj[c[2]] = list
		}
		raw, err := json.Marshal(obj)
		if err != nil {
			return nil, false, err
		}
		out = append(out, raw)
	}
	return out, more, nil
}

func (f *fakeZuora) find(object, field string, v any) map[string]any {
	for _, r := range f.objects[object] {
		if r[field] == v {
			return r
		}
	}
	return nil
}

// project keeps the requested fields (case-insensitive) and omits nulls.
func (f *fakeZuora) project(rec map[string]any, fields []string) map[string]any {
	out := map[string]any{}
	for k, v := range rec {
		if v == nil {
			continue
		}
		if fields == nil || f.ignoreFields || slices.ContainsFunc(fields, func(s string) bool { return strings.EqualFold(s, k) }) {
			out[k] = v
		}
	}
	return out
}

func field(rec map[string]any, name string) (any, bool) {
	for k, v := range rec {
		if strings.EqualFold(k, name) {
			return v, v != nil
		}
	}
	return nil, false
}

func (f *fakeZuora) matches(rec map[string]any, filters []string) (bool, error) {
	for _, flt := range filters {
		name, rest, ok := strings.Cut(flt, ".")
		op, val, ok2 := strings.Cut(rest, ":")
		if !ok || !ok2 || name != strings.ToLower(name) {
			return false, fmt.Errorf("400: bad filter %q", flt)
		}
		v, present := field(rec, name)
		switch op {
		case "GE", "GT", "LE", "LT":
			if name != "updateddate" {
				return false, fmt.Errorf("400: fake filters %s only on updateddate", op)
			}
			if op == "LT" && f.ignoreLT {
				continue
			}
			bound, err := time.Parse(time.RFC3339, val)
			if err != nil || !strings.HasSuffix(val, "Z") {
				return false, fmt.Errorf("400: bad time %q", val)
			}
			t, _ := time.Parse(time.RFC3339, v.(string))
			c := t.Compare(bound)
			if (op == "GE" && c < 0) || (op == "GT" && c <= 0) || (op == "LE" && c > 0) || (op == "LT" && c >= 0) {
				return false, nil
			}
		case "EQ":
			if !present || !strings.EqualFold(fmt.Sprint(v), val) {
				return false, nil
			}
		case "IN":
			list := strings.Split(strings.Trim(val, "[]"), ",")
			if !present || !slices.ContainsFunc(list, func(s string) bool { return strings.EqualFold(s, fmt.Sprint(v)) }) {
				return false, nil
			}
		default:
			return false, fmt.Errorf("400: fake has no operator %s", op)
		}
	}
	return true, nil
}

// order returns the comparison of sort[]; ties break on id as Zuora's keyset does.
func order(sort string) (func(a, b map[string]any) int, error) {
	byID := func(a, b map[string]any) int { return strings.Compare(a["id"].(string), b["id"].(string)) }
	switch sort {
	case "id.ASC":
		return byID, nil
	case "updateddate.ASC", "updateddate.DESC":
		dir := 1
		if sort == "updateddate.DESC" {
			dir = -1
		}
		return func(a, b map[string]any) int {
			ta, _ := time.Parse(time.RFC3339, a["updatedDate"].(string))
			tb, _ := time.Parse(time.RFC3339, b["updatedDate"].(string))
			if c := ta.Compare(tb); c != 0 {
				return dir * c
			}
			return dir * byID(a, b)
		}, nil
	}
	return nil, fmt.Errorf("400: fake cannot sort by %q", sort)
}
