"""The lake's columns and the stages' Arrow schemas are the same names in the same order."""

from __future__ import annotations

import re

import pytest

from tasks.prep.schema import CHUNKS, DOCUMENTS, QUARANTINE
from warehouse.schema import TABLES


def lake_columns(table: str) -> list[str]:
    return [re.sub(r'"', "", col.split()[0]) for col in TABLES[table].split(",")
            if col.strip()]


@pytest.mark.parametrize(("table", "schema", "extra"), [
    ("documents", DOCUMENTS, []),
    ("chunks", CHUNKS, ["chunk_key"]),
    ("quarantine", QUARANTINE, ["version_id"]),
])
def test_lake_matches_stage_schema(table, schema, extra):
    assert lake_columns(table) == extra + schema.names
