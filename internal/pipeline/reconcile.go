package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/archeck"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erp"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// ReconcileOptions says what Reconcile compares Zuora's open balances with,
// and where it reads them.
type ReconcileOptions struct {
	// Live fetches Zuora's current open balances by id (50 a query) instead
	// of reading the latest staged version of each document.
	Live bool
	// ERP also compares with the ERP's own answer, GET /api/documents/{id}.
	ERP bool
}

// Reconciliation is what Reconcile found: per document, Zuora's open
// balance against the one the ERP should hold by the ledger (and, with
// ReconcileOptions.ERP, against the ERP's own), every difference listed.
type Reconciliation struct {
	Documents int // documents compared
	// NotOurs counts documents the ledger never confirmed that Zuora says
	// another integration transferred (Yes) or that are Ignore or
	// acknowledged: the ERP's balance of them is not the ledger's to say.
	NotOurs int
	// Unknown counts documents staged without their open balance (before the
	// AR fields were extracted): compared only with Live.
	Unknown   int
	ByLedger  []archeck.Difference
	ByERP     []archeck.Difference // with ReconcileOptions.ERP
	Totals    []archeck.Total      // Zuora against the ledger, per currency
	ERPTotals []archeck.Total      // Zuora against the ERP, per currency (with ERP)
	Live, ERP bool
}

// Difference is one document whose open balances disagree (archeck's).
type Difference = archeck.Difference

// Differences counts every difference found.
func (r *Reconciliation) Differences() int { return len(r.ByLedger) + len(r.ByERP) }

// reconcileChunk is how many documents are compared at once: memory holds
// one chunk, however many documents the stage holds.
const reconcileChunk = 2000

// Reconcile compares, per document, Zuora's open balance with what the ERP
// holds (docs/design.md "AR pipeline", "Report, views, reconcile, demo"). It
// only reads: the stage (no lease), Zuora with Live, the ERP with ERP.
func (p *Pipeline) Reconcile(ctx context.Context, opts ReconcileOptions) (*Reconciliation, error) {
	if opts.Live {
		if err := p.cfg.needZuora(); err != nil {
			return nil, err
		}
	}
	var ec *erp.Client
	if opts.ERP {
		if err := p.cfg.needERP(); err != nil {
			return nil, err
		}
		var err error
		if ec, err = p.erpClient(); err != nil {
			return nil, err
		}
	}
	acks, err := p.st.Acks(ctx)
	if err != nil {
		return nil, err
	}
	db, err := warehouse.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := db.AttachStage(ctx, p.st); err != nil {
		return nil, err
	}
	res := &Reconciliation{Live: opts.Live, ERP: opts.ERP}
	totals, erpTotals := map[string]*archeck.Total{}, map[string]*archeck.Total{}
	var chunk []reconcileRow
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		defer func() { chunk = chunk[:0] }()
		return p.reconcileChunk(ctx, chunk, opts, ec, res, totals, erpTotals)
	}
	err = db.Each(ctx, reconcileSQL(), func(_ []string, r warehouse.Row) error {
		row, err := readReconcileRow(r)
		if err != nil {
			return err
		}
		_, acked := acks[row.id]
		if !row.held && (row.transferred == "Yes" || row.transferred == "Ignore" || acked) {
			res.NotOurs++
			return nil
		}
		if chunk = append(chunk, row); len(chunk) >= reconcileChunk {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	res.Totals, res.ERPTotals = sortedTotals(totals), sortedTotals(erpTotals)
	sortDifferences(res.ByLedger)
	sortDifferences(res.ByERP)
	return res, nil
}

// reconcileRow is one document: Zuora's side as staged, and the ERP's by the ledger.
type reconcileRow struct {
	id, docType, number, currency, status, transferred string
	open                                               *decimal.Decimal // nil when not staged
	zuora                                              bool             // the stage holds it
	held                                               bool             // the ledger confirmed a post of it
	erp                                                archeck.ERPDoc
}

func readReconcileRow(r warehouse.Row) (reconcileRow, error) {
	v, null := r.Values, r.Null
	row := reconcileRow{id: v[0], docType: v[1], number: v[2], currency: v[3], status: v[4], transferred: v[6], zuora: !null[1], held: !null[7]}
	if !null[5] {
		d, err := money.Parse(v[5])
		if err != nil {
			return row, err
		}
		row.open = &d
	}
	if row.held {
		open, err := money.Parse(v[11])
		if err != nil {
			return row, err
		}
		row.erp = archeck.ERPDoc{ZuoraID: v[0], DocType: v[7], Customer: v[8], Currency: v[9], Live: v[10] == "true", Open: open}
	}
	return row, nil
}

// reconcileChunk compares one chunk of documents and adds what it found to res.
func (p *Pipeline) reconcileChunk(ctx context.Context, chunk []reconcileRow, opts ReconcileOptions, ec *erp.Client,
	res *Reconciliation, totals, erpTotals map[string]*archeck.Total) error {
	zdocs := map[string]archeck.ZuoraDoc{}
	for _, r := range chunk {
		if r.zuora && (r.open != nil || opts.Live) {
			d := archeck.ZuoraDoc{ZuoraID: r.id, DocType: r.docType, Number: r.number, Currency: r.currency, Status: r.status}
			if r.open != nil {
				d.Open = *r.open
			}
			zdocs[r.id] = d
		} else if r.zuora {
			res.Unknown++
		}
	}
	if opts.Live {
		if err := p.liveBalances(ctx, chunk, zdocs); err != nil {
			return err
		}
	}
	zs := slices.Collect(maps.Values(zdocs))
	var byLedger []archeck.ERPDoc
	for _, r := range chunk {
		if r.held && (!r.zuora || zdocs[r.id].ZuoraID != "" || opts.Live) {
			byLedger = append(byLedger, r.erp)
		}
	}
	diffs, err := archeck.Compare(zs, byLedger)
	if err != nil {
		return err
	}
	res.ByLedger = append(res.ByLedger, diffs...)
	res.Documents += len(chunk)
	addTotals(totals, archeck.Totals(zs, byLedger))
	if !opts.ERP {
		return nil
	}
	held, err := erpAnswers(ctx, ec, chunk, p.cfg.ERPConcurrency)
	if err != nil {
		return err
	}
	diffs, err = archeck.Compare(zs, held)
	if err != nil {
		return err
	}
	res.ByERP = append(res.ByERP, diffs...)
	addTotals(erpTotals, archeck.Totals(zs, held))
	return nil
}

// erpAnswers asks the ERP what it holds of each document of chunk, a few at a time.
func erpAnswers(ctx context.Context, ec *erp.Client, chunk []reconcileRow, concurrency int) ([]archeck.ERPDoc, error) {
	concurrency = max(1, concurrency)
	var mu sync.Mutex
	var out []archeck.ERPDoc
	var firstErr error
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				h, found, err := ec.Document(ctx, id)
				mu.Lock()
				switch {
				case err != nil && firstErr == nil:
					firstErr = fmt.Errorf("ask the ERP for document %s: %w", id, err)
				case err == nil && found:
					out = append(out, archeck.ERPDoc{ZuoraID: id, DocType: h.DocType, Customer: h.Customer, Currency: h.Currency, Live: h.Live, Open: h.OpenBalance})
				}
				mu.Unlock()
			}
		}()
	}
	for _, r := range chunk {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		jobs <- r.id
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return out, firstErr
}

