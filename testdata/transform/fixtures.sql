-- Rows of the transform test fixtures. gen_fixtures.go creates one table per
-- raw table (columns and types of docs/design.md), runs this file and copies
-- each table to raw/<table>.parquet. Window: 20261125T220000Z-20261125T230000Z.

-- Invoices -------------------------------------------------------------------
INSERT INTO invoices BY NAME
SELECT id, account_id, account_number, erp_account_id, invoice_number, CAST(invoice_date AS DATE) AS invoice_date,
       CAST(invoice_date AS DATE) + 30 AS due_date, 'Posted' AS status, currency,
       CAST(amount AS DECIMAL(38, 9)) AS amount, CAST(amount_without_tax AS DECIMAL(38, 9)) AS amount_without_tax,
       CAST(tax_amount AS DECIMAL(38, 9)) AS tax_amount, CAST(amount AS DECIMAL(38, 9)) AS balance,
       transferred_to_accounting, CAST(item_count AS BIGINT) AS item_count,
       TIMESTAMPTZ '2026-11-25 21:00:00+00' AS created_date, CAST(updated AS TIMESTAMPTZ) AS updated_date,
       strftime(CAST(updated AS TIMESTAMPTZ), '%Y-%m-%dT%H:%M:%S-00:00') AS updated_date_raw
FROM (VALUES
    ('inv-usd',      'acc-1', 'A00000001', 'ERP-1001',   'INV00000001', '2026-11-25', 'USD', '1234.5',   '1000',   '234.5',  'No',  1,   '2026-11-25 22:01:00+00'),
    ('inv-decimals', 'acc-2', 'A00000002', 'ERP-1002',   'INV00000002', '2026-11-25', 'EUR', '0.3',      '0.3',    '0',      'No',  2,   '2026-11-25 22:02:00+00'),
    ('inv-unicode',  'acc-3', 'A00000003', 'ERP-日本-3', 'INV00000003', '2026-11-24', 'JPY', '5000',     '5000',   '0',      'No',  1,   '2026-11-25 22:03:00+00'),
    ('inv-250',      'acc-4', 'A00000004', 'ERP-1004',   'INV00000004', '2026-11-25', 'GBP', '255',      '252.5',  '2.5',    'No',  250, '2026-11-25 22:04:00+00'),
    ('inv-version',  'acc-1', 'A00000001', 'ERP-1001',   'INV00000005', '2026-11-25', 'USD', '10',       '10',     '0',      'No',  1,   '2026-11-25 22:05:00+00'),
    ('inv-version',  'acc-1', 'A00000001', 'ERP-1001',   'INV00000005', '2026-11-25', 'USD', '20',       '20',     '0',      'No',  1,   '2026-11-25 22:35:00+00'),
    ('inv-no-erp',   'acc-5', 'A00000005', NULL,         'INV00000006', '2026-11-25', 'USD', '99.99',    '99.99',  '0',      'No',  1,   '2026-11-25 22:06:00+00'),
    ('inv-currency', 'acc-1', 'A00000001', 'ERP-1001',   'INV00000007', '2026-11-25', 'XTS', '15',       '15',     '0',      'No',  1,   '2026-11-25 22:07:00+00'),
    ('inv-mismatch', 'acc-1', 'A00000001', 'ERP-1001',   'INV00000008', '2026-11-25', 'USD', '100',      '100',    '0',      'No',  1,   '2026-11-25 22:08:00+00'),
    ('inv-missing',  'acc-1', 'A00000001', 'ERP-1001',   NULL,          '2026-11-25', 'USD', '7',        '7',      '0',      'No',  1,   '2026-11-25 22:09:00+00'),
    ('inv-transfer', 'acc-1', 'A00000001', 'ERP-1001',   'INV00000010', '2026-11-25', 'USD', '42',       '42',     '0',      'Yes', 1,   '2026-11-25 22:10:00+00'),
    ('inv-posted',   'acc-1', 'A00000001', 'ERP-1001',   'INV00000011', '2026-11-25', 'USD', '43',       '43',     '0',      'No',  1,   '2026-11-25 22:11:00+00'),
    ('inv-negative', 'acc-1', 'A00000001', 'ERP-1001',   'INV00000012', '2026-11-25', 'USD', '-50',      '-50',    '0',      'No',  1,   '2026-11-25 22:12:00+00'),
    ('inv-big',      'acc-6', 'A00000006', 'ERP-1006',   'INV00000013', '2026-11-25', 'CAD', '12345678901234567.123456789', '12345678901234567.123456789', '0', 'No', 1, '2026-11-25 22:13:00+00')
) AS v(id, account_id, account_number, erp_account_id, invoice_number, invoice_date, currency, amount, amount_without_tax, tax_amount, transferred_to_accounting, item_count, updated);

