package transform

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// The AR scenarios build a stage window by window as the pipeline would:
// raw rows as Parquet (the stage's row types, parquet-go), an extract
// manifest, the real transform (DuckDB), and a ledger part that confirms what
// the ERP took, as a load would write it.

// hourWindow is the hour starting at h:00 on 2026-11-25.
func hourWindow(h int) stage.Window {
	start := time.Date(2026, 11, 25, h, 0, 0, 0, time.UTC)
	return stage.Window{Start: start, End: start.Add(time.Hour)}
}

// at is 2026-11-25 h:m:s UTC.
func at(h, m, s int) time.Time { return time.Date(2026, 11, 25, h, m, s, 0, time.UTC) }

// snapshot is the raw rows of one window, per table.
type snapshot map[string]any

func put[T any](s snapshot, table string, rows ...T) {
	old, _ := s[table].([]T)
	s[table] = append(old, rows...)
}

// commitWindow writes the snapshot's tables as w's parts and its extract manifest.
func commitWindow(t testing.TB, st *stage.Stage, w stage.Window, s snapshot) {
	t.Helper()
	m := stage.ExtractManifest{Window: w.ID(), Start: w.Start, End: w.End, QueryFrom: w.Start.Add(-10 * time.Minute),
		RunID: "ar-test", CommittedAt: time.Now().UTC(), Tables: map[string]stage.TableSnapshot{}}
	write := func(table string, data []byte) {
		info, err := st.WriteBytes(context.Background(), stage.RawKey(table, w, 0), data)
		if err != nil {
			t.Fatal(err)
		}
		m.Tables[table] = stage.TableSnapshot{Files: []stage.ObjectInfo{info}}
	}
	for table, rows := range s {
		var buf bytes.Buffer
		var err error
		switch r := rows.(type) {
		case []stage.InvoiceRow:
			err = parquet.Write(&buf, r)
		case []stage.InvoiceItemRow:
			err = parquet.Write(&buf, r)
		case []stage.PaymentRow:
			err = parquet.Write(&buf, r)
		case []stage.RefundRow:
			err = parquet.Write(&buf, r)
		case []stage.CreditMemoRow:
			err = parquet.Write(&buf, r)
		case []stage.CreditMemoItemRow:
			err = parquet.Write(&buf, r)
		case []stage.PaymentApplicationRow:
			err = parquet.Write(&buf, r)
		case []stage.CreditMemoApplicationRow:
			err = parquet.Write(&buf, r)
		case []stage.RefundApplicationRow:
			err = parquet.Write(&buf, r)
		case []stage.AccountRow:
			err = parquet.Write(&buf, r)
		default:
			t.Fatalf("table %s: rows of type %T", table, rows)
		}
		if err != nil {
			t.Fatal(err)
		}
		write(table, buf.Bytes())
	}
	if err := st.WriteManifest(context.Background(), w, &m); err != nil {
		t.Fatal(err)
	}
}

// transformWindow runs the real transform of w (forced) and returns its lines, rejects and skips.
func transformWindow(t testing.TB, st *stage.Stage, w stage.Window, opts Options) outputs {
	t.Helper()
	opts.Force, opts.RunID = true, "run-"+w.ID()
	opts.Logger = slog.New(slog.DiscardHandler)
	m, err := Run(context.Background(), st, w, opts)
	if err != nil {
		t.Fatalf("transform %s: %v", w.ID(), err)
	}
	return readOutputs(t, st, m)
}

// outputs are a transform's results by (doc_type, zuora_id).
type outputs struct {
	manifest *stage.TransformManifest
	ndjson   []byte
	lines    map[string]stage.Envelope
	order    []string
	rejects  map[string]outcome
	skipped  map[string]outcome
}

type outcome struct {
	Amount     json.Number `json:"amount"`
	Currency   string      `json:"currency"`
	Customer   string      `json:"customer"`
	ReasonCode string      `json:"reason_code"`
	Message    string      `json:"message"`
}

func lineKey(docType, id string) string { return docType + " " + id }