// liveFields are, per document type, the Object Query field holding its
// open balance (a refund's is its amount, less its refund applications).
var liveFields = map[stage.DocType]string{
	stage.Invoice: "balance", stage.DebitMemo: "balance", stage.CreditMemo: "balance",
	stage.Payment: "unappliedAmount", stage.Refund: "amount",
}

// liveBatch is how many ids one query of liveBalances asks for.
const liveBatch = 50

// liveBalances replaces the staged Zuora side of chunk by what Zuora holds
// now, fetched by id; a document Zuora no longer lists leaves the Zuora side.
func (p *Pipeline) liveBalances(ctx context.Context, chunk []reconcileRow, zdocs map[string]archeck.ZuoraDoc) error {
	zc, err := p.zuoraClient()
	if err != nil {
		return err
	}
	byType := map[stage.DocType][]string{}
	for _, r := range chunk {
		if r.zuora {
			byType[stage.DocType(r.docType)] = append(byType[stage.DocType(r.docType)], r.id)
			delete(zdocs, r.id)
		}
	}
	number := map[stage.DocType]string{stage.Invoice: "invoiceNumber", stage.DebitMemo: "memoNumber", stage.CreditMemo: "memoNumber",
		stage.Payment: "paymentNumber", stage.Refund: "refundNumber"}
	for _, dt := range slices.Sorted(maps.Keys(byType)) {
		field := liveFields[dt]
		for batch := range slices.Chunk(byType[dt], liveBatch) {
			q := zuora.Query{Object: dt.Object(), Fields: []string{"id", "status", "currency", number[dt], field},
				Filters: []string{"id.IN:[" + strings.Join(batch, ",") + "]"}, Sort: "id.ASC"}
			for raw, err := range zc.Records(ctx, q) {
				if err != nil {
					return fmt.Errorf("fetch %s by id: %w", dt.Object(), err)
				}
				rec, err := decodeRecord(raw)
				if err != nil {
					return fmt.Errorf("fetch %s by id: %w", dt.Object(), err)
				}
				id := str(rec["id"])
				if !slices.Contains(batch, id) {
					return fmt.Errorf("fetch %s by id: Zuora answered with %s, which was not asked for", dt.Object(), id)
				}
				open, err := money.Parse(string(num(rec[field])))
				if err != nil {
					return fmt.Errorf("%s %s: %s: %w", dt.Words(), id, field, err)
				}
				zdocs[id] = archeck.ZuoraDoc{ZuoraID: id, DocType: string(dt), Number: str(rec[number[dt]]), Currency: str(rec["currency"]),
					Status: str(rec["status"]), Open: open}
			}
		}
	}
	return p.liveRefundApplications(ctx, byType[stage.Refund], zdocs)
}