INSERT INTO invoice_items BY NAME
SELECT id, invoice_id, 'acc' AS account_id, charge_name, 'C-' || id AS charge_number, 'SKU-1' AS sku, 'Each' AS uom,
       CAST(quantity AS DECIMAL(38, 9)) AS quantity, CAST(unit_price AS DECIMAL(38, 9)) AS unit_price,
       CAST(charge_amount AS DECIMAL(38, 9)) AS charge_amount, CAST(tax_amount AS DECIMAL(38, 9)) AS tax_amount,
       '4000' AS accounting_code, CAST(service_start AS DATE) AS service_start_date, CAST(service_start AS DATE) + 30 AS service_end_date,
       TIMESTAMPTZ '2026-11-25 21:00:00+00' AS created_date, CAST(updated AS TIMESTAMPTZ) AS updated_date,
       strftime(CAST(updated AS TIMESTAMPTZ), '%Y-%m-%dT%H:%M:%S-00:00') AS updated_date_raw
FROM (VALUES
    ('ii-usd-1',      'inv-usd',      'Gold plan',                                     '1',   '1000',  '1000',  '234.5', '2026-11-01', '2026-11-25 22:01:00+00'),
    -- 0.2 starts before 0.1: items sort by service start date, then id.
    ('ii-dec-1',      'inv-decimals', 'Tenth',                                         '1',   '0.1',   '0.1',   '0',     '2026-11-10', '2026-11-25 22:02:00+00'),
    ('ii-dec-2',      'inv-decimals', 'Fifth',                                         '3',   '0.066666667', '0.2', '0',   '2026-11-05', '2026-11-25 22:02:00+00'),
    ('ii-uni-1',      'inv-unicode',  'Plan «Ünïcödé» 日本語 "quoted" <b>&amp;</b> \ tab	end', '2', '2500', '5000', '0', '2026-11-01', '2026-11-25 22:03:00+00'),
    ('ii-ver-1',      'inv-version',  'Old version',                                   '1',   '10',    '10',    '0',     '2026-11-01', '2026-11-25 22:05:00+00'),
    ('ii-ver-1',      'inv-version',  'New version',                                   '2',   '10',    '20',    '0',     '2026-11-01', '2026-11-25 22:35:00+00'),
    ('ii-noerp-1',    'inv-no-erp',   'Silver plan',                                   '1',   '99.99', '99.99', '0',     '2026-11-01', '2026-11-25 22:06:00+00'),
    ('ii-cur-1',      'inv-currency', 'Test currency',                                 '1',   '15',    '15',    '0',     '2026-11-01', '2026-11-25 22:07:00+00'),
    ('ii-mis-1',      'inv-mismatch', 'Partial',                                       '1',   '90',    '90',    '0',     '2026-11-01', '2026-11-25 22:08:00+00'),
    ('ii-missing-1',  'inv-missing',  'No number',                                     '1',   '7',     '7',     '0',     '2026-11-01', '2026-11-25 22:09:00+00'),
    ('ii-transfer-1', 'inv-transfer', 'Transferred',                                   '1',   '42',    '42',    '0',     '2026-11-01', '2026-11-25 22:10:00+00'),
    ('ii-posted-1',   'inv-posted',   'Posted',                                        '1',   '43',    '43',    '0',     '2026-11-01', '2026-11-25 22:11:00+00'),
    ('ii-neg-1',      'inv-negative', 'Credit',                                        '1',   '-50',   '-50',   '0',     '2026-11-01', '2026-11-25 22:12:00+00'),
    ('ii-big-1',      'inv-big',      'Enterprise',                                    '1',   '12345678901234567.123456789', '12345678901234567.123456789', '0', '2026-11-01', '2026-11-25 22:13:00+00'),
    -- An item whose invoice is not in the window: no document, no error.
    ('ii-orphan-1',   'inv-elsewhere', 'Orphan',                                       '1',   '1',     '1',     '0',     '2026-11-01', '2026-11-25 22:14:00+00')
) AS v(id, invoice_id, charge_name, quantity, unit_price, charge_amount, tax_amount, service_start, updated)
UNION ALL BY NAME
-- 250 items of 1.01 + 0.01 tax, in reverse id order of service date.
SELECT 'ii-250-' || lpad(CAST(i AS VARCHAR), 3, '0') AS id, 'inv-250' AS invoice_id, 'acc' AS account_id,
       'Usage line ' || i AS charge_name, 'C-250-' || i AS charge_number, 'SKU-U' AS sku, 'GB' AS uom,
       CAST(1 AS DECIMAL(38, 9)) AS quantity, CAST('1.01' AS DECIMAL(38, 9)) AS unit_price,
       CAST('1.01' AS DECIMAL(38, 9)) AS charge_amount, CAST('0.01' AS DECIMAL(38, 9)) AS tax_amount,
       '4100' AS accounting_code, DATE '2026-12-31' - CAST(i AS INTEGER) AS service_start_date, DATE '2026-12-31' AS service_end_date,
       TIMESTAMPTZ '2026-11-25 21:00:00+00' AS created_date, TIMESTAMPTZ '2026-11-25 22:04:00+00' AS updated_date,
       '2026-11-25T22:04:00-00:00' AS updated_date_raw
