"""The dashboard and `/metrics`: a read-only web app over one warehouse.

`app.create_app(config)` builds the Starlette app; `embedpipe dashboard` serves it with uvicorn
and `embedpipe metrics` prints one scrape (`flows/cli/dashboard.py`). Modules by subject:
`overview`, `versions`, `trends` (quality and drift), `maps` (map and search) build each page's
data as plain dicts (the JSON endpoints return them as they are); `charts` turns them into
Plotly figures; `metrics` is the Prometheus collector; `context` holds the shared state and
row shapes, `fmt` the Jinja environment, `links` the Prefect UI links, `searching` the cached
searchers. Reads go through `warehouse.history` (pooled read-only readers, named SQL).
"""
