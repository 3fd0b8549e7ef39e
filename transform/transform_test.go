package transform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/s3test"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	mapping "github.com/zuora-erp-etl/zuora-erp-etl/sql"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/transform/golden")

const fixtures = "../testdata/transform"

var (
	testWindow  = mustWindow("20261125T220000Z-20261125T230000Z")
	otherWindow = mustWindow("20261125T210000Z-20261125T220000Z")
)

func mustWindow(id string) stage.Window {
	w, err := stage.ParseWindowID(id)
	if err != nil {
		panic(err)
	}
	return w
}

// fixtureStage returns a file:// stage holding the Parquet fixtures as the
// committed extract of testWindow, a ledger part of otherWindow and one of
// testWindow itself.
func fixtureStage(t testing.TB) *stage.Stage {
	t.Helper()
	ctx := context.Background()
	st, err := stage.Open(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	em := stage.ExtractManifest{
		Window: testWindow.ID(), Start: testWindow.Start, End: testWindow.End, QueryFrom: testWindow.Start,
		RunID: "extract-test", Tables: map[string]stage.TableSnapshot{},
	}
	for _, table := range stage.Tables() {
		info := putFile(t, st, stage.RawKey(table, testWindow, 0), filepath.Join(fixtures, "raw", table+".parquet"))
		em.Tables[table] = stage.TableSnapshot{Files: []stage.ObjectInfo{info}}
	}
	if err := st.WriteManifest(ctx, testWindow, em); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 22, 59, 0, 0, time.UTC)
	putFile(t, st, stage.LedgerKey(otherWindow, at, "run-0", 1), filepath.Join(fixtures, "ledger_other.parquet"))
	putFile(t, st, stage.LedgerKey(testWindow, at.Add(time.Hour), "run-1", 1), filepath.Join(fixtures, "ledger_same.parquet"))
	return st
}

