package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

const null = "<null>"

// TestDuckDBAndArrowReadTheExtractsParquetAlike extracts a window from the
// simulator, then reads every raw file with DuckDB and with arrow-go's Parquet
// reader: every value of every column must be identical, and the invoice
// amounts must equal, as decimals, what Zuora's JSON said.
func TestDuckDBAndArrowReadTheExtractsParquetAlike(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, err := demo.Start(5, zuorasim.DefaultVolume(), demo.From, demo.To)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := srv.Config("file://"+t.TempDir(), nil)
	p, err := pipeline.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ws, err := p.Extract(ctx, demo.From, demo.To, false)
	if err != nil {
		t.Fatal(err)
	}
	db, err := warehouse.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	amounts := map[string]string{} // invoice id → amount, from the staged files
	rows := 0
	for _, w := range ws.Windows {
		m, ok, err := p.Stage().ReadExtract(ctx, w)
		if err != nil || !ok {
			t.Fatalf("window %s: manifest found=%v err=%v", w, ok, err)
		}
		for _, table := range stage.Tables() {
			for _, f := range m.Tables[table].Files {
				path, err := p.Stage().LocalPath(ctx, f.Key, f.SHA256)
				if err != nil {
					t.Fatal(err)
				}
				cols := warehouse.Schemas[table]
				byDuck := readWithDuckDB(t, db, path, cols)
				byArrow := readWithArrow(t, path, cols)
				if len(byDuck) != len(byArrow) || int64(len(byDuck)) != m.Tables[table].Rows {
					t.Fatalf("%s: DuckDB read %d rows, arrow %d, the manifest says %d", f.Key, len(byDuck), len(byArrow), m.Tables[table].Rows)
				}
				for i := range byDuck {
					for c, col := range cols {
						if byDuck[i][c] != byArrow[i][c] {
							t.Errorf("%s row %d column %s: DuckDB %q, arrow %q", f.Key, i, col.Name, byDuck[i][c], byArrow[i][c])
						}
					}
				}
				rows += len(byDuck)
				if table == "invoices" {
					amountCol := slices.IndexFunc(cols, func(c warehouse.Column) bool { return c.Name == "amount" })
					for _, r := range byDuck {
						amounts[r[0]] = r[amountCol]
					}
				}
			}
		}
	}
	if rows == 0 || len(amounts) == 0 {
		t.Fatalf("read %d rows and %d invoices; the window should hold some", rows, len(amounts))
	}
	for _, inv := range srv.Zuora.Snapshot("invoices") {
		id, _ := inv["id"].(string)
		staged, ok := amounts[id]
		if !ok {
			continue // a draft, or outside the range
		}
		want := decimal.RequireFromString(fmt.Sprint(inv["amount"]))
		if got := decimal.RequireFromString(staged); !got.Equal(want) {
			t.Errorf("invoice %s: staged amount %s, Zuora sent %s", id, got, want)
		}
		delete(amounts, id)
	}
	if len(amounts) != 0 {
		t.Errorf("%d staged invoices are not in the simulator", len(amounts))
	}
}

// readWithDuckDB renders every column as text: decimals with their 9 places,
// timestamps as microseconds since the epoch, dates as YYYY-MM-DD.
func readWithDuckDB(t *testing.T, db *warehouse.DB, path string, cols []warehouse.Column) [][]string {
	t.Helper()
	var sel []string
	for _, c := range cols {
		expr := "cast(" + warehouse.Ident(c.Name) + " as varchar)"
		if strings.HasPrefix(c.Type, "TIMESTAMP") {
			expr = "cast(epoch_us(" + warehouse.Ident(c.Name) + ") as varchar)"
		}
		sel = append(sel, fmt.Sprintf("coalesce(%s, '%s')", expr, null))
	}
	q := fmt.Sprintf("select %s from read_parquet(%s) order by id, updated_date", strings.Join(sel, ", "), warehouse.Literal(path))
	out, err := db.Strings(context.Background(), q)
	if err != nil {
		t.Fatalf("duckdb %s: %v", path, err)
	}
	return out
}

// readWithArrow renders every column the way readWithDuckDB does.
func readWithArrow(t *testing.T, path string, cols []warehouse.Column) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	n := int(tbl.NumRows())
	out := make([][]string, n)
	for i := range out {
		out[i] = make([]string, len(cols))
	}
	for c, col := range cols {
		idx := tbl.Schema().FieldIndices(col.Name)
		if len(idx) != 1 {
			t.Fatalf("%s: arrow finds no column %s", path, col.Name)
		}
		row := 0
		for _, chunk := range tbl.Column(idx[0]).Data().Chunks() {
			for i := range chunk.Len() {
				out[row][c] = arrowText(t, chunk, i)
				row++
			}
		}
	}
	updated := slices.IndexFunc(cols, func(c warehouse.Column) bool { return c.Name == "updated_date" })
	slices.SortStableFunc(out, func(a, b []string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		x, _ := strconv.ParseInt(a[updated], 10, 64)
		y, _ := strconv.ParseInt(b[updated], 10, 64)
		return int(x - y)
	})
	return out
}

func arrowText(t *testing.T, a arrow.Array, i int) string {
	if a.IsNull(i) {
		return null
	}
	switch v := a.(type) {
	case *array.String:
		return v.Value(i)
	case *array.Decimal128:
		dt := v.DataType().(*arrow.Decimal128Type)
		return decimal.NewFromBigInt(v.Value(i).BigInt(), -dt.Scale).StringFixed(dt.Scale)
	case *array.Timestamp:
		if unit := v.DataType().(*arrow.TimestampType).Unit; unit != arrow.Microsecond {
			t.Fatalf("timestamp in %s, want microseconds", unit)
		}
		return strconv.FormatInt(int64(v.Value(i)), 10)
	case *array.Date32:
		return v.Value(i).ToTime().Format(time.DateOnly)
	case *array.Int64:
		return strconv.FormatInt(v.Value(i), 10)
	case *array.Boolean:
		return strconv.FormatBool(v.Value(i))
	}
	t.Fatalf("unexpected arrow type %s", a.DataType())
	return ""
}
