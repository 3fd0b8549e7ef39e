package extract

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// recorder is a Source that keeps every record it hands out, by object.
type recorder struct {
	Source
	mu   sync.Mutex
	sent map[string][]json.RawMessage
}

func (r *recorder) Records(ctx context.Context, q zuora.Query) iter.Seq2[json.RawMessage, error] {
	return func(yield func(json.RawMessage, error) bool) {
		for raw, err := range r.Source.Records(ctx, q) {
			if err == nil {
				r.mu.Lock()
				if r.sent == nil {
					r.sent = map[string][]json.RawMessage{}
				}
				r.sent[q.Object] = append(r.sent[q.Object], append(json.RawMessage(nil), raw...))
				r.mu.Unlock()
			}
			if !yield(raw, err) {
				return
			}
		}
	}
}

// TestBadRecordsAreQuarantinedAndTheWindowCommits: a document that cannot be
// staged as Zuora sent it goes, whole, to the quarantine table with its exact
// raw JSON and the reason; the window commits with every other document.
func TestBadRecordsAreQuarantinedAndTheWindowCommits(t *testing.T) {
	tests := []struct {
		name   string
		spoil  func(f *fakeZuora)
		object string   // the Object Query path that sent it
		table  string   // the document's raw table
		id     string   // "" when the record has none
		want   []string // all must appear in the reason
		amount string   // the amount text kept, when readable
	}{
		{"amount with 12 decimals", func(f *fakeZuora) {
			f.invoice("inv9", "a1", at(22, 10, 0), line{"1", "0"})["amount"] = num("1234.567890123456")
		}, "invoices", "invoices", "inv9", []string{"invoices", "inv9", "amount", "1234.567890123456", "more than 9 decimal places"}, "1234.567890123456"},
		{"item quantity with 12 decimals", func(f *fakeZuora) {
			f.memo("debit-memos", "dm9", "a1", at(22, 10, 0), line{"1", "0"})
			f.objects["debit-memo-items"][0]["quantity"] = num("0.333333333333")
		}, "debit-memos", "debit_memos", "dm9", []string{"debit_memo_items", "dm9-it000", "quantity", "more than 9 decimal places"}, "1.000000000"},
		{"payment amount as text with 12 decimals", func(f *fakeZuora) {
			f.payment("pay9", "a1", "USD", at(22, 10, 0), "1")["amount"] = "1234.567890123456"
		}, "payments", "payments", "pay9", []string{"payments", "pay9", "amount", "1234.567890123456"}, "1234.567890123456"},
		{"missing id", func(f *fakeZuora) {
			delete(f.payment("pay9", "a1", "USD", at(22, 10, 0), "1"), "id")
		}, "payments", "payments", "", []string{"payments", "has no id", "paymentNumber", "P-pay9"}, "1"},
		{"missing updatedDate on an item", func(f *fakeZuora) {
			f.invoice("inv9", "a1", at(22, 10, 0), line{"1", "0"})
			items := f.objects["invoice-items"]
			items[len(items)-1]["updatedDate"] = nil
		}, "invoices", "invoices", "inv9", []string{"invoice_items", "inv9-it000", "has no updatedDate"}, "1.000000000"},
		{"createdDate without offset", func(f *fakeZuora) {
			f.refund("ref9", "a1", at(22, 10, 0), "1")["createdDate"] = "2026-11-25 14:10:00"
		}, "refunds", "refunds", "ref9", []string{"refunds", "ref9", "createdDate"}, "1"},
		{"bad date", func(f *fakeZuora) {
			f.invoice("inv9", "a1", at(22, 10, 0), line{"1", "0"})["dueDate"] = "25/12/2026"
		}, "invoices", "invoices", "inv9", []string{"invoices", "inv9", "dueDate"}, "1.000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.account("a1", "A-1", "ERP-1")
			f.invoice("ok", "a1", at(22, 5, 0), line{"1", "0"})
			f.payment("okpay", "a1", "USD", at(22, 6, 0), "2")
			tt.spoil(f)
			src := &recorder{Source: f}
			st := newStage(t)
			m, err := Run(context.Background(), src, st, w1, Options{RunID: "r1"})
			if err != nil {
				t.Fatalf("a malformed record failed the window: %v", err)
			}
			if got := invoiceIDs(tableRows[stage.InvoiceRow](t, st, m, "invoices")); !slices.Contains(got, "ok") || slices.Contains(got, "inv9") {
				t.Errorf("invoices staged %v; want ok and not the malformed one", got)
			}
			if got := ids(tableRows[stage.PaymentRow](t, st, m, "payments"), func(r stage.PaymentRow) string { return r.ID }); !slices.Equal(got, []string{"okpay"}) {
				t.Errorf("payments staged %v; want okpay only", got)
			}
			if tt.table == "invoices" {
				for _, it := range tableRows[stage.InvoiceItemRow](t, st, m, "invoice_items") {
					if *it.InvoiceID == tt.id {
						t.Errorf("item %s of the quarantined invoice was staged", it.ID)
					}
				}
			}
			rows := quarantinedRows(t, st, m)
			if len(rows) != 1 {
				t.Fatalf("quarantine holds %d rows; want 1: %+v", len(rows), rows)
			}
			q := rows[0]
			for _, s := range tt.want {
				if !strings.Contains(q.Reason, s) {
					t.Errorf("reason %q does not mention %q", q.Reason, s)
				}
			}
			if q.Entity != tt.table || q.DocType != tableDocType(tt.table) || q.RunID != "r1" || q.QuarantinedAt.IsZero() {
				t.Errorf("quarantined %+v; want table %s", q, tt.table)
			}
			if (q.ID == nil) != (tt.id == "") || q.ID != nil && *q.ID != tt.id || tt.id != "" && q.DocKey != tt.id {
				t.Errorf("id %v doc key %s; want %q", q.ID, q.DocKey, tt.id)
			}
			if q.AmountText == nil || *q.AmountText != tt.amount {
				t.Errorf("amount text %v; want %s exactly", q.AmountText, tt.amount)
			}
			if q.Currency == nil || *q.Currency != "USD" || q.Number == nil || q.UpdatedDate == nil || !q.UpdatedDate.Equal(at(22, 10, 0)) {
				t.Errorf("currency %v number %v updated %v; want what the record says", q.Currency, q.Number, q.UpdatedDate)
			}
			// The raw JSON is byte for byte what Zuora sent.
			var sent json.RawMessage
			for _, raw := range src.sent[tt.object] {
				if strings.Contains(string(raw), `"`+strings.TrimSuffix(*q.Number, "")+`"`) {
					sent = raw
				}
			}
			sum := sha256.Sum256(sent)
			if q.RawJSON != string(sent) || q.RawTruncated || q.RawSize != int64(len(sent)) || q.RawSHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("raw JSON %q (%d bytes, sha %s); Zuora sent %q", q.RawJSON, q.RawSize, q.RawSHA256, sent)
			}
			if tt.id == "" && q.DocKey != stage.NoIDPrefix+q.RawSHA256[:16] {
				t.Errorf("doc key %s of a record without id; want %s and the sha's first 16 hex", q.DocKey, stage.NoIDPrefix)
			}
			if len(m.Warnings) == 0 || !strings.Contains(strings.Join(m.Warnings, "\n"), "MALFORMED") {
				t.Errorf("warnings %q; want the quarantined record named", m.Warnings)
			}
		})
	}
}

