"""Hostile input, generated: every record of every format ends kept, duplicate or quarantined.

Properties (hypothesis) of the loader and the cleaner on arbitrary bytes and text, then one
hostile file per source format run through the real CLI: exit 0 (or one line, exit 2, naming
the file), input = kept + duplicates + quarantined, every quarantine row with file, line and
reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.errors import SourceError
from tasks.prep.clean import CleanConfig, clean_documents, normalize_text
from tasks.prep.load import SourceConfig, load_source
from tests.conftest import run_embedpipe

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# Pieces of hostile text: invalid UTF-8 at several offsets, lone surrogates (as JSON escapes),
# NUL, BOM, CRLF, RTL overrides, nested HTML, very long lines.
BAD_BYTES = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xef\xbb\xbf", b"\r\n", b"\x1b[31m"]
HOSTILE_TEXTS = [
    "plain text that is long enough to keep",
    "<div><p>Nested <b>HTML</b> <script>alert(1)</script></p><img src=x onerror=alert(2)></div>",
    "invoice\u202egnp.exe is a spoofed name in a long enough sentence",
    "x" * 200_000,
    "   \t  ",
    "",
    "日本語のテキストも十分な長さがあります。" * 3,
    "line one\r\nline two\r\n\r\n\r\nline three of a long enough text",
]


@FAST
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_any_bytes_as_jsonl_account_for_every_line(tmp_path, lines):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"\n".join(lines))
    result = load_source(path, SourceConfig())
    expected = sum(1 for line in b"\n".join(lines).split(b"\n") if line.strip())
    assert result.num_records == expected
    for problem in result.problems.to_pylist():
        assert problem["source"] == "x.jsonl" and problem["row"] >= 1 and problem["reason"]


@FAST
@given(st.binary(max_size=2000))
def test_any_bytes_as_csv_never_crash(tmp_path, data):
    path = tmp_path / "x.csv"
    path.write_bytes(b"id,text\n" + data)
    try:
        result = load_source(path, SourceConfig())
    except SourceError:
        return  # a whole-file error is allowed: one line, naming the file
    for problem in result.problems.to_pylist():
        assert problem["source"] == "x.csv" and problem["row"] >= 2 and problem["reason"]
    for document in result.documents.to_pylist():
        document["text"].encode("utf-8")  # everything kept is storable text


@FAST
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=6))
def test_any_bytes_as_directory_files_one_record_each(tmp_path, contents):
    root = tmp_path / f"d{abs(hash(tuple(contents)))}"
    root.mkdir()
    for i, content in enumerate(contents):
        (root / f"f{i}.txt").write_bytes(content)
    result = load_source(root, SourceConfig())
    assert result.num_records == len(contents)


@FAST
@given(st.text(max_size=300))
def test_cleaning_is_idempotent(value):
    once = normalize_text(value, "auto")
    assert normalize_text(once, "auto") == once


@FAST
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]),
                          st.sampled_from(HOSTILE_TEXTS[:3] + HOSTILE_TEXTS[4:])),
                max_size=12))
def test_duplicate_ids_in_every_order_land_exactly_once(records):
    raw = pa.table({"doc_id": [r[0] for r in records], "title": [None] * len(records),
                    "text": [r[1] for r in records], "source": ["f"] * len(records),
                    "row": list(range(1, len(records) + 1)),
                    "markup": ["auto"] * len(records)})
    result = clean_documents(raw, CleanConfig(min_chars=10))
    assert result.documents.num_rows + result.quarantine.num_rows == len(records)
    kept = result.documents["doc_id"].to_pylist()
    assert len(kept) == len(set(kept))
    # An id is kept if any of its records has text worth keeping (and is not a text duplicate)
    for q in result.quarantine.to_pylist():
        if q["reason"] == "duplicate_id":
            assert q["twin_doc_id"] == q["doc_id"] and q["doc_id"] in kept


def hostile_records() -> list[dict]:
    records: list[dict] = [{"_id": f"t{i}", "title": f"T{i}", "text": t}
                           for i, t in enumerate(HOSTILE_TEXTS)]
    records += [{"_id": "dup", "text": "first of two records sharing an id here"},
                {"_id": "dup", "text": "second of two records sharing an id here"},
                {"_id": "empty-first", "text": ""},
                {"_id": "empty-first", "text": "a good record after an empty one with its id"},
                {"_id": "twin", "text": HOSTILE_TEXTS[0]}]
    return records


def write_hostile_jsonl(path: Path) -> int:
    lines = [json.dumps(r).encode() for r in hostile_records()]
    lines += [b'{"_id": "sur", "text": "lone \\ud800 surrogate in a long text"}',
              b"null", b"42", b'"a string"', b"[1, 2]", b"true", b"{not json",
              b'{"_id": {"nested": 1}, "text": "an id that is an object"}',
              b'{"_id": "num-text", "text": 12345}',
              b"\xff\xfe binary garbage \x00\x01",
              b'{"_id": "ok-after", "text": "' + b"\xc3" + b'"}',
              b"[" * 50_000 + b"]" * 50_000]
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")
    return len(lines)


def write_hostile_csv(path: Path) -> int:
    rows = [b"id,title,text"]
    for r in hostile_records():
        text = r["text"].replace('"', '""').encode()
        rows.append(f'{r["_id"]},"{r.get("title", "")}","'.encode() + text + b'"')
    rows += [b'bad1,"t","bad byte \xff in the middle of a row"',
             b'ragged,"t","too","many","fields"',
             b"short-row",
             b'quoted,"a ""quoted"" title","text with, commas\nand a newline inside"',
             b'nul,"t","text with a \x00 NUL byte inside it"']
    path.write_bytes(b"\n".join(rows) + b"\n")
    return len(rows) - 1


def write_hostile_parquet(path: Path) -> int:
    records = hostile_records()
    texts = [r["text"].encode() for r in records] + [b"bad \xff utf8 inside parquet"]
    table = pa.table({
        "id": [r["_id"] for r in records] + ["badpq"],
        "text": pa.array(texts, pa.binary()).view(pa.string())})
    pq.write_table(table, path)
    return table.num_rows


def write_hostile_directory(root: Path) -> int:
    root.mkdir()
    for i, text in enumerate(HOSTILE_TEXTS):
        (root / f"t{i}.txt").write_text(text)
    (root / "page.html").write_text(HOSTILE_TEXTS[1])
    (root / "latin1.txt").write_bytes(b"caf\xe9 au lait in latin-1, not UTF-8")
    (root / "binary.md").write_bytes(bytes(range(256)))
    (root / "dangling.txt").symlink_to(root / "gone.txt")
    (root / "skipped.bin").write_bytes(b"\x00" * 10)  # not a text suffix: not an input
    return len(HOSTILE_TEXTS) + 4


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet", "directory"])
def test_hostile_files_through_the_cli(tmp_path, prefect_api, kind):
    writers = {"jsonl": (write_hostile_jsonl, "x.jsonl"), "csv": (write_hostile_csv, "x.csv"),
               "parquet": (write_hostile_parquet, "x.parquet"),
               "directory": (write_hostile_directory, "corpus")}
    write, name = writers[kind]
    source = tmp_path / name
    n_input = write(source)
    wh = tmp_path / "wh"
    done = run_embedpipe(["ingest", str(source), "--warehouse", str(wh), "--json"], prefect_api)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout)
    assert summary["input_documents"] == n_input
    assert summary["input_documents"] == (summary["kept"] + summary["exact_duplicates"]
                                          + summary["near_duplicates"] + summary["quarantined"])
    rows = run_embedpipe(["sql", 'SELECT source, "row", reason, doc_id, twin_doc_id FROM '
                          "quarantine", "--format", "json", "--warehouse", str(wh)], prefect_api,
                         timeout=120)
    assert rows.returncode == 0, rows.stderr
    quarantine = [json.loads(line) for line in rows.stdout.splitlines()]
    assert len(quarantine) == n_input - summary["kept"]
    for row in quarantine:
        assert row["source"] and row["reason"] and row["row"] is not None
        if kind != "directory":
            assert row["row"] >= 1  # a line or row number, not a whole file
        if row["reason"] in ("exact_duplicate", "near_duplicate", "duplicate_id"):
            assert row["twin_doc_id"]
    # Nothing kept carries markup or control characters into the store.
    texts = run_embedpipe(["sql", "SELECT text FROM documents", "--format", "json",
                           "--warehouse", str(wh)], prefect_api, timeout=120)
    for line in texts.stdout.splitlines():
        text = json.loads(line)["text"]
        assert "<script>" not in text and "\x00" not in text and "\u202e" not in text


@pytest.mark.slow
@pytest.mark.parametrize("content", [b"", b"\n\n   \n", b"\xff\xfe\x00garbage\n" * 5])
def test_a_file_with_nothing_usable_is_one_line(tmp_path, prefect_api, content):
    source = tmp_path / "nothing.jsonl"
    source.write_bytes(content)
    done = run_embedpipe(["ingest", str(source), "--warehouse", str(tmp_path / "w")], prefect_api)
    assert done.returncode == 2, done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "nothing.jsonl" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