// liveRefundApplications subtracts from each refund's amount its refund
// applications as Zuora holds them now.
func (p *Pipeline) liveRefundApplications(ctx context.Context, refunds []string, zdocs map[string]archeck.ZuoraDoc) error {
	zc, err := p.zuoraClient()
	if err != nil {
		return err
	}
	for batch := range slices.Chunk(refunds, liveBatch) {
		q := zuora.Query{Object: stage.RefundApplication.Object(), Fields: []string{"id", "refundId", "applyAmount"},
			Filters: []string{"refundid.IN:[" + strings.Join(batch, ",") + "]"}}
		for raw, err := range zc.Records(ctx, q) {
			if err != nil {
				return fmt.Errorf("fetch the refund applications of refunds by id: %w", err)
			}
			rec, err := decodeRecord(raw)
			if err != nil {
				return err
			}
			d, ok := zdocs[str(rec["refundId"])]
			if !ok {
				continue
			}
			amount, err := money.Parse(string(num(rec["applyAmount"])))
			if err != nil {
				return fmt.Errorf("refund application %s: %w", str(rec["id"]), err)
			}
			d.Open = d.Open.Sub(amount)
			zdocs[d.ZuoraID] = d
		}
	}
	return nil
}

func decodeRecord(raw json.RawMessage) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var m map[string]any
	err := dec.Decode(&m)
	return m, err
}

func str(v any) string { s, _ := v.(string); return s }

func num(v any) json.Number {
	switch n := v.(type) {
	case json.Number:
		return n
	case string:
		return json.Number(n)
	}
	return "0"
}

func addTotals(into map[string]*archeck.Total, ts []archeck.Total) {
	for _, t := range ts {
		acc := into[t.Currency]
		if acc == nil {
			acc = &archeck.Total{Currency: t.Currency}
			into[t.Currency] = acc
		}
		acc.Zuora, acc.ERP = acc.Zuora.Add(t.Zuora), acc.ERP.Add(t.ERP)
		acc.ZuoraDocs, acc.ERPDocs = acc.ZuoraDocs+t.ZuoraDocs, acc.ERPDocs+t.ERPDocs
	}
}

func sortedTotals(m map[string]*archeck.Total) []archeck.Total {
	out := make([]archeck.Total, 0, len(m))
	for _, c := range slices.Sorted(maps.Keys(m)) {
		out = append(out, *m[c])
	}
	return out
}

func sortDifferences(ds []archeck.Difference) {
	slices.SortFunc(ds, func(a, b archeck.Difference) int {
		return strings.Compare(a.Currency+"\x00"+a.DocType+"\x00"+a.ZuoraID, b.Currency+"\x00"+b.DocType+"\x00"+b.ZuoraID)
	})
}

