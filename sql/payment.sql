-- payment.sql: one row per payment of the window -> POST /api/payments.
--
-- See invoice.sql for the columns every mapping file returns. A payment has
-- no items. Its type (External, Electronic) must be in payment_methods.csv.
--
-- Reject rules, first failing one wins: MISSING_FIELD, NO_ERP_ACCOUNT,
-- UNMAPPED_CODE (currency, then type), NEGATIVE_AMOUNT.
WITH doc AS (
    SELECT
        p.*,
        c.currency IS NOT NULL AS currency_known,
        pm.zuora_type IS NOT NULL AS type_known
    FROM payments AS p
    LEFT JOIN currencies AS c ON c.currency = p.currency
    LEFT JOIN payment_methods AS pm ON pm.zuora_type = p.type
),
checked AS (
    SELECT
        *,
        CASE
            WHEN payment_number IS NULL THEN ['MISSING_FIELD', format('payment {} has no payment_number', id)]
            WHEN currency IS NULL THEN ['MISSING_FIELD', format('payment {} has no currency', payment_number)]
            WHEN effective_date IS NULL THEN ['MISSING_FIELD', format('payment {} has no effective_date', payment_number)]
            WHEN amount IS NULL THEN ['MISSING_FIELD', format('payment {} has no amount', payment_number)]
            WHEN erp_account_id IS NULL OR trim(erp_account_id) = '' THEN
                ['NO_ERP_ACCOUNT', format('payment {}: account {} has no ERPAccountId__c', payment_number, quoted(coalesce(account_number, account_id)))]
            WHEN NOT currency_known THEN
                ['UNMAPPED_CODE', format('payment {}: currency {} is not in currencies.csv', payment_number, quoted(currency))]
            WHEN NOT type_known THEN
                ['UNMAPPED_CODE', format('payment {}: type {} is not in payment_methods.csv', payment_number, quoted(type))]
            WHEN amount < 0 THEN
                ['NEGATIVE_AMOUNT', format('payment {}: amount {} is negative', payment_number, dec_text(amount))]
        END AS reject
    FROM doc
)
SELECT
    'payment' AS doc_type,
    id AS zuora_id,
    payment_number AS number,
    id AS idempotency_key,
    erp_account_id AS customer,
    currency,
    amount,
    effective_date AS doc_date,
    '/api/payments' AS endpoint,
    j_object([j_field('payment', j_object([
        j_field('zuora_id', j_str(id)),
        j_field('number', j_str(payment_number)),
        j_field('customer', j_str(erp_account_id)),
        j_field('currency', j_str(currency)),
        j_field('date', j_date(effective_date)),
        j_field('amount', j_num(amount))
    ]))]) AS payload,
    reject[1] AS reason_code,
    reject[2] AS message
FROM checked
