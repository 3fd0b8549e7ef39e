package zuorasim

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// arFields are the fields the AR pass derives; every other field of every
// document is what the document pass wrote.
var arFields = map[string][]string{
	"accounts":     {"balance", "totalInvoiceBalance", "creditBalance"},
	"invoices":     {"balance", "paymentAmount", "creditMemoAmount", "refundAmount"},
	"payments":     {"appliedAmount", "unappliedAmount", "refundAmount"},
	"refunds":      {"sourceType"},
	"credit-memos": {"balance", "appliedAmount", "refundAmount"},
	"debit-memos":  {"balance"},
}

// TestGenerateKeepsDocumentsOutsideTheARFields pins, for two seeds of the
// default volume, two digests of every document record without its AR fields.
// undated also leaves out updatedDate: it has not changed since before the AR
// pass existed, so ids, numbers, amounts, createdDates, statuses, items and
// counts are what the document pass made. digest keeps updatedDate, which the
// AR pass raises on each invoice, debit memo, payment, credit memo and refund
// an application changes, to that application's second (bump); items and
// accounts keep theirs.
func TestGenerateKeepsDocumentsOutsideTheARFields(t *testing.T) {
	want := []struct {
		seed            int64
		object          string
		count           int
		digest, undated string
	}{
		{1, "accounts", 25, "161972a09b0b945b5e71f5bd", "c8505cf0c47639366c998e82"},
		{1, "invoices", 80, "7c8ccf10afc03e242862e3e9", "2ea2636f5ac0359c25818ac9"},
		{1, "invoice-items", 751, "7f78847c7ab4d167e91fe437", "36a6b8df091fa61dbcdbdbd7"},
		{1, "payments", 50, "cf4cd24bc54a228afbc074e8", "c6edb6161cbe1c430df78ca0"},
		{1, "refunds", 15, "a6939dac166662edf30bfdcf", "1e11696126ced70d2b96f356"},
		{1, "credit-memos", 20, "bbe46738289d1e6f041aa6d1", "d3c3e664ab7a2a3432994c18"},
		{1, "credit-memo-items", 305, "b821d981c970f3a4c1f03ff6", "087e1d85d767ca03f0d2766d"},
		{1, "debit-memos", 10, "c6331ea0551641108d32bb3a", "641ab822bb0a01d7f76de9f9"},
		{1, "debit-memo-items", 185, "af39664c0c57b0f780b0b905", "0110fbd13dcb86cc93da442d"},
		{42, "accounts", 25, "b87629f88613d6976a9e5a1d", "1b52b971a1cc282d84a48084"},
		{42, "invoices", 80, "d8db0c16bc99cbfc9f9960da", "aa0b237ad6d157e17a2c0d80"},
		{42, "invoice-items", 793, "5f9100a6198efbabe4b08899", "e949ee8c01a8e59a897b0e36"},
		{42, "payments", 50, "0d68420ee85efc374fcfb8a5", "c6721b5fb7b8d5f192f6df7c"},
		{42, "refunds", 15, "ef7b9054be003e8a5834814e", "a7aa052b735326d46f639971"},
		{42, "credit-memos", 20, "b3813eccf3407809d6d7539e", "e590aa054117a0ff8fb210d8"},
		{42, "credit-memo-items", 185, "f2f04bcc5d0c4fdf9949bfd4", "833ab682ae010864cf4cac38"},
		{42, "debit-memos", 10, "d83346a2610a0279a31fc1a9", "5507df30709b57612f85d0cc"},
		{42, "debit-memo-items", 247, "c6517d555dd94bbd37c9d86f", "93ae5092c6b1dcdacf64b173"},
	}
	tenants := map[int64]*Tenant{}
	for _, w := range want {
		tn := tenants[w.seed]
		if tn == nil {
			tn = Generate(w.seed, DefaultVolume(), genFrom, genTo)
			tenants[w.seed] = tn
		}
		h, undated := sha256.New(), sha256.New()
		for _, r := range tn.Snapshot(w.object, nil) {
			for _, f := range arFields[w.object] {
				delete(r, f)
			}
			b, _ := json.Marshal(r)
			h.Write(b)
			delete(r, "updatedDate")
			b, _ = json.Marshal(r)
			undated.Write(b)
		}
		got, gotUndated := fmt.Sprintf("%x", h.Sum(nil)[:12]), fmt.Sprintf("%x", undated.Sum(nil)[:12])
		if tn.Count(w.object) != w.count || got != w.digest || gotUndated != w.undated {
			t.Errorf("seed %d %s: %d records, digests %s, %s without updatedDate; want %d, %s, %s",
				w.seed, w.object, tn.Count(w.object), got, gotUndated, w.count, w.digest, w.undated)
		}
	}
}

