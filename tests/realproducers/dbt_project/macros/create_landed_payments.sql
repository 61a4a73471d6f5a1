{#- The source table landed.payments: created here, outside any dbt node, so that in the events it is a
    dataset that jobs read and no dbt job writes. Idempotent, since the hook runs before every command. -#}
{% macro create_landed_payments() %}
create schema if not exists landed;
create table if not exists landed.payments as
select * from (values
    (1, 1, 'credit_card', 1000),
    (2, 2, 'credit_card', 2000),
    (3, 3, 'coupon', 100),
    (4, 3, 'credit_card', 500),
    (5, 4, 'bank_transfer', 2500),
    (6, 5, 'credit_card', 1700),
    (7, 6, 'gift_card', 600),
    (8, 7, 'bank_transfer', 1600)
) as t(payment_id, order_id, payment_method, amount_cents);
{% endmacro %}
