"""Index: a version's unit vectors and chunk texts in; an ANN index (ef tuned), BM25 and hits out.

`ann/` holds the ANN contract and backends, `build` ef tuning, `lexical` BM25, `hits` search.
"""
