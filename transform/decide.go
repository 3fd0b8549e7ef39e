package transform

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// The SQL in this file is the transform's own decisions for receivables
// (docs/design.md "AR pipeline"): the ERP state read from the ledger of every
// other window, the sign of the applications, and what each record of the
// window calls for: a post, a repost, a reversal, an application, a skip or
// a reject. The mapping files build only the payloads.

// Unapply conventions (Options.UnapplyAmounts): how the tenant writes the
// amount of an unapply row (docs/zuora-api.md §7, fact 6).
const (
	UnapplyNegative = "negative" // an unapply carries a negative amount (the default)
	UnapplyPositive = "positive" // an unapply carries the amount of the apply it undoes, unsigned
)

// lit is an SQL string literal.
func lit(s string) string { return warehouse.Literal(s) }

// arMacros are the words of the ERP state and of the events in SQL.
func arMacros(w stage.Window) string {
	return fmt.Sprintf(`CREATE OR REPLACE MACRO posting_status(doc_type, status) AS
    CASE WHEN doc_type IN (%[1]s, %[2]s) THEN status = 'Processed' ELSE status = 'Posted' END;
CREATE OR REPLACE MACRO key_time(t) AS strftime(t, '%%Y%%m%%dT%%H%%M%%SZ');
CREATE OR REPLACE MACRO this_window() AS %[3]s;`,
		lit(string(stage.Payment)), lit(string(stage.Refund)), lit(w.ID()))
}

// erpStateSQL derives, per Zuora id, what the ERP holds by the ledger of
// every other window: the last confirmed post, repost or application (its
// key, payload sha, amount, currency, and from the line that posted it the
// customer and number), whether a confirmed reversal followed it, and the
// version of the record behind the last event (the latest version the
// window of that event staged; null when its snapshot is not listed).
const erpStateSQL = `CREATE TABLE erp_events AS
SELECT doc_type, zuora_id, idempotency_key, payload_sha256, amount, currency, "window" AS ledger_window, finished_at
FROM ledger
WHERE confirmed(action, outcome)
QUALIFY row_number() OVER (PARTITION BY idempotency_key ORDER BY finished_at, "window") = 1;

CREATE TABLE erp_state AS
WITH copies AS (
    SELECT * FROM erp_events WHERE doc_type <> 'reversal'
    QUALIFY row_number() OVER (PARTITION BY zuora_id ORDER BY finished_at DESC, idempotency_key DESC) = 1
), reversals AS (
    SELECT * FROM erp_events WHERE doc_type = 'reversal'
    QUALIFY row_number() OVER (PARTITION BY zuora_id ORDER BY finished_at DESC, idempotency_key DESC) = 1
), state AS (
    SELECT c.zuora_id, c.doc_type AS copy_doc_type, c.idempotency_key AS copy_key, c.payload_sha256 AS copy_sha,
        c.amount AS copy_amount, c.currency AS copy_currency, c.ledger_window AS copy_window,
        r.zuora_id IS NULL OR r.finished_at < c.finished_at AS live,
        CASE WHEN r.zuora_id IS NULL OR r.finished_at < c.finished_at THEN c.ledger_window ELSE r.ledger_window END AS last_window
    FROM copies AS c LEFT JOIN reversals AS r USING (zuora_id)
)
SELECT s.*, l.customer AS copy_customer, l.number AS copy_number, v.updated_date AS last_version
FROM state AS s
LEFT JOIN (SELECT "window", idempotency_key, any_value(customer) AS customer, any_value(number) AS number
           FROM erp_lines GROUP BY ALL) AS l
    ON l."window" = s.copy_window AND l.idempotency_key = s.copy_key
LEFT JOIN (SELECT id, "window", max(updated_date) AS updated_date FROM hist_versions GROUP BY ALL) AS v
    ON v.id = s.zuora_id AND v."window" = s.last_window`

// docHistSQL lists every staged version of every document, stage-wide, with
// the fields the sign of an application is read from.
func docHistSQL() string {
	return `CREATE TABLE doc_hist AS
SELECT * FROM (
    SELECT 'invoice' AS doc_type, id, "window", updated_date, created_date, rechecked_at, status, currency,
        CAST(payment_amount AS DECIMAL(38, 9)) AS f_payment, CAST(credit_memo_amount AS DECIMAL(38, 9)) AS f_credit_memo,
        CAST(amount - balance AS DECIMAL(38, 9)) AS f_settled, CAST(NULL AS DECIMAL(38, 9)) AS f_applied
    FROM hist_invoices
    UNION ALL
    SELECT 'debit_memo', id, "window", updated_date, created_date, rechecked_at, status, currency,
        NULL, NULL, CAST(total_amount - balance AS DECIMAL(38, 9)), NULL
    FROM hist_debit_memos
    UNION ALL
    SELECT 'credit_memo', id, "window", updated_date, created_date, rechecked_at, status, currency,
        NULL, NULL, NULL, CAST(applied_amount AS DECIMAL(38, 9))
    FROM hist_credit_memos
    UNION ALL
    SELECT 'payment', id, "window", updated_date, created_date, rechecked_at, status, currency,
        NULL, NULL, NULL, CAST(applied_amount AS DECIMAL(38, 9))
    FROM hist_payments
    UNION ALL
    SELECT 'refund', id, "window", updated_date, created_date, rechecked_at, status, currency, NULL, NULL, NULL, NULL
    FROM hist_refunds
)
QUALIFY row_number() OVER (PARTITION BY doc_type, id, updated_date ORDER BY rechecked_at DESC NULLS LAST, "window" DESC) = 1`
}