// TestGenerateARIsConsistent: generated tenants of several seeds and volumes
// break no AR invariant (each document's AR fields are the sums of its
// applications: CheckAR), date every application within the life of each
// document it joins, and hold every kind of application the model knows.
func TestGenerateARIsConsistent(t *testing.T) {
	big := Volume{Accounts: 40, Invoices: 400, Payments: 200, Refunds: 60, CreditMemos: 80, DebitMemos: 40,
		MaxItems: 20, NoERPPercent: 10, DraftPercent: 10, TransferredPercent: 5, BurstPercent: 40}
	// The pipeline's receivables volume (internal/pipeline arVolume), with and
	// without a payment applied to more than 99 invoices.
	pipeline, wide := DefaultVolume(), DefaultVolume()
	pipeline.NoERPPercent, pipeline.TransferredPercent = 0, 0
	wide.NoERPPercent, wide.TransferredPercent, wide.WidePayments = 0, 0, 1
	seen := map[string]int{}
	for _, c := range []struct {
		seed int64
		v    Volume
	}{{1, DefaultVolume()}, {42, DefaultVolume()}, {7, DefaultVolume()}, {11, big}, {12, big},
		{1, pipeline}, {3, pipeline}, {5, pipeline}, {8, pipeline}, {3, wide}} {
		tn := Generate(c.seed, c.v, genFrom, genTo)
		if v := tn.CheckAR(); len(v) > 0 {
			t.Fatalf("seed %d: %d violations, first %s", c.seed, len(v), v[0])
		}
		if bad := applicationsOutsideTheirDocuments(tn); len(bad) > 0 {
			t.Errorf("seed %d %+v: %d applications dated outside a document they change, e.g.:\n%s",
				c.seed, c.v, len(bad), strings.Join(bad[:min(5, len(bad))], "\n"))
		}
		for _, a := range tn.Snapshot(objPaymentApps, nil) {
			amount := decimal.RequireFromString(string(a["applyAmount"].(json.Number)))
			switch {
			case a["paymentApplicationStatus"] == stCancelled:
				seen["cancelled payment application"]++
			case amount.IsNegative():
				seen["unapply"]++
			case a["invoiceId"] == nil && a["debitMemoId"] == nil:
				seen["payment to the credit balance"]++
			case a["debitMemoId"] != nil:
				seen["payment to a debit memo"]++
			default:
				seen["payment to an invoice"]++
			}
		}
		for _, a := range tn.Snapshot(objCreditMemoApps, nil) {
			if a["invoiceId"] != nil {
				seen["credit memo to an invoice"]++
			}
		}
		for _, a := range tn.Snapshot(objRefundApps, nil) {
			if a["paymentId"] != nil {
				seen["refund of a payment"]++
			} else {
				seen["refund of a credit memo"]++
			}
		}
		groups := map[any]int{}
		for _, a := range tn.Snapshot(objPaymentApps, nil) {
			groups[a["applicationGroupId"]]++
		}
		for _, n := range groups {
			if n > 1 {
				seen["a group of several applications"]++
			}
		}
		for _, o := range []string{objPaymentApps, objCreditMemoApps, objRefundApps} {
			for _, r := range tn.Snapshot(o, nil) {
				for _, f := range []string{"createdDate", "updatedDate"} {
					ts, err := time.Parse(time.RFC3339, r[f].(string))
					if err != nil || ts.Before(genFrom) || !ts.Before(genTo) {
						t.Fatalf("%s %s %s = %v outside the tenant's range", o, r["id"], f, r[f])
					}
				}
			}
		}
	}
	for _, kind := range []string{"payment to an invoice", "payment to a debit memo", "unapply", "cancelled payment application",
		"credit memo to an invoice", "refund of a payment", "refund of a credit memo", "a group of several applications"} {
		if seen[kind] == 0 {
			t.Errorf("no %s in any generated tenant (%v)", kind, seen)
		}
	}
}

