package zuorasim

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
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
// default volume, a digest of every document record without its AR fields, as
// the generator made them before it derived applications (recorded from the
// code before the AR pass existed): ids, numbers, amounts, dates, statuses,
// items and counts are unchanged.
func TestGenerateKeepsDocumentsOutsideTheARFields(t *testing.T) {
	want := []struct {
		seed   int64
		object string
		count  int
		digest string
	}{
		{1, "accounts", 25, "161972a09b0b945b5e71f5bd"},
		{1, "invoices", 80, "5ecb4ebaf30fdf14acb2c8df"},
		{1, "invoice-items", 751, "7f78847c7ab4d167e91fe437"},
		{1, "payments", 50, "ef8c25246f7b64c7bd6fd2a8"},
		{1, "refunds", 15, "7e1c10aeaf335f7c728e74b5"},
		{1, "credit-memos", 20, "1d5d17296f48bc7620534b61"},
		{1, "credit-memo-items", 305, "b821d981c970f3a4c1f03ff6"},
		{1, "debit-memos", 10, "c6331ea0551641108d32bb3a"},
		{1, "debit-memo-items", 185, "af39664c0c57b0f780b0b905"},
		{42, "accounts", 25, "b87629f88613d6976a9e5a1d"},
		{42, "invoices", 80, "2ebbf80f696e7f614a84bde2"},
		{42, "invoice-items", 793, "5f9100a6198efbabe4b08899"},
		{42, "payments", 50, "1f0e2094bf3135b1822c250f"},
		{42, "refunds", 15, "5e17876b2f38e93f3e626636"},
		{42, "credit-memos", 20, "923f181d2b7eb69aa19f515d"},
		{42, "credit-memo-items", 185, "f2f04bcc5d0c4fdf9949bfd4"},
		{42, "debit-memos", 10, "f02302f8ba1809ca7e939c81"},
		{42, "debit-memo-items", 247, "c6517d555dd94bbd37c9d86f"},
	}
	tenants := map[int64]*Tenant{}
	for _, w := range want {
		tn := tenants[w.seed]
		if tn == nil {
			tn = Generate(w.seed, DefaultVolume(), genFrom, genTo)
			tenants[w.seed] = tn
		}
		h := sha256.New()
		for _, r := range tn.Snapshot(w.object, nil) {
			for _, f := range arFields[w.object] {
				delete(r, f)
			}
			b, _ := json.Marshal(r)
			h.Write(b)
		}
		if got := fmt.Sprintf("%x", h.Sum(nil)[:12]); tn.Count(w.object) != w.count || got != w.digest {
			t.Errorf("seed %d %s: %d records, digest %s; want %d, %s", w.seed, w.object, tn.Count(w.object), got, w.count, w.digest)
		}
	}
}

// TestGenerateARIsConsistent: generated tenants of several seeds and volumes
// break no AR invariant, and hold every kind of application the model knows.
func TestGenerateARIsConsistent(t *testing.T) {
	big := Volume{Accounts: 40, Invoices: 400, Payments: 200, Refunds: 60, CreditMemos: 80, DebitMemos: 40,
		MaxItems: 20, NoERPPercent: 10, DraftPercent: 10, TransferredPercent: 5, BurstPercent: 40}
	seen := map[string]int{}
	for _, c := range []struct {
		seed int64
		v    Volume
	}{{1, DefaultVolume()}, {42, DefaultVolume()}, {7, DefaultVolume()}, {11, big}, {12, big}} {
		tn := Generate(c.seed, c.v, genFrom, genTo)
		if v := tn.CheckAR(); len(v) > 0 {
			t.Fatalf("seed %d: %d violations, first %s", c.seed, len(v), v[0])
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