// appRowsSQL selects the applications of table source (the window's own, or
// every window's with hist_) in one shape, amounts as Zuora sent them.
func appRowsSQL(prefix string, kinds []stage.DocType) string {
	win := `this_window() AS "window"`
	if prefix != "" {
		win = `"window"`
	}
	parts := map[stage.DocType]string{
		stage.PaymentApplication: `SELECT 'payment_application' AS doc_type, id AS zuora_id, ` + win + `, created_date, updated_date,
    CAST(apply_amount AS DECIMAL(38, 9)) AS sent, effective_date, status, account_id, payment_id AS source_id, 'payment' AS source_type,
    coalesce(invoice_id, debit_memo_id) AS target_id,
    CASE WHEN invoice_id IS NOT NULL THEN 'invoice' WHEN debit_memo_id IS NOT NULL THEN 'debit_memo' END AS target_type,
    coalesce(application_group_id, id) AS group_key, rechecked_at
FROM ` + prefix + `payment_applications`,
		stage.CreditMemoApplication: `SELECT 'credit_memo_application', id, ` + win + `, created_date, updated_date,
    CAST(amount AS DECIMAL(38, 9)), effective_date, CAST(NULL AS VARCHAR), account_id, credit_memo_id, 'credit_memo',
    coalesce(invoice_id, debit_memo_id),
    CASE WHEN invoice_id IS NOT NULL THEN 'invoice' WHEN debit_memo_id IS NOT NULL THEN 'debit_memo' END,
    coalesce(application_group_id, id), rechecked_at
FROM ` + prefix + `credit_memo_applications`,
		stage.RefundApplication: `SELECT 'refund_application', id, ` + win + `, created_date, updated_date,
    CAST(apply_amount AS DECIMAL(38, 9)), effective_date, CAST(NULL AS VARCHAR), account_id, refund_id, 'refund',
    coalesce(payment_id, credit_memo_id, invoice_id),
    CASE WHEN payment_id IS NOT NULL THEN 'payment' WHEN credit_memo_id IS NOT NULL THEN 'credit_memo'
        WHEN invoice_id IS NOT NULL THEN 'invoice' END,
    coalesce(application_group_id, id), rechecked_at
FROM ` + prefix + `refund_applications`,
	}
	var sel []string
	for _, k := range stage.Applications() {
		if slices.Contains(kinds, k) {
			sel = append(sel, parts[k])
		}
	}
	if len(sel) == 0 {
		// no application kind moved: the shape alone
		return parts[stage.PaymentApplication] + " WHERE false"
	}
	return strings.Join(sel, "\nUNION ALL\n")
}

// applicationsSQL builds app_rows (the window's applications), app_hist
// (every window's, the latest version of each, with the amount another
// window's ready line gave it) and grp (the window's application groups,
// whose direction the sign step decides).
func applicationsSQL(kinds []stage.DocType) string {
	return `CREATE TABLE app_rows AS ` + appRowsSQL("", kinds) + `;

CREATE TABLE app_hist AS
SELECT h.*, l.amount AS known_signed, a.zuora_id IS NOT NULL AS in_window
FROM (SELECT * FROM (` + appRowsSQL("hist_", kinds) + `)
      QUALIFY row_number() OVER (PARTITION BY doc_type, zuora_id ORDER BY updated_date DESC NULLS LAST, rechecked_at DESC NULLS LAST, "window" DESC) = 1) AS h
LEFT JOIN (SELECT doc_type, zuora_id, any_value(amount) AS amount FROM erp_lines GROUP BY ALL) AS l
    ON l.doc_type = h.doc_type AND l.zuora_id = h.zuora_id
LEFT JOIN app_rows AS a ON a.doc_type = h.doc_type AND a.zuora_id = h.zuora_id;

CREATE TABLE grp AS
SELECT doc_type, group_key, CAST(CASE WHEN bool_or(sent < 0) THEN -1 END AS INTEGER) AS dir
FROM app_rows GROUP BY ALL`
}

