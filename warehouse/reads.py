"""The base of the warehouse's readers: short-lived read-only connections to the lake.

`Warehouse` (store.py) combines the readers built on it: vector reads (vector_reads.py) and
run, metric and drift history reads (run_reads.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pyarrow as pa

from warehouse import queries
from warehouse.lake import connect as lake_connect
from warehouse.location import Location


class LakeReads:
    """Read-only queries against the lake at `location` (with its `catalog`)."""

    location: Location
    catalog: str | None

    @contextmanager
    def _reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = lake_connect(self.location, self.catalog, read_only=True)
        try:
            yield con
        finally:
            con.close()

    def _table(self, sql: str, params: list | None = None) -> pa.Table:
        """One query's result as an Arrow table, on a short-lived read-only connection."""
        with self._reader() as con:
            return con.execute(sql, params or []).to_arrow_table()


def lake_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables the lake has now (an older warehouse may lack some until its next writer)."""
    return {r[0] for r in con.execute(queries.LAKE_TABLES).fetchall()}
