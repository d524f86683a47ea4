"""Version maintenance: compare, promote, expire.

`diff_versions` reads two snapshots; `compare_metrics` puts two versions' metrics side by side;
`make_active` is the promotion policy (a rejected version needs force, an expired one is gone);
`collect_garbage` expires the DuckLake snapshots that no kept version needs, lets DuckLake delete
the Parquet files only they referenced, and removes the expired versions' index directories.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from warehouse import indexes, queries
from warehouse.busy import retrying
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


def versions_to_expire(versions: list[Version], keep: int, rejected: bool = False
                       ) -> list[Version]:
    """Unpinned, non-active versions older than the newest `keep` versions (and, with
    `rejected`, every unpinned version the gate rejected, however new).

    >>> from types import SimpleNamespace as V
    >>> vs = [V(version_id=i, status="retired", pinned=i == 2) for i in range(1, 6)]
    >>> [v.version_id for v in versions_to_expire(vs, keep=2)]
    [1, 3]
    """
    newest = {v.version_id for v in sorted(versions, key=lambda v: -v.version_id)[:keep]}
    return [v for v in versions if not v.pinned and v.status not in ("active", "expired")
            and (v.version_id not in newest or (rejected and v.status == "rejected"))]


@dataclass(frozen=True)
class GcReport:
    expired: list[int]
    vectors_removed: int  # stored vectors no kept version uses
    models_removed: list[str]  # model fingerprints whose weights were deleted
    bytes_freed: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gc(writer: WarehouseWriter, keep: int, expire_rejected: bool = True) -> GcReport:
    """Expire versions, then delete what nothing kept needs: data files, index directories,
    stored vectors of no kept version, and fine-tuned models of no kept version.

    Args:
        keep: the newest versions kept whatever their status (the active and pinned ones are
            always kept).
        expire_rejected: expire gate-rejected versions even among the newest (pin one to keep
            it); their fine-tuned model (often ~90 MB) is what a drifting corpus piles up.
    """
    before = _bytes(writer.warehouse.path)
    expired = collect_garbage(writer, keep, expire_rejected)
    kept = [v for v in writer.all_versions() if v.status != "expired"]
    removed = _prune_vectors(writer, kept)
    models = _prune_models(writer.warehouse, kept)
    _merge_small_files(writer)
    return GcReport(expired, removed, models, max(before - _bytes(writer.warehouse.path), 0))


def _merge_small_files(writer: WarehouseWriter) -> None:
    """Merge the lake's small Parquet files and delete the ones merged away.

    Every lock-free append (a run record, a drift check and its map points, logged searches) is
    a file of its own: a served warehouse made about ten a minute in the soak (349 after 34
    minutes). DuckLake merges adjacent files keeping each row's snapshot, so every version
    still reads exactly as it did (tested), and a reader opens a few files instead of
    thousands. Retried while a lock-free append commits beside it.
    """
    retrying(lambda: writer.con.execute("CALL ducklake_merge_adjacent_files('lake')"))
    writer.con.execute("CALL ducklake_cleanup_old_files('lake', cleanup_all => true)")


def _prune_vectors(writer: WarehouseWriter, kept: list[Version]) -> int:
    """Delete stored vectors no kept version's chunks use; rewrite and drop freed files."""
    if not kept:
        return 0
    writer.con.execute("CREATE OR REPLACE TEMP TABLE needed (fp VARCHAR, text_hash VARCHAR)")
    for version in kept:
        writer.con.execute(queries.needed_hashes(int(version.lake_snapshot)),
                           [version.model_fingerprint])
    removed = writer.con.execute(queries.COUNT_UNNEEDED_VECTORS).fetchone()[0]  # type: ignore[index]
    if removed:
        writer.con.execute(queries.DELETE_UNNEEDED_VECTORS)
        writer.con.execute("CALL ducklake_rewrite_data_files('lake', 'embeddings')")
        _expire_unneeded_snapshots(writer, kept)
    writer.con.execute("DROP TABLE needed")
    return int(removed)


def _prune_models(warehouse: Warehouse, kept: list[Version]) -> list[str]:
    """Delete `models/<fingerprint>/` directories no kept version loads its model from."""
    used = {Path(v.model_location).resolve() for v in kept if v.model_location}
    removed = []
    models = warehouse.models_dir()
    for directory in sorted(models.iterdir()) if models.exists() else []:
        if directory.is_dir() and directory.resolve() not in used:
            shutil.rmtree(directory)
            removed.append(directory.name)
    return removed


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _expire_unneeded_snapshots(writer: WarehouseWriter, kept: list[Version]) -> None:
    needed = {int(v.lake_snapshot) for v in kept}
    current = int(writer.con.execute(queries.CURRENT_SNAPSHOT).fetchone()[0])  # type: ignore[index]
    snapshots = [int(r[0]) for r in writer.con.execute(
        "SELECT snapshot_id FROM lake.snapshots()").fetchall()]
    to_expire = [s for s in snapshots if s not in needed and s != current]
    if to_expire:
        writer.con.execute("CALL ducklake_expire_snapshots('lake', versions => ?)", [to_expire])
    writer.con.execute("CALL ducklake_cleanup_old_files('lake', cleanup_all => true)")


def collect_garbage(writer: WarehouseWriter, keep: int, expire_rejected: bool = False
                    ) -> list[int]:
    """Expire old versions (see `versions_to_expire`); returns the expired version ids."""
    versions = writer.all_versions()
    expired = versions_to_expire(versions, keep, expire_rejected)
    if not expired:
        return []
    gone = {v.version_id for v in expired}
    for version_id in sorted(gone):
        writer.set_status(version_id, "expired")
    _expire_unneeded_snapshots(writer, [v for v in versions if v.version_id not in gone
                                        and v.status != "expired"])
    for version_id in gone:
        shutil.rmtree(writer.warehouse.index_dir(version_id), ignore_errors=True)
        writer.warehouse.location.delete(f"indexes/{version_id}")  # and its remote copy
    return sorted(gone)
