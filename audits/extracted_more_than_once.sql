-- Documents staged by more than one window (write-back echoes, backfills, new versions), with every window and the latest version.
select doc_type, id,
       count(*) as copies,
       count(distinct updated_date) as versions,
       list("window" order by "window") as windows,
       max(updated_date) as latest_updated_date,
       {'window': arg_max("window", updated_date), 'number': arg_max(number, updated_date),
        'currency': arg_max(currency, updated_date), 'amount': arg_max(amount, updated_date)} as latest
from extracted
group by doc_type, id
having count(*) > 1
order by doc_type, id
