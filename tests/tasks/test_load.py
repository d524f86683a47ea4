"""Reading sources: every record becomes a document or a problem naming file and row."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.errors import SourceError
from tasks.load import SourceConfig, load_source
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
    assert result.documents["markup"].to_pylist() == ["text", "html"]
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
