"""Open a DuckDB connection with the warehouse's DuckLake attached as `lake`.

Extensions load from their PyPI packages by file path, with autoinstall and autoload off: nothing
is ever fetched from an extension server. The catalog is SQLite inside the warehouse directory
by default (readers keep working while a writer commits); `postgresql://…` selects a PostgreSQL
catalog for warehouses shared by several machines. Parquet data lives under `<warehouse>/data/`,
which for an `s3://bucket/prefix` warehouse is `s3://bucket/prefix/data/`, read and written by
DuckDB's httpfs with a temporary secret made from the AWS environment (`warehouse/s3.py`).
"""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb

from warehouse.errors import WarehouseError
from warehouse.locate import location_of
from warehouse.location import Location
from warehouse.schema import TABLES

_EXTENSION_PACKAGES = {
    "ducklake": "duckdb_extension_ducklake",
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "httpfs": "duckdb_extension_httpfs",
}


def extension_path(name: str) -> Path:
    """The `.duckdb_extension` file shipped by the PyPI package of extension `name`."""
    package = _EXTENSION_PACKAGES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WarehouseError(f"DuckDB extension package {package!r} is not installed; "
                             "run `make install`")
    root = Path(next(iter(spec.submodule_search_locations)))
    wanted = root / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not wanted.exists():
        found = sorted(root.glob(f"extensions/*/{name}.duckdb_extension"))
        raise WarehouseError(f"{package} has no build for duckdb {duckdb.__version__} "
                             f"(found {[p.parent.name for p in found]}); pin matching versions")
    return wanted


def sql_literal(value: str) -> str:
    """`value` as a quoted SQL string literal, for the few statements that take no parameters.

    >>> sql_literal("it's")
    "'it''s'"
    """
    return "'" + value.replace("'", "''") + "'"


def redact_catalog(catalog: str | None) -> str | None:
    """`catalog` with its password (if any) replaced by ***, for anything a person may see.

    >>> redact_catalog("postgresql://ann:pw@127.0.0.1:5433/lake")
    'postgresql://ann:***@127.0.0.1:5433/lake'
    """
    if not catalog or "://" not in catalog:
        return catalog
    url = urlparse(catalog)
    if not url.password:
        return catalog
    netloc = url.netloc.replace(f":{url.password}@", ":***@", 1)
    return url._replace(netloc=netloc).geturl()


def catalog_attach_string(directory: Path, catalog: str | None) -> tuple[str, str]:
    """(DuckLake ATTACH target, catalog extension) for the warehouse's catalog setting.

    >>> catalog_attach_string(Path("/w"), None)
    ('ducklake:sqlite:/w/catalog.sqlite', 'sqlite_scanner')
    >>> catalog_attach_string(Path("/w"), "postgresql://ann:pw@127.0.0.1:5433/lake")[0]
    'ducklake:postgres:dbname=lake host=127.0.0.1 port=5433 user=ann password=pw'
    """
    if catalog is None or catalog in ("", "sqlite"):
        return f"ducklake:sqlite:{directory / 'catalog.sqlite'}", "sqlite_scanner"
    url = urlparse(catalog)
    if url.scheme not in ("postgresql", "postgres"):
        raise WarehouseError(f"catalog {catalog!r}: expected 'sqlite' or a postgresql:// URL")
    parts = {"dbname": url.path.lstrip("/") or "postgres", "host": url.hostname or "127.0.0.1",
             "port": url.port, "user": url.username and unquote(url.username),
             "password": url.password and unquote(url.password)}
    libpq = " ".join(f"{k}={v}" for k, v in parts.items() if v)
    return f"ducklake:postgres:{libpq}", "postgres_scanner"


def ensure_wal(catalog_file: Path) -> None:
    """Put a SQLite catalog in WAL mode (persistent, once per file).

    In SQLite's default rollback-journal mode a reader's shared lock makes the writer's commit
    fail with "database is locked"; in WAL mode readers and one writer never block each other,
    and a reader sees the last committed snapshot.
    """
    catalog_file.parent.mkdir(parents=True, exist_ok=True)
    if catalog_file.exists():
        with catalog_file.open("rb") as handle:
            header = handle.read(20)
        if len(header) == 20 and header[18] == 2:  # file format bytes: 2 = WAL
            return
    db = sqlite3.connect(catalog_file, timeout=30)
    try:
        db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()


def is_sqlite(catalog: str | None) -> bool:
    return catalog is None or catalog in ("", "sqlite")


def require_shared_catalog(location: Location, catalog: str | None) -> None:
    """Refuse a remote warehouse with the SQLite catalog (a file SQLite must lock in place).

    Raises:
        WarehouseError: one line saying what to pass instead.
    """
    if location.is_remote and is_sqlite(catalog):
        raise WarehouseError(f"warehouse {location.url} is on object storage, where a SQLite "
                             "catalog cannot live; pass --catalog postgresql://user@host:port/db")


