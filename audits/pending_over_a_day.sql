-- Lines of windows that ended more than a day ago that the ERP has not confirmed (neither refused nor held back for a rejected document), or documents it confirmed that Zuora does not show marked (applications and reversals have no flag in Zuora).
with posts as (
  select idempotency_key, arg_max(outcome, finished_at) as last_outcome,
         bool_or(outcome in ('created', 'duplicate')) as confirmed
  from ledger where action = 'post' group by idempotency_key
), marks as (
  select distinct idempotency_key from ledger where action = 'mark' and outcome = 'marked'
)
select d."window", d.doc_type, d.zuora_id, d.number, d.customer, d.currency, d.amount,
       case when coalesce(p.confirmed, false) then 'not marked' else 'not posted' end as state,
       p.last_outcome,
       date_diff('hour', strptime(split_part(d."window", '-', 2), '%Y%m%dT%H%M%SZ'), now()::timestamp) as hours_since_window_end
from documents d
left join posts p using (idempotency_key)
left join marks m using (idempotency_key)
where strptime(split_part(d."window", '-', 2), '%Y%m%dT%H%M%SZ') < now()::timestamp - interval 1 day
  and (not coalesce(p.confirmed, false) and coalesce(p.last_outcome, '') not in ('rejected', 'dependency_rejected')
       or coalesce(p.confirmed, false) and m.idempotency_key is null
          and d.doc_type in ('invoice', 'debit_memo', 'credit_memo', 'payment', 'refund'))
order by d."window", d.doc_type, d.number