// signMembersSQL prepares the constraints the positive convention settles
// signs with (docs/design.md "AR model", "Sign convention"): for each
// document a window's application joins, between the version of it that
// reflects the application (the first staged at or after its createdDate)
// and the version before (or its creation, when the stage saw it created),
// the signed amounts of the applications created in between sum to the
// change of the document's field: a payment's or credit memo's
// appliedAmount, an invoice's paymentAmount or creditMemoAmount, a debit
// memo's totalAmount − balance. When no staged version postdates the
// application, the latest one stands for it with every application created
// after the version before (a version that does not reflect one gives it a
// direction of 0, which settles nothing). A constraint is usable only when
// every application in it is of this window or has a known sign, and none
// of the document's applications was cancelled in between.
const signMembersSQL = `CREATE TABLE sign_touch AS
SELECT DISTINCT x_type, x_id, field, x1, v.later IS NULL AS fallback, kinds FROM (
    SELECT a.source_type AS x_type, a.source_id AS x_id, 'applied' AS field, a.created_date AS at, [a.doc_type] AS kinds
    FROM app_rows AS a WHERE a.doc_type IN ('payment_application', 'credit_memo_application') AND a.source_id IS NOT NULL
    UNION ALL
    SELECT a.target_type, a.target_id, CASE a.doc_type WHEN 'payment_application' THEN 'payment' ELSE 'credit_memo' END,
        a.created_date, [a.doc_type]
    FROM app_rows AS a WHERE a.doc_type IN ('payment_application', 'credit_memo_application') AND a.target_type = 'invoice'
    UNION ALL
    SELECT a.target_type, a.target_id, 'settled', a.created_date, ['payment_application', 'credit_memo_application']
    FROM app_rows AS a WHERE a.doc_type IN ('payment_application', 'credit_memo_application') AND a.target_type = 'debit_memo'
) AS t, LATERAL (
    SELECT min(d.updated_date) FILTER (WHERE d.updated_date >= t.at) AS later,
        coalesce(min(d.updated_date) FILTER (WHERE d.updated_date >= t.at), max(d.updated_date)) AS x1
    FROM doc_hist AS d
    WHERE d.doc_type = t.x_type AND d.id = t.x_id
) AS v
WHERE v.x1 IS NOT NULL;

CREATE TABLE sign_cons AS
SELECT row_number() OVER (ORDER BY t.x_type, t.x_id, t.field, t.x1) AS cid, t.*, x0.updated_date AS x0,
    CASE t.field WHEN 'applied' THEN d1.f_applied WHEN 'payment' THEN d1.f_payment WHEN 'credit_memo' THEN d1.f_credit_memo ELSE d1.f_settled END
    - coalesce(CASE t.field WHEN 'applied' THEN d0.f_applied WHEN 'payment' THEN d0.f_payment WHEN 'credit_memo' THEN d0.f_credit_memo ELSE d0.f_settled END, 0) AS delta,
    (x0.updated_date IS NOT NULL OR d1.created_date >= (SELECT start FROM stage_info))
    AND CASE t.field WHEN 'applied' THEN d1.f_applied WHEN 'payment' THEN d1.f_payment WHEN 'credit_memo' THEN d1.f_credit_memo ELSE d1.f_settled END IS NOT NULL
    AND (x0.updated_date IS NULL OR CASE t.field WHEN 'applied' THEN d0.f_applied WHEN 'payment' THEN d0.f_payment WHEN 'credit_memo' THEN d0.f_credit_memo ELSE d0.f_settled END IS NOT NULL)
    AS usable
FROM sign_touch AS t
JOIN doc_hist AS d1 ON d1.doc_type = t.x_type AND d1.id = t.x_id AND d1.updated_date = t.x1
LEFT JOIN LATERAL (
    SELECT max(d.updated_date) AS updated_date FROM doc_hist AS d
    WHERE d.doc_type = t.x_type AND d.id = t.x_id AND d.updated_date < t.x1
) AS x0 ON true
LEFT JOIN doc_hist AS d0 ON d0.doc_type = t.x_type AND d0.id = t.x_id AND d0.updated_date = x0.updated_date;

CREATE TABLE sign_members AS
SELECT c.cid, h.doc_type, h.zuora_id, h.group_key, h.in_window, h.known_signed, abs(h.sent) AS size, h.sent
FROM sign_cons AS c
JOIN app_hist AS h ON list_contains(c.kinds, h.doc_type)
    AND (CASE WHEN c.field = 'applied' THEN h.source_id ELSE h.target_id END) = c.x_id
    AND (c.field = 'applied' OR h.target_type = c.x_type)
    AND (c.fallback OR h.created_date <= c.x1) AND (c.x0 IS NULL OR h.created_date > c.x0);

UPDATE sign_cons SET usable = false
WHERE cid IN (SELECT cid FROM sign_members WHERE NOT in_window AND known_signed IS NULL)
   OR cid IN (
    SELECT c.cid FROM sign_cons AS c JOIN app_hist AS h ON list_contains(c.kinds, h.doc_type)
        AND (CASE WHEN c.field = 'applied' THEN h.source_id ELSE h.target_id END) = c.x_id
    WHERE h.status = 'Cancelled' AND (c.fallback OR h.updated_date <= c.x1) AND (c.x0 IS NULL OR h.updated_date > c.x0))`