FROM range(1, 251) AS r(i);

-- Payments -------------------------------------------------------------------
INSERT INTO payments BY NAME
SELECT id, 'acc-1' AS account_id, 'A00000001' AS account_number, erp_account_id, payment_number,
       CAST(effective_date AS DATE) AS effective_date, CAST(amount AS DECIMAL(38, 9)) AS amount,
       CAST(amount AS DECIMAL(38, 9)) AS applied_amount, CAST(0 AS DECIMAL(38, 9)) AS unapplied_amount,
       currency, 'Processed' AS status, type, 'pm-1' AS payment_method_id, 'ref-' || id AS reference_id,
       transferred_to_accounting,
       TIMESTAMPTZ '2026-11-25 21:00:00+00' AS created_date, CAST(updated AS TIMESTAMPTZ) AS updated_date,
       strftime(CAST(updated AS TIMESTAMPTZ), '%Y-%m-%dT%H:%M:%S-00:00') AS updated_date_raw
FROM (VALUES
    ('pay-usd',      'ERP-1001', 'P-00000001', '2026-11-25', '1234.5', 'USD', 'External',   'No',  '2026-11-25 22:20:00+00'),
    ('pay-eur',      'ERP-1002', 'P-00000002', '2026-11-25', '0.30',   'EUR', 'Electronic', 'No',  '2026-11-25 22:21:00+00'),
    ('pay-negative', 'ERP-1001', 'P-00000003', '2026-11-25', '-10',    'USD', 'External',   'No',  '2026-11-25 22:22:00+00'),
    ('pay-type',     'ERP-1001', 'P-00000004', '2026-11-25', '5',      'USD', 'Barter',     'No',  '2026-11-25 22:23:00+00'),
    ('pay-retry',    'ERP-1001', 'P-00000005', '2026-11-25', '6',      'USD', 'External',   'No',  '2026-11-25 22:24:00+00')
) AS v(id, erp_account_id, payment_number, effective_date, amount, currency, type, transferred_to_accounting, updated);

-- Refunds --------------------------------------------------------------------
INSERT INTO refunds BY NAME
SELECT id, 'acc-1' AS account_id, 'A00000001' AS account_number, erp_account_id, refund_number,
       CAST(refund_date AS DATE) AS refund_date, CAST(amount AS DECIMAL(38, 9)) AS amount, currency,
       'Processed' AS status, type, 'Payment' AS source_type, 'CreditCard' AS method_type, 'Other' AS reason_code,
       'ref-' || id AS reference_id, transferred_to_accounting,
       TIMESTAMPTZ '2026-11-25 21:00:00+00' AS created_date, CAST(updated AS TIMESTAMPTZ) AS updated_date,
       strftime(CAST(updated AS TIMESTAMPTZ), '%Y-%m-%dT%H:%M:%S-00:00') AS updated_date_raw
