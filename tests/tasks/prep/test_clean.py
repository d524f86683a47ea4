"""Cleaning: canonical text, and every input row routed to documents or quarantine."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tasks.prep.clean import CleanConfig, clean_documents, html_to_text, normalize_text


def raw(*rows: tuple[str, str | None, str]) -> pa.Table:
    """Raw documents from (doc_id, title, text) with source 'f' and rows 1..n."""
    return pa.table({
        "doc_id": [r[0] for r in rows], "title": [r[1] for r in rows],
        "text": [r[2] for r in rows], "source": ["f"] * len(rows),
        "row": list(range(1, len(rows) + 1)), "markup": ["text"] * len(rows),
    })


@pytest.mark.parametrize(("text", "expected"), [
    ("cafe\u0301", "café"),                      # NFD -> NFC
    ("Ã©tÃ©", "été"),                            # mojibake (UTF-8 read as Latin-1)
    ("fish &amp; chips &lt;3", "fish & chips <3"),  # HTML entities in plain text
    ("bell\x07 and\x00 nul", "bell and nul"),    # control characters
    ("  a \t  b\u00a0c  ", "a b c"),             # spaces, tabs, non-breaking space
    ("one\r\n\r\n\r\n\r\ntwo", "one\n\ntwo"),   # CRLF and paragraph runs
    ("", ""),
    ("日本語のテキスト", "日本語のテキスト"),     # non-Latin text is untouched
])
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


def test_html_to_text_drops_scripts_and_keeps_blocks_apart():
    html = "<html><head><title>x</title></head><body><h1>Title</h1><p>A <b>bold</b> word" \
           "</p><script>alert(1)</script><ul><li>one</li><li>two</li></ul></body></html>"
    assert html_to_text(html) == "Title\nA bold word\none\ntwo"


def test_every_row_lands_exactly_once():
    table = raw(
        ("a", "Alpha", "The quick brown fox jumps over the lazy dog."),  # kept
        ("b", "Alpha", "The quick brown fox jumps over the lazy dog."),  # exact twin of a
        ("c", None, "   \n\t "),                                           # empty after cleaning
        ("d", None, "tiny"),                                               # below min_chars
        ("a", None, "Another text with the same id as the first row."),   # duplicate id
        ("e", None, "Completely different words about volcanoes and lava flows."),  # kept
    )
    result = clean_documents(table, CleanConfig(min_chars=10))
    assert result.documents["doc_id"].to_pylist() == ["a", "e"]
    q = {r["row"]: (r["reason"], r["twin_doc_id"]) for r in result.quarantine.to_pylist()}
    # A duplicate id names the kept record holding that id as its twin.
    assert q == {2: ("exact_duplicate", "a"), 3: ("empty", None), 4: ("too_short", None),
                 5: ("duplicate_id", "a")}
    assert result.documents.num_rows + result.quarantine.num_rows == table.num_rows


def test_near_duplicate_points_at_the_kept_twin():
    base = " ".join(f"word{i}" for i in range(200))
    edited = base.replace("word100", "changed")  # one word of 200 differs
    table = raw(("orig", None, base), ("edit", None, edited),
                ("other", None, " ".join(f"other{i}" for i in range(200))))
    result = clean_documents(table, CleanConfig())
    assert result.documents["doc_id"].to_pylist() == ["orig", "other"]
    [row] = result.quarantine.to_pylist()
    assert (row["doc_id"], row["reason"], row["twin_doc_id"]) == ("edit", "near_duplicate", "orig")


def test_near_duplicates_can_be_switched_off():
    base = " ".join(f"w{i}" for i in range(100))
    table = raw(("x", None, base), ("y", None, base + " extra"))
    assert clean_documents(table, CleanConfig(near_duplicates=False)).documents.num_rows == 2


def test_title_heads_the_text_and_content_hash_is_stable():
    table = raw(("a", "My Title", "Body text that is long enough."))
    first = clean_documents(table, CleanConfig()).documents.to_pylist()[0]
    assert first["text"] == "My Title\n\nBody text that is long enough."
    again = clean_documents(table, CleanConfig()).documents.to_pylist()[0]
    assert first["content_hash"] == again["content_hash"]


def test_empty_input():
    result = clean_documents(raw(), CleanConfig())
    assert result.documents.num_rows == 0 and result.quarantine.num_rows == 0


def test_an_empty_first_record_does_not_shadow_a_good_second_one_with_its_id():
    # Found by hostile input: the empty record was quarantined, the good one rejected as a
    # duplicate id, and the id ended up nowhere.
    table = raw(("x", None, "   "), ("x", None, "A perfectly good text for this identifier."))
    result = clean_documents(table, CleanConfig(min_chars=10))
    assert result.documents["doc_id"].to_pylist() == ["x"]
    assert result.documents["row"].to_pylist() == [2]
    assert result.quarantine["reason"].to_pylist() == ["empty"]


@pytest.mark.parametrize(("text", "expected"), [
    ("<div><p>Nested <b>HTML</b> in a record</p><script>x()</script></div>",
     "Nested HTML in a record"),
    ("Use the <p> tag for a paragraph.", "Use the <p> tag for a paragraph."),  # prose, kept
])
def test_html_in_records_is_stripped_like_html_files(text, expected):
    table = pa.table({"doc_id": ["h"], "title": [None], "text": [text], "source": ["f.jsonl"],
                      "row": [1], "markup": ["auto"]})
    assert clean_documents(table, CleanConfig(min_chars=1)).documents["text"].to_pylist() == \
        [expected]


def test_bidi_overrides_are_removed():
    assert normalize_text("invoice\u202egnp.exe") == "invoicegnp.exe"


def near_duplicate_corpus(n: int, seed: int = 7) -> list[tuple[str, str | None, str]]:
    """`n` documents of 40 words; every 10th repeats an earlier one exactly and every 7th with
    one word changed (a near duplicate)."""
    import random

    rng = random.Random(seed)
    docs: list[tuple[str, str | None, str]] = []
    for i in range(n):
        if i and i % 10 == 0:
            text = docs[rng.randrange(i)][2]
        elif i and i % 7 == 0:
            words = docs[rng.randrange(i)][2].split()
            words[rng.randrange(len(words))] = f"edit{i}"
            text = " ".join(words)
        else:
            text = " ".join(f"w{rng.randrange(5000)}" for _ in range(40))
        docs.append((f"d{i}", None, text))
    return docs


def test_duplicates_are_found_across_shards_as_in_one_pass():
    """Cleaning shard by shard with one detector gives the verdicts of one pass over all (the
    detector's index grows by merging sorted runs: this crosses several merges)."""
    from tasks.prep.clean import SeenIds, new_deduplicator

    table = raw(*near_duplicate_corpus(1200))
    whole = clean_documents(table, CleanConfig())
    config = CleanConfig()
    dedup, seen = new_deduplicator(config), SeenIds()
    shards = [clean_documents(table.slice(start, 50), config, dedup, seen)
              for start in range(0, table.num_rows, 50)]
    kept = [d for s in shards for d in s.documents["doc_id"].to_pylist()]
    rejected = [r for s in shards for r in s.quarantine.to_pylist()]
    assert kept == whole.documents["doc_id"].to_pylist()
    assert rejected == whole.quarantine.to_pylist()
    reasons = {r["reason"] for r in rejected}
    assert reasons == {"exact_duplicate", "near_duplicate"} and dedup.kept == len(kept)