// TestQuarantinedRecordInTheOverlapIsQuarantinedOnce: the next window's
// overlap sees the same malformed version again and leaves it to the window
// that quarantined it.
func TestQuarantinedRecordInTheOverlapIsQuarantinedOnce(t *testing.T) {
	f := newFake()
	f.account("a1", "A-1", "ERP-1")
	f.payment("pay9", "a1", "USD", at(22, 55, 0), "1")["amount"] = num("0.0000000001")
	st := newStage(t)
	m1 := mustRun(t, f, st, w1, Options{})
	m2 := mustRun(t, f, st, w2, Options{})
	if n1, n2 := len(quarantinedRows(t, st, m1)), len(quarantinedRows(t, st, m2)); n1 != 1 || n2 != 0 {
		t.Fatalf("quarantined %d in %s and %d in %s; want 1 and 0", n1, w1.ID(), n2, w2.ID())
	}
}

// TestQuarantinedJSONIsBounded: a huge malformed record keeps a bounded prefix
// of its JSON, cut at a character, with its full size and checksum.
func TestQuarantinedJSONIsBounded(t *testing.T) {
	f := newFake()
	f.account("a1", "A-1", "ERP-1")
	p := f.payment("pay9", "a1", "USD", at(22, 10, 0), "1")
	p["amount"] = "x"
	p["referenceId"] = strings.Repeat("€", MaxQuarantinedJSON) // 3 bytes each
	st := newStage(t)
	rows := quarantinedRows(t, st, mustRun(t, f, st, w1, Options{}))
	if len(rows) != 1 {
		t.Fatalf("%d quarantined; want 1", len(rows))
	}
	q := rows[0]
	if !q.RawTruncated || len(q.RawJSON) > MaxQuarantinedJSON || len(q.RawJSON) < MaxQuarantinedJSON-3 || q.RawSize <= int64(MaxQuarantinedJSON) {
		t.Fatalf("kept %d of %d bytes (truncated %v); want at most %d", len(q.RawJSON), q.RawSize, q.RawTruncated, MaxQuarantinedJSON)
	}
	if !strings.HasSuffix(q.RawJSON, "€") {
		t.Errorf("raw JSON cut inside a character: ends %q", q.RawJSON[len(q.RawJSON)-4:])
	}
}

