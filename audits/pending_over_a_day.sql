-- Documents of windows that ended more than a day ago that the ERP has not confirmed, or that it confirmed but Zuora does not show marked.
with posts as (
  select zuora_id, arg_max(outcome, finished_at) as last_outcome,
         bool_or(outcome in ('created', 'duplicate')) as confirmed
  from ledger where action = 'post' group by zuora_id
), marks as (
  select distinct zuora_id from ledger where action = 'mark' and outcome = 'marked'
)
select d."window", d.doc_type, d.zuora_id, d.number, d.customer, d.currency, d.amount,
       case when coalesce(p.confirmed, false) then 'not marked' else 'not posted' end as state,
       p.last_outcome,
       date_diff('hour', strptime(split_part(d."window", '-', 2), '%Y%m%dT%H%M%SZ'), now()::timestamp) as hours_since_window_end
from documents d
left join posts p using (zuora_id)
left join marks m using (zuora_id)
where strptime(split_part(d."window", '-', 2), '%Y%m%dT%H%M%SZ') < now()::timestamp - interval 1 day
  and (not coalesce(p.confirmed, false) and coalesce(p.last_outcome, '') <> 'rejected'
       or coalesce(p.confirmed, false) and m.zuora_id is null)
order by d."window", d.doc_type, d.number
