"""Compare two document states by (doc_id, content_hash): what a new version adds, edits, drops.

Pure: takes two Arrow tables with `doc_id` and `content_hash`, returns sorted id lists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pyarrow as pa


@dataclass(frozen=True)
class DocumentDiff:
    added: list[str]
    changed: list[str]
    deleted: list[str]
    unchanged: list[str]

    def counts(self) -> dict[str, int]:
        return {name: len(ids) for name, ids in asdict(self).items()}

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.changed or self.deleted)


def diff_documents(old: pa.Table, new: pa.Table) -> DocumentDiff:
    """Documents of `new` relative to `old`.

    >>> old = pa.table({"doc_id": ["a", "b", "c"], "content_hash": ["1", "2", "3"]})
    >>> new = pa.table({"doc_id": ["a", "b", "d"], "content_hash": ["1", "9", "4"]})
    >>> diff_documents(old, new).counts()
    {'added': 1, 'changed': 1, 'deleted': 1, 'unchanged': 1}
    """
    before = dict(zip(old["doc_id"].to_pylist(), old["content_hash"].to_pylist(), strict=True))
    after = dict(zip(new["doc_id"].to_pylist(), new["content_hash"].to_pylist(), strict=True))
    return DocumentDiff(
        added=sorted(d for d in after if d not in before),
        changed=sorted(d for d, h in after.items() if d in before and before[d] != h),
        deleted=sorted(d for d in before if d not in after),
        unchanged=sorted(d for d, h in after.items() if before.get(d) == h),
    )