func putFile(t testing.TB, st *stage.Stage, key, path string) stage.ObjectInfo {
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

func runTransform(t *testing.T, st *stage.Stage, opts Options) *stage.TransformManifest {
	t.Helper()
	if opts.RunID == "" {
		opts.RunID = "run-test"
	}
	opts.Logger = slog.New(slog.DiscardHandler)
	m, err := Run(context.Background(), st, testWindow, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return m
}

func read(t *testing.T, st *stage.Stage, key string) []byte {
	t.Helper()
	data, err := st.Read(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// parquetNDJSON renders a Parquet output of the stage as one JSON object per row.
func parquetNDJSON(t *testing.T, st *stage.Stage, info stage.ObjectInfo) []byte {
	t.Helper()
	ctx := context.Background()
	path, err := st.LocalPath(ctx, info.Key, info.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	db, err := warehouse.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var buf bytes.Buffer
	if err := db.Query(ctx, "SELECT * FROM read_parquet("+warehouse.Literal(path)+", hive_partitioning = false)", &buf, "json"); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(fixtures, "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./transform -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test ./transform -update after checking the change)\ngot:\n%s", name, got)
	}
}

// doc is one NDJSON line, decoded strictly: the envelope is the contract.
type doc = stage.Envelope

type body struct {
	ZuoraID  string      `json:"zuora_id"`
	Number   string      `json:"number"`
	Customer string      `json:"customer"`
	Currency string      `json:"currency"`
	Date     string      `json:"date"`
	Amount   json.Number `json:"amount"`
	// InvoiceZuoraID is a memo's invoiceId, SourceType a refund's (issue 12).
	InvoiceZuoraID string `json:"invoice_zuora_id"`
	SourceType     string `json:"source_type"`
	Items          []struct {
		ZuoraID     string      `json:"zuora_id"`
		Description string      `json:"description"`
		Quantity    json.Number `json:"quantity"`
		UnitPrice   json.Number `json:"unit_price"`
		Amount      json.Number `json:"amount"`
		TaxAmount   json.Number `json:"tax_amount"`
	} `json:"items"`
}

// decodeDocs parses the documents NDJSON strictly: numbers keep their text.
func decodeDocs(t *testing.T, data []byte) (map[string]doc, map[string]body) {
	t.Helper()
	docs, bodies := map[string]doc{}, map[string]body{}
	for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		dec.DisallowUnknownFields()
		var d doc
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, line)
		}
		var wrapper map[string]json.RawMessage
		if err := json.Unmarshal(d.Payload, &wrapper); err != nil || len(wrapper) != 1 || wrapper[d.DocType] == nil {
			t.Fatalf("line %d: payload is not {%q: {...}}: %s", i+1, d.DocType, d.Payload)
		}
		pdec := json.NewDecoder(bytes.NewReader(wrapper[d.DocType]))
		pdec.UseNumber()
		pdec.DisallowUnknownFields()
		var b body
		if err := pdec.Decode(&b); err != nil {
			t.Fatalf("line %d payload: %v", i+1, err)
		}
		docs[d.ZuoraID], bodies[d.ZuoraID] = d, b
	}
	return docs, bodies
}

// reasons reads a rejects or skipped output as zuora id -> reason code.
func reasons(t *testing.T, data []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r struct {
			ZuoraID    string `json:"zuora_id"`
			ReasonCode string `json:"reason_code"`
			Message    string `json:"message"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if r.Message == "" {
			t.Errorf("%s %s has no message", r.ZuoraID, r.ReasonCode)
		}
		out[r.ZuoraID] = r.ReasonCode
	}
	return out
}

func TestGolden(t *testing.T) {
	st := fixtureStage(t)
	m := runTransform(t, st, Options{CodeVersion: "test"})

	docsData := read(t, st, m.Documents.Key)
	rejectsData := parquetNDJSON(t, st, m.Rejects)
	skippedData := parquetNDJSON(t, st, m.Skipped)
	documentsPq := parquetNDJSON(t, st, m.DocumentsPq)
	totals, err := json.MarshalIndent(m.Totals, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "documents.ndjson", docsData)
	golden(t, "documents_parquet.ndjson", documentsPq)
	golden(t, "rejects.ndjson", rejectsData)
	golden(t, "skipped.ndjson", skippedData)
	golden(t, "totals.json", append(totals, '\n'))

	docs, bodies := decodeDocs(t, docsData)
	types := map[string]bool{}
	for _, d := range docs {
		types[d.DocType] = true
		if d.IdempotencyKey != d.ZuoraID {
			t.Errorf("%s: idempotency key %q, want the Zuora id", d.ZuoraID, d.IdempotencyKey)
		}
	}
	for _, dt := range stage.Documents() {
		if !types[string(dt)] {
			t.Errorf("no ready %s document", dt)
		}
	}

	checks := []struct {
		name string
		got  string
		want string
	}{
		{"0.1 + 0.2 invoice amount", string(bodies["inv-decimals"].Amount), "0.3"},
		{"items sorted by service date", bodies["inv-decimals"].Items[0].ZuoraID + "," + bodies["inv-decimals"].Items[1].ZuoraID, "ii-dec-2,ii-dec-1"},
		{"item with 9 decimals", string(bodies["inv-decimals"].Items[0].UnitPrice), "0.066666667"},
		{"trailing zeros trimmed", string(bodies["pay-eur"].Amount), "0.3"},
		{"amount with 26 digits", string(docs["inv-big"].Amount), "12345678901234567.123456789"},
		{"payload amount with 26 digits", string(bodies["inv-big"].Amount), "12345678901234567.123456789"},
		{"header with tax", string(bodies["inv-usd"].Amount), "1234.5"},
		{"tax amount", string(bodies["inv-usd"].Items[0].TaxAmount), "234.5"},
		{"customer is the ERP account", bodies["inv-usd"].Customer, "ERP-1001"},
		{"date", bodies["inv-usd"].Date, "2026-11-25"},
		{"endpoint", docs["cm-usd"].Endpoint, "/api/credit-memos"},
		{"memo item amount without tax", string(bodies["cm-usd"].Items[0].Amount), "60"},
		{"unicode customer", docs["inv-unicode"].Customer, "ERP-日本-3"},
		{"unicode description", bodies["inv-unicode"].Items[0].Description, "Plan «Ünïcödé» 日本語 \"quoted\" <b>&amp;</b> \\ tab\tend"},
		{"latest invoice version", string(bodies["inv-version"].Amount), "20"},
		{"latest item version", bodies["inv-version"].Items[0].Description, "New version"},
		{"negative invoice allowed", string(docs["inv-negative"].Amount), "-50"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
	if n := len(bodies["inv-250"].Items); n != 250 {
		t.Errorf("250-item invoice has %d items", n)
	}
	if n := len(bodies["inv-version"].Items); n != 1 {
		t.Errorf("invoice with two item versions has %d items, want 1", n)
	}
	if n := len(bodies["pay-usd"].Items); n != 0 {
		t.Errorf("payment has %d items", n)
	}
	if !bytes.Contains(docsData, []byte(`"description":"Plan «Ünïcödé» 日本語`)) {
		t.Errorf("unicode is escaped in the NDJSON, want UTF-8")
	}

	wantRejects := map[string]string{
		"inv-no-erp": "NO_ERP_ACCOUNT", "inv-currency": "UNMAPPED_CODE", "inv-mismatch": "ITEMS_MISMATCH",
		"inv-missing": "MISSING_FIELD", "pay-negative": "NEGATIVE_AMOUNT", "pay-type": "UNMAPPED_CODE",
		"ref-no-date": "MISSING_FIELD", "cm-negative": "NEGATIVE_AMOUNT",
	}
	assertReasons(t, "rejects", reasons(t, rejectsData), wantRejects)
	wantSkipped := map[string]string{
		"inv-transfer": "ALREADY_TRANSFERRED", "inv-posted": "ALREADY_POSTED", "dm-posted": "ALREADY_POSTED",
	}
	assertReasons(t, "skipped", reasons(t, skippedData), wantSkipped)
	for _, id := range []string{"pay-retry", "ref-same"} {
		if _, ok := docs[id]; !ok {
			t.Errorf("%s is not ready (a transient post or this window's own ledger must not skip it)", id)
		}
	}
	for id := range wantRejects {
		if _, ok := docs[id]; ok {
			t.Errorf("rejected %s is also ready", id)
		}
	}

	currencies := map[string]bool{}
	for _, r := range m.Totals {
		if !r.Balanced() {
			t.Errorf("unbalanced totals: %+v", r)
		}
		if r.DocType == "invoice" {
			currencies[r.Currency] = true
		}
	}
	for _, c := range []string{"USD", "EUR", "JPY", "GBP", "CAD", "XTS"} {
		if !currencies[c] {
			t.Errorf("no invoice totals for %s", c)
		}
	}
	if m.SQLDigest == "" || m.Window != testWindow.ID() || m.RunID != "run-test" || m.CodeVersion != "test" {
		t.Errorf("manifest header: %+v", m)
	}
	committed, found, err := st.ReadTransform(context.Background(), testWindow)
	if err != nil || !found {
		t.Fatalf("transform manifest not committed: found=%v err=%v", found, err)
	}
	if committed.Documents != m.Documents || committed.DocumentsPq != m.DocumentsPq {
		t.Errorf("committed manifest %+v differs from the returned one %+v", committed, m)
	}
}

func assertReasons(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for id, code := range want {
		if got[id] != code {
			t.Errorf("%s: %s has %q, want %q", what, id, got[id], code)
		}
	}
	if len(got) != len(want) {
		var ids []string
		for id := range got {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		t.Errorf("%s: got %d documents %v, want %d", what, len(got), ids, len(want))
	}
}

// sqlDir writes a mapping folder with the given files.
func sqlDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func embedded(t *testing.T, name string) string {
	t.Helper()
	data, err := fs.ReadFile(mapping.Files, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestSQLDirOverridesMapping(t *testing.T) {
	base := fixtureStage(t)
	baseManifest := runTransform(t, base, Options{})
	_, baseBodies := decodeDocs(t, read(t, base, baseManifest.Documents.Key))

	invoiceSQL := embedded(t, "invoice.sql")
	edited := strings.Replace(invoiceSQL, "j_field('description', j_str(charge_name))", "j_field('description', j_str(upper(charge_name)))", 1)
	if edited == invoiceSQL {
		t.Fatal("invoice.sql no longer maps description from charge_name; update the test")
	}
	currencies := strings.Replace(embedded(t, "currencies.csv"), "GBP,Pound sterling\n", "", 1)
	dir := sqlDir(t, map[string]string{"invoice.sql": edited, "currencies.csv": currencies})

	st := fixtureStage(t)
	m := runTransform(t, st, Options{SQLDir: dir})
	docs, bodies := decodeDocs(t, read(t, st, m.Documents.Key))
	if got, want := bodies["inv-usd"].Items[0].Description, "GOLD PLAN"; got != want {
		t.Errorf("edited invoice.sql: description %q, want %q (was %q)", got, want, baseBodies["inv-usd"].Items[0].Description)
	}
	if _, ok := docs["inv-250"]; ok {
		t.Error("GBP invoice is ready although currencies.csv no longer lists GBP")
	}
	if got := reasons(t, parquetNDJSON(t, st, m.Rejects))["inv-250"]; got != "UNMAPPED_CODE" {
		t.Errorf("GBP invoice reject reason %q, want UNMAPPED_CODE", got)
	}
	if _, ok := docs["pay-usd"]; !ok {
		t.Error("payment.sql, not overridden, no longer maps pay-usd")
	}
	if m.SQLDigest == baseManifest.SQLDigest {
		t.Error("SQL digest did not change with the mapping")
	}
}

func TestDeterministic(t *testing.T) {
	a, b := fixtureStage(t), fixtureStage(t)
	ma := runTransform(t, a, Options{RunID: "run-a"})
	mb := runTransform(t, b, Options{RunID: "run-b"})
	pairs := []struct {
		name   string
		ia, ib stage.ObjectInfo
	}{
		{"documents ndjson", ma.Documents, mb.Documents},
		{"documents parquet", ma.DocumentsPq, mb.DocumentsPq},
		{"rejects", ma.Rejects, mb.Rejects},
		{"skipped", ma.Skipped, mb.Skipped},
	}
	for _, p := range pairs {
		if p.ia != p.ib {
			t.Errorf("%s: %+v then %+v", p.name, p.ia, p.ib)
		}
		if !bytes.Equal(read(t, a, p.ia.Key), read(t, b, p.ib.Key)) {
			t.Errorf("%s: outputs differ", p.name)
		}
	}
	if ma.SQLDigest != mb.SQLDigest {
		t.Errorf("SQL digest %s then %s", ma.SQLDigest, mb.SQLDigest)
	}
	// Forcing a re-run on the same stage rewrites the same bytes.
	mf := runTransform(t, a, Options{RunID: "run-c", Force: true})
	if mf.Documents != ma.Documents || mf.DocumentsPq != ma.DocumentsPq || mf.RunID != "run-c" {
		t.Errorf("forced re-run: %+v, first run %+v", mf, ma)
	}
}

func TestReconciliationFailure(t *testing.T) {
	wrapped := "SELECT * FROM (\n" + embedded(t, "payment.sql") + "\n)"
	tests := []struct {
		name       string
		sql        string
		unbalanced bool
		documents  []string
	}{
		{"drops a row", wrapped + " WHERE zuora_id <> 'pay-usd'", true, []string{"payment pay-usd x0"}},
		{"duplicates a row", wrapped + " UNION ALL " + wrapped + " WHERE zuora_id = 'pay-usd'", true, []string{"payment pay-usd x2"}},
		{"changes an amount", "SELECT * REPLACE (CASE WHEN zuora_id = 'pay-usd' THEN amount + 0.01 ELSE amount END AS amount) FROM (\n" + embedded(t, "payment.sql") + "\n)", true, nil},
		{"swaps a document", wrapped + " WHERE zuora_id <> 'pay-usd' UNION ALL SELECT 'payment', 'pay-ghost', 'P-X', 'pay-ghost', 'ERP-1001', 'USD', 1234.5, DATE '2026-11-25', '/api/payments', '{}', NULL, NULL",
			false, []string{"payment pay-ghost x1 (not extracted)", "payment pay-usd x0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := fixtureStage(t)
			_, err := Run(context.Background(), st, testWindow, Options{SQLDir: sqlDir(t, map[string]string{"payment.sql": tc.sql})})
			var rerr *ReconciliationError
			if !errors.As(err, &rerr) {
				t.Fatalf("Run: %v, want a ReconciliationError", err)
			}
			if tc.unbalanced != (len(rerr.Unbalanced) > 0) {
				t.Errorf("unbalanced totals %+v, want some: %v", rerr.Unbalanced, tc.unbalanced)
			}
			for _, r := range rerr.Unbalanced {
				if r.DocType != "payment" || r.Currency != "USD" {
					t.Errorf("unbalanced %s %s, only payment USD was touched", r.DocType, r.Currency)
				}
			}
			if got := strings.Join(rerr.Documents, ", "); got != strings.Join(tc.documents, ", ") {
				t.Errorf("documents %q, want %q", got, strings.Join(tc.documents, ", "))
			}
			if !strings.Contains(err.Error(), "reconciliation failed") {
				t.Errorf("error %q does not say reconciliation failed", err)
			}
			_, found, err := st.ReadTransform(context.Background(), testWindow)
			if err != nil || found {
				t.Errorf("transform manifest written after a failed reconciliation (found=%v, err=%v)", found, err)
			}
		})
	}
}

func TestCommittedWindowIsNotRedone(t *testing.T) {
	st := fixtureStage(t)
	first := runTransform(t, st, Options{RunID: "run-1"})
	// A mapping that would fail proves the second call does not run it.
	broken := sqlDir(t, map[string]string{"invoice.sql": "SELECT nonsense"})
	again := runTransform(t, st, Options{RunID: "run-2", SQLDir: broken})
	if again.RunID != "run-1" || !again.CommittedAt.Equal(first.CommittedAt) {
		t.Errorf("second run returned %+v, want the committed manifest of run-1", again)
	}
	_, err := Run(context.Background(), st, testWindow, Options{RunID: "run-3", SQLDir: broken, Force: true})
	if err == nil || !strings.Contains(err.Error(), "invoice.sql") {
		t.Errorf("forced run with a broken invoice.sql: %v, want an error naming the file", err)
	}
	// A forced run rewrites the outputs in place: once it failed, no manifest
	// may still describe what it may have overwritten.
	_, found, err := st.ReadTransform(context.Background(), testWindow)
	if err != nil || found {
		t.Errorf("a failed forced run left the old transform manifest (found=%v, err=%v)", found, err)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	empty, err := stage.Open(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	if _, err := Run(ctx, empty, testWindow, Options{}); err == nil || !strings.Contains(err.Error(), "no committed extract") {
		t.Errorf("window without extract: %v", err)
	}
	st := fixtureStage(t)
	if _, err := Run(ctx, st, testWindow, Options{SQLDir: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("missing SQLDir: no error")
	}
	noCol := sqlDir(t, map[string]string{"refund.sql": "SELECT 'refund' AS doc_type, id AS zuora_id FROM refunds"})
	if _, err := Run(ctx, st, testWindow, Options{SQLDir: noCol}); err == nil || !strings.Contains(err.Error(), "classify") {
		t.Errorf("mapping without the required columns: %v", err)
	}
}

// TestMacros checks the JSON building blocks of sql/_macros.sql.
func TestMacros(t *testing.T) {
	ctx := context.Background()
	db, err := warehouse.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Exec(ctx, embedded(t, "_macros.sql")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr string
		want string
	}{
		{"dec_text(CAST('1.1' AS DECIMAL(38, 9)))", "1.1"},
		{"dec_text(CAST('10' AS DECIMAL(38, 9)))", "10"},
		{"dec_text(CAST('100.000000000' AS DECIMAL(38, 9)))", "100"},
		{"dec_text(CAST('0' AS DECIMAL(38, 9)))", "0"},
		{"dec_text(CAST('-0.5' AS DECIMAL(38, 9)))", "-0.5"},
		{"dec_text(CAST('0.000000001' AS DECIMAL(38, 9)))", "0.000000001"},
		{"dec_text(CAST('0.1' AS DECIMAL(38, 9)) + CAST('0.2' AS DECIMAL(38, 9)))", "0.3"},
		{"dec_text(CAST('12345678901234567890.123456789' AS DECIMAL(38, 9)))", "12345678901234567890.123456789"},
		// either side of a billion, where the rendering changes width
		{"dec_text(CAST('999999999.999999999' AS DECIMAL(38, 9)))", "999999999.999999999"},
		{"dec_text(CAST('-999999999.999999999' AS DECIMAL(38, 9)))", "-999999999.999999999"},
		{"dec_text(CAST('1000000000' AS DECIMAL(38, 9)))", "1000000000"},
		{"dec_text(CAST('-1000000000.000000001' AS DECIMAL(38, 9)))", "-1000000000.000000001"},
		{"dec_text(CAST('-99999999999999999999999999999.999999999' AS DECIMAL(38, 9)))", "-99999999999999999999999999999.999999999"},
		{"dec_text(CAST('1010.0101' AS DECIMAL(38, 9)))", "1010.0101"},
		{"dec_text(-120)", "-120"},
		{"dec_text(CAST('2.50' AS DECIMAL(10, 2)))", "2.5"},
		{"dec_text(NULL) IS NULL", "true"},
		{"j_num(NULL)", "null"},
		{"j_str(NULL)", "null"},
		{`j_str('a "b" \ ü')`, `"a \"b\" \\ ü"`},
		{"j_date(DATE '2026-01-02')", `"2026-01-02"`},
		{"j_object([j_field('a', j_num(CAST('2.50' AS DECIMAL(38, 9)))), j_field('b', j_str('x'))])", `{"a":2.5,"b":"x"}`},
		{"quoted(NULL)", "NULL"},
		{"quoted('EUR')", "'EUR'"},
	}
	for _, tc := range tests {
		rows, err := db.Strings(ctx, "SELECT "+tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if got := rows[0][0]; got != tc.want {
			t.Errorf("%s = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// TestRemoteStage runs the transform on mem:// and s3:// stages, where DuckDB
// reads verified local copies, and expects the bytes of a file:// run.
func TestRemoteStage(t *testing.T) {
	ctx := context.Background()
	local := fixtureStage(t)
	want := runTransform(t, local, Options{})
	remotes := map[string]func(t *testing.T) string{
		"mem": func(t *testing.T) string { return "mem://" },
		"s3": func(t *testing.T) string {
			return s3test.StageURL(t)
		},
	}
	for name, url := range remotes {
		t.Run(name, func(t *testing.T) {
			remote, err := stage.Open(ctx, url(t))
			if err != nil {
				t.Fatal(err)
			}
			defer remote.Close()
			remote.SetCacheDir(t.TempDir())
			objs, err := local.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if strings.HasPrefix(o.Key, "ready/") || strings.HasSuffix(o.Key, "transform.json") {
					continue
				}
				if _, err := remote.WriteBytes(ctx, o.Key, read(t, local, o.Key)); err != nil {
					t.Fatal(err)
				}
			}
			got := runTransform(t, remote, Options{})
			if got.Documents != want.Documents || got.DocumentsPq != want.DocumentsPq || got.Rejects != want.Rejects || got.Skipped != want.Skipped {
				t.Errorf("%s outputs %+v, file:// outputs %+v", name, got, want)
			}
			if len(reasons(t, parquetNDJSON(t, remote, got.Skipped))) != 3 {
				t.Errorf("%s: the ledger of the other window was not read", name)
			}
		})
	}
}

func BenchmarkRun(b *testing.B) {
	st := fixtureStage(b)
	opts := Options{Force: true, Logger: slog.New(slog.DiscardHandler)}
	for b.Loop() {
		if _, err := Run(context.Background(), st, testWindow, opts); err != nil {
			b.Fatal(err)
		}
	}
}
