"""User SQL in a sandbox: one read-only statement over one version's views, and nothing else.

Input: a query string from a person (CLI `sql`, the dashboard). Output: column names and rows,
or `QueryRefused` naming why. Two layers, so that neither alone has to be perfect:

1. The engine. After the lake is attached and the views are made, the DuckDB connection loses
   file and network access (`enable_external_access = false`; only the warehouse's own data
   directory and catalog stay reachable, through `allowed_directories`/`allowed_paths`, because
   the views read them), gets a memory cap, and its configuration is locked
   (`lock_configuration`): no later statement can undo any of it.
2. The statement. DuckDB's own parser (not a string filter) must find exactly one statement of
   type SELECT; its syntax tree (`json_serialize_sql`) may name only the version's views (and
   the query's own CTEs) as tables, and only a few generator table functions (`range`,
   `generate_series`, `unnest`). So `read_blob` of the catalog, `read_parquet` of another
   version's files, `lake.chunks` or `FROM 'file.csv'` are refused before anything runs.

The warehouse is attached READ_ONLY as well, so a refused or accepted query changes no byte of it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb

from warehouse.errors import QueryRefused, WarehouseError
from warehouse.lake import sql_literal

# Table functions that generate values and read nothing.
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
# A query may not take the machine down: DuckDB spills or fails past this.
MEMORY_LIMIT = "2GB"


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def lock_down(con: duckdb.DuckDBPyConnection, readable_directories: list[str],
              readable_files: list[str]) -> None:
    """Take file/network access away from `con` (but for the given paths) and lock its config."""
    statements = [
        "SET allowed_directories = [" + ", ".join(map(sql_literal, readable_directories)) + "]",
        "SET allowed_paths = [" + ", ".join(map(sql_literal, readable_files)) + "]",
        "SET memory_limit = " + sql_literal(MEMORY_LIMIT),
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ]
    for statement in statements:
        con.execute(statement)


def check_query(con: duckdb.DuckDBPyConnection, query: str, views: frozenset[str]) -> None:
    """Refuse anything but one SELECT over `views`.

    Raises:
        QueryRefused: with a one-line reason naming what was refused.
    """
    if not query.strip():
        raise QueryRefused("empty query: give one SELECT statement")
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise QueryRefused(f"query does not parse: {_first_line(exc)}") from exc
    if len(statements) != 1:
        raise QueryRefused(f"one statement at a time: the query holds {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryRefused(f"only SELECT is allowed here, not {kind.name} "
                           "(the warehouse is read-only through `sql`)")
    serialized = con.execute("SELECT json_serialize_sql(?)", [query]).fetchone()
    tree = json.loads(serialized[0] if serialized else "{}")
    if tree.get("error"):
        raise QueryRefused(f"query does not parse: {tree.get('error_message', '?')}")
    allowed = views | set(_cte_names(tree))
    for node in _nodes(tree):
        kind_name = node.get("type")
        if kind_name == "BASE_TABLE":
            _check_table(node, allowed, views)
        elif kind_name == "TABLE_FUNCTION":
            name = (node.get("function") or {}).get("function_name", "?")
            if name.lower() not in ALLOWED_TABLE_FUNCTIONS:
                raise QueryRefused(f"table function {name}() is not allowed here: queries read "
                                   f"only the views {', '.join(sorted(views))}")


def _check_table(node: dict[str, Any], allowed: set[str] | frozenset[str],
                 views: frozenset[str]) -> None:
    name = node.get("table_name", "")
    qualified = ".".join(p for p in (node.get("catalog_name"), node.get("schema_name"), name) if p)
    if node.get("catalog_name") or node.get("schema_name") not in ("", "main", "temp", None) \
            or name not in allowed:
        raise QueryRefused(f"table {qualified!r} is not readable here; the views are "
                           f"{', '.join(sorted(views))}")
    if node.get("at_clause"):
        raise QueryRefused(f"time travel on {name!r} is not allowed here; "
                           "pick a version with --version")


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _cte_names(tree: Any) -> Iterator[str]:
    for node in _nodes(tree):
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map", []):
                if isinstance(entry, dict) and entry.get("key"):
                    yield str(entry["key"])


def run_query(con: duckdb.DuckDBPyConnection, query: str, views: frozenset[str],
              timeout: float | None = None, max_rows: int | None = None) -> QueryResult:
    """Check and run `query` on a locked-down connection.

    Raises:
        QueryRefused: the statement is not allowed (nothing ran).
        WarehouseError: it ran and failed, or ran past `timeout` seconds (then it is interrupted).
    """
    check_query(con, query, views)
    timer = threading.Timer(timeout, con.interrupt) if timeout else None
    try:
        if timer:
            timer.start()
        cursor = con.execute(query)
        columns = [d[0] for d in cursor.description or ()]
        rows = cursor.fetchmany(max_rows) if max_rows else cursor.fetchall()
    except duckdb.InterruptException as exc:
        raise WarehouseError(f"query stopped after {timeout:g} s") from exc
    except duckdb.PermissionException as exc:
        raise QueryRefused(f"not allowed: {_first_line(exc)}") from exc
    except duckdb.Error as exc:
        raise WarehouseError(f"query failed: {_first_line(exc)}") from exc
    finally:
        if timer:
            timer.cancel()
    return QueryResult(columns, rows)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class SqlSession:
    """A locked-down connection and the views it may read; close it (or use `with`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, views: frozenset[str]) -> None:
        self.con = con
        self.views = views

    def query(self, sql: str, timeout: float | None = None, max_rows: int | None = None
              ) -> QueryResult:
        return run_query(self.con, sql, self.views, timeout, max_rows)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> SqlSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