// signPairSQL settles as applies the groups that cannot be unapplies: a
// group with a row larger than all that the pair (source, target) could
// have applied before it (no pair goes below zero, in createdDate order).
const signPairSQL = `UPDATE grp SET dir = 1 FROM (
    SELECT DISTINCT a.doc_type, a.group_key
    FROM app_rows AS a
    WHERE abs(a.sent) > (
        SELECT coalesce(sum(CASE
            WHEN h.sent < 0 THEN h.sent
            WHEN h.in_window THEN CASE WHEN g.dir = -1 THEN -h.sent ELSE h.sent END
            ELSE coalesce(h.known_signed, h.sent) END), 0)
        FROM app_hist AS h LEFT JOIN grp AS g ON g.doc_type = h.doc_type AND g.group_key = h.group_key AND h.in_window
        WHERE h.doc_type = a.doc_type AND h.source_id = a.source_id AND h.target_id IS NOT DISTINCT FROM a.target_id
          AND h.group_key <> a.group_key AND h.created_date <= a.created_date)
) AS s
WHERE grp.dir IS NULL AND grp.doc_type = s.doc_type AND grp.group_key = s.group_key`

// signSolveSQL settles the groups that are the only unknown of a usable
// constraint, when every such constraint gives them the same direction.
const signSolveSQL = `UPDATE grp SET dir = s.dir FROM (
    WITH m AS (
        SELECT m.cid, m.doc_type, m.group_key, m.size,
            CASE WHEN m.sent < 0 THEN m.sent
                WHEN NOT m.in_window THEN m.known_signed
                WHEN g.dir IS NOT NULL THEN g.dir * m.size END AS signed
        FROM sign_members AS m LEFT JOIN grp AS g ON m.in_window AND g.doc_type = m.doc_type AND g.group_key = m.group_key
    ), c AS (
        SELECT m.cid, any_value(sc.delta) AS delta, coalesce(sum(m.signed), 0) AS known,
            count(DISTINCT CASE WHEN m.signed IS NULL THEN m.doc_type || ':' || m.group_key END) AS unknowns,
            any_value(CASE WHEN m.signed IS NULL THEN m.doc_type END) AS doc_type,
            any_value(CASE WHEN m.signed IS NULL THEN m.group_key END) AS group_key,
            sum(CASE WHEN m.signed IS NULL THEN m.size END) AS size
        FROM m JOIN sign_cons AS sc ON sc.cid = m.cid AND sc.usable
        GROUP BY m.cid
    ), d AS (
        SELECT doc_type, group_key, (delta - known) / size AS dir FROM c WHERE unknowns = 1 AND size > 0
    )
    SELECT doc_type, group_key, CAST(min(dir) AS INTEGER) AS dir FROM d
    GROUP BY ALL HAVING min(dir) = max(dir) AND min(dir) IN (1, -1)
) AS s
WHERE grp.dir IS NULL AND grp.doc_type = s.doc_type AND grp.group_key = s.group_key`

// decideSigns settles the direction of the window's application groups
// under the positive convention, repeating the two rules while they settle
// more; under the negative one every amount is as sent.
func decideSigns(ctx context.Context, db *warehouse.DB, convention string) error {
	if convention != UnapplyPositive {
		return db.Exec(ctx, "UPDATE grp SET dir = 1 WHERE dir IS NULL")
	}
	if err := db.Exec(ctx, signMembersSQL); err != nil {
		return fmt.Errorf("sign constraints: %w", err)
	}
	open := func() (string, error) {
		rows, err := db.Strings(ctx, "SELECT count(*) FROM grp WHERE dir IS NULL")
		if err != nil {
			return "", err
		}
		return rows[0][0], nil
	}
	before, err := open()
	if err != nil {
		return err
	}
	for range 32 {
		if err := db.Exec(ctx, signPairSQL); err != nil {
			return fmt.Errorf("sign by pairs: %w", err)
		}
		if err := db.Exec(ctx, signSolveSQL); err != nil {
			return fmt.Errorf("sign by documents: %w", err)
		}
		after, err := open()
		if err != nil {
			return err
		}
		if after == before || after == "0" {
			return nil
		}
		before = after
	}
	return nil
}