FROM (VALUES
    ('ref-usd',     'ERP-1001', 'R-00000001', '2026-11-25', '12.34', 'USD', 'External', 'No', '2026-11-25 22:30:00+00'),
    ('ref-no-date', 'ERP-1001', 'R-00000002', NULL,         '1',     'USD', 'External', 'No', '2026-11-25 22:31:00+00'),
    ('ref-same',    'ERP-1001', 'R-00000003', '2026-11-25', '2',     'USD', 'External', 'No', '2026-11-25 22:32:00+00')
) AS v(id, erp_account_id, refund_number, refund_date, amount, currency, type, transferred_to_accounting, updated);

-- Credit memos ---------------------------------------------------------------
INSERT INTO credit_memos BY NAME
SELECT id, 'acc-1' AS account_id, 'A00000001' AS account_number, erp_account_id, 'inv-usd' AS invoice_id, memo_number,
       CAST(memo_date AS DATE) AS memo_date, CAST(total AS DECIMAL(38, 9)) AS total_amount,
       CAST(without_tax AS DECIMAL(38, 9)) AS total_amount_without_tax, CAST(tax AS DECIMAL(38, 9)) AS tax_amount,
       currency, 'Posted' AS status, 'Correcting invoice errors' AS reason_code, 'No' AS transferred_to_accounting,
       CAST(n AS BIGINT) AS item_count,
       TIMESTAMPTZ '2026-11-25 21:00:00+00' AS created_date, CAST(updated AS TIMESTAMPTZ) AS updated_date,
       strftime(CAST(updated AS TIMESTAMPTZ), '%Y-%m-%dT%H:%M:%S-00:00') AS updated_date_raw
FROM (VALUES
    ('cm-usd',      'ERP-1001', 'CM00000001', '2026-11-25', '110', '100', '10', 'USD', 2, '2026-11-25 22:40:00+00'),
    ('cm-negative', 'ERP-1001', 'CM00000002', '2026-11-25', '-5',  '-5',  '0',  'USD', 1, '2026-11-25 22:41:00+00')
) AS v(id, erp_account_id, memo_number, memo_date, total, without_tax, tax, currency, n, updated);

INSERT INTO credit_memo_items BY NAME
SELECT id, credit_memo_id, charge_name, 'C-' || id AS charge_number, 'SKU-1' AS sku, 'Each' AS unit_of_measure,
       CAST(1 AS DECIMAL(38, 9)) AS quantity, CAST(amount AS DECIMAL(38, 9)) AS unit_price,
       CAST(amount AS DECIMAL(38, 9)) AS amount, CAST(amount AS DECIMAL(38, 9)) AS amount_without_tax,
       CAST(tax AS DECIMAL(38, 9)) AS tax_amount, '4000' AS accounting_code,
       DATE '2026-11-01' AS service_start_date, DATE '2026-11-30' AS service_end_date, 'ii-usd-1' AS invoice_item_id,
       TIMESTAMPTZ '2026-11-25 21:00:00+00' AS created_date, TIMESTAMPTZ '2026-11-25 22:40:00+00' AS updated_date,
       '2026-11-25T22:40:00-00:00' AS updated_date_raw
FROM (VALUES
    ('cmi-usd-1', 'cm-usd',      'Refund of overcharge', '60', '6'),
    ('cmi-usd-2', 'cm-usd',      'Goodwill',             '40', '4'),
    ('cmi-neg-1', 'cm-negative', 'Odd',                  '-5', '0')
) AS v(id, credit_memo_id, charge_name, amount, tax);

-- Debit memos ----------------------------------------------------------------
INSERT INTO debit_memos BY NAME
SELECT id, 'acc-7' AS account_id, 'A00000007' AS account_number, erp_account_id, NULL AS invoice_id, memo_number,
       CAST(memo_date AS DATE) AS memo_date, CAST(memo_date AS DATE) + 14 AS due_date,
       CAST(total AS DECIMAL(38, 9)) AS total_amount, CAST(without_tax AS DECIMAL(38, 9)) AS total_amount_without_tax,
       CAST(tax AS DECIMAL(38, 9)) AS tax_amount, currency, 'Posted' AS status, 'Charge Dispute' AS reason_code,
       'No' AS transferred_to_accounting, CAST(1 AS BIGINT) AS item_count,
       TIMESTAMPTZ '2026-11-25 21:00:00+00' AS created_date, CAST(updated AS TIMESTAMPTZ) AS updated_date,
       strftime(CAST(updated AS TIMESTAMPTZ), '%Y-%m-%dT%H:%M:%S-00:00') AS updated_date_raw
