"""Prep: a corpus source in; cleaned, de-duplicated documents and token-budget chunks out.

Stages: load (records, readers) -> clean (dedup) -> tokenize -> chunk; `chain` runs them.
"""