def connect(where: Path | Location, catalog: str | None = None, read_only: bool = False
            ) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the lake attached as `lake` (created if new).

    Args:
        where: the warehouse directory, or its `Location` (local or s3://).

    Raises:
        WarehouseError: a reader opens a warehouse that does not exist yet; an s3:// warehouse
            with the SQLite catalog or without credentials.
    """
    location = location_of(where)
    require_shared_catalog(location, catalog)
    directory = location.local
    if directory.exists() and not directory.is_dir():
        raise WarehouseError(f"--warehouse {directory} is a file, not a warehouse directory")
    target, catalog_extension = catalog_attach_string(directory.resolve(), catalog)
    if read_only and catalog_extension == "sqlite_scanner" and not (
            directory / "catalog.sqlite").exists():
        raise WarehouseError(f"no warehouse at {directory}: run `embedpipe ingest SOURCE` first "
                             "(or pass --warehouse / set EMBEDPIPE_WAREHOUSE)")
    if catalog_extension == "sqlite_scanner" and not read_only:
        ensure_wal(directory.resolve() / "catalog.sqlite")
    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    extensions = (catalog_extension, "ducklake") + (("httpfs",) if location.is_remote else ())
    for name in extensions:
        con.execute("LOAD " + sql_literal(str(extension_path(name))))
    if location.is_remote:
        data = location.join("data") + "/"
        create_s3_secret(con)
    else:
        directory = directory.resolve()
        data_path = directory / "data"
        if not read_only:
            data_path.mkdir(parents=True, exist_ok=True)
        data = f"{data_path}/"
    # Writers never inline rows into the catalog: vectors and chunk text belong in Parquet,
    # and an inlined catalog grows every reader's metadata scan.
    # OVERRIDE_DATA_PATH: the data lives wherever the warehouse directory is now, so a copied or
    # moved warehouse (or a shared one mounted elsewhere) opens; file paths are stored relative.
    options = "DATA_PATH " + sql_literal(data) + ", OVERRIDE_DATA_PATH true" + (
        ", READ_ONLY" if read_only else ", DATA_INLINING_ROW_LIMIT 0")
    try:
        # ATTACH takes no bound parameters; both strings are quoted literals.
        con.execute("ATTACH " + sql_literal(target) + " AS lake (" + options + ")")
    except duckdb.Error as exc:
        con.close()
        password = urlparse(catalog).password if catalog and "://" in catalog else None
        detail = str(exc).replace(password, "***") if password else str(exc)
        raise WarehouseError(f"cannot open the warehouse catalog at {location.url}: "
                             f"{detail}") from exc
    if not read_only:
        _create_tables(con)
    return con


def create_s3_secret(con: duckdb.DuckDBPyConnection) -> None:
    """A temporary (this connection only, never persisted) S3 secret from the environment."""
    from warehouse.s3 import S3Settings

    options = S3Settings.from_env().duckdb_options()
    body = ", ".join(f"{name} " + (("true" if value else "false") if isinstance(value, bool)
                                   else sql_literal(value)) for name, value in options.items())
    try:  # CREATE SECRET takes no bound parameters: the values are quoted literals
        con.execute("CREATE TEMPORARY SECRET embedpipe_s3 (TYPE s3, " + body + ")")
    except duckdb.Error:
        con.close()
        # DuckDB may echo the statement: say which settings, never their values.
        raise WarehouseError("DuckDB refused the S3 settings from AWS_* variables (keys, "
                             "region, AWS_ENDPOINT_URL); check them") from None


def _columns(ddl: str) -> list[tuple[str, str]]:
    """(name, type) pairs of a TABLES entry; names may be double-quoted."""
    pairs = []
    for column in ddl.split(","):
        name, _, sql_type = column.strip().partition(" ")
        pairs.append((name.strip('"'), sql_type.strip()))
    return pairs


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables and add missing columns (DuckLake schema evolution), atomically.

    A warehouse written by an older embedpipe gains the new columns as NULLs; nothing is
    rewritten.
    """
    existing: dict[str, set[str]] = {}
    for table, column in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = 'lake'").fetchall():
        existing.setdefault(table, set()).add(column)
    statements = []
    for name, ddl in TABLES.items():  # fixed names and types from schema.py
        if name not in existing:
            statements.append("CREATE TABLE lake." + name + " (" + ddl + ")")
            continue
        for column, sql_type in _columns(ddl):
            if column not in existing[name]:
                statements.append(f'ALTER TABLE lake.{name} ADD COLUMN "{column}" {sql_type}')
    if not statements:
        return
    con.execute("BEGIN")
    for statement in statements:
        con.execute(statement)
    con.execute("COMMIT")