FROM (VALUES
    ('dm-chf',    'ERP-1007', 'DM00000001', '2026-11-25', '21.5', '20', '1.5', 'CHF', '2026-11-25 22:50:00+00'),
    ('dm-posted', 'ERP-1007', 'DM00000002', '2026-11-25', '8',    '8',  '0',   'CHF', '2026-11-25 22:51:00+00')
) AS v(id, erp_account_id, memo_number, memo_date, total, without_tax, tax, currency, updated);

INSERT INTO debit_memo_items BY NAME
SELECT id, debit_memo_id, charge_name, 'C-' || id AS charge_number, 'SKU-2' AS sku, 'Each' AS unit_of_measure,
       CAST(1 AS DECIMAL(38, 9)) AS quantity, CAST(amount AS DECIMAL(38, 9)) AS unit_price,
       CAST(amount AS DECIMAL(38, 9)) AS amount, CAST(amount AS DECIMAL(38, 9)) AS amount_without_tax,
       CAST(tax AS DECIMAL(38, 9)) AS tax_amount, '4200' AS accounting_code,
       DATE '2026-11-01' AS service_start_date, DATE '2026-11-30' AS service_end_date, NULL AS invoice_item_id,
       TIMESTAMPTZ '2026-11-25 21:00:00+00' AS created_date, TIMESTAMPTZ '2026-11-25 22:50:00+00' AS updated_date,
       '2026-11-25T22:50:00-00:00' AS updated_date_raw
FROM (VALUES
    ('dmi-chf-1',    'dm-chf',    'Late fee',   '20', '1.5'),
    ('dmi-posted-1', 'dm-posted', 'Adjustment', '8',  '0')
) AS v(id, debit_memo_id, charge_name, amount, tax);

-- Ledger parts ---------------------------------------------------------------
-- ledger_other: the window before; ledger_same: this window (must not skip).
INSERT INTO ledger_other BY NAME
SELECT 'run-0' AS run_id, doc_type, zuora_id, zuora_id AS idempotency_key, action, outcome,
       CAST(status AS INTEGER) AS http_status, erp_id, '' AS message, CAST(1 AS INTEGER) AS attempts, false AS ambiguous,
       currency, CAST(amount AS DECIMAL(38, 9)) AS amount, 'sha' AS payload_sha256,
       TIMESTAMPTZ '2026-11-25 22:59:00+00' AS started_at, TIMESTAMPTZ '2026-11-25 22:59:01+00' AS finished_at
FROM (VALUES
    ('invoice',    'inv-posted', 'post', 'created',   201, 'erp-1', 'USD', '43'),
    ('debit_memo', 'dm-posted',  'post', 'duplicate', 201, 'erp-2', 'CHF', '8'),
    ('payment',    'pay-retry',  'post', 'transient', 503, NULL,    'USD', '6'),
    ('invoice',    'inv-usd',    'mark', 'marked',    200, NULL,    'USD', '1234.5')
) AS v(doc_type, zuora_id, action, outcome, status, erp_id, currency, amount);

INSERT INTO ledger_same BY NAME
SELECT 'run-1' AS run_id, 'refund' AS doc_type, 'ref-same' AS zuora_id, 'ref-same' AS idempotency_key, 'post' AS action,
       'created' AS outcome, CAST(201 AS INTEGER) AS http_status, 'erp-3' AS erp_id, '' AS message, CAST(1 AS INTEGER) AS attempts,
       false AS ambiguous, 'USD' AS currency, CAST(2 AS DECIMAL(38, 9)) AS amount, 'sha' AS payload_sha256,
       TIMESTAMPTZ '2026-11-25 23:10:00+00' AS started_at, TIMESTAMPTZ '2026-11-25 23:10:01+00' AS finished_at;
