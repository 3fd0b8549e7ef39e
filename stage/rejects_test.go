package stage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// rejectIndexOf returns an index of n rejects, each about 800 bytes of JSON.
func rejectIndexOf(n int) stage.RejectIndex {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	idx := stage.RejectIndex{UpdatedAt: at, Pending: []string{"20261125T090000Z-20261125T100000Z"}, LoadsIndexed: true}
	for i := range n {
		amount := decimal.RequireFromString(fmt.Sprintf("%d.25", i))
		idx.Rejects = append(idx.Rejects, stage.OutstandingReject{
			DocType: "invoice", ZuoraID: fmt.Sprintf("8a8082c4%024d", i), Number: fmt.Sprintf("INV-%08d", i),
			Window: "20261125T090000Z-20261125T100000Z", Updated: &at, Customer: "ERP-1001", Currency: "USD", Amount: &amount,
			ReasonCode: stage.ReasonNoERPAccount, Message: "the account has no ERP customer id in its custom field ERPCustomerId__c; set it in Zuora and the next run re-checks the document",
			Account:   stage.Account{ID: fmt.Sprintf("2c92c0f8%024d", i), Number: fmt.Sprintf("A%08d", i)},
			FirstSeen: at, LastSeen: at,
		})
	}
	return idx
}

func TestRejectIndexRoundTripsAndReadsTheOldLayout(t *testing.T) {
	ctx := context.Background()
	st := open(t, "file://"+t.TempDir())
	if _, found, err := st.ReadRejectIndex(ctx); err != nil || found {
		t.Fatalf("a new stage: found %v, err %v; want none", found, err)
	}
	for _, n := range []int{0, 1, 3} {
		want := rejectIndexOf(n)
		if err := st.WriteRejectIndex(ctx, want); err != nil {
			t.Fatal(err)
		}
		data, err := st.Read(ctx, stage.RejectIndexKey)
		if err != nil {
			t.Fatal(err)
		}
		var decoded stage.RejectIndex
		if err := json.Unmarshal(data, &decoded); err != nil {
			t.Fatalf("%d rejects: the index written is not JSON: %v\n%s", n, err, data)
		}
		got, found, err := st.ReadRejectIndex(ctx)
		if err != nil || !found {
			t.Fatalf("%d rejects: found %v, err %v", n, found, err)
		}
		if n == 0 {
			want.Rejects = nil // none read
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(decoded.Pending, want.Pending) || len(decoded.Rejects) != n {
			t.Fatalf("%d rejects: read back\n%+v\nwant\n%+v", n, got, want)
		}
		// An index as stages wrote it before: one MarshalIndent, the rejects in the middle.
		if err := st.WriteJSON(ctx, stage.RejectIndexKey, want); err != nil {
			t.Fatal(err)
		}
		if got, _, err := st.ReadRejectIndex(ctx); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%d rejects in the old layout: read back %+v, %v", n, got, err)
		}
	}
	if _, err := st.WriteBytes(ctx, stage.RejectIndexKey, []byte(`{"updated_at": "2026-11-25T10:00:00Z", "rejects": [{"doc_type": "invoice"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.ReadRejectIndex(ctx); err == nil {
		t.Fatal("a cut index was read without an error")
	}
}

// TestRejectIndexIsReadOneRejectAtATime holds EachReject to decoding one
// reject at a time: reading a 16 MB index while keeping nothing of it must
// not grow the heap by more than a small fraction of it.
func TestRejectIndexIsReadOneRejectAtATime(t *testing.T) {
	ctx := context.Background()
	st := open(t, "file://"+t.TempDir())
	idx := rejectIndexOf(20000)
	if err := st.WriteRejectIndex(ctx, idx); err != nil {
		t.Fatal(err)
	}
	data, err := st.Read(ctx, stage.RejectIndexKey)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	data = nil
	idx = stage.RejectIndex{}
	growth := func() int64 {
		h := testutil.StartLivePeak()
		n := 0
		if _, found, err := st.EachReject(ctx, func(r *stage.OutstandingReject) error { n++; return nil }); err != nil || !found || n != 20000 {
			t.Fatalf("found %v, %d rejects, err %v", found, n, err)
		}
		return h.Growth()
	}
	g := min(growth(), growth())
	t.Logf("reading a %.1f MB index one reject at a time grew the heap by %.2f MB", float64(size)/(1<<20), float64(g)/(1<<20))
	if g > size/8 {
		t.Errorf("reading the reject index grew the heap by %d bytes, the index is %d: want at most an eighth of it", g, size)
	}
}
