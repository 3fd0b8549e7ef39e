-- Outstanding rejects by reason, type and currency: how many, how much, how old, and in which windows.
select reason_code, doc_type, currency,
       count(*) as documents,
       sum(amount) as amount,
       min(first_seen) as oldest_first_seen,
       max(last_seen) as last_seen,
       date_diff('day', min(first_seen), now()) as oldest_age_days,
       list(distinct "window" order by "window") as windows
from rejects
group by all
order by documents desc, reason_code, doc_type, currency