func quarantinedRows(t *testing.T, st *stage.Stage, m *stage.ExtractManifest) []stage.QuarantineRow {
	t.Helper()
	var out []stage.QuarantineRow
	for _, f := range m.Tables[stage.QuarantineTable].Files {
		out = append(out, readRows[stage.QuarantineRow](t, st, f.Key)...)
	}
	if int64(len(out)) != m.Tables[stage.QuarantineTable].Rows {
		t.Fatalf("quarantine files hold %d rows; the manifest says %d", len(out), m.Tables[stage.QuarantineTable].Rows)
	}
	return out
}

// tableDocType is the document type whose header table is table.
func tableDocType(table string) string {
	dt, _ := stage.DocTypeOfTable(table)
	return string(dt)
}

// TestMalformedApplicationIsQuarantined: an application whose amount has
// more places than DECIMAL(38,9) is quarantined under its kind, like a
// document, and the window commits.
func TestMalformedApplicationIsQuarantined(t *testing.T) {
	f := newFake()
	f.account("a1", "A-1", "ERP-1")
	f.application("payment-applications", "pa-bad", "a1", at(22, 5, 0), map[string]any{"paymentId": "p1", "invoiceId": "i1",
		"applyAmount": num("1.0000000001"), "paymentApplicationStatus": "Processed"})
	f.application("payment-applications", "pa-ok", "a1", at(22, 6, 0), map[string]any{"paymentId": "p1", "invoiceId": "i1",
		"applyAmount": num("1"), "paymentApplicationStatus": "Processed"})
	st := newStage(t)
	m := mustRun(t, f, st, w1, Options{})
	var q []stage.QuarantineRow
	for _, f := range m.Tables[stage.QuarantineTable].Files {
		data, err := st.Read(context.Background(), f.Key)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := parquet.Read[stage.QuarantineRow](bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		q = append(q, rows...)
	}
	if len(q) != 1 || q[0].DocType != string(stage.PaymentApplication) || q[0].Entity != "payment_applications" || q[0].DocKey != "pa-bad" ||
		q[0].AmountText == nil || *q[0].AmountText != "1.0000000001" {
		t.Fatalf("quarantine %+v; want pa-bad as a payment application with its amount as sent", q)
	}
	if rows := tableRows[stage.PaymentApplicationRow](t, st, m, "payment_applications"); len(rows) != 1 || rows[0].ID != "pa-ok" {
		t.Errorf("payment applications %+v; want pa-ok only", rows)
	}
	if accts := tableRows[stage.AccountRow](t, st, m, stage.AccountsTable); len(accts) != 1 || accts[0].ID != "a1" {
		t.Errorf("accounts %+v", accts)
	}
}
