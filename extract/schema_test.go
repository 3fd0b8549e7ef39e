package extract

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// TestSchemasFollowTheDesign checks every raw table's Parquet file, as the
// extract writes it, against its row type in stage, types, encodings and
// nullability included; stage.TestDesignNamesEveryColumn checks those row
// types against docs/design.md.
func TestSchemasFollowTheDesign(t *testing.T) {
	st := newStage(t)
	m := mustRun(t, newFake(), st, w1, Options{}) // empty tables still carry their schema
	rows := stage.TableRows()
	for _, table := range stagedTables() {
		data, err := st.Read(context.Background(), m.Tables[table].Files[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		got, want := describe(f.Schema()), describe(parquet.SchemaOf(rows[table]))
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%s schema:\n got %q\nwant %q", table, got, want)
		}
	}
}

// describe lists a schema's columns: name, physical type and length, logical
// type and whether the column is optional.
func describe(s *parquet.Schema) []string {
	var out []string
	for _, col := range s.Fields() {
		typ := col.Type()
		d := col.Name() + " " + typ.Kind().String()
		if typ.Kind() == parquet.FixedLenByteArray {
			d += fmt.Sprintf("(%d)", typ.Length())
		}
		if lt := typ.LogicalType(); lt != nil {
			d += " " + lt.String()
		}
		if col.Optional() {
			d += " optional"
		}
		out = append(out, d)
	}
	return out
}
