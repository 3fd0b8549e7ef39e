package warehouse

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/shopspring/decimal"
)

// nestedJSON renders a list, struct, map or union as compact JSON, numbers
// exact (decimals as their digits, never through a float), times as RFC 3339.
func nestedJSON(v any) string {
	data, err := json.Marshal(jsonable(v))
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}

// jsonable turns a scanned DuckDB value into one encoding/json writes exactly.
func jsonable(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case duckdb.Decimal:
		return json.Number(decimal.NewFromBigInt(x.Value, -int32(x.Scale)).String())
	case *big.Int:
		return json.Number(x.String())
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
	case float32:
		return jsonable(float64(x))
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	case duckdb.Map:
		return mapJSON(x)
	case duckdb.OrderedMap:
		return orderedJSON(x.Keys(), x.Values())
	case *duckdb.OrderedMap:
		return orderedJSON(x.Keys(), x.Values())
	case duckdb.Union:
		return map[string]any{x.Tag: jsonable(x.Value)}
	case duckdb.UUID:
		return x.String()
	case duckdb.Interval:
		return map[string]any{"months": x.Months, "days": x.Days, "micros": x.Micros}
	}
	return v
}

// mapJSON renders a MAP as an object when its keys are strings, else as a
// list of {"key", "value"} pairs ordered by the key's JSON.
func mapJSON(m duckdb.Map) any {
	obj := map[string]any{}
	for k, v := range m {
		s, ok := k.(string)
		if !ok {
			obj = nil
			break
		}
		obj[s] = jsonable(v)
	}
	if obj != nil {
		return obj
	}
	type pair struct {
		Key   any `json:"key"`
		Value any `json:"value"`
	}
	pairs := make([]pair, 0, len(m))
	for k, v := range m {
		pairs = append(pairs, pair{jsonable(k), jsonable(v)})
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		ka, _ := json.Marshal(a.Key)
		kb, _ := json.Marshal(b.Key)
		return slices.Compare(ka, kb)
	})
	return pairs
}

// orderedJSON renders a map's entries in their order: an object when every
// key is a string, else a list of {"key", "value"} pairs.
func orderedJSON(keys, values []any) any {
	obj := make(orderedObject, 0, len(keys))
	for i, k := range keys {
		s, ok := k.(string)
		if !ok {
			obj = nil
			break
		}
		obj = append(obj, entry{s, jsonable(values[i])})
	}
	if obj != nil || len(keys) == 0 {
		return obj
	}
	type pair struct {
		Key   any `json:"key"`
		Value any `json:"value"`
	}
	pairs := make([]pair, len(keys))
	for i, k := range keys {
		pairs[i] = pair{jsonable(k), jsonable(values[i])}
	}
	return pairs
}

type entry struct {
	key   string
	value any
}

// orderedObject is a JSON object that keeps its keys' order.
type orderedObject []entry

func (o orderedObject) MarshalJSON() ([]byte, error) {
	buf := []byte{'{'}
	for i, e := range o {
		if i > 0 {
			buf = append(buf, ',')
		}
		k, err := json.Marshal(e.key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(e.value)
		if err != nil {
			return nil, err
		}
		buf = append(append(append(buf, k...), ':'), v...)
	}
	return append(buf, '}'), nil
}
