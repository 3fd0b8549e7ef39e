-- reversal.sql: one row per live ERP copy the window ends -> POST /api/reversals.
--
-- It reads ar_reversals, the reversals the transform decided
-- (docs/design.md "AR pipeline"): zuora_id (the document or application
-- reversed), doc_type (the type of the live copy: a document type or an
-- application kind), number (the copy's; NULL for applications), customer,
-- currency and amount (the live copy's: the ERP refuses a reversal that does
-- not match it), date (of the version that reports it), reason (Zuora's
-- status, e.g. Canceled, Draft, Cancelled, or why the document is posted
-- again), idempotency_key (<zuora id>:reversal:<updatedDate of that
-- version>) and reverses_idempotency_key. The payload is the ERP API's, exactly.
SELECT
    'reversal' AS doc_type,
    zuora_id,
    number,
    idempotency_key,
    customer,
    currency,
    amount,
    date AS doc_date,
    '/api/reversals' AS endpoint,
    j_object([j_field('reversal', j_object([
        j_field('zuora_id', j_str(zuora_id)),
        j_field('doc_type', j_str(doc_type)),
        j_field('number', j_str(number)),
        j_field('customer', j_str(customer)),
        j_field('currency', j_str(currency)),
        j_field('amount', j_num(amount)),
        j_field('date', j_date(date)),
        j_field('reason', j_str(reason))
    ]))]) AS payload,
    NULL AS reason_code,
    NULL AS message
FROM ar_reversals