// applicationsOutsideTheirDocuments lists every application that was created
// before a document it joins (its source and its target: the payment, credit
// memo or refund it comes from and the invoice, debit memo, payment or credit
// memo it changes) was created, or created or updated after that document was
// last updated. In Zuora an application changes its documents' AR fields
// (CheckAR holds those to the sums of the applications), and so their
// updatedDate: a document last updated before an application that changed it
// would show, in its last version, an amount its applications do not explain.
func applicationsOutsideTheirDocuments(tn *Tenant) []string {
	var out []string
	check := func(object string, a *record, docs ...struct{ object, id string }) {
		for _, d := range docs {
			if d.id == "" {
				continue
			}
			r := tn.tables[d.object].byID[d.id]
			if r == nil {
				continue // CheckAR's application.source and .target
			}
			if a.created() < r.created() || a.created() > r.updated() || a.updated() > r.updated() {
				out = append(out, fmt.Sprintf("%s %s (created %s, updated %s) joins %s %s (created %s, updated %s)",
					object, a.id(), unixUTC(a.created()), unixUTC(a.updated()), d.object, d.id, unixUTC(r.created()), unixUTC(r.updated())))
			}
		}
	}
	type doc = struct{ object, id string }
	for _, a := range tn.tables[objPaymentApps].recs {
		check(objPaymentApps, a, doc{objPayments, a.str(pa.payment)}, doc{objInvoices, a.str(pa.invoice)}, doc{objDebitMemos, a.str(pa.debitMemo)})
	}
	for _, a := range tn.tables[objCreditMemoApps].recs {
		check(objCreditMemoApps, a, doc{objCreditMemos, a.str(ca.memo)}, doc{objInvoices, a.str(ca.invoice)}, doc{objDebitMemos, a.str(ca.debitMemo)})
	}
	for _, a := range tn.tables[objRefundApps].recs {
		check(objRefundApps, a, doc{objRefunds, a.str(ra.refund)}, doc{objPayments, a.str(ra.payment)}, doc{objCreditMemos, a.str(ra.memo)})
	}
	return out
}

func unixUTC(s int64) string { return time.Unix(s, 0).UTC().Format(time.RFC3339) }

// TestGenerateWidePayments: the knob adds payments applied to more than 99
// invoices in one group, and the tenant stays consistent.
func TestGenerateWidePayments(t *testing.T) {
	v := DefaultVolume()
	v.WidePayments = 2
	tn := Generate(3, v, genFrom, genTo)
	base := Generate(3, DefaultVolume(), genFrom, genTo)
	if n := tn.Count(objPayments) - base.Count(objPayments); n != 2 {
		t.Fatalf("%d payments added, want 2", n)
	}
	if v := tn.CheckAR(); len(v) > 0 {
		t.Fatalf("%d violations, first %s", len(v), v[0])
	}
	wide := 0
	for _, p := range tn.Snapshot(objPayments, nil)[base.Count(objPayments):] {
		n := len(tn.tables[objPaymentApps].lookupFK(pa.payment, p["id"].(string)))
		if n > 99 && p["unappliedAmount"] == json.Number("0") {
			wide++
		}
	}
	if wide != 2 {
		t.Fatalf("%d payments applied to more than 99 invoices in full, want 2", wide)
	}
	if tn.Count(objInvoiceItems) <= base.Count(objInvoiceItems) {
		t.Fatal("the added invoices have no items")
	}
}

// TestGenerateIgnorePercent: the knob marks documents Ignore, never one
// already transferred, and leaves the rest of the tenant alone.
func TestGenerateIgnorePercent(t *testing.T) {
	v := DefaultVolume()
	v.IgnorePercent = 30
	tn, base := Generate(5, v, genFrom, genTo), Generate(5, DefaultVolume(), genFrom, genTo)
	ignored := 0
	for _, o := range []string{objInvoices, objPayments, objRefunds, objCreditMemos, objDebitMemos} {
		a, b := tn.Snapshot(o, nil), base.Snapshot(o, nil)
		for i := range a {
			if a[i]["transferredToAccounting"] == "Ignore" {
				ignored++
				if b[i]["transferredToAccounting"] == "Yes" {
					t.Fatalf("%s %s was transferred and is now Ignore", o, a[i]["id"])
				}
				a[i]["transferredToAccounting"] = b[i]["transferredToAccounting"]
			}
			ja, _ := json.Marshal(a[i])
			jb, _ := json.Marshal(b[i])
			if string(ja) != string(jb) {
				t.Fatalf("%s %s differs beyond TransferredToAccounting:\n%s\n%s", o, a[i]["id"], ja, jb)
			}
		}
	}
	if ignored == 0 {
		t.Fatal("nothing marked Ignore")
	}
}
