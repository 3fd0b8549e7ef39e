-- credit_memo.sql: one row per credit memo of the window -> POST /api/credit-memos.
--
-- See invoice.sql for the columns every mapping file returns. An item's
-- amount is its amount_without_tax; the memo's total_amount must equal the sum
-- of its items' amount_without_tax + tax_amount.
--
-- Reject rules, first failing one wins: MISSING_FIELD, NO_ERP_ACCOUNT,
-- UNMAPPED_CODE, NEGATIVE_AMOUNT (a memo's total is never negative; its
-- direction is its type), ITEMS_MISMATCH.
--
-- Items are sorted by service start date (missing dates last), then id.
WITH items AS (
    SELECT
        credit_memo_id,
        count(*) AS item_count,
        sum(coalesce(amount_without_tax, 0) + coalesce(tax_amount, 0)) AS items_total,
        '[' || string_agg(
            j_object([
                j_field('zuora_id', j_str(id)),
                j_field('description', j_str(charge_name)),
                j_field('quantity', j_num(quantity)),
                j_field('unit_price', j_num(unit_price)),
                j_field('amount', j_num(amount_without_tax)),
                j_field('tax_amount', j_num(tax_amount))
            ]),
            ',' ORDER BY service_start_date NULLS LAST, id
        ) || ']' AS items_json
    FROM credit_memo_items
    GROUP BY credit_memo_id
),
doc AS (
    SELECT
        m.*,
        coalesce(it.item_count, 0) AS n_items,
        coalesce(it.items_total, 0) AS items_total,
        coalesce(it.items_json, '[]') AS items_json,
        c.currency IS NOT NULL AS currency_known
    FROM credit_memos AS m
    LEFT JOIN items AS it ON it.credit_memo_id = m.id
    LEFT JOIN currencies AS c ON c.currency = m.currency
),
checked AS (
    SELECT
        *,
        CASE
            WHEN memo_number IS NULL THEN ['MISSING_FIELD', format('credit memo {} has no memo_number', id)]
            WHEN currency IS NULL THEN ['MISSING_FIELD', format('credit memo {} has no currency', memo_number)]
            WHEN memo_date IS NULL THEN ['MISSING_FIELD', format('credit memo {} has no memo_date', memo_number)]
            WHEN total_amount IS NULL THEN ['MISSING_FIELD', format('credit memo {} has no total_amount', memo_number)]
            WHEN erp_account_id IS NULL OR trim(erp_account_id) = '' THEN
                ['NO_ERP_ACCOUNT', format('credit memo {}: account {} has no ERPAccountId__c', memo_number, quoted(coalesce(account_number, account_id)))]
            WHEN NOT currency_known THEN
                ['UNMAPPED_CODE', format('credit memo {}: currency {} is not in currencies.csv', memo_number, quoted(currency))]
            WHEN total_amount < 0 THEN
                ['NEGATIVE_AMOUNT', format('credit memo {}: total_amount {} is negative', memo_number, dec_text(total_amount))]
            WHEN total_amount <> items_total THEN
                ['ITEMS_MISMATCH', format('credit memo {}: total_amount {} differs from the sum of its {} items {}', memo_number, dec_text(total_amount), n_items, dec_text(items_total))]
        END AS reject
    FROM doc
)
SELECT
    'credit_memo' AS doc_type,
    id AS zuora_id,
    memo_number AS number,
    id AS idempotency_key,
    erp_account_id AS customer,
    currency,
    total_amount AS amount,
    memo_date AS doc_date,
    '/api/credit-memos' AS endpoint,
    j_object([j_field('credit_memo', j_object([
        j_field('zuora_id', j_str(id)),
        j_field('number', j_str(memo_number)),
        j_field('customer', j_str(erp_account_id)),
        j_field('currency', j_str(currency)),
        j_field('date', j_date(memo_date)),
        j_field('amount', j_num(total_amount)),
        CASE WHEN invoice_id IS NOT NULL THEN j_field('invoice_zuora_id', j_str(invoice_id)) END,
        j_field('items', items_json)
    ]))]) AS payload,
    reject[1] AS reason_code,
    reject[2] AS message
FROM checked
