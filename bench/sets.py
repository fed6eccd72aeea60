"""Partition sets the benchmarks start from: tables, pg_partman registration, and days and months as bounds."""

from __future__ import annotations

import datetime as dt

from bench.harness import Bench

UTC = dt.timezone.utc


def today() -> dt.date:
    return dt.datetime.now(UTC).date()


def month_start(day: dt.date, shift: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 + shift
    return dt.date(index // 12, index % 12 + 1, 1)


def timestamp(day: dt.date) -> str:
    return f"{day.isoformat()} 00:00:00+00"


def partition_of(parent: str, name: str, lower: dt.date, upper: dt.date) -> str:
    """The plain-SQL way: CREATE TABLE ... PARTITION OF, pg_partman's naming (parent_pYYYY_MM_DD)."""
    return (f"CREATE TABLE public.{name} PARTITION OF public.{parent} "
            f"FOR VALUES FROM ('{timestamp(lower)}') TO ('{timestamp(upper)}')")


def daily_name(parent: str, day: dt.date) -> str:
    return f"{parent}_p{day:%Y_%m_%d}"


def monthly_name(parent: str, month: dt.date) -> str:
    return f"{parent}_p{month:%Y_%m}"


def create_events(bench: Bench, db: str, table: str = "events") -> None:
    """The parent every daily benchmark uses: a time key, a payload, and a btree index on the key."""
    bench.sql(db, f"CREATE TABLE public.{table} (id bigint NOT NULL, created_at timestamptz NOT NULL, payload text) "
                  "PARTITION BY RANGE (created_at)")
    bench.sql(db, f"CREATE INDEX ON public.{table} (created_at)")


def drop_partman_set(bench: Bench, db: str, table: str) -> None:
    """Forget a table in pg_partman (config and template table) and drop it."""
    bench.sql(db, "DELETE FROM partman.part_config WHERE parent_table = %s", (f"public.{table}",))
    bench.sql(db, f"DROP TABLE IF EXISTS partman.template_public_{table}")
    bench.sql(db, f"DROP TABLE IF EXISTS public.{table}")


def create_parent(bench: Bench, db: str, table: str, control: str, interval: str, premake: int,
                  start: dt.date | None = None) -> None:
    """pg_partman 4.7's create_parent, native partitioning on the time column `control`."""
    start_argument = f", p_start_partition := '{timestamp(start)}'" if start else ""
    bench.sql(db, f"SELECT partman.create_parent(p_parent_table := 'public.{table}', p_control := '{control}', "
                  f"p_type := 'native', p_interval := '{interval}', p_premake := {premake}{start_argument})")


def add_daily_partitions(bench: Bench, db: str, table: str, days: list[dt.date], batch: int = 200) -> None:
    """Plain CREATE TABLE ... PARTITION OF, in transactions of `batch` (one transaction for thousands is slower)."""
    for first in range(0, len(days), batch):
        statements = [partition_of(table, daily_name(table, day), day, day + dt.timedelta(days=1))
                      for day in days[first:first + batch]]
        with bench.connect(db) as conn:
            with conn.transaction():
                for statement in statements:
                    conn.execute(statement)


def partition_count(bench: Bench, db: str, table: str) -> int:
    return int(bench.value(db, "SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass",
                           (f"public.{table}",)))