// reconcileSQL is one row per document, ordered by id: Zuora's side (the
// latest staged version: type, number, currency, status, the open balance
// its own fields give, transferredToAccounting) and the ERP's by the ledger
// of every window (docs/design.md "ERP API", "Open balances"): a document is
// held live while its last confirmed post or repost came after its last
// confirmed reversal, for the amount of that post; an application counts while
// it is live the same way and no document it joins was reversed (a document the
// ledger never posted counts as held: the ERP accepted the application, so it
// holds it); its open balance is its amount less every counting application
// it is the source or the target of.
func reconcileSQL() string {
	latest := func(table string) string {
		return fmt.Sprintf(`(SELECT * FROM %s QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_date DESC NULLS LAST, rechecked_at DESC NULLS LAST) = 1)`,
			warehouse.Ident(table))
	}
	lit := warehouse.Literal
	in := func(ts []stage.DocType) string {
		var q []string
		for _, t := range ts {
			q = append(q, lit(string(t)))
		}
		return strings.Join(q, ", ")
	}
	rev := lit(string(stage.Reversal))
	return `WITH ra AS (
    SELECT refund_id, sum(apply_amount) AS applied FROM ` + latest("refund_applications") + ` GROUP BY refund_id),
z AS (
    SELECT 'invoice' AS doc_type, id, invoice_number AS number, currency, status, balance AS open, transferred_to_accounting AS tta FROM ` + latest("invoices") + `
    UNION ALL SELECT 'debit_memo', id, memo_number, currency, status, balance, transferred_to_accounting FROM ` + latest("debit_memos") + `
    UNION ALL SELECT 'credit_memo', id, memo_number, currency, status, balance, transferred_to_accounting FROM ` + latest("credit_memos") + `
    UNION ALL SELECT 'payment', id, payment_number, currency, status, unapplied_amount, transferred_to_accounting FROM ` + latest("payments") + `
    UNION ALL SELECT 'refund', r.id, r.refund_number, r.currency, r.status, r.amount - coalesce(ra.applied, 0), r.transferred_to_accounting
        FROM ` + latest("refunds") + ` AS r LEFT JOIN ra ON ra.refund_id = r.id),
lines AS (
    SELECT idempotency_key, any_value(customer) AS customer,
        any_value(json_extract_string(payload, '$.application.source_zuora_id')) FILTER (WHERE doc_type IN (` + in(stage.Applications()) + `)) AS source,
        any_value(json_extract_string(payload, '$.application.target_zuora_id')) FILTER (WHERE doc_type IN (` + in(stage.Applications()) + `)) AS target
    FROM documents GROUP BY idempotency_key),
ev AS (
    SELECT l.zuora_id, l.doc_type, l.finished_at, l.amount, l.currency, d.customer, d.source, d.target
    FROM ledger AS l LEFT JOIN lines AS d ON d.idempotency_key = l.idempotency_key
    WHERE l.action = ` + lit(stage.ActionPost) + ` AND l.outcome IN (` + lit(stage.OutcomeCreated) + `, ` + lit(stage.OutcomeDuplicate) + `)),
held AS (
    SELECT zuora_id,
        arg_max(doc_type, finished_at) FILTER (WHERE doc_type <> ` + rev + `) AS doc_type,
        arg_max(amount, finished_at) FILTER (WHERE doc_type <> ` + rev + `) AS amount,
        arg_max(currency, finished_at) FILTER (WHERE doc_type <> ` + rev + `) AS currency,
        arg_max(customer, finished_at) FILTER (WHERE doc_type <> ` + rev + `) AS customer,
        arg_max(source, finished_at) FILTER (WHERE doc_type <> ` + rev + `) AS source,
        arg_max(target, finished_at) FILTER (WHERE doc_type <> ` + rev + `) AS target,
        max(finished_at) FILTER (WHERE doc_type <> ` + rev + `) AS posted_at,
        max(finished_at) FILTER (WHERE doc_type = ` + rev + `) AS reversed_at
    FROM ev GROUP BY zuora_id),
h AS (SELECT *, reversed_at IS NULL OR posted_at > reversed_at AS live FROM held WHERE posted_at IS NOT NULL),
docs AS (SELECT * FROM h WHERE doc_type IN (` + in(stage.Documents()) + `)),
counting AS (
    SELECT a.source, a.target, a.amount FROM h AS a
    LEFT JOIN docs AS s ON s.zuora_id = a.source LEFT JOIN docs AS t ON t.zuora_id = a.target
    WHERE a.doc_type IN (` + in(stage.Applications()) + `) AND a.live AND coalesce(s.live, true) AND coalesce(t.live, true)),
applied AS (
    SELECT id, sum(amount) AS applied FROM (
        SELECT source AS id, amount FROM counting UNION ALL SELECT target, amount FROM counting WHERE target IS NOT NULL)
    GROUP BY id),
e AS (
    SELECT d.zuora_id AS id, d.doc_type, coalesce(d.customer, '') AS customer, d.currency, d.live, d.amount - coalesce(a.applied, 0) AS open
    FROM docs AS d LEFT JOIN applied AS a ON a.id = d.zuora_id)
SELECT coalesce(z.id, e.id), z.doc_type, coalesce(z.number, ''), coalesce(z.currency, ''), coalesce(z.status, ''),
    CAST(z.open AS VARCHAR), coalesce(z.tta, ''), e.doc_type, e.customer, e.currency, CAST(e.live AS VARCHAR), CAST(e.open AS VARCHAR)
FROM z FULL JOIN e ON e.id = z.id
ORDER BY 1`
}
