package load

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// TestTheIndexGivesBackEveryLineAsRead writes lines of every shape (a key
// other than the id, dependencies with and without a type, a reversal, an
// amount to the last decimal) and reads them back, twice at once.
func TestTheIndexGivesBackEveryLineAsRead(t *testing.T) {
	amount, err := money.ToFixed(decimal.RequireFromString("-12345678901234567890.123456789"))
	if err != nil {
		t.Fatal(err)
	}
	docs := []document{
		{DocType: stage.Invoice, ZuoraID: "inv-1", IdempotencyKey: "inv-1", Currency: "USD", Event: stage.EventPost, fixed: amount,
			sha: payloadSum{1, 2, 3}, line: lineMark{digest: 1<<64 - 1, from: 7, to: 1 << 31}},
		{DocType: stage.Invoice, ZuoraID: "inv-1", IdempotencyKey: "inv-1#repost@2026-12-01", Currency: "EUR", Event: stage.EventRepost},
		{DocType: stage.PaymentApplication, ZuoraID: "pa-1", IdempotencyKey: "pa-1", Currency: "USD", Event: stage.EventApply,
			deps: []Dep{{ZuoraID: "pay-1", DocType: stage.Payment}, {ZuoraID: "inv-1"}}},
		{DocType: stage.Reversal, ZuoraID: "inv-1", IdempotencyKey: "rev:inv-1", Currency: "USD", Event: stage.EventReversal, reverses: stage.Invoice,
			deps: []Dep{{ZuoraID: "pa-1"}}},
		{DocType: stage.Payment, ZuoraID: "", IdempotencyKey: "", Currency: "JPY", Event: stage.EventPost},
	}
	x := indexOf(t, docs)
	if x.len() != len(docs) {
		t.Fatalf("index of %d lines says %d", len(docs), x.len())
	}
	second := x.reader()
	err = x.each(func(i int, d *document) error {
		if !reflect.DeepEqual(*d, docs[i]) {
			t.Errorf("line %d reads back as %+v; want %+v", i, *d, docs[i])
		}
		o, ok, err := second.next()
		if err != nil || !ok || !reflect.DeepEqual(o, docs[i]) {
			t.Errorf("line %d, read beside: %+v, %v, %v", i, o, ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := second.next(); ok || err != nil {
		t.Fatalf("a read past the last line: %v, %v", ok, err)
	}
}

// TestAnIndexThatChangedIsRefused damages an index's file: a scan says so
// rather than reading another line.
func TestAnIndexThatChangedIsRefused(t *testing.T) {
	x := indexOf(t, []document{{DocType: stage.Invoice, ZuoraID: "inv-1", IdempotencyKey: "inv-1", Currency: "USD", Event: stage.EventPost}})
	if _, err := x.f.WriteAt([]byte{0x7f, 0x7f}, 1); err != nil {
		t.Fatal(err)
	}
	err := x.each(func(int, *document) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "index of the window's lines at line 1") {
		t.Fatalf("a damaged index reads with err = %v", err)
	}
}

// TestALoadWithoutATemporaryDirectoryPostsNothing runs a load whose
// temporary directory does not exist: it is refused before any post, and
// says where it tried.
func TestALoadWithoutATemporaryDirectoryPostsNothing(t *testing.T) {
	e := newEnv(t, makeSpecs(3))
	t.Setenv("TMPDIR", "/nonexistent/zuora-erp-etl")
	_, err := e.run(context.Background(), e.opts())
	if err == nil || !strings.Contains(err.Error(), "create the load's index") || !strings.Contains(err.Error(), "/nonexistent/zuora-erp-etl") {
		t.Fatalf("load without a temporary directory: err = %v", err)
	}
	if n := len(e.erpDocs()); n != 0 {
		t.Fatalf("the ERP holds %d documents; want none posted", n)
	}
	if rows := e.ledger(); len(rows) != 0 {
		t.Fatalf("the ledger holds %d rows; want none", len(rows))
	}
}

// TestTheIndexLeavesNoFileBehind loads a window: the temporary directory
// holds no file of the load's afterwards.
func TestTheIndexLeavesNoFileBehind(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	e := newEnv(t, makeSpecs(5))
	if _, err := e.run(context.Background(), e.opts()); err != nil {
		t.Fatal(err)
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range left {
		if strings.HasPrefix(f.Name(), "zuora-erp-etl-load-") {
			t.Errorf("the load left %s in the temporary directory", f.Name())
		}
	}
}
