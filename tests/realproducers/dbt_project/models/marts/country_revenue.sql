-- Fails when the var fail_model is true (the harness's second `dbt-ol run`): the column does not exist.
select
    c.country,
    sum(o.amount) as revenue
from {{ ref('orders') }} as o
join {{ ref('stg_customers') }} as c on o.customer_id = c.customer_id
{% if var('fail_model') %}
where o.no_such_column > 0
{% endif %}
group by c.country
