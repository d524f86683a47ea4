"""The demo corpus: docstrings of the installed Python standard library, as BEIR-style JSONL.

Read with `ast` from the source files, never imported, so generating it runs no stdlib code and
gives the same corpus for the same Python. Every machine with Python has it; nothing is downloaded.
"""

from __future__ import annotations

import ast
import json
import sysconfig
from collections.abc import Iterator
from pathlib import Path

_SKIP_PARTS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages",
               "__pycache__", "turtledemo", "ensurepip", "pydoc_data", "tkinter"}


def _docstrings(path: Path, module: str) -> Iterator[tuple[str, str, str]]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return
    doc = ast.get_docstring(tree)
    if doc:
        yield module, module, doc
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name.startswith("_"):
                continue
            name = f"{module}.{node.name}"
            if doc := ast.get_docstring(node):
                yield name, name, doc
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef) and \
                            not sub.name.startswith("_") and (d := ast.get_docstring(sub)):
                        yield f"{name}.{sub.name}", f"{name}.{sub.name}", d


def stdlib_docstrings(min_chars: int = 100, limit: int = 3000) -> list[dict[str, str]]:
    """Documents `{"_id", "title", "text"}` from the stdlib, longest docstrings kept first."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found: list[dict[str, str]] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if _SKIP_PARTS & set(rel.parts) or rel.name.startswith("test_"):
            continue
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        for doc_id, title, text in _docstrings(path, module):
            if len(text) >= min_chars:
                found.append({"_id": doc_id, "title": title, "text": text})
    found.sort(key=lambda d: (-len(d["text"]), d["_id"]))
    return sorted(found[:limit], key=lambda d: d["_id"])


def write_demo_corpus(out: Path, limit: int = 3000) -> int:
    """Write the corpus to `out` (JSONL); returns the number of documents."""
    docs = stdlib_docstrings(limit=limit)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for doc in docs:
            handle.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return len(docs)
