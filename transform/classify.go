package transform

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// The SQL in this file is the transform's own, not the user's mapping: it
// decides skips and accounts for every extracted document, so a mapping that
// drops, duplicates or alters a document cannot go unnoticed.

// latestSQL keeps the latest version of each id of a raw table of the window;
// of two rows with the same updated_date the one a re-check fetched last wins
// (it holds what Zuora holds now), then the content decides, so the choice
// never depends on file order. Only the ids staged more than once are ranked:
// rendering every row's content for the tie-break took most of the prepare.
// Its statements scan the window's file one at a time, each run on its own
// (DB.Exec releases what one freed before the next): DuckDB holds the
// metadata of every column chunk of the file for each scan of a statement,
// some 15MB a scan for the items of a month-end hour.
func latestSQL(table string) []string {
	t, raw, twice := warehouse.Ident(table), warehouse.Ident("raw_"+table), warehouse.Ident(table+"_twice")
	return []string{
		"CREATE TABLE " + twice + " AS SELECT id FROM " + raw + " WHERE id IS NOT NULL GROUP BY id HAVING count(*) > 1",
		"CREATE TABLE " + t + ` AS SELECT * EXCLUDE ("window") FROM ` + raw + " WHERE id IS NOT NULL AND id NOT IN (SELECT id FROM " + twice + ")",
		"INSERT INTO " + t + ` SELECT * EXCLUDE ("window") FROM ` + raw + " AS t WHERE id IS NULL OR id IN (SELECT id FROM " + twice + `)
QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_date DESC NULLS LAST, rechecked_at DESC NULLS LAST, CAST(to_json(t) AS VARCHAR) DESC) = 1`,
		"DROP TABLE " + twice,
	}
}

// ledgerMacros are the ledger's words as the transform's SQL reads them,
// written from stage's constants: confirmed(action, outcome) is true on a row
// that says the ERP holds the document.
var ledgerMacros = fmt.Sprintf(`CREATE OR REPLACE MACRO confirmed(action, outcome) AS action = %s AND outcome IN (%s, %s)`,
	warehouse.Literal(stage.ActionPost), warehouse.Literal(stage.OutcomeCreated), warehouse.Literal(stage.OutcomeDuplicate))

// outputOrder sorts documents, rejects and skipped: by doc type in load
// order, then number, then id.
var outputOrder = "array_position([" + typeList(stage.LoadOrder()) + "], doc_type), doc_type, number NULLS LAST, zuora_id"

// readyOrder sorts the ready lines as outputOrder, with the reversals of
// applications before those of documents (the load's order).
var readyOrder = "array_position([" + typeList(stage.LoadOrder()) + "], doc_type), doc_type, " +
	"array_position([" + typeList(append(stage.Applications(), stage.Documents()...)) + "], reverses_doc_type) NULLS FIRST, number NULLS LAST, zuora_id"

func typeList(types []stage.DocType) string {
	quoted := make([]string, len(types))
	for i, dt := range types {
		quoted[i] = warehouse.Literal(string(dt))
	}
	return strings.Join(quoted, ", ")
}

// ReconciliationError reports extracted documents that the outputs do not
// account for exactly once; the transform commits nothing when it happens.
type ReconciliationError struct {
	Unbalanced []stage.Reconciliation // doc types and currencies whose tallies differ
	Documents  []string               // documents found zero or several times, e.g. "invoice 8a8f… x0"
}

func (e *ReconciliationError) Error() string {
	var parts []string
	for _, r := range e.Unbalanced {
		parts = append(parts, fmt.Sprintf("%s %s extracted %d/%s but ready %d/%s + rejected %d/%s + skipped %d/%s",
			r.DocType, r.Currency, r.Extracted.Count, r.Extracted.Amount, r.Ready.Count, r.Ready.Amount,
			r.Rejected.Count, r.Rejected.Amount, r.Skipped.Count, r.Skipped.Amount))
	}
	if len(e.Documents) > 0 {
		parts = append(parts, "documents not accounted for exactly once: "+strings.Join(e.Documents, ", "))
	}
	return "reconciliation failed: " + strings.Join(parts, "; ")
}

