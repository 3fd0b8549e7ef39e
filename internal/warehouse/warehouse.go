// Package warehouse is the only package that opens DuckDB: it builds views over
// the stage's Parquet files and runs SQL, so no other package sees DuckDB types.
package warehouse

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/shopspring/decimal"
)

// DB is a scratch DuckDB database on a single connection, so that views,
// tables, macros and settings persist from one statement to the next. Past
// the memory limit DuckDB keeps the tables it created in its file and
// spills the work of queries (sorts, joins, aggregates) to the spill folder,
// except what a query cannot spill: an ordered aggregate's state, a sort of
// rows as wide as payloads, a query's result (the driver holds it whole).
type DB struct {
	db    *sql.DB
	conn  *sql.Conn
	spill string // the database's own folder (its file and its spills), removed by Close
	// unwatch ends this database's share of the watch over what DuckDB's
	// allocator keeps freed (watchFreedPages).
	unwatch func()
}

// Open starts an empty DuckDB whose session time zone is UTC, within the
// process's Limits: its memory limit, its threads, and a spill folder of its
// own, which also holds the database's file; and has DuckDB's allocator
// keep little of the memory it frees while it is open (watchFreedPages). The database is a
// file, not in memory, because DuckDB writes what a CREATE TABLE AS makes to
// a file as it goes but holds it in memory until the statement ends in an
// in-memory database: under a small limit a large table could not be made.
func Open(ctx context.Context) (*DB, error) {
	l := CurrentLimits()
	spill, err := os.MkdirTemp(l.TempDir, "zuora-erp-etl-duckdb-")
	if err != nil {
		return nil, fmt.Errorf("open duckdb: its temporary folder: %w", err)
	}
	sqlDB, err := sql.Open("duckdb", "")
	if err != nil {
		os.RemoveAll(spill)
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	sqlDB.SetMaxOpenConns(1)
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		sqlDB.Close()
		os.RemoveAll(spill)
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	db := &DB{db: sqlDB, conn: conn, spill: spill, unwatch: watchFreedPages()}
	// The database file is scratch, removed with the folder: nothing is
	// checkpointed into it, and all it holds is what statements wrote there.
	settings := fmt.Sprintf(`SET TimeZone = 'UTC'; SET memory_limit = %s; SET threads = %d; SET temp_directory = %s;
SET checkpoint_threshold = '1TB'; PRAGMA disable_checkpoint_on_shutdown;
ATTACH %s AS work (ROW_GROUP_SIZE %d); USE work`,
		Literal(l.MemoryLimit), l.Threads, Literal(spill), Literal(filepath.Join(spill, "work.duckdb")), rowGroupRows(l))
	if err := db.Exec(ctx, settings); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// rowGroupRows is how many rows one row group of a table holds: DuckDB
// builds a row group in memory before it writes it to the file, and a
// default one (122,880 rows) of rows as wide as payloads is larger than a
// small memory limit. A row group holds the limit's worth of rows of 4KB,
// in whole vectors of 2,048 rows (30,720 rows under 128MB), and no more than
// DuckDB's default, the most its storage format takes.
func rowGroupRows(l Limits) int64 {
	return min(122_880, max(2048, l.MemoryBytes()/4096/2048*2048))
}

// Close releases the database and removes its temporary folder.
func (db *DB) Close() error {
	cerr := db.conn.Close()
	err := db.db.Close()
	db.unwatch()
	rerr := os.RemoveAll(db.spill)
	switch {
	case err != nil:
		return fmt.Errorf("close duckdb: %w", err)
	case cerr != nil:
		return fmt.Errorf("close duckdb: %w", cerr)
	case rerr != nil:
		return fmt.Errorf("close duckdb: its temporary folder: %w", rerr)
	}
	return nil
}

// Exec runs one or more statements that return no rows, then releases
// what they freed outside DuckDB's own allocator (releaseHeap).
func (db *DB) Exec(ctx context.Context, query string, args ...any) error {
	defer releaseHeap(time.Now())
	if _, err := db.conn.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("duckdb: %w", err)
	}
	return nil
}

// Row is one result row with every value rendered as text (see Text); Null
// marks the SQL NULLs, whose text is empty.
type Row struct {
	Values []string
	Null   []bool
}

// Each runs one query and calls fn for every row, in result order, with the
// column names and the row's values as exact text.
func (db *DB) Each(ctx context.Context, query string, fn func(cols []string, r Row) error) error {
	return db.scan(ctx, query, func(cols, _ []string, r Row) error {
		if r.Values == nil {
			return nil
		}
		return fn(cols, r)
	})
}

// scan runs query and calls fn once with a nil Row (so that a result without
// rows still reports its columns), then once per row; once the result is
// closed it releases what the query freed outside DuckDB's allocator.
func (db *DB) scan(ctx context.Context, query string, fn func(cols, types []string, r Row) error) error {
	defer releaseHeap(time.Now())
	rows, err := db.conn.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("duckdb: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return fmt.Errorf("duckdb: %w", err)
	}
	ctypes, err := rows.ColumnTypes()
	if err != nil {
		return fmt.Errorf("duckdb: %w", err)
	}
	types := make([]string, len(ctypes))
	for i, t := range ctypes {
		types[i] = t.DatabaseTypeName()
	}
	if err := fn(cols, types, Row{}); err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("duckdb: %w", err)
		}
		r := Row{Values: make([]string, len(cols)), Null: make([]bool, len(cols))}
		for i, v := range vals {
			r.Null[i] = v == nil
			r.Values[i] = text(v, types[i])
		}
		if err := fn(cols, types, r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("duckdb: %w", err)
	}
	return nil
}

// Strings runs one query and returns its rows as text, NULL as "".
func (db *DB) Strings(ctx context.Context, query string) ([][]string, error) {
	var out [][]string
	err := db.Each(ctx, query, func(_ []string, r Row) error {
		out = append(out, r.Values)
		return nil
	})
	return out, err
}

// text renders a scanned DuckDB value exactly: decimals without float
// conversion, dates as YYYY-MM-DD, timestamps as RFC 3339 in UTC.
func text(v any, dbType string) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case duckdb.Decimal:
		return decimal.NewFromBigInt(x.Value, -int32(x.Scale)).String()
	case *big.Int:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case time.Time:
		switch {
		case dbType == "DATE":
			return x.Format("2006-01-02")
		case strings.HasPrefix(dbType, "TIME") && !strings.HasPrefix(dbType, "TIMESTAMP"):
			return x.Format("15:04:05.999999")
		default:
			return x.UTC().Format(time.RFC3339Nano)
		}
	case []any, map[string]any, duckdb.Map, duckdb.OrderedMap, *duckdb.OrderedMap, duckdb.Union:
		return nestedJSON(x)
	default:
		return fmt.Sprint(x)
	}
}

// isNumeric reports whether a DuckDB column type prints as a JSON number.
func isNumeric(dbType string) bool {
	switch {
	case strings.HasPrefix(dbType, "DECIMAL"):
		return true
	}
	switch dbType {
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
		"UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE":
		return true
	}
	return false
}

// isNested reports whether a DuckDB column type is a list, array, struct,
// map or union, whose values text renders as JSON.
func isNested(dbType string) bool {
	for _, p := range []string{"STRUCT", "MAP", "UNION", "LIST"} {
		if strings.HasPrefix(dbType, p) {
			return true
		}
	}
	return strings.HasSuffix(dbType, "]")
}

// Literal quotes s as a SQL string literal.
func Literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// Ident quotes s as a SQL identifier.
func Ident(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
