package extract

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// waitingPerRawByte is the most memory a record waiting in the ordered
// window may take per byte of its JSON, so that aheadBytes bounds what the
// window holds. Its decoded fields took 4.5 times its JSON; its rows take
// about one.
const waitingPerRawByte = 2

// TestWaitingRecordsAreHeldAsCompactAsTheirJSON admits a window's worth of
// invoices with twenty items each, as a pass does while an item walk holds
// the window, and weighs what the admitted records keep on the heap.
func TestWaitingRecordsAreHeldAsCompactAsTheirJSON(t *testing.T) {
	lo := time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)
	w := &walker[stage.InvoiceRow, stage.InvoiceItemRow]{
		x:  &run{prior: map[string]keySet{}},
		sp: invoiceSpec, r: span{lo, lo.Add(time.Hour)}, items: &table[stage.InvoiceItemRow]{},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	raws := make([]json.RawMessage, aheadRecords)
	size := 0
	for i := range raws {
		raws[i] = waitingInvoice(i, lo.Add(time.Duration(i)*time.Second), 20)
		size += len(raws[i])
	}
	seen := make(keySet, len(raws))
	held := make([]*pending, 0, len(raws))
	before := liveHeap()
	for _, raw := range raws {
		p, _ := w.admit(raw, seen, lo)
		if p == nil || p.err != nil {
			t.Fatalf("invoice not admitted: %+v", p)
		}
		held = append(held, p)
	}
	grew := liveHeap() - before
	runtime.KeepAlive(held)
	perByte := float64(grew) / float64(size)
	t.Logf("%d invoices of %.1f MB of JSON waiting hold %.1f MB: %.2f bytes per byte of JSON", len(raws), float64(size)/(1<<20), float64(grew)/(1<<20), perByte)
	if perByte > waitingPerRawByte {
		t.Errorf("a waiting record holds %.2f bytes per byte of its JSON; want at most %d, so that the window's cap on JSON bounds its memory", perByte, waitingPerRawByte)
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// waitingInvoice is the JSON of invoice i, updated at u, with its account and n items expanded.
func waitingInvoice(i int, u time.Time, n int) json.RawMessage {
	ts := u.Format(time.RFC3339)
	var items []string
	for j := range n {
		items = append(items, fmt.Sprintf(`{"id":"8ad0%028d","createdDate":%q,"updatedDate":%q,"invoiceId":"8ad1%028d","accountId":"8ad2%028d",`+
			`"chargeName":"Platform subscription %d","chargeNumber":"C-%08d","sKU":"SKU-%05d","uOM":"Each","quantity":%d,"unitPrice":12.50,`+
			`"chargeAmount":%d.50,"taxAmount":1.25,"accountingCode":"4000-Revenue","serviceStartDate":"2026-11-01","serviceEndDate":"2026-11-30"}`,
			i*100+j, ts, ts, i, i%50, j, i*100+j, j, j+1, 12*(j+1)))
	}
	return json.RawMessage(fmt.Sprintf(`{"id":"8ad1%028d","createdDate":%q,"updatedDate":%q,"accountId":"8ad2%028d",`+
		`"account":{"id":"8ad2%028d","accountNumber":"A%08d","eRPAccountId__c":"ERP-%06d"},"invoiceNumber":"INV%08d",`+
		`"invoiceDate":"2026-11-30","dueDate":"2026-12-30","status":"Posted","currency":"USD","amount":100.00,"amountWithoutTax":90.00,`+
		`"taxAmount":10.00,"balance":100.00,"paymentAmount":0,"creditMemoAmount":0,"refundAmount":0,"reversed":false,`+
		`"transferredToAccounting":"No","invoiceItems":[%s]}`, i, ts, ts, i%50, i%50, i%50, i%50, i, strings.Join(items, ",")))
}