// reconcile tallies extracted, ready, rejected and skipped documents per doc
// type and currency and checks that every extracted document appears exactly
// once in the outputs.
func reconcile(ctx context.Context, db *warehouse.DB) ([]stage.Reconciliation, error) {
	rows, err := db.Strings(ctx, `WITH t AS (
    SELECT doc_type, currency, 'extracted' AS kind, amount FROM extracted
    UNION ALL SELECT doc_type, currency, 'ready', amount FROM ready
    UNION ALL SELECT doc_type, currency, 'rejected', amount FROM rejects
    UNION ALL SELECT doc_type, currency, 'skipped', amount FROM skipped
)
SELECT doc_type, coalesce(currency, ''), kind, count(*), CAST(coalesce(sum(amount), 0) AS VARCHAR)
FROM t GROUP BY ALL ORDER BY ALL`)
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	byKey, keys, err := tallies(rows)
	if err != nil {
		return nil, err
	}
	out := make([]stage.Reconciliation, 0, len(keys))
	rerr := &ReconciliationError{}
	for _, k := range keys {
		rec := *byKey[k]
		out = append(out, rec)
		if !rec.Balanced() {
			rerr.Unbalanced = append(rerr.Unbalanced, rec)
		}
	}
	if rerr.Documents, err = unaccounted(ctx, db); err != nil {
		return nil, err
	}
	if len(rerr.Unbalanced) > 0 || len(rerr.Documents) > 0 {
		return nil, rerr
	}
	return out, nil
}

