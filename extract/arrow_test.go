package extract

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/shopspring/decimal"
)

// TestArrowReadsWhatZuoraSent reads a staged file with another Parquet
// implementation, as DuckDB and other engines will: decimals and timestamps
// must come back exactly as the Zuora JSON said.
func TestArrowReadsWhatZuoraSent(t *testing.T) {
	f := newFake()
	f.account("a1", "A-1", "ERP-1")
	f.invoice("inv1", "a1", at(22, 5, 7), line{"1234.123456789", "0.000000001"}, line{"-99999999999999999999.5", "0"})
	f.invoice("inv2", "a1", at(22, 6, 0), line{"0.1", "0.2"})
	st := newStage(t)
	m := mustRun(t, f, st, w1, Options{})

	data, err := st.Read(context.Background(), m.Tables["invoices"].Files[0].Key)
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

	column := func(name string) arrow.Array {
		idx := tbl.Schema().FieldIndices(name)
		if len(idx) != 1 {
			t.Fatalf("no column %s in %s", name, tbl.Schema())
		}
		chunks := tbl.Column(idx[0]).Data().Chunks()
		if len(chunks) != 1 {
			t.Fatalf("column %s has %d chunks", name, len(chunks))
		}
		return chunks[0]
	}

	amount := column("amount")
	dt, ok := amount.DataType().(*arrow.Decimal128Type)
	if !ok || dt.Precision != 38 || dt.Scale != 9 {
		t.Fatalf("amount is %s, want decimal(38, 9)", amount.DataType())
	}
	want := map[string]string{"inv1": "-99999999999999998765.376543210", "inv2": "0.3"}
	ids := column("id").(*array.String)
	for i := range amount.Len() {
		v := amount.(*array.Decimal128).Value(i)
		got := decimal.NewFromBigInt(v.BigInt(), -9)
		if !got.Equal(decimal.RequireFromString(want[ids.Value(i)])) {
			t.Errorf("%s amount %s, want %s", ids.Value(i), got, want[ids.Value(i)])
		}
	}

	upd := column("updated_date")
	ts, ok := upd.DataType().(*arrow.TimestampType)
	if !ok || ts.Unit != arrow.Microsecond || ts.TimeZone != "UTC" {
		t.Fatalf("updated_date is %s, want timestamp[us, tz=UTC]", upd.DataType())
	}
	wantUpd := map[string]time.Time{"inv1": at(22, 5, 7), "inv2": at(22, 6, 0)}
	raw := column("updated_date_raw").(*array.String)
	for i := range upd.Len() {
		got := upd.(*array.Timestamp).Value(i).ToTime(arrow.Microsecond)
		if !got.Equal(wantUpd[ids.Value(i)]) {
			t.Errorf("%s updated_date %s, want %s", ids.Value(i), got, wantUpd[ids.Value(i)])
		}
		if parsed, err := time.Parse(time.RFC3339, raw.Value(i)); err != nil || !parsed.Equal(got) || raw.Value(i)[19:] != "-08:00" {
			t.Errorf("%s updated_date_raw %q, want the -08:00 string Zuora sent", ids.Value(i), raw.Value(i))
		}
	}

	date := column("invoice_date")
	if date.DataType().ID() != arrow.DATE32 {
		t.Fatalf("invoice_date is %s, want date32", date.DataType())
	}
	if got := date.(*array.Date32).Value(0).ToTime(); !got.Equal(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("invoice_date %s", got)
	}
	if n := column("erp_account_id").(*array.String).Value(0); n != "ERP-1" {
		t.Errorf("erp_account_id %q", n)
	}
}
