-- The same Zuora document confirmed by the ERP under two ERP ids: a document posted twice. Must be empty.
select doc_type, zuora_id,
       count(distinct erp_id) as erp_ids,
       list(distinct erp_id order by erp_id) as erp_id_list,
       list(distinct "window" order by "window") as windows
from ledger
where action = 'post' and outcome in ('created', 'duplicate') and coalesce(erp_id, '') <> ''
group by doc_type, zuora_id
having count(distinct erp_id) > 1
order by doc_type, zuora_id
