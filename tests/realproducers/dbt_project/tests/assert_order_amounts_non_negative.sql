-- A singular test: no order has a negative amount.
select order_id, amount
from {{ ref('orders') }}
where amount < 0
