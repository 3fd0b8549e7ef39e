-- Totals per type and currency at every step: extracted (quarantined records included), ready, rejected, skipped, posted and marked; balanced when extracted = ready + rejected + skipped in count and amount.
with extracted_all as (
  select doc_type, currency, amount from extracted
  union all
  select doc_type, currency, coalesce(amount, 0) from quarantine
), x as (
  select doc_type, currency, count(*) as n, sum(amount) as a from extracted_all group by all
), r as (
  select doc_type, currency, count(*) as n, sum(amount) as a from documents group by all
), j as (
  select doc_type, currency, count(*) as n, sum(amount) as a from reject_history group by all
), s as (
  select doc_type, currency, count(*) as n, sum(amount) as a from skipped group by all
), confirmed as (
  select doc_type, zuora_id, arg_max(currency, finished_at) as currency, arg_max(amount, finished_at) as amount
  from ledger where action = 'post' and outcome in ('created', 'duplicate') group by doc_type, zuora_id
), p as (
  select doc_type, currency, count(*) as n, sum(amount) as a from confirmed group by all
), m as (
  select c.doc_type, c.currency, count(*) as n, sum(c.amount) as a
  from confirmed c semi join (select zuora_id from ledger where action = 'mark' and outcome = 'marked') k using (zuora_id)
  group by all
), keys as (
  select doc_type, currency from x union select doc_type, currency from r union select doc_type, currency from j
  union select doc_type, currency from s union select doc_type, currency from p
)
select k.doc_type, k.currency,
       coalesce(x.n, 0) as extracted, coalesce(x.a, 0) as extracted_amount,
       coalesce(r.n, 0) as ready, coalesce(r.a, 0) as ready_amount,
       coalesce(j.n, 0) as rejected, coalesce(j.a, 0) as rejected_amount,
       coalesce(s.n, 0) as skipped, coalesce(s.a, 0) as skipped_amount,
       coalesce(p.n, 0) as posted, coalesce(p.a, 0) as posted_amount,
       coalesce(m.n, 0) as marked, coalesce(m.a, 0) as marked_amount,
       coalesce(x.n, 0) = coalesce(r.n, 0) + coalesce(j.n, 0) + coalesce(s.n, 0)
         and coalesce(x.a, 0) = coalesce(r.a, 0) + coalesce(j.a, 0) + coalesce(s.a, 0) as balanced,
       coalesce(p.n, 0) - coalesce(m.n, 0) as posted_not_marked
from keys k
left join x using (doc_type, currency) left join r using (doc_type, currency) left join j using (doc_type, currency)
left join s using (doc_type, currency) left join p using (doc_type, currency) left join m using (doc_type, currency)
order by k.doc_type, k.currency
