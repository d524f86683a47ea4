"""Labelled files as users write them (#24): a TSV carries quotes as text, a file without its
header is refused saying so, a bad row names its line and what is wrong."""

from __future__ import annotations

import pytest

from tasks.errors import SourceError
from tasks.quality.evalsets import load_labelled


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_tsv_reads_quotes_as_text(tmp_path):
    # Row 2 opens a quote it never closes: CSV quoting would swallow rows 3 and 4 into it.
    path = write(tmp_path, "genres.tsv", 'text\tlabel\n'
                 '"Is it?" he asked.\tnews\n'
                 '"Unbalanced quote starts here\tforums\n'
                 'A man plays a guitar.\tcaptions\n'
                 'Markets "rallied" today.\tnews\n')
    labelled = load_labelled(path)
    assert labelled.texts == ['"Is it?" he asked.', '"Unbalanced quote starts here',
                              "A man plays a guitar.", 'Markets "rallied" today.']
    assert labelled.labels == ["news", "forums", "captions", "news"]


def test_columns_are_found_by_their_header_names(tmp_path):
    path = write(tmp_path, "swapped.tsv", "label\tid\ttext\nrecipe\t1\tBake it.\n"
                 "weather\t2\tRain at noon.\n")
    labelled = load_labelled(path)
    assert (labelled.texts, labelled.labels) == (["Bake it.", "Rain at noon."],
                                                 ["recipe", "weather"])


def test_a_csv_keeps_csv_quoting(tmp_path):
    path = write(tmp_path, "topics.csv", 'text,label\n"Salt, pepper, oil.",recipe\n'
                 'Rain at noon.,weather\n')
    assert load_labelled(path).texts == ["Salt, pepper, oil.", "Rain at noon."]


@pytest.mark.parametrize(("name", "content", "message"), [
    # headerless: the first row is data, and the message says the header is missing
    ("genres.tsv", "A man plays.\tcaptions\nStocks fell.\tnews\n",
     "genres.tsv:1: the header is missing: the first line must name the columns, e.g. "
     "text<TAB>label; found 'A man plays.\\tcaptions'"),
    ("genres.tsv", "text\tlabel\nA man plays.\tcaptions\nStocks fell.\n",
     "genres.tsv:3: 1 tab-separated fields, the header has 2 ('text\\tlabel')"),
    ("genres.tsv", "text\tlabel\nA man plays.\tcaptions\n\tnews\n",
     "genres.tsv:3: the text is empty"),
    ("genres.tsv", "text\tlabel\nA man plays.\tcaptions\nStocks fell.\t \n",
     "genres.tsv:3: the label is empty"),
    ("topics.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", \n',
     "topics.jsonl:2: not valid JSON"),
    ("topics.csv", "words,label\nBake it.,recipe\n",
     "topics.csv:1: the header is missing"),
])
def test_bad_files_are_one_line_naming_the_row(tmp_path, name, content, message):
    with pytest.raises(SourceError) as caught:
        load_labelled(write(tmp_path, name, content))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
