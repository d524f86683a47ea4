"""Prefect task wrappers of the stage cores, grouped by the flow that runs them.

Kept apart from the cores so that commands which run no flow (search, sql, versions) never
import Prefect. A wrapper adds what Prefect is for — a task run in the UI, retries on the one
step that can fail transiently, progress artifacts — and times its stage; each takes only the
config sections its stage owns, never the whole config.
"""
