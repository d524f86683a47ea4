"""Version maintenance: compare, promote, expire.

`diff_versions` reads two snapshots; `compare_metrics` puts two versions' metrics side by side;
`make_active` is the promotion policy (a rejected version needs force, an expired one is gone);
`collect_garbage` expires the DuckLake snapshots that no kept version needs, lets DuckLake delete
the Parquet files only they referenced, and removes the expired versions' index directories.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from warehouse import indexes, queries
from warehouse.diff import diff_documents
from warehouse.errors import VersionRejected
from warehouse.store import Version, Warehouse
from warehouse.writer import WarehouseWriter


@dataclass(frozen=True)
class VersionDiff:
    a: int
    b: int
    documents: dict[str, list[str]]  # added / changed / deleted doc ids, from a to b
    chunks: dict[str, list[str]]  # added / removed / changed chunk ids
    model_changed: bool

    def as_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "documents": self.documents, "chunks": self.chunks,
                "model_changed": self.model_changed,
                "counts": {f"{kind}_{change}": len(ids)
                           for kind, section in (("documents", self.documents),
                                                 ("chunks", self.chunks))
                           for change, ids in section.items()}}


def diff_versions(warehouse: Warehouse, a: int, b: int) -> VersionDiff:
    """Documents and chunks that differ between versions `a` and `b`."""
    va, vb = warehouse.readable(a), warehouse.readable(b)
    docs = diff_documents(warehouse.documents_state(va), warehouse.documents_state(vb))
    with warehouse.session() as session:
        ca = dict(session.con.execute(queries.chunks_state(va.lake_snapshot)).fetchall())
        cb = dict(session.con.execute(queries.chunks_state(vb.lake_snapshot)).fetchall())
    chunks = {"added": sorted(c for c in cb if c not in ca),
              "removed": sorted(c for c in ca if c not in cb),
              "changed": sorted(c for c in cb if c in ca and ca[c] != cb[c])}
    return VersionDiff(a, b, {"added": docs.added, "changed": docs.changed,
                              "deleted": docs.deleted}, chunks,
                       va.model_fingerprint != vb.model_fingerprint)


def compare_metrics(warehouse: Warehouse, a: int, b: int) -> list[dict[str, Any]]:
    """Every metric of versions `a` and `b` side by side, with `delta` = b - a and whether the
    change is an improvement (`better`: None when the metric has no direction or no delta)."""
    warehouse.version(a), warehouse.version(b)
    left = {(r["evaluator"], r["metric"]): r for r in warehouse.metrics(a)}
    right = {(r["evaluator"], r["metric"]): r for r in warehouse.metrics(b)}
    rows = []
    for key in sorted(set(left) | set(right)):
        va = left[key]["value"] if key in left else None
        vb = right[key]["value"] if key in right else None
        direction = (left.get(key) or right.get(key) or {}).get("greater_is_better")
        delta = None if va is None or vb is None else vb - va
        better = None if not delta or direction is None else (delta > 0) == direction
        rows.append({"evaluator": key[0], "metric": key[1], "a": va, "b": vb, "delta": delta,
                     "greater_is_better": direction, "better": better})
    return rows


def make_active(writer: WarehouseWriter, version_id: int, force: bool = False) -> Version:
    """Point the warehouse at `version_id` (promote or roll back): moves a pointer, copies nothing.

    Raises:
        VersionExpired: its data is gone; nothing can make it active again.
        VersionRejected: the gate rejected it and `force` is off.
        IndexMismatch: its index is missing or not its own (rebuild with `embedpipe index`).
    """
    target = writer.warehouse.version(version_id)
    if target.status == "expired":
        writer.warehouse.readable(version_id)  # raises VersionExpired with the readable ones
    if target.status == "rejected" and not force:
        raise VersionRejected(f"version {version_id} was rejected by the quality gate "
                              f"({target.gate.get('reason', 'no reason recorded')}); "
                              "pass --force to make it active anyway")
    indexes.checked(writer.warehouse, target)  # never point search at a version without index
    if force and target.status == "rejected":
        writer.record_gate(version_id, {**target.gate, "forced": True,
                                        "forced_from_status": target.status})
    return writer.promote(version_id)


def versions_to_expire(versions: list[Version], keep: int) -> list[Version]:
    """Unpinned, non-active versions older than the newest `keep` versions.

    >>> from types import SimpleNamespace as V
    >>> vs = [V(version_id=i, status="retired", pinned=i == 2) for i in range(1, 6)]
    >>> [v.version_id for v in versions_to_expire(vs, keep=2)]
    [1, 3]
    """
    newest = {v.version_id for v in sorted(versions, key=lambda v: -v.version_id)[:keep]}
    return [v for v in versions if v.version_id not in newest and not v.pinned
            and v.status not in ("active", "expired")]


def collect_garbage(writer: WarehouseWriter, keep: int) -> list[int]:
    """Expire old versions (see `versions_to_expire`); returns the expired version ids."""
    versions = writer.all_versions()
    expired = versions_to_expire(versions, keep)
    if not expired:
        return []
    gone = {v.version_id for v in expired}
    needed = {int(v.lake_snapshot) for v in versions if v.version_id not in gone
              and v.status != "expired"}
    current = int(writer.con.execute(queries.CURRENT_SNAPSHOT).fetchone()[0])  # type: ignore[index]
    snapshots = [int(r[0]) for r in writer.con.execute(
        "SELECT snapshot_id FROM lake.snapshots()").fetchall()]
    to_expire = [s for s in snapshots if s not in needed and s != current]
    for version_id in sorted(gone):
        writer.set_status(version_id, "expired")
    if to_expire:
        writer.con.execute("CALL ducklake_expire_snapshots('lake', versions => ?)", [to_expire])
    writer.con.execute("CALL ducklake_cleanup_old_files('lake', cleanup_all => true)")
    for version_id in gone:
        shutil.rmtree(writer.warehouse.index_dir(version_id), ignore_errors=True)
    return sorted(gone)