// tallies reads reconcile's rows (doc_type, currency, kind, count, amount)
// into one reconciliation per doc type and currency, with the keys sorted.
func tallies(rows [][]string) (map[[2]string]*stage.Reconciliation, [][2]string, error) {
	byKey := map[[2]string]*stage.Reconciliation{}
	var keys [][2]string
	for _, r := range rows {
		key := [2]string{r[0], r[1]}
		rec, ok := byKey[key]
		if !ok {
			rec = &stage.Reconciliation{DocType: r[0], Currency: r[1]}
			byKey[key] = rec
			keys = append(keys, key)
		}
		var n int64
		if _, err := fmt.Sscan(r[3], &n); err != nil {
			return nil, nil, fmt.Errorf("reconcile: count %q: %w", r[3], err)
		}
		amount, err := money.Parse(r[4])
		if err != nil {
			return nil, nil, fmt.Errorf("reconcile: %w", err)
		}
		tally := stage.Tally{Count: n, Amount: amount}
		switch r[2] {
		case "extracted":
			rec.Extracted = tally
		case "ready":
			rec.Ready = tally
		case "rejected":
			rec.Rejected = tally
		case "skipped":
			rec.Skipped = tally
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	return byKey, keys, nil
}

// unaccounted lists (at most 20) the documents not in the outputs exactly
// once, or in them without being extracted.
func unaccounted(ctx context.Context, db *warehouse.DB) ([]string, error) {
	var out []string
	odd, err := db.Strings(ctx, `WITH outs AS (
    SELECT doc_type, zuora_id FROM ready
    UNION ALL SELECT doc_type, zuora_id FROM rejects
    UNION ALL SELECT doc_type, zuora_id FROM skipped
), n AS (SELECT doc_type, zuora_id, count(*) AS n FROM outs GROUP BY ALL)
SELECT coalesce(e.doc_type, n.doc_type), coalesce(e.zuora_id, n.zuora_id, 'NULL'), coalesce(n.n, 0),
    CASE WHEN e.zuora_id IS NULL THEN ' (not extracted)' ELSE '' END
FROM extracted AS e FULL JOIN n ON n.doc_type = e.doc_type AND n.zuora_id = e.zuora_id
WHERE e.zuora_id IS NULL OR n.n IS DISTINCT FROM 1
ORDER BY ALL LIMIT 20`)
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	for _, r := range odd {
		out = append(out, fmt.Sprintf("%s %s x%s%s", r[0], r[1], r[2], r[3]))
	}
	return out, nil
}

// readyPage is how many ready lines writeNDJSON reads from DuckDB at once:
// the driver holds a query's whole result in DuckDB's memory, where it does
// not spill, so the lines come in pages. A variable so that tests can make
// pages of a few lines.
var readyPage = 5000

// writeNDJSON writes the ready documents of table sorted (the ready lines
// in ready order, sortTable's) to key, one envelope per line. Amounts keep
// their exact decimal text.
func writeNDJSON(ctx context.Context, st *stage.Stage, db *warehouse.DB, sorted, key string) (stage.ObjectInfo, error) {
	rows, err := db.Strings(ctx, "SELECT count(*) FROM "+warehouse.Ident(sorted))
	if err != nil {
		return stage.ObjectInfo{}, fmt.Errorf("write %s: %w", key, err)
	}
	var n int
	if _, err := fmt.Sscan(rows[0][0], &n); err != nil {
		return stage.ObjectInfo{}, fmt.Errorf("write %s: %w", key, err)
	}
	w, err := st.NewWriter(ctx, key)
	if err != nil {
		return stage.ObjectInfo{}, err
	}
	defer w.Abort()
	bw := bufio.NewWriterSize(w, 256<<10) // a line is a few hundred bytes: one write to the stage per 256 KiB, not per line
	lw := &lineWriter{w: bw}
	lw.enc = json.NewEncoder(&lw.buf)
	lw.enc.SetEscapeHTML(false)
	for from := 0; from < n; from += readyPage {
		q := fmt.Sprintf(`SELECT doc_type, zuora_id, number, idempotency_key, customer, currency, amount, doc_date, endpoint, payload,
    event, CAST(to_json(depends_on) AS VARCHAR), reverses_doc_type, reverses_idempotency_key
FROM %s WHERE rowid >= %d AND rowid < %d ORDER BY rowid`, warehouse.Ident(sorted), from, from+readyPage)
		if err := db.Each(ctx, q, lw.line); err != nil {
			return stage.ObjectInfo{}, fmt.Errorf("write %s: %w", key, err)
		}
	}
	if lw.n != n {
		return stage.ObjectInfo{}, fmt.Errorf("write %s: %d lines of %d", key, lw.n, n)
	}
	if err := bw.Flush(); err != nil {
		return stage.ObjectInfo{}, fmt.Errorf("write %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return stage.ObjectInfo{}, err
	}
	return w.Info(), nil
}

// lineWriter writes ready lines as NDJSON envelopes and counts them.
type lineWriter struct {
	w   io.Writer
	buf bytes.Buffer
	enc *json.Encoder
	n   int
}

// line writes the envelope of one ready line, checking that the mapping
// gave it every field a line needs.
func (lw *lineWriter) line(cols []string, r warehouse.Row) error {
	v := r.Values
	for i := range 10 {
		if (r.Null[i] || v[i] == "") && !(cols[i] == "number" && numberless(v[0], v[12])) {
			return fmt.Errorf("mapping gave %s %s no %s", v[0], v[1], cols[i])
		}
	}
	e := stage.Envelope{DocType: v[0], ZuoraID: v[1], Number: v[2], IdempotencyKey: v[3], Customer: v[4], Currency: v[5],
		Amount: json.Number(v[6]), DocDate: v[7], Endpoint: v[8], Payload: json.RawMessage(v[9]), Event: v[10]}
	if !r.Null[11] {
		if err := json.Unmarshal([]byte(v[11]), &e.DependsOn); err != nil {
			return fmt.Errorf("document %s %s: depends_on: %w", v[0], v[1], err)
		}
	}
	if !r.Null[12] {
		e.Reverses = &stage.Reversed{DocType: v[12], IdempotencyKey: v[13]}
	}
	lw.buf.Reset()
	if err := lw.enc.Encode(e); err != nil {
		return fmt.Errorf("document %s %s: %w", v[0], v[1], err)
	}
	lw.n++
	_, err := lw.w.Write(lw.buf.Bytes())
	return err
}

// numberless reports whether a line may go without a number: an
// application, or the reversal of one (applications have no number).
func numberless(docType, reverses string) bool {
	return stage.DocType(docType).IsApplication() || docType == string(stage.Reversal) && stage.DocType(reverses).IsApplication()
}
