-- An aggregate with a filter: revenue of the completed orders, per day.
select
    order_date,
    count(*) as order_count,
    sum(amount) as revenue
from {{ ref('orders') }}
where status = 'completed'
group by order_date
