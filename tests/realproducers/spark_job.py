# mypy: ignore-errors
"""The PySpark job behind tests/realproducers/spark.py; run by that harness in the Spark venv, never imported.

`python spark_job.py seed WORKDIR CONF_JSON` writes the two input datasets (a CSV with the stdlib, a parquet file
with a Spark app that has no OpenLineage listener). `python spark_job.py lineage WORKDIR CONF_JSON` is the app the
listener watches. CONF_JSON is a JSON object of Spark settings from the harness (local mode; for `lineage` also the
listener, its transport and jar).

The lineage app, in order:
1. reads the customers CSV and the orders parquet (file datasets), joins and aggregates them, writes parquet
   to out/revenue_by_country;
2. `CREATE TABLE shop.customer_revenue USING parquet AS SELECT ...` (a catalog table under the warehouse);
3. appends to that table's own location by path (the same table written by path, not by name);
4. `INSERT INTO shop.customer_revenue ...` (written by name again);
5. reads the table back by name (`spark.table`) and writes out/top_customers as parquet.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812 (the usual PySpark alias)
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

APP = "shop_lineage"
DATABASE = "shop"
TABLE = f"{DATABASE}.customer_revenue"

CUSTOMERS = [
    (1, "Ada", "GB"),
    (2, "Grace", "US"),
    (3, "Linus", "FI"),
    (4, "Margaret", "US"),
    (5, "Alan", "GB"),
]
ORDERS = [
    (100, 1, 12.5),
    (101, 1, 7.0),
    (102, 2, 30.0),
    (103, 3, 4.25),
    (104, 4, 18.0),
    (105, 4, 2.0),
    (106, 5, 9.75),
    (107, 2, 11.0),
]
ORDER_SCHEMA = StructType(
    [
        StructField("order_id", IntegerType(), False),
        StructField("customer_id", IntegerType(), False),
        StructField("amount", DoubleType(), False),
    ]
)
CUSTOMER_SCHEMA = StructType(
    [
        StructField("customer_id", IntegerType(), False),
        StructField("name", StringType(), False),
        StructField("country", StringType(), False),
    ]
)


def paths(workdir: Path) -> dict[str, Path]:
    return {
        "customers": workdir / "input" / "customers.csv",
        "orders": workdir / "input" / "orders",
        "revenue": workdir / "out" / "revenue_by_country",
        "top": workdir / "out" / "top_customers",
        "warehouse": workdir / "warehouse",
    }


def session(name: str, conf: dict[str, str], warehouse: Path) -> SparkSession:
    builder = SparkSession.builder.appName(name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.config("spark.sql.warehouse.dir", str(warehouse)).getOrCreate()


def seed(workdir: Path, conf: dict[str, str]) -> None:
    """The inputs: the CSV with the stdlib, the parquet with a Spark app that has no listener."""
    p = paths(workdir)
    p["customers"].parent.mkdir(parents=True, exist_ok=True)
    with p["customers"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([field.name for field in CUSTOMER_SCHEMA.fields])
        writer.writerows(CUSTOMERS)
    spark = session("shop_seed", conf, workdir / "seed-warehouse")
    try:
        spark.createDataFrame(ORDERS, ORDER_SCHEMA).coalesce(1).write.mode("overwrite").parquet(str(p["orders"]))
    finally:
        spark.stop()


def lineage(workdir: Path, conf: dict[str, str]) -> None:
    p = paths(workdir)
    spark = session(APP, conf, p["warehouse"])
    try:
        customers = spark.read.option("header", "true").schema(CUSTOMER_SCHEMA).csv(str(p["customers"]))
        orders = spark.read.parquet(str(p["orders"]))

        # 1. join + aggregate -> parquet by path
        joined = orders.join(customers, "customer_id")
        revenue = joined.groupBy("country").agg(
            F.sum("amount").alias("revenue"), F.count("order_id").alias("order_count")
        )
        revenue.coalesce(1).write.mode("overwrite").parquet(str(p["revenue"]))

        # 2. CTAS into a catalog table
        customers.createOrReplaceTempView("customers")
        orders.createOrReplaceTempView("orders")
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
        spark.sql(
            f"CREATE TABLE {TABLE} USING parquet AS "
            "SELECT c.customer_id, c.name, SUM(o.amount) AS total "
            "FROM orders o JOIN customers c ON o.customer_id = c.customer_id "
            "WHERE o.amount >= 5 GROUP BY c.customer_id, c.name"
        )

        # 3. the same table written by path (its location in the warehouse)
        location = spark.sql(f"DESCRIBE TABLE EXTENDED {TABLE}").where("col_name = 'Location'").first()["data_type"]
        small = (
            orders.where(F.col("amount") < 5)
            .join(customers, "customer_id")
            .groupBy("customer_id", "name")
            .agg(F.sum("amount").alias("total"))
        )
        small.coalesce(1).write.mode("append").parquet(location)
        spark.catalog.refreshTable(TABLE)

        # 4. the same table written by name
        spark.sql(f"INSERT INTO {TABLE} SELECT customer_id, name, 0.0 AS total FROM customers WHERE country = 'FI'")

        # 5. read the table back by name -> parquet by path
        top = spark.table(TABLE).groupBy("customer_id", "name").agg(F.sum("total").alias("total"))
        top.orderBy(F.desc("total")).limit(3).coalesce(1).write.mode("overwrite").parquet(str(p["top"]))
        print(json.dumps({"table_location": location}), flush=True)
    finally:
        spark.stop()  # drains the listener bus: every OpenLineage event is written before this returns


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] in ("seed", "lineage"):
        step = seed if argv[0] == "seed" else lineage
        step(Path(argv[1]), json.loads(argv[2]))
        return 0
    print("usage: spark_job.py seed|lineage WORKDIR CONF_JSON", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