func readOutputs(t testing.TB, st *stage.Stage, m *stage.TransformManifest) outputs {
	t.Helper()
	out := outputs{manifest: m, lines: map[string]stage.Envelope{}, rejects: map[string]outcome{}, skipped: map[string]outcome{}}
	out.ndjson = readKey(t, st, m.Documents.Key)
	sc := bufio.NewScanner(bytes.NewReader(out.ndjson))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		dec.DisallowUnknownFields()
		var e stage.Envelope
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("line %s: %v", sc.Bytes(), err)
		}
		k := lineKey(e.DocType, e.ZuoraID)
		if _, dup := out.lines[k]; dup {
			t.Fatalf("two lines for %s", k)
		}
		out.lines[k] = e
		out.order = append(out.order, k)
	}
	for info, into := range map[stage.ObjectInfo]map[string]outcome{m.Rejects: out.rejects, m.Skipped: out.skipped} {
		for _, row := range readParquetRows[stage.OutcomeRow](t, st, info.Key) {
			o := outcome{ReasonCode: deref(row.ReasonCode), Message: deref(row.Message), Currency: deref(row.Currency), Customer: deref(row.Customer)}
			if row.Amount != nil {
				o.Amount = json.Number(money.FromFixed(*row.Amount).String())
			}
			into[lineKey(deref(row.DocType), deref(row.ZuoraID))] = o
		}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func readKey(t testing.TB, st *stage.Stage, key string) []byte {
	t.Helper()
	data, err := st.Read(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func readParquetRows[T any](t testing.TB, st *stage.Stage, key string) []T {
	t.Helper()
	data := readKey(t, st, key)
	rows, err := parquet.Read[T](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return rows
}

// confirm writes a ledger part of w saying the ERP created every line of
// out, as a load that posted them all would.
func confirm(t testing.TB, st *stage.Stage, w stage.Window, out outputs, when time.Time) {
	t.Helper()
	var rows []stage.LedgerRow
	for i, k := range out.order {
		e := out.lines[k]
		amount, err := money.Parse(string(e.Amount))
		if err != nil {
			t.Fatal(err)
		}
		f, err := money.ToFixed(amount)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(e.Payload)
		at := when.Add(time.Duration(i) * time.Millisecond)
		rows = append(rows, stage.LedgerRow{RunID: "load-" + w.ID(), DocType: e.DocType, ZuoraID: e.ZuoraID, IdempotencyKey: e.IdempotencyKey,
			Action: stage.ActionPost, Outcome: stage.OutcomeCreated, HTTPStatus: 201, ERPID: fmt.Sprintf("erp-%d", i), Attempts: 1,
			Currency: e.Currency, Amount: f, PayloadSHA256: hex.EncodeToString(sum[:]), StartedAt: at, FinishedAt: at})
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	if _, err := st.WriteBytes(context.Background(), stage.LedgerKey(w, when, "load-"+w.ID(), 1), buf.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// arStage is a stage whose history starts at 20:00.
func arStage(t testing.TB) *stage.Stage {
	t.Helper()
	st, err := stage.Open(context.Background(), "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetStart(context.Background(), stage.Start{Start: at(20, 0, 0), SetAt: at(20, 0, 0), RunID: "ar-test"}); err != nil {
		t.Fatal(err)
	}
	return st
}

// Rows of the scenarios: one account, ERP customer ERP-1, in USD.

func account(id string, erp *string, updated time.Time) stage.AccountRow {
	return stage.AccountRow{ID: id, AccountNumber: ptr("A-" + id), ERPAccountID: erp, UpdatedDate: &updated, CreatedDate: ptr(at(19, 0, 0))}
}

func invoice(t *testing.T, id, status, amount, paid string, updated time.Time) (stage.InvoiceRow, stage.InvoiceItemRow) {
	a := decimal.RequireFromString(amount)
	p := decimal.RequireFromString(paid)
	inv := stage.InvoiceRow{ID: id, CreatedDate: ptr(at(20, 0, 1)), UpdatedDate: &updated, UpdatedDateRaw: ptr(updated.Format(time.RFC3339)),
		AccountID: ptr("acc"), AccountNumber: ptr("A-acc"), ERPAccountID: ptr("ERP-1"), InvoiceNumber: ptr("INV-" + id),
		InvoiceDate: days("2026-11-25"), DueDate: days("2026-12-25"), Status: ptr(status), Currency: ptr("USD"),
		Amount: fixed(t, amount), AmountWithoutTax: fixed(t, amount), TaxAmount: fixed(t, "0"),
		Balance: fixed(t, a.Sub(p).String()), PaymentAmount: fixed(t, paid), CreditMemoAmount: fixed(t, "0"), RefundAmount: fixed(t, "0"),
		Reversed: ptr(false), TransferredToAccounting: ptr("No"), ItemCount: ptr(int64(1))}
	item := stage.InvoiceItemRow{ID: id + "-item", CreatedDate: ptr(at(20, 0, 1)), UpdatedDate: &updated, InvoiceID: ptr(id), AccountID: ptr("acc"),
		ChargeName: ptr("Plan"), Quantity: fixed(t, "1"), UnitPrice: fixed(t, amount), ChargeAmount: fixed(t, amount), TaxAmount: fixed(t, "0"),
		ServiceStartDate: days("2026-11-01")}
	return inv, item
}

func payment(t *testing.T, id, status, amount, applied string, updated time.Time) stage.PaymentRow {
	a := decimal.RequireFromString(amount)
	return stage.PaymentRow{ID: id, CreatedDate: ptr(at(20, 0, 2)), UpdatedDate: &updated, UpdatedDateRaw: ptr(updated.Format(time.RFC3339)),
		AccountID: ptr("acc"), AccountNumber: ptr("A-acc"), ERPAccountID: ptr("ERP-1"), PaymentNumber: ptr("P-" + id),
		EffectiveDate: days("2026-11-25"), Amount: fixed(t, amount), AppliedAmount: fixed(t, applied),
		UnappliedAmount: fixed(t, a.Sub(decimal.RequireFromString(applied)).String()), RefundAmount: fixed(t, "0"),
		Currency: ptr("USD"), Status: ptr(status), Type: ptr("External"), TransferredToAccounting: ptr("No")}
}

func creditMemo(t *testing.T, id, status, amount, applied string, updated time.Time) (stage.CreditMemoRow, stage.CreditMemoItemRow) {
	a := decimal.RequireFromString(amount)
	cm := stage.CreditMemoRow{ID: id, CreatedDate: ptr(at(20, 0, 3)), UpdatedDate: &updated, UpdatedDateRaw: ptr(updated.Format(time.RFC3339)),
		AccountID: ptr("acc"), AccountNumber: ptr("A-acc"), ERPAccountID: ptr("ERP-1"), MemoNumber: ptr("CM-" + id),
		MemoDate: days("2026-11-25"), TotalAmount: fixed(t, amount), TotalAmountWithoutTax: fixed(t, amount), TaxAmount: fixed(t, "0"),
		AppliedAmount: fixed(t, applied), Balance: fixed(t, a.Sub(decimal.RequireFromString(applied)).String()), RefundAmount: fixed(t, "0"),
		Reversed: ptr(false), Currency: ptr("USD"), Status: ptr(status), SourceType: ptr("Standalone"),
		TransferredToAccounting: ptr("No"), ItemCount: ptr(int64(1))}
	item := stage.CreditMemoItemRow{ID: id + "-item", CreatedDate: ptr(at(20, 0, 3)), UpdatedDate: &updated, CreditMemoID: ptr(id),
		ChargeName: ptr("Credit"), Quantity: fixed(t, "1"), UnitPrice: fixed(t, amount), Amount: fixed(t, amount),
		AmountWithoutTax: fixed(t, amount), TaxAmount: fixed(t, "0")}
	return cm, item
}

// paymentApp is a payment application of amount (as sent) in group, to
// invoice target ("" for the credit balance), created and updated at created.
func paymentApp(t *testing.T, id, pay, target, amount, status, group string, created, updated time.Time) stage.PaymentApplicationRow {
	r := stage.PaymentApplicationRow{ID: id, CreatedDate: &created, UpdatedDate: &updated, UpdatedDateRaw: ptr(updated.Format(time.RFC3339)),
		ApplyAmount: fixed(t, amount), EffectiveDate: days("2026-11-25"), Status: ptr(status), AccountID: ptr("acc"),
		PaymentID: ptr(pay), ApplicationGroupID: ptr(group)}
	if target != "" {
		r.InvoiceID = ptr(target)
	}
	return r
}
