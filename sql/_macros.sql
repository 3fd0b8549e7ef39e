-- Macros shared by the mapping files. Files whose name starts with "_" run
-- first, in name order; each may hold several statements.
--
-- Payloads are built as text, not with json()/json_object(): DuckDB parses
-- JSON numbers as doubles, so json('12345678901234567.123456789') would come
-- back as 12345678901234568.0. Amounts go in as their exact decimal text.

-- dec_text renders an amount exactly, without trailing zeros:
-- 1.100000000 -> 1.1, 10.000000000 -> 10, NULL -> NULL. An amount under a
-- billion is rendered as DECIMAL(18, 9), the same text at a tenth of the
-- cost of DECIMAL(38, 9)'s 128-bit arithmetic.
CREATE OR REPLACE MACRO dec_text(x) AS
    regexp_replace(
        CASE WHEN abs(CAST(x AS DECIMAL(38, 9))) < 1000000000
            THEN CAST(CAST(x AS DECIMAL(18, 9)) AS VARCHAR)
            ELSE CAST(CAST(x AS DECIMAL(38, 9)) AS VARCHAR)
        END, '\.?0+$', '');

-- JSON values as text.
CREATE OR REPLACE MACRO j_num(x) AS coalesce(dec_text(x), 'null');
CREATE OR REPLACE MACRO j_str(x) AS
    CASE WHEN x IS NULL THEN 'null' ELSE CAST(to_json(CAST(x AS VARCHAR)) AS VARCHAR) END;
CREATE OR REPLACE MACRO j_date(x) AS
    CASE WHEN x IS NULL THEN 'null' ELSE '"' || strftime(CAST(x AS DATE), '%Y-%m-%d') || '"' END;

-- j_field is one "key":value pair; j_object joins pairs into an object, in order.
CREATE OR REPLACE MACRO j_field(k, v) AS CAST(to_json(CAST(k AS VARCHAR)) AS VARCHAR) || ':' || v;
CREATE OR REPLACE MACRO j_object(fields) AS '{' || array_to_string(fields, ',') || '}';

-- quoted renders a value for a reject message: 'EUR', or NULL.
CREATE OR REPLACE MACRO quoted(x) AS coalesce('''' || CAST(x AS VARCHAR) || '''', 'NULL');
