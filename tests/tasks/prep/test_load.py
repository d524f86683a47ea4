"""Reading sources: every record becomes a document or a problem naming file and row."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.errors import SourceError
from tasks.prep.load import SourceConfig, load_source
from tests.conftest import write_jsonl


def test_beir_jsonl_uses_id_title_text(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"_id": "d1", "title": "T", "text": "body"},
                                              {"_id": 7, "text": "no title"}])
    result = load_source(path, SourceConfig())
    assert result.documents["doc_id"].to_pylist() == ["d1", "7"]  # ints become string ids
    assert result.documents["title"].to_pylist() == ["T", None]
    assert result.documents["row"].to_pylist() == [1, 2]
    assert result.problems.num_rows == 0


def test_jsonl_bad_lines_are_problems_with_line_numbers(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [
        {"id": "a", "text": "fine"},   # line 1: kept
        "{not json",                   # line 2: not JSON
        {"id": "b"},                   # line 3: no text field
        [1, 2],                        # line 4: not an object
        {"id": "c", "text": 5},        # line 5: text is not a string
    ])
    result = load_source(path, SourceConfig())
    assert result.documents["doc_id"].to_pylist() == ["a"]
    problems = result.problems.to_pylist()
    assert [(p["row"], p["reason"]) for p in problems] == [
        (2, "bad_record"), (3, "missing_text"), (4, "bad_record"), (5, "missing_text")]
    assert all(p["source"] == "c.jsonl" for p in problems)
    assert "not valid JSON" in problems[0]["detail"]


def test_configurable_field_names_and_derived_ids(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"key": "k1", "body": "x"}, {"body": "y"}])
    result = load_source(path, SourceConfig(id_field="key", text_field="body"))
    # A record without an id gets a stable one from file and line.
    assert result.documents["doc_id"].to_pylist() == ["k1", "c.jsonl:2"]


def test_directory_is_recursive_with_relative_path_ids(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# A\ntext")
    (tmp_path / "sub" / "b.html").write_text("<p>b</p>")
    (tmp_path / "skip.bin").write_bytes(b"\x00\x01")     # not a text suffix: ignored
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 latin-1")  # not UTF-8: a problem
    result = load_source(tmp_path, SourceConfig())
    assert result.documents["doc_id"].to_pylist() == ["a.md", "sub/b.html"]
    # Text files are read as "auto": HTML in them is stripped as in .html files.
    assert result.documents["markup"].to_pylist() == ["auto", "html"]
    assert result.problems.to_pylist()[0]["source"] == "bad.txt"
    assert result.problems.to_pylist()[0]["reason"] == "unreadable"


def test_csv_rows_report_their_line(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('id,text\n1,"first"\n2,"second",extra\n3,third\n')
    result = load_source(path, SourceConfig())
    assert result.documents["doc_id"].to_pylist() == ["1", "3"]
    assert result.problems.to_pylist()[0]["row"] == 3  # header is line 1


def test_parquet(tmp_path):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": ["x", "y"], "text": ["one", None]}), path)
    result = load_source(path, SourceConfig())
    assert result.documents["doc_id"].to_pylist() == ["x"]
    assert result.problems["reason"].to_pylist() == ["missing_text"]


@pytest.mark.parametrize("name", ["missing.jsonl", "corpus.xml"])
def test_missing_or_unknown_source_is_a_clear_error(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".xml"):
        path.write_text("<x/>")
    with pytest.raises(SourceError, match=name):
        load_source(path, SourceConfig())


def csv_rows(n: int, bad_row: int | None) -> bytes:
    """A CSV with `n` data rows; data row `bad_row` (1-based) holds an invalid UTF-8 byte."""
    lines = [b"id,text"]
    for i in range(1, n + 1):
        text = f"row number {i} with a few words of text".encode()
        if i == bad_row:
            text = text[:5] + b"\xff" + text[5:]
        lines.append(f"r{i},".encode() + text)
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("bad_row", [2000, 3])  # deep in the file, and inside the first 8 KB
def test_an_invalid_byte_quarantines_its_row_only(tmp_path, bad_row):
    # Found by hostile input: 138 rows vanished with the bad block, the quarantined row had a
    # garbage id and the wrong line; in the first 8 KB the whole file was refused.
    path = tmp_path / "bad.csv"
    path.write_bytes(csv_rows(3000, bad_row))
    result = load_source(path, SourceConfig())
    assert result.num_records == 3000 and result.documents.num_rows == 2999
    [problem] = result.problems.to_pylist()
    assert (problem["row"], problem["doc_id"], problem["reason"]) == (
        bad_row + 1, f"r{bad_row}", "bad_encoding")  # + 1: the header is line 1
    assert "0xff" in problem["detail"]


def test_a_lone_surrogate_in_json_quarantines_that_record(tmp_path):
    # Valid JSON, not encodable text: it crashed the whole ingest with a traceback.
    path = tmp_path / "s.jsonl"
    path.write_text('{"_id": "ok1", "text": "fine"}\n'
                    '{"_id": "bad", "text": "abc \\ud800 def"}\n'
                    '{"_id": "ok2", "text": "also fine"}\n')
    result = load_source(path, SourceConfig())
    assert result.documents["doc_id"].to_pylist() == ["ok1", "ok2"]
    [problem] = result.problems.to_pylist()
    assert (problem["row"], problem["doc_id"], problem["reason"]) == (2, "bad", "bad_encoding")
    assert "U+D800" in problem["detail"]


def test_invalid_utf8_inside_parquet_strings(tmp_path):
    path = tmp_path / "s.parquet"
    text = pa.array([b"good text", b"bad\xff text"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"id": ["a", "b"], "text": text}), path)
    result = load_source(path, SourceConfig())
    assert result.documents["doc_id"].to_pylist() == ["a"]
    assert result.problems.to_pylist()[0]["row"] == 2
    assert result.problems.to_pylist()[0]["reason"] == "bad_encoding"


def test_links_and_special_files_are_reported_never_followed(tmp_path):
    import os

    root = tmp_path / "corpus"
    root.mkdir()
    (root / "good.txt").write_text("a real document")
    (root / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the corpus")
    (root / "outside.txt").symlink_to(secret)
    (root / "inside.md").symlink_to(root / "good.txt")  # a link within the source is fine
    os.mkfifo(root / "pipe.txt")  # opening it would block forever
    result = load_source(root, SourceConfig())
    assert result.documents["doc_id"].to_pylist() == ["good.txt", "inside.md"]
    problems = {p["source"]: p["detail"] for p in result.problems.to_pylist()}
    assert set(problems) == {"dangling.txt", "outside.txt", "pipe.txt"}
    assert "dangling" in problems["dangling.txt"] and "outside" in problems["outside.txt"]
    assert result.num_records == 5


def test_bom_crlf_and_deep_nesting(tmp_path):
    csv_path = tmp_path / "bom.csv"
    csv_path.write_bytes(b"\xef\xbb\xbfid,text\r\nx,first\r\ny,second\r\n")
    result = load_source(csv_path, SourceConfig())
    assert result.documents["doc_id"].to_pylist() == ["x", "y"]  # the BOM is not in the name
    assert result.documents["row"].to_pylist() == [2, 3]
    jsonl = tmp_path / "deep.jsonl"
    jsonl.write_text("[" * 100_000 + "]" * 100_000 + '\n{"id": "z", "text": "ok"}\n')
    result = load_source(jsonl, SourceConfig())
    assert result.documents["doc_id"].to_pylist() == ["z"]
    assert result.problems.to_pylist()[0]["reason"] == "bad_record"


def test_parquet_columns_of_the_wrong_type(tmp_path):
    path = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"id": [1, 2], "text": [3.5, None]}), path)
    result = load_source(path, SourceConfig())
    assert result.documents.num_rows == 0
    assert result.problems["reason"].to_pylist() == ["missing_text", "missing_text"]
    assert "a float, not a string" in result.problems["detail"].to_pylist()[0]


def test_sources_that_cannot_be_read_at_all(tmp_path):
    with pytest.raises(SourceError, match="not a regular file"):
        load_source(tmp_path, SourceConfig(format="jsonl"))


def test_a_corpus_read_in_small_batches_equals_one_read(tmp_path):
    """`read_corpus` cleans batch by batch: documents, quarantine (in input order) and counts
    are what one pass over the whole source gives."""
    from tasks.prep.chain import read_corpus
    from tasks.prep.clean import CleanConfig
    from tests.tasks.prep.test_clean import near_duplicate_corpus

    lines = [json.dumps({"_id": i, "text": t}) for i, _, t in near_duplicate_corpus(300)]
    lines[5], lines[77] = "{broken", json.dumps({"_id": "d9", "text": "an id used twice here"})
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n")
    whole = read_corpus(path, SourceConfig(), CleanConfig())
    batched = read_corpus(path, SourceConfig(batch_rows=7), CleanConfig())
    assert batched.n_input == whole.n_input == 300 and batched.accounted
    assert batched.documents.to_pylist() == whole.documents.to_pylist()
    assert batched.quarantine.to_pylist() == whole.quarantine.to_pylist()
    assert batched.quarantine["reason"].to_pylist()[0] == "bad_record"
