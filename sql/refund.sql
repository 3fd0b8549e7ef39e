-- refund.sql: one row per refund of the window -> POST /api/refunds.
--
-- See invoice.sql for the columns every mapping file returns. A refund has
-- no items. Its type (External, Electronic) must be in payment_methods.csv.
--
-- Reject rules, first failing one wins: MISSING_FIELD, NO_ERP_ACCOUNT,
-- UNMAPPED_CODE (currency, then type), NEGATIVE_AMOUNT.
WITH doc AS (
    SELECT
        r.*,
        c.currency IS NOT NULL AS currency_known,
        pm.zuora_type IS NOT NULL AS type_known
    FROM refunds AS r
    LEFT JOIN currencies AS c ON c.currency = r.currency
    LEFT JOIN payment_methods AS pm ON pm.zuora_type = r.type
),
checked AS (
    SELECT
        *,
        CASE
            WHEN refund_number IS NULL THEN ['MISSING_FIELD', format('refund {} has no refund_number', id)]
            WHEN currency IS NULL THEN ['MISSING_FIELD', format('refund {} has no currency', refund_number)]
            WHEN refund_date IS NULL THEN ['MISSING_FIELD', format('refund {} has no refund_date', refund_number)]
            WHEN amount IS NULL THEN ['MISSING_FIELD', format('refund {} has no amount', refund_number)]
            WHEN erp_account_id IS NULL OR trim(erp_account_id) = '' THEN
                ['NO_ERP_ACCOUNT', format('refund {}: account {} has no ERPAccountId__c', refund_number, quoted(coalesce(account_number, account_id)))]
            WHEN NOT currency_known THEN
                ['UNMAPPED_CODE', format('refund {}: currency {} is not in currencies.csv', refund_number, quoted(currency))]
            WHEN NOT type_known THEN
                ['UNMAPPED_CODE', format('refund {}: type {} is not in payment_methods.csv', refund_number, quoted(type))]
            WHEN amount < 0 THEN
                ['NEGATIVE_AMOUNT', format('refund {}: amount {} is negative', refund_number, dec_text(amount))]
        END AS reject
    FROM doc
)
SELECT
    'refund' AS doc_type,
    id AS zuora_id,
    refund_number AS number,
    id AS idempotency_key,
    erp_account_id AS customer,
    currency,
    amount,
    refund_date AS doc_date,
    '/api/refunds' AS endpoint,
    j_object([j_field('refund', j_object([
        j_field('zuora_id', j_str(id)),
        j_field('number', j_str(refund_number)),
        j_field('customer', j_str(erp_account_id)),
        j_field('currency', j_str(currency)),
        j_field('date', j_date(refund_date)),
        j_field('amount', j_num(amount)),
        j_field('source_type', j_str(source_type))
    ]))]) AS payload,
    reject[1] AS reason_code,
    reject[2] AS message
FROM checked
