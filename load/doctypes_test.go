package load

import (
	"context"
	"errors"
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func TestAWindowHoldingATypeNoLongerMovedIsRefusedBeforeAnyPost(t *testing.T) {
	specs := makeSpecs(20)
	e := newEnv(t, specs)
	types := map[stage.DocType]int{}
	for _, s := range specs {
		types[s.docType]++
	}
	if types["credit_memo"] == 0 {
		t.Fatalf("the fixture has no credit memo: %v", types)
	}
	opts := e.opts()
	opts.DocTypes = []stage.DocType{stage.Invoice, stage.DebitMemo, stage.Payment, stage.Refund}
	_, err := e.run(context.Background(), opts)
	var tn *TypeNotMovedError
	if !errors.As(err, &tn) || tn.DocType != "credit_memo" || tn.Count != types["credit_memo"] {
		t.Fatalf("load with credit memos left out: %v, want a TypeNotMovedError counting them", err)
	}
	if len(e.erpDocs()) != 0 || e.marker.callCount() != 0 {
		t.Fatalf("%d documents posted and %d mark calls before the refusal", len(e.erpDocs()), e.marker.callCount())
	}
	opts.DocTypes = nil
	if _, err := e.run(context.Background(), opts); err != nil {
		t.Fatalf("all types: %v", err)
	}
}
