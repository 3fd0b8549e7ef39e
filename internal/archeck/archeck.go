// Package archeck is the AR-parity oracle: per document, the open balance
// Zuora holds against the open balance the ERP holds, exactly (to the cent and
// below it, in every currency). Both simulators produce its inputs, and the
// pipeline's reconciliation compares the same way.
package archeck

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/shopspring/decimal"
)

// ZuoraDoc is one Zuora document with the open balance its own fields give:
// an invoice's or debit memo's balance, a payment's unappliedAmount, a credit
// memo's balance, a refund's amount less its refund applications.
type ZuoraDoc struct {
	ZuoraID  string
	DocType  string // invoice, debit_memo, credit_memo, payment, refund
	Number   string
	Account  string // the Zuora account id
	Currency string
	Status   string // as Zuora spells it: Posted, Draft, Canceled, Processed, Error, …
	Open     decimal.Decimal
}

// ERPDoc is one document as the ERP holds it: Live is false when the ERP
// holds only reversed copies (it then owes nothing on it).
type ERPDoc struct {
	ZuoraID  string
	DocType  string
	Customer string
	Currency string
	Live     bool
	Open     decimal.Decimal
}

// ZuoraOpen is what Zuora says is open on d: its open balance while it is
// posted (invoices, memos) or processed (payments, refunds), zero otherwise,
// since a draft, canceled or failed document is no receivable.
func ZuoraOpen(d ZuoraDoc) decimal.Decimal {
	switch d.DocType {
	case "invoice", "debit_memo", "credit_memo":
		if d.Status == "Posted" {
			return d.Open
		}
	case "payment", "refund":
		if d.Status == "Processed" {
			return d.Open
		}
	}
	return decimal.Zero
}

// ERPOpen is what the ERP says is open on d: zero unless a copy is live.
func ERPOpen(d ERPDoc) decimal.Decimal {
	if d.Live {
		return d.Open
	}
	return decimal.Zero
}

// Difference is one document whose open balances disagree.
type Difference struct {
	ZuoraID, DocType, Number, Currency string
	Zuora, ERP                         decimal.Decimal // open on each side (zero where it does not hold the document)
	Diff                               decimal.Decimal // Zuora − ERP
	Reason                             string
}

func (d Difference) String() string {
	return fmt.Sprintf("%s %s %s %s: Zuora %s, ERP %s (%s)", d.Currency, d.DocType, d.ZuoraID, d.Number, d.Zuora, d.ERP, d.Reason)
}

// Reasons a Difference gives.
const (
	BalanceDiffers  = "open balances differ"
	MissingInERP    = "open in Zuora, not held by the ERP"
	UnknownToZuora  = "open in the ERP, not in Zuora's documents"
	CurrencyDiffers = "currencies differ"
	TypeDiffers     = "document types differ"
)

// DuplicateError is an input naming one document twice.
type DuplicateError struct {
	Side, ZuoraID string
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("archeck: %s lists document %s twice", e.Side, e.ZuoraID)
}

// Compare lists every document whose open balance in Zuora differs from the
// ERP's, and every one the two sides disagree on the currency or type of,
// ordered by currency, type and id. A document open on neither side (a paid
// invoice, a draft never posted) is no difference, whether the ERP holds it or not.
func Compare(zuora []ZuoraDoc, erp []ERPDoc) ([]Difference, error) {
	z := make(map[string]ZuoraDoc, len(zuora))
	for _, d := range zuora {
		if _, dup := z[d.ZuoraID]; dup {
			return nil, &DuplicateError{"Zuora", d.ZuoraID}
		}
		z[d.ZuoraID] = d
	}
	e := make(map[string]ERPDoc, len(erp))
	for _, d := range erp {
		if _, dup := e[d.ZuoraID]; dup {
			return nil, &DuplicateError{"the ERP", d.ZuoraID}
		}
		e[d.ZuoraID] = d
	}
	var out []Difference
	for id, zd := range z {
		zo := ZuoraOpen(zd)
		ed, held := e[id]
		diff := Difference{ZuoraID: id, DocType: zd.DocType, Number: zd.Number, Currency: zd.Currency, Zuora: zo}
		switch {
		case !held:
			if zo.IsZero() {
				continue
			}
			diff.Reason = MissingInERP
		case ed.Currency != zd.Currency:
			diff.ERP, diff.Reason = ERPOpen(ed), CurrencyDiffers
		case ed.DocType != zd.DocType:
			diff.ERP, diff.Reason = ERPOpen(ed), TypeDiffers
		default:
			if diff.ERP = ERPOpen(ed); zo.Equal(diff.ERP) {
				continue
			}
			diff.Reason = BalanceDiffers
		}
		diff.Diff = diff.Zuora.Sub(diff.ERP)
		out = append(out, diff)
	}
	for id, ed := range e {
		if _, known := z[id]; known || ERPOpen(ed).IsZero() {
			continue
		}
		eo := ERPOpen(ed)
		out = append(out, Difference{ZuoraID: id, DocType: ed.DocType, Currency: ed.Currency, ERP: eo, Diff: eo.Neg(), Reason: UnknownToZuora})
	}
	slices.SortFunc(out, func(a, b Difference) int {
		return cmp.Or(cmp.Compare(a.Currency, b.Currency), cmp.Compare(a.DocType, b.DocType), cmp.Compare(a.ZuoraID, b.ZuoraID))
	})
	return out, nil
}

// Total is the open balance of one currency on each side.
type Total struct {
	Currency           string
	Zuora, ERP         decimal.Decimal
	ZuoraDocs, ERPDocs int // documents open on each side
}

// Totals sums the open balances per currency (receivables positive, credits
// as the documents carry them), ordered by currency; equal totals do not
// prove parity, the per-document Compare does.
func Totals(zuora []ZuoraDoc, erp []ERPDoc) []Total {
	by := map[string]*Total{}
	get := func(c string) *Total {
		if by[c] == nil {
			by[c] = &Total{Currency: c}
		}
		return by[c]
	}
	for _, d := range zuora {
		if o := ZuoraOpen(d); !o.IsZero() {
			t := get(d.Currency)
			t.Zuora = t.Zuora.Add(signed(d.DocType, o))
			t.ZuoraDocs++
		}
	}
	for _, d := range erp {
		if o := ERPOpen(d); !o.IsZero() {
			t := get(d.Currency)
			t.ERP = t.ERP.Add(signed(d.DocType, o))
			t.ERPDocs++
		}
	}
	out := make([]Total, 0, len(by))
	for _, t := range by {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Total) int { return cmp.Compare(a.Currency, b.Currency) })
	return out
}

// signed gives receivables (invoices, debit memos, refunds paid out) a plus
// sign and credits (payments, credit memos) a minus sign.
func signed(docType string, open decimal.Decimal) decimal.Decimal {
	if docType == "payment" || docType == "credit_memo" {
		return open.Neg()
	}
	return open
}
