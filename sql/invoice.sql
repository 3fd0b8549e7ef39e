-- invoice.sql: one row per invoice of the window -> POST /api/invoices.
--
-- Every mapping file is one SELECT over the window's tables (invoices,
-- invoice_items, payments, refunds, credit_memos, credit_memo_items,
-- debit_memos, debit_memo_items: the latest version of each id only) and the
-- value mappings (one table per CSV file, all columns VARCHAR). It returns one
-- row per document with the columns doc_type, zuora_id, number,
-- idempotency_key, customer, currency, amount, doc_date, endpoint, payload,
-- reason_code, message. reason_code NULL means ready; otherwise the document
-- is rejected with message. Skips (already transferred, already posted) are
-- decided by the transform, not here. Currency and amount must be Zuora's:
-- the transform reconciles them against the raw tables.
--
-- Reject rules, first failing one wins: MISSING_FIELD, NO_ERP_ACCOUNT,
-- UNMAPPED_CODE, NEGATIVE_AMOUNT (not for invoices: a negative invoice is a
-- valid ERP document), ITEMS_MISMATCH.
--
-- Items are sorted by service start date (missing dates last), then id.
WITH items AS (
    SELECT
        invoice_id,
        count(*) AS item_count,
        sum(coalesce(charge_amount, 0) + coalesce(tax_amount, 0)) AS items_total,
        '[' || string_agg(
            j_object([
                j_field('zuora_id', j_str(id)),
                j_field('description', j_str(charge_name)),
                j_field('quantity', j_num(quantity)),
                j_field('unit_price', j_num(unit_price)),
                j_field('amount', j_num(charge_amount)),
                j_field('tax_amount', j_num(tax_amount))
            ]),
            ',' ORDER BY service_start_date NULLS LAST, id
        ) || ']' AS items_json
    FROM invoice_items
    GROUP BY invoice_id
),
doc AS (
    SELECT
        i.*,
        coalesce(it.item_count, 0) AS n_items,
        coalesce(it.items_total, 0) AS items_total,
        coalesce(it.items_json, '[]') AS items_json,
        c.currency IS NOT NULL AS currency_known
    FROM invoices AS i
    LEFT JOIN items AS it ON it.invoice_id = i.id
    LEFT JOIN currencies AS c ON c.currency = i.currency
),
checked AS (
    SELECT
        *,
        CASE
            WHEN invoice_number IS NULL THEN ['MISSING_FIELD', format('invoice {} has no invoice_number', id)]
            WHEN currency IS NULL THEN ['MISSING_FIELD', format('invoice {} has no currency', invoice_number)]
            WHEN invoice_date IS NULL THEN ['MISSING_FIELD', format('invoice {} has no invoice_date', invoice_number)]
            WHEN amount IS NULL THEN ['MISSING_FIELD', format('invoice {} has no amount', invoice_number)]
            WHEN erp_account_id IS NULL OR trim(erp_account_id) = '' THEN
                ['NO_ERP_ACCOUNT', format('invoice {}: account {} has no ERPAccountId__c', invoice_number, quoted(coalesce(account_number, account_id)))]
            WHEN NOT currency_known THEN
                ['UNMAPPED_CODE', format('invoice {}: currency {} is not in currencies.csv', invoice_number, quoted(currency))]
            WHEN amount <> items_total THEN
                ['ITEMS_MISMATCH', format('invoice {}: amount {} differs from the sum of its {} items {}', invoice_number, dec_text(amount), n_items, dec_text(items_total))]
        END AS reject
    FROM doc
)
SELECT
    'invoice' AS doc_type,
    id AS zuora_id,
    invoice_number AS number,
    id AS idempotency_key,
    erp_account_id AS customer,
    currency,
    amount,
    invoice_date AS doc_date,
    '/api/invoices' AS endpoint,
    j_object([j_field('invoice', j_object([
        j_field('zuora_id', j_str(id)),
        j_field('number', j_str(invoice_number)),
        j_field('customer', j_str(erp_account_id)),
        j_field('currency', j_str(currency)),
        j_field('date', j_date(invoice_date)),
        j_field('amount', j_num(amount)),
        j_field('items', items_json)
    ]))]) AS payload,
    reject[1] AS reason_code,
    reject[2] AS message
FROM checked
