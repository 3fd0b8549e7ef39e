-- A Zuora document or application the ERP holds more live copies of than it should: one event confirmed under two ERP ids, or more copies confirmed than reversals ended (a repost after a confirmed reversal is a new live copy, not a second one). Must be empty.
with confirmed as (
    select doc_type, zuora_id, idempotency_key, erp_id, "window"
    from ledger
    where action = 'post' and outcome in ('created', 'duplicate') and coalesce(erp_id, '') <> ''
),
copies as (
    select doc_type, zuora_id,
           count(distinct erp_id) as erp_ids,
           count(distinct idempotency_key) as events,
           list(distinct erp_id order by erp_id) as erp_id_list,
           list(distinct "window" order by "window") as windows
    from confirmed
    where doc_type <> 'reversal'
    group by doc_type, zuora_id
),
reversals as (
    select zuora_id, count(distinct idempotency_key) as reversals
    from confirmed
    where doc_type = 'reversal'
    group by zuora_id
)
select c.doc_type, c.zuora_id, c.erp_ids, coalesce(r.reversals, 0) as reversals, c.erp_id_list, c.windows
from copies as c left join reversals as r using (zuora_id)
where c.erp_ids > c.events or c.erp_ids > 1 + coalesce(r.reversals, 0)
order by c.doc_type, c.zuora_id
