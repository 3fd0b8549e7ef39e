package warehouse

import (
	"fmt"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Column is one column of a stage table as DuckDB reads it.
type Column struct {
	Name string
	Type string
}

// Schemas are the columns of every stage table, without the window column
// that views add: derived from the Parquet tags of stage's row types, the one
// description of each table. They give a table with no files yet its shape.
var Schemas = func() map[string][]Column {
	out := map[string][]Column{}
	for table, row := range stage.TableRows() {
		out[table] = columnsOf(row)
	}
	return out
}()

// columnsOf returns the DuckDB columns of the Parquet schema of row's type, in order.
func columnsOf(row any) []Column {
	var out []Column
	for _, f := range parquet.SchemaOf(row).Fields() {
		out = append(out, Column{Name: f.Name(), Type: duckNode(f)})
	}
	return out
}

// duckNode is the DuckDB type a Parquet column is read as; a list is its
// element's type followed by [].
func duckNode(n parquet.Node) string {
	if lt := n.Type().LogicalType(); lt != nil {
		if _, list := lt.Value.(*format.ListType); list {
			return duckNode(n.Fields()[0].Fields()[0]) + "[]"
		}
	}
	return duckType(n.Type())
}

// duckType is the DuckDB type a Parquet column is read as.
func duckType(t parquet.Type) string {
	if lt := t.LogicalType(); lt != nil {
		switch v := lt.Value.(type) {
		case *format.StringType:
			return "VARCHAR"
		case *format.DateType:
			return "DATE"
		case *format.TimestampType:
			if v.IsAdjustedToUTC {
				return "TIMESTAMPTZ"
			}
			return "TIMESTAMP"
		case *format.DecimalType:
			return fmt.Sprintf("DECIMAL(%d,%d)", v.Precision, v.Scale)
		case *format.IntType:
			if v.BitWidth == 64 {
				return "BIGINT"
			}
			return "INTEGER"
		}
	}
	switch t.Kind() {
	case parquet.Boolean:
		return "BOOLEAN"
	case parquet.Int32:
		return "INTEGER"
	case parquet.Int64:
		return "BIGINT"
	case parquet.Double:
		return "DOUBLE"
	}
	panic(fmt.Sprintf("warehouse: no DuckDB type for Parquet %s", t))
}
