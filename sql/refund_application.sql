-- refund_application.sql: one row per refund application the window posts -> POST /api/applications.
--
-- It reads ar_applications, the applications the transform decided to post
-- (docs/design.md "AR pipeline"): doc_type, zuora_id, kind, source_zuora_id,
-- target_type (NULL for the account's credit balance), target_zuora_id,
-- customer (the account's ERP id), currency (the source document's), amount
-- (signed: negative for an unapply, whatever sign the tenant writes),
-- date (the effective date) and application_group_id. The transform, not
-- this file, rejects an application without a customer, a currency, a
-- source or a sign (NO_ERP_ACCOUNT, MISSING_FIELD, SIGN_UNDETERMINED), and
-- sets the idempotency key (the application's Zuora id), event and depends_on.
-- The payload is the ERP API's, exactly.
SELECT
    'refund_application' AS doc_type,
    zuora_id,
    NULL AS number,
    zuora_id AS idempotency_key,
    customer,
    currency,
    amount,
    date AS doc_date,
    '/api/applications' AS endpoint,
    j_object([j_field('application', j_object([
        j_field('zuora_id', j_str(zuora_id)),
        j_field('kind', j_str(kind)),
        j_field('source_zuora_id', j_str(source_zuora_id)),
        j_field('target_type', j_str(target_type)),
        j_field('target_zuora_id', j_str(target_zuora_id)),
        j_field('customer', j_str(customer)),
        j_field('currency', j_str(currency)),
        j_field('amount', j_num(amount)),
        j_field('date', j_date(date))
    ]))]) AS payload,
    NULL AS reason_code,
    NULL AS message
FROM ar_applications
WHERE doc_type = 'refund_application'
