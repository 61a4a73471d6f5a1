"""The DAG the Airflow harness runs (tests/realproducers/airflow.py): a small shop pipeline over CSV files.

Every task declares the files it reads and writes as Airflow Assets with `file://` URIs (inlets/outlets):
neither PythonOperator nor BashOperator has an OpenLineage extractor that finds datasets, so the provider
falls back to these "manually annotated" inlets/outlets for the events' inputs and outputs.

    land_orders ------> clean_orders ---+
                                        +--> revenue_by_country
    publish_fx_rates -------------------+

- land_orders (PythonOperator) and publish_fx_rates (BashOperator) only write: events with outputs only;
- clean_orders reads the landed file and writes a cleaned one;
- revenue_by_country reads both and writes the mart; it raises when the run's conf has `"fail_revenue": true`
  (the harness's second run), so that run has a FAIL event with an errorMessage.

The files live under the directory named by UPRIVER_AIRFLOW_DATA_DIR (absolute; read when the DAG is parsed,
since the Assets' URIs must be known then).
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Asset, Param

DAG_ID = "shop"
DATA_DIR = Path(os.environ.get("UPRIVER_AIRFLOW_DATA_DIR", "/tmp/upriver-airflow-data")).resolve()
RAW_ORDERS = DATA_DIR / "raw" / "orders.csv"
FX_RATES = DATA_DIR / "reference" / "fx_rates.csv"
CLEAN_ORDERS = DATA_DIR / "staging" / "orders.csv"
REVENUE = DATA_DIR / "marts" / "revenue_by_country.csv"

ORDERS = [
    ("o-1", "c-1", "DE", "EUR", "19.90", "paid"),
    ("o-2", "c-2", "FR", "EUR", "5.00", "paid"),
    ("o-3", "c-1", "DE", "EUR", "7.50", "cancelled"),
    ("o-4", "c-3", "US", "USD", "42.00", "paid"),
    ("o-5", "c-4", "GB", "GBP", "12.25", "paid"),
]
FX_TO_EUR = r"currency,rate\nEUR,1.0\nUSD,0.92\nGBP,1.17\n"  # printf turns each \n into a newline


def asset(path: Path) -> Asset:
    return Asset(uri=path.as_uri())


def land_orders() -> None:
    RAW_ORDERS.parent.mkdir(parents=True, exist_ok=True)
    with RAW_ORDERS.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["order_id", "customer_id", "country", "currency", "amount", "status"])
        writer.writerows(ORDERS)


def clean_orders() -> None:
    with RAW_ORDERS.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["status"] == "paid"]
    CLEAN_ORDERS.parent.mkdir(parents=True, exist_ok=True)
    with CLEAN_ORDERS.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["order_id", "customer_id", "country", "currency", "amount"])
        writer.writeheader()
        writer.writerows({key: row[key] for key in writer.fieldnames} for row in rows)


def revenue_by_country(**context: Any) -> None:
    if context["params"]["fail_revenue"]:
        raise ValueError("revenue_by_country: fail_revenue is set in the run's conf, failing on purpose")
    with FX_RATES.open(newline="") as handle:
        rates = {row["currency"]: float(row["rate"]) for row in csv.DictReader(handle)}
    revenue: dict[str, float] = defaultdict(float)
    with CLEAN_ORDERS.open(newline="") as handle:
        for row in csv.DictReader(handle):
            revenue[row["country"]] += float(row["amount"]) * rates[row["currency"]]
    REVENUE.parent.mkdir(parents=True, exist_ok=True)
    with REVENUE.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["country", "revenue_eur"])
        writer.writerows((country, f"{total:.2f}") for country, total in sorted(revenue.items()))


with DAG(
    dag_id=DAG_ID,
    schedule=None,
    catchup=False,
    params={"fail_revenue": Param(False, type="boolean")},
    description="Lands orders and FX rates as CSV files, cleans the orders, sums revenue per country.",
    tags=["upriver", "shop"],
) as dag:
    land = PythonOperator(task_id="land_orders", python_callable=land_orders, outlets=[asset(RAW_ORDERS)])
    fx = BashOperator(
        task_id="publish_fx_rates",
        bash_command=f"mkdir -p {FX_RATES.parent} && printf '{FX_TO_EUR}' > {FX_RATES}",
        outlets=[asset(FX_RATES)],
    )
    clean = PythonOperator(
        task_id="clean_orders",
        python_callable=clean_orders,
        inlets=[asset(RAW_ORDERS)],
        outlets=[asset(CLEAN_ORDERS)],
    )
    revenue = PythonOperator(
        task_id="revenue_by_country",
        python_callable=revenue_by_country,
        inlets=[asset(CLEAN_ORDERS), asset(FX_RATES)],
        outlets=[asset(REVENUE)],
    )
    land >> clean >> revenue
    fx >> revenue
