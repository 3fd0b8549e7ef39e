package warehouse

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/s3test"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

const fixtures = "../../testdata/transform"

func openDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func put(t *testing.T, st *stage.Stage, key, path string) stage.ObjectInfo {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.WriteBytes(context.Background(), key, data)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// twoWindowStage commits the invoices fixture (14 rows, two of one id) as the
// extract of two windows and puts one ledger part in the first.
func twoWindowStage(t *testing.T, st *stage.Stage) []stage.Window {
	t.Helper()
	ctx := context.Background()
	var ws []stage.Window
	for _, id := range []string{"20261125T210000Z-20261125T220000Z", "20261125T220000Z-20261125T230000Z"} {
		w, err := stage.ParseWindowID(id)
		if err != nil {
			t.Fatal(err)
		}
		info := put(t, st, stage.RawKey("invoices", w, 0), filepath.Join(fixtures, "raw", "invoices.parquet"))
		em := stage.ExtractManifest{Window: id, Start: w.Start, End: w.End, Tables: map[string]stage.TableSnapshot{
			"invoices": {Rows: 14, Files: []stage.ObjectInfo{info}},
		}}
		if err := st.WriteManifest(ctx, w, em); err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	put(t, st, stage.LedgerKey(ws[0], time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC), "run-0", 1), filepath.Join(fixtures, "ledger_other.parquet"))
	// An uncommitted raw file (no manifest lists it) must stay invisible.
	put(t, st, "raw/entity=invoices/window=20261125T230000Z-20261126T000000Z/part-00000.parquet", filepath.Join(fixtures, "raw", "invoices.parquet"))
	return ws
}

func TestAttachStage(t *testing.T) {
	ctx := context.Background()
	stages := map[string]func(t *testing.T) *stage.Stage{
		"file": func(t *testing.T) *stage.Stage {
			st, err := stage.Open(ctx, "file://"+t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		"mem": func(t *testing.T) *stage.Stage {
			st, err := stage.Open(ctx, "mem://")
			if err != nil {
				t.Fatal(err)
			}
			st.SetCacheDir(t.TempDir())
			return st
		},
		"s3": func(t *testing.T) *stage.Stage {
			st, err := stage.Open(ctx, s3test.StageURL(t))
			if err != nil {
				t.Fatal(err)
			}
			st.SetCacheDir(t.TempDir())
			return st
		},
	}
	for name, open := range stages {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			defer st.Close()
			twoWindowStage(t, st)
			db := openDB(t)
			if err := db.AttachStage(ctx, st); err != nil {
				t.Fatal(err)
			}
			queries := []struct {
				sql  string
				want [][]string
			}{
				{"select count(*), sum(amount) from invoices", [][]string{{"28", "24691357802482687.826913578"}}},
				{`select "window", count(*), sum(amount) from invoices group by all order by all`, [][]string{
					{"20261125T210000Z-20261125T220000Z", "14", "12345678901241343.913456789"},
					{"20261125T220000Z-20261125T230000Z", "14", "12345678901241343.913456789"},
				}},
				{`select "window", count(*) from ledger group by all`, [][]string{{"20261125T210000Z-20261125T220000Z", "4"}}},
				{"select count(*) from payments", [][]string{{"0"}}},
				{"select count(*) from documents", [][]string{{"0"}}},
				{"select column_type from (describe payments) where column_name = 'amount'", [][]string{{"DECIMAL(38,9)"}}},
				{"select column_type from (describe documents) where column_name = 'window'", [][]string{{"VARCHAR"}}},
				{"select column_type from (describe ledger) where column_name = 'started_at'", [][]string{{"TIMESTAMP WITH TIME ZONE"}}},
			}
			for _, q := range queries {
				got, err := db.Strings(ctx, q.sql)
				if err != nil {
					t.Errorf("%s: %v", q.sql, err)
					continue
				}
				if !equalRows(got, q.want) {
					t.Errorf("%s = %v, want %v", q.sql, got, q.want)
				}
			}
		})
	}
}

func equalRows(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "\x00") != strings.Join(b[i], "\x00") {
			return false
		}
	}
	return true
}

func TestQueryFormats(t *testing.T) {
	const q = `select * from (values
    ('ünï', CAST('1234.500000000' AS DECIMAL(38, 9)), DATE '2026-11-25', 3, NULL),
    ('a,"b"', CAST('12345678901234567.123456789' AS DECIMAL(38, 9)), NULL, -1, true)
) as t(name, amount, day, n, flag) order by n desc`
	tests := []struct {
		format string
		want   string
	}{
		{"table", "" +
			"name   amount                       day         n   flag\n" +
			"-----  ---------------------------  ----------  --  ----\n" +
			"ünï                         1234.5  2026-11-25   3  NULL\n" +
			"a,\"b\"  12345678901234567.123456789  NULL        -1  true\n" +
			"(2 rows)\n"},
		{"csv", "" +
			"name,amount,day,n,flag\n" +
			"ünï,1234.5,2026-11-25,3,\n" +
			"\"a,\"\"b\"\"\",12345678901234567.123456789,,-1,true\n"},
		{"json", "" +
			`{"name":"ünï","amount":1234.5,"day":"2026-11-25","n":3,"flag":null}` + "\n" +
			`{"name":"a,\"b\"","amount":12345678901234567.123456789,"day":null,"n":-1,"flag":true}` + "\n"},
	}
	db := openDB(t)
	for _, tc := range tests {
		var buf bytes.Buffer
		if err := db.Query(context.Background(), q, &buf, tc.format); err != nil {
			t.Errorf("%s: %v", tc.format, err)
			continue
		}
		if buf.String() != tc.want {
			t.Errorf("%s:\ngot:\n%s\nwant:\n%s", tc.format, buf.String(), tc.want)
		}
	}
	var buf bytes.Buffer
	if err := db.Query(context.Background(), "select 1", &buf, "xml"); err == nil {
		t.Error("format xml: no error")
	}
	if err := db.Query(context.Background(), "select nonsense from nowhere", &buf, "table"); err == nil {
		t.Error("bad SQL: no error")
	}
	buf.Reset()
	if err := db.Query(context.Background(), "select 1 as x where false", &buf, "csv"); err != nil || buf.String() != "x\n" {
		t.Errorf("empty result as csv: %q, %v", buf.String(), err)
	}
}

func TestViewWithoutFilesNeedsSchema(t *testing.T) {
	db := openDB(t)
	if err := db.ViewParquet(context.Background(), "x", "no_such_table", nil); err == nil {
		t.Error("view over no files of an unknown table: no error")
	}
}
