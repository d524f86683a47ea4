"""Monitor: a reference and a current sample (texts, vectors) in; drift statistics and a map out.

`drift` holds the statistics, `samples` draws and compares samples, `projection` the 2-D map.
"""
